// The namespace controller against the fake API: deleting a namespace removes its content
// (and nothing outside it), reports progress in the conditions, waits for objects held by
// finalizers, and finally removes the `kubernetes` finalizer so that the namespace goes.
#include "namespace_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json Namespace(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}}},
          {"spec", {{"finalizers", {"kubernetes"}}}},
          {"status", {{"phase", "Active"}}}};
}

json InNs(const std::string& kind, const std::string& api_version, const std::string& name,
          const std::string& ns) {
  return {{"apiVersion", api_version},
          {"kind", kind},
          {"metadata", {{"name", name}, {"namespace", ns}}}};
}

}  // namespace

TEST_CASE("a deleted namespace is emptied, then finalized") {
  ControllerFixture f;
  orch::NamespaceControllerOptions options;
  options.recheck = std::chrono::milliseconds(20);
  f.Add(orch::NewNamespaceController(f.context, options));
  REQUIRE(f.api.Create(resources::kNamespaces, "", Namespace("team")).ok());
  REQUIRE(f.api.Create(resources::kConfigMaps, "team", InNs("ConfigMap", "v1", "c", "team")).ok());
  REQUIRE(f.api.Create(resources::kSecrets, "team", InNs("Secret", "v1", "s", "team")).ok());
  json held = InNs("Deployment", "apps/v1", "d", "team");
  held["metadata"]["finalizers"] = {"example.com/hold"};
  REQUIRE(f.api.Create(resources::kDeployments, "team", held).ok());
  REQUIRE(f.api.Create(resources::kConfigMaps, "default", InNs("ConfigMap", "v1", "c", "default"))
              .ok());

  auto deleted = f.api.Delete(resources::kNamespaces, "", "team");
  REQUIRE(deleted.ok());
  CHECK((*deleted)["status"]["phase"] == "Terminating");
  // New content is refused meanwhile.
  auto refused =
      f.api.Create(resources::kConfigMaps, "team", InNs("ConfigMap", "v1", "new", "team"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("because it is being terminated") != std::string::npos);

  REQUIRE(WaitUntil([&] {
    return f.api.List(resources::kConfigMaps, "team")->items.empty() &&
           f.api.List(resources::kSecrets, "team")->items.empty();
  }));
  // The held Deployment keeps the namespace, and the conditions say why.
  REQUIRE(WaitUntil([&] {
    auto ns = f.api.Get(resources::kNamespaces, "", "team");
    const json* c =
        ns.ok() ? ctrl::FindCondition((*ns)["status"], "NamespaceContentRemaining") : nullptr;
    return c != nullptr && (*c)["status"] == "True";
  }));
  json ns = f.Get(resources::kNamespaces, "team", "");
  const json* remaining = ctrl::FindCondition(ns["status"], "NamespaceContentRemaining");
  CHECK((*remaining)["reason"] == "SomeResourcesRemain");
  CHECK((*remaining)["message"] ==
        "Some resources are remaining: deployments.apps has 1 resource instances");
  const json* finalizers = ctrl::FindCondition(ns["status"], "NamespaceFinalizersRemaining");
  REQUIRE(finalizers != nullptr);
  CHECK((*finalizers)["message"] ==
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource "
        "instances");
  CHECK(ns["spec"]["finalizers"] == json{"kubernetes"});

  // Once the last object goes, so does the namespace.
  REQUIRE(f.api
              .Patch(resources::kDeployments, "team", "d", orch::PatchType::kMerge,
                     R"({"metadata":{"finalizers":[]}})")
              .ok());
  REQUIRE(WaitUntil([&] { return !f.api.Get(resources::kNamespaces, "", "team").ok(); }));
  CHECK(f.api.List(resources::kConfigMaps, "default")->items.size() == 1);
}

TEST_CASE("namespaced collections cover the workloads and core kinds") {
  std::set<std::string> names;
  for (const orch::ResourceRef& ref : ctrl::BuiltinNamespacedResources()) {
    names.insert(ref.resource);
  }
  for (const char* r : {"pods", "deployments", "replicasets", "jobs", "cronjobs", "configmaps",
                        "secrets", "services", "serviceaccounts", "events", "leases"}) {
    CHECK(names.count(r) == 1);
  }
}
