// The node agent's pod worker against a fake runtime and the fake API: init containers in
// order, restart policies and back-off, image pull failures, termination and deletion,
// adoption of running containers, cleanup of pods that are gone.
#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "agent_fakes.h"
#include "fake_api_client.h"
#include "fake_runtime.h"
#include "orch/events.h"
#include "pod_worker.h"
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
    events->Stop();
    fs::remove_all(dir);
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
