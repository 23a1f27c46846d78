// The scheduler component end to end against the in-memory API (fake_api_client.h) with real
// informers and event recorder: binding, FailedScheduling condition and event, retries when the
// cluster changes, the assume step, and preemption.
#include "orch/scheduler.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "concurrency_gauge.h"
#include "fake_api_client.h"
#include "orch/events.h"
#include "orch/informer.h"
#include "scheduler_fixtures.h"

using nlohmann::json;
using orch::sched::testing::MakeNode;
using orch::sched::testing::MakePod;
using namespace std::chrono_literals;

namespace {

// Waits (generously; the assertions are about what happens, not when) until `done` holds.
bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// A scheduler wired as `orch server` will wire it, over the fake API.
class Harness {
 public:
  explicit Harness(orch::SchedulerOptions options = Fast()) {
    informers_ = orch::InformerFactory::Create(client);
    events_ = orch::EventRecorder::Create(client, "default-scheduler");
    scheduler_ = orch::NewScheduler(client, *informers_, *events_, options);
  }
  ~Harness() { Stop(); }

  static orch::SchedulerOptions Fast() {
    orch::SchedulerOptions o;
    o.initial_backoff = 20ms;
    o.max_backoff = 100ms;
    o.seed = 42;
    return o;
  }

  void Start() {
    REQUIRE(scheduler_->Start().ok());
    informers_->Start();
    REQUIRE(informers_->WaitForSync(10s));
  }
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    scheduler_->Stop();
    informers_->Stop();
    events_->Stop();
  }

  void Create(const orch::ResourceRef& ref, const json& object) {
    auto created = client.Create(ref, object["metadata"].value("namespace", ""), object);
    REQUIRE(created.ok());
  }
  json Pod(const std::string& name) {
    auto pod = client.Get(orch::resources::kPods, "default", name);
    return pod.ok() ? *pod : json();
  }
  std::string NodeOf(const std::string& pod) {
    json p = Pod(pod);
    return p.is_null() ? "" : p["spec"].value("nodeName", "");
  }
  json Condition(const std::string& pod, const std::string& type) {
    json p = Pod(pod);
    if (p.is_null() || !p["status"].contains("conditions")) return json();
    for (const json& c : p["status"]["conditions"]) {
      if (c.value("type", "") == type) return c;
    }
    return json();
  }
  // Messages of the events with this reason about this pod.
  std::vector<std::string> Events(const std::string& pod, const std::string& reason) {
    std::vector<std::string> out;
    auto list = client.List(orch::resources::kEvents, "default");
    if (!list.ok()) return out;
    for (const json& e : list->items) {
      if (e["involvedObject"].value("name", "") == pod && e.value("reason", "") == reason) {
        out.push_back(e.value("message", ""));
      }
    }
    return out;
  }

  orch::testing::FakeApiClient client;

 private:
  std::unique_ptr<orch::InformerFactory> informers_;
  std::unique_ptr<orch::EventRecorder> events_;
  std::unique_ptr<orch::Component> scheduler_;
  bool stopped_ = false;
};

json WithPriority(json pod, int priority) {
  pod["spec"]["priority"] = priority;
  return pod;
}

}  // namespace

TEST_CASE("A pending pod is bound to a node, with a Scheduled event") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  h.Create(orch::resources::kNodes, MakeNode("n2"));
  h.Start();
  h.Create(orch::resources::kPods, MakePod("web", "100m", "64Mi"));
  REQUIRE(Eventually([&] { return !h.NodeOf("web").empty(); }));
  std::string node = h.NodeOf("web");
  CHECK((node == "n1" || node == "n2"));
  REQUIRE(Eventually([&] { return !h.Events("web", "Scheduled").empty(); }));
  CHECK(h.Events("web", "Scheduled")[0] == "Successfully assigned default/web to " + node);
}

TEST_CASE("Pods of another scheduler are left alone") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  json other = MakePod("other");
  other["spec"]["schedulerName"] = "my-scheduler";
  h.Create(orch::resources::kPods, other);
  h.Create(orch::resources::kPods, MakePod("mine"));
  h.Start();
  REQUIRE(Eventually([&] { return !h.NodeOf("mine").empty(); }));
  CHECK(h.NodeOf("other").empty());
}

TEST_CASE("An unschedulable pod gets PodScheduled=False and a FailedScheduling event") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1", "1"));
  json cp = MakeNode("cp", "8");
  cp["spec"]["taints"] =
      json::array({{{"key", "node-role.kubernetes.io/control-plane"}, {"effect", "NoSchedule"}}});
  h.Create(orch::resources::kNodes, cp);
  h.Start();
  h.Create(orch::resources::kPods, MakePod("big", "2"));
  const std::string message =
      "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
      "{node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 1 No "
      "preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.";
  REQUIRE(Eventually([&] { return !h.Condition("big", "PodScheduled").is_null(); }));
  json condition = h.Condition("big", "PodScheduled");
  CHECK(condition["status"] == "False");
  CHECK(condition["reason"] == "Unschedulable");
  CHECK(condition["message"] == message);
  CHECK(condition.contains("lastTransitionTime"));
  REQUIRE(Eventually([&] { return !h.Events("big", "FailedScheduling").empty(); }));
  CHECK(h.Events("big", "FailedScheduling")[0] == message);
  CHECK(h.NodeOf("big").empty());

  SECTION("and is bound once a node that fits appears") {
    h.Create(orch::resources::kNodes, MakeNode("roomy", "4"));
    REQUIRE(Eventually([&] { return h.NodeOf("big") == "roomy"; }));
  }
}

TEST_CASE("With no nodes at all the pod waits, and is bound when a node registers") {
  Harness h;
  h.Start();
  h.Create(orch::resources::kPods, MakePod("early"));
  REQUIRE(Eventually([&] { return !h.Condition("early", "PodScheduled").is_null(); }));
  CHECK(h.Condition("early", "PodScheduled")["message"] == "no nodes available to schedule pods");
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  REQUIRE(Eventually([&] { return h.NodeOf("early") == "n1"; }));
}

TEST_CASE("Two pods never share the last room: the first is assumed before the next decision") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1", "1"));
  h.Create(orch::resources::kPods, MakePod("a", "600m"));
  h.Create(orch::resources::kPods, MakePod("b", "600m"));
  h.Start();
  REQUIRE(Eventually([&] {
    return (!h.NodeOf("a").empty() && !h.Condition("b", "PodScheduled").is_null()) ||
           (!h.NodeOf("b").empty() && !h.Condition("a", "PodScheduled").is_null());
  }));
  std::string loser = h.NodeOf("a").empty() ? "a" : "b";
  CHECK(h.NodeOf(loser).empty());
  CHECK(h.Condition(loser, "PodScheduled")["message"] ==
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No "
        "preemption victims found for incoming pod.");

  SECTION("the loser is bound when the winner goes away") {
    std::string winner = loser == "a" ? "b" : "a";
    orch::DeleteOptions now;
    now.grace_period_seconds = 0;
    REQUIRE(h.client.Delete(orch::resources::kPods, "default", winner, now).ok());
    REQUIRE(Eventually([&] { return h.NodeOf(loser) == "n1"; }));
  }
}

TEST_CASE("A higher-priority pod preempts a lower-priority one and takes its place") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1", "2"));
  json victim = WithPriority(MakePod("victim", "1500m"), 0);
  victim["spec"]["nodeName"] = "n1";
  victim["status"]["phase"] = "Running";
  h.Create(orch::resources::kPods, victim);
  h.Start();
  h.Create(orch::resources::kPods, WithPriority(MakePod("vip", "1"), 1000));

  // The victim is marked and deleted gracefully; the preemptor is nominated to its node.
  REQUIRE(Eventually([&] { return h.Pod("victim")["metadata"].contains("deletionTimestamp"); }));
  json disruption = h.Condition("victim", "DisruptionTarget");
  CHECK(disruption["reason"] == "PreemptionByScheduler");
  CHECK(disruption["message"] ==
        "default-scheduler: preempting to accommodate a higher priority pod");
  REQUIRE(
      Eventually([&] { return h.Pod("vip")["status"].value("nominatedNodeName", "") == "n1"; }));
  REQUIRE(Eventually([&] { return !h.Events("victim", "Preempted").empty(); }));
  CHECK(h.Events("victim", "Preempted")[0] ==
        "Preempted by pod " + h.Pod("vip")["metadata"].value("uid", "") + " on node n1");
  CHECK(h.NodeOf("vip").empty());  // the victim still holds the room while it terminates

  SECTION("a lower-priority newcomer does not take the room kept for the preemptor") {
    h.Create(orch::resources::kPods, WithPriority(MakePod("sneaky", "1500m"), 0));
    REQUIRE(Eventually([&] { return !h.Condition("sneaky", "PodScheduled").is_null(); }));
    orch::DeleteOptions now;
    now.grace_period_seconds = 0;
    REQUIRE(h.client.Delete(orch::resources::kPods, "default", "victim", now).ok());
    REQUIRE(Eventually([&] { return h.NodeOf("vip") == "n1"; }));
    CHECK(h.NodeOf("sneaky").empty());
  }
  SECTION("once the victim is gone the preemptor is bound there") {
    orch::DeleteOptions now;
    now.grace_period_seconds = 0;
    REQUIRE(h.client.Delete(orch::resources::kPods, "default", "victim", now).ok());
    REQUIRE(Eventually([&] { return h.NodeOf("vip") == "n1"; }));
  }
}

TEST_CASE("A failed binding is retried") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  int failures = 0;
  h.client.SetErrorHook([&](const orch::testing::Action& a) {
    if (a.verb == "post" && a.subresource == "binding" && failures < 2) {
      ++failures;
      return orch::Unavailable("etcd is having a moment");
    }
    return orch::Status::Ok();
  });
  h.Start();
  h.Create(orch::resources::kPods, MakePod("p"));
  REQUIRE(Eventually([&] { return h.NodeOf("p") == "n1"; }));
  CHECK(failures == 2);
}

namespace {

// Holds each binding until `want` are in flight together (or 10 s passed); records the most.
class SlowBindings : public orch::testing::FakeApiClient {
 public:
  explicit SlowBindings(int want) : gauge_(want) {}

  orch::Result<json> Post(const orch::ResourceRef& ref, const std::string& ns,
                          const std::string& name, const std::string& subresource,
                          const json& body) override {
    if (subresource != "binding") return FakeApiClient::Post(ref, ns, name, subresource, body);
    return gauge_.Run([&] { return FakeApiClient::Post(ref, ns, name, subresource, body); });
  }

  int Most() { return gauge_.Most(); }

 private:
  orch::testing::ConcurrencyGauge gauge_;
};

}  // namespace

TEST_CASE("Bindings are written side by side while the scheduler decides the next pods") {
  SlowBindings client(3);
  auto informers = orch::InformerFactory::Create(client);
  auto events = orch::EventRecorder::Create(client, "default-scheduler");
  auto scheduler = orch::NewScheduler(client, *informers, *events, Harness::Fast());
  REQUIRE(client.Create(orch::resources::kNodes, "", MakeNode("n1", "32", "64Gi", 110)).ok());
  for (int i = 0; i < 8; ++i) {
    REQUIRE(client.Create(orch::resources::kPods, "default", MakePod(fmt::format("p{}", i))).ok());
  }
  REQUIRE(scheduler->Start().ok());
  informers->Start();
  REQUIRE(informers->WaitForSync(10s));
  auto bound = [&] {
    auto pods = client.List(orch::resources::kPods, "default");
    if (!pods.ok()) return 0;
    int n = 0;
    for (const json& pod : pods->items) n += pod["spec"].value("nodeName", "") == "n1";
    return n;
  };
  REQUIRE(Eventually([&] { return bound() == 8; }));
  CHECK(client.Most() >= 3);  // one after another, it would be 1
  scheduler->Stop();
  informers->Stop();
  events->Stop();
}

namespace {

json WithClaim(json pod, const std::string& claim) {
  pod["spec"]["volumes"] =
      json::array({{{"name", "data"}, {"persistentVolumeClaim", {{"claimName", claim}}}}});
  return pod;
}

json Claim(const std::string& name, const std::string& class_name, const std::string& volume = "") {
  json claim = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec", {{"storageClassName", class_name}}}};
  if (!volume.empty()) {
    claim["spec"]["volumeName"] = volume;
    claim["status"] = {{"phase", "Bound"}};
  }
  return claim;
}

json VolumeOn(const std::string& name, const std::string& node) {
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"hostPath", {{"path", std::string("/srv/").append(name)}}},
            {"nodeAffinity",
             {{"required",
               {{"nodeSelectorTerms",
                 json::array({{{"matchExpressions",
                                json::array({{{"key", "kubernetes.io/hostname"},
                                              {"operator", "In"},
                                              {"values", json::array({node})}}})}}})}}}}}}}};
}

std::string SelectedNode(Harness& h, const std::string& claim) {
  auto got = h.client.Get(orch::resources::kPersistentVolumeClaims, "default", claim);
  if (!got.ok()) return "";
  return (*got)["metadata"]
      .value("annotations", json::object())
      .value("volume.kubernetes.io/selected-node", "");
}

}  // namespace

TEST_CASE("VolumeBinding: WaitForFirstConsumer claims learn the chosen node") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  h.Create(orch::resources::kNodes, MakeNode("n2"));
  h.Create(orch::resources::kStorageClasses, {{"apiVersion", "storage.k8s.io/v1"},
                                              {"kind", "StorageClass"},
                                              {"metadata", {{"name", "local-path"}}},
                                              {"provisioner", "rancher.io/local-path"},
                                              {"volumeBindingMode", "WaitForFirstConsumer"}});
  h.Create(orch::resources::kPersistentVolumeClaims, Claim("data", "local-path"));
  h.Start();
  h.Create(orch::resources::kPods, WithClaim(MakePod("db"), "data"));
  REQUIRE(Eventually([&] { return !h.NodeOf("db").empty(); }));
  CHECK(SelectedNode(h, "data") == h.NodeOf("db"));
}

TEST_CASE("VolumeBinding: bound volumes keep pods on their nodes") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  h.Create(orch::resources::kNodes, MakeNode("n2"));
  h.Create(orch::resources::kPersistentVolumes, VolumeOn("pv-n2", "n2"));
  h.Create(orch::resources::kPersistentVolumes, VolumeOn("pv-gone", "n9"));
  h.Create(orch::resources::kPersistentVolumeClaims, Claim("on-n2", "manual", "pv-n2"));
  h.Create(orch::resources::kPersistentVolumeClaims, Claim("elsewhere", "manual", "pv-gone"));
  h.Start();
  for (int i = 0; i < 4; ++i) {
    h.Create(orch::resources::kPods,
             WithClaim(MakePod(std::string("p").append(std::to_string(i))), "on-n2"));
  }
  for (int i = 0; i < 4; ++i) {
    REQUIRE(
        Eventually([&] { return h.NodeOf(std::string("p").append(std::to_string(i))) == "n2"; }));
  }
  h.Create(orch::resources::kPods, WithClaim(MakePod("stuck"), "elsewhere"));
  REQUIRE(Eventually([&] { return !h.Condition("stuck", "PodScheduled").is_null(); }));
  CHECK(h.Condition("stuck", "PodScheduled")["message"].get<std::string>().rfind(
            "0/2 nodes are available: 2 node(s) had volume node affinity conflict.", 0) == 0);
  CHECK(h.NodeOf("stuck").empty());
  CHECK(SelectedNode(h, "elsewhere").empty());
}

TEST_CASE("VolumeBinding: unbound immediate and missing claims wait, then schedule") {
  Harness h;
  h.Create(orch::resources::kNodes, MakeNode("n1"));
  h.Create(orch::resources::kPersistentVolumeClaims, Claim("later", ""));
  h.Start();
  h.Create(orch::resources::kPods, WithClaim(MakePod("waits"), "later"));
  h.Create(orch::resources::kPods, WithClaim(MakePod("orphan"), "absent"));
  REQUIRE(Eventually([&] { return !h.Condition("waits", "PodScheduled").is_null(); }));
  CHECK(h.Condition("waits", "PodScheduled")["message"] ==
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
        "0/1 nodes are available: 1 Preemption is not helpful for scheduling.");
  REQUIRE(Eventually([&] { return !h.Condition("orphan", "PodScheduled").is_null(); }));
  CHECK(h.Condition("orphan", "PodScheduled")["message"].get<std::string>().rfind(
            "0/1 nodes are available: persistentvolumeclaim \"absent\" not found.", 0) == 0);
  CHECK(h.NodeOf("waits").empty());

  // Bound meanwhile (as a binder would): the claim's change wakes the pod.
  h.Create(orch::resources::kPersistentVolumes, VolumeOn("pv-1", "n1"));
  auto patched = h.client.Patch(orch::resources::kPersistentVolumeClaims, "default", "later",
                                orch::PatchType::kMerge, R"({"spec":{"volumeName":"pv-1"}})");
  REQUIRE(patched.ok());
  REQUIRE(Eventually([&] { return h.NodeOf("waits") == "n1"; }));
}
