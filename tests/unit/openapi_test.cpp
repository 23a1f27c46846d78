// Tests of the OpenAPI documents: what kubectl reads from v3 (fieldValidation on PATCH, gvks,
// merge keys through allOf/$ref, explain's list path), the index and its hashes, v2 and its
// gnostic protobuf encoding.
#include "openapi.h"

#include <catch2/catch.hpp>
#include <functional>

#include "schema_loader.h"

using namespace orch::api;

namespace {

constexpr const char* kMeta = R"(package io.k8s.apimachinery.pkg.apis.meta.v1
type ObjectMeta "Standard object metadata."
  name string "Name of the object."
  labels map[string]
  ownerReferences []OwnerReference merge=uid
type OwnerReference maptype=atomic
  uid string required
type ListMeta
  resourceVersion string
type LabelSelector maptype=atomic
  matchLabels map[string]
type Status gvk=v1/Status "The result of an operation."
  message string
type DeleteOptions gvk=v1/DeleteOptions gvk=meta.k8s.io/v1/DeleteOptions
  propagationPolicy string
type Patch "The body of a PATCH request."
package io.k8s.apimachinery.pkg.api.resource
type Quantity = quantity "A fixed-point number."
package io.k8s.apimachinery.pkg.util.intstr
type IntOrString = int-or-string "An int32 or a string."
)";

constexpr const char* kApps = R"(package io.k8s.api.apps.v1
type Deployment gvk=apps/v1/Deployment "Deployment manages pods."
  apiVersion string
  kind string
  metadata ObjectMeta default={} "Standard object metadata."
  spec DeploymentSpec default={} "Desired behaviour of the Deployment."
type DeploymentSpec
  replicas int32 default=1 min=0
  selector LabelSelector required "Label query over pods."
  template io.k8s.api.core.v1.PodTemplateSpec required
  strategy DeploymentStrategy patch=retainKeys "How to replace pods."
type DeploymentStrategy
  type string enum=Recreate|RollingUpdate
  maxSurge IntOrString
package io.k8s.api.autoscaling.v1
type Scale gvk=autoscaling/v1/Scale
  metadata io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta
  spec ScaleSpec
type ScaleSpec
  replicas int32
package io.k8s.api.policy.v1
type Eviction gvk=policy/v1/Eviction
  metadata io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta
)";

constexpr const char* kCore = R"(package io.k8s.api.core.v1
type Pod gvk=v1/Pod
  apiVersion string
  kind string
  metadata ObjectMeta
  spec PodSpec
type PodTemplateSpec
  metadata ObjectMeta
  spec PodSpec
type PodSpec
  containers []Container required merge=name keys=name "List of containers."
  nodeSelector map[string] maptype=atomic
type Container
  name string required
  resources map[Quantity]
  ports []ContainerPort merge=containerPort list=map keys=containerPort,protocol
type ContainerPort
  containerPort int32 required
  protocol string default="TCP"
type Namespace gvk=v1/Namespace
  apiVersion string
  kind string
  metadata ObjectMeta
)";

std::unique_ptr<SchemaSet> LoadFixture() {
  auto r = LoadSchemas({{"meta.schema", kMeta}, {"apps.schema", kApps}, {"core.schema", kCore}});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

OpenApiResource Resource(const std::string& group, const std::string& plural,
                         const std::string& kind, bool namespaced = true) {
  OpenApiResource r;
  r.group = group;
  r.version = "v1";
  r.plural = plural;
  r.kind = kind;
  r.namespaced = namespaced;
  return r;
}

OpenApiResource::Subresource Sub(const std::string& name, const std::string& group = "",
                                 const std::string& kind = "") {
  OpenApiResource::Subresource s;
  s.name = name;
  if (!kind.empty()) {
    s.group = group;
    s.version = "v1";
    s.kind = kind;
    s.own_kind = true;
  }
  return s;
}

std::vector<OpenApiResource> Resources() {
  OpenApiResource deployments = Resource("apps", "deployments", "Deployment");
  deployments.subresources = {Sub("status"), Sub("scale", "autoscaling", "Scale")};
  OpenApiResource pods = Resource("", "pods", "Pod");
  pods.subresources = {Sub("status"), Sub("log"), Sub("exec"),
                       Sub("eviction", "policy", "Eviction")};
  return {pods, Resource("", "namespaces", "Namespace", false), deployments};
}

json V3(const SchemaSet& set, const std::vector<OpenApiResource>& resources,
        const std::string& gv) {
  auto r = BuildOpenApiV3(resources, set, gv);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return std::move(r).value();
}

// kubectl's query_param_verifier_v3: the PATCH operation for the gvk lists the query parameter.
bool SupportsFieldValidation(const json& doc, const json& gvk) {
  bool found = false;
  for (const auto& [path, item] : doc["paths"].items()) {
    if (!item.contains("patch")) continue;
    const json& op = item["patch"];
    if (op.value("x-kubernetes-group-version-kind", json()) != gvk) continue;
    found = true;
    bool listed = false;
    for (const json& p : op.value("parameters", json::array())) {
      if (p.value("name", "") == "fieldValidation" && p.value("in", "") == "query") listed = true;
    }
    if (!listed) return false;  // kubectl may pick any matching operation
  }
  return found;
}

// strategicpatch.PatchMetaFromOpenAPIV3: follow properties through allOf[0] and $ref.
const json& Resolve(const json& doc, const json& s) {
  const json* cur = &s;
  if (cur->contains("allOf")) cur = &(*cur)["allOf"][0];
  if (cur->contains("$ref")) {
    std::string ref = (*cur)["$ref"];
    const std::string prefix = "#/components/schemas/";
    REQUIRE(ref.rfind(prefix, 0) == 0);
    return doc["components"]["schemas"].at(ref.substr(prefix.size()));
  }
  return *cur;
}

void CheckRefsResolve(const json& doc, const std::string& prefix, const json& definitions) {
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if (k == "properties" && v.is_object()) {
          for (const auto& [name, prop] : v.items()) walk(prop);  // names are not keywords
        } else if (k == "$ref") {
          std::string ref = v;
          INFO(ref);
          REQUIRE(ref.rfind(prefix, 0) == 0);
          CHECK(definitions.contains(ref.substr(prefix.size())));
        } else {
          walk(v);
        }
      }
    } else if (j.is_array()) {
      for (const json& e : j) walk(e);
    }
  };
  walk(doc);
}

// A minimal protobuf reader: field number -> raw values, for checking the encoding.
struct ProtoField {
  int number = 0;
  int wire = 0;
  uint64_t varint = 0;
  std::string bytes;
};

bool ParseProto(std::string_view data, std::vector<ProtoField>& out) {
  size_t i = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= data.size()) return false;
      auto b = static_cast<unsigned char>(data[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  while (i < data.size()) {
    uint64_t key;
    if (!varint(key)) return false;
    ProtoField f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      if (!varint(f.varint)) return false;
    } else if (f.wire == 1) {
      if (i + 8 > data.size()) return false;
      f.bytes = std::string(data.substr(i, 8));
      i += 8;
    } else if (f.wire == 2) {
      uint64_t len;
      if (!varint(len) || i + len > data.size()) return false;
      f.bytes = std::string(data.substr(i, len));
      i += len;
    } else {
      return false;
    }
    out.push_back(std::move(f));
  }
  return true;
}

std::vector<ProtoField> Fields(std::string_view data) {
  std::vector<ProtoField> out;
  REQUIRE(ParseProto(data, out));
  return out;
}

std::vector<std::string> Strings(const std::vector<ProtoField>& fields, int number) {
  std::vector<std::string> out;
  for (const auto& f : fields) {
    if (f.number == number) out.push_back(f.bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("v3 PATCH operations list fieldValidation and carry the kind") {
  auto set = LoadFixture();
  json doc = V3(*set, Resources(), "apis/apps/v1");
  CHECK(doc["openapi"] == "3.0.0");
  json gvk = {{"group", "apps"}, {"kind", "Deployment"}, {"version", "v1"}};
  CHECK(SupportsFieldValidation(doc, gvk));
  CHECK(SupportsFieldValidation(doc,
                                {{"group", "autoscaling"}, {"kind", "Scale"}, {"version", "v1"}}));

  const json& item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
  const json& patch = item["patch"];
  CHECK(patch["x-kubernetes-action"] == "patch");
  CHECK(patch["x-kubernetes-group-version-kind"] == gvk);
  CHECK(patch["operationId"] == "patchAppsV1NamespacedDeployment");
  CHECK(patch["requestBody"]["content"].contains("application/strategic-merge-patch+json"));
  CHECK(patch["requestBody"]["content"].contains("application/apply-patch+yaml"));
  CHECK(patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/io.k8s.api.apps.v1.Deployment");
  for (const char* m : {"get", "put", "delete"}) CHECK(item.contains(m));
  CHECK(item["get"]["x-kubernetes-action"] == "get");
  CHECK(item["parameters"][0]["name"] == "name");
  CHECK(item["parameters"][1]["name"] == "namespace");

  const json& collection = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
  CHECK(collection["get"]["x-kubernetes-action"] == "list");
  CHECK(collection["post"]["x-kubernetes-action"] == "post");
  CHECK(collection["delete"]["x-kubernetes-action"] == "deletecollection");
  bool post_validates = false;
  for (const json& p : collection["post"]["parameters"]) {
    post_validates = post_validates || p["name"] == "fieldValidation";
  }
  CHECK(post_validates);
  // explain finds the kind through the cluster-wide list path's GET.
  CHECK(doc["paths"]["/apis/apps/v1/deployments"]["get"]["x-kubernetes-group-version-kind"] == gvk);
  CHECK(doc["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"));
  CHECK(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["put"]
           ["x-kubernetes-group-version-kind"]["kind"] == "Scale");
  CheckRefsResolve(doc, "#/components/schemas/", doc["components"]["schemas"]);
}

TEST_CASE("v3 components hold every reachable type with gvks and field attributes") {
  auto set = LoadFixture();
  json doc = V3(*set, Resources(), "apis/apps/v1");
  const json& schemas = doc["components"]["schemas"];
  const json& deploy = schemas["io.k8s.api.apps.v1.Deployment"];
  CHECK(deploy["x-kubernetes-group-version-kind"] ==
        json::array({{{"group", "apps"}, {"kind", "Deployment"}, {"version", "v1"}}}));
  CHECK(deploy["description"] == "Deployment manages pods.");
  CHECK(deploy["type"] == "object");
  for (const char* t :
       {"io.k8s.api.apps.v1.DeploymentList", "io.k8s.api.apps.v1.DeploymentSpec",
        "io.k8s.api.core.v1.PodTemplateSpec", "io.k8s.api.core.v1.Container",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.api.autoscaling.v1.Scale"}) {
    INFO(t);
    CHECK(schemas.contains(t));
  }
  CHECK_FALSE(schemas.contains("io.k8s.api.core.v1.Pod"));  // not reachable from apps/v1
  CHECK(
      schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"] ==
      "DeploymentList");

  // A field referring to a named type with its own description: allOf + description (+default).
  const json& props = deploy["properties"];
  CHECK(props["spec"] ==
        json{{"allOf", {{{"$ref", "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}}}},
             {"default", json::object()},
             {"description", "Desired behaviour of the Deployment."}});
  CHECK(props["kind"] == json{{"type", "string"}});
  const json& spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"];
  CHECK(spec["required"] == json::array({"selector", "template"}));
  CHECK(spec["properties"]["replicas"] ==
        json{{"type", "integer"}, {"format", "int32"}, {"default", 1}, {"minimum", 0.0}});
  CHECK(spec["properties"]["template"] ==
        json{{"$ref", "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}});
  CHECK(spec["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys");
  CHECK(schemas["io.k8s.api.apps.v1.DeploymentStrategy"]["properties"]["type"]["enum"] ==
        json::array({"Recreate", "RollingUpdate"}));
  CHECK(schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"] ==
        true);
  CHECK(schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"].contains("oneOf"));
  CHECK(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"] ==
        "atomic");

  // Walk like kubectl's strategic-merge lookup: Deployment.spec.template.spec.containers.
  const json* s = &deploy;
  for (const char* f : {"spec", "template", "spec"}) s = &Resolve(doc, (*s)["properties"][f]);
  const json& containers = (*s)["properties"]["containers"];
  CHECK(containers["x-kubernetes-patch-merge-key"] == "name");
  CHECK(containers["x-kubernetes-patch-strategy"] == "merge");
  CHECK(containers["x-kubernetes-list-type"] == "map");
  CHECK(containers["x-kubernetes-list-map-keys"] == json::array({"name"}));
  CHECK(containers["description"] == "List of containers.");
  const json& container = Resolve(doc, containers["items"]);
  CHECK(container["properties"]["ports"]["x-kubernetes-list-map-keys"] ==
        json::array({"containerPort", "protocol"}));
  CHECK(container["properties"]["resources"]["additionalProperties"]["$ref"] ==
        "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity");
}

TEST_CASE("v3 core documents: subresources, cluster-scoped kinds, unknown group-versions") {
  auto set = LoadFixture();
  json doc = V3(*set, Resources(), "api/v1");
  const json& paths = doc["paths"];
  CHECK(paths.contains("/api/v1/namespaces/{namespace}/pods/{name}"));
  CHECK(paths.contains("/api/v1/pods"));
  CHECK(paths.contains("/api/v1/namespaces/{name}"));  // cluster-scoped
  CHECK(paths.contains("/api/v1/namespaces"));
  CHECK(paths["/api/v1/namespaces/{name}"]["parameters"].size() == 2);  // name, pretty
  CHECK(SupportsFieldValidation(doc, {{"group", ""}, {"kind", "Namespace"}, {"version", "v1"}}));
  CHECK(SupportsFieldValidation(doc, {{"group", ""}, {"kind", "Pod"}, {"version", "v1"}}));
  const json& eviction = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"];
  CHECK(eviction["post"]["x-kubernetes-group-version-kind"] ==
        json{{"group", "policy"}, {"kind", "Eviction"}, {"version", "v1"}});
  CHECK(doc["components"]["schemas"].contains("io.k8s.api.policy.v1.Eviction"));
  const json& log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
  CHECK(log["operationId"] == "readCoreV1NamespacedPodLog");
  bool follow = false;
  for (const json& p : log["parameters"]) follow = follow || p["name"] == "follow";
  CHECK(follow);
  CHECK(paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]["x-kubernetes-action"] ==
        "connect");
  CheckRefsResolve(doc, "#/components/schemas/", doc["components"]["schemas"]);

  auto missing = BuildOpenApiV3(Resources(), *set, "apis/nope/v1");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == orch::StatusCode::kNotFound);
}

TEST_CASE("custom resources get documents without strategic merge") {
  auto set = LoadFixture();
  SchemaSet crd_set;
  auto root = AddCustomResourceSchema(
      crd_set, json::parse(R"({"type":"object","properties":{"spec":{"type":"object",
        "properties":{"size":{"type":"integer","minimum":1},
                      "port":{"x-kubernetes-int-or-string":true}}}}})"),
      "stable.example.com", "v1", "Widget", set.get());
  REQUIRE(root.ok());
  OpenApiResource widgets = Resource("stable.example.com", "widgets", "Widget");
  widgets.schema = *root;
  widgets.list_schema = crd_set.FindKind("stable.example.com", "v1", "WidgetList");
  widgets.strategic_merge_patch = false;
  widgets.subresources = {Sub("status")};
  auto resources = Resources();
  resources.push_back(widgets);
  json doc = V3(*set, resources, "apis/stable.example.com/v1");
  json gvk = {{"group", "stable.example.com"}, {"kind", "Widget"}, {"version", "v1"}};
  CHECK(SupportsFieldValidation(doc, gvk));
  const json& patch =
      doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
  CHECK(patch["operationId"] == "patchStableExampleComV1NamespacedWidget");
  CHECK_FALSE(patch["requestBody"]["content"].contains("application/strategic-merge-patch+json"));
  CHECK(patch["requestBody"]["content"].contains("application/merge-patch+json"));
  const json& schemas = doc["components"]["schemas"];
  REQUIRE(schemas.contains("com.example.stable.v1.Widget"));
  CHECK(schemas.contains("com.example.stable.v1.WidgetList"));
  CHECK(schemas.contains("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
  const json& widget = schemas["com.example.stable.v1.Widget"];
  CHECK(widget["properties"]["spec"]["properties"]["size"] ==
        json{{"type", "integer"}, {"minimum", 1.0}});
  CHECK(widget["properties"]["spec"]["properties"]["port"]["x-kubernetes-int-or-string"] == true);
  CHECK(widget["properties"]["metadata"]["allOf"][0]["$ref"] ==
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  CheckRefsResolve(doc, "#/components/schemas/", schemas);

  // Without list_schema the list type is synthesized.
  resources.back().list_schema = nullptr;
  json again = V3(*set, resources, "apis/stable.example.com/v1");
  CHECK(again["components"]["schemas"]["com.example.stable.v1.WidgetList"]
             ["x-kubernetes-group-version-kind"][0]["kind"] == "WidgetList");
  CHECK(again["paths"]["/apis/stable.example.com/v1/widgets"]["get"]["responses"]["200"]["content"]
             ["application/json"]["schema"]["$ref"] ==
        "#/components/schemas/com.example.stable.v1.WidgetList");
  CheckRefsResolve(again, "#/components/schemas/", again["components"]["schemas"]);
}

TEST_CASE("the v3 index lists every group-version with a stable hash") {
  auto set = LoadFixture();
  OpenApiDocuments docs(Resources(), set.get(), "v1.32.0");
  auto index = docs.V3Index();
  REQUIRE(index.ok());
  json body = json::parse((*index)->body);
  REQUIRE(body["paths"].size() == 2);
  std::string url = body["paths"]["apis/apps/v1"]["serverRelativeURL"];
  CHECK(url.rfind("/openapi/v3/apis/apps/v1?hash=", 0) == 0);
  std::string hash = url.substr(url.find('=') + 1);
  CHECK(hash.size() == 32);
  CHECK(body["paths"]["api/v1"]["serverRelativeURL"].get<std::string>().rfind(
            "/openapi/v3/api/v1?hash=", 0) == 0);

  auto gv = docs.V3GroupVersion("apis/apps/v1");
  REQUIRE(gv.ok());
  CHECK((*gv)->hash == hash);
  CHECK((*gv)->content_type == std::string("application/json"));
  CHECK(docs.V3Hash("apis/apps/v1") == hash);
  CHECK(docs.V3GroupVersion("apis/apps/v1")->get() == gv->get());  // cached

  // Same inputs, same hashes (clients cache by URL across server restarts).
  auto set2 = LoadFixture();
  OpenApiDocuments again(Resources(), set2.get(), "v1.32.0");
  CHECK((*again.V3Index())->body == (*index)->body);
  CHECK(OpenApiHash("abc") == OpenApiHash("abc"));
  CHECK(OpenApiHash("abc") != OpenApiHash("abd"));
  CHECK(docs.V3GroupVersion("apis/x/v1").status().code() == orch::StatusCode::kNotFound);
}

TEST_CASE("v2 document and its gnostic protobuf encoding") {
  auto set = LoadFixture();
  auto built = BuildOpenApiV2(Resources(), *set, "v1.32.0");
  REQUIRE(built.ok());
  const json& v2 = *built;
  CHECK(v2["swagger"] == "2.0");
  const json& patch =
      v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
  CHECK(patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment");
  CHECK(std::find(patch["consumes"].begin(), patch["consumes"].end(),
                  "application/strategic-merge-patch+json") != patch["consumes"].end());
  CHECK(patch["parameters"][0]["in"] == "body");
  bool field_validation = false;
  for (const json& p : patch["parameters"]) {
    field_validation = field_validation || (p["name"] == "fieldValidation" && p["in"] == "query");
  }
  CHECK(field_validation);
  const json& defs = v2["definitions"];
  CHECK(defs["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"] ==
        json{{"$ref", "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
             {"default", json::object()},
             {"description", "Desired behaviour of the Deployment."}});
  CHECK(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string");
  CHECK(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string");
  CheckRefsResolve(v2, "#/definitions/", defs);

  auto bytes = EncodeOpenApiV2Protobuf(v2);
  REQUIRE(bytes.ok());
  auto doc = Fields(*bytes);
  CHECK(Strings(doc, 1) == std::vector<std::string>{"2.0"});
  auto info = Fields(Strings(doc, 2).at(0));
  CHECK(Strings(info, 2) == std::vector<std::string>{"v1.32.0"});
  // Paths { repeated NamedPathItem path = 2 }: names are the paths.
  std::vector<std::string> path_names;
  for (const std::string& named : Strings(Fields(Strings(doc, 8).at(0)), 2)) {
    path_names.push_back(Strings(Fields(named), 1).at(0));
  }
  CHECK(path_names.size() == v2["paths"].size());
  CHECK(std::find(path_names.begin(), path_names.end(),
                  "/apis/apps/v1/namespaces/{namespace}/deployments/{name}") != path_names.end());
  // Definitions { repeated NamedSchema additional_properties = 1 }.
  std::string deployment;
  size_t definitions = 0;
  for (const std::string& named : Strings(Fields(Strings(doc, 9).at(0)), 1)) {
    auto f = Fields(named);
    ++definitions;
    if (Strings(f, 1).at(0) == "io.k8s.api.apps.v1.Deployment") deployment = Strings(f, 2).at(0);
  }
  CHECK(definitions == defs.size());
  REQUIRE_FALSE(deployment.empty());
  auto schema = Fields(deployment);
  // vendor_extension = 31: NamedAny{name, Any{yaml = 2}} with the gvk list as JSON text.
  auto ext = Fields(Strings(schema, 31).at(0));
  CHECK(Strings(ext, 1).at(0) == "x-kubernetes-group-version-kind");
  CHECK(json::parse(Strings(Fields(Strings(ext, 2).at(0)), 2).at(0)) ==
        defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]);
  // type = 22: TypeItem{value = 1}.
  CHECK(Strings(Fields(Strings(schema, 22).at(0)), 1) == std::vector<std::string>{"object"});

  OpenApiDocuments docs(Resources(), set.get(), "v1.32.0");
  auto proto = docs.V2Protobuf();
  REQUIRE(proto.ok());
  CHECK((*proto)->body == *bytes);
  CHECK((*proto)->content_type ==
        std::string("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"));
  CHECK(json::parse((*docs.V2Json())->body) == v2);
}

TEST_CASE("documents for the built-in schemas") {
  auto builtin = LoadBuiltinSchemas();
  REQUIRE(builtin.ok());
  const SchemaSet& set = **builtin;
  if (set.FindKind("apps", "v1", "Deployment") == nullptr) return;  // schemas not written yet
  std::vector<OpenApiResource> resources;
  for (const auto& [name, s] : set.named()) {
    for (const auto& g : s->gvks) {
      if (g.kind.size() > 4 && g.kind.compare(g.kind.size() - 4, 4, "List") == 0) continue;
      if (set.FindKind(g.group, g.version, g.kind + "List") == nullptr) continue;
      OpenApiResource r = Resource(g.group, g.kind + "s", g.kind);
      r.version = g.version;
      resources.push_back(r);
    }
  }
  OpenApiDocuments docs(resources, &set, "v1.32.0");
  size_t total = 0;
  for (const std::string& gv : docs.GroupVersionPaths()) {
    auto doc = docs.V3GroupVersion(gv);
    INFO(gv);
    REQUIRE(doc.ok());
    json parsed = json::parse((*doc)->body);
    CheckRefsResolve(parsed, "#/components/schemas/", parsed["components"]["schemas"]);
    total += (*doc)->body.size();
  }
  auto v2 = docs.V2Protobuf();
  REQUIRE(v2.ok());
  WARN("v3 documents: " << total << " bytes; v2 protobuf: " << (*v2)->body.size() << " bytes");
}
