// PATCH semantics: JSON merge patch, JSON patch and strategic merge patch, table-driven from
// RFC 7386/6902 examples and the upstream behaviour kubectl relies on.
#include "patch.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "schema_loader.h"

using orch::StatusCode;
using orch::api::json;
using orch::api::Schema;
using orch::api::SchemaSet;

namespace {

json J(const char* text) {
  return json::parse(text);
}

Schema* Scalar(SchemaSet& set, Schema::Type type) {
  Schema* s = set.New();
  s->type = type;
  return s;
}

void AddProperty(Schema* object, const std::string& name, const Schema* schema) {
  object->properties.push_back({name, "", schema});
}

Schema* Object(SchemaSet& set) {
  Schema* s = set.New();
  s->type = Schema::Type::kObject;
  return s;
}

Schema* StringMap(SchemaSet& set) {
  Schema* s = Object(set);
  s->additional_properties = Scalar(set, Schema::Type::kString);
  return s;
}

Schema* List(SchemaSet& set, const Schema* items, const std::string& strategy = "",
             const std::string& merge_key = "") {
  Schema* s = set.New();
  s->type = Schema::Type::kArray;
  s->items = items;
  s->patch_strategy = strategy;
  s->patch_merge_key = merge_key;
  return s;
}

// A trimmed Deployment schema with the patch strategies of the real one.
const Schema* DeploymentSchema(SchemaSet& set) {
  Schema* str = Scalar(set, Schema::Type::kString);
  Schema* integer = Scalar(set, Schema::Type::kInteger);

  Schema* meta = Object(set);
  AddProperty(meta, "name", str);
  AddProperty(meta, "labels", StringMap(set));
  AddProperty(meta, "annotations", StringMap(set));
  AddProperty(meta, "finalizers", List(set, str, "merge"));

  Schema* env = Object(set);
  AddProperty(env, "name", str);
  AddProperty(env, "value", str);

  Schema* port = Object(set);
  AddProperty(port, "containerPort", integer);
  AddProperty(port, "protocol", str);
  AddProperty(port, "name", str);

  Schema* mount = Object(set);
  AddProperty(mount, "name", str);
  AddProperty(mount, "mountPath", str);

  Schema* container = Object(set);
  AddProperty(container, "name", str);
  AddProperty(container, "image", str);
  AddProperty(container, "args", List(set, str));
  AddProperty(container, "env", List(set, env, "merge", "name"));
  AddProperty(container, "ports", List(set, port, "merge", "containerPort"));
  AddProperty(container, "volumeMounts", List(set, mount, "merge", "mountPath"));
  AddProperty(container, "resources", Object(set));

  Schema* volume = Object(set);
  AddProperty(volume, "name", str);
  AddProperty(volume, "emptyDir", Object(set));
  AddProperty(volume, "configMap", Object(set));

  Schema* toleration = Object(set);
  AddProperty(toleration, "key", str);

  Schema* pod_spec = Object(set);
  AddProperty(pod_spec, "containers", List(set, container, "merge", "name"));
  AddProperty(pod_spec, "volumes", List(set, volume, "merge,retainKeys", "name"));
  AddProperty(pod_spec, "tolerations", List(set, toleration));
  AddProperty(pod_spec, "nodeSelector", StringMap(set));

  Schema* template_spec = Object(set);
  AddProperty(template_spec, "metadata", meta);
  AddProperty(template_spec, "spec", pod_spec);

  Schema* rolling = Object(set);
  AddProperty(rolling, "maxSurge", str);
  AddProperty(rolling, "maxUnavailable", str);
  Schema* strategy = Object(set);
  strategy->patch_strategy = "retainKeys";
  AddProperty(strategy, "type", str);
  AddProperty(strategy, "rollingUpdate", rolling);

  Schema* spec = Object(set);
  AddProperty(spec, "replicas", integer);
  AddProperty(spec, "strategy", strategy);
  AddProperty(spec, "template", template_spec);

  Schema* root = Object(set);
  root->name = "io.k8s.api.apps.v1.Deployment";
  AddProperty(root, "apiVersion", str);
  AddProperty(root, "kind", str);
  AddProperty(root, "metadata", meta);
  AddProperty(root, "spec", spec);
  AddProperty(root, "status", Object(set));
  return set.AddNamed(root);
}

struct Case {
  const char* name;
  const char* original;
  const char* patch;
  const char* expected;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("content types map to patch types and back") {
  using orch::api::PatchType;
  using orch::api::PatchTypeFromContentType;
  CHECK(PatchTypeFromContentType("application/json-patch+json") == PatchType::kJsonPatch);
  CHECK(PatchTypeFromContentType("application/merge-patch+json; charset=utf-8") ==
        PatchType::kMergePatch);
  CHECK(PatchTypeFromContentType("application/strategic-merge-patch+json") ==
        PatchType::kStrategicMergePatch);
  CHECK(PatchTypeFromContentType("application/apply-patch+yaml") == PatchType::kApplyPatch);
  CHECK_FALSE(PatchTypeFromContentType("application/json").has_value());
  CHECK_FALSE(PatchTypeFromContentType("").has_value());
  for (PatchType t : {PatchType::kJsonPatch, PatchType::kMergePatch,
                      PatchType::kStrategicMergePatch, PatchType::kApplyPatch}) {
    CHECK(PatchTypeFromContentType(orch::api::ContentTypeOf(t)) == t);
  }
}

TEST_CASE("custom resources refuse strategic merge patch with upstream's 415 message") {
  using orch::api::PatchType;
  orch::Status s = orch::api::CheckPatchTypeSupported(PatchType::kStrategicMergePatch, true);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message() ==
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml");
  CHECK(orch::api::CheckPatchTypeSupported(PatchType::kMergePatch, true).ok());
  CHECK(orch::api::CheckPatchTypeSupported(PatchType::kStrategicMergePatch, false).ok());
  CHECK(orch::api::UnsupportedPatchTypeMessage(false).find("strategic-merge-patch") !=
        std::string::npos);

  // Without a schema the function itself refuses, as upstream does for unstructured objects.
  auto r = orch::api::StrategicMergePatch(J(R"({"a":1})"), J(R"({"a":2})"), nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "strategic merge patch format is not supported");
}

// ---------------------------------------------------------------------------------------------
// JSON merge patch

TEST_CASE("merge patch: RFC 7386 appendix A and upstream's null pruning") {
  const std::vector<Case> cases = {
      {"replace member", R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {"add member", R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {"delete member", R"({"a":"b"})", R"({"a":null})", R"({})"},
      {"delete one of two", R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {"array replaced by scalar", R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {"scalar replaced by array", R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {"nested merge and delete", R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})",
       R"({"a":{"b":"d"}})"},
      {"arrays replaced whole", R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {"unrelated null kept", R"({"e":null})", R"({"a":1})", R"({"a":1,"e":null})"},
      {"nulls pruned from added object", R"({})", R"({"a":{"bb":{"ccc":null}}})",
       R"({"a":{"bb":{}}})"},
      {"deleting a missing member", R"({"a":1})", R"({"b":null})", R"({"a":1})"},
      {"labels as kubectl label sends them", R"({"metadata":{"labels":{"app":"x","tier":"web"}}})",
       R"({"metadata":{"labels":{"tier":null,"env":"prod"}}})",
       R"({"metadata":{"labels":{"app":"x","env":"prod"}}})"},
      {"scale", R"({"spec":{"replicas":1,"selector":{"app":"x"}}})", R"({"spec":{"replicas":3}})",
       R"({"spec":{"replicas":3,"selector":{"app":"x"}}})"},
      {"object replaces scalar", R"({"a":1})", R"({"a":{"b":null,"c":2}})", R"({"a":{"c":2}})"},
      {"empty patch", R"({"a":1})", R"({})", R"({"a":1})"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto r = orch::api::MergePatch(J(c.original), J(c.patch));
    REQUIRE(r.ok());
    CHECK(*r == J(c.expected));
  }
}

TEST_CASE("merge patch: a patch that is not an object is a bad request") {
  for (const char* patch : {"null", "[1]", "\"x\"", "3", "true"}) {
    INFO(patch);
    auto r = orch::api::MergePatch(J(R"({"a":1})"), J(patch));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message() == "Invalid JSON Patch");
  }
}

// ---------------------------------------------------------------------------------------------
// JSON patch

namespace {

orch::Result<json> RunJsonPatch(const json& doc, const json& body) {
  auto decoded = orch::api::DecodeJsonPatch(body);
  if (!decoded.ok()) return decoded.status();
  return orch::api::ApplyJsonPatch(doc, *decoded);
}

}  // namespace

TEST_CASE("json patch: RFC 6902 appendix A") {
  const std::vector<Case> cases = {
      {"A.1 add object member", R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])",
       R"({"baz":"qux","foo":"bar"})"},
      {"A.2 add array element", R"({"foo":["bar","baz"]})",
       R"([{"op":"add","path":"/foo/1","value":"qux"}])", R"({"foo":["bar","qux","baz"]})"},
      {"A.3 remove member", R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])",
       R"({"foo":"bar"})"},
      {"A.4 remove element", R"({"foo":["bar","qux","baz"]})",
       R"([{"op":"remove","path":"/foo/1"}])", R"({"foo":["bar","baz"]})"},
      {"A.5 replace", R"({"baz":"qux","foo":"bar"})",
       R"([{"op":"replace","path":"/baz","value":"boo"}])", R"({"baz":"boo","foo":"bar"})"},
      {"A.6 move member", R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
       R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])",
       R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"},
      {"A.7 move element", R"({"foo":["all","grass","cows","eat"]})",
       R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])",
       R"({"foo":["all","cows","eat","grass"]})"},
      {"A.8 test success", R"({"baz":"qux","foo":["a",2,"c"]})",
       R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])",
       R"({"baz":"qux","foo":["a",2,"c"]})"},
      {"A.10 add nested member", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])",
       R"({"foo":"bar","child":{"grandchild":{}}})"},
      {"A.11 unrecognized members ignored", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/baz","value":"qux","xyz":123}])", R"({"foo":"bar","baz":"qux"})"},
      {"A.14 ~ escapes", R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":10}])",
       R"({"/":9,"~1":10})"},
      {"A.16 add array value", R"({"foo":["bar"]})",
       R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])",
       R"({"foo":["bar",["abc","def"]]})"},
      {"~1 in a key", R"({"metadata":{"labels":{}}})",
       R"([{"op":"add","path":"/metadata/labels/app.kubernetes.io~1name","value":"x"}])",
       R"({"metadata":{"labels":{"app.kubernetes.io/name":"x"}}})"},
      {"copy", R"({"a":{"b":1}})", R"([{"op":"copy","from":"/a","path":"/c"}])",
       R"({"a":{"b":1},"c":{"b":1}})"},
      {"negative index counts from the end", R"({"a":[1,2,3]})",
       R"([{"op":"remove","path":"/a/-1"}])", R"({"a":[1,2]})"},
      {"add at the end by index", R"({"a":[1]})", R"([{"op":"add","path":"/a/1","value":2}])",
       R"({"a":[1,2]})"},
      {"replace of a missing member adds it (v4)", R"({"a":{}})",
       R"([{"op":"replace","path":"/a/b","value":1}])", R"({"a":{"b":1}})"},
      {"replace the whole document", R"({"a":1})",
       R"([{"op":"replace","path":"","value":{"b":2}}])", R"({"b":2})"},
      {"test of a missing member against null", R"({"a":1})",
       R"([{"op":"test","path":"/b","value":null}])", R"({"a":1})"},
      {"test the whole document", R"({"a":1})", R"([{"op":"test","path":"","value":{"a":1}}])",
       R"({"a":1})"},
      {"kubectl rollout undo style", R"({"spec":{"template":{"spec":{"x":1}}}})",
       R"([{"op":"replace","path":"/spec/template","value":{"spec":{"x":2}}},
           {"op":"replace","path":"/metadata","value":{"annotations":{}}}])",
       R"({"metadata":{"annotations":{}},"spec":{"template":{"spec":{"x":2}}}})"},
      {"null body is an empty patch", R"({"a":1})", "null", R"({"a":1})"},
      {"empty patch", R"({"a":1})", "[]", R"({"a":1})"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto r = RunJsonPatch(J(c.original), J(c.patch));
    INFO((r.ok() ? std::string() : r.status().message()));
    REQUIRE(r.ok());
    CHECK(*r == J(c.expected));
  }
}

TEST_CASE("json patch: failures carry evanphx/json-patch v4's messages") {
  struct ErrorCase {
    const char* name;
    const char* doc;
    const char* patch;
    const char* message;
  };
  const std::vector<ErrorCase> cases = {
      {"A.9 test failure", R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])",
       "testing value /baz failed: test failed"},
      {"A.12 add to nonexistent target", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/baz/bat","value":"qux"}])",
       "add operation does not apply: doc is missing path: \"/baz/bat\": missing value"},
      {"A.15 string is not a number", R"({"/":9,"~1":10})",
       R"([{"op":"test","path":"/~01","value":"10"}])", "testing value /~01 failed: test failed"},
      {"test of a missing member", R"({"a":1})", R"([{"op":"test","path":"/b","value":1}])",
       "testing value /b failed: test failed"},
      {"remove a missing member", R"({"a":{}})", R"([{"op":"remove","path":"/a/b"}])",
       "error in remove for path: '/a/b': Unable to remove nonexistent key: b: missing value"},
      {"remove out of range", R"({"a":[1]})", R"([{"op":"remove","path":"/a/5"}])",
       "error in remove for path: '/a/5': Unable to access invalid index: 5: invalid index "
       "referenced"},
      {"add past the end", R"({"a":[1]})", R"([{"op":"add","path":"/a/3","value":2}])",
       "error in add for path: '/a/3': Unable to access invalid index: 3: invalid index "
       "referenced"},
      {"add with a bad index", R"({"a":[1]})", R"([{"op":"add","path":"/a/x","value":2}])",
       "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: "
       "parsing \"x\": invalid syntax"},
      {"replace out of range", R"({"a":[1]})", R"([{"op":"replace","path":"/a/1","value":2}])",
       "replace operation does not apply: doc is missing key: /a/1: missing value"},
      {"replace under a missing parent", R"({})", R"([{"op":"replace","path":"/a/b","value":2}])",
       "replace operation does not apply: doc is missing path: /a/b: missing value"},
      {"move from a missing member", R"({"a":{}})", R"([{"op":"move","from":"/a/b","path":"/c"}])",
       "error in move for path: 'b': Unable to remove nonexistent key: b: missing value"},
      {"move to a missing parent", R"({"a":1})", R"([{"op":"move","from":"/a","path":"/x/y"}])",
       "move operation does not apply: doc is missing destination path: /x/y: missing value"},
      {"copy from a missing parent", R"({})", R"([{"op":"copy","from":"/x/y","path":"/a"}])",
       "copy operation does not apply: doc is missing from path: /x/y: missing value"},
      {"unknown op", R"({})", R"([{"op":"frobnicate","path":"/a"}])",
       "Unexpected kind: frobnicate"},
      {"missing op", R"({})", R"([{"path":"/a"}])", "Unexpected kind: unknown"},
      {"null operation", R"({})", R"([null])", "Unexpected kind: unknown"},
      {"missing path", R"({})", R"([{"op":"add","value":1}])",
       "add operation failed to decode path: missing value"},
      {"missing from", R"({})", R"([{"op":"move","path":"/a"}])",
       "move operation failed to decode from: operation, missing from field: missing value"},
      {"path that is not a string", R"({})", R"([{"op":"replace","path":3,"value":1}])",
       "replace operation failed to decode path: json: cannot unmarshal number into Go value of "
       "type string"},
      {"path without a leading slash", R"({"a":1})", R"([{"op":"remove","path":"a"}])",
       "remove operation does not apply: doc is missing path: \"a\": missing value"},
      {"add at the root", R"({"a":1})", R"([{"op":"add","path":"","value":{}}])",
       "add operation does not apply: doc is missing path: \"\": missing value"},
      {"walk through a scalar", R"({"a":1})", R"([{"op":"add","path":"/a/b/c","value":1}])",
       "add operation does not apply: doc is missing path: \"/a/b/c\": missing value"},
      {"replace root with a scalar", R"({"a":1})", R"([{"op":"replace","path":"","value":1}])",
       "replace operation value must be object or array"},
      {"later op fails after earlier ones", R"({"a":1})",
       R"([{"op":"replace","path":"/a","value":2},{"op":"test","path":"/a","value":1}])",
       "testing value /a failed: test failed"},
  };
  for (const ErrorCase& c : cases) {
    INFO(c.name);
    auto r = RunJsonPatch(J(c.doc), J(c.patch));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("json patch: decoding rejects non-arrays and oversized patches") {
  for (const char* body : {R"({"op":"add"})", "\"x\"", "1", "true"}) {
    INFO(body);
    auto r = orch::api::DecodeJsonPatch(J(body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("into Go value of type jsonpatch.Patch") != std::string::npos);
  }
  auto element = orch::api::DecodeJsonPatch(J(R"(["add"])"));
  REQUIRE_FALSE(element.ok());
  CHECK(element.status().message() ==
        "json: cannot unmarshal string into Go value of type jsonpatch.Operation");

  json many = json::array();
  for (size_t i = 0; i <= orch::api::kMaxJsonPatchOperations; ++i) {
    many.push_back({{"op", "test"}, {"path", "/a"}, {"value", 1}});
  }
  auto big = orch::api::DecodeJsonPatch(many);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().code() == StatusCode::kTooLarge);
  CHECK(big.status().message() ==
        "The allowed maximum operations in a JSON patch is 10000, got 10001");
}

TEST_CASE("json patch: copies are limited in total size") {
  std::string large(1024 * 1024, 'x');
  json doc = {{"a", large}};
  json ops = json::array();
  for (int i = 0; i < 4; ++i) {
    ops.push_back({{"op", "copy"}, {"from", "/a"}, {"path", "/b" + std::to_string(i)}});
  }
  auto r = RunJsonPatch(doc, ops);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("Unable to complete the copy") == 0);
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch

TEST_CASE("strategic merge patch: what kubectl patch and apply send") {
  SchemaSet set;
  const Schema* deployment = DeploymentSchema(set);
  const char* two_containers = R"({"spec":{"template":{"spec":{"containers":[
      {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]},
      {"name":"sidecar","image":"busybox"}]}}}})";
  const std::vector<Case> cases = {
      {"one container's image; the other container stays", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}]},
           {"name":"sidecar","image":"busybox"}]}}}})"},
      {"second container's image keeps the order", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"alpine"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]},
           {"name":"sidecar","image":"alpine"}]}}}})"},
      {"a new container goes first", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"log","image":"fluent"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"log","image":"fluent"},
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]},
           {"name":"sidecar","image":"busybox"}]}}}})"},
      {"$setElementOrder puts a new container where apply wants it", two_containers,
       R"({"spec":{"template":{"spec":{
           "$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"},{"name":"log"}],
           "containers":[{"name":"log","image":"fluent"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]},
           {"name":"sidecar","image":"busybox"},{"name":"log","image":"fluent"}]}}}})"},
      {"$setElementOrder alone reorders", two_containers,
       R"({"spec":{"template":{"spec":{
           "$setElementOrder/containers":[{"name":"sidecar"},{"name":"nginx"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"},
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]}]}}}})"},
      {"$patch: delete removes a container by name", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80}]}]}}}})"},
      {"apply's three-way patch: delete plus $setElementOrder", two_containers,
       R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],
           "containers":[{"image":"nginx:1.25","name":"nginx"},
                         {"$patch":"delete","name":"sidecar"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}]}]}}}})"},
      {"$patch: replace replaces the whole list", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"},
           {"$patch":"replace"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}})"},
      {"ports merge by containerPort", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[{"name":"nginx",
           "ports":[{"containerPort":80,"name":"http"},{"containerPort":443}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[
           {"name":"nginx","image":"nginx:1.24","ports":[{"containerPort":80,"name":"http"},
                                                        {"containerPort":443}]},
           {"name":"sidecar","image":"busybox"}]}}}})"},
      {"env merges by name, deletions by directive",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","env":[
           {"name":"A","value":"1"},{"name":"B","value":"2"},{"name":"C","value":"3"}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c",
           "$setElementOrder/env":[{"name":"A"},{"name":"C"}],
           "env":[{"name":"C","value":"33"},{"$patch":"delete","name":"B"}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","env":[
           {"name":"A","value":"1"},{"name":"C","value":"33"}]}]}}}})"},
      {"lists without a strategy are replaced", R"({"spec":{"template":{"spec":{
           "containers":[{"name":"c","args":["a","b"]}],"tolerations":[{"key":"x"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","args":["z"]}],
           "tolerations":[{"key":"y"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","args":["z"]}],
           "tolerations":[{"key":"y"}]}}}})"},
      {"maps merge and null deletes", R"({"metadata":{"labels":{"app":"x","tier":"web"}}})",
       R"({"metadata":{"labels":{"tier":null,"env":"prod"}}})",
       R"({"metadata":{"labels":{"app":"x","env":"prod"}}})"},
      {"null deletes a whole field", R"({"spec":{"replicas":3,"strategy":{"type":"Recreate"}}})",
       R"({"spec":{"strategy":null}})", R"({"spec":{"replicas":3}})"},
      {"kubectl cordon style scalar", R"({"spec":{"replicas":1}})", R"({"spec":{"replicas":5}})",
       R"({"spec":{"replicas":5}})"},
      {"finalizers merge as a set, new ones first", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"finalizers":["c","a"]}})", R"({"metadata":{"finalizers":["c","a","b"]}})"},
      {"$deleteFromPrimitiveList removes finalizers",
       R"({"metadata":{"finalizers":["a","b","c"]}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b","x"]}})",
       R"({"metadata":{"finalizers":["a","c"]}})"},
      {"$setElementOrder on a primitive list", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"$setElementOrder/finalizers":["b","a","c"],"finalizers":["c"]}})",
       R"({"metadata":{"finalizers":["b","a","c"]}})"},
      {"$retainKeys clears the other strategy fields",
       R"({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%"}}}})",
       R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}})",
       R"({"spec":{"strategy":{"type":"Recreate"}}})"},
      {"$retainKeys inside a merged list item (volumes)",
       R"({"spec":{"template":{"spec":{"volumes":[{"name":"v","emptyDir":{}}]}}}})",
       R"({"spec":{"template":{"spec":{"volumes":[
           {"$retainKeys":["configMap","name"],"name":"v","configMap":{"name":"cm"}}]}}}})",
       R"({"spec":{"template":{"spec":{"volumes":[{"name":"v","configMap":{"name":"cm"}}]}}}})"},
      {"$patch: replace on a map", R"({"spec":{"template":{"spec":{"nodeSelector":{"a":"1"}}}}})",
       R"({"spec":{"template":{"spec":{"nodeSelector":{"$patch":"replace","b":"2"}}}}})",
       R"({"spec":{"template":{"spec":{"nodeSelector":{"b":"2"}}}}})"},
      {"$patch: delete on a map empties it",
       R"({"spec":{"template":{"spec":{"nodeSelector":{"a":"1"}}}}})",
       R"({"spec":{"template":{"spec":{"nodeSelector":{"$patch":"delete"}}}}})",
       R"({"spec":{"template":{"spec":{"nodeSelector":{}}}}})"},
      {"$patch: replace at the top", R"({"spec":{"replicas":1},"metadata":{"name":"x"}})",
       R"({"$patch":"replace","spec":{"replicas":2}})", R"({"spec":{"replicas":2}})"},
      {"new subtrees lose nulls and directives", R"({})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":null,
           "env":[{"name":"X","$patch":"delete"}]}],"$setElementOrder/containers":[{"name":"a"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"a","env":[]}]}}}})"},
      {"an added list item loses its nulls", R"({"metadata":{},"spec":{"template":{"spec":{
           "containers":[{"name":"a"}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"b","image":null}]}}}})",
       R"({"metadata":{},"spec":{"template":{"spec":{"containers":[{"name":"b"},
           {"name":"a"}]}}}})"},
      {"fields without schema merge as maps, lists replace",
       R"({"status":{"x":{"a":1,"b":[1,2]}}})", R"({"status":{"x":{"c":2,"b":[3]}}})",
       R"({"status":{"x":{"a":1,"b":[3],"c":2}}})"},
      {"a value of another type replaces", R"({"spec":{"replicas":{"weird":true}}})",
       R"({"spec":{"replicas":3}})", R"({"spec":{"replicas":3}})"},
      {"merge keys compare numbers as Go does",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","ports":[
           {"containerPort":80,"protocol":"TCP"}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","ports":[
           {"containerPort":80.0,"name":"web"}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","ports":[
           {"containerPort":80,"protocol":"TCP","name":"web"}]}]}}}})"},
      {"null patch is a no-op", R"({"a":1})", "null", R"({"a":1})"},
      {"an empty patch list keeps a merged list", two_containers,
       R"({"spec":{"template":{"spec":{"containers":[]}}}})", two_containers},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto r = orch::api::StrategicMergePatch(J(c.original), J(c.patch), deployment);
    INFO((r.ok() ? r->dump() : r.status().ToString()));
    REQUIRE(r.ok());
    CHECK(*r == J(c.expected));
  }
}

TEST_CASE("strategic merge patch: kubectl apply's three-way patch of a deployment") {
  SchemaSet set;
  const Schema* deployment = DeploymentSchema(set);
  // Live object after `kubectl apply` of two containers and `kubectl scale --replicas=5`.
  json live = J(R"({
    "apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web","labels":{"app":"web"},"annotations":{
      "kubectl.kubernetes.io/last-applied-configuration":"{}","deployment.kubernetes.io/revision":"1"}},
    "spec":{"replicas":5,"template":{"metadata":{"labels":{"app":"web"}},"spec":{
      "containers":[{"name":"web","image":"nginx:1.24","env":[{"name":"A","value":"1"}]},
                    {"name":"log","image":"busybox"}]}}}})");
  // kubectl apply after the manifest dropped `log`, changed the image and added env B.
  json patch = J(R"({
    "metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":1}"}},
    "spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"web"}],
      "containers":[{"$setElementOrder/env":[{"name":"A"},{"name":"B"}],
                     "env":[{"name":"B","value":"2"}],"image":"nginx:1.25","name":"web"},
                    {"$patch":"delete","name":"log"}]}}}})");
  auto r = orch::api::StrategicMergePatch(live, patch, deployment);
  REQUIRE(r.ok());
  json want = live;
  want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
      "{\"new\":1}";
  want["spec"]["template"]["spec"]["containers"] = J(R"([{"name":"web","image":"nginx:1.25",
      "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}])");
  CHECK(*r == want);
  CHECK((*r)["spec"]["replicas"] == 5);  // the scale survives: the patch does not mention it
}

TEST_CASE("strategic merge patch: malformed patches are errors, never crashes") {
  SchemaSet set;
  const Schema* deployment = DeploymentSchema(set);
  const char* live = R"({"metadata":{"finalizers":["a"],"labels":{"x":"y"}},
      "spec":{"strategy":{"type":"Recreate"},"template":{"spec":{"containers":[{"name":"c"}]}}}})";
  struct ErrorCase {
    const char* name;
    const char* patch;
    StatusCode code;
    const char* message;  // exact, or nullptr to check only the code
  };
  const std::vector<ErrorCase> cases = {
      {"patch is an array", R"([1])", StatusCode::kInvalidArgument,
       "json: cannot unmarshal array into Go value of type map[string]interface {}"},
      {"patch is a string", R"("x")", StatusCode::kInvalidArgument, nullptr},
      {"container without merge key",
       R"({"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}})",
       StatusCode::kInternal, "map: map[image:nginx] does not contain declared merge key: name"},
      {"delete directive without merge key",
       R"({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}})",
       StatusCode::kInternal, "map: map[$patch:delete] does not contain declared merge key: name"},
      {"unknown directive in a map", R"({"metadata":{"labels":{"$patch":"frob"}}})",
       StatusCode::kInternal, "unknown patch type: frob in map: map[$patch:frob]"},
      {"unknown directive in a list",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"c","$patch":"nope"}]}}}})",
       StatusCode::kInternal, "unknown patch type: nope in map: map[$patch:nope name:c]"},
      {"merge directive in a list",
       R"({"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}})",
       StatusCode::kInternal, "merging lists cannot yet be specified in the patch"},
      {"$retainKeys that is not a list",
       R"({"spec":{"strategy":{"$retainKeys":"type","type":"Recreate"}}})",
       StatusCode::kInvalidArgument, "invalid patch format of retainKeys"},
      {"patch field outside $retainKeys",
       R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":"1"}}}})",
       StatusCode::kInvalidArgument, "invalid patch format of retainKeys"},
      {"$setElementOrder that is not a list",
       R"({"spec":{"template":{"spec":{"$setElementOrder/containers":"c"}}}})",
       StatusCode::kInternal, "expected a []interface {}, but received a string"},
      {"$setElementOrder without a slash",
       R"({"spec":{"template":{"spec":{"$setElementOrderX":[]}}}})", StatusCode::kInvalidArgument,
       "invalid patch format of setElementOrder list"},
      {"$setElementOrder that disagrees with the patch",
       R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],
           "containers":[{"name":"d"}]}}}})",
       StatusCode::kInternal, nullptr},
      {"$setElementOrder items without the merge key",
       R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"image":"c"}]}}}})",
       StatusCode::kInternal, "map: map[image:c] does not contain declared merge key: name"},
      {"$deleteFromPrimitiveList without a slash",
       R"({"metadata":{"$deleteFromPrimitiveListfinalizers":["a"]}})", StatusCode::kInvalidArgument,
       "invalid patch format of primitive list"},
      {"mixed list element types", R"({"metadata":{"finalizers":[1]}})", StatusCode::kInternal,
       "list element types are not identical: [[a] [1]]"},
      {"list of scalars in a list of objects",
       R"({"spec":{"template":{"spec":{"containers":["c"]}}}})", StatusCode::kInternal, nullptr},
  };
  for (const ErrorCase& c : cases) {
    INFO(c.name);
    auto r = orch::api::StrategicMergePatch(J(live), J(c.patch), deployment);
    INFO((r.ok() ? r->dump() : r.status().ToString()));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == c.code);
    if (c.message != nullptr) CHECK(r.status().message() == c.message);
  }
  // A list of lists is 422 (the element types are checked in order, live items first).
  auto lists =
      orch::api::StrategicMergePatch(J(R"({"metadata":{"finalizers":[]}})"),
                                     J(R"({"metadata":{"finalizers":[["a"]]}})"), deployment);
  REQUIRE_FALSE(lists.ok());
  CHECK(lists.status().message() == "lists of lists are not supported");
  CHECK(orch::api::IsUnprocessablePatchError(lists.status()));
  auto other = orch::api::StrategicMergePatch(
      J(live), J(R"({"spec":{"strategy":{"$retainKeys":"x"}}})"), deployment);
  CHECK_FALSE(orch::api::IsUnprocessablePatchError(other.status()));
}

TEST_CASE("strategic merge patch: merge lists without a merge key are refused") {
  SchemaSet set;
  Schema* root = Object(set);
  Schema* item = Object(set);
  AddProperty(item, "a", Scalar(set, Schema::Type::kString));
  AddProperty(root, "items", List(set, item, "merge"));
  auto r = orch::api::StrategicMergePatch(J(R"({"items":[{"a":"1"}]})"),
                                          J(R"({"items":[{"a":"2"}]})"), root);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "cannot merge lists without merge key for struct");
}

TEST_CASE("patches nested beyond the limit are refused, not recursed") {
  SchemaSet set;
  const Schema* deployment = DeploymentSchema(set);
  json deep = json::object();
  json* cur = &deep;
  for (int i = 0; i < 500; ++i) cur = &((*cur)["a"] = json::object());
  json patch = {{"status", deep}};

  auto smp = orch::api::StrategicMergePatch(J("{}"), patch, deployment);
  REQUIRE_FALSE(smp.ok());
  CHECK(smp.status().code() == StatusCode::kInvalidArgument);

  auto merge = orch::api::MergePatch(J("{}"), patch);
  REQUIRE_FALSE(merge.ok());
  CHECK(merge.status().code() == StatusCode::kInvalidArgument);

  auto decoded =
      orch::api::DecodeJsonPatch(json::array({{{"op", "add"}, {"path", "/a"}, {"value", deep}}}));
  REQUIRE_FALSE(decoded.ok());

  // Values that are each shallow enough can still stack up: the patched object is checked too.
  json doc60 = json::object(), value60 = json::object();
  std::string path;
  json* d = &doc60;
  json* v = &value60;
  for (int i = 0; i < 60; ++i) {
    d = &((*d)["a"] = json::object());
    v = &((*v)["a"] = json::object());
    path += "/a";
  }
  auto stacked = RunJsonPatch(
      doc60, json::array({{{"op", "add"}, {"path", path + "/b"}, {"value", value60}}}));
  REQUIRE_FALSE(stacked.ok());
  CHECK(stacked.status().message() == "patched object nests deeper than 100 levels");

  json shallow = json::object();
  cur = &shallow;
  for (int i = 0; i < 50; ++i) cur = &((*cur)["a"] = json::object());
  CHECK(orch::api::StrategicMergePatch(J("{}"), {{"status", shallow}}, deployment).ok());
  CHECK(orch::api::MergePatch(J("{}"), shallow).ok());
}

TEST_CASE("patch functions survive arbitrary inputs") {
  SchemaSet set;
  const Schema* deployment = DeploymentSchema(set);
  // Every pairing of odd documents and patches must yield a value or an error, never a crash.
  const std::vector<const char*> values = {
      "null",
      "1",
      "\"s\"",
      "[]",
      "{}",
      "[null]",
      "[[1]]",
      R"({"$patch":null})",
      R"({"$patch":"delete"})",
      R"({"$patch":"replace"})",
      R"({"metadata":null})",
      R"({"metadata":{"finalizers":null}})",
      R"({"metadata":{"finalizers":[null,{}]}})",
      R"({"spec":{"template":{"spec":{"containers":[null]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"name":null}]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"name":{"x":1}},{"name":[1]}]}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[null,1,"x"]}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],
          "containers":[{"$patch":"replace"},{"name":"c"}]}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[],"containers":[]}}}})",
      R"({"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}})",
      R"({"metadata":{"$deleteFromPrimitiveList/finalizers":[{"a":1}]}})",
      R"({"metadata":{"$retainKeys":[1,null,"name"],"name":"x"}})",
      R"({"spec":{"strategy":{"$retainKeys":[],"type":null}}})",
      R"([{"op":"add","path":"/-","value":1}])",
      R"([{"op":"move","from":"/a","path":"/a/b"}])",
      R"([{"op":"copy","from":"","path":"/x"}])",
      R"([{"op":"remove","path":"/a/-"}])",
      R"([{"op":"add","path":"/a/-99999999999999999999","value":1}])",
  };
  for (const char* a : values) {
    for (const char* b : values) {
      json doc = J(a), patch = J(b);
      INFO(a << " + " << b);
      // The exception safety net must never be what answered.
      auto no_escape = [](const orch::Status& s) {
        return s.message().find("unexpected failure") == std::string::npos;
      };
      CHECK(no_escape(orch::api::MergePatch(doc, patch).status()));
      CHECK(no_escape(orch::api::StrategicMergePatch(doc, patch, deployment).status()));
      auto decoded = orch::api::DecodeJsonPatch(patch);
      CHECK(no_escape(decoded.status()));
      if (decoded.ok()) CHECK(no_escape(orch::api::ApplyJsonPatch(doc, *decoded).status()));
    }
  }
}

TEST_CASE("strategic merge patch with the built-in Deployment schema") {
  auto builtins = orch::api::LoadBuiltinSchemas();
  REQUIRE(builtins.ok());
  const Schema* schema = (*builtins)->FindKind("apps", "v1", "Deployment");
  REQUIRE(schema != nullptr);
  json live = J(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","finalizers":["a"]},
      "spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},
        "template":{"spec":{"containers":[
          {"name":"web","image":"nginx:1.24","ports":[{"containerPort":80,"protocol":"TCP"}]},
          {"name":"log","image":"busybox"}]}}}})");
  json patch = J(R"({"metadata":{"finalizers":["b"]},
      "spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"},
        "template":{"spec":{"containers":[{"name":"web","image":"nginx:1.25",
          "ports":[{"containerPort":443}]}]}}}})");
  auto r = orch::api::StrategicMergePatch(live, patch, schema);
  INFO((r.ok() ? r->dump() : r.status().ToString()));
  REQUIRE(r.ok());
  CHECK((*r)["metadata"]["finalizers"] == J(R"(["b","a"])"));
  CHECK((*r)["spec"]["strategy"] == J(R"({"type":"Recreate"})"));
  CHECK((*r)["spec"]["template"]["spec"]["containers"] ==
        J(R"([{"name":"web","image":"nginx:1.25","ports":[{"containerPort":443},
                {"containerPort":80,"protocol":"TCP"}]},{"name":"log","image":"busybox"}])"));
}
