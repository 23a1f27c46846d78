// The pvc-protection and pv-protection controllers against the fake API: finalizers added to
// every claim and volume; a deleted claim stays while an unfinished pod uses it and goes once the
// pod is gone; a deleted volume stays while Bound and goes once Released.
#include "storage_protection_controller.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <thread>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

bool HasFinalizer(const json& object, const std::string& f) {
  const json& list = ctrl::Field(object, {"metadata", "finalizers"});
  return list.is_array() && std::find(list.begin(), list.end(), f) != list.end();
}

}  // namespace

TEST_CASE("pvc-protection: a claim in use outlives its deletion until the pod is gone") {
  ControllerFixture f;
  f.Add(orch::NewPvcProtectionController(f.context));
  json claim = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", "data"}, {"namespace", "default"}}},
                {"spec", {{"resources", {{"requests", {{"storage", "1Gi"}}}}}}}};
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", claim).ok());
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "user"}, {"namespace", "default"}}},
      {"spec",
       {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})},
        {"volumes",
         json::array({{{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "data"}}}}})}}}};
  REQUIRE(f.api.Create(resources::kPods, "default", pod).ok());
  REQUIRE(WaitUntil([&] {
    return HasFinalizer(f.Get(resources::kPersistentVolumeClaims, "data"),
                        "kubernetes.io/pvc-protection");
  }));

  REQUIRE(f.api.Delete(resources::kPersistentVolumeClaims, "default", "data", {}).ok());
  // Held: the pod still uses it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json held = f.Get(resources::kPersistentVolumeClaims, "data");
  CHECK(ctrl::IsBeingDeleted(held));

  REQUIRE(f.api.Delete(resources::kPods, "default", "user", {}).ok());
  REQUIRE(WaitUntil(
      [&] { return !f.api.Get(resources::kPersistentVolumeClaims, "default", "data").ok(); }));
}

TEST_CASE("pv-protection: a deleted volume goes once it is no longer Bound") {
  ControllerFixture f;
  f.Add(orch::NewPvProtectionController(f.context));
  json volume = {{"apiVersion", "v1"},
                 {"kind", "PersistentVolume"},
                 {"metadata", {{"name", "pv1"}}},
                 {"spec",
                  {{"capacity", {{"storage", "1Gi"}}},
                   {"accessModes", json::array({"ReadWriteOnce"})},
                   {"hostPath", {{"path", "/srv/pv1"}}}}}};
  REQUIRE(f.api.Create(resources::kPersistentVolumes, "", volume).ok());
  REQUIRE(f.api
              .Patch(resources::kPersistentVolumes, "", "pv1", orch::PatchType::kMerge,
                     R"({"status":{"phase":"Bound"}})", "status")
              .ok());
  REQUIRE(WaitUntil([&] {
    return HasFinalizer(f.Get(resources::kPersistentVolumes, "pv1", ""),
                        "kubernetes.io/pv-protection");
  }));
  REQUIRE(f.api.Delete(resources::kPersistentVolumes, "", "pv1", {}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(ctrl::IsBeingDeleted(f.Get(resources::kPersistentVolumes, "pv1", "")));
  REQUIRE(f.api
              .Patch(resources::kPersistentVolumes, "", "pv1", orch::PatchType::kMerge,
                     R"({"status":{"phase":"Released"}})", "status")
              .ok());
  REQUIRE(WaitUntil([&] { return !f.api.Get(resources::kPersistentVolumes, "", "pv1").ok(); }));
}
