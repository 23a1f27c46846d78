// Server-side apply and managedFields tracking: ownership, pruning, conflicts and the exact
// managedFields encoding kubectl shows, on a hand-built Deployment schema.
#include "apply.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "patch.h"
#include "schema_loader.h"

using orch::StatusCode;
using orch::api::ApplyConflictMessage;
using orch::api::FieldManagerOptions;
using orch::api::json;
using orch::api::Schema;
using orch::api::SchemaSet;
using orch::api::ServerSideApply;
using orch::api::UpdateManagedFields;

namespace {

json J(const char* text) {
  return json::parse(text);
}

Schema* Node(SchemaSet& set, Schema::Type type) {
  Schema* s = set.New();
  s->type = type;
  return s;
}

void Prop(Schema* object, const std::string& name, const Schema* schema) {
  object->properties.push_back({name, "", schema});
}

Schema* ListOf(SchemaSet& set, const Schema* items) {
  Schema* s = Node(set, Schema::Type::kArray);
  s->items = items;
  return s;
}

// A Deployment as the real schema declares it for apply: containers a map list keyed by name,
// ports keyed by containerPort and protocol (protocol defaults to TCP), finalizers a set,
// args atomic, labels a map, env merged by name through its patch strategy only.
const Schema* DeploymentSchema(SchemaSet& set) {
  Schema* str = Node(set, Schema::Type::kString);
  Schema* integer = Node(set, Schema::Type::kInteger);

  Schema* labels = Node(set, Schema::Type::kObject);
  labels->additional_properties = str;

  Schema* meta = Node(set, Schema::Type::kObject);
  for (const char* f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    Prop(meta, f, str);
  }
  Prop(meta, "generation", integer);
  Prop(meta, "labels", labels);
  Prop(meta, "annotations", labels);
  Schema* finalizers = ListOf(set, str);
  finalizers->list_type = Schema::ListType::kSet;
  Prop(meta, "finalizers", finalizers);
  Prop(meta, "managedFields", ListOf(set, Node(set, Schema::Type::kObject)));

  Schema* protocol = Node(set, Schema::Type::kString);
  protocol->default_value = "TCP";
  Schema* port = Node(set, Schema::Type::kObject);
  Prop(port, "containerPort", integer);
  Prop(port, "protocol", protocol);
  Prop(port, "name", str);
  Schema* ports = ListOf(set, port);
  ports->list_type = Schema::ListType::kMap;
  ports->list_map_keys = {"containerPort", "protocol"};
  ports->patch_strategy = "merge";
  ports->patch_merge_key = "containerPort";

  Schema* env_var = Node(set, Schema::Type::kObject);
  Prop(env_var, "name", str);
  Prop(env_var, "value", str);
  Schema* env = ListOf(set, env_var);
  env->patch_strategy = "merge";
  env->patch_merge_key = "name";

  Schema* resources = Node(set, Schema::Type::kObject);
  Prop(resources, "limits", labels);

  Schema* container = Node(set, Schema::Type::kObject);
  Prop(container, "name", str);
  Prop(container, "image", str);
  Prop(container, "args", ListOf(set, str));
  Prop(container, "ports", ports);
  Prop(container, "env", env);
  Prop(container, "resources", resources);
  Schema* containers = ListOf(set, container);
  containers->list_type = Schema::ListType::kMap;
  containers->list_map_keys = {"name"};

  Schema* selector = Node(set, Schema::Type::kObject);
  selector->map_type = "atomic";
  Prop(selector, "matchLabels", labels);

  Schema* pod_spec = Node(set, Schema::Type::kObject);
  Prop(pod_spec, "containers", containers);
  Prop(pod_spec, "nodeSelector", labels);
  Schema* template_spec = Node(set, Schema::Type::kObject);
  Prop(template_spec, "metadata", meta);
  Prop(template_spec, "spec", pod_spec);

  Schema* spec = Node(set, Schema::Type::kObject);
  Prop(spec, "replicas", integer);
  Prop(spec, "paused", Node(set, Schema::Type::kBoolean));
  Prop(spec, "selector", selector);
  Prop(spec, "template", template_spec);

  Schema* status = Node(set, Schema::Type::kObject);
  Prop(status, "replicas", integer);

  Schema* root = Node(set, Schema::Type::kObject);
  root->name = "io.k8s.api.apps.v1.Deployment";
  Prop(root, "apiVersion", str);
  Prop(root, "kind", str);
  Prop(root, "metadata", meta);
  Prop(root, "spec", spec);
  Prop(root, "status", status);
  return set.AddNamed(root);
}

FieldManagerOptions At(const char* now, const char* subresource = "") {
  FieldManagerOptions o;
  o.api_version = "apps/v1";
  o.kind = "Deployment";
  o.now = now;
  o.subresource = subresource;
  return o;
}

constexpr const char* kT1 = "2024-01-01T00:00:01Z";
constexpr const char* kT2 = "2024-01-01T00:00:02Z";
constexpr const char* kT3 = "2024-01-01T00:00:03Z";
constexpr const char* kT4 = "2024-01-01T00:00:04Z";

json Deployment(const char* spec_json, const char* labels = R"({"app":"web"})") {
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}, {"namespace", "default"}, {"labels", J(labels)}}}};
  d["spec"] = J(spec_json);
  return d;
}

// The managedFields entry of `manager` (and operation), or null.
json Entry(const json& obj, const std::string& manager, const std::string& operation) {
  for (const json& e : obj["metadata"]["managedFields"]) {
    if (e["manager"] == manager && e["operation"] == operation) return e;
  }
  return nullptr;
}

json Without(json obj, const char* field) {
  obj["metadata"].erase(field);
  return obj;
}

// Applies and insists on success without conflicts.
json MustApply(const json* live, const json& config, const std::string& manager,
               const Schema* schema, const FieldManagerOptions& options, bool force = false) {
  auto r = ServerSideApply(live, config, manager, force, schema, options);
  INFO((r.ok() ? ApplyConflictMessage(r->conflicts) : r.status().ToString()));
  REQUIRE(r.ok());
  REQUIRE(r->conflicts.empty());
  return r->object;
}

// An update (kubectl edit/scale/label) of `live` to `next` by `manager`.
json MustUpdate(const json& live, json next, const std::string& manager, const Schema* schema,
                const FieldManagerOptions& options) {
  orch::Status s = UpdateManagedFields(&live, next, manager, schema, options);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return next;
}

}  // namespace

TEST_CASE("apply creates the object and records the exact upstream fieldsV1") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json config = Deployment(R"({"replicas":2,"template":{"spec":{"containers":[
      {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}]}]}}})");
  json obj = MustApply(nullptr, config, "kubectl", schema, At(kT1));

  CHECK(Without(obj, "managedFields") == config);
  REQUIRE(obj["metadata"]["managedFields"].size() == 1);
  json entry = obj["metadata"]["managedFields"][0];
  CHECK(entry == J(R"({
    "manager":"kubectl","operation":"Apply","apiVersion":"apps/v1",
    "time":"2024-01-01T00:00:01Z","fieldsType":"FieldsV1",
    "fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},
                "f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{
                  "k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{},
                    "f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},
                      "f:containerPort":{}}}}}}}}}})"));
}

TEST_CASE("re-applying the same configuration changes nothing, not even times") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json config = Deployment(R"({"replicas":2,"selector":{"matchLabels":{"app":"web"}}})");
  json first = MustApply(nullptr, config, "kubectl", schema, At(kT1));
  auto again = ServerSideApply(&first, config, "kubectl", false, schema, At(kT2));
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);
  CHECK(again->object == first);

  // A change moves the time; an unchanged field set keeps the entry otherwise as it was.
  json changed_config = config;
  changed_config["spec"]["replicas"] = 3;
  auto changed = ServerSideApply(&first, changed_config, "kubectl", false, schema, At(kT2));
  REQUIRE(changed.ok());
  CHECK(changed->changed);
  CHECK(changed->object["spec"]["replicas"] == 3);
  CHECK(Entry(changed->object, "kubectl", "Apply")["time"] == kT2);
  CHECK(Entry(changed->object, "kubectl", "Apply")["fieldsV1"] ==
        Entry(first, "kubectl", "Apply")["fieldsV1"]);
}

TEST_CASE("fields the manager applied before and omits now are removed") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json v1 = Deployment(R"({"replicas":2,"paused":true,"template":{"spec":{
      "nodeSelector":{"disk":"ssd","zone":"a"},
      "containers":[{"name":"a","image":"a:1","args":["x","y"]},{"name":"b","image":"b:1"}]}}})",
                       R"({"app":"web","tier":"front"})");
  json obj = MustApply(nullptr, v1, "kubectl", schema, At(kT1));

  json v2 = Deployment(R"({"replicas":2,"template":{"spec":{"nodeSelector":{"disk":"ssd"},
      "containers":[{"name":"b","image":"b:2"}]}}})");
  obj = MustApply(&obj, v2, "kubectl", schema, At(kT2));
  CHECK(Without(obj, "managedFields") == v2);
}

TEST_CASE("fields owned by another manager survive when the applier drops them") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json v1 = Deployment(R"({"replicas":2})", R"({"app":"web","tier":"front"})");
  json obj = MustApply(nullptr, v1, "kubectl", schema, At(kT1));

  // `kubectl label --overwrite tier=back` (an Update) takes .metadata.labels.tier.
  json labelled = obj;
  labelled["metadata"]["labels"]["tier"] = "back";
  obj = MustUpdate(obj, labelled, "kubectl-label", schema, At(kT2));
  CHECK(Entry(obj, "kubectl-label", "Update")["fieldsV1"] ==
        J(R"({"f:metadata":{"f:labels":{"f:tier":{}}}})"));
  CHECK(Entry(obj, "kubectl", "Apply")["fieldsV1"] ==
        J(R"({"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{}}})"));

  json v2 = Deployment(R"({"replicas":2})", R"({"app":"web"})");
  obj = MustApply(&obj, v2, "kubectl", schema, At(kT3));
  CHECK(obj["metadata"]["labels"] == J(R"({"app":"web","tier":"back"})"));
}

TEST_CASE("two appliers of the same value share the field") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json a = Deployment(R"({"replicas":2})");
  json obj = MustApply(nullptr, a, "alpha", schema, At(kT1));
  json b = Deployment(R"({"replicas":2,"paused":false})");
  obj = MustApply(&obj, b, "beta", schema, At(kT2));
  CHECK(Entry(obj, "alpha", "Apply")["fieldsV1"]["f:spec"] == J(R"({"f:replicas":{}})"));
  CHECK(Entry(obj, "beta", "Apply")["fieldsV1"]["f:spec"] ==
        J(R"({"f:replicas":{},"f:paused":{}})"));

  // alpha stops setting replicas: beta still owns it, so it stays.
  json a2 = Deployment(R"({})");
  a2["spec"] = json::object();
  obj = MustApply(&obj, a2, "alpha", schema, At(kT3));
  CHECK(obj["spec"]["replicas"] == 2);
}

TEST_CASE("a field another manager owns with another value is a conflict, unless forced") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  // Created by client-side `kubectl apply`: an Update by kubectl-client-side-apply.
  json created = Deployment(R"({"replicas":2,"template":{"spec":{"containers":[
      {"name":"nginx","image":"nginx:1.24"}]}}})");
  REQUIRE(UpdateManagedFields(nullptr, created, "kubectl-client-side-apply", schema, At(kT1)).ok());
  REQUIRE(created["metadata"]["managedFields"].size() == 1);

  json config = Deployment(R"({"replicas":3})");
  auto r = ServerSideApply(&created, config, "helm", false, schema, At(kT2));
  REQUIRE(r.ok());
  REQUIRE(r->conflicts.size() == 1);
  CHECK(r->conflicts[0].field == ".spec.replicas");
  CHECK(r->conflicts[0].manager == "kubectl-client-side-apply");
  CHECK(ApplyConflictMessage(r->conflicts) ==
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using "
        "apps/v1: .spec.replicas");
  CHECK(orch::api::ApplyConflictCauses(r->conflicts) ==
        J(R"([{"type":"FieldManagerConflict","field":".spec.replicas",
               "message":"conflict with \"kubectl-client-side-apply\" using apps/v1"}])"));
  CHECK(r->object == created);

  // The same value is no conflict: both own it.
  json same = Deployment(R"({"replicas":2})");
  json shared = MustApply(&created, same, "helm", schema, At(kT2));
  CHECK(Entry(shared, "helm", "Apply")["fieldsV1"]["f:spec"] == J(R"({"f:replicas":{}})"));
  CHECK(Entry(shared, "kubectl-client-side-apply", "Update")["fieldsV1"]["f:spec"].contains(
      "f:replicas"));

  // Forced, ownership moves.
  json forced = MustApply(&created, config, "helm", schema, At(kT2), /*force=*/true);
  CHECK(forced["spec"]["replicas"] == 3);
  CHECK_FALSE(Entry(forced, "kubectl-client-side-apply", "Update")["fieldsV1"]["f:spec"].contains(
      "f:replicas"));
  CHECK(Entry(forced, "helm", "Apply")["fieldsV1"]["f:spec"] == J(R"({"f:replicas":{}})"));
}

TEST_CASE("kubectl apply --server-side after kubectl scale conflicts on replicas") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json config = Deployment(R"({"replicas":2,"template":{"spec":{"containers":[
      {"name":"nginx","image":"nginx:1.25"}]}}})");
  json obj = MustApply(nullptr, config, "kubectl", schema, At(kT1));

  // kubectl scale --replicas=5: an Update through the scale subresource.
  json scaled = obj;
  scaled["spec"]["replicas"] = 5;
  obj = MustUpdate(obj, scaled, "kubectl", schema, At(kT2, "scale"));
  json scale_entry = Entry(obj, "kubectl", "Update");
  CHECK(scale_entry == J(R"({"manager":"kubectl","operation":"Update","apiVersion":"apps/v1",
      "time":"2024-01-01T00:00:02Z","fieldsType":"FieldsV1",
      "fieldsV1":{"f:spec":{"f:replicas":{}}},"subresource":"scale"})"));
  CHECK_FALSE(Entry(obj, "kubectl", "Apply")["fieldsV1"]["f:spec"].contains("f:replicas"));

  auto r = ServerSideApply(&obj, config, "kubectl", false, schema, At(kT3));
  REQUIRE(r.ok());
  REQUIRE(r->conflicts.size() == 1);
  CHECK(ApplyConflictMessage(r->conflicts) ==
        "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" "
        "using apps/v1: .spec.replicas");
  CHECK(r->object == obj);

  // Dropping replicas from the configuration is the documented way out.
  json without = config;
  without["spec"].erase("replicas");
  json kept = MustApply(&obj, without, "kubectl", schema, At(kT3));
  CHECK(kept["spec"]["replicas"] == 5);
}

TEST_CASE("kubectl migrating from client-side apply takes over unchanged fields") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json manifest = Deployment(R"({"replicas":2})");
  json created = manifest;
  created["metadata"]["annotations"] = {
      {"kubectl.kubernetes.io/last-applied-configuration", manifest.dump() + "\n"}};
  REQUIRE(UpdateManagedFields(nullptr, created, "kubectl-client-side-apply", schema, At(kT1)).ok());

  json config = Deployment(R"({"replicas":4})");
  json obj = MustApply(&created, config, "kubectl", schema, At(kT2));
  CHECK(obj["spec"]["replicas"] == 4);
  // The annotation follows what was applied (upstream's lastAppliedUpdater).
  CHECK(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] ==
        orch::api::patch_util::GoJson(config) + "\n");

  // Another manager gets no such leniency.
  auto other = ServerSideApply(&created, config, "helm", false, schema, At(kT2));
  REQUIRE(other.ok());
  CHECK(other->conflicts.size() == 1);

  // Nor does kubectl for a field changed since the last client-side apply.
  json edited = created;
  edited["spec"]["replicas"] = 7;
  edited = MustUpdate(created, edited, "kubectl-edit", schema, At(kT2));
  auto r = ServerSideApply(&edited, config, "kubectl", false, schema, At(kT3));
  REQUIRE(r.ok());
  REQUIRE(r->conflicts.size() == 1);
  CHECK(r->conflicts[0].manager == "kubectl-edit");
}

TEST_CASE("associative lists merge by key, follow the configuration's order, and prune") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json v1 = Deployment(R"({"template":{"spec":{"containers":[
      {"name":"a","image":"a:1","env":[{"name":"X","value":"1"}]},
      {"name":"b","image":"b:1"}]}}})");
  json obj = MustApply(nullptr, v1, "kubectl", schema, At(kT1));

  // Another manager adds a container; the applier reorders its own two and changes one.
  json with_c = obj;
  with_c["spec"]["template"]["spec"]["containers"].push_back({{"name", "c"}, {"image", "c:1"}});
  obj = MustUpdate(obj, with_c, "injector", schema, At(kT2));
  CHECK(Entry(obj, "injector", "Update")["fieldsV1"] == J(R"({"f:spec":{"f:template":{"f:spec":{
      "f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:image":{},"f:name":{}}}}}}})"));

  json v2 = Deployment(R"({"template":{"spec":{"containers":[
      {"name":"b","image":"b:2"},{"name":"a","image":"a:1","env":[{"name":"X","value":"1"}]}]}}})");
  obj = MustApply(&obj, v2, "kubectl", schema, At(kT3));
  json names = json::array();
  for (const json& c : obj["spec"]["template"]["spec"]["containers"]) names.push_back(c["name"]);
  // The configuration's order for its items; the injector's item keeps its place after the
  // live items before it (structured-merge-diff's list merge).
  CHECK(names == J(R"(["b","c","a"])"));
  CHECK(obj["spec"]["template"]["spec"]["containers"][0]["image"] == "b:2");

  // Dropping `a` removes it; `c` (the injector's) stays.
  json v3 = Deployment(R"({"template":{"spec":{"containers":[{"name":"b","image":"b:2"}]}}})");
  obj = MustApply(&obj, v3, "kubectl", schema, At(kT4));
  CHECK(obj["spec"]["template"]["spec"]["containers"] ==
        J(R"([{"name":"b","image":"b:2"},{"name":"c","image":"c:1"}])"));
}

TEST_CASE("sets, atomic lists and atomic maps") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json v1 = Deployment(R"({"selector":{"matchLabels":{"app":"web","x":"y"}},
      "template":{"spec":{"containers":[{"name":"a","args":["1","2"]}]}}})");
  v1["metadata"]["finalizers"] = {"example.com/a", "example.com/b"};
  json obj = MustApply(nullptr, v1, "kubectl", schema, At(kT1));
  json fields = Entry(obj, "kubectl", "Apply")["fieldsV1"];
  CHECK(fields["f:metadata"]["f:finalizers"] ==
        J(R"({"v:\"example.com/a\"":{},"v:\"example.com/b\"":{}})"));
  CHECK(fields["f:spec"]["f:selector"] == json::object());  // atomic map: one leaf
  CHECK(fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"a\"}"]["f:args"] ==
        json::object());

  // A controller adds a finalizer; the applier drops b: the controller's stays.
  json with_c = obj;
  with_c["metadata"]["finalizers"].push_back("example.com/c");
  obj = MustUpdate(obj, with_c, "controller", schema, At(kT2));
  json v2 = Deployment(R"({"selector":{"matchLabels":{"app":"web"}},
      "template":{"spec":{"containers":[{"name":"a","args":["3"]}]}}})");
  v2["metadata"]["finalizers"] = {"example.com/a"};
  obj = MustApply(&obj, v2, "kubectl", schema, At(kT3));
  CHECK(obj["metadata"]["finalizers"] == J(R"(["example.com/a","example.com/c"])"));
  CHECK(obj["spec"]["selector"] == J(R"({"matchLabels":{"app":"web"}})"));
  CHECK(obj["spec"]["template"]["spec"]["containers"][0]["args"] == J(R"(["3"])"));
}

TEST_CASE("reset fields are not owned and nulls in the configuration are dropped") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  FieldManagerOptions options = At(kT1);
  options.reset_fields = {{"status"}};
  json config = Deployment(R"({"replicas":1,"paused":null})");
  config["status"] = {{"replicas", 9}};
  json obj = MustApply(nullptr, config, "kubectl", schema, options);
  CHECK_FALSE(obj["spec"].contains("paused"));
  json fields = Entry(obj, "kubectl", "Apply")["fieldsV1"];
  CHECK_FALSE(fields.contains("f:status"));
  CHECK(fields["f:spec"] == J(R"({"f:replicas":{},"f:paused":{}})"));
}

TEST_CASE("objects without schema: maps are granular, lists atomic") {
  json config = J(R"({"apiVersion":"example.com/v1","kind":"Widget",
      "metadata":{"name":"w"},"spec":{"size":3,"ports":[1,2],"nested":{"a":"b"}}})");
  FieldManagerOptions options;
  options.now = kT1;
  json obj = MustApply(nullptr, config, "kubectl", nullptr, options);
  CHECK(Entry(obj, "kubectl", "Apply") == J(R"({"manager":"kubectl","operation":"Apply",
      "apiVersion":"example.com/v1","time":"2024-01-01T00:00:01Z","fieldsType":"FieldsV1",
      "fieldsV1":{"f:spec":{".":{},"f:size":{},"f:ports":{},
                            "f:nested":{".":{},"f:a":{}}}}})"));

  json v2 = J(R"({"apiVersion":"example.com/v1","kind":"Widget",
      "metadata":{"name":"w"},"spec":{"ports":[3]}})");
  obj = MustApply(&obj, v2, "kubectl", nullptr, options);
  CHECK(obj["spec"] == J(R"({"ports":[3]})"));
}

TEST_CASE("updates move ownership to the writer and forget removed fields") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json created = Deployment(R"({"replicas":1,"paused":false})");
  created["metadata"]["uid"] = "u-1";
  created["metadata"]["resourceVersion"] = "5";
  REQUIRE(UpdateManagedFields(nullptr, created, "kubectl-create", schema, At(kT1)).ok());
  CHECK(created["metadata"]["managedFields"] == J(R"([{"manager":"kubectl-create",
      "operation":"Update","apiVersion":"apps/v1","time":"2024-01-01T00:00:01Z",
      "fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},
      "f:spec":{".":{},"f:paused":{},"f:replicas":{}}}}])"));

  // kubectl edit changes replicas and deletes paused.
  json edited = created;
  edited["spec"]["replicas"] = 4;
  edited["spec"].erase("paused");
  edited = MustUpdate(created, edited, "kubectl-edit", schema, At(kT2));
  CHECK(Entry(edited, "kubectl-edit", "Update")["fieldsV1"] ==
        J(R"({"f:spec":{"f:replicas":{}}})"));
  CHECK(Entry(edited, "kubectl-create", "Update")["fieldsV1"] ==
        J(R"({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{}})"));

  // A write that changes nothing changes no entry and no time.
  json again = MustUpdate(edited, edited, "kubectl-edit", schema, At(kT3));
  CHECK(again == edited);

  // Entries come out sorted: Apply before Update, then by time.
  json applied = MustApply(&edited, Deployment(R"({"paused":true})"), "ssa", schema, At(kT3));
  json order = json::array();
  for (const json& e : applied["metadata"]["managedFields"]) order.push_back(e["manager"]);
  CHECK(order == J(R"(["ssa","kubectl-create","kubectl-edit"])"));
}

TEST_CASE("managedFields sent with a write: replaced, reset, or kept untracked") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json created = Deployment(R"({"replicas":1})");
  REQUIRE(UpdateManagedFields(nullptr, created, "creator", schema, At(kT1)).ok());

  // `[{}]` clears them and the object stays untracked afterwards.
  json reset = created;
  reset["metadata"]["managedFields"] = J("[{}]");
  reset = MustUpdate(created, reset, "editor", schema, At(kT2));
  CHECK_FALSE(reset["metadata"].contains("managedFields"));
  json next = reset;
  next["spec"]["replicas"] = 2;
  next = MustUpdate(reset, next, "editor", schema, At(kT3));
  CHECK_FALSE(next["metadata"].contains("managedFields"));

  // Applying to an untracked object gives the existing fields to before-first-apply.
  auto applied =
      ServerSideApply(&next, Deployment(R"({"replicas":3})"), "kubectl", false, schema, At(kT4));
  REQUIRE(applied.ok());
  REQUIRE(applied->conflicts.size() == 1);
  CHECK(ApplyConflictMessage(applied->conflicts) ==
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: "
        ".spec.replicas");

  // managedFields sent with an update that decode replace the stored ones.
  json replaced = created;
  replaced["metadata"]["managedFields"] = J(R"([{"manager":"someone","operation":"Update",
      "apiVersion":"apps/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}])");
  replaced = MustUpdate(created, replaced, "editor", schema, At(kT2));
  CHECK(replaced["metadata"]["managedFields"].size() == 1);
  CHECK(replaced["metadata"]["managedFields"][0]["manager"] == "someone");

  // Garbage sent is ignored; garbage stored is kept rather than failing the write.
  json garbage = created;
  garbage["metadata"]["managedFields"] = J(R"([{"manager":"x","operation":"Delete"}])");
  garbage = MustUpdate(created, garbage, "editor", schema, At(kT2));
  CHECK(garbage["metadata"]["managedFields"] == created["metadata"]["managedFields"]);
}

TEST_CASE("more than ten updaters fold the oldest into ancient-changes") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json obj = Deployment(R"({})", R"({})");
  REQUIRE(UpdateManagedFields(nullptr, obj, "m0", schema, At("2024-01-01T00:00:00Z")).ok());
  for (int i = 1; i <= 12; ++i) {
    const std::string n = std::to_string(i);
    std::string label = "l", manager = "m";
    label += n;
    manager += n;
    json next = obj;
    next["metadata"]["labels"][label] = "v";
    char now[32];
    std::snprintf(now, sizeof(now), "2024-01-01T00:00:%02dZ", i);
    obj = MustUpdate(obj, next, manager, schema, At(now));
  }
  const json& entries = obj["metadata"]["managedFields"];
  CHECK(entries.size() == 10);
  json ancient = Entry(obj, "ancient-changes", "Update");
  REQUIRE(ancient.is_object());
  CHECK(ancient["fieldsV1"]["f:metadata"]["f:labels"].contains("f:l1"));
}

TEST_CASE("several conflicts are listed by manager") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json obj = Deployment(R"({"replicas":1,"paused":false})");
  REQUIRE(UpdateManagedFields(nullptr, obj, "creator", schema, At(kT1)).ok());
  json labelled = obj;
  labelled["metadata"]["labels"]["app"] = "other";
  obj = MustUpdate(obj, labelled, "labeller", schema, At(kT2));

  auto r = ServerSideApply(&obj, Deployment(R"({"replicas":2,"paused":true})", R"({"app":"x"})"),
                           "helm", false, schema, At(kT3));
  REQUIRE(r.ok());
  REQUIRE(r->conflicts.size() == 3);
  CHECK(ApplyConflictMessage(r->conflicts) ==
        "Apply failed with 3 conflicts: conflicts with \"creator\" using apps/v1:\n"
        "- .spec.paused\n- .spec.replicas\n"
        "conflicts with \"labeller\" using apps/v1:\n- .metadata.labels.app");
}

TEST_CASE("apply refuses bad configurations with upstream's messages") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json live = MustApply(nullptr, Deployment(R"({"replicas":1})"), "kubectl", schema, At(kT1));
  struct ErrorCase {
    const char* name;
    json config;
    StatusCode code;
    const char* message;
  };
  json managed = Deployment(R"({})");
  managed["metadata"]["managedFields"] = json::array();
  json wrong_version = Deployment(R"({})");
  wrong_version["apiVersion"] = "apps/v1beta1";
  json wrong_kind = Deployment(R"({})");
  wrong_kind["kind"] = "StatefulSet";
  const std::vector<ErrorCase> cases = {
      {"not an object", J("[1]"), StatusCode::kInvalidArgument,
       "error decoding patch: json: cannot unmarshal array into Go value of type "
       "map[string]interface {}"},
      {"managedFields set", managed, StatusCode::kInvalidArgument,
       "metadata.managedFields must be nil"},
      {"other version", wrong_version, StatusCode::kInvalidArgument,
       "invalid object type: apps/v1beta1, Kind=Deployment"},
      {"other kind", wrong_kind, StatusCode::kInvalidArgument,
       "invalid object type: apps/v1, Kind=StatefulSet"},
      {"container without its key",
       Deployment(R"({"template":{"spec":{"containers":[{"image":"x"}]}}})"), StatusCode::kInternal,
       "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
       ".spec.template.spec.containers: element 0: associative list with keys has an element "
       "that omits all key fields [\"name\"] (and doesn't have default values for any key "
       "fields)"},
      {"duplicate keys",
       Deployment(R"({"template":{"spec":{"containers":[{"name":"a"},{"name":"a"}]}}})"),
       StatusCode::kInternal,
       "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
       ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"},
      {"map in a set",
       [] {
         json d = Deployment(R"({})");
         d["metadata"]["finalizers"] = J(R"([{"a":1}])");
         return d;
       }(),
       StatusCode::kInternal, nullptr},
  };
  for (const ErrorCase& c : cases) {
    INFO(c.name);
    auto r = ServerSideApply(&live, c.config, "kubectl", false, schema, At(kT2));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == c.code);
    if (c.message != nullptr) CHECK(r.status().message() == c.message);
  }
  auto no_manager = ServerSideApply(&live, Deployment("{}"), "", false, schema, At(kT2));
  CHECK_FALSE(no_manager.ok());

  json broken = live;
  broken["metadata"]["managedFields"] = J(R"([{"manager":"x","operation":"Apply",
      "apiVersion":"apps/v1","fieldsType":"FieldsV1","fieldsV1":{"q":{}}}])");
  auto r = ServerSideApply(&broken, Deployment(R"({})"), "kubectl", false, schema, At(kT2));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInternal);
  CHECK(r.status().message().find("failed to decode managed fields") == 0);
}

TEST_CASE("deep configurations are refused and odd inputs never crash") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  json deep = Deployment(R"({})");
  json* cur = &deep["spec"];
  for (int i = 0; i < 300; ++i) cur = &((*cur)["x"] = json::object());
  auto r = ServerSideApply(nullptr, deep, "kubectl", false, schema, At(kT1));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  json deep_update = deep;
  CHECK_FALSE(UpdateManagedFields(nullptr, deep_update, "m", schema, At(kT1)).ok());

  const std::vector<const char*> specs = {
      R"({"replicas":"three"})",
      R"({"template":{"spec":{"containers":{"name":"a"}}}})",
      R"({"template":{"spec":{"containers":[null]}}})",
      R"({"template":{"spec":{"containers":[{"name":null}]}}})",
      R"({"template":{"spec":{"containers":[{"name":"a","ports":[{"protocol":"UDP"}]}]}}})",
      R"({"template":{"spec":{"containers":[{"name":"a","ports":[{}]}]}}})",
      R"({"template":{"spec":{"containers":[[1]]}}})",
      R"({"selector":[1,2]})",
      R"({"selector":null})",
      R"({"template":null})",
      R"([])",
      R"({"template":{"spec":{"containers":[{"name":{"deep":[1]}}]}}})",
  };
  for (const char* a : specs) {
    for (const char* b : specs) {
      INFO(a << " then " << b);
      json live = Deployment(a);
      json config = Deployment(b);
      orch::Status created = UpdateManagedFields(nullptr, live, "creator", schema, At(kT1));
      CHECK(created.message().find("unexpected") == std::string::npos);
      auto applied = ServerSideApply(&live, config, "kubectl", false, schema, At(kT2));
      CHECK(applied.status().message().find("unexpected") == std::string::npos);
      auto forced = ServerSideApply(&live, config, "kubectl", true, nullptr, At(kT2));
      CHECK(forced.status().message().find("unexpected") == std::string::npos);
      json updated = config;
      orch::Status s = UpdateManagedFields(&live, updated, "editor", schema, At(kT3));
      CHECK(s.message().find("unexpected") == std::string::npos);
    }
  }
}

TEST_CASE("server-side apply with the built-in Deployment schema") {
  auto builtins = orch::api::LoadBuiltinSchemas();
  REQUIRE(builtins.ok());
  const Schema* schema = (*builtins)->FindKind("apps", "v1", "Deployment");
  REQUIRE(schema != nullptr);
  json config = J(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","labels":{"app":"web"},"finalizers":["example.com/x"]},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[
          {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],
           "env":[{"name":"A","value":"1"}]}]}}}})");
  json obj = MustApply(nullptr, config, "kubectl", schema, At(kT1));
  json fields = Entry(obj, "kubectl", "Apply")["fieldsV1"];
  CHECK(fields["f:metadata"]["f:finalizers"] == J(R"({"v:\"example.com/x\"":{}})"));
  const json& container =
      fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
  CHECK(container["f:ports"] ==
        J(R"({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}})"));
  CHECK(container["f:env"] == J(R"({"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}})"));

  // kubectl scale, then the same apply: the upstream conflict.
  json scaled = obj;
  scaled["spec"]["replicas"] = 5;
  obj = MustUpdate(obj, scaled, "kubectl", schema, At(kT2, "scale"));
  auto r = ServerSideApply(&obj, config, "kubectl", false, schema, At(kT3));
  REQUIRE(r.ok());
  CHECK(ApplyConflictMessage(r->conflicts) ==
        "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" "
        "using apps/v1: .spec.replicas");
}

TEST_CASE("an applier that ends up owning nothing gets no entry") {
  SchemaSet set;
  const Schema* schema = DeploymentSchema(set);
  FieldManagerOptions options = At(kT1);
  options.reset_fields = {{"status"}};
  json live = MustApply(nullptr, Deployment(R"({"replicas":1})"), "kubectl", schema, options);
  json config = J(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default"},"status":{"replicas":5}})");
  options.now = kT2;
  auto r = ServerSideApply(&live, config, "status-writer", false, schema, options);
  REQUIRE(r.ok());
  CHECK(r->changed);
  CHECK(r->object["metadata"]["managedFields"].size() == 1);
  CHECK(Entry(r->object, "status-writer", "Apply").is_null());
}
