// The node agent's pod status: container states, restart counts, phases by restart policy,
// conditions and their transition times, IPs, QoS.
#include <catch2/catch.hpp>

#include "pod_status.h"

using json = nlohmann::json;
using namespace orch::agent;
using orch::ParseTime;
using orch::SystemTime;
namespace cri = orch::cri;

namespace {

const SystemTime kNow = *ParseTime("2025-01-02T03:04:05Z");

json Pod(const std::string& policy, json containers, json init = json::array()) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", "u1"}}},
              {"spec", {{"restartPolicy", policy}, {"containers", std::move(containers)}}},
              {"status", {{"phase", "Pending"}}}};
  if (!init.empty()) pod["spec"]["initContainers"] = std::move(init);
  return pod;
}

json C(const std::string& name) {
  return {{"name", name}, {"image", "busybox"}};
}

ContainerInstance Running(const std::string& id, uint32_t restarts = 0) {
  ContainerInstance c;
  c.status.container.id = id;
  c.status.container.state = cri::ContainerState::kRunning;
  c.status.container.image_ref = "sha256:abc";
  c.status.started_at = 1735787045000000000;  // 2025-01-02T03:04:05Z
  c.restart_count = restarts;
  return c;
}

ContainerInstance Exited(const std::string& id, int32_t code, uint32_t restarts = 0,
                         const std::string& reason = "") {
  ContainerInstance c = Running(id, restarts);
  c.status.container.state = cri::ContainerState::kExited;
  c.status.exit_code = code;
  c.status.reason = reason;
  c.status.finished_at = 1735787050000000000;  // 5 s later
  return c;
}

PodView View(std::map<std::string, ContainerView> containers) {
  PodView v;
  v.host_ip = "192.168.1.10";
  v.pod_ips = {"10.42.0.5"};
  v.sandbox_ready = true;
  v.containers = std::move(containers);
  return v;
}

ContainerView Current(ContainerInstance c) {
  ContainerView v;
  v.current = std::move(c);
  return v;
}

const json& ConditionOf(const json& status, const std::string& type) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  FAIL("no condition " << type);
  static json none;
  return none;
}

}  // namespace

TEST_CASE("image names as container statuses show them") {
  CHECK(NormalizeImageName("busybox") == "docker.io/library/busybox:latest");
  CHECK(NormalizeImageName("busybox:1.36") == "docker.io/library/busybox:1.36");
  CHECK(NormalizeImageName("user/app") == "docker.io/user/app:latest");
  CHECK(NormalizeImageName("orch.test/busybox:1") == "orch.test/busybox:1");
  CHECK(NormalizeImageName("localhost:5000/x") == "localhost:5000/x:latest");
  CHECK(NormalizeImageName("r.io/x@sha256:00") == "r.io/x@sha256:00");
}

TEST_CASE("a running pod: Running, ready, IPs and conditions") {
  json pod = Pod("Always", json::array({C("a"), C("b")}));
  json status = ComputePodStatus(
      pod, View({{"a", Current(Running("id-a"))}, {"b", Current(Running("id-b", 2))}}), kNow);
  CHECK(status["phase"] == "Running");
  CHECK(status["podIP"] == "10.42.0.5");
  CHECK(status["podIPs"] == json::array({{{"ip", "10.42.0.5"}}}));
  CHECK(status["hostIP"] == "192.168.1.10");
  CHECK(status["hostIPs"] == json::array({{{"ip", "192.168.1.10"}}}));
  CHECK(status["startTime"] == "2025-01-02T03:04:05Z");
  CHECK(status["qosClass"] == "BestEffort");
  CHECK_FALSE(status.contains("initContainerStatuses"));
  const json& a = status["containerStatuses"][0];
  CHECK(a["name"] == "a");
  CHECK(a["ready"] == true);
  CHECK(a["started"] == true);
  CHECK(a["restartCount"] == 0);
  CHECK(a["containerID"] == "containerd://id-a");
  CHECK(a["image"] == "docker.io/library/busybox:latest");
  CHECK(a["imageID"] == "sha256:abc");
  CHECK(a["state"]["running"]["startedAt"] == "2025-01-02T03:04:05Z");
  CHECK(a["lastState"] == json::object());
  CHECK(status["containerStatuses"][1]["restartCount"] == 2);
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    CHECK(ConditionOf(status, type)["status"] == "True");
  }
}

TEST_CASE("waiting containers keep the pod Pending with their reasons") {
  json pod = Pod("Always", json::array({C("a"), C("b")}));
  ContainerView pulling;
  pulling.waiting_reason = "ErrImagePull";
  pulling.waiting_message = "not found";
  json status =
      ComputePodStatus(pod, View({{"a", Current(Running("id-a"))}, {"b", pulling}}), kNow);
  CHECK(status["phase"] == "Pending");
  const json& b = status["containerStatuses"][1];
  CHECK(b["state"]["waiting"]["reason"] == "ErrImagePull");
  CHECK(b["state"]["waiting"]["message"] == "not found");
  CHECK(b["ready"] == false);
  CHECK_FALSE(b.contains("containerID"));
  const json& ready = ConditionOf(status, "Ready");
  CHECK(ready["status"] == "False");
  CHECK(ready["reason"] == "ContainersNotReady");
  CHECK(ready["message"] == "containers with unready status: [b]");
  // Nothing known yet: ContainerCreating.
  json fresh = ComputePodStatus(pod, View({}), kNow);
  CHECK(fresh["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating");
}

TEST_CASE("a crash-looping container: waiting CrashLoopBackOff, lastState, still Running") {
  json pod = Pod("Always", json::array({C("a")}));
  ContainerView v = Current(Exited("id-3", 1, 3));
  v.previous = Exited("id-2", 1, 2);
  v.waiting_reason = "CrashLoopBackOff";
  v.waiting_message = "back-off 40s restarting failed container=a pod=p_default(u1)";
  json status = ComputePodStatus(pod, View({{"a", v}}), kNow);
  CHECK(status["phase"] == "Running");
  const json& a = status["containerStatuses"][0];
  CHECK(a["state"]["waiting"]["reason"] == "CrashLoopBackOff");
  CHECK(a["lastState"]["terminated"]["exitCode"] == 1);
  CHECK(a["lastState"]["terminated"]["reason"] == "Error");
  CHECK(a["lastState"]["terminated"]["containerID"] == "containerd://id-3");
  CHECK(a["lastState"]["terminated"]["finishedAt"] == "2025-01-02T03:04:10Z");
  CHECK(a["restartCount"] == 3);
  CHECK(a["ready"] == false);
}

TEST_CASE("phases of finished pods by restart policy") {
  auto phase = [](const std::string& policy, std::vector<ContainerInstance> instances) {
    json containers = json::array();
    std::map<std::string, ContainerView> views;
    for (size_t i = 0; i < instances.size(); ++i) {
      std::string name = "c" + std::to_string(i);
      containers.push_back(C(name));
      views[name] = Current(instances[i]);
    }
    return ComputePodStatus(Pod(policy, containers), View(views), kNow)["phase"].get<std::string>();
  };
  CHECK(phase("Never", {Exited("x", 0), Exited("y", 0)}) == "Succeeded");
  CHECK(phase("Never", {Exited("x", 0), Exited("y", 3)}) == "Failed");
  CHECK(phase("Never", {Exited("x", 3), Running("y")}) == "Running");
  CHECK(phase("OnFailure", {Exited("x", 0)}) == "Succeeded");
  CHECK(phase("OnFailure", {Exited("x", 1)}) == "Running");
  CHECK(phase("Always", {Exited("x", 0)}) == "Running");

  json pod = Pod("Never", json::array({C("a")}));
  json status = ComputePodStatus(pod, View({{"a", Current(Exited("id", 3))}}), kNow);
  CHECK(status["phase"] == "Failed");
  const json& t = status["containerStatuses"][0]["state"]["terminated"];
  CHECK(t["exitCode"] == 3);
  CHECK(t["reason"] == "Error");
  CHECK(t["startedAt"] == "2025-01-02T03:04:05Z");
  CHECK(ConditionOf(status, "Ready")["reason"] == "PodCompleted");
  CHECK(ConditionOf(status, "PodReadyToStartContainers")["status"] == "False");
  json oom = ComputePodStatus(pod, View({{"a", Current(Exited("id", 137, 0, "OOMKilled"))}}), kNow);
  CHECK(oom["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled");
  ContainerInstance with_message = Exited("id", 0);
  with_message.termination_message = "all done";
  json done = ComputePodStatus(pod, View({{"a", Current(with_message)}}), kNow);
  CHECK(done["phase"] == "Succeeded");
  CHECK(done["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed");
  CHECK(done["containerStatuses"][0]["state"]["terminated"]["message"] == "all done");
}

TEST_CASE("init containers gate the pod") {
  json pod = Pod("Always", json::array({C("app")}), json::array({C("init1"), C("init2")}));
  // The first init container runs.
  json s1 = ComputePodStatus(pod, View({{"init1", Current(Running("i1"))}}), kNow);
  CHECK(s1["phase"] == "Pending");
  CHECK(s1["initContainerStatuses"][0]["state"].contains("running"));
  CHECK(s1["initContainerStatuses"][1]["state"]["waiting"]["reason"] == "ContainerCreating");
  CHECK(s1["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing");
  const json& init = ConditionOf(s1, "Initialized");
  CHECK(init["status"] == "False");
  CHECK(init["reason"] == "ContainersNotInitialized");
  CHECK(init["message"] == "containers with incomplete status: [init1 init2]");
  // Both done, the app runs.
  json s2 = ComputePodStatus(pod,
                             View({{"init1", Current(Exited("i1", 0))},
                                   {"init2", Current(Exited("i2", 0))},
                                   {"app", Current(Running("a"))}}),
                             kNow);
  CHECK(s2["phase"] == "Running");
  CHECK(ConditionOf(s2, "Initialized")["status"] == "True");
  CHECK(s2["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed");
  CHECK(s2["initContainerStatuses"][0]["ready"] == true);
  // A failed init container with restartPolicy Never fails the pod; otherwise it is retried.
  json never = Pod("Never", json::array({C("app")}), json::array({C("init1")}));
  json s3 = ComputePodStatus(never, View({{"init1", Current(Exited("i1", 2))}}), kNow);
  CHECK(s3["phase"] == "Failed");
  ContainerView retry = Current(Exited("i1", 2));
  retry.waiting_reason = "CrashLoopBackOff";
  json s4 = ComputePodStatus(pod, View({{"init1", retry}}), kNow);
  CHECK(s4["phase"] == "Pending");
  CHECK(s4["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff");
}

TEST_CASE("a deleted pod whose containers stopped ends Failed or Succeeded") {
  json pod = Pod("Always", json::array({C("a")}));
  PodView v = View({{"a", Current(Exited("id", 143))}});
  v.terminating = true;
  v.sandbox_ready = false;
  CHECK(ComputePodStatus(pod, v, kNow)["phase"] == "Failed");
  PodView clean = View({{"a", Current(Exited("id", 0))}});
  clean.terminating = true;
  CHECK(ComputePodStatus(pod, clean, kNow)["phase"] == "Succeeded");
}

TEST_CASE("conditions: others' kept, transition times kept while unchanged") {
  json pod = Pod("Always", json::array({C("a")}));
  pod["status"]["conditions"] = json::array(
      {{{"type", "PodScheduled"},
        {"status", "True"},
        {"lastTransitionTime", "2025-01-01T00:00:00Z"}},
       {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2025-01-01T00:00:01Z"}},
       {{"type", "Initialized"},
        {"status", "False"},
        {"lastTransitionTime", "2025-01-01T00:00:02Z"}},
       {{"type", "example.com/gate"}, {"status", "True"}}});
  pod["status"]["startTime"] = "2025-01-01T00:00:00Z";
  pod["status"]["podIP"] = "10.42.0.99";
  json status = ComputePodStatus(pod, View({{"a", Current(Running("id"))}}), kNow);
  CHECK(ConditionOf(status, "PodScheduled")["lastTransitionTime"] == "2025-01-01T00:00:00Z");
  CHECK(ConditionOf(status, "Ready")["lastTransitionTime"] == "2025-01-01T00:00:01Z");
  CHECK(ConditionOf(status, "Initialized")["lastTransitionTime"] == "2025-01-02T03:04:05Z");
  CHECK(ConditionOf(status, "example.com/gate")["status"] == "True");
  CHECK(status["startTime"] == "2025-01-01T00:00:00Z");
  CHECK(status["podIP"] == "10.42.0.5");
  // Once the sandbox is gone its address stays in the status.
  PodView gone = View({{"a", Current(Exited("id", 0))}});
  gone.pod_ips.clear();
  CHECK(ComputePodStatus(pod, gone, kNow)["podIP"] == "10.42.0.99");
  // Computing twice from the written status gives the same status: no needless writes.
  json again = pod;
  again["status"] = status;
  CHECK(ComputePodStatus(again, View({{"a", Current(Running("id"))}}),
                         kNow + std::chrono::hours(1)) == status);
}
