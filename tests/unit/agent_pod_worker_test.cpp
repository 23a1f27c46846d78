// The node agent's pod worker against a fake runtime and the fake API: init containers in
// order, restart policies and back-off, image pull failures, termination and deletion,
// adoption of running containers, cleanup of pods that are gone; probes deciding readiness and
// restarts, postStart and preStop hooks.
#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "agent_fakes.h"
#include "fake_api_client.h"
#include "fake_runtime.h"
#include "orch/events.h"
#include "pod_worker.h"
#include "prober.h"
#include "runtime_labels.h"

using json = nlohmann::json;
using namespace orch::agent;
namespace fs = std::filesystem;
using orch::resources::kPods;

namespace {

struct Harness {
  std::string dir;
  orch::testing::FakeApiClient api;
  orch::testing::FakeRuntime runtime;
  orch::testing::FakeObjectSource objects;
  std::unique_ptr<orch::EventRecorder> events =
      orch::EventRecorder::Create(api, "kubelet", "node-a");
  std::unique_ptr<VolumeManager> volumes;
  std::unique_ptr<ImagePuller> images;
  std::unique_ptr<PodWorkerContext> ctx;
  std::unique_ptr<PodWorker> worker;

  Harness() {
    char tmpl[] = "/tmp/orch-agent-worker-XXXXXX";
    dir = ::mkdtemp(tmpl);
    AgentPaths paths(dir);
    volumes = std::make_unique<VolumeManager>(paths, objects, false);
    images = std::make_unique<ImagePuller>(runtime, *events, objects);
    SandboxContext sandbox;
    sandbox.node_name = "node-a";
    sandbox.cluster_dns = "10.43.0.10";
    sandbox.log_root = paths.logs_dir;
    ctx = std::make_unique<PodWorkerContext>(PodWorkerContext{
        "node-a", "192.168.1.10", paths, sandbox, runtime, api, *events, objects, *volumes, *images,
        2000, 4LL << 30, 10LL << 30, [] { return true; }, nullptr});
    worker = std::make_unique<PodWorker>(*ctx);
    runtime.AddImage("orch.test/busybox:1", "sha256:busybox");
  }
  ~Harness() {
    worker.reset();
    events->Stop();
    fs::remove_all(dir);
  }

  // Probes run by hand (RunDue) with answers from `probe_answers` by probe type name.
  std::unique_ptr<ProbeManager> probes;
  std::map<std::string, HandlerResult> probe_answers;
  ProbeManager::Clock::time_point probe_time = ProbeManager::Clock::now();
  void UseManualProbes() {
    ProbeManager::Options options;
    options.threads = false;
    options.run = [this](const ProbeAttempt& a) { return probe_answers[ProbeTypeName(a.type)]; };
    worker.reset();
    probes = std::make_unique<ProbeManager>(runtime, *events, nullptr, options);
    ctx->probes = probes.get();
    worker = std::make_unique<PodWorker>(*ctx);
  }
  void Probe(int seconds) {
    probe_time += std::chrono::seconds(seconds);
    probes->RunDue(probe_time);
  }

  std::string Create(json pod) {
    pod["apiVersion"] = "v1";
    pod["kind"] = "Pod";
    pod["metadata"]["namespace"] = "default";
    pod["spec"]["nodeName"] = "node-a";
    auto created = api.Create(kPods, "default", pod);
    REQUIRE(created.ok());
    return (*created)["metadata"]["uid"];
  }
  json Get(const std::string& name) {
    auto pod = api.Get(kPods, "default", name);
    REQUIRE(pod.ok());
    return *pod;
  }
  SyncOutcome Sync(const std::string& name) {
    json pod = Get(name);
    auto outcome = worker->Sync(pod["metadata"]["uid"], std::make_shared<const json>(pod));
    INFO(outcome.status.ToString());
    REQUIRE(outcome.status.ok());
    return outcome;
  }
  std::string Latest(const std::string& container) {
    auto list = runtime.ContainersNamed(container);
    REQUIRE_FALSE(list.empty());
    return list.front().container.id;
  }
  std::vector<std::string> EventMessages() {
    events->Stop();
    auto list = api.List(orch::resources::kEvents, "default");
    std::vector<std::string> out;
    for (const auto& e : list->items)
      out.push_back(e.value("reason", "") + ": " + e.value("message", ""));
    return out;
  }
};

json Container(const std::string& name, const std::string& command = "sleep 3600") {
  return {{"name", name},
          {"image", "orch.test/busybox:1"},
          {"command", json::array({"sh", "-c", command})}};
}

json PodSpec(const std::string& name, json containers, const std::string& policy = "Always",
             json init = json::array()) {
  json pod = {{"metadata", {{"name", name}}},
              {"spec", {{"restartPolicy", policy}, {"containers", std::move(containers)}}}};
  if (!init.empty()) pod["spec"]["initContainers"] = std::move(init);
  return pod;
}

bool Contains(const std::vector<std::string>& list, const std::string& text) {
  for (const auto& s : list) {
    if (s.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("init containers run one at a time, then the containers") {
  Harness h;
  h.Create(PodSpec("p", json::array({Container("app")}), "Always",
                   json::array({Container("init1", "true"), Container("init2", "true")})));
  h.Sync("p");
  CHECK(h.runtime.ContainersNamed("init1").size() == 1);
  CHECK(h.runtime.ContainersNamed("init2").empty());
  CHECK(h.runtime.ContainersNamed("app").empty());
  json pod = h.Get("p");
  CHECK(pod["status"]["phase"] == "Pending");
  CHECK(pod["status"]["initContainerStatuses"][0]["state"].contains("running"));
  CHECK(pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing");
  CHECK(pod["status"]["podIP"].get<std::string>().rfind("10.42.0.", 0) == 0);
  CHECK(pod["status"]["hostIP"] == "192.168.1.10");

  h.Sync("p");  // still running: nothing new
  CHECK(h.runtime.ContainersNamed("init2").empty());
  h.runtime.Exit(h.Latest("init1"), 0);
  h.Sync("p");
  CHECK(h.runtime.ContainersNamed("init2").size() == 1);
  CHECK(h.runtime.ContainersNamed("app").empty());
  h.runtime.Exit(h.Latest("init2"), 0);
  h.Sync("p");
  REQUIRE(h.runtime.ContainersNamed("app").size() == 1);
  pod = h.Get("p");
  CHECK(pod["status"]["phase"] == "Running");
  CHECK(pod["status"]["containerStatuses"][0]["ready"] == true);
  for (const json& c : pod["status"]["conditions"]) {
    CHECK(c["status"] == "True");
  }
  // One sandbox, the containers in it.
  CHECK(h.runtime.Sandboxes().size() == 1);
  auto events = h.EventMessages();
  CHECK(Contains(events, "Started: Started container init1"));
  CHECK(Contains(events, "Created: Created container app"));
  CHECK(Contains(events,
                 "Pulled: Container image \"orch.test/busybox:1\" already present on machine"));
}

TEST_CASE("a failing container with restartPolicy Never fails the pod and frees its sandbox") {
  Harness h;
  h.Create(PodSpec("p", json::array({Container("job", "exit 3")}), "Never"));
  h.Sync("p");
  h.runtime.Exit(h.Latest("job"), 3);
  auto outcome = h.Sync("p");
  CHECK_FALSE(outcome.requeue_after);
  json pod = h.Get("p");
  CHECK(pod["status"]["phase"] == "Failed");
  CHECK(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3);
  CHECK(h.runtime.Sandboxes().front().state == orch::cri::SandboxState::kNotReady);
  CHECK(h.runtime.ContainersNamed("job").size() == 1);  // kept for its logs
  h.Sync("p");
  CHECK(h.runtime.ContainersNamed("job").size() == 1);  // never started again
}

TEST_CASE("a crashing container restarts at once, then backs off") {
  Harness h;
  h.Create(PodSpec("p", json::array({Container("c", "exit 1")})));
  h.Sync("p");
  h.runtime.Exit(h.Latest("c"), 1);
  h.Sync("p");  // the first restart is immediate
  auto runs = h.runtime.ContainersNamed("c");
  REQUIRE(runs.size() == 2);
  CHECK(runs.front().container.annotations.at(kRestartCountAnnotation) == "1");
  h.runtime.Exit(h.Latest("c"), 1);
  auto outcome = h.Sync("p");
  CHECK(h.runtime.ContainersNamed("c").size() == 2);  // waiting
  REQUIRE(outcome.requeue_after);
  CHECK(*outcome.requeue_after <= std::chrono::seconds(10));
  CHECK(*outcome.requeue_after >= std::chrono::seconds(8));
  json status = h.Get("p")["status"];
  CHECK(status["phase"] == "Running");
  const json& c = status["containerStatuses"][0];
  CHECK(c["state"]["waiting"]["reason"] == "CrashLoopBackOff");
  CHECK(c["state"]["waiting"]["message"].get<std::string>().rfind(
            "back-off 10s restarting failed container=c pod=p_default(", 0) == 0);
  CHECK(c["lastState"]["terminated"]["exitCode"] == 1);
  CHECK(c["restartCount"] == 1);
  CHECK(Contains(h.EventMessages(),
                 "BackOff: Back-off restarting failed container c in pod p_default("));
}

TEST_CASE("OnFailure restarts failures only") {
  Harness h;
  h.Create(
      PodSpec("p", json::array({Container("ok", "true"), Container("bad", "false")}), "OnFailure"));
  h.Sync("p");
  h.runtime.Exit(h.Latest("ok"), 0);
  h.runtime.Exit(h.Latest("bad"), 1);
  h.Sync("p");
  CHECK(h.runtime.ContainersNamed("ok").size() == 1);
  CHECK(h.runtime.ContainersNamed("bad").size() == 2);
  CHECK(h.Get("p")["status"]["phase"] == "Running");
  h.runtime.Exit(h.Latest("bad"), 0);
  h.Sync("p");
  CHECK(h.Get("p")["status"]["phase"] == "Succeeded");
}

TEST_CASE("image pull failures: ErrImagePull, then ImagePullBackOff, then a successful pull") {
  Harness h;
  json c = Container("c");
  c["image"] = "registry.test/app:1";
  h.Create(PodSpec("p", json::array({c})));
  auto first = h.Sync("p");
  CHECK(h.runtime.pulls() == 1);
  json s = h.Get("p")["status"]["containerStatuses"][0];
  CHECK(s["state"]["waiting"]["reason"] == "ErrImagePull");
  CHECK(s["state"]["waiting"]["message"].get<std::string>().find("not found") != std::string::npos);
  REQUIRE(first.requeue_after);
  h.Sync("p");
  CHECK(h.runtime.pulls() == 1);  // backing off
  CHECK(h.Get("p")["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] ==
        "ImagePullBackOff");
  auto events = h.EventMessages();
  CHECK(Contains(events, "Failed: Failed to pull image \"registry.test/app:1\": "));
  CHECK(Contains(events, "Failed: Error: ErrImagePull"));
  CHECK(Contains(events, "BackOff: Back-off pulling image \"registry.test/app:1\""));
}

TEST_CASE("a missing ConfigMap: CreateContainerConfigError until it exists") {
  Harness h;
  json c = Container("c");
  c["env"] = json::array(
      {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "x"}}}}}}});
  h.Create(PodSpec("p", json::array({c})));
  h.Sync("p");
  json s = h.Get("p")["status"]["containerStatuses"][0];
  CHECK(s["state"]["waiting"]["reason"] == "CreateContainerConfigError");
  CHECK(s["state"]["waiting"]["message"] == "configmap \"cfg\" not found");
  CHECK(h.runtime.creates() == 0);
  h.objects.AddConfigMap("default", "cfg", {{"x", "1"}});
  h.Sync("p");
  CHECK(h.Get("p")["status"]["phase"] == "Running");
}

TEST_CASE("deletion: SIGTERM with the grace period, final status, then the pod is deleted") {
  Harness h;
  json pod = PodSpec("p", json::array({Container("a"), Container("b")}));
  pod["spec"]["terminationGracePeriodSeconds"] = 20;
  std::string uid = h.Create(pod);
  h.Sync("p");
  auto deleting = h.api.Delete(kPods, "default", "p");
  REQUIRE(deleting.ok());
  REQUIRE((*deleting)["metadata"].contains("deletionTimestamp"));
  // The first pass starts stopping the containers in the background; a pass after they have
  // stopped writes the final status and deletes the pod.
  for (int i = 0; i < 500 && h.api.Get(kPods, "default", "p").ok(); ++i) {
    h.Sync("p");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto stops = h.runtime.Stops();
  REQUIRE(stops.size() == 2);
  CHECK(stops[0].grace == std::chrono::seconds(20));
  CHECK(h.api.Get(kPods, "default", "p").status().code() == orch::StatusCode::kNotFound);
  CHECK(h.runtime.Sandboxes().empty());
  CHECK_FALSE(fs::exists(AgentPaths(h.dir).PodDir(uid)));
  CHECK(Contains(h.EventMessages(), "Killing: Stopping container a"));
}

TEST_CASE("running containers are adopted, not restarted; leftovers of gone pods removed") {
  Harness h;
  std::string uid = h.Create(PodSpec("p", json::array({Container("c")})));
  h.Sync("p");
  std::string id = h.Latest("c");
  // A new worker (a restarted agent) sees the same runtime.
  PodWorker fresh(*h.ctx);
  json pod = h.Get("p");
  auto outcome = fresh.Sync(uid, std::make_shared<const json>(pod));
  REQUIRE(outcome.status.ok());
  CHECK(h.runtime.ContainersNamed("c").size() == 1);
  CHECK(h.Latest("c") == id);
  CHECK(h.runtime.Sandboxes().size() == 1);
  CHECK(h.Get("p")["status"]["containerStatuses"][0]["restartCount"] == 0);

  // The pod is gone from the API: everything of it goes.
  auto gone = fresh.Sync(uid, nullptr);
  REQUIRE(gone.status.ok());
  CHECK(h.runtime.Sandboxes().empty());
  CHECK(h.runtime.ContainersNamed("c").empty());
}

TEST_CASE("a changed container spec restarts the container") {
  Harness h;
  h.Create(PodSpec("p", json::array({Container("c")})));
  h.Sync("p");
  std::string first = h.Latest("c");
  auto pod = h.Get("p");
  pod["spec"]["containers"][0]["image"] = "orch.test/busybox:2";
  h.runtime.AddImage("orch.test/busybox:2", "sha256:busybox2");
  REQUIRE(h.api.Update(kPods, "default", pod).ok());
  h.Sync("p");
  CHECK(h.Latest("c") != first);
  auto runs = h.runtime.ContainersNamed("c");
  CHECK(runs.front().container.annotations.at(kRestartCountAnnotation) == "1");
  CHECK(runs.front().container.image == "sha256:busybox2");
}

namespace {

json ConditionStatus(const json& pod, const std::string& type) {
  for (const auto& c : pod["status"]["conditions"]) {
    if (c["type"] == type) return c["status"];
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a readiness probe decides ready, ContainersReady and Ready") {
  Harness h;
  h.UseManualProbes();
  json c = Container("c");
  c["readinessProbe"] = {{"exec", {{"command", {"test", "-f", "/tmp/ready"}}}},
                         {"periodSeconds", 1}};
  h.Create(PodSpec("p", json::array({c, Container("plain")})));
  h.Sync("p");
  json pod = h.Get("p");
  CHECK(pod["status"]["phase"] == "Running");
  CHECK(pod["status"]["containerStatuses"][0]["ready"] == false);
  CHECK(pod["status"]["containerStatuses"][0]["started"] == true);
  CHECK(pod["status"]["containerStatuses"][1]["ready"] == true);
  CHECK(ConditionStatus(pod, "Ready") == "False");
  CHECK(ConditionStatus(pod, "ContainersReady") == "False");

  h.probe_answers["Readiness"] = {HandlerOutcome::kSuccess, ""};
  h.Probe(1);
  h.Sync("p");
  pod = h.Get("p");
  CHECK(pod["status"]["containerStatuses"][0]["ready"] == true);
  CHECK(ConditionStatus(pod, "Ready") == "True");
  CHECK(ConditionStatus(pod, "ContainersReady") == "True");
}

TEST_CASE("a failed liveness probe kills the container, which restarts") {
  Harness h;
  h.UseManualProbes();
  json c = Container("c");
  c["livenessProbe"] = {
      {"exec", {{"command", {"false"}}}}, {"periodSeconds", 1}, {"failureThreshold", 1}};
  c["lifecycle"] = {{"preStop", {{"exec", {{"command", {"sh", "-c", "echo bye"}}}}}}};
  json pod = PodSpec("p", json::array({c}));
  pod["spec"]["terminationGracePeriodSeconds"] = 9;
  h.Create(pod);
  h.Sync("p");
  std::string first = h.Latest("c");
  h.probe_answers["Liveness"] = {HandlerOutcome::kFailure, "dead"};
  h.Probe(1);
  h.Sync("p");  // kills it (preStop first)
  auto stops = h.runtime.Stops();
  REQUIRE(stops.size() == 1);
  CHECK(stops[0].id == first);
  CHECK(stops[0].grace <= std::chrono::seconds(9));
  auto execs = h.runtime.Execs();
  REQUIRE(execs.size() == 1);
  CHECK(execs[0].cmd.back() == "echo bye");
  CHECK(execs[0].timeout == std::chrono::seconds(9));
  h.Sync("p");  // restarts it
  CHECK(h.Latest("c") != first);
  CHECK(h.Get("p")["status"]["containerStatuses"][0]["restartCount"] == 1);
  auto events = h.EventMessages();
  CHECK(Contains(events, "Unhealthy: Liveness probe failed: dead"));
  CHECK(Contains(events, "Killing: Container c failed liveness probe, will be restarted"));
}

TEST_CASE("postStart runs after the start; a failing one kills the container") {
  Harness h;
  h.runtime.SetExecHandler([](const auto& call) -> orch::Result<orch::cri::ExecSyncResult> {
    if (call.cmd.back() == "exit 3") return orch::cri::ExecSyncResult{"", "", 3, false};
    return orch::cri::ExecSyncResult{};
  });
  json good = Container("good");
  good["lifecycle"] = {{"postStart", {{"exec", {{"command", {"sh", "-c", "touch /x"}}}}}}};
  json bad = Container("bad");
  bad["lifecycle"] = {{"postStart", {{"exec", {{"command", {"sh", "-c", "exit 3"}}}}}}};
  h.Create(PodSpec("p", json::array({good, bad}), "Never"));
  h.Sync("p");
  auto good_runs = h.runtime.ContainersNamed("good");
  auto bad_runs = h.runtime.ContainersNamed("bad");
  REQUIRE(good_runs.size() == 1);
  REQUIRE(bad_runs.size() == 1);
  CHECK(good_runs[0].container.state == orch::cri::ContainerState::kRunning);
  CHECK(bad_runs[0].container.state == orch::cri::ContainerState::kExited);
  auto events = h.EventMessages();
  CHECK(Contains(events,
                 "FailedPostStartHook: Exec lifecycle hook ([sh -c exit 3]) for Container "
                 "\"bad\" in Pod \"p_default("));
  CHECK(Contains(events, "Killing: FailedPostStartHook"));
}

TEST_CASE("deletion runs preStop before the stop, within the grace period") {
  Harness h;
  json c = Container("c");
  c["lifecycle"] = {{"preStop", {{"sleep", {{"seconds", 0}}}}}};
  json d = Container("d");
  d["lifecycle"] = {{"preStop", {{"exec", {{"command", {"sh", "-c", "exit 1"}}}}}}};
  h.runtime.SetExecHandler([](const auto&) -> orch::Result<orch::cri::ExecSyncResult> {
    return orch::cri::ExecSyncResult{"", "no", 1, false};
  });
  json pod = PodSpec("p", json::array({c, d}));
  pod["spec"]["terminationGracePeriodSeconds"] = 5;
  h.Create(pod);
  h.Sync("p");
  REQUIRE(h.api.Delete(kPods, "default", "p").ok());
  for (int i = 0; i < 500 && h.api.Get(kPods, "default", "p").ok(); ++i) {
    h.Sync("p");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(h.runtime.Stops().size() == 2);
  auto execs = h.runtime.Execs();
  REQUIRE(execs.size() == 1);
  CHECK(execs[0].timeout == std::chrono::seconds(5));
  CHECK(Contains(h.EventMessages(), "FailedPreStopHook: Exec lifecycle hook ([sh -c exit 1])"));
}
