// Tests of the schema file loader: references across files, aliases, attributes, derived List
// kinds, errors with file:line, and the built-in schemas compiled into the binary.
#include "schema_loader.h"

#include <catch2/catch.hpp>
#include <chrono>

using namespace orch::api;

namespace {

constexpr const char* kMeta = R"(# meta types used by every kind
package io.k8s.apimachinery.pkg.apis.meta.v1

type ObjectMeta "Standard object metadata."
  name string "Name of the object."
  namespace string
  labels map[string] "Labels."
  creationTimestamp Time nullable
  ownerReferences []OwnerReference merge=uid keys=uid
  uid string

type OwnerReference maptype=atomic
  uid string required
  kind string required

type ListMeta
  resourceVersion string
  continue string

type LabelSelector maptype=atomic "A label query."
  matchLabels map[string]

type Time = string format=date-time "Time in RFC 3339."

package io.k8s.apimachinery.pkg.api.resource
type Quantity = quantity "A fixed-point number."

package io.k8s.apimachinery.pkg.util.intstr
type IntOrString = int-or-string "An int32 or a string."
)";

constexpr const char* kApps = R"(package io.k8s.api.apps.v1

type Deployment gvk=apps/v1/Deployment "Deployment manages pods."
  apiVersion string "APIVersion of the object."
  kind string "Kind of the object."
  metadata ObjectMeta default={} "Standard object metadata."
  spec DeploymentSpec default={} "Desired behaviour."

type DeploymentSpec
  replicas int32 default=1 min=0 "Number of desired pods."
  selector LabelSelector required
  template io.k8s.api.core.v1.PodTemplateSpec required default={}
  strategy DeploymentStrategy default={} patch=retainKeys
  paused boolean
  revisionHistoryLimit int32 default=10

type DeploymentStrategy
  type string enum=Recreate|RollingUpdate default="RollingUpdate" # the usual one
  rollingUpdate RollingUpdateDeployment

type RollingUpdateDeployment
  maxSurge IntOrString default="25%"
  maxUnavailable int-or-string
)";

constexpr const char* kCore = R"(package io.k8s.api.core.v1

type PodTemplateSpec
  metadata ObjectMeta default={}
  spec PodSpec default={}

type PodSpec
  containers []Container required merge=name keys=name "Containers of the pod, \"main\" first."
  restartPolicy string enum=Always|OnFailure|Never default="Always"
  nodeSelector map[string] maptype=atomic

type Container
  name string required
  image string
  command []string list=atomic
  resources ResourceRequirements default={}

type ResourceRequirements
  limits ResourceList
  requests map[quantity]

type ResourceList = map[Quantity]
)";

std::unique_ptr<SchemaSet> LoadFixture() {
  auto r = LoadSchemas(
      {{"meta_v1.schema", kMeta}, {"apps_v1.schema", kApps}, {"core_v1.schema", kCore}});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

const Schema* Field(const Schema* s, const std::string& name) {
  REQUIRE(s != nullptr);
  const Property* p = s->FindProperty(name);
  INFO("field " << name);
  REQUIRE(p != nullptr);
  REQUIRE(p->schema != nullptr);
  return p->schema;
}

std::string LoadError(const std::string& text) {
  auto r = LoadSchemas({{"meta_v1.schema", kMeta}, {"bad.schema", text}});
  REQUIRE_FALSE(r.ok());
  return r.status().message();
}

}  // namespace

TEST_CASE("loader resolves references across files and packages") {
  auto set = LoadFixture();
  const Schema* deploy = set->FindKind("apps", "v1", "Deployment");
  REQUIRE(deploy != nullptr);
  CHECK(deploy->name == "io.k8s.api.apps.v1.Deployment");
  CHECK(deploy->description == "Deployment manages pods.");
  REQUIRE(deploy->properties.size() == 4);
  CHECK(deploy->properties[0].name == "apiVersion");  // declaration order is kept
  CHECK(deploy->properties[2].description == "Standard object metadata.");

  // A named type with a field attribute is a per-field copy that points back to the type.
  const Schema* meta = Field(deploy, "metadata");
  CHECK(meta->name.empty());
  CHECK(meta->ref == set->Find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
  CHECK(meta->TypeName() == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  CHECK(meta->default_value == json::object());
  CHECK(meta->FindProperty("labels") != nullptr);  // the copy carries the type's fields

  const Schema* spec = Field(deploy, "spec");
  const Schema* template_spec = Field(spec, "template");
  CHECK(template_spec->TypeName() == "io.k8s.api.core.v1.PodTemplateSpec");  // forward, other file
  const Schema* containers = Field(Field(template_spec, "spec"), "containers");
  CHECK(containers->type == Schema::Type::kArray);
  CHECK(containers->patch_merge_key == "name");
  CHECK(containers->patch_strategy == "merge");
  CHECK(containers->list_type == Schema::ListType::kMap);
  CHECK(containers->list_map_keys == std::vector<std::string>{"name"});
  CHECK(containers->items == set->Find("io.k8s.api.core.v1.Container"));
  const Schema* pod_spec = set->Find("io.k8s.api.core.v1.PodSpec");
  CHECK(pod_spec->required == std::vector<std::string>{"containers"});
  CHECK(pod_spec->FindProperty("containers")->description ==
        "Containers of the pod, \"main\" first.");
  CHECK(spec->required == std::vector<std::string>{"selector", "template"});
}

TEST_CASE("loader applies attributes and aliases") {
  auto set = LoadFixture();
  const Schema* spec = set->Find("io.k8s.api.apps.v1.DeploymentSpec");
  const Schema* replicas = Field(spec, "replicas");
  CHECK(replicas->type == Schema::Type::kInteger);
  CHECK(replicas->format == "int32");
  CHECK(replicas->default_value == json(1));
  CHECK(replicas->minimum == 0.0);
  CHECK_FALSE(replicas->maximum.has_value());
  // Primitives without attributes share one node; attributes never leak into it.
  CHECK(Field(spec, "paused")->type == Schema::Type::kBoolean);
  CHECK(Field(spec, "revisionHistoryLimit")->default_value == json(10));

  const Schema* strategy = Field(spec, "strategy");
  CHECK(strategy->patch_strategy == "retainKeys");
  CHECK(set->Find("io.k8s.api.apps.v1.DeploymentStrategy")->patch_strategy.empty());
  const Schema* type = Field(strategy, "type");
  CHECK(type->enum_values == std::vector<json>{"Recreate", "RollingUpdate"});
  CHECK(type->default_value == json("RollingUpdate"));

  const Schema* time = set->Find("io.k8s.apimachinery.pkg.apis.meta.v1.Time");
  REQUIRE(time != nullptr);
  CHECK(time->type == Schema::Type::kString);
  CHECK(time->format == "date-time");
  CHECK(time->description == "Time in RFC 3339.");
  const Schema* created =
      Field(set->Find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"), "creationTimestamp");
  CHECK(created->ref == time);
  CHECK(created->nullable);
  CHECK_FALSE(time->nullable);

  // quantity / int-or-string refer to the named types when they exist.
  const Schema* rolling = set->Find("io.k8s.api.apps.v1.RollingUpdateDeployment");
  CHECK(Field(rolling, "maxUnavailable") ==
        set->Find("io.k8s.apimachinery.pkg.util.intstr.IntOrString"));
  CHECK(Field(rolling, "maxUnavailable")->int_or_string);
  CHECK(Field(rolling, "maxSurge")->default_value == json("25%"));
  const Schema* resources = set->Find("io.k8s.api.core.v1.ResourceRequirements");
  const Schema* limits = Field(resources, "limits");
  CHECK(limits->name == "io.k8s.api.core.v1.ResourceList");
  CHECK(limits->type == Schema::Type::kObject);
  CHECK(limits->additional_properties ==
        set->Find("io.k8s.apimachinery.pkg.api.resource.Quantity"));
  CHECK(Field(resources, "requests")->additional_properties->format == "quantity");

  CHECK(set->Find("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")->map_type == "atomic");
  CHECK(Field(set->Find("io.k8s.api.core.v1.PodSpec"), "nodeSelector")->map_type == "atomic");
  CHECK(Field(set->Find("io.k8s.api.core.v1.Container"), "command")->list_type ==
        Schema::ListType::kAtomic);
}

TEST_CASE("loader derives List kinds") {
  auto set = LoadFixture();
  const Schema* list = set->FindKind("apps", "v1", "DeploymentList");
  REQUIRE(list != nullptr);
  CHECK(list->name == "io.k8s.api.apps.v1.DeploymentList");
  CHECK(Field(list, "items")->items == set->FindKind("apps", "v1", "Deployment"));
  CHECK(Field(list, "metadata") == set->Find("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"));
  CHECK(Field(list, "kind")->type == Schema::Type::kString);
  CHECK(list->required == std::vector<std::string>{"items"});
  // Types without metadata get none.
  CHECK(set->Find("io.k8s.api.apps.v1.DeploymentSpecList") == nullptr);
}

TEST_CASE("loader reports errors with file and line") {
  CHECK(LoadError("package a.b\ntype X\n  foo Nope\n") == "bad.schema:3: unknown type \"Nope\"");
  CHECK(LoadError("package a.b\n\ntype X\n  foo string bogus=1\n")
            .find("bad.schema:4: bad attribute \"bogus=1\"") == 0);
  CHECK(LoadError("package a.b\ntype X\ntype X\n") ==
        "bad.schema:3: duplicate type a.b.X (first declared at bad.schema:2)");
  CHECK(LoadError("package a.b\ntype X\n  a string\n  a int32\n") ==
        "bad.schema:4: duplicate field \"a\" in a.b.X (first at bad.schema:3)");
  CHECK(LoadError("type X\n") == "bad.schema:1: type declared before any `package` line");
  CHECK(LoadError("package a.b\ntype X\n   a string\n").find("bad.schema:3: bad indentation") == 0);
  CHECK(LoadError("package a.b\ntype X\n  a string default=[1\n") ==
        "bad.schema:3: default is not valid JSON: [1");
  CHECK(LoadError("package a.b\ntype X\n  a int32 default=\"x\"\n") ==
        "bad.schema:3: default \"x\" does not fit the field's type");
  CHECK(LoadError("package a.b\ntype X\n  a string merge=name\n") ==
        "bad.schema:3: merge=, keys= and list= need a list type ([]T)");
  CHECK(LoadError("package a.b\ntype X\n  a string \"unterminated\n") ==
        "bad.schema:3: unterminated quoted string");
  CHECK(LoadError("package a.b\ntype X gvk=v1/X\ntype Y gvk=v1/X\n") ==
        "bad.schema:3: duplicate gvk v1/X (also on a.b.X)");
  CHECK(LoadError("package a.b\ntype A = B\ntype B = A\n").find("alias cycle") !=
        std::string::npos);
  // Several errors are all reported, one per line.
  std::string many = LoadError("package a.b\ntype X\n  a Nope1\n  b Nope2\n");
  CHECK(many == "bad.schema:3: unknown type \"Nope1\"\nbad.schema:4: unknown type \"Nope2\"");
}

TEST_CASE("loader reads protobuf field numbers") {
  auto r = LoadSchemas({{"meta_v1.schema", kMeta},
                        {"x.schema",
                         "package a.b\ntype V\n  name string pb=1 required\n"
                         "  hostPath string pb=2.1 omitzero default=\"x\" \"Inline.\"\n"
                         "  emptyDir boolean pb=2.2\n  note string\n"}});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  const Schema* v = (*r)->Find("a.b.V");
  REQUIRE(v != nullptr);
  const Property* name = v->FindProperty("name");
  const Property* host = v->FindProperty("hostPath");
  const Property* note = v->FindProperty("note");
  REQUIRE((name != nullptr && host != nullptr && note != nullptr));
  CHECK(name->proto_field == 1);
  CHECK(name->proto_inline == 0);
  CHECK_FALSE(name->proto_omit_zero);
  CHECK(host->proto_field == 1);
  CHECK(host->proto_inline == 2);
  CHECK(host->proto_omit_zero);
  CHECK(host->description == "Inline.");
  CHECK(host->schema->default_value == json("x"));
  CHECK(note->proto_field == 0);
  // Lists get ListMeta 1 and items 2.
  auto lists = LoadSchemas(
      {{"meta_v1.schema", kMeta}, {"apps_v1.schema", kApps}, {"core_v1.schema", kCore}});
  REQUIRE(lists.ok());
  const Schema* list = (*lists)->FindKind("apps", "v1", "DeploymentList");
  REQUIRE(list != nullptr);
  CHECK(list->FindProperty("metadata")->proto_field == 1);
  CHECK(list->FindProperty("items")->proto_field == 2);

  CHECK(LoadError("package a.b\ntype X\n  a string pb=0\n").find("bad.schema:3: bad pb=\"0\"") ==
        0);
  CHECK(LoadError("package a.b\ntype X\n  a string pb=x\n").find("bad pb=") != std::string::npos);
  CHECK(LoadError("package a.b\ntype X\n  a string pb=19000\n").find("bad pb=") !=
        std::string::npos);
  CHECK(LoadError("package a.b\ntype X\n  a string pb=1\n  b string pb=1\n") ==
        "bad.schema:4: pb= of \"b\" clashes with \"a\" (at bad.schema:3)");
  CHECK(LoadError("package a.b\ntype X\n  a string pb=2\n  b string pb=2.1\n") ==
        "bad.schema:4: pb= of \"b\" clashes with \"a\" (at bad.schema:3)");
  CHECK(LoadError("package a.b\ntype X\n  a string omitzero\n") ==
        "bad.schema:3: omitzero needs pb=");
  CHECK(LoadError("package a.b\ntype X\n  a []string pb=1 omitzero\n")
            .find("omitzero needs a "
                  "scalar") != std::string::npos);
  CHECK(LoadError("package a.b\ntype X = string pb=1\n") ==
        "bad.schema:2: `pb=` and `omitzero` are for fields, not types");
}

TEST_CASE("loader accepts comments, CRLF and JSON defaults with spaces") {
  auto r = LoadSchemas({{"x.schema",
                         "# header\r\npackage a.b # pkg\r\n\r\ntype X \"An X # not a "
                         "comment\"\r\n  m map[string] default={\"k\": \"v w\"} # trailing\r\n"}});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  const Schema* x = (*r)->Find("a.b.X");
  REQUIRE(x != nullptr);
  CHECK(x->description == "An X # not a comment");
  CHECK(Field(x, "m")->default_value == json{{"k", "v w"}});
}

TEST_CASE("built-in schemas load fast") {
  auto start = std::chrono::steady_clock::now();
  auto r = LoadBuiltinSchemas();
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  WARN("LoadBuiltinSchemas: " << BuiltinSchemaFiles().size() << " files, " << (*r)->named().size()
                              << " types, " << (*r)->node_count() << " nodes in " << ms.count()
                              << " ms");
  REQUIRE_FALSE(BuiltinSchemaFiles().empty());
  const Schema* deploy = (*r)->FindKind("apps", "v1", "Deployment");
  REQUIRE(deploy != nullptr);
  CHECK((*r)->FindKind("apps", "v1", "DeploymentList") != nullptr);
  const Schema* s = deploy;
  for (const char* f : {"spec", "template", "spec", "containers"}) s = Field(s, f);
  CHECK(s->type == Schema::Type::kArray);
  CHECK(s->patch_merge_key == "name");
  CHECK(s->patch_strategy == "merge");
  REQUIRE(s->items != nullptr);
  CHECK(s->items->TypeName() == "io.k8s.api.core.v1.Container");
  // Every kind carries the fields every object has.
  for (const auto& [name, type] : (*r)->named()) {
    for (const auto& gvk : type->gvks) {
      if ((*r)->FindKind(gvk.group, gvk.version, gvk.kind + "List") == nullptr) continue;
      INFO(name);
      CHECK(type->FindProperty("apiVersion") != nullptr);
      CHECK(type->FindProperty("kind") != nullptr);
    }
  }
}
