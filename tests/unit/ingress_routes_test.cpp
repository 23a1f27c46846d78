// Ingress routing (ingress/ingress_routes.h) and certificates (ingress_tls.h): class selection,
// Kubernetes' path semantics, host precedence, backends resolved through EndpointSlices, TLS
// hosts mapped to Secrets and Secrets turned into contexts.
#include "ingress_routes.h"

#include <catch2/catch.hpp>

#include "ingress_tls.h"
#include "orch/base64.h"
#include "orch/ingress.h"
#include "orch/pki.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using namespace orch::ingress;

ObjectPtr Ptr(json j) {
  return std::make_shared<const json>(std::move(j));
}

json Class(const std::string& name, const std::string& controller, bool is_default) {
  json c = {{"metadata", {{"name", name}}}, {"spec", {{"controller", controller}}}};
  if (is_default) c["metadata"]["annotations"][kDefaultClassAnnotation] = "true";
  return c;
}

json BackendRef(const std::string& service, json port) {
  return {{"service", {{"name", service}, {"port", port}}}};
}

json Path(const std::string& path, const std::string& type, const std::string& service,
          json port = {{"number", 80}}) {
  return {{"path", path}, {"pathType", type}, {"backend", BackendRef(service, port)}};
}

json Ingress(const std::string& name, const std::string& created, json rules,
             const std::string& class_name = "") {
  json ing = {
      {"metadata", {{"name", name}, {"namespace", "default"}, {"creationTimestamp", created}}},
      {"spec", {{"rules", rules}}}};
  if (!class_name.empty()) ing["spec"]["ingressClassName"] = class_name;
  return ing;
}

json Rule(const std::string& host, json paths) {
  json rule = {{"http", {{"paths", paths}}}};
  if (!host.empty()) rule["host"] = host;
  return rule;
}

json Service(const std::string& name) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"ports", json::array({{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}},
                                   {{"name", "admin"}, {"port", 9000}, {"protocol", "TCP"}}})}}}};
}

json Slice(const std::string& service, std::vector<std::pair<std::string, bool>> endpoints) {
  json eps = json::array();
  for (auto& [ip, ready] : endpoints) {
    eps.push_back({{"addresses", json::array({ip})}, {"conditions", {{"ready", ready}}}});
  }
  return {{"metadata",
           {{"name", service + "-abc"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}},
                                 {{"name", "admin"}, {"port", 9090}, {"protocol", "TCP"}}})},
          {"endpoints", eps}};
}

std::string BackendOf(const RouteTable& table, const std::string& host, const std::string& path) {
  auto b = table.Match(host, path);
  return b ? b->name : "404";
}

RouteInput BaseInput() {
  RouteInput in;
  in.classes = {Ptr(Class(orch::kIngressClassName, orch::kIngressControllerName, true)),
                Ptr(Class("nginx", "k8s.io/ingress-nginx", false))};
  for (const char* s : {"a", "b", "c", "d", "e"}) {
    in.services.push_back(Ptr(Service(s)));
    in.slices.push_back(Ptr(Slice(s, {{"10.42.0.10", true}})));
  }
  return in;
}

}  // namespace

TEST_CASE("Prefix paths match element by element") {
  CHECK(PrefixMatches("", "/"));
  CHECK(PrefixMatches("", "/anything"));
  CHECK(PrefixMatches("/foo", "/foo"));
  CHECK(PrefixMatches("/foo", "/foo/"));
  CHECK(PrefixMatches("/foo", "/foo/bar"));
  CHECK_FALSE(PrefixMatches("/foo", "/foobar"));
  CHECK_FALSE(PrefixMatches("/foo/bar", "/foo"));
  CHECK_FALSE(PrefixMatches("/foo", "/fo"));
}

TEST_CASE("Host headers are normalized") {
  CHECK(NormalizeHost("Foo.Example.COM:8080") == "foo.example.com");
  CHECK(NormalizeHost("foo.example.com.") == "foo.example.com");
  CHECK(NormalizeHost("[::1]:80") == "[::1]");
  CHECK(NormalizeHost("") == "");
}

TEST_CASE("Ingress classes: orch's, the default, others ignored") {
  std::vector<ObjectPtr> classes = {
      Ptr(Class("orch", orch::kIngressControllerName, true)),
      Ptr(Class("nginx", "k8s.io/ingress-nginx", false)),
  };
  json ing = Ingress("x", "2024-01-01T00:00:00Z", json::array());
  CHECK(ServedByOrch(ing, classes));  // no class: the default, which is orch's
  ing["spec"]["ingressClassName"] = "orch";
  CHECK(ServedByOrch(ing, classes));
  ing["spec"]["ingressClassName"] = "nginx";
  CHECK_FALSE(ServedByOrch(ing, classes));
  ing["spec"]["ingressClassName"] = "missing";
  CHECK_FALSE(ServedByOrch(ing, classes));
  ing["spec"].erase("ingressClassName");
  ing["metadata"]["annotations"][kLegacyClassAnnotation] = "nginx";
  CHECK_FALSE(ServedByOrch(ing, classes));
  // Without orch's class (--disable ingress) nothing is served, and no listener is wanted.
  std::vector<ObjectPtr> others = {classes[1]};
  CHECK_FALSE(ServedByOrch(Ingress("y", "", json::array()), others));
  CHECK_FALSE(AnyClassOfOrch(others));
  CHECK(AnyClassOfOrch(classes));
  // Another class of orch's controller is served too.
  classes.push_back(Ptr(Class("internal", orch::kIngressControllerName, false)));
  ing["metadata"]["annotations"][kLegacyClassAnnotation] = "internal";
  CHECK(ServedByOrch(ing, classes));
}

TEST_CASE("Routes: hosts, wildcards, longest path, Exact over Prefix, default backend") {
  RouteInput in = BaseInput();
  json ing1 =
      Ingress("one", "2024-01-01T00:00:00Z",
              json::array({Rule("foo.example.com",
                                json::array({Path("/", "Prefix", "a"), Path("/api", "Prefix", "b"),
                                             Path("/api/v2", "ImplementationSpecific", "c"),
                                             Path("/exact", "Exact", "d")})),
                           Rule("*.example.com", json::array({Path("/", "Prefix", "e")})),
                           Rule("", json::array({Path("/shared/", "Prefix", "c")}))}));
  ing1["spec"]["defaultBackend"] = BackendRef("d", {{"name", "http"}});
  // Newer: loses the conflicting path, adds its own; its default backend loses too.
  json ing2 = Ingress(
      "two", "2024-02-01T00:00:00Z",
      json::array({Rule("foo.example.com",
                        json::array({Path("/api", "Prefix", "e"), Path("/api", "Exact", "e")}))}));
  ing2["spec"]["defaultBackend"] = BackendRef("e", {{"number", 80}});
  json other = Ingress(
      "other", "2023-01-01T00:00:00Z",
      json::array({Rule("bar.example.com", json::array({Path("/", "Prefix", "a")}))}), "nginx");
  in.ingresses = {Ptr(ing2), Ptr(ing1), Ptr(other)};
  RouteTable t = BuildRouteTable(in);
  CHECK(t.ingresses == 2);

  CHECK(BackendOf(t, "foo.example.com", "/") == "default/a:80");
  CHECK(BackendOf(t, "foo.example.com", "/index.html") == "default/a:80");
  CHECK(BackendOf(t, "foo.example.com", "/api") == "default/e:80");  // Exact beats Prefix
  CHECK(BackendOf(t, "foo.example.com", "/api/") == "default/b:80");
  CHECK(BackendOf(t, "foo.example.com", "/api/x") == "default/b:80");
  CHECK(BackendOf(t, "foo.example.com", "/apix") == "default/a:80");
  CHECK(BackendOf(t, "foo.example.com", "/api/v2/users") == "default/c:80");  // longest
  CHECK(BackendOf(t, "foo.example.com", "/exact") == "default/d:80");
  CHECK(BackendOf(t, "foo.example.com", "/exact/") == "default/a:80");
  // Wildcards cover one label only; the other class's host is not served.
  CHECK(BackendOf(t, "bar.example.com", "/x") == "default/e:80");
  CHECK(BackendOf(t, "a.b.example.com", "/x") == "default/d:http");
  CHECK(BackendOf(t, "example.com", "/x") == "default/d:http");
  // Host-less rules apply to every host, after the host's own paths.
  CHECK(BackendOf(t, "other.test", "/shared") == "default/c:80");
  CHECK(BackendOf(t, "other.test", "/shared/x") == "default/c:80");
  CHECK(BackendOf(t, "other.test", "/sharedx") == "default/d:http");
  CHECK(BackendOf(t, "", "/shared") == "default/c:80");

  SECTION("without a default backend, unmatched requests get 404") {
    in.ingresses = {Ptr(Ingress(
        "only", "2024-01-01T00:00:00Z",
        json::array({Rule("foo.example.com", json::array({Path("/app", "Prefix", "a")}))})))};
    RouteTable t2 = BuildRouteTable(in);
    CHECK(BackendOf(t2, "foo.example.com", "/app/x") == "default/a:80");
    CHECK(BackendOf(t2, "foo.example.com", "/") == "404");
    CHECK(BackendOf(t2, "other.example.com", "/app") == "404");
  }
}

TEST_CASE("Backends: ready endpoints by port number or name, shared round robin") {
  RouteInput in = BaseInput();
  in.slices = {Ptr(Slice("a", {{"10.42.0.12", true}, {"10.42.0.11", true}, {"10.42.0.13", false}})),
               Ptr(Slice("b", {{"10.42.0.20", false}}))};
  in.ingresses = {Ptr(Ingress(
      "x", "2024-01-01T00:00:00Z",
      json::array(
          {Rule("", json::array({Path("/num", "Prefix", "a"),
                                 Path("/name", "Prefix", "a", {{"name", "admin"}}),
                                 Path("/again", "Prefix", "a"), Path("/unready", "Prefix", "b"),
                                 Path("/missing", "Prefix", "nosuch"),
                                 Path("/badport", "Prefix", "a", {{"number", 81}})}))})))};
  RouteTable t = BuildRouteTable(in);
  auto num = t.Match("h", "/num");
  REQUIRE(num);
  REQUIRE(num->endpoints.size() == 2);  // the unready one is left out
  CHECK(num->endpoints[0] == Endpoint{"10.42.0.11", 8080});
  CHECK(num->endpoints[1] == Endpoint{"10.42.0.12", 8080});
  auto by_name = t.Match("h", "/name");
  REQUIRE(by_name);
  CHECK(by_name->endpoints[0].port == 9090);
  // The same Service port is one backend: round robin across paths.
  CHECK(t.Match("h", "/again").get() == num.get());
  std::string first = num->Pick()->ip;
  std::string second = num->Pick()->ip;
  CHECK(first != second);
  CHECK(num->Pick()->ip == first);
  // No ready endpoints, no Service, no such port: a backend without endpoints (503).
  for (const char* path : {"/unready", "/missing", "/badport"}) {
    auto b = t.Match("h", path);
    REQUIRE(b);
    CHECK(b->endpoints.empty());
    CHECK(b->Pick() == nullptr);
  }
  // The Services the table depends on, so the proxy can ignore changes to all others.
  CHECK(t.services == std::unordered_set<std::string>{"default/a", "default/b", "default/nosuch"});
}

TEST_CASE("TLS hosts map to Secrets, by exact name then wildcard") {
  RouteInput in = BaseInput();
  json ing =
      Ingress("x", "2024-01-01T00:00:00Z",
              json::array({Rule("secure.example.com", json::array({Path("/", "Prefix", "a")})),
                           Rule("implicit.example.com", json::array({Path("/", "Prefix", "a")}))}));
  ing["spec"]["tls"] =
      json::array({{{"hosts", json::array({"secure.example.com", "*.wild.example.com"})},
                    {"secretName", "one"}},
                   {{"secretName", "two"}}});
  in.ingresses = {Ptr(ing)};
  RouteTable t = BuildRouteTable(in);
  CHECK(t.TlsSecretFor("secure.example.com") == "default/one");
  CHECK(t.TlsSecretFor("SECURE.example.com") == "default/one");
  CHECK(t.TlsSecretFor("a.wild.example.com") == "default/one");
  CHECK(t.TlsSecretFor("a.b.wild.example.com") == "");
  CHECK(t.TlsSecretFor("implicit.example.com") == "default/two");  // no hosts: the rules'
  CHECK(t.TlsSecretFor("unknown.example.com") == "");
}

TEST_CASE("TLS store: certificates from Secrets, bad ones fall back to the default") {
  auto ca = orch::pki::CreateCA("test CA");
  REQUIRE(ca.ok());
  orch::pki::CertificateRequest request;
  request.common_name = "secure.example.com";
  request.dns_names = {"secure.example.com"};
  request.server = true;
  auto leaf = orch::pki::IssueCertificate(*ca, request);
  REQUIRE(leaf.ok());

  auto secret = [](const std::string& name, const std::string& crt, const std::string& key) {
    return Ptr(
        {{"metadata",
          {{"name", name}, {"namespace", "default"}, {"uid", name}, {"resourceVersion", "1"}}},
         {"type", "kubernetes.io/tls"},
         {"data", {{"tls.crt", orch::Base64Encode(crt)}, {"tls.key", orch::Base64Encode(key)}}}});
  };
  RouteInput in = BaseInput();
  json ing = Ingress("x", "2024-01-01T00:00:00Z", json::array());
  ing["spec"]["tls"] =
      json::array({{{"hosts", json::array({"secure.example.com"})}, {"secretName", "good"}},
                   {{"hosts", json::array({"broken.example.com"})}, {"secretName", "bad"}},
                   {{"hosts", json::array({"absent.example.com"})}, {"secretName", "absent"}}});
  in.ingresses = {Ptr(ing)};
  auto table = std::make_shared<const RouteTable>(BuildRouteTable(in));

  auto store = TlsStore::Create();
  REQUIRE(store.ok());
  (*store)->Update(table, {secret("good", leaf->cert_pem, leaf->key_pem),
                           secret("bad", leaf->cert_pem, ca->key_pem)});
  CHECK((*store)->SecretFor("secure.example.com") == "default/good");
  CHECK((*store)->SecretFor("broken.example.com") == "");  // key does not match
  CHECK((*store)->SecretFor("absent.example.com") == "");
  CHECK((*store)->SecretFor("other.example.com") == "");

  CHECK_FALSE(MakeServerContext("not a certificate", leaf->key_pem).ok());
  CHECK(MakeServerContext(leaf->cert_pem, leaf->key_pem).ok());
}
