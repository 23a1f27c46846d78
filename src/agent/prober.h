// Startup, liveness and readiness probes of the node's running containers, as the kubelet runs
// them: one timer-driven scheduler thread for every probe of the node and a small bounded pool
// that runs the blocking checks (exec, HTTP, TCP), never a thread per probe. Results follow the
// upstream rules (initial delay, period, timeout, success and failure thresholds, startup gating
// liveness and readiness); a change the pod worker must act on queues the pod for a sync.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "handlers.h"
#include "json_util.h"
#include "orch/events.h"
#include "orch/runtime.h"

namespace orch::agent {

enum class ProbeType { kStartup, kLiveness, kReadiness };

// "Liveness", "Readiness", "Startup": how events name the probe.
const char* ProbeTypeName(ProbeType type);

// A probe's timing with upstream's defaults (period 10 s, timeout 1 s, thresholds 1 and 3).
struct ProbeSettings {
  int64_t initial_delay_seconds = 0;
  int64_t period_seconds = 10;
  int64_t timeout_seconds = 1;
  int64_t success_threshold = 1;
  int64_t failure_threshold = 3;
  // probe-level terminationGracePeriodSeconds (liveness and startup kills), when set.
  std::optional<int64_t> termination_grace_seconds;
};
ProbeSettings ProbeSettingsOf(const json& probe, ProbeType type);

// What the pod worker learns about one running container.
struct ContainerProbeState {
  bool started = true;  // no startup probe, or it succeeded
  bool ready = true;    // started, and no readiness probe or it succeeded
  // Set when a liveness or startup probe failed for good: the container must be killed and
  // restarted per the pod's restartPolicy. The probe stays quiet until the container changes.
  std::optional<ProbeType> failed;
  std::optional<int64_t> kill_grace_seconds;  // the failed probe's own grace, if it sets one
};

// One probe attempt's inputs, copied out of the manager for the worker thread.
struct ProbeAttempt {
  ProbeType type;
  json probe;      // the probe spec
  json container;  // the container spec (named ports)
  std::string container_id;
  std::string pod_ip;
};

class ProbeManager {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs one attempt; the default runs the handlers against `runtime`.
  using RunFn = std::function<HandlerResult(const ProbeAttempt&)>;

  struct Options {
    int workers = 4;  // probes running at the same time, at most
    // false: no threads; the owner calls RunDue (unit tests, with their own clock).
    bool threads = true;
    RunFn run;  // empty = the real handlers
  };

  // `on_change(uid)` is called (from a prober thread, no lock held) when a container's readiness
  // or start changed or a liveness/startup probe failed: the pod needs a sync.
  ProbeManager(cri::Runtime& runtime, EventRecorder& events,
               std::function<void(const std::string& uid)> on_change, Options options);
  ProbeManager(cri::Runtime& runtime, EventRecorder& events,
               std::function<void(const std::string& uid)> on_change)
      : ProbeManager(runtime, events, std::move(on_change), Options{}) {}
  ~ProbeManager();
  ProbeManager(const ProbeManager&) = delete;
  ProbeManager& operator=(const ProbeManager&) = delete;

  struct Running {
    std::string id;          // the container ID
    int64_t started_at = 0;  // ns since the epoch (CRI's startedAt)
  };
  // Brings the pod's probes in line with its running containers (by container name): new
  // containers get probes, restarted ones start over, stopped ones lose theirs. `pod_ip` is
  // where HTTP and TCP probes go. Thread-safe; the threads start with the first probe.
  void SyncPod(const json& pod, const std::map<std::string, Running>& running,
               const std::string& pod_ip);
  // Forgets the pod's probes (deleted, terminating or finished). Thread-safe.
  void RemovePod(const std::string& uid);

  // The probe state of `container` (its spec) running as `container_id`. A probe the spec has
  // but the manager does not (yet) hold for that container counts as not passed. Thread-safe.
  ContainerProbeState StateOf(const std::string& uid, const json& container,
                              const std::string& container_id) const;

  // Runs, on the calling thread, every probe due at `now` (threads == false only).
  void RunDue(Clock::time_point now);
  // How many probes the manager holds (tests).
  size_t size() const;

 private:
  struct Worker;
  using WorkerPtr = std::shared_ptr<Worker>;

  void Scheduler();
  void PoolThread();
  void StartThreadsLocked();
  // Marks the probes due at `now` busy and returns them; `earliest` gets the next due time.
  void CollectDueLocked(Clock::time_point now, std::vector<WorkerPtr>* due,
                        Clock::time_point* earliest);
  // Applies an attempt's result; returns whether the pod needs a sync.
  bool Finish(const WorkerPtr& w, const std::string& container_id, const HandlerResult& result,
              Clock::time_point now);
  HandlerResult RunAttempt(const ProbeAttempt& attempt);

  cri::Runtime& runtime_;
  EventRecorder& events_;
  std::function<void(const std::string&)> on_change_;
  Options options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;  // scheduler: the set of probes or their times changed
  std::condition_variable work_;  // pool: a task is queued
  // guarded by mu_: uid -> "container/type" -> worker
  std::map<std::string, std::map<std::string, WorkerPtr>> pods_;
  std::deque<WorkerPtr> tasks_;  // guarded by mu_: due, waiting for a pool thread
  bool stopping_ = false;        // guarded by mu_
  bool started_ = false;         // guarded by mu_
  std::thread scheduler_;
  std::vector<std::thread> pool_;
};

}  // namespace orch::agent
