// Tests of field validation (unknown fields, decode type errors), defaulting, and the CRD path:
// schema conversion, structural errors, value validation and pruning.
#include "schema_validate.h"

#include <catch2/catch.hpp>

#include "schema_loader.h"

using namespace orch::api;

namespace {

constexpr const char* kMeta = R"(package io.k8s.apimachinery.pkg.apis.meta.v1
type ObjectMeta
  name string
  namespace string
  labels map[string]
  annotations map[string]
  creationTimestamp Time nullable
type ListMeta
  resourceVersion string
type LabelSelector maptype=atomic
  matchLabels map[string]
type Time = string format=date-time
package io.k8s.apimachinery.pkg.api.resource
type Quantity = quantity
package io.k8s.apimachinery.pkg.util.intstr
type IntOrString = int-or-string
package io.k8s.apimachinery.pkg.runtime
type RawExtension = any
)";

constexpr const char* kApps = R"(package io.k8s.api.apps.v1
type Deployment gvk=apps/v1/Deployment
  apiVersion string
  kind string
  metadata ObjectMeta default={}
  spec DeploymentSpec default={}
type DeploymentSpec
  replicas int32 default=1
  selector LabelSelector
  template io.k8s.api.core.v1.PodTemplateSpec default={}
  strategy DeploymentStrategy default={}
  extra RawExtension
type DeploymentStrategy
  type string default="RollingUpdate"
  rollingUpdate RollingUpdate
type RollingUpdate
  maxSurge IntOrString default="25%"
)";

constexpr const char* kCore = R"(package io.k8s.api.core.v1
type PodTemplateSpec
  metadata ObjectMeta default={}
  spec PodSpec default={}
type PodSpec
  containers []Container merge=name
  restartPolicy string default="Always"
  terminationGracePeriodSeconds int64 default=30
  overhead map[Quantity]
type Container
  name string required
  image string
  ports []ContainerPort
  resources ResourceRequirements default={}
  secretData map[bytes]
type ContainerPort
  containerPort int32 required
  protocol string default="TCP"
type ResourceRequirements
  limits map[Quantity]
)";

const SchemaSet& Builtins() {
  static std::unique_ptr<SchemaSet> set = [] {
    auto r = LoadSchemas({{"meta.schema", kMeta}, {"apps.schema", kApps}, {"core.schema", kCore}});
    if (!r.ok()) FAIL(r.status().ToString());
    return std::move(r).value();
  }();
  return *set;
}

const Schema& Deployment() {
  return *Builtins().FindKind("apps", "v1", "Deployment");
}

json Deploy(json spec) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}}},
          {"spec", std::move(spec)}};
}

std::string FirstTypeError(const json& obj) {
  FieldCheck c = ValidateFields(obj, Deployment(), ValidationMode::kStrict);
  REQUIRE_FALSE(c.type_errors.empty());
  return c.type_errors.front();
}

}  // namespace

TEST_CASE("unknown fields in Strict, Warn and Ignore modes, with upstream paths") {
  json obj =
      Deploy({{"replicas", 2},
              {"foo", 1},
              {"template",
               {{"spec",
                 {{"containers",
                   json::array({{{"name", "a"}},
                                {{"name", "b"},
                                 {"bar", true},
                                 {"ports", {{{"containerPort", 80}, {"hostIP2", "x"}}}}}})}}}}}});
  obj["extra"] = "x";
  obj["metadata"]["baz"] = 1;
  obj["metadata"]["labels"] = {{"any-key", "v"}};        // maps accept any key
  obj["spec"]["extra"] = {{"whatever", {{"deep", 1}}}};  // RawExtension: kept as is

  FieldCheck strict = ValidateFields(obj, Deployment(), ValidationMode::kStrict);
  CHECK(strict.type_errors.empty());
  CHECK(strict.unknown_fields ==
        std::vector<std::string>{"extra", "metadata.baz", "spec.foo",
                                 "spec.template.spec.containers[1].bar",
                                 "spec.template.spec.containers[1].ports[0].hostIP2"});
  CHECK(strict.warnings.empty());
  CHECK(strict.StrictError() ==
        "strict decoding error: unknown field \"extra\", unknown field \"metadata.baz\", unknown "
        "field \"spec.foo\", unknown field \"spec.template.spec.containers[1].bar\", unknown "
        "field \"spec.template.spec.containers[1].ports[0].hostIP2\"");

  FieldCheck warn = ValidateFields(obj, Deployment(), ValidationMode::kWarn);
  CHECK(warn.unknown_fields.size() == 5);
  REQUIRE(warn.warnings.size() == 5);
  CHECK(warn.warnings[0] == "unknown field \"extra\"");
  CHECK(warn.warnings[3] == "unknown field \"spec.template.spec.containers[1].bar\"");

  FieldCheck ignore = ValidateFields(obj, Deployment(), ValidationMode::kIgnore);
  CHECK(ignore.unknown_fields.empty());
  CHECK(ignore.warnings.empty());
  CHECK(ignore.StrictError().empty());

  CHECK(ValidateFields(Deploy({{"replicas", 1}}), Deployment(), ValidationMode::kStrict)
            .unknown_fields.empty());
}

TEST_CASE("decode type errors use the Go decoder's wording") {
  CHECK(FirstTypeError(Deploy({{"replicas", "3"}})) ==
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type "
        "int32");
  CHECK(FirstTypeError(Deploy({{"replicas", 1.5}})) ==
        "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of "
        "type int32");
  CHECK(
      FirstTypeError(Deploy({{"replicas", 3000000000LL}})) ==
      "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas "
      "of type int32");
  json containers = {{"template", {{"spec", {{"containers", {{{"name", "a"}, {"image", 5}}}}}}}}};
  CHECK(FirstTypeError(Deploy(containers)) ==
        "json: cannot unmarshal number into Go struct field Container.spec.template.spec."
        "containers.image of type string");
  json not_a_list = {{"template", {{"spec", {{"containers", {{"name", "a"}}}}}}}};
  CHECK(FirstTypeError(Deploy(not_a_list)) ==
        "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
        "of type []v1.Container");
  CHECK(FirstTypeError(Deploy({{"strategy", "fast"}})) ==
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.strategy of type "
        "v1.DeploymentStrategy");
  json labels = Deploy({});
  labels["metadata"]["labels"] = {{"a", 1}};
  CHECK(FirstTypeError(labels) ==
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
        "string");
  CHECK(FirstTypeError(Deploy({{"selector", {{"matchLabels", {{"a", true}}}}}})) ==
        "json: cannot unmarshal bool into Go struct field LabelSelector.spec.selector.matchLabels "
        "of type string");
  CHECK(FirstTypeError(json::array()) ==
        "json: cannot unmarshal array into Go value of type v1.Deployment");
  json limits = {
      {"template",
       {{"spec",
         {{"containers", {{{"name", "a"}, {"resources", {{"limits", {{"cpu", "lots"}}}}}}}}}}}}};
  CHECK(FirstTypeError(Deploy(limits)) ==
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  json surge = {{"strategy", {{"rollingUpdate", {{"maxSurge", true}}}}}};
  CHECK(FirstTypeError(Deploy(surge)) == "json: cannot unmarshal bool into Go value of type int32");
  json secret = {
      {"template",
       {{"spec", {{"containers", {{{"name", "a"}, {"secretData", {{"k", "not base64!"}}}}}}}}}}};
  CHECK(FirstTypeError(Deploy(secret)) == "illegal base64 data at input byte 3");

  // Valid values of the special types pass; null decodes into anything.
  json ok = json::parse(R"({"spec": {
      "replicas": null,
      "strategy": {"rollingUpdate": {"maxSurge": 1}},
      "template": {"spec": {
        "overhead": {"cpu": 1, "memory": "1Gi"},
        "containers": [{"name": "a", "secretData": {"k": "aGk="}}]}}}})");
  FieldCheck c = ValidateFields(ok, Deployment(), ValidationMode::kStrict);
  CHECK(c.type_errors.empty());
  CHECK(c.unknown_fields.empty());
}

TEST_CASE("defaults fill absent fields recursively, in lists and through default={}") {
  json obj = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}};
  ApplyDefaults(obj, Deployment());
  // default={} chains: spec -> template -> spec, each then defaulted itself.
  CHECK(obj["metadata"] == json::object());
  CHECK(obj["spec"]["replicas"] == 1);
  CHECK(obj["spec"]["strategy"] == json{{"type", "RollingUpdate"}});
  CHECK(obj["spec"]["template"]["metadata"] == json::object());
  CHECK(obj["spec"]["template"]["spec"] ==
        json{{"restartPolicy", "Always"}, {"terminationGracePeriodSeconds", 30}});

  json withlist = json::parse(R"({"spec": {
      "replicas": 3,
      "strategy": {"type": "Recreate", "rollingUpdate": {}},
      "template": {"spec": {
        "restartPolicy": "Never",
        "containers": [
          {"name": "a", "ports": [{"containerPort": 80}]},
          {"name": "b", "resources": {"limits": {"cpu": "1"}}}]}}}})");
  ApplyDefaults(withlist, Deployment());
  CHECK(withlist["spec"]["replicas"] == 3);  // present values stay
  CHECK(withlist["spec"]["strategy"]["type"] == "Recreate");
  CHECK(withlist["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%");
  const json& containers = withlist["spec"]["template"]["spec"]["containers"];
  CHECK(containers[0]["resources"] == json::object());
  CHECK(containers[0]["ports"][0]["protocol"] == "TCP");
  CHECK(containers[1]["resources"]["limits"]["cpu"] == "1");
  CHECK(withlist["spec"]["template"]["spec"]["restartPolicy"] == "Never");

  // null in a field that is not nullable takes the default; nullable fields keep null.
  json nulls = Deploy({{"replicas", nullptr}});
  nulls["metadata"]["creationTimestamp"] = nullptr;
  ApplyDefaults(nulls, Deployment());
  CHECK(nulls["spec"]["replicas"] == 1);
  CHECK(nulls["metadata"]["creationTimestamp"].is_null());
}

namespace {

json WidgetSchema() {
  return json::parse(R"({
    "type": "object",
    "description": "A widget.",
    "properties": {
      "spec": {
        "type": "object",
        "required": ["name"],
        "properties": {
          "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
          "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5},
          "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
          "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
          "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2,
                   "x-kubernetes-list-type": "set"},
          "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port"],
                    "items": {"type": "object", "required": ["port"],
                              "properties": {"port": {"type": "integer"},
                                             "protocol": {"type": "string", "default": "TCP"}}}},
          "byName": {"type": "object", "maxProperties": 2,
                     "additionalProperties": {"type": "object",
                       "properties": {"v": {"type": "string", "default": "x"},
                                      "opt": {"type": "string", "nullable": true}}}},
          "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                   "properties": {"known": {"type": "object",
                                            "properties": {"a": {"type": "string"}}}}},
          "port": {"x-kubernetes-int-or-string": true,
                   "anyOf": [{"type": "integer"}, {"type": "string"}]},
          "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                       "x-kubernetes-preserve-unknown-fields": true},
          "choice": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]},
          "defaulted": {"type": "object", "default": {},
                        "properties": {"inner": {"type": "integer", "default": 7}}}
        }
      },
      "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
    }
  })");
}

struct Widget {
  SchemaSet set;
  const Schema* schema = nullptr;
};

std::unique_ptr<Widget> MakeWidget() {
  auto w = std::make_unique<Widget>();
  auto r = AddCustomResourceSchema(w->set, WidgetSchema(), "stable.example.com", "v1", "Widget",
                                   &Builtins());
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  w->schema = *r;
  return w;
}

json Widget(json spec) {
  return {{"apiVersion", "stable.example.com/v1"},
          {"kind", "Widget"},
          {"metadata", {{"name", "w"}}},
          {"spec", std::move(spec)}};
}

std::vector<std::string> Messages(const json& obj, const Schema& s) {
  std::vector<FieldError> errors;
  ValidateValues(obj, s, errors);
  std::vector<std::string> out;
  for (const FieldError& e : errors) out.push_back(e.ToString());
  return out;
}

}  // namespace

TEST_CASE("CRD openAPIV3Schema converts into the model") {
  auto w = MakeWidget();
  const Schema& root = *w->schema;
  CHECK(root.name == "com.example.stable.v1.Widget");
  REQUIRE(root.gvks.size() == 1);
  CHECK(root.gvks[0].group == "stable.example.com");
  CHECK(w->set.FindKind("stable.example.com", "v1", "Widget") == &root);
  const Schema* list = w->set.FindKind("stable.example.com", "v1", "WidgetList");
  REQUIRE(list != nullptr);
  CHECK(list->FindProperty("items")->schema->items == &root);
  // Implicit fields: apiVersion, kind and metadata (ObjectMeta of the built-ins).
  CHECK(root.FindProperty("apiVersion") != nullptr);
  CHECK(root.FindProperty("kind") != nullptr);
  CHECK(root.FindProperty("metadata")->schema ==
        Builtins().Find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
  CHECK(root.description == "A widget.");

  const Schema* spec = root.FindProperty("spec")->schema;
  CHECK(spec->required == std::vector<std::string>{"name"});
  const Schema* replicas = spec->FindProperty("replicas")->schema;
  CHECK(replicas->type == Schema::Type::kInteger);
  CHECK(replicas->minimum == 1.0);
  CHECK(replicas->maximum == 10.0);
  CHECK(replicas->default_value == json(1));
  const Schema* ports = spec->FindProperty("ports")->schema;
  CHECK(ports->list_type == Schema::ListType::kMap);
  CHECK(ports->list_map_keys == std::vector<std::string>{"port"});
  CHECK(spec->FindProperty("port")->schema->int_or_string);
  CHECK(spec->FindProperty("port")->schema->any_of.size() == 2);
  CHECK(spec->FindProperty("template")->schema->embedded_resource);
  CHECK(spec->FindProperty("template")->schema->FindProperty("metadata") != nullptr);
  CHECK(spec->FindProperty("byName")->schema->additional_properties != nullptr);
  CHECK(spec->FindProperty("choice")->schema->one_of.size() == 2);

  SchemaSet other;
  auto bad = SchemaFromOpenApiV3(json{{"type", 5}}, other);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "openAPIV3Schema.type: must be a string");
  CHECK(SchemaFromOpenApiV3(json{{"type", "tuple"}}, other).status().message() ==
        "openAPIV3Schema.type: unsupported type \"tuple\"");
  CHECK(
      ValidateStructuralSchema(WidgetSchema(), "spec.versions[0].schema.openAPIV3Schema").empty());
}

TEST_CASE("structural schema violations read like upstream's") {
  json schema = json::parse(R"({
    "type": "object",
    "additionalProperties": {"type": "string"},
    "properties": {
      "spec": {"properties": {"a": {"type": "string"}}},
      "list": {"type": "array"},
      "bad": {"type": "string", "x-kubernetes-int-or-string": true,
              "x-kubernetes-preserve-unknown-fields": true},
      "alt": {"type": "object", "anyOf": [{"type": "string", "description": "no"}]},
      "io": {"x-kubernetes-int-or-string": true,
             "anyOf": [{"type": "integer"}, {"type": "string"}]},
      "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
    }
  })");
  std::vector<std::string> got;
  for (const FieldError& e :
       ValidateStructuralSchema(schema, "spec.versions[0].schema.openAPIV3Schema")) {
    got.push_back(e.ToString());
  }
  std::string p = "spec.versions[0].schema.openAPIV3Schema";
  std::vector<std::string> want = {
      p + ".additionalProperties: Forbidden: additionalProperties and properties are mutual "
          "exclusive",
      p + ".additionalProperties: Forbidden: must not be used at the root",
      p + ".properties[alt].anyOf[0].description: Forbidden: must be empty to be structural",
      p + ".properties[alt].anyOf[0].type: Forbidden: must be empty to be structural",
      p + ".properties[bad].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be "
          "false if x-kubernetes-int-or-string is true",
      p + ".properties[list].items: Required value: must be specified",
      p + ".properties[metadata]: Forbidden: must not specify anything other than name and "
          "generateName, but metadata is implicitly specified",
      p + ".properties[spec].type: Required value: must not be empty for specified object fields",
  };
  CHECK(got == want);
  CHECK(ValidateStructuralSchema(json{{"type", "string"}}, "s")[0].ToString() ==
        "s.type: Invalid value: \"string\": must be object at the root");
  CHECK(ValidateStructuralSchema(json::object(), "s")[0].ToString() ==
        "s.type: Required value: must not be empty at the root");
}

TEST_CASE("CRD value validation produces field causes") {
  auto w = MakeWidget();
  const Schema& s = *w->schema;
  CHECK(Messages(Widget({{"name", "ok"}}), s).empty());

  CHECK(Messages(Widget({{"name", "ok"}, {"replicas", 0}}), s) ==
        std::vector<std::string>{"spec.replicas: Invalid value: 0: spec.replicas in body should be "
                                 "greater than or equal to 1"});
  CHECK(Messages(Widget({{"name", "ok"}, {"replicas", 11}}), s) ==
        std::vector<std::string>{"spec.replicas: Invalid value: 11: spec.replicas in body should "
                                 "be less than or equal to 10"});
  CHECK(Messages(Widget({{"name", "ok"}, {"ratio", 1.5}}), s) ==
        std::vector<std::string>{
            "spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"});
  CHECK(Messages(Widget({{"name", "ok"}, {"replicas", "two"}}), s) ==
        std::vector<std::string>{"spec.replicas: Invalid value: \"string\": spec.replicas in body "
                                 "must be of type integer: \"string\""});
  CHECK(Messages(Widget({{"name", "ok"}, {"mode", "medium"}}), s) ==
        std::vector<std::string>{
            "spec.mode: Unsupported value: \"medium\": supported values: \"fast\", \"slow\""});
  CHECK(Messages(Widget({{"name", "toolong"}}), s) ==
        std::vector<std::string>{"spec.name: Too long: may not be more than 5 bytes"});
  CHECK(Messages(Widget({{"name", "A"}}), s) ==
        std::vector<std::string>{
            "spec.name: Invalid value: \"A\": spec.name in body should be at least 2 chars long",
            "spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"});
  CHECK(Messages(Widget({{"name", "ok"}, {"tags", {"a", "b", "c"}}}), s) ==
        std::vector<std::string>{"spec.tags: Too many: 3: must have at most 2 items"});
  CHECK(Messages(Widget({{"name", "ok"}, {"tags", json::array()}}), s) ==
        std::vector<std::string>{
            "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"});
  CHECK(Messages(Widget(json::object()), s) ==
        std::vector<std::string>{"spec.name: Required value"});
  CHECK(Messages(Widget({{"name", "ok"}, {"ports", {{{"protocol", "UDP"}}}}}), s) ==
        std::vector<std::string>{"spec.ports[0].port: Required value"});
  CHECK(Messages(Widget({{"name", "ok"}, {"port", 1.5}}), s) ==
        std::vector<std::string>{"spec.port: Invalid value: \"number\": spec.port in body must be "
                                 "of type integer,string: \"number\""});
  CHECK(Messages(Widget({{"name", "ok"}, {"port", "http"}}), s).empty());
  CHECK(Messages(Widget({{"name", "ok"},
                         {"byName",
                          {{"a", json::object()}, {"b", json::object()}, {"c", json::object()}}}}),
                 s) ==
        std::vector<std::string>{"spec.byName: Too many: 3: must have at most 2 items"});
  CHECK(Messages(Widget({{"name", "ok"}, {"choice", "ab"}}), s) ==
        std::vector<std::string>{"spec.choice: Invalid value: \"ab\": spec.choice in body must "
                                 "validate one and only one schema (oneOf)"});
  CHECK(Messages(Widget({{"name", "ok"}, {"choice", "ax"}}), s).empty());

  std::vector<FieldError> errors;
  ValidateValues(Widget({{"name", "ok"}, {"replicas", 0}}), s, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].ToCause() ==
        json{{"reason", "FieldValueInvalid"},
             {"field", "spec.replicas"},
             {"message",
              "Invalid value: 0: spec.replicas in body should be greater than or "
              "equal to 1"}});
}

TEST_CASE("CRD unknown fields, pruning and defaulting") {
  auto w = MakeWidget();
  const Schema& s = *w->schema;
  json obj = Widget({{"name", "ok"},
                     {"bogus", 1},
                     {"free", {{"anything", {{"goes", 1}}}, {"known", {{"a", "x"}, {"b", "y"}}}}},
                     {"template",
                      {{"apiVersion", "v1"},
                       {"kind", "Pod"},
                       {"metadata", {{"name", "p"}, {"junk", 1}}},
                       {"spec", {{"x", 1}}}}},
                     {"ports", {{{"port", 80}, {"extra", true}}}},
                     {"byName", {{"k", {{"v", "set"}, {"zzz", 1}}}}},
                     {"replicas", nullptr}});
  obj["metadata"]["bad"] = "x";
  obj["status"] = {{"phase", "Ready"}, {"extra", 1}};
  obj["top"] = 1;

  FieldCheck c = ValidateFields(obj, s, ValidationMode::kStrict, {.custom_resource = true});
  CHECK(c.type_errors.empty());
  std::vector<std::string> want = {"metadata.bad",        "spec.bogus",
                                   "spec.byName.k.zzz",   "spec.free.known.b",
                                   "spec.ports[0].extra", "spec.template.metadata.junk",
                                   "status.extra",        "top"};
  CHECK(c.unknown_fields == want);

  std::vector<std::string> dropped = Prune(obj, s);
  CHECK(dropped == want);
  CHECK_FALSE(obj["spec"].contains("bogus"));
  CHECK(obj["spec"]["free"]["anything"]["goes"] == 1);  // preserved subtree
  CHECK(obj["spec"]["template"]["spec"]["x"] == 1);     // embedded, preserve-unknown
  CHECK(obj["spec"]["template"]["kind"] == "Pod");
  CHECK_FALSE(obj["spec"].contains("replicas"));  // null, not nullable: pruned
  CHECK(obj["metadata"] == json{{"name", "w"}});
  CHECK(ValidateFields(obj, s, ValidationMode::kStrict, {.custom_resource = true})
            .unknown_fields.empty());

  ApplyDefaults(obj, s);
  CHECK(obj["spec"]["replicas"] == 1);
  CHECK(obj["spec"]["mode"] == "fast");
  CHECK(obj["spec"]["ports"][0]["protocol"] == "TCP");      // inside list items
  CHECK(obj["spec"]["byName"]["k"] == json{{"v", "set"}});  // present value kept
  CHECK(obj["spec"]["defaulted"] == json{{"inner", 7}});    // default={} then its fields

  json maps =
      Widget({{"name", "ok"}, {"byName", {{"a", json::object()}, {"b", {{"opt", nullptr}}}}}});
  ApplyDefaults(maps, s);
  CHECK(maps["spec"]["byName"]["a"] == json{{"v", "x"}});  // inside map values
  CHECK(maps["spec"]["byName"]["b"] == json{{"v", "x"}, {"opt", nullptr}});
  CHECK(Messages(maps, s).empty());
}

TEST_CASE("fieldValidation parameter parsing") {
  CHECK(*ParseValidationMode("") == ValidationMode::kWarn);
  CHECK(*ParseValidationMode("Strict") == ValidationMode::kStrict);
  CHECK(*ParseValidationMode("Ignore") == ValidationMode::kIgnore);
  auto bad = ParseValidationMode("strict");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "fieldValidation: Unsupported value: \"strict\": supported values: \"Ignore\", "
        "\"Strict\", \"Warn\"");
}

TEST_CASE("patterns follow RE2 syntax and run in linear time") {
  auto match = [](const std::string& pattern, const std::string& text) {
    auto p = Pattern::Compile(pattern);
    INFO(pattern << " " << p.status().ToString());
    REQUIRE(p.ok());
    return p->Search(text);
  };
  CHECK(match("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "my-name-1"));
  CHECK_FALSE(match("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "-bad"));
  CHECK_FALSE(match("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "Upper"));
  CHECK(match("b+", "aaabbb"));  // unanchored search, like regexp.MatchString
  CHECK_FALSE(match("^b+", "aaabbb"));
  CHECK(match("^(\\d+(\\.\\d+)?)(m|Mi|Gi)?$", "1.5Gi"));
  CHECK_FALSE(match("^(\\d+(\\.\\d+)?)(m|Mi|Gi)?$", "1.5Ti"));
  CHECK(match("^https?://", "https://x"));
  CHECK(match("^a{2,3}$", "aaa"));
  CHECK_FALSE(match("^a{2,3}$", "aaaa"));
  CHECK_FALSE(match("^a{2,3}$", "a"));
  CHECK(match("^a{2}$", "aa"));
  CHECK(match("^a{2,}$", "aaaaa"));
  CHECK(match("^x{$", "x{"));  // not a repeat: a literal brace
  CHECK(match("^[^/]+$", "abc"));
  CHECK_FALSE(match("^[^/]+$", "a/c"));
  CHECK(match("^[[:alpha:]_][[:word:]]*$", "_ok9"));
  CHECK(match("(?i)^abc$", "AbC"));
  CHECK(match("^(?i:ab)c$", "ABc"));
  CHECK_FALSE(match("^(?i:ab)c$", "ABC"));
  CHECK(match("\\bword\\b", "a word here"));
  CHECK_FALSE(match("\\bword\\b", "awordhere"));
  CHECK(match("^\\x41\\x{42}$", "AB"));
  CHECK(match("^.$", "\xc3\xa9"));  // one rune, two bytes
  CHECK_FALSE(match("^.$", "\n"));
  CHECK(match("(?s)^.$", "\n"));
  CHECK(match("^(a|b|)$", ""));
  CHECK(match("^(?P<name>x)+$", "xx"));
  CHECK(match("^(a*)*$", "aaaa"));  // empty loops terminate

  // The stack does not grow with the text (std::regex dies on this).
  std::string huge(1000000, 'a');
  CHECK(match("^[a-z]+$", huge));
  CHECK_FALSE(match("^(a|aa)*b$", huge));

  for (const char* bad : {"(abc", "abc)", "[a-", "a**", "*a", "\\1", "(?=x)", "a{1001}", "[z-a]"}) {
    INFO(bad);
    auto p = Pattern::Compile(bad);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().message().rfind("error parsing regexp: ", 0) == 0);
  }
  CHECK(Pattern::Compile("(abc").status().message() ==
        "error parsing regexp: missing closing ): `(abc`");

  std::vector<FieldError> bad = ValidateStructuralSchema(
      json::parse(R"({"type":"object","properties":{"a":{"type":"string","pattern":"(x"}}})"), "s");
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].ToString() ==
        "s.properties[a].pattern: Invalid value: \"(x\": must be a valid regular expression, but "
        "isn't: error parsing regexp: missing closing ): `(x`");
}
