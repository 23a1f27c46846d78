// The StatefulSet controller: ordinal identity, claims and their retention, which pod is created,
// deleted or updated next under each policy and strategy, the status, and the controller against
// the fake API (ordered creation, scale down, rolling update with a partition, failed pods).
#include "statefulset_controller.h"

#include <catch2/catch.hpp>

#include "controller_history.h"
#include "controller_test_util.h"
#include "statefulset_util.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::PodTemplate;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace sts = orch::ctrl::sts;
namespace resources = orch::resources;
using Type = sts::Step::Type;

json Set(const std::string& name, int replicas) {
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "set-uid"}}},
      {"spec",
       {{"replicas", replicas},
        {"serviceName", "nginx"},
        {"selector", {{"matchLabels", {{"app", name}}}}},
        {"template", PodTemplate({{"app", name}}, "busybox:1")},
        {"updateStrategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}}}}}};
}

// A member pod as the informer would have it.
ObjectPtr Pod(const std::string& name, const std::string& revision, bool ready,
              const std::string& phase = "Running") {
  json pod = {{"metadata",
               {{"name", name},
                {"namespace", "default"},
                {"uid", "uid-" + name},
                {"labels", {{"controller-revision-hash", revision}}}}},
              {"spec", json::object()},
              {"status", {{"phase", phase}}}};
  pod["status"]["conditions"] = json::array({{{"type", "Ready"},
                                              {"status", ready ? "True" : "False"},
                                              {"lastTransitionTime", "2024-01-01T00:00:00Z"}}});
  auto ordinal = sts::ParsePodName(name).ordinal;
  pod["metadata"]["labels"][sts::kPodNameLabel] = name;
  pod["metadata"]["labels"][sts::kPodIndexLabel] = std::to_string(ordinal);
  return Ptr(pod);
}

ObjectPtr Terminating(ObjectPtr pod) {
  json p = *pod;
  p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  return Ptr(p);
}

const auto kNow = *orch::ParseTime("2024-01-01T01:00:00Z");

sts::Plan Plan(const json& set, const std::vector<ObjectPtr>& pods,
               const std::string& current = "web-1", const std::string& update = "web-1") {
  return sts::PlanSync({set, pods, current, update, kNow});
}

std::string Describe(const sts::Plan& plan) {
  std::string out;
  for (const sts::Step& s : plan.steps) {
    if (!out.empty()) out += " ";
    switch (s.type) {
      case Type::kCreate:
        out += "create:" + std::to_string(s.ordinal) + "@" + s.revision;
        break;
      case Type::kDeleteFailed:
        out += "failed:" + ctrl::NameOf(*s.pod);
        break;
      case Type::kFixIdentity:
        out += "identity:" + ctrl::NameOf(*s.pod);
        break;
      case Type::kDeleteCondemned:
        out += "condemn:" + ctrl::NameOf(*s.pod);
        break;
      case Type::kDeleteForUpdate:
        out += "update:" + ctrl::NameOf(*s.pod);
        break;
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Identity.

TEST_CASE("pod names parse into parent and ordinal") {
  CHECK(sts::ParsePodName("web-0").parent == "web");
  CHECK(sts::ParsePodName("web-0").ordinal == 0);
  CHECK(sts::ParsePodName("my-web-12").parent == "my-web");
  CHECK(sts::ParsePodName("my-web-12").ordinal == 12);
  CHECK(sts::ParsePodName("web").ordinal == -1);
  CHECK(sts::ParsePodName("web-").ordinal == -1);
  CHECK(sts::ParsePodName("web-1a").ordinal == -1);
  CHECK(sts::ParsePodName("web-99999999999999999999999").ordinal == -1);
  json set = Set("web", 3);
  CHECK(sts::IsMemberOf(set, *Pod("web-2", "r", true)));
  CHECK_FALSE(sts::IsMemberOf(set, *Pod("webx-2", "r", true)));
  CHECK_FALSE(sts::IsMemberOf(set, *Pod("web-x", "r", true)));
  CHECK(sts::PodName(set, 4) == "web-4");
  CHECK(sts::InOrdinalRange(set, 2));
  CHECK_FALSE(sts::InOrdinalRange(set, 3));
  set["spec"]["ordinals"] = {{"start", 5}};
  CHECK(sts::StartOrdinal(set) == 5);
  CHECK(sts::EndOrdinal(set) == 7);
  CHECK_FALSE(sts::InOrdinalRange(set, 2));
  CHECK(sts::InOrdinalRange(set, 7));
}

TEST_CASE("a new pod carries the set's identity and mounts its claims") {
  json set = Set("web", 3);
  set["spec"]["template"]["spec"]["volumes"] =
      json::array({{{"name", "www"}, {"emptyDir", json::object()}},
                   {{"name", "config"}, {"configMap", {{"name", "cfg"}}}}});
  set["spec"]["volumeClaimTemplates"] =
      json::array({{{"metadata", {{"name", "www"}, {"labels", {{"tier", "data"}}}}},
                    {"spec",
                     {{"accessModes", {"ReadWriteOnce"}},
                      {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}});
  json ref = ctrl::NewControllerRef(set, "apps/v1", "StatefulSet");
  json pod = sts::NewPod(set, set["spec"]["template"], "web-abc", 2, ref);
  CHECK(pod["metadata"]["name"] == "web-2");
  CHECK_FALSE(pod["metadata"].contains("generateName"));
  CHECK(pod["metadata"]["labels"]["app"] == "web");
  CHECK(pod["metadata"]["labels"][sts::kPodNameLabel] == "web-2");
  CHECK(pod["metadata"]["labels"][sts::kPodIndexLabel] == "2");
  CHECK(pod["metadata"]["labels"]["controller-revision-hash"] == "web-abc");
  CHECK(pod["spec"]["hostname"] == "web-2");
  CHECK(pod["spec"]["subdomain"] == "nginx");
  CHECK(pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet");
  REQUIRE(pod["spec"]["volumes"].size() == 2);
  CHECK(pod["spec"]["volumes"][0] ==
        json{{"name", "www"}, {"persistentVolumeClaim", {{"claimName", "www-web-2"}}}});
  CHECK(pod["spec"]["volumes"][1]["name"] == "config");
  CHECK(sts::IdentityMatches(set, pod));
  CHECK(sts::StorageMatches(set, pod));
  json relabelled = pod;
  relabelled["metadata"]["labels"].erase(sts::kPodNameLabel);
  CHECK_FALSE(sts::IdentityMatches(set, relabelled));
  json wrong_claim = pod;
  wrong_claim["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "www-web-1";
  CHECK_FALSE(sts::StorageMatches(set, wrong_claim));

  auto claims = sts::ClaimsFor(set, 2);
  REQUIRE(claims.size() == 1);
  CHECK(claims[0]["metadata"]["name"] == "www-web-2");
  CHECK(claims[0]["metadata"]["namespace"] == "default");
  CHECK(claims[0]["metadata"]["labels"] == json{{"app", "web"}, {"tier", "data"}});
  CHECK(claims[0]["spec"]["resources"]["requests"]["storage"] == "1Gi");
  CHECK(claims[0]["kind"] == "PersistentVolumeClaim");
}

TEST_CASE("claim owner references follow the retention policy") {
  json set = Set("web", 2);
  json claim = {{"metadata", {{"name", "www-web-1"}, {"namespace", "default"}}}};
  json in_range = *Pod("web-1", "r", true);
  json scaled_away = *Pod("web-2", "r", true);
  // Retain / Retain: nothing to add.
  CHECK_FALSE(sts::ClaimOwnerReferences(claim, set, in_range));

  set["spec"]["persistentVolumeClaimRetentionPolicy"] = {{"whenDeleted", "Delete"},
                                                         {"whenScaled", "Retain"}};
  auto refs = sts::ClaimOwnerReferences(claim, set, in_range);
  REQUIRE(refs);
  REQUIRE(refs->size() == 1);
  CHECK((*refs)[0]["kind"] == "StatefulSet");
  CHECK((*refs)[0]["uid"] == "set-uid");
  CHECK((*refs)[0]["controller"] == true);
  json owned = claim;
  owned["metadata"]["ownerReferences"] = *refs;
  CHECK_FALSE(sts::ClaimOwnerReferences(owned, set, in_range));

  // whenScaled Delete: a scaled-away pod's claim moves from the set to the pod.
  set["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete";
  CHECK_FALSE(sts::ClaimOwnerReferences(owned, set, in_range));
  refs = sts::ClaimOwnerReferences(owned, set, scaled_away);
  REQUIRE(refs);
  REQUIRE(refs->size() == 1);
  CHECK((*refs)[0]["kind"] == "Pod");
  CHECK((*refs)[0]["uid"] == "uid-web-2");

  // Back to Retain / Retain: our references go, others stay.
  set["spec"].erase("persistentVolumeClaimRetentionPolicy");
  owned["metadata"]["ownerReferences"].push_back(
      {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "x"}, {"uid", "other"}});
  refs = sts::ClaimOwnerReferences(owned, set, in_range);
  REQUIRE(refs);
  CHECK(*refs ==
        json::array(
            {{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "x"}, {"uid", "other"}}}));

  // A claim another controller owns is not taken over.
  set["spec"]["persistentVolumeClaimRetentionPolicy"] = {{"whenDeleted", "Delete"}};
  json foreign = claim;
  foreign["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "v1"},
                                                         {"kind", "Thing"},
                                                         {"name", "t"},
                                                         {"uid", "t"},
                                                         {"controller", true}}});
  CHECK_FALSE(sts::ClaimOwnerReferences(foreign, set, in_range));
}

// ---------------------------------------------------------------------------------------------
// Next steps.

TEST_CASE("OrderedReady creates one pod at a time, each after its predecessors are ready") {
  json set = Set("web", 3);
  CHECK(Describe(Plan(set, {})) == "create:0@web-1");
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false, "Pending")})).empty());
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false)})).empty());
  CHECK_FALSE(Plan(set, {Pod("web-0", "web-1", false)}).waiting.empty());
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", true)})) == "create:1@web-1");
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", true), Pod("web-1", "web-1", true)})) ==
        "create:2@web-1");
  // A missing lower ordinal comes first.
  CHECK(Describe(Plan(set, {Pod("web-1", "web-1", true)})) == "create:0@web-1");
  auto done = Plan(
      set, {Pod("web-0", "web-1", true), Pod("web-1", "web-1", true), Pod("web-2", "web-1", true)});
  CHECK(done.steps.empty());
  CHECK(done.waiting.empty());
  // A terminating replica blocks the ones after it.
  CHECK(Describe(Plan(set, {Terminating(Pod("web-0", "web-1", true))})).empty());
  // minReadySeconds: ready but not yet available blocks too.
  set["spec"]["minReadySeconds"] = 7200;
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", true)})).empty());
}

TEST_CASE("ordinals start at spec.ordinals.start") {
  json set = Set("web", 2);
  set["spec"]["ordinals"] = {{"start", 3}};
  CHECK(Describe(Plan(set, {})) == "create:3@web-1");
  CHECK(Describe(Plan(set, {Pod("web-3", "web-1", true)})) == "create:4@web-1");
  // web-0 is out of range now: condemned once the replicas are healthy.
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", true), Pod("web-3", "web-1", true),
                            Pod("web-4", "web-1", true)})) == "condemn:web-0");
}

TEST_CASE("OrderedReady scales down from the highest ordinal, one at a time") {
  json set = Set("web", 1);
  std::vector<ObjectPtr> pods = {Pod("web-0", "web-1", true), Pod("web-1", "web-1", true),
                                 Pod("web-2", "web-1", true)};
  CHECK(Describe(Plan(set, pods)) == "condemn:web-2");
  // Waits for the terminating one to go.
  CHECK(Describe(Plan(set, {pods[0], pods[1], Terminating(pods[2])})).empty());
  CHECK(Describe(Plan(set, {pods[0], pods[1]})) == "condemn:web-1");
  // An unready replica blocks the scale down.
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false), pods[1], pods[2]})).empty());
  // An unhealthy condemned pod may go only if it is the first unhealthy one (from the lowest).
  CHECK(Describe(Plan(set, {pods[0], Pod("web-1", "web-1", false), pods[2]})) == "condemn:web-2");
  CHECK(Describe(Plan(set, {pods[0], Pod("web-1", "web-1", false), Pod("web-2", "web-1", false)}))
            .empty());
  CHECK(Describe(Plan(set, {pods[0], pods[1], Pod("web-2", "web-1", false)})) == "condemn:web-2");
  // Scale to zero.
  set["spec"]["replicas"] = 0;
  CHECK(Describe(Plan(set, {pods[0]})) == "condemn:web-0");
}

TEST_CASE("Parallel creates and deletes everything at once") {
  json set = Set("web", 3);
  set["spec"]["podManagementPolicy"] = "Parallel";
  CHECK(Describe(Plan(set, {})) == "create:0@web-1 create:1@web-1 create:2@web-1");
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false, "Pending")})) ==
        "create:1@web-1 create:2@web-1");
  set["spec"]["replicas"] = 1;
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false), Pod("web-1", "web-1", false),
                            Pod("web-2", "web-1", true)})) == "condemn:web-2 condemn:web-1");
}

TEST_CASE("failed pods are deleted to be recreated with the same name") {
  json set = Set("web", 2);
  std::vector<ObjectPtr> pods = {Pod("web-0", "web-1", false, "Failed"),
                                 Pod("web-1", "web-1", true)};
  CHECK(Describe(Plan(set, pods)) == "failed:web-0");
  CHECK(Describe(Plan(set, {Terminating(pods[0]), pods[1]})).empty());
  CHECK(Describe(Plan(set, {Pod("web-0", "web-1", false, "Succeeded")})) == "failed:web-0");
  CHECK(Describe(Plan(set, {pods[1]})) == "create:0@web-1");
}

TEST_CASE("a set being deleted gets no steps") {
  json set = Set("web", 3);
  set["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  CHECK(Plan(set, {}).steps.empty());
}

TEST_CASE("identity labels removed by hand are put back") {
  json set = Set("web", 1);
  json pod = *Pod("web-0", "web-1", true);
  pod["metadata"]["labels"].erase(sts::kPodIndexLabel);
  CHECK(Describe(Plan(set, {Ptr(pod)})) == "identity:web-0");
}

TEST_CASE("RollingUpdate replaces pods from the highest ordinal down to the partition") {
  json set = Set("web", 3);
  auto old_pods = [](bool ready2) {
    return std::vector<ObjectPtr>{Pod("web-0", "old", true), Pod("web-1", "old", true),
                                  Pod("web-2", "old", ready2)};
  };
  CHECK(Describe(Plan(set, old_pods(true), "old", "new")) == "update:web-2");
  // Recreated at the update revision once gone.
  CHECK(Describe(Plan(set, {Pod("web-0", "old", true), Pod("web-1", "old", true)}, "old", "new")) ==
        "create:2@new");
  // Waits for the new one to be ready before the next.
  auto waiting =
      Plan(set, {Pod("web-0", "old", true), Pod("web-1", "old", true), Pod("web-2", "new", false)},
           "old", "new");
  CHECK(waiting.steps.empty());
  CHECK(Describe(Plan(
            set, {Pod("web-0", "old", true), Pod("web-1", "old", true), Pod("web-2", "new", true)},
            "old", "new")) == "update:web-1");
  // Partition 2: only web-2 is updated, and a recreated web-1 keeps the current revision.
  set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2;
  CHECK(Describe(Plan(set, old_pods(true), "old", "new")) == "update:web-2");
  CHECK(Plan(set, {Pod("web-0", "old", true), Pod("web-1", "old", true), Pod("web-2", "new", true)},
             "old", "new")
            .steps.empty());
  CHECK(Describe(Plan(set, {Pod("web-0", "old", true), Pod("web-2", "new", true)}, "old", "new")) ==
        "create:1@old");
  CHECK(sts::RevisionForOrdinal(set, 1, "old", "new") == "old");
  CHECK(sts::RevisionForOrdinal(set, 2, "old", "new") == "new");
  // OnDelete: never deleted for an update; new pods get the update revision.
  set["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  CHECK(Plan(set, old_pods(true), "old", "new").steps.empty());
  CHECK(sts::RevisionForOrdinal(set, 0, "old", "new") == "new");
}

TEST_CASE("RollingUpdate with maxUnavailable takes several pods at once") {
  json set = Set("web", 4);
  set["spec"]["podManagementPolicy"] = "Parallel";  // OrderedReady waits for each pod anyway
  set["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 2;
  std::vector<ObjectPtr> pods = {Pod("web-0", "old", true), Pod("web-1", "old", true),
                                 Pod("web-2", "old", true), Pod("web-3", "old", true)};
  CHECK(Describe(Plan(set, pods, "old", "new")) == "update:web-3 update:web-2");
  pods[3] = Pod("web-3", "new", false);
  CHECK(Describe(Plan(set, pods, "old", "new")) == "update:web-2");
  set["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%";
  pods[2] = Pod("web-2", "new", false);
  CHECK(Plan(set, pods, "old", "new").steps.empty());
}

// ---------------------------------------------------------------------------------------------
// Status.

TEST_CASE("status counts pods by readiness and revision") {
  json set = Set("web", 3);
  set["metadata"]["generation"] = 4;
  std::vector<ObjectPtr> pods = {Pod("web-0", "old", true), Pod("web-1", "new", true),
                                 Pod("web-2", "new", false),
                                 Terminating(Pod("web-3", "new", true))};
  json status = sts::ComputeStatus(set, pods, "old", "new", 0, kNow);
  CHECK(status["replicas"] == 4);
  CHECK(status["readyReplicas"] == 3);
  CHECK(status["availableReplicas"] == 3);
  CHECK(status["currentReplicas"] == 1);
  CHECK(status["updatedReplicas"] == 2);
  CHECK(status["currentRevision"] == "old");
  CHECK(status["updateRevision"] == "new");
  CHECK(status["observedGeneration"] == 4);
  CHECK(status["collisionCount"] == 0);

  // All updated and ready: the update revision becomes current.
  pods = {Pod("web-0", "new", true), Pod("web-1", "new", true), Pod("web-2", "new", true)};
  status = sts::ComputeStatus(set, pods, "old", "new", 1, kNow);
  CHECK(status["currentRevision"] == "new");
  CHECK(status["currentReplicas"] == 3);
  CHECK(status["collisionCount"] == 1);
  // Not with OnDelete (as upstream).
  set["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  status = sts::ComputeStatus(set, pods, "old", "new", 0, kNow);
  CHECK(status["currentRevision"] == "old");
  CHECK(status["currentReplicas"] == 0);
}

// ---------------------------------------------------------------------------------------------
// The controller against the fake API.

namespace {

struct Fixture : ControllerFixture {
  Fixture() {
    orch::StatefulSetControllerOptions options;
    options.now = clock.Func();
    options.resync_period = std::chrono::hours(1);
    Add(orch::NewStatefulSetController(context, options));
  }
  void CreateSet(const json& set) {
    json s = set;
    s["metadata"].erase("uid");
    REQUIRE(api.Create(resources::kStatefulSets, "default", s).ok());
  }
  bool HasPod(const std::string& name) { return api.Get(resources::kPods, "default", name).ok(); }
  std::string PodNames() {
    std::string out;
    for (const json& p : Pods()) {
      if (!ctrl::IsPodActive(p)) continue;
      if (!out.empty()) out += " ";
      out += ctrl::NameOf(p);
    }
    return out;
  }
  bool Ready(const std::string& name) { return SetPodRunning(name, true, clock.Now()); }
};

}  // namespace

TEST_CASE("the controller creates pods in order, with claims, and reports status") {
  Fixture f;
  json set = Set("web", 3);
  set["spec"]["volumeClaimTemplates"] = json::array(
      {{{"metadata", {{"name", "www"}}}, {"spec", {{"accessModes", {"ReadWriteOnce"}}}}}});
  f.CreateSet(set);
  REQUIRE(WaitUntil([&] { return f.HasPod("web-0"); }));
  CHECK(f.Get(resources::kPersistentVolumeClaims, "www-web-0")["metadata"]["labels"]["app"] ==
        "web");
  // web-1 waits for web-0.
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(f.HasPod("web-1"));
  REQUIRE(f.Ready("web-0"));
  REQUIRE(WaitUntil([&] { return f.HasPod("web-1"); }));
  REQUIRE(f.Ready("web-1"));
  REQUIRE(WaitUntil([&] { return f.HasPod("web-2"); }));
  REQUIRE(f.Ready("web-2"));
  REQUIRE(WaitUntil([&] {
    json s = f.Get(resources::kStatefulSets, "web");
    return s["status"].value("readyReplicas", 0) == 3;
  }));
  json s = f.Get(resources::kStatefulSets, "web");
  CHECK(s["status"]["replicas"] == 3);
  CHECK(s["status"]["updatedReplicas"] == 3);
  CHECK(s["status"]["currentRevision"] == s["status"]["updateRevision"]);
  const std::string revision = s["status"]["updateRevision"];
  json pod = f.Get(resources::kPods, "web-1");
  CHECK(pod["metadata"]["labels"]["controller-revision-hash"] == revision);
  CHECK(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "www-web-1");
  json cr = f.Get(resources::kControllerRevisions, revision);
  CHECK(cr["revision"] == 1);
  CHECK(cr["data"]["spec"]["template"]["$patch"] == "replace");
  CHECK(f.events.WithReason("SuccessfulCreate").size() == 6);  // 3 claims, 3 pods
  bool found = false;
  for (const auto& e : f.events.WithReason("SuccessfulCreate")) {
    found = found || e.message == "create Pod web-0 in StatefulSet web successful";
  }
  CHECK(found);

  // Scale down: web-2 goes first, the claims stay.
  f.Patch(resources::kStatefulSets, "web", {{"spec", {{"replicas", 1}}}});
  REQUIRE(WaitUntil([&] { return f.PodNames() == "web-0"; }));
  CHECK(f.List(resources::kPersistentVolumeClaims).size() == 3);
}

TEST_CASE("the controller rolls out a new template in reverse order, honouring the partition") {
  Fixture f;
  json set = Set("web", 3);
  set["spec"]["podManagementPolicy"] = "Parallel";
  f.CreateSet(set);
  REQUIRE(WaitUntil([&] { return f.PodNames() == "web-0 web-1 web-2"; }));
  for (const char* p : {"web-0", "web-1", "web-2"}) REQUIRE(f.Ready(p));
  REQUIRE(WaitUntil(
      [&] { return f.Get(resources::kStatefulSets, "web")["status"]["readyReplicas"] == 3; }));
  const std::string first = f.Get(resources::kStatefulSets, "web")["status"]["updateRevision"];

  f.Patch(
      resources::kStatefulSets, "web",
      {{"spec",
        {{"updateStrategy", {{"rollingUpdate", {{"partition", 1}}}}},
         {"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", "busybox:2"}}}}}}}}}}});
  std::string second;
  auto image_of = [&](const std::string& name) -> std::string {
    auto got = f.api.Get(resources::kPods, "default", name);
    if (!got.ok() || !ctrl::IsPodActive(*got)) return "";
    return (*got)["spec"]["containers"][0]["image"];
  };
  // web-2 first, then web-1 (after web-2 is ready); web-0 stays below the partition.
  REQUIRE(WaitUntil([&] { return image_of("web-2") == "busybox:2"; }));
  CHECK(image_of("web-1") == "busybox:1");
  REQUIRE(f.Ready("web-2"));
  REQUIRE(WaitUntil([&] { return image_of("web-1") == "busybox:2"; }));
  REQUIRE(f.Ready("web-1"));
  REQUIRE(WaitUntil([&] {
    json s = f.Get(resources::kStatefulSets, "web");
    return s["status"]["updatedReplicas"] == 2 && s["status"]["readyReplicas"] == 3;
  }));
  json s = f.Get(resources::kStatefulSets, "web");
  CHECK(image_of("web-0") == "busybox:1");
  CHECK(s["status"]["currentRevision"] == first);
  second = s["status"]["updateRevision"];
  CHECK(second != first);
  CHECK(f.Get(resources::kControllerRevisions, second)["revision"] == 2);

  // A failed pod is recreated with the same name (below the partition: the current revision).
  const std::string failed_uid = ctrl::UidOf(f.Get(resources::kPods, "web-0"));
  REQUIRE(f.api
              .Patch(resources::kPods, "default", "web-0", orch::PatchType::kMerge,
                     R"({"status":{"phase":"Failed"}})", "status")
              .ok());
  REQUIRE(WaitUntil([&] {
    auto got = f.api.Get(resources::kPods, "default", "web-0");
    return got.ok() && ctrl::UidOf(*got) != failed_uid;
  }));
  CHECK(image_of("web-0") == "busybox:1");
  CHECK_FALSE(f.events.WithReason("RecreatingFailedPod").empty());

  // Partition 0 finishes the rollout; the update revision becomes current.
  REQUIRE(f.Ready("web-0"));
  f.Patch(resources::kStatefulSets, "web",
          {{"spec", {{"updateStrategy", {{"rollingUpdate", {{"partition", 0}}}}}}}});
  REQUIRE(WaitUntil([&] { return image_of("web-0") == "busybox:2"; }));
  REQUIRE(f.Ready("web-0"));
  REQUIRE(WaitUntil([&] {
    return f.Get(resources::kStatefulSets, "web")["status"]["currentRevision"] == second;
  }));
}
