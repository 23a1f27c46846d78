// The node lifecycle controller: its pure rules (heartbeats, Unknown conditions, taints by
// condition and cordon, tolerations and eviction times) and, against the fake API, a node whose
// kubelet goes silent: Unknown, unreachable taints, pods not ready, then evicted.
#include "node_lifecycle_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace nl = orch::ctrl::nodelifecycle;
namespace resources = orch::resources;
using std::chrono::seconds;

json Node(const std::string& name, const std::string& ready, const std::string& heartbeat) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}}},
          {"spec", json::object()},
          {"status",
           {{"conditions", json::array({{{"type", "Ready"},
                                         {"status", ready},
                                         {"reason", "KubeletReady"},
                                         {"lastHeartbeatTime", heartbeat},
                                         {"lastTransitionTime", "2024-01-01T00:00:00Z"}},
                                        {{"type", "MemoryPressure"},
                                         {"status", "False"},
                                         {"lastHeartbeatTime", heartbeat}}})}}}};
}

json Lease(const std::string& name, const std::string& renew) {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", name}, {"namespace", "kube-node-lease"}}},
          {"spec", {{"holderIdentity", name}, {"renewTime", renew}}}};
}

json PodOn(const std::string& name, const std::string& node, json tolerations) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"nodeName", node},
            {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})},
            {"tolerations", std::move(tolerations)}}},
          {"status",
           {{"phase", "Running"},
            {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
}

json Taint(const std::string& key, const std::string& effect, const std::string& added = "") {
  json t = {{"key", key}, {"effect", effect}};
  if (!added.empty()) t["timeAdded"] = added;
  return t;
}

bool HasTaint(const json& taints, const std::string& key, const std::string& effect) {
  if (!taints.is_array()) return false;
  for (const json& t : taints) {
    if (t.value("key", "") == key && t.value("effect", "") == effect) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a heartbeat is a change of the Ready heartbeat or of the lease renew time") {
  nl::NodeHealth health;
  auto t0 = std::chrono::system_clock::now();
  json node = Node("n1", "True", "2024-01-01T00:00:00Z");
  json lease = Lease("n1", "2024-01-01T00:00:00.000000Z");
  nl::ObserveHeartbeat(health, node, &lease, t0, true);
  CHECK(health.probe == t0);
  nl::ObserveHeartbeat(health, node, &lease, t0 + seconds(30), false);
  CHECK(health.probe == t0);  // nothing changed
  lease["spec"]["renewTime"] = "2024-01-01T00:00:10.000000Z";
  nl::ObserveHeartbeat(health, node, &lease, t0 + seconds(31), false);
  CHECK(health.probe == t0 + seconds(31));
  node["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:05:00Z";
  nl::ObserveHeartbeat(health, node, &lease, t0 + seconds(40), false);
  CHECK(health.probe == t0 + seconds(40));
  nl::ObserveHeartbeat(health, node, nullptr, t0 + seconds(50), false);
  CHECK(health.probe == t0 + seconds(50));  // the lease went: also a change
}

TEST_CASE("a silent kubelet's conditions become Unknown, once") {
  json node = Node("n1", "True", "2024-01-01T00:00:00Z");
  auto now = std::chrono::system_clock::now();
  auto status = nl::MarkStatusUnknown(node["status"], now);
  REQUIRE(status);
  const json* ready = ctrl::FindCondition(*status, "Ready");
  REQUIRE(ready != nullptr);
  CHECK((*ready)["status"] == "Unknown");
  CHECK((*ready)["reason"] == "NodeStatusUnknown");
  CHECK((*ready)["message"] == "Kubelet stopped posting node status.");
  CHECK((*ready)["lastHeartbeatTime"] == "2024-01-01T00:00:00Z");  // kept
  CHECK((*ready)["lastTransitionTime"] == orch::FormatTime(now));
  CHECK((*ctrl::FindCondition(*status, "MemoryPressure"))["status"] == "Unknown");
  const json* disk = ctrl::FindCondition(*status, "DiskPressure");
  REQUIRE(disk != nullptr);
  CHECK((*disk)["reason"] == "NodeStatusNeverUpdated");
  CHECK((*disk)["message"] == "Kubelet never posted node status.");
  CHECK(ctrl::FindCondition(*status, "PIDPressure") != nullptr);
  CHECK_FALSE(nl::MarkStatusUnknown(*status, now + seconds(10)));
}

TEST_CASE("taints follow the Ready condition and cordoning") {
  auto now = std::chrono::system_clock::now();
  json node = Node("n1", "True", "x");
  node["spec"]["taints"] = json::array({Taint("dedicated", "NoSchedule")});
  CHECK(nl::DesiredTaints(node, now) == node["spec"]["taints"]);

  node["status"]["conditions"][0]["status"] = "False";
  json taints = nl::DesiredTaints(node, now);
  CHECK(HasTaint(taints, "dedicated", "NoSchedule"));
  CHECK(HasTaint(taints, nl::kTaintNotReady, "NoSchedule"));
  CHECK(HasTaint(taints, nl::kTaintNotReady, "NoExecute"));
  for (const json& t : taints) {
    CHECK(t.contains("timeAdded") == (t["effect"] == "NoExecute"));
  }

  // Unreachable replaces not-ready.
  node["spec"]["taints"] = taints;
  node["status"]["conditions"][0]["status"] = "Unknown";
  taints = nl::DesiredTaints(node, now + seconds(5));
  CHECK_FALSE(HasTaint(taints, nl::kTaintNotReady, "NoExecute"));
  CHECK(HasTaint(taints, nl::kTaintUnreachable, "NoSchedule"));
  CHECK(HasTaint(taints, nl::kTaintUnreachable, "NoExecute"));

  // Kept taints keep their time.
  node["spec"]["taints"] = taints;
  CHECK(nl::DesiredTaints(node, now + seconds(60)) == taints);

  // Recovered and cordoned.
  node["status"]["conditions"][0]["status"] = "True";
  node["spec"]["unschedulable"] = true;
  taints = nl::DesiredTaints(node, now);
  CHECK(taints == json::array({Taint("dedicated", "NoSchedule"),
                               Taint(nl::kTaintUnschedulable, "NoSchedule")}));
  node["spec"]["taints"] = taints;
  node["spec"].erase("unschedulable");
  CHECK(nl::DesiredTaints(node, now) == json::array({Taint("dedicated", "NoSchedule")}));

  node["status"]["conditions"][1]["status"] = "True";  // MemoryPressure
  CHECK(HasTaint(nl::DesiredTaints(node, now), nl::kTaintMemoryPressure, "NoSchedule"));
}

TEST_CASE("tolerations as upstream matches them") {
  json taint = Taint(nl::kTaintUnreachable, "NoExecute");
  CHECK(orch::ctrl::Tolerates({{"key", nl::kTaintUnreachable}, {"operator", "Exists"}}, taint));
  CHECK(orch::ctrl::Tolerates({{"operator", "Exists"}}, taint));
  CHECK(orch::ctrl::Tolerates({{"key", nl::kTaintUnreachable}, {"effect", "NoExecute"}}, taint));
  CHECK_FALSE(
      orch::ctrl::Tolerates({{"key", nl::kTaintUnreachable}, {"effect", "NoSchedule"}}, taint));
  CHECK_FALSE(orch::ctrl::Tolerates({{"key", nl::kTaintNotReady}, {"operator", "Exists"}}, taint));
  CHECK_FALSE(orch::ctrl::Tolerates({{"key", nl::kTaintUnreachable}, {"value", "x"}}, taint));
}

TEST_CASE("eviction times come from the taints' timeAdded and tolerationSeconds") {
  auto added = std::chrono::system_clock::now() - seconds(100);
  added = std::chrono::time_point_cast<seconds>(added);
  const std::string added_text = orch::FormatTime(added);
  json taints = json::array({Taint(nl::kTaintUnreachable, "NoSchedule"),
                             Taint(nl::kTaintUnreachable, "NoExecute", added_text)});
  auto fallback = std::chrono::system_clock::now();
  CHECK_FALSE(nl::EvictionTime(PodOn("p", "n1", json::array()),
                               json::array({Taint(nl::kTaintUnreachable, "NoSchedule")}),
                               fallback));
  CHECK(nl::EvictionTime(PodOn("p", "n1", json::array()), taints, fallback) ==
        ctrl::TimePoint::min());
  json forever = json::array({{{"key", nl::kTaintUnreachable}, {"operator", "Exists"}}});
  CHECK_FALSE(nl::EvictionTime(PodOn("p", "n1", forever), taints, fallback));
  json five = json::array({{{"key", nl::kTaintUnreachable},
                            {"operator", "Exists"},
                            {"effect", "NoExecute"},
                            {"tolerationSeconds", 5}}});
  CHECK(nl::EvictionTime(PodOn("p", "n1", five), taints, fallback) == added + seconds(5));
  // Without timeAdded the controller's first sighting counts.
  json untimed = json::array({Taint(nl::kTaintUnreachable, "NoExecute")});
  CHECK(nl::EvictionTime(PodOn("p", "n1", five), untimed, fallback) == fallback + seconds(5));
  // The smallest tolerationSeconds of the tolerations used wins; a second taint nobody
  // tolerates means at once.
  json two = json::array({Taint(nl::kTaintUnreachable, "NoExecute", added_text),
                          Taint("custom", "NoExecute", added_text)});
  json both = five;
  both.push_back({{"key", "custom"}, {"operator", "Exists"}, {"tolerationSeconds", 2}});
  CHECK(nl::EvictionTime(PodOn("p", "n1", both), two, fallback) == added + seconds(2));
  CHECK(nl::EvictionTime(PodOn("p", "n1", five), two, fallback) == ctrl::TimePoint::min());
}

TEST_CASE("a node whose kubelet goes silent is tainted and its pods evicted") {
  ControllerFixture f;
  orch::NodeLifecycleControllerOptions options;
  options.grace_period = std::chrono::seconds(1);
  options.startup_grace_period = std::chrono::seconds(1);
  const std::string beat = orch::FormatTime(std::chrono::system_clock::now());
  REQUIRE(f.api.Create(resources::kNodes, "", Node("n1", "True", beat)).ok());
  REQUIRE(f.api.Create(resources::kLeases, "kube-node-lease", Lease("n1", beat)).ok());
  json short_toleration = json::array({{{"key", nl::kTaintUnreachable},
                                        {"operator", "Exists"},
                                        {"effect", "NoExecute"},
                                        {"tolerationSeconds", 1}}});
  json forever = json::array({{{"operator", "Exists"}}});
  REQUIRE(f.api.Create(resources::kPods, "default", PodOn("short", "n1", short_toleration)).ok());
  REQUIRE(f.api.Create(resources::kPods, "default", PodOn("none", "n1", json::array())).ok());
  REQUIRE(f.api.Create(resources::kPods, "default", PodOn("daemon", "n1", forever)).ok());
  f.Add(orch::NewNodeLifecycleController(f.context, options));

  auto deleting = [&](const std::string& name) {
    auto pod = f.api.Get(resources::kPods, "default", name);
    return !pod.ok() || ctrl::IsBeingDeleted(*pod);
  };
  REQUIRE(WaitUntil([&] {
    json node = f.Get(resources::kNodes, "n1", "");
    return nl::ReadyStatus(node) == "Unknown" &&
           HasTaint(node["spec"]["taints"], nl::kTaintUnreachable, "NoExecute");
  }));
  CHECK(f.events.WithReason("NodeNotReady").size() >= 1);
  REQUIRE(WaitUntil([&] { return deleting("none"); }));
  REQUIRE(WaitUntil([&] { return deleting("short"); }));
  CHECK_FALSE(deleting("daemon"));
  CHECK_FALSE(ctrl::IsPodReady(f.Get(resources::kPods, "daemon")));
  CHECK(f.events.WithReason("TaintManagerEviction").size() == 2);

  // The kubelet is back: Ready again, the taints go.
  json node = f.Get(resources::kNodes, "n1", "");
  const std::string later = orch::FormatTime(std::chrono::system_clock::now() + seconds(1));
  node["status"]["conditions"][0]["status"] = "True";
  node["status"]["conditions"][0]["lastHeartbeatTime"] = later;
  REQUIRE(f.api.Update(resources::kNodes, "", node, "status").ok());
  REQUIRE(WaitUntil([&] {
    json n = f.Get(resources::kNodes, "n1", "");
    return !HasTaint(n["spec"]["taints"], nl::kTaintUnreachable, "NoExecute") &&
           !HasTaint(n["spec"]["taints"], nl::kTaintUnreachable, "NoSchedule");
  }));
}
