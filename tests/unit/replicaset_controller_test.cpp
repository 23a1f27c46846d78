// The ReplicaSet and ReplicationController controllers and their shared helpers: pod ordering,
// status, expectations, slow-start batches, and the controller against the fake API (scale up
// and down, adoption and release, failures, expectations preventing double creates).
#include "replicaset_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"
#include "controller_util.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::ManualClock;
using orch::testing::PodTemplate;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json TestPod(const std::string& name, const std::string& node, const std::string& phase, bool ready,
             const std::string& ready_at = "2024-01-01T00:00:00Z", int restarts = 0,
             const std::string& created = "2024-01-01T00:00:00Z") {
  json pod = {
      {"metadata", {{"name", name}, {"namespace", "default"}, {"creationTimestamp", created}}},
      {"spec", json::object()},
      {"status", {{"phase", phase}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  pod["status"]["conditions"] = json::array({{{"type", "Ready"},
                                              {"status", ready ? "True" : "False"},
                                              {"lastTransitionTime", ready_at}}});
  pod["status"]["containerStatuses"] = json::array({{{"name", "c"}, {"restartCount", restarts}}});
  return pod;
}

std::vector<std::string> Names(const std::vector<ObjectPtr>& pods) {
  std::vector<std::string> out;
  for (const ObjectPtr& p : pods) out.push_back(ctrl::NameOf(*p));
  return out;
}

json ReplicaSet(const std::string& name, int replicas, const std::string& app = "web") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", app}}}}},
            {"template", PodTemplate({{"app", app}, {"tier", "front"}}, "busybox")}}}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure logic.

TEST_CASE("times round-trip in RFC 3339") {
  auto t = orch::ParseTime("2024-02-29T23:59:58Z");
  REQUIRE(t);
  CHECK(orch::FormatTime(*t) == "2024-02-29T23:59:58Z");
  auto with_offset = orch::ParseTime("2024-03-01T01:59:58+02:00");
  REQUIRE(with_offset);
  CHECK(*with_offset == *t);
  auto fraction = orch::ParseTime("2024-02-29T23:59:58.5Z");
  REQUIRE(fraction);
  CHECK(*fraction - *t == 500ms);
  CHECK_FALSE(orch::ParseTime("2024-02-29 23:59:58Z"));
  CHECK_FALSE(orch::ParseTime(""));
  CHECK_FALSE(orch::ParseTime("2024-02-29T23:59:58"));
}

TEST_CASE("pod predicates: active, ready, available") {
  auto now = *orch::ParseTime("2024-01-01T00:01:00Z");
  json running = TestPod("a", "n1", "Running", true, "2024-01-01T00:00:00Z");
  CHECK(ctrl::IsPodActive(running));
  CHECK(ctrl::IsPodReady(running));
  CHECK(ctrl::IsPodAvailable(running, 0, now));
  CHECK(ctrl::IsPodAvailable(running, 59, now));
  CHECK_FALSE(ctrl::IsPodAvailable(running, 60, now));
  json deleting = running;
  deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:30Z";
  CHECK_FALSE(ctrl::IsPodActive(deleting));
  CHECK_FALSE(ctrl::IsPodActive(TestPod("b", "n1", "Succeeded", false)));
  CHECK_FALSE(ctrl::IsPodActive(TestPod("c", "n1", "Failed", false)));
  CHECK_FALSE(ctrl::IsPodReady(TestPod("d", "n1", "Running", false)));
  CHECK(ctrl::MaxContainerRestarts(TestPod("e", "n1", "Running", true, "", 7)) == 7);
}

TEST_CASE("owner references, controller index and pods from templates") {
  json owner = ReplicaSet("web", 2);
  owner["metadata"]["uid"] = "u-1";
  json ref = ctrl::NewControllerRef(owner, "apps/v1", "ReplicaSet");
  CHECK(ref == json{{"apiVersion", "apps/v1"},
                    {"kind", "ReplicaSet"},
                    {"name", "web"},
                    {"uid", "u-1"},
                    {"controller", true},
                    {"blockOwnerDeletion", true}});
  json tmpl = owner["spec"]["template"];
  tmpl["metadata"]["annotations"] = {{"a", "b"}};
  tmpl["metadata"]["finalizers"] = {"x/y"};
  json pod = ctrl::PodFromTemplate(tmpl, owner, ref);
  CHECK(pod["metadata"]["generateName"] == "web-");
  CHECK(pod["metadata"]["namespace"] == "default");
  CHECK(pod["metadata"]["labels"] == tmpl["metadata"]["labels"]);
  CHECK(pod["metadata"]["annotations"] == json{{"a", "b"}});
  CHECK(pod["metadata"]["finalizers"] == json{"x/y"});
  CHECK(pod["spec"] == tmpl["spec"]);
  const json* controller = ctrl::GetControllerOf(pod);
  REQUIRE(controller != nullptr);
  CHECK((*controller)["uid"] == "u-1");
  CHECK(ctrl::GetControllerOf(owner) == nullptr);
}

TEST_CASE("pods are deleted least valuable first") {
  // Each pod differs from the next in exactly the property that ranks it.
  std::vector<ObjectPtr> pods = {
      Ptr(TestPod("ready-old", "n1", "Running", true, "2024-01-01T00:00:00Z")),
      Ptr(TestPod("unassigned", "", "Pending", false)),
      Ptr(TestPod("ready-new", "n1", "Running", true, "2024-01-01T00:05:00Z")),
      Ptr(TestPod("pending", "n1", "Pending", false)),
      Ptr(TestPod("running-unready", "n1", "Running", false)),
      Ptr(TestPod("unknown", "n1", "Unknown", false)),
  };
  auto order = Names(ctrl::PodsToDelete(pods, {}, pods.size()));
  CHECK(order == std::vector<std::string>{"unassigned", "pending", "unknown", "running-unready",
                                          "ready-new", "ready-old"});

  // Among equals: more restarts first, then newer first.
  std::vector<ObjectPtr> equal = {
      Ptr(TestPod("old", "n1", "Running", true, "2024-01-01T00:00:00Z", 0, "2024-01-01T00:00:00Z")),
      Ptr(TestPod("new", "n1", "Running", true, "2024-01-01T00:00:00Z", 0, "2024-01-02T00:00:00Z")),
      Ptr(TestPod("crashy", "n1", "Running", true, "2024-01-01T00:00:00Z", 5,
                  "2024-01-01T00:00:00Z")),
  };
  CHECK(Names(ctrl::PodsToDelete(equal, {}, 3)) ==
        std::vector<std::string>{"crashy", "new", "old"});

  // The deletion-cost annotation outranks age.
  json cheap = TestPod("cheap-but-old", "n1", "Running", true);
  cheap["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"] = "-10";
  std::vector<ObjectPtr> costed = {Ptr(TestPod("plain", "n1", "Running", true)), Ptr(cheap)};
  CHECK(Names(ctrl::PodsToDelete(costed, {}, 1)) == std::vector<std::string>{"cheap-but-old"});

  // Pods on a node crowded with pods of the same owner go first.
  std::vector<ObjectPtr> spread = {Ptr(TestPod("alone", "n1", "Running", true)),
                                   Ptr(TestPod("crowded", "n2", "Running", true))};
  std::vector<ObjectPtr> related = spread;
  related.push_back(Ptr(TestPod("sibling", "n2", "Running", true)));
  CHECK(Names(ctrl::PodsToDelete(spread, related, 1)) == std::vector<std::string>{"crowded"});
}

TEST_CASE("replica status counts and the ReplicaFailure condition") {
  auto now = *orch::ParseTime("2024-01-01T00:01:00Z");
  json rs = ReplicaSet("web", 3);
  rs["metadata"]["generation"] = 4;
  rs["spec"]["minReadySeconds"] = 30;
  json labeled = TestPod("a", "n1", "Running", true, "2024-01-01T00:00:00Z");
  labeled["metadata"]["labels"] = {{"app", "web"}, {"tier", "front"}};
  json partial = TestPod("b", "n1", "Running", true, "2024-01-01T00:00:45Z");
  partial["metadata"]["labels"] = {{"app", "web"}};
  json unready = TestPod("c", "n1", "Running", false);
  unready["metadata"]["labels"] = {{"app", "web"}, {"tier", "front"}};
  std::vector<ObjectPtr> pods = {Ptr(labeled), Ptr(partial), Ptr(unready)};

  json status = ctrl::CalculateReplicaStatus(rs, pods, orch::Status::Ok(), 0, now);
  CHECK(status == json{{"replicas", 3},
                       {"fullyLabeledReplicas", 2},
                       {"readyReplicas", 2},
                       {"availableReplicas", 1},
                       {"observedGeneration", 4}});

  json failed = ctrl::CalculateReplicaStatus(rs, {}, orch::Unavailable("quota exceeded"), -3, now);
  REQUIRE(failed.contains("conditions"));
  CHECK(failed["conditions"][0]["type"] == "ReplicaFailure");
  CHECK(failed["conditions"][0]["reason"] == "FailedCreate");
  CHECK(failed["conditions"][0]["message"] == "quota exceeded");
  rs["status"] = failed;
  json recovered = ctrl::CalculateReplicaStatus(rs, pods, orch::Status::Ok(), 0, now);
  CHECK_FALSE(recovered.contains("conditions"));
}

TEST_CASE("expectations hold an owner back until its changes are observed or expire") {
  ManualClock clock;
  ctrl::Expectations e(clock.Func());
  CHECK(e.Satisfied("ns/a"));
  e.ExpectCreations("ns/a", 2);
  CHECK_FALSE(e.Satisfied("ns/a"));
  e.CreationObserved("ns/a");
  CHECK_FALSE(e.Satisfied("ns/a"));
  e.CreationObserved("ns/a");
  CHECK(e.Satisfied("ns/a"));

  e.ExpectDeletions("ns/a", {"ns/p1", "ns/p2"});
  e.DeletionObserved("ns/a", "ns/p1");
  e.DeletionObserved("ns/a", "ns/p1");  // the same pod twice (marked, then gone) counts once
  CHECK_FALSE(e.Satisfied("ns/a"));
  e.DeletionObserved("ns/a", "ns/p2");
  CHECK(e.Satisfied("ns/a"));

  e.ExpectCreations("ns/b", 1);
  CHECK_FALSE(e.Satisfied("ns/b"));
  clock.Advance(std::chrono::seconds(301));
  CHECK(e.Satisfied("ns/b"));  // a lost event does not stall the owner for ever
  e.Delete("ns/b");
  CHECK(e.Satisfied("ns/b"));
}

TEST_CASE("slow-start batches grow 1, 2, 4 and stop at the first failing batch") {
  std::atomic<int> calls{0};
  orch::Status error;
  int ok = ctrl::SlowStartBatch(
      10, 1,
      [&](int) {
        ++calls;
        return orch::Status::Ok();
      },
      &error);
  CHECK(ok == 10);
  CHECK(calls == 10);
  CHECK(error.ok());

  calls = 0;
  ok = ctrl::SlowStartBatch(
      100, 1,
      [&](int) {
        ++calls;
        return orch::Unavailable("no");
      },
      &error);
  CHECK(ok == 0);
  CHECK(calls == 1);  // a template the API rejects costs one call
  CHECK(error.message() == "no");

  // Batches 1, 2, 4: the call with index 5 is in the third batch; the fourth never starts.
  calls = 0;
  error = orch::Status::Ok();
  ok = ctrl::SlowStartBatch(
      100, 1,
      [&](int i) {
        ++calls;
        return i == 5 ? orch::Unavailable("bad") : orch::Status::Ok();
      },
      &error);
  CHECK(calls == 7);
  CHECK(ok == 6);
  CHECK_FALSE(error.ok());
}

// ---------------------------------------------------------------------------------------------
// The controller against the fake API.

namespace {

struct RsFixture : ControllerFixture {
  explicit RsFixture(std::chrono::milliseconds resync = std::chrono::hours(1)) {
    AddReplicaSetController(resync);
  }

  json Status(const std::string& name) {
    json status = Get(resources::kReplicaSets, name)["status"];
    return status.is_object() ? status : json::object();
  }
};

}  // namespace

TEST_CASE("a ReplicaSet scales up and down, deleting the least valuable pods") {
  RsFixture f;
  REQUIRE(f.api.Create(resources::kReplicaSets, "default", ReplicaSet("web", 3)).ok());
  REQUIRE(WaitUntil([&] { return f.ActivePods("app=web") == 3; }));
  for (const json& pod : f.Pods("app=web")) {
    CHECK(ctrl::NameOf(pod).rfind("web-", 0) == 0);
    CHECK(pod["metadata"]["labels"]["tier"] == "front");
    const json* ref = ctrl::GetControllerOf(pod);
    REQUIRE(ref != nullptr);
    CHECK((*ref)["kind"] == "ReplicaSet");
    CHECK((*ref)["name"] == "web");
  }
  REQUIRE(WaitUntil([&] { return f.Status("web").value("replicas", 0) == 3; }));
  CHECK(f.Status("web")["observedGeneration"] == 1);
  CHECK(f.events.WithReason("SuccessfulCreate").size() == 3);
  CHECK(f.events.WithReason("SuccessfulCreate")[0].message.rfind("Created pod: web-", 0) == 0);

  // Two pods run and are ready, one is still pending: a scale to 2 deletes the pending one.
  auto pods = f.Pods("app=web");
  f.SetPodRunning(ctrl::NameOf(pods[0]), true, f.clock.Now());
  f.SetPodRunning(ctrl::NameOf(pods[1]), true, f.clock.Now());
  const std::string pending = ctrl::NameOf(pods[2]);
  REQUIRE(WaitUntil([&] { return f.Status("web").value("readyReplicas", 0) == 2; }));
  CHECK(f.Status("web")["availableReplicas"] == 2);

  f.Patch(resources::kReplicaSets, "web", {{"spec", {{"replicas", 2}}}});
  REQUIRE(WaitUntil([&] { return f.ActivePods("app=web") == 2; }));
  for (const json& pod : f.Pods("app=web")) CHECK(ctrl::NameOf(pod) != pending);
  REQUIRE(f.events.WithReason("SuccessfulDelete").size() == 1);
  CHECK(f.events.WithReason("SuccessfulDelete")[0].message == "Deleted pod: " + pending);
  REQUIRE(WaitUntil([&] {
    json s = f.Status("web");
    return s.value("replicas", 0) == 2 && s.value("observedGeneration", 0) == 2;
  }));

  // A pod that goes away is replaced.
  auto victim = ctrl::NameOf(f.Pods("app=web")[0]);
  REQUIRE(f.api.Delete(resources::kPods, "default", victim).ok());
  REQUIRE(WaitUntil([&] {
    auto now = f.Pods("app=web");
    return now.size() == 2 && std::none_of(now.begin(), now.end(), [&](const json& p) {
             return ctrl::NameOf(p) == victim;
           });
  }));

  f.Patch(resources::kReplicaSets, "web", {{"spec", {{"replicas", 0}}}});
  REQUIRE(WaitUntil([&] { return f.Pods("app=web").empty(); }));
}

TEST_CASE("availableReplicas waits for minReadySeconds") {
  RsFixture f;
  json rs = ReplicaSet("web", 1);
  rs["spec"]["minReadySeconds"] = 30;
  REQUIRE(f.api.Create(resources::kReplicaSets, "default", rs).ok());
  REQUIRE(WaitUntil([&] { return f.ActivePods("app=web") == 1; }));
  f.SetPodRunning(ctrl::NameOf(f.Pods("app=web")[0]), true, f.clock.Now());
  REQUIRE(WaitUntil([&] { return f.Status("web").value("readyReplicas", 0) == 1; }));
  CHECK(f.Status("web")["availableReplicas"] == 0);
  // Any later sync after the time has passed counts it available.
  f.clock.Advance(std::chrono::seconds(31));
  f.Patch(resources::kReplicaSets, "web", {{"metadata", {{"annotations", {{"poke", "1"}}}}}});
  REQUIRE(WaitUntil([&] { return f.Status("web").value("availableReplicas", 0) == 1; }));
}

TEST_CASE("a ReplicaSet adopts matching orphans and releases pods that stop matching") {
  RsFixture f;
  // An orphan that matches, one that belongs to someone else, one that does not match.
  json orphan = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "orphan"}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}};
  REQUIRE(f.api.Create(resources::kPods, "default", orphan).ok());
  json owned = orphan;
  owned["metadata"]["name"] = "owned-elsewhere";
  owned["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "batch/v1"},
                                                       {"kind", "Job"},
                                                       {"name", "j"},
                                                       {"uid", "job-uid"},
                                                       {"controller", true}}});
  REQUIRE(f.api.Create(resources::kPods, "default", owned).ok());
  json other = orphan;
  other["metadata"]["name"] = "other-app";
  other["metadata"]["labels"] = {{"app", "db"}};
  REQUIRE(f.api.Create(resources::kPods, "default", other).ok());

  REQUIRE(f.api.Create(resources::kReplicaSets, "default", ReplicaSet("web", 2)).ok());
  const std::string uid = ctrl::UidOf(f.Get(resources::kReplicaSets, "web"));
  auto controlled = [&] {
    std::vector<std::string> names;
    for (const json& p : f.Pods()) {
      const json* ref = ctrl::GetControllerOf(p);
      if (ref != nullptr && (*ref)["uid"] == uid) names.push_back(ctrl::NameOf(p));
    }
    return names;
  };
  REQUIRE(WaitUntil([&] { return controlled().size() == 2; }));
  auto names = controlled();
  CHECK(std::find(names.begin(), names.end(), "orphan") != names.end());  // adopted
  CHECK(f.events.WithReason("SuccessfulCreate").size() == 1);             // one new pod only
  json elsewhere = f.Get(resources::kPods, "owned-elsewhere");
  CHECK((*ctrl::GetControllerOf(elsewhere))["uid"] == "job-uid");
  CHECK(ctrl::GetControllerOf(f.Get(resources::kPods, "other-app")) == nullptr);

  // Relabelled out of the selector: released (no owner reference) and replaced.
  f.Patch(resources::kPods, "orphan", {{"metadata", {{"labels", {{"app", "debug"}}}}}});
  REQUIRE(WaitUntil([&] {
    auto now = controlled();
    return now.size() == 2 && std::find(now.begin(), now.end(), "orphan") == now.end() &&
           ctrl::GetControllerOf(f.Get(resources::kPods, "orphan")) == nullptr;
  }));
  CHECK(f.events.WithReason("SuccessfulCreate").size() == 2);
}

TEST_CASE("expectations keep a stale cache from creating pods twice") {
  // A short resync makes the controller look at the ReplicaSet again and again while its
  // informer sees none of the pods it created.
  RsFixture f(std::chrono::milliseconds(20));
  // Creates fail at first, so the ReplicaSet is known but has no pods.
  std::atomic<bool> fail{true};
  f.api.SetErrorHook([&](const orch::testing::Action& a) {
    if (fail && a.verb == "create" && a.resource == "pods") return orch::Unavailable("not yet");
    return orch::Status::Ok();
  });
  REQUIRE(f.api.Create(resources::kReplicaSets, "default", ReplicaSet("web", 3)).ok());
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("FailedCreate").empty(); }));
  CHECK(f.events.WithReason("FailedCreate")[0].message == "Error creating: not yet");
  REQUIRE(WaitUntil([&] {
    json status = f.Status("web");
    const json* c = ctrl::FindCondition(status, "ReplicaFailure");
    return c != nullptr && (*c)["reason"] == "FailedCreate";
  }));

  REQUIRE(f.api.WaitForDelivery());
  f.api.PauseWatches();
  fail = false;
  REQUIRE(WaitUntil([&] { return f.Pods("app=web").size() >= 3; }));
  // Many resyncs later, still three: the controller waits to observe its creations.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.Pods("app=web").size() == 3);
  f.api.ResumeWatches();
  REQUIRE(WaitUntil([&] {
    json s = f.Status("web");
    return s.value("replicas", 0) == 3 && !s.contains("conditions");
  }));
  CHECK(f.Pods("app=web").size() == 3);
}

TEST_CASE("a ReplicationController manages pods through its map selector") {
  ControllerFixture f;
  f.Add(orch::NewReplicationController(f.context));
  json rc = {{"apiVersion", "v1"},
             {"kind", "ReplicationController"},
             {"metadata", {{"name", "legacy"}, {"namespace", "default"}}},
             {"spec",
              {{"replicas", 2},
               {"selector", {{"app", "legacy"}}},
               {"template",
                {{"metadata", {{"labels", {{"app", "legacy"}}}}},
                 {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}}}}}};
  REQUIRE(f.api.Create(resources::kReplicationControllers, "default", rc).ok());
  REQUIRE(WaitUntil([&] { return f.ActivePods("app=legacy") == 2; }));
  json pod = f.Pods("app=legacy")[0];
  const json* ref = ctrl::GetControllerOf(pod);
  REQUIRE(ref != nullptr);
  CHECK((*ref)["kind"] == "ReplicationController");
  CHECK((*ref)["apiVersion"] == "v1");
  REQUIRE(WaitUntil([&] {
    json status = f.Get(resources::kReplicationControllers, "legacy")["status"];
    return status.is_object() && status.value("replicas", 0) == 2;
  }));
}
