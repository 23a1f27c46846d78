// The ingress route table (ingress_routes.h): class selection, Kubernetes' path semantics, and
// Service ports resolved to their ready endpoints through the EndpointSlices.
#include "ingress_routes.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "orch/ingress.h"

namespace orch::ingress {
namespace {

std::string Annotation(const json& object, const char* key) {
  const json& annotations = Field(object, {"metadata", "annotations"});
  if (!annotations.is_object()) return "";
  auto it = annotations.find(key);
  return it != annotations.end() && it->is_string() ? it->get<std::string>() : "";
}

bool IsOrchClass(const json& ingress_class) {
  return String(ingress_class, {"spec", "controller"}) == kIngressControllerName;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A rule path as PathRoute keeps it.
PathRoute MakePath(const json& path) {
  PathRoute route;
  route.path = String(path, {"path"});
  std::string type = String(path, {"pathType"});
  // ImplementationSpecific is ours to define: a Prefix match, as Traefik's PathPrefix.
  route.type = type == "Exact" ? PathType::kExact : PathType::kPrefix;
  if (route.path.empty()) route.path.assign(1, '/');
  if (route.type == PathType::kPrefix) {
    while (!route.path.empty() && route.path.back() == '/') route.path.pop_back();
  }
  return route;
}

// The lookup of Services and their EndpointSlices, and the backends made so far (one per
// Service port, shared by every path naming it).
class BackendResolver {
 public:
  explicit BackendResolver(const RouteInput& input) {
    for (const ObjectPtr& svc : input.services) {
      services_[fmt::format("{}/{}", String(*svc, {"metadata", "namespace"}),
                            String(*svc, {"metadata", "name"}))] = svc;
    }
    for (const ObjectPtr& slice : input.slices) {
      const json& labels = Field(*slice, {"metadata", "labels"});
      if (!labels.is_object()) continue;
      auto it = labels.find("kubernetes.io/service-name");
      if (it == labels.end() || !it->is_string()) continue;
      slices_[fmt::format("{}/{}", String(*slice, {"metadata", "namespace"}),
                          it->get<std::string>())]
          .push_back(slice);
    }
  }

  // The backend of an IngressBackend in namespace `ns`; null for a resource backend (not
  // supported: such paths are left out).
  std::shared_ptr<const Backend> Resolve(const std::string& ns, const json& backend) {
    const json& service = Field(backend, {"service"});
    if (!service.is_object()) return nullptr;
    std::string name = String(service, {"name"});
    named.insert(fmt::format("{}/{}", ns, name));
    const json& port_number = Field(service, {"port", "number"});
    std::string port_name = String(service, {"port", "name"});
    std::string port_text =
        port_number.is_number_integer() ? std::to_string(port_number.get<int64_t>()) : port_name;
    std::string key = fmt::format("{}/{}:{}", ns, name, port_text);
    auto found = backends_.find(key);
    if (found != backends_.end()) return found->second;

    auto made = std::make_shared<Backend>();
    made->name = key;
    made->endpoints = Endpoints(ns, name, port_number, port_name);
    backends_[key] = made;
    return made;
  }

  std::unordered_set<std::string> named;  // "ns/name" of every Service resolved

 private:
  std::vector<Endpoint> Endpoints(const std::string& ns, const std::string& name,
                                  const json& port_number, const std::string& port_name) {
    std::vector<Endpoint> out;
    auto svc = services_.find(ns + "/" + name);
    if (svc == services_.end()) return out;
    // The Service port the backend names, by number or by name; the slices name their ports
    // after the Service's.
    const json& ports = Field(*svc->second, {"spec", "ports"});
    if (!ports.is_array()) return out;
    const json* service_port = nullptr;
    for (const json& p : ports) {
      bool match = port_number.is_number_integer()
                       ? (p.value("port", int64_t{-1}) == port_number.get<int64_t>())
                       : (!port_name.empty() && p.value("name", "") == port_name);
      if (match && p.value("protocol", "TCP") == "TCP") {
        service_port = &p;
        break;
      }
    }
    if (service_port == nullptr) return out;
    std::string slice_port_name = service_port->value("name", "");
    std::set<std::tuple<std::string, uint16_t>> seen;
    for (const ObjectPtr& slice : slices_[ns + "/" + name]) {
      if (String(*slice, {"addressType"}) == "FQDN") continue;
      int64_t target = -1;
      const json& slice_ports = Field(*slice, {"ports"});
      if (!slice_ports.is_array()) continue;
      for (const json& sp : slice_ports) {
        std::string sp_name =
            sp.contains("name") && sp["name"].is_string() ? sp["name"].get<std::string>() : "";
        if (sp_name == slice_port_name && sp.value("protocol", "TCP") == "TCP" &&
            sp.contains("port") && sp["port"].is_number_integer()) {
          target = sp["port"].get<int64_t>();
          break;
        }
      }
      if (target <= 0 || target > 65535) continue;
      const json& endpoints = Field(*slice, {"endpoints"});
      if (!endpoints.is_array()) continue;
      for (const json& e : endpoints) {
        // A missing ready condition means ready (the field's documented default).
        const json& ready = Field(e, {"conditions", "ready"});
        if (ready.is_boolean() && !ready.get<bool>()) continue;
        const json& addresses = Field(e, {"addresses"});
        if (!addresses.is_array() || addresses.empty() || !addresses[0].is_string()) continue;
        std::string ip = addresses[0].get<std::string>();
        if (seen.emplace(ip, static_cast<uint16_t>(target)).second) {
          out.push_back({ip, static_cast<uint16_t>(target)});
        }
      }
    }
    std::sort(out.begin(), out.end(), [](const Endpoint& a, const Endpoint& b) {
      return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
    });
    return out;
  }

  std::unordered_map<std::string, ObjectPtr> services_;
  std::unordered_map<std::string, std::vector<ObjectPtr>> slices_;
  std::unordered_map<std::string, std::shared_ptr<Backend>> backends_;
};

// Adds `route` to `routes` unless an older Ingress already routes that path and type.
void AddRoute(HostRoutes& routes, PathRoute route) {
  for (const PathRoute& r : routes) {
    if (r.path == route.path && r.type == route.type) return;
  }
  routes.push_back(std::move(route));
}

void SortRoutes(HostRoutes& routes) {
  // Stable: among equals the older Ingress (added first) stays first.
  std::stable_sort(routes.begin(), routes.end(), [](const PathRoute& a, const PathRoute& b) {
    if (a.path.size() != b.path.size()) return a.path.size() > b.path.size();
    return a.type == PathType::kExact && b.type != PathType::kExact;
  });
}

const PathRoute* MatchPath(const HostRoutes& routes, std::string_view path) {
  for (const PathRoute& r : routes) {
    if (r.type == PathType::kExact ? path == r.path : PrefixMatches(r.path, path)) return &r;
  }
  return nullptr;
}

// The part after "*." of a wildcard host a name falls under (one label only, as Kubernetes
// says: "*.foo.com" matches "bar.foo.com", not "baz.bar.foo.com" nor "foo.com").
std::string_view WildcardSuffix(std::string_view host) {
  auto dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return host.substr(dot + 1);
}

}  // namespace

const Endpoint* Backend::Pick() const {
  if (endpoints.empty()) return nullptr;
  uint64_t n = next.fetch_add(1, std::memory_order_relaxed);
  return &endpoints[n % endpoints.size()];
}

bool AnyClassOfOrch(const std::vector<ObjectPtr>& classes) {
  return std::any_of(classes.begin(), classes.end(),
                     [](const ObjectPtr& c) { return IsOrchClass(*c); });
}

bool ServedByOrch(const json& ingress, const std::vector<ObjectPtr>& classes) {
  std::string name = String(ingress, {"spec", "ingressClassName"});
  if (name.empty()) name = Annotation(ingress, kLegacyClassAnnotation);
  for (const ObjectPtr& c : classes) {
    if (name.empty()) {
      if (Annotation(*c, kDefaultClassAnnotation) == "true" && IsOrchClass(*c)) return true;
    } else if (String(*c, {"metadata", "name"}) == name) {
      return IsOrchClass(*c);
    }
  }
  return false;
}

bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix.empty()) return true;  // "/"
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string NormalizeHost(std::string_view host) {
  if (!host.empty() && host.front() == '[') {  // an IPv6 literal: [::1]:80
    auto end = host.find(']');
    return Lower(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
  }
  auto colon = host.find(':');
  if (colon != std::string_view::npos) host = host.substr(0, colon);
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return Lower(host);
}

RouteTable BuildRouteTable(const RouteInput& input) {
  RouteTable table;
  // Older Ingresses first: they win conflicts for a path, a TLS host or the default backend.
  std::vector<const json*> served;
  for (const ObjectPtr& ing : input.ingresses) {
    if (ServedByOrch(*ing, input.classes)) served.push_back(ing.get());
  }
  std::sort(served.begin(), served.end(), [](const json* a, const json* b) {
    return std::make_tuple(String(*a, {"metadata", "creationTimestamp"}),
                           String(*a, {"metadata", "namespace"}),
                           String(*a, {"metadata", "name"})) <
           std::make_tuple(String(*b, {"metadata", "creationTimestamp"}),
                           String(*b, {"metadata", "namespace"}), String(*b, {"metadata", "name"}));
  });
  table.ingresses = served.size();

  BackendResolver resolver(input);
  for (const json* ing : served) {
    std::string ns = String(*ing, {"metadata", "namespace"});
    const json& spec = Field(*ing, {"spec"});
    const json& default_backend = Field(spec, {"defaultBackend"});
    if (!table.default_backend && default_backend.is_object()) {
      table.default_backend = resolver.Resolve(ns, default_backend);
    }
    std::vector<std::string> rule_hosts;
    const json& rules = Field(spec, {"rules"});
    if (rules.is_array()) {
      for (const json& rule : rules) {
        std::string host = Lower(String(rule, {"host"}));
        rule_hosts.push_back(host);
        HostRoutes* routes = &table.any_host;
        if (host.rfind("*.", 0) == 0) {
          routes = &table.wildcard_hosts[host.substr(2)];
        } else if (!host.empty()) {
          routes = &table.exact_hosts[host];
        }
        const json& paths = Field(rule, {"http", "paths"});
        if (!paths.is_array()) continue;
        for (const json& p : paths) {
          PathRoute route = MakePath(p);
          route.backend = resolver.Resolve(ns, Field(p, {"backend"}));
          if (route.backend) AddRoute(*routes, std::move(route));
        }
      }
    }
    const json& tls = Field(spec, {"tls"});
    if (tls.is_array()) {
      for (const json& entry : tls) {
        std::string secret = String(entry, {"secretName"});
        if (secret.empty()) continue;
        std::vector<std::string> hosts;
        const json& listed = Field(entry, {"hosts"});
        if (listed.is_array() && !listed.empty()) {
          for (const json& h : listed) {
            if (h.is_string()) hosts.push_back(Lower(h.get<std::string>()));
          }
        } else {
          hosts = rule_hosts;  // no hosts: the certificate is for this Ingress's own hosts
        }
        for (const std::string& host : hosts) {
          if (host.empty()) continue;
          std::string key = ns + "/" + secret;
          if (host.rfind("*.", 0) == 0) {
            table.tls_wildcard.emplace(host.substr(2), key);
          } else {
            table.tls_exact.emplace(host, key);
          }
        }
      }
    }
  }
  table.services = std::move(resolver.named);
  SortRoutes(table.any_host);
  for (auto& [host, routes] : table.exact_hosts) SortRoutes(routes);
  for (auto& [host, routes] : table.wildcard_hosts) SortRoutes(routes);
  return table;
}

std::shared_ptr<const Backend> RouteTable::Match(std::string_view host,
                                                 std::string_view path) const {
  if (path.empty()) path = "/";
  if (!host.empty()) {
    auto exact = exact_hosts.find(std::string(host));
    if (exact != exact_hosts.end()) {
      if (const PathRoute* r = MatchPath(exact->second, path)) return r->backend;
    }
    std::string_view suffix = WildcardSuffix(host);
    if (!suffix.empty()) {
      auto wild = wildcard_hosts.find(std::string(suffix));
      if (wild != wildcard_hosts.end()) {
        if (const PathRoute* r = MatchPath(wild->second, path)) return r->backend;
      }
    }
  }
  if (const PathRoute* r = MatchPath(any_host, path)) return r->backend;
  return default_backend;
}

std::string RouteTable::TlsSecretFor(std::string_view server_name) const {
  std::string name = NormalizeHost(server_name);
  auto exact = tls_exact.find(name);
  if (exact != tls_exact.end()) return exact->second;
  std::string_view suffix = WildcardSuffix(name);
  if (!suffix.empty()) {
    auto wild = tls_wildcard.find(std::string(suffix));
    if (wild != tls_wildcard.end()) return wild->second;
  }
  return "";
}

}  // namespace orch::ingress
