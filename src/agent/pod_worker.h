// The pod worker: one sync pass brings a pod's containers in the runtime to what its spec and
// the API ask for: the sandbox, volumes, images, init containers in order, then the containers
// with restarts and back-off; status and events written back; graceful termination and removal
// on deletion; cleanup of pods that no longer exist. Lifecycle hooks run in StartContainer
// (postStart) and KillContainer (preStop); probe results (prober.h) decide readiness in the
// status and kill containers whose liveness or startup probe failed.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent_paths.h"
#include "backoff.h"
#include "container_env.h"
#include "image_puller.h"
#include "object_source.h"
#include "orch/api_client.h"
#include "orch/events.h"
#include "orch/informer.h"
#include "orch/runtime.h"
#include "pod_status.h"
#include "prober.h"
#include "sandbox_config.h"
#include "volumes.h"

namespace orch::agent {

// What every pod worker shares; the references outlive the workers.
struct PodWorkerContext {
  std::string node_name;
  std::string node_ip;
  AgentPaths paths;
  SandboxContext sandbox;
  cri::Runtime& runtime;
  ApiClient& client;
  EventRecorder& events;
  ObjectSource& objects;
  VolumeManager& volumes;
  ImagePuller& images;
  // The node's allocatable cpu (millicores), memory and ephemeral storage (bytes).
  int64_t node_cpu_milli = 0;
  int64_t node_memory_bytes = 0;
  int64_t node_ephemeral_bytes = 0;
  // Whether the pod network (CNI config) is ready; pods on the host network do not wait for it.
  std::function<bool()> network_ready;
  // Asks for another sync of pod `uid` (a background stop finished, a probe result changed);
  // may be empty.
  std::function<void(const std::string& uid)> requeue;
  // The node's probes; null = the worker runs a ProbeManager of its own (threads start with the
  // first probe).
  ProbeManager* probes = nullptr;
  // Makes and removes pod cgroups (cgroupfs driver with pod cgroups on); null = none.
  PodCgroups* cgroups = nullptr;
};

// The outcome of one sync: an error makes the caller retry with back-off; `requeue_after` asks
// for another pass at a known time (a back-off ending).
struct SyncOutcome {
  Status status;
  std::optional<std::chrono::milliseconds> requeue_after;
};

// Thread-safe for different uids; the caller never syncs one uid on two threads at once (the
// work queue guarantees it).
class PodWorker {
 public:
  explicit PodWorker(PodWorkerContext& ctx);
  // Waits for the containers being stopped in the background.
  ~PodWorker();
  PodWorker(const PodWorker&) = delete;
  PodWorker& operator=(const PodWorker&) = delete;

  // One pass for pod `uid`; `pod` is its current object, or null when it is gone from the API
  // (then whatever the runtime still has of it is stopped and removed).
  SyncOutcome Sync(const std::string& uid, const ObjectPtr& pod);

 private:
  // Per pod, kept between passes; touched only by the thread syncing that pod.
  struct PodState {
    bool terminal = false;   // reached Succeeded/Failed: nothing is started again
    json last_status;        // written but not yet seen in the informer: skips identical writes
    std::string sandbox_id;  // the sandbox whose addresses are cached below
    std::vector<std::string> pod_ips;
  };
  // A pass over one pod, with its decisions (waiting reasons, next wake-up).
  struct Pass;

  PodState& StateFor(const std::string& uid);
  void ForgetState(const std::string& uid);

  SyncOutcome SyncActive(const std::string& uid, const json& pod, PodState& state);
  SyncOutcome Terminate(const std::string& uid, const json& pod, PodState& state);
  SyncOutcome StopTerminal(const std::string& uid, const json& pod, PodState& state);
  SyncOutcome Cleanup(const std::string& uid);

  // The ready sandbox of the pod, creating one (attempt + 1) when there is none; fills
  // state.pod_ips.
  Result<std::pair<std::string, cri::PodSandboxConfig>> EnsureSandbox(const json& pod,
                                                                      PodState& state);
  // Every instance of the pod's containers, by container name, newest first.
  Result<std::map<std::string, std::vector<ContainerInstance>>> Instances(const std::string& uid);
  // Starts `container` (restart_count-th run) and runs its postStart hook; on failure records
  // why it waits in `pass`.
  void StartContainer(Pass& pass, const json& container, uint32_t restart_count);
  // Decides, for a container whose newest instance exited, whether and when it runs again.
  void RestartWithBackoff(Pass& pass, const json& container, const ContainerInstance& last);
  // Runs the container's preStop hook (when `pod` has its spec) within `grace`, then stops it
  // with what is left of the grace period.
  void KillContainer(const json& pod, const std::string& container_id, const std::string& name,
                     std::chrono::seconds grace, const std::string& message);
  // Feeds the running containers to the prober and kills those whose liveness or startup probe
  // failed; true when one was killed.
  bool ApplyProbes(Pass& pass,
                   const std::map<std::string, std::vector<ContainerInstance>>& instances);
  // Stops every running container of the pod at once (each gets `grace`).
  void KillAll(const json* pod, const std::string& uid, std::chrono::seconds grace);
  Status WriteStatus(const json& pod, PodState& state, const json& status);
  // What the environment and downwardAPI volumes read from the node and the pod's addresses.
  EnvContext EnvContextFor(const PodState& state) const;
  PodView ViewOf(const json& pod, const PodState& state, bool sandbox_ready,
                 const std::map<std::string, std::vector<ContainerInstance>>& instances,
                 const std::map<std::string, std::pair<std::string, std::string>>& waiting);

  PodWorkerContext& ctx_;
  std::unique_ptr<ProbeManager> own_probes_;  // when ctx_.probes is null
  ProbeManager& probes_;
  Backoff crash_backoff_;  // keys: "<uid>/<container>"
  // A deleted pod's containers get their whole grace period, which may be long: they are
  // stopped on a thread of their own, so the pod workers stay free for other pods; the pod is
  // synced again when they have stopped. At most one per pod being deleted.
  struct KillJob {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  // Starts the job for `uid` if none runs; true while it runs (finished ones are joined).
  bool KillingInBackground(const std::string& uid, const json* pod, std::chrono::seconds grace);

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<PodState>> states_;  // guarded by mu_ (the map only)
  std::map<std::string, std::unique_ptr<KillJob>> kills_;    // guarded by mu_
};

// The involved-object reference events about a pod carry.
json PodRef(const json& pod);

// The container spec named `name` among the pod's init containers and containers, or null.
const json* FindContainerSpec(const json& pod, const std::string& name);

}  // namespace orch::agent
