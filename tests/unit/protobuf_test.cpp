// Tests of the protobuf body decoder: hand-encoded Kubernetes messages (ConfigMap, Deployment,
// Eviction, special types) against the built-in schemas, and malformed or random input.
#include "protobuf.h"

#include <catch2/catch.hpp>
#include <random>

#include "schema_loader.h"

using namespace orch::api;

namespace {

// ---- a tiny protobuf encoder ----

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}
std::string Tag(int field, int wire) {
  return Varint(static_cast<uint64_t>(field) << 3 | wire);
}
// A varint field (ints, bools, negative numbers as 10-byte two's complement).
std::string I(int field, int64_t v) {
  return Tag(field, 0) + Varint(static_cast<uint64_t>(v));
}
// A length-delimited field: strings, bytes, messages, packed runs.
std::string S(int field, std::string_view s) {
  return Tag(field, 2) + Varint(s.size()) + std::string(s);
}
std::string MapEntry(int field, std::string_view key, std::string_view value) {
  return S(field, S(1, key) + S(2, value));
}
std::string Envelope(std::string_view api_version, std::string_view kind, std::string_view raw) {
  return std::string("k8s\0", 4) + S(1, S(1, api_version) + S(2, kind)) + S(2, raw) + S(3, "") +
         S(4, "");
}

// ObjectMeta as gogo writes it: every non-pointer string and int, an empty creationTimestamp.
std::string Meta(std::string_view name, std::string_view ns, const std::string& extra = "") {
  return S(1, name) + S(2, "") + S(3, ns) + S(4, "") + S(5, "") + S(6, "") + I(7, 0) + S(8, "") +
         extra;
}

const SchemaSet& Schemas() {
  static std::unique_ptr<SchemaSet> set = [] {
    auto r = LoadBuiltinSchemas();
    REQUIRE(r.ok());
    return std::move(r).value();
  }();
  return *set;
}

json Decode(const std::string& body, const Schema* expected = nullptr) {
  auto r = DecodeProtobufObject(body, Schemas(), expected);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

std::string DecodeError(const std::string& body, const Schema* expected = nullptr) {
  auto r = DecodeProtobufObject(body, Schemas(), expected);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == orch::StatusCode::kInvalidArgument);
  return r.status().message();
}

std::string ConfigMapBody() {
  std::string raw = S(1, Meta("c", "default", MapEntry(11, "app", "web"))) + MapEntry(2, "a", "b") +
                    MapEntry(2, "empty", "") + MapEntry(3, "bin", std::string("\x00\x01\xff", 3)) +
                    I(4, 0);
  return Envelope("v1", "ConfigMap", raw);
}

std::string DeploymentBody() {
  std::string container =
      S(1, "nginx") + S(2, "nginx:1.25") + S(3, "nginx") + S(3, "-g") + S(5, "") +
      S(6, S(1, "") + I(2, 0) + I(3, 80) + S(4, "TCP") + S(5, "")) +
      S(8, MapEntry(1, "cpu", S(1, "500m")) + MapEntry(1, "memory", S(1, "128Mi")) +
               MapEntry(2, "cpu", S(1, "250m"))) +
      S(13, "") + S(14, "") + I(16, 0) + I(17, 0) + I(18, 0) + S(20, "");
  std::string sidecar = S(1, "log") + S(2, "busybox") + S(8, "");
  std::string pod_spec = S(2, container) + S(2, sidecar) + S(3, "") + S(6, "") + I(11, 0) +
                         S(14, I(2, 1000) + I(4, 1) + S(4, Varint(2) + Varint(3)));
  std::string template_ = S(1, Meta("", "", MapEntry(11, "app", "web"))) + S(2, pod_spec);
  std::string strategy =
      S(1, "RollingUpdate") + S(2, S(1, I(1, 0) + I(2, 0) + S(3, "")) +  // maxUnavailable: 0
                                       S(2, I(1, 1) + I(2, 0) + S(3, "30%")));
  std::string spec = I(1, 2) + S(2, S(1, S(1, "app") + S(2, "web"))) + S(3, template_) +
                     S(4, strategy) + I(5, 0) + I(7, 0) + I(9, 600);
  std::string meta = Meta("web", "", MapEntry(11, "app", "web"));
  // creationTimestamp with a time (replaces the empty one: the last occurrence wins).
  meta += S(8, I(1, 1700000000) + I(2, 123456789));
  return Envelope("apps/v1", "Deployment", S(1, meta) + S(2, spec) + S(3, ""));
}

std::string EvictionBody() {
  std::string options = I(1, 0) + S(5, "All");
  return Envelope("policy/v1", "Eviction",
                  S(1, S(1, "p") + S(3, "default") + S(8, "")) + S(2, options));
}

}  // namespace

TEST_CASE("protobuf: ConfigMap with maps, bytes and zero values") {
  json cm = Decode(ConfigMapBody());
  json want = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata",
                {{"name", "c"},
                 {"namespace", "default"},
                 {"creationTimestamp", nullptr},
                 {"labels", {{"app", "web"}}}}},
               {"data", {{"a", "b"}, {"empty", ""}}},
               {"binaryData", {{"bin", "AAH/"}}},
               {"immutable", false}};  // *bool: a zero on the wire is a set value
  CHECK(cm == want);
}

TEST_CASE("protobuf: Deployment with nested messages, lists and special types") {
  json d = Decode(DeploymentBody());
  CHECK(d["apiVersion"] == "apps/v1");
  CHECK(d["kind"] == "Deployment");
  CHECK(d["metadata"] == json{{"name", "web"},
                              {"labels", {{"app", "web"}}},
                              {"creationTimestamp", "2023-11-14T22:13:20Z"}});
  const json& spec = d["spec"];
  CHECK(spec["replicas"] == 2);
  CHECK(spec["selector"] == json{{"matchLabels", {{"app", "web"}}}});
  CHECK(spec["progressDeadlineSeconds"] == 600);
  CHECK_FALSE(spec.contains("paused"));           // omitzero
  CHECK_FALSE(spec.contains("minReadySeconds"));  // omitzero
  CHECK(spec["strategy"] == json{{"type", "RollingUpdate"},
                                 {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", "30%"}}}});
  const json& tmpl = spec["template"];
  CHECK(tmpl["metadata"] == json{{"labels", {{"app", "web"}}}, {"creationTimestamp", nullptr}});
  const json& pod = tmpl["spec"];
  REQUIRE(pod["containers"].size() == 2);
  CHECK(pod["containers"][0] == json{{"name", "nginx"},
                                     {"image", "nginx:1.25"},
                                     {"command", {"nginx", "-g"}},
                                     {"ports", {{{"containerPort", 80}, {"protocol", "TCP"}}}},
                                     {"resources",
                                      {{"limits", {{"cpu", "500m"}, {"memory", "128Mi"}}},
                                       {"requests", {{"cpu", "250m"}}}}}});
  CHECK(pod["containers"][1] ==
        json{{"name", "log"}, {"image", "busybox"}, {"resources", json::object()}});
  // Unpacked and packed repeated ints concatenate.
  CHECK(pod["securityContext"] == json{{"runAsUser", 1000}, {"supplementalGroups", {1, 2, 3}}});
  CHECK(pod.size() == 2);  // restartPolicy, dnsPolicy and hostNetwork were zero: omitted
  CHECK(d["status"] == json::object());
}

TEST_CASE("protobuf: Eviction keeps a zero grace period") {
  json e = Decode(EvictionBody());
  CHECK(e == json{{"apiVersion", "policy/v1"},
                  {"kind", "Eviction"},
                  {"metadata",
                   {{"name", "p"}, {"namespace", "default"}, {"creationTimestamp", nullptr}}},
                  {"deleteOptions", {{"gracePeriodSeconds", 0}, {"dryRun", {"All"}}}}});
}

TEST_CASE("protobuf: the kind comes from TypeMeta, else from the expected schema") {
  const Schema* cm = Schemas().FindKind("", "v1", "ConfigMap");
  REQUIRE(cm != nullptr);
  std::string raw = MapEntry(2, "k", "v");
  // No TypeMeta kind: decoded as the expected kind, without apiVersion/kind.
  std::string body = std::string("k8s\0", 4) + S(2, S(1, S(1, "x")) + raw);
  json obj = Decode(body, cm);
  CHECK(obj == json{{"metadata", {{"name", "x"}}}, {"data", {{"k", "v"}}}});
  // A kind orch has no schema of, without a fallback.
  CHECK(DecodeError(Envelope("v1", "Nope", raw)).find("no protobuf schema for kind \"Nope\"") !=
        std::string::npos);
}

TEST_CASE("protobuf: inline structs, probes, durations, micro times, raw extensions") {
  std::string volume = S(1, "data") + S(2, S(1, S(1, "/var/data") + S(2, "Directory")));
  std::string probe = S(1, S(1, S(1, "true"))) + I(2, 0) + I(3, 5);
  std::string container = S(1, "c") + S(2, "i") + S(10, probe);
  std::string pod =
      Envelope("v1", "Pod", S(1, S(1, "p")) + S(2, S(1, volume) + S(2, container) + I(4, 0)));
  json p = Decode(pod);
  CHECK(p["spec"]["volumes"] ==
        json::array(
            {{{"name", "data"}, {"hostPath", {{"path", "/var/data"}, {"type", "Directory"}}}}}));
  CHECK(p["spec"]["containers"][0]["livenessProbe"] ==
        json{{"exec", {{"command", {"true"}}}}, {"timeoutSeconds", 5}});
  CHECK(p["spec"]["terminationGracePeriodSeconds"] == 0);  // *int64

  std::string event = Envelope("v1", "Event",
                               S(1, S(1, "e")) + S(10, I(1, 1700000000) + I(2, 123456789)) +
                                   S(6, I(1, -1)) + S(7, I(1, -62135596800)));
  json ev = Decode(event);
  CHECK(ev["eventTime"] == "2023-11-14T22:13:20.123456Z");
  CHECK(ev["firstTimestamp"] == "1969-12-31T23:59:59Z");
  CHECK(ev["lastTimestamp"] == nullptr);  // Go's zero time

  std::string revision =
      Envelope("apps/v1", "ControllerRevision",
               S(1, S(1, "r")) + S(2, S(1, R"({"spec":{"a":[1,2]}})")) + I(3, 7));
  CHECK(Decode(revision)["data"] == json{{"spec", {{"a", {1, 2}}}}});
  CHECK(Decode(Envelope("apps/v1", "ControllerRevision", S(2, "")))["data"] == nullptr);
  // An embedded protobuf object in a RawExtension.
  std::string nested = Envelope("apps/v1", "ControllerRevision", S(2, S(1, ConfigMapBody())));
  CHECK(Decode(nested)["data"]["data"]["a"] == "b");

  CHECK(GoDurationString(0) == "0s");
  CHECK(GoDurationString(1) == "1ns");
  CHECK(GoDurationString(1500) == "1.5\xc2\xb5s");
  CHECK(GoDurationString(300000000) == "300ms");
  CHECK(GoDurationString(1500000000) == "1.5s");
  CHECK(GoDurationString(3723000000000) == "1h2m3s");
  CHECK(GoDurationString(-90000000000) == "-1m30s");
  CHECK(GoDurationString(3600000000000) == "1h0m0s");
  CHECK(GoDurationString(INT64_MIN) == "-2562047h47m16.854775808s");
}

TEST_CASE("protobuf: Secret, Service and CRD schema unions") {
  std::string secret =
      Envelope("v1", "Secret", S(1, S(1, "s")) + MapEntry(2, "p", "q") + S(3, "Opaque"));
  CHECK(Decode(secret) == json{{"apiVersion", "v1"},
                               {"kind", "Secret"},
                               {"metadata", {{"name", "s"}}},
                               {"data", {{"p", "cQ=="}}},
                               {"type", "Opaque"}});
  // ServicePort: targetPort 8080 as IntOrString, a zero nodePort is omitted.
  std::string port =
      S(1, "80-8080") + S(2, "TCP") + I(3, 80) + S(4, I(1, 0) + I(2, 8080)) + I(5, 0);
  json svc =
      Decode(Envelope("v1", "Service", S(1, S(1, "svc")) + S(2, S(1, port) + S(4, "ClusterIP"))));
  CHECK(svc["spec"] ==
        json{{"ports",
              {{{"name", "80-8080"}, {"protocol", "TCP"}, {"port", 80}, {"targetPort", 8080}}}},
             {"type", "ClusterIP"}});

  // JSONSchemaProps: properties map, items (schema), additionalProperties (bool), default (JSON),
  // x-kubernetes-preserve-unknown-fields, dependencies (string array).
  std::string props = S(5, "object") + S(4, "") + S(29, S(1, "size") + S(2, S(5, "integer"))) +
                      S(30, I(1, 0)) + S(8, S(1, "{\"size\":1}")) + I(38, 1) +
                      S(24, S(1, S(5, "string"))) + S(32, S(1, "a") + S(2, S(2, "b") + S(2, "c")));
  // The 8-byte double of 9 ("maximum") goes in as fixed64 (wire type 1).
  std::string max = Tag(9, 1) + std::string("\x00\x00\x00\x00\x00\x00\x22\x40", 8);
  std::string size_props = S(5, "integer") + max;
  props += S(29, S(1, "n") + S(2, size_props));
  std::string version = S(1, "v1") + I(2, 1) + I(3, 1) + S(4, S(1, props));
  std::string crd = Envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                             S(1, S(1, "crontabs.example.com")) +
                                 S(2, S(1, "example.com") + S(4, "Namespaced") + S(7, version)));
  json c = Decode(crd);
  const json& schema = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  INFO(schema.dump());
  CHECK(schema["type"] == "object");
  CHECK_FALSE(schema.contains("description"));
  CHECK(schema["additionalProperties"] == false);
  CHECK(schema["default"] == json{{"size", 1}});
  CHECK(schema["x-kubernetes-preserve-unknown-fields"] == true);
  CHECK(schema["items"] == json{{"type", "string"}});
  CHECK(schema["dependencies"] == json{{"a", {"b", "c"}}});
  CHECK(schema["properties"]["size"] == json{{"type", "integer"}});
  CHECK(schema["properties"]["n"] == json{{"type", "integer"}, {"maximum", 9.0}});
  CHECK(c["spec"]["versions"][0]["served"] == true);
}

TEST_CASE("protobuf: invalid UTF-8 becomes U+FFFD and the JSON always serializes") {
  std::string cm =
      Envelope("v1", "ConfigMap", S(1, S(1, "c")) + MapEntry(2, std::string("k\xff", 2), "\xc3(x"));
  json obj = Decode(cm);
  CHECK(obj["data"] == json{{"k\xef\xbf\xbd", "\xef\xbf\xbd(x"}});
  CHECK_NOTHROW(obj.dump());
}

TEST_CASE("protobuf: malformed input is an error") {
  CHECK(DecodeError("").find("missing the k8s") != std::string::npos);
  CHECK(DecodeError("{\"kind\":\"Pod\"}").find("missing the k8s") != std::string::npos);
  CHECK(DecodeError(std::string("k8s\0\x0a\x05", 6)).find("truncated") != std::string::npos);
  CHECK(DecodeError(std::string("k8s\0\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16))
            .find("varint") != std::string::npos);
  // Groups (wire types 3, 4) and field number 0 are not Kubernetes protobuf.
  CHECK(DecodeError(std::string("k8s\0\x0b", 5)).find("wire type 3") != std::string::npos);
  CHECK(DecodeError(std::string("k8s\0\x02\x00", 6)).find("field number") != std::string::npos);
  // A string where a message belongs, a varint where a string belongs.
  CHECK(DecodeError(Envelope("v1", "ConfigMap", I(1, 5))).find("metadata") != std::string::npos);
  CHECK(DecodeError(Envelope("v1", "ConfigMap", S(1, I(1, 5)))).find("metadata.name") !=
        std::string::npos);
  CHECK(DecodeError(Envelope("v1", "ConfigMap", S(1, S(8, I(1, 1LL << 60)))))
            .find("time out of range") != std::string::npos);
  CHECK(DecodeError(Envelope("apps/v1", "ControllerRevision", S(2, S(1, "{nope"))))
            .find("not valid JSON") != std::string::npos);
  CHECK(DecodeError(Envelope("apps/v1", "Deployment", S(2, S(4, S(2, S(2, I(1, 7)))))))
            .find("IntOrString") != std::string::npos);
  std::string gz = std::string("k8s\0", 4) + S(1, S(1, "v1") + S(2, "ConfigMap")) + S(3, "gzip");
  CHECK(DecodeError(gz).find("content encoding") != std::string::npos);
  // Nesting: JSONSchemaProps `not` 150 levels deep.
  std::string deep = S(5, "string");
  for (int i = 0; i < 150; ++i) deep = S(28, deep);
  std::string crd =
      Envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", S(2, S(7, S(4, S(1, deep)))));
  CHECK(DecodeError(crd).find("nested too deeply") != std::string::npos);
  // Deep JSON inside a RawExtension.
  std::string deep_json = std::string(200, '[') + std::string(200, ']');
  CHECK(DecodeError(Envelope("apps/v1", "ControllerRevision", S(2, S(1, deep_json))))
            .find("nested too deeply") != std::string::npos);
  // Self-embedding raw extensions stop at the depth limit too.
  std::string nest = ConfigMapBody();
  for (int i = 0; i < 120; ++i) nest = Envelope("apps/v1", "ControllerRevision", S(2, S(1, nest)));
  CHECK(DecodeError(nest).find("nested too deeply") != std::string::npos);
}

TEST_CASE("protobuf: random bytes, truncations and bit flips never crash") {
  std::vector<std::string> seeds = {ConfigMapBody(), DeploymentBody(), EvictionBody()};
  std::mt19937 rng(12345);
  auto check = [](const std::string& body) {
    auto r = DecodeProtobufObject(body, Schemas(), Schemas().FindKind("apps", "v1", "Deployment"));
    if (r.ok()) {
      CHECK(r->is_object());
      CHECK_NOTHROW(r->dump());
    } else {
      CHECK_FALSE(r.status().message().empty());
    }
  };
  size_t cases = 0;
  for (const std::string& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n, ++cases) check(seed.substr(0, n));
    for (int i = 0; i < 3000; ++i, ++cases) {
      std::string m = seed;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        size_t at = 4 + rng() % (m.size() - 4);
        if (rng() % 2 == 0) {
          m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8)));
        } else {
          m[at] = static_cast<char>(rng());
        }
      }
      check(m);
    }
  }
  for (int i = 0; i < 5000; ++i, ++cases) {
    std::string m("k8s\0", 4);
    size_t len = rng() % 200;
    for (size_t k = 0; k < len; ++k) m += static_cast<char>(rng());
    check(m);
    check(m.substr(4));
  }
  WARN(cases << " fuzz cases");
}
