// The garbage collector against the fake API: dependents of a deleted owner go (background),
// foreground deletion waits for blocking dependents, orphan deletion strips owner references,
// and a dependent with a surviving owner only loses the reference to the gone one.
#include "garbage_collector.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json ConfigMap(const std::string& name, json owners = json::array()) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}, {"namespace", "default"}}}};
  if (!owners.empty()) cm["metadata"]["ownerReferences"] = owners;
  return cm;
}

json Owner(const json& obj, const std::string& api_version, const std::string& kind,
           bool block = false) {
  return {{"apiVersion", api_version},
          {"kind", kind},
          {"name", obj["metadata"]["name"]},
          {"uid", obj["metadata"]["uid"]},
          {"blockOwnerDeletion", block}};
}

struct GcFixture : ControllerFixture {
  GcFixture() { Add(orch::NewGarbageCollector(context)); }
  bool Exists(const orch::ResourceRef& ref, const std::string& name) {
    return api.Get(ref, "default", name).ok();
  }
  json Create(const orch::ResourceRef& ref, const json& obj) {
    auto created = api.Create(ref, "default", obj);
    REQUIRE(created.ok());
    return *created;
  }
};

json Rs(const std::string& name) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"replicas", 0}, {"selector", {{"matchLabels", {{"app", name}}}}}}}};
}

}  // namespace

TEST_CASE("helpers: finalizers and api groups") {
  json obj = {{"metadata", {{"finalizers", {"orphan", "x/y"}}}}};
  CHECK(ctrl::HasFinalizer(obj, "orphan"));
  CHECK_FALSE(ctrl::HasFinalizer(obj, "foregroundDeletion"));
  CHECK(ctrl::GroupOf("apps/v1") == "apps");
  CHECK(ctrl::GroupOf("v1").empty());
}

TEST_CASE("background: dependents of a deleted owner are deleted") {
  GcFixture f;
  json owner = f.Create(resources::kConfigMaps, ConfigMap("owner"));
  f.Create(resources::kConfigMaps, ConfigMap("child", {Owner(owner, "v1", "ConfigMap")}));
  json rs = f.Create(resources::kReplicaSets, Rs("rs"));
  f.Create(resources::kSecrets, {{"apiVersion", "v1"},
                                 {"kind", "Secret"},
                                 {"metadata",
                                  {{"name", "s"},
                                   {"namespace", "default"},
                                   {"ownerReferences", {Owner(rs, "apps/v1", "ReplicaSet")}}}}});
  // An owner that exists keeps its dependents.
  CHECK_FALSE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "child"); },
                        std::chrono::milliseconds(300)));
  REQUIRE(f.api.Delete(resources::kConfigMaps, "default", "owner").ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "child"); }));
  REQUIRE(f.api.Delete(resources::kReplicaSets, "default", "rs").ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kSecrets, "s"); }));
}

TEST_CASE("a dependent whose owner never existed is collected; one with another owner stays") {
  GcFixture f;
  json ghost = {
      {"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "ghost"}, {"uid", "no-such-uid"}};
  json alive = f.Create(resources::kConfigMaps, ConfigMap("alive"));
  f.Create(resources::kConfigMaps, ConfigMap("lonely", {ghost}));
  f.Create(resources::kConfigMaps, ConfigMap("shared", {ghost, Owner(alive, "v1", "ConfigMap")}));
  // Owners of kinds the collector does not know are assumed present.
  f.Create(resources::kConfigMaps, ConfigMap("custom", {{{"apiVersion", "example.com/v1"},
                                                         {"kind", "Widget"},
                                                         {"name", "w"},
                                                         {"uid", "w-uid"}}}));
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "lonely"); }));
  REQUIRE(WaitUntil([&] {
    json shared = f.Get(resources::kConfigMaps, "shared");
    return shared["metadata"]["ownerReferences"].size() == 1;
  }));
  CHECK(f.Get(resources::kConfigMaps, "shared")["metadata"]["ownerReferences"][0]["name"] ==
        "alive");
  CHECK(f.Exists(resources::kConfigMaps, "custom"));
}

TEST_CASE("orphan: dependents lose the reference and stay; the owner goes") {
  GcFixture f;
  json owner = f.Create(resources::kReplicaSets, Rs("owner"));
  f.Create(resources::kConfigMaps, ConfigMap("a", {Owner(owner, "apps/v1", "ReplicaSet", true)}));
  f.Create(resources::kConfigMaps, ConfigMap("b", {Owner(owner, "apps/v1", "ReplicaSet")}));
  orch::DeleteOptions orphan;
  orphan.propagation_policy = "Orphan";
  auto deleted = f.api.Delete(resources::kReplicaSets, "default", "owner", orphan);
  REQUIRE(deleted.ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kReplicaSets, "owner"); }));
  for (const char* name : {"a", "b"}) {
    json cm = f.Get(resources::kConfigMaps, name);
    CHECK(ctrl::Field(cm, {"metadata", "ownerReferences"}).empty());
  }
}

TEST_CASE("foreground: the owner stays until its blocking dependents are gone") {
  GcFixture f;
  json owner =
      f.Create(resources::kDeployments, {{"apiVersion", "apps/v1"},
                                         {"kind", "Deployment"},
                                         {"metadata", {{"name", "d"}, {"namespace", "default"}}}});
  json rs = Rs("d-1");
  rs["metadata"]["ownerReferences"] = {Owner(owner, "apps/v1", "Deployment", true)};
  rs = f.Create(resources::kReplicaSets, rs);
  // A grandchild with a finalizer of its own holds the whole chain.
  json cm = ConfigMap("held", {Owner(rs, "apps/v1", "ReplicaSet", true)});
  cm["metadata"]["finalizers"] = {"example.com/hold"};
  f.Create(resources::kConfigMaps, cm);

  orch::DeleteOptions foreground;
  foreground.propagation_policy = "Foreground";
  REQUIRE(f.api.Delete(resources::kDeployments, "default", "d", foreground).ok());
  // The chain is deleted from the leaves up: the ReplicaSet waits for its child in turn.
  REQUIRE(WaitUntil([&] {
    auto held = f.api.Get(resources::kConfigMaps, "default", "held");
    return held.ok() && ctrl::IsBeingDeleted(*held);
  }));
  auto rs_now = f.api.Get(resources::kReplicaSets, "default", "d-1");
  REQUIRE(rs_now.ok());
  CHECK(ctrl::HasFinalizer(*rs_now, ctrl::kForegroundFinalizer));
  CHECK(f.Exists(resources::kDeployments, "d"));

  // The last finalizer goes: everything follows.
  f.Patch(resources::kConfigMaps, "held", {{"metadata", {{"finalizers", json::array()}}}});
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kReplicaSets, "d-1"); }));
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kDeployments, "d"); }));
}

TEST_CASE("foreground with no dependents finishes at once") {
  GcFixture f;
  f.Create(resources::kConfigMaps, ConfigMap("alone"));
  orch::DeleteOptions foreground;
  foreground.propagation_policy = "Foreground";
  auto deleted = f.api.Delete(resources::kConfigMaps, "default", "alone", foreground);
  REQUIRE(deleted.ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "alone"); }));
}

TEST_CASE("custom resources: watched from their definition, as owners and as dependents") {
  GcFixture f;
  const orch::ResourceRef crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions", false};
  const orch::ResourceRef widgets{"example.com", "v1", "widgets"};
  json crd = {{"apiVersion", "apiextensions.k8s.io/v1"},
              {"kind", "CustomResourceDefinition"},
              {"metadata", {{"name", "widgets.example.com"}}},
              {"spec",
               {{"group", "example.com"},
                {"scope", "Namespaced"},
                {"names", {{"kind", "Widget"}, {"plural", "widgets"}}},
                {"versions",
                 {{{"name", "v1beta1"}, {"served", true}, {"storage", false}},
                  {{"name", "v1"}, {"served", true}, {"storage", true}}}}}}};
  REQUIRE(f.api.Create(crds, "", crd).ok());

  // A custom resource owning a ConfigMap (the reference names a version other than storage's).
  json widget = f.Create(widgets, {{"apiVersion", "example.com/v1"},
                                   {"kind", "Widget"},
                                   {"metadata", {{"name", "w"}, {"namespace", "default"}}}});
  f.Create(resources::kConfigMaps,
           ConfigMap("widget-child", {Owner(widget, "example.com/v1beta1", "Widget")}));
  // A custom resource owned by a ConfigMap.
  json owner = f.Create(resources::kConfigMaps, ConfigMap("cm-owner"));
  f.Create(widgets, {{"apiVersion", "example.com/v1"},
                     {"kind", "Widget"},
                     {"metadata",
                      {{"name", "owned"},
                       {"namespace", "default"},
                       {"ownerReferences", {Owner(owner, "v1", "ConfigMap")}}}}});

  CHECK_FALSE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "widget-child"); },
                        std::chrono::milliseconds(300)));
  REQUIRE(f.api.Delete(widgets, "default", "w").ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(resources::kConfigMaps, "widget-child"); }));
  REQUIRE(f.api.Delete(resources::kConfigMaps, "default", "cm-owner").ok());
  REQUIRE(WaitUntil([&] { return !f.Exists(widgets, "owned"); }));
}
