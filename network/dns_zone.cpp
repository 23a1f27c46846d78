// Cluster DNS names (dns_zone.h): one table from owner name to records, rebuilt whole from the
// informers' objects after a change, and the lookup rules of the Kubernetes DNS specification.
#include "dns_zone.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include "orch/json_path.h"

namespace orch::dns {
namespace {

using nlohmann::json;

using json_path::Field;
using json_path::String;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Dashed(uint32_t ip) {
  std::string s = FormatIPv4(ip);
  std::replace(s.begin(), s.end(), '.', '-');
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::shared_ptr<const Zone> Zone::Build(const std::vector<ObjectPtr>& services,
                                        const std::vector<ObjectPtr>& slices,
                                        const std::string& domain) {
  auto zone = std::make_shared<Zone>();
  zone->domain_ = Lower(domain);
  // Slices by "ns/service".
  std::map<std::string, std::vector<const json*>> slices_of;
  for (const ObjectPtr& s : slices) {
    if (String(*s, {"addressType"}) != "IPv4") continue;
    std::string svc = String(*s, {"metadata", "labels", "kubernetes.io/service-name"});
    if (svc.empty()) continue;
    slices_of[String(*s, {"metadata", "namespace"}) + "/" + svc].push_back(s.get());
  }
  for (const ObjectPtr& svc : services) {
    std::string ns = Lower(String(*svc, {"metadata", "namespace"}));
    std::string name = Lower(String(*svc, {"metadata", "name"}));
    if (ns.empty() || name.empty()) continue;
    zone->namespaces_.insert(ns);
    const std::string base = name + "." + ns + ".svc." + zone->domain_;
    Node& node = zone->nodes_[base];
    if (String(*svc, {"spec", "type"}) == "ExternalName") {
      node.cname = Lower(String(*svc, {"spec", "externalName"}));
      while (!node.cname.empty() && node.cname.back() == '.') node.cname.pop_back();
      continue;
    }
    std::string cluster_ip = String(*svc, {"spec", "clusterIP"});
    if (auto ip = ParseIPv4(cluster_ip)) {
      node.a.push_back(*ip);
      zone->ptr_[*ip] = base;
      for (const json& port : Field(*svc, {"spec", "ports"})) {
        std::string port_name = Lower(String(port, {"name"}));
        if (port_name.empty() || !port.value("port", json()).is_number_integer()) continue;
        std::string proto = Lower(port.value("protocol", std::string("TCP")));
        zone->nodes_["_" + port_name + "._" + proto + "." + base].srv.push_back(
            {static_cast<uint16_t>(port["port"].get<int>()), 100, base});
      }
      continue;
    }
    if (cluster_ip != "None") continue;  // not allocated yet, or IPv6 only
    // Headless: the ready endpoints' addresses, each also under its hostname (or dashed IP).
    bool not_ready_too = Field(*svc, {"spec", "publishNotReadyAddresses"}) == true;
    for (const json* slice : slices_of[ns + "/" + name]) {
      for (const json& ep : Field(*slice, {"endpoints"})) {
        if (!not_ready_too && Field(ep, {"conditions", "ready"}) == false) continue;
        std::string hostname = Lower(String(ep, {"hostname"}));
        for (const json& address : Field(ep, {"addresses"})) {
          auto ip = address.is_string() ? ParseIPv4(address.get<std::string>()) : std::nullopt;
          if (!ip) continue;
          const std::string host = (hostname.empty() ? Dashed(*ip) : hostname) + "." + base;
          node.a.push_back(*ip);  // unordered_map keeps references valid as it grows
          zone->nodes_[host].a.push_back(*ip);
          zone->ptr_.try_emplace(*ip, host);
          for (const json& port : Field(*slice, {"ports"})) {
            std::string port_name = Lower(String(port, {"name"}));
            if (port_name.empty() || !port.value("port", json()).is_number_integer()) continue;
            std::string proto = Lower(port.value("protocol", std::string("TCP")));
            zone->nodes_["_" + port_name + "._" + proto + "." + base].srv.push_back(
                {static_cast<uint16_t>(port["port"].get<int>()), 10, host});
          }
        }
      }
    }
  }
  for (auto& [name, node] : zone->nodes_) {
    std::sort(node.a.begin(), node.a.end());
    node.a.erase(std::unique(node.a.begin(), node.a.end()), node.a.end());
    std::sort(node.srv.begin(), node.srv.end(), [](const Srv& x, const Srv& y) {
      return std::tie(x.target, x.port) < std::tie(y.target, y.port);
    });
    node.srv.erase(std::unique(node.srv.begin(), node.srv.end(),
                               [](const Srv& x, const Srv& y) {
                                 return x.target == y.target && x.port == y.port;
                               }),
                   node.srv.end());
  }
  return zone;
}

Answer Zone::Negative(uint8_t rcode) const {
  Answer answer;
  answer.rcode = rcode;
  // The SOA tells resolvers how long to remember that there is nothing (RFC 2308).
  answer.authority.push_back(
      {domain_, kTypeSoa, kClusterTtl,
       SoaRdata("ns.dns." + domain_, "hostmaster." + domain_, 1, kClusterTtl)});
  return answer;
}

std::optional<Answer> Zone::Lookup(const std::string& name, uint16_t type) const {
  if (name == domain_ || EndsWith(name, "." + domain_)) return LookupCluster(name, type);
  if (EndsWith(name, ".in-addr.arpa")) return LookupReverse(name, type);
  return std::nullopt;
}

std::optional<Answer> Zone::LookupCluster(const std::string& name, uint16_t type) const {
  if (name == domain_ && type == kTypeSoa) {
    Answer answer = Negative(kNoError);
    answer.answers = std::move(answer.authority);
    answer.authority.clear();
    return answer;
  }
  auto it = nodes_.find(name);
  if (it != nodes_.end()) {
    const Node& node = it->second;
    Answer answer = Negative(kNoError);
    if (!node.cname.empty()) {
      answer.answers.push_back({name, kTypeCname, kClusterTtl, NameRdata(node.cname)});
    } else if ((type == kTypeA || type == kTypeAny) && !node.a.empty()) {
      for (uint32_t ip : node.a) answer.answers.push_back({name, kTypeA, kClusterTtl, ARdata(ip)});
    } else if ((type == kTypeSrv || type == kTypeAny) && !node.srv.empty()) {
      uint16_t weight = static_cast<uint16_t>(100 / node.srv.size());
      for (const Srv& srv : node.srv) {
        answer.answers.push_back(
            {name, kTypeSrv, kClusterTtl,
             SrvRdata(0, std::max<uint16_t>(weight, 1), srv.port, srv.target)});
        if (auto target = nodes_.find(srv.target); target != nodes_.end()) {
          for (uint32_t ip : target->second.a) {
            answer.additional.push_back({srv.target, kTypeA, kClusterTtl, ARdata(ip)});
          }
        }
      }
    }
    if (!answer.answers.empty()) answer.authority.clear();
    return answer;  // no records of this type: NOERROR without answers (NODATA)
  }
  // The name exists as a parent of others (svc.cluster.local, ns.svc.cluster.local): NODATA.
  std::string prefix = name == domain_ ? "" : name.substr(0, name.size() - domain_.size() - 1);
  auto dot = prefix.find('.');
  std::string first = prefix.substr(0, dot);
  std::string rest = dot == std::string::npos ? "" : prefix.substr(dot + 1);
  if (prefix.empty() || prefix == "svc" || prefix == "pod" ||
      ((rest == "svc" || rest == "pod") && namespaces_.contains(first))) {
    return Negative(kNoError);
  }
  // a-b-c-d.ns.pod.<domain>: the address the name spells (CoreDNS's "pods insecure").
  if (EndsWith(rest, ".pod") && rest.find('.') == rest.size() - 4) {
    std::string dotted = first;
    std::replace(dotted.begin(), dotted.end(), '-', '.');
    if (auto ip = ParseIPv4(dotted)) {
      Answer answer = Negative(kNoError);
      if (type == kTypeA || type == kTypeAny) {
        answer.authority.clear();
        answer.answers.push_back({name, kTypeA, kClusterTtl, ARdata(*ip)});
      }
      return answer;
    }
  }
  return Negative(kNxDomain);
}

std::optional<Answer> Zone::LookupReverse(const std::string& name, uint16_t type) const {
  // d.c.b.a.in-addr.arpa
  std::string labels = name.substr(0, name.size() - std::string(".in-addr.arpa").size());
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t dot = labels.find('.', start);
    parts.push_back(labels.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.size() != 4) return std::nullopt;
  auto ip = ParseIPv4(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0]);
  if (!ip) return std::nullopt;
  auto it = ptr_.find(*ip);
  if (it == ptr_.end()) return std::nullopt;
  Answer answer;
  if (type == kTypePtr || type == kTypeAny) {
    answer.answers.push_back({name, kTypePtr, kClusterTtl, NameRdata(it->second)});
  }
  return answer;
}

}  // namespace orch::dns
