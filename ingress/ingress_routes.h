// The ingress proxy's routing, a pure function of the API objects: which Ingresses orch serves,
// the route table built from them (hosts, paths, backends with their ready endpoints, TLS hosts)
// and the lookup of a request's backend. Exposed for tests and benchmarks.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "orch/informer.h"
#include "orch/json_path.h"

namespace orch::ingress {

using json = nlohmann::json;

// The value at `path` in `object` (null when absent), and as a string ("" when not a string).
using json_path::Field;
using json_path::String;

inline constexpr char kDefaultClassAnnotation[] = "ingressclass.kubernetes.io/is-default-class";
inline constexpr char kLegacyClassAnnotation[] = "kubernetes.io/ingress.class";

// Whether some IngressClass names orch's controller (then the nodes listen on 80 and 443).
bool AnyClassOfOrch(const std::vector<ObjectPtr>& classes);

// Whether orch serves `ingress`: its spec.ingressClassName (or the deprecated
// kubernetes.io/ingress.class annotation) names a class of orch's controller, or it names none
// and a default class (is-default-class "true") is orch's.
bool ServedByOrch(const json& ingress, const std::vector<ObjectPtr>& classes);

struct Endpoint {
  std::string ip;
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// One Service port as a backend, shared by every path that names it (so its round robin is too).
struct Backend {
  std::string name;                 // "ns/service:port", for logs and error pages
  std::vector<Endpoint> endpoints;  // ready ones, sorted; empty: 503
  mutable std::atomic<uint64_t> next{0};

  // The endpoint for the next request (round robin), or null when there is none. Thread-safe.
  const Endpoint* Pick() const;
};

enum class PathType { kExact, kPrefix };

struct PathRoute {
  std::string path;  // Prefix: without a trailing slash ("" = "/", matches every path)
  PathType type = PathType::kPrefix;
  std::shared_ptr<const Backend> backend;
};

// The paths of one host, in match order: longest path first, Exact before Prefix at equal
// length, older Ingress first.
using HostRoutes = std::vector<PathRoute>;

struct RouteTable {
  std::unordered_map<std::string, HostRoutes> exact_hosts;     // "foo.example.com"
  std::unordered_map<std::string, HostRoutes> wildcard_hosts;  // "*.example.com" by "example.com"
  HostRoutes any_host;                                         // rules without a host
  std::shared_ptr<const Backend> default_backend;              // oldest Ingress's defaultBackend
  // TLS: secret ("ns/name") by host, exact and wildcard ("*.example.com" by "example.com").
  std::unordered_map<std::string, std::string> tls_exact;
  std::unordered_map<std::string, std::string> tls_wildcard;
  size_t ingresses = 0;  // served Ingresses, for logs
  // "ns/name" of every Service a served Ingress names: changes to other Services and their
  // EndpointSlices cannot change the table.
  std::unordered_set<std::string> services;

  // The backend for a request, or null (404). `host` is the Host header (lowercase, without the
  // port), `path` the request target without the query. An exact host's routes come first, then
  // the wildcard's, then the host-less ones, then the default backend.
  std::shared_ptr<const Backend> Match(std::string_view host, std::string_view path) const;
  // The secret ("ns/name") of the TLS certificate for an SNI name, "" for the default one.
  std::string TlsSecretFor(std::string_view server_name) const;
};

struct RouteInput {
  std::vector<ObjectPtr> ingresses;
  std::vector<ObjectPtr> classes;
  std::vector<ObjectPtr> services;
  std::vector<ObjectPtr> slices;  // discovery.k8s.io/v1 EndpointSlices
};

RouteTable BuildRouteTable(const RouteInput& input);

// Kubernetes' Prefix match, element by element: "/foo" (or "/foo/") matches "/foo", "/foo/" and
// "/foo/bar", not "/foobar". `prefix` as in PathRoute (no trailing slash).
bool PrefixMatches(std::string_view prefix, std::string_view path);

// The Host header reduced to what rules name: lowercase, without the port and a trailing dot.
std::string NormalizeHost(std::string_view host);

}  // namespace orch::ingress
