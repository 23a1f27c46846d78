// The local-path provisioner against the fake API: the default StorageClass, the default class
// for claims naming none, provisioning once the scheduler picked a node (or at once for an
// Immediate class), binding both halves, static binding to a fitting Available volume, and the
// volume deleted (Delete) or Released (Retain) when its claim goes.
#include "local_path_provisioner.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json Claim(const std::string& name, const std::string& request, json class_name = nullptr) {
  json claim = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"accessModes", json::array({"ReadWriteOnce"})},
                  {"resources", {{"requests", {{"storage", request}}}}}}}};
  if (!class_name.is_null()) claim["spec"]["storageClassName"] = class_name;
  return claim;
}

json StaticVolume(const std::string& name, const std::string& capacity,
                  const std::string& class_name) {
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"capacity", {{"storage", capacity}}},
            {"accessModes", json::array({"ReadWriteOnce", "ReadOnlyMany"})},
            {"storageClassName", class_name},
            {"persistentVolumeReclaimPolicy", "Retain"},
            {"hostPath", {{"path", std::string("/srv/").append(name)}}}}}};
}

std::string Phase(const json& object) {
  return ctrl::StringField(object, {"status", "phase"});
}

}  // namespace

TEST_CASE("local-path objects: the class, a provisioned volume, what fits a claim") {
  json sc = ctrl::LocalPathStorageClass();
  CHECK(sc["metadata"]["name"] == "local-path");
  CHECK(sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true");
  CHECK(sc["provisioner"] == "rancher.io/local-path");
  CHECK(sc["volumeBindingMode"] == "WaitForFirstConsumer");
  CHECK(sc["reclaimPolicy"] == "Delete");

  json claim = Claim("data", "1Gi", "local-path");
  claim["metadata"]["uid"] = "u1";
  json pv = ctrl::LocalPathVolume(claim, sc, "node-a", "/var/lib/orch");
  CHECK(pv["metadata"]["name"] == "pvc-u1");
  CHECK(pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] ==
        "rancher.io/local-path");
  CHECK(pv["spec"]["hostPath"]["path"] == "/var/lib/orch/storage/pvc-u1_default_data");
  CHECK(pv["spec"]["hostPath"]["type"] == "DirectoryOrCreate");
  CHECK(pv["spec"]["capacity"]["storage"] == "1Gi");
  CHECK(pv["spec"]["accessModes"] == json::array({"ReadWriteOnce"}));
  CHECK(pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete");
  CHECK(pv["spec"]["storageClassName"] == "local-path");
  CHECK(pv["spec"]["claimRef"]["uid"] == "u1");
  json expr = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
  CHECK(expr["key"] == "kubernetes.io/hostname");
  CHECK(expr["values"] == json::array({"node-a"}));

  json fits = StaticVolume("v", "2Gi", "manual");
  json want = Claim("c", "1500Mi", "manual");
  CHECK(ctrl::VolumeFitsClaim(fits, want, ""));
  CHECK_FALSE(ctrl::VolumeFitsClaim(fits, Claim("c", "3Gi", "manual"), ""));
  CHECK_FALSE(ctrl::VolumeFitsClaim(fits, Claim("c", "1Gi", "other"), ""));
  json rwx = want;
  rwx["spec"]["accessModes"] = json::array({"ReadWriteMany"});
  CHECK_FALSE(ctrl::VolumeFitsClaim(fits, rwx, ""));
  json selecting = want;
  selecting["spec"]["selector"] = {{"matchLabels", {{"tier", "db"}}}};
  CHECK_FALSE(ctrl::VolumeFitsClaim(fits, selecting, ""));
  fits["metadata"]["labels"] = {{"tier", "db"}};
  CHECK(ctrl::VolumeFitsClaim(fits, selecting, ""));
  CHECK(ctrl::VolumeFitsClaim(pv, Claim("c", "1Gi", "local-path"), "node-a"));
  CHECK_FALSE(ctrl::VolumeFitsClaim(pv, Claim("c", "1Gi", "local-path"), "node-b"));
}

TEST_CASE("local-path: default class, provisioning on the selected node, binding, deletion") {
  ControllerFixture f;
  f.context.data_dir = "/data";
  f.Add(orch::NewLocalPathProvisioner(f.context));
  REQUIRE(WaitUntil([&] { return f.api.Get(resources::kStorageClasses, "", "local-path").ok(); }));

  // No class named: the default one; WaitForFirstConsumer keeps it Pending without a node.
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", Claim("data", "1Gi")).ok());
  REQUIRE(WaitUntil([&] {
    return ctrl::StringField(f.Get(resources::kPersistentVolumeClaims, "data"),
                             {"spec", "storageClassName"}) == "local-path";
  }));
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("WaitForFirstConsumer").empty(); }));
  CHECK(f.List(resources::kPersistentVolumes, "").empty());
  // "" asks for no class: left alone.
  REQUIRE(
      f.api.Create(resources::kPersistentVolumeClaims, "default", Claim("none", "1Gi", "")).ok());

  // The scheduler picked node-a: a volume there, both sides bound.
  f.Patch(resources::kPersistentVolumeClaims, "data",
          {{"metadata", {{"annotations", {{"volume.kubernetes.io/selected-node", "node-a"}}}}}});
  json claim;
  REQUIRE(WaitUntil([&] {
    claim = f.Get(resources::kPersistentVolumeClaims, "data");
    return Phase(claim) == "Bound";
  }));
  std::string uid = ctrl::UidOf(claim);
  CHECK(claim["spec"]["volumeName"] == "pvc-" + uid);
  CHECK(claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes");
  CHECK(claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes");
  CHECK(claim["status"]["capacity"]["storage"] == "1Gi");
  CHECK(claim["status"]["accessModes"] == json::array({"ReadWriteOnce"}));
  json pv = f.Get(resources::kPersistentVolumes, "pvc-" + uid, "");
  CHECK(Phase(pv) == "Bound");
  CHECK(pv["spec"]["hostPath"]["path"] == "/data/storage/pvc-" + uid + "_default_data");
  CHECK(pv["spec"]["claimRef"]["name"] == "data");
  CHECK(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
          ["values"][0] == "node-a");
  CHECK(f.events.WithReason("ProvisioningSucceeded").size() == 1);
  CHECK(ctrl::StringField(f.Get(resources::kPersistentVolumeClaims, "none"),
                          {"spec", "storageClassName"}, "unset") == "");
  CHECK(Phase(f.Get(resources::kPersistentVolumeClaims, "none")) != "Bound");

  // Reclaim policy Delete: the volume goes with its claim.
  REQUIRE(f.api.Delete(resources::kPersistentVolumeClaims, "default", "data").ok());
  REQUIRE(
      WaitUntil([&] { return !f.api.Get(resources::kPersistentVolumes, "", "pvc-" + uid).ok(); }));
}

TEST_CASE("local-path: an Immediate class provisions at once on a schedulable node") {
  ControllerFixture f;
  REQUIRE(f.api
              .Create(resources::kNodes, "",
                      {{"apiVersion", "v1"},
                       {"kind", "Node"},
                       {"metadata", {{"name", "a-cordoned"}}},
                       {"spec", {{"unschedulable", true}}}})
              .ok());
  REQUIRE(f.api
              .Create(resources::kNodes, "",
                      {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "b"}}}})
              .ok());
  json fast = ctrl::LocalPathStorageClass();
  fast["metadata"] = {{"name", "fast"}};
  fast["volumeBindingMode"] = "Immediate";
  fast["reclaimPolicy"] = "Retain";
  REQUIRE(f.api.Create(resources::kStorageClasses, "", fast).ok());
  f.Add(orch::NewLocalPathProvisioner(f.context));
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", Claim("now", "5Mi", "fast"))
              .ok());
  json claim;
  REQUIRE(WaitUntil([&] {
    claim = f.Get(resources::kPersistentVolumeClaims, "now");
    return Phase(claim) == "Bound";
  }));
  json pv = f.Get(resources::kPersistentVolumes, claim["spec"]["volumeName"], "");
  CHECK(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
          ["values"][0] == "b");
  CHECK(pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain");
  std::string claim_uid = ctrl::UidOf(claim);
  CHECK(pv["spec"]["hostPath"]["path"] ==
        "/var/lib/orch/storage/pvc-" + claim_uid + "_default_now");

  // ReadWriteMany is not something a node folder offers.
  json many = Claim("many", "1Mi", "fast");
  many["spec"]["accessModes"] = json::array({"ReadWriteMany"});
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", many).ok());
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("ProvisioningFailed").empty(); }));
  CHECK(f.events.WithReason("ProvisioningFailed")[0].message.find("ReadWriteOnce") !=
        std::string::npos);
}

TEST_CASE("static volumes: the smallest fitting Available one is bound, Released after") {
  ControllerFixture f;
  f.Add(orch::NewLocalPathProvisioner(f.context));
  REQUIRE(
      f.api.Create(resources::kPersistentVolumes, "", StaticVolume("big", "10Gi", "manual")).ok());
  REQUIRE(
      f.api.Create(resources::kPersistentVolumes, "", StaticVolume("small", "2Gi", "manual")).ok());
  REQUIRE(
      f.api.Create(resources::kPersistentVolumes, "", StaticVolume("tiny", "1Mi", "manual")).ok());
  REQUIRE(WaitUntil(
      [&] { return Phase(f.Get(resources::kPersistentVolumes, "big", "")) == "Available"; }));
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", Claim("c", "1Gi", "manual"))
              .ok());
  json claim;
  REQUIRE(WaitUntil([&] {
    claim = f.Get(resources::kPersistentVolumeClaims, "c");
    return Phase(claim) == "Bound";
  }));
  CHECK(claim["spec"]["volumeName"] == "small");
  CHECK(claim["status"]["capacity"]["storage"] == "2Gi");
  json pv = f.Get(resources::kPersistentVolumes, "small", "");
  CHECK(Phase(pv) == "Bound");
  CHECK(pv["spec"]["claimRef"]["uid"] == ctrl::UidOf(claim));
  CHECK(Phase(f.Get(resources::kPersistentVolumes, "big", "")) == "Available");
  CHECK(f.events.WithReason("ProvisioningSucceeded").empty());

  // Retain: the volume stays, Released, and is not handed to the next claim.
  REQUIRE(f.api.Delete(resources::kPersistentVolumeClaims, "default", "c").ok());
  REQUIRE(WaitUntil(
      [&] { return Phase(f.Get(resources::kPersistentVolumes, "small", "")) == "Released"; }));
  REQUIRE(f.api.Create(resources::kPersistentVolumeClaims, "default", Claim("d", "1Gi", "manual"))
              .ok());
  REQUIRE(
      WaitUntil([&] { return Phase(f.Get(resources::kPersistentVolumeClaims, "d")) == "Bound"; }));
  CHECK(f.Get(resources::kPersistentVolumeClaims, "d")["spec"]["volumeName"] == "big");
}
