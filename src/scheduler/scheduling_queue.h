// The queue of pods waiting for a node: ready pods by priority (then arrival), pods backing off
// after a failure, and unschedulable pods parked until a cluster change could help them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "cluster_view.h"

namespace orch::sched {

// Thread-safe. A pod handed out by Pop is "in flight" until the scheduler reports the outcome with
// Done, Unschedulable or Backoff; it is never handed out twice at once.
class SchedulingQueue {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{10000};
    // Unschedulable pods are retried after this long even if no event moved them.
    std::chrono::milliseconds max_unschedulable{std::chrono::minutes(5)};
    // When no pod is ready, Pop takes the pod whose back-off ends first instead of idling until
    // it ends (upstream's SchedulerPopFromBackoffQ, KEP-5142): a back-off is there to let other
    // pods go first, not to keep the scheduler waiting. Pods backing off after an error (Backoff,
    // Requeue) still wait out their back-off: the API needs the pause.
    bool pop_from_backoff = true;
    std::function<Clock::time_point()> now = [] { return Clock::now(); };  // tests pass a fake
  };

  struct Item {
    PodPtr pod;
    int attempts = 0;  // including this one
  };

  explicit SchedulingQueue(Options options);
  SchedulingQueue(const SchedulingQueue&) = delete;
  SchedulingQueue& operator=(const SchedulingQueue&) = delete;

  // A pending pod of ours was added or updated. New pods are ready at once; an unschedulable pod
  // whose labels or spec changed is retried; other updates only refresh the stored view.
  void AddOrUpdate(PodPtr pod);
  // The pod is gone, bound, or no longer ours.
  void Delete(const std::string& key);

  // Blocks until a pod is ready (highest priority first) or Close was called (nullopt).
  std::optional<Item> Pop();
  // Pop without blocking (tests, and draining).
  std::optional<Item> TryPop();

  // Outcomes of an attempt on an in-flight pod (ignored if the pod was deleted meanwhile):
  // placed (the queue forgets it) ...
  void Done(const std::string& key);
  // ... rejected by the filters in `plugins` (FilterPlugin bits): parked until MoveOnEvent names
  // one of them, unless the cluster or the pod changed during the attempt (then backing off) ...
  void Unschedulable(const std::string& key, uint32_t plugins);
  // ... or failed for another reason (API error): retried after its back-off.
  void Backoff(const std::string& key);
  // A pod placed earlier whose binding failed: queued again behind a back-off.
  void Requeue(PodPtr pod);

  // Something changed in the cluster that may let pods rejected by `plugins` fit now.
  void MoveOnEvent(uint32_t plugins);

  // Wakes Pop with nullopt; later calls do nothing useful.
  void Close();

  struct Counts {
    size_t active = 0;
    size_t backoff = 0;
    size_t unschedulable = 0;
    size_t in_flight = 0;
  };
  Counts counts() const;

 private:
  enum class State { kActive, kBackoff, kUnschedulable, kInFlight };
  struct Entry {
    PodPtr pod;
    State state = State::kActive;
    int attempts = 0;
    uint64_t seq = 0;             // arrival order among equal priorities
    int32_t queued_priority = 0;  // the priority active_ holds it under
    Clock::time_point backoff_until{};
    Clock::time_point unschedulable_since{};
    uint32_t plugins = 0;
    uint64_t moves_at_pop = 0;
    bool updated_in_flight = false;
    bool error_backoff = false;  // backing off after an error (in error_backoff_, else backoff_)
  };
  using ActiveKey = std::tuple<int64_t, uint64_t, std::string>;  // (-priority, seq, key)

  std::optional<Item> TakeLocked(Clock::time_point now);
  void Unlink(const std::string& key, Entry& entry);  // out of whichever set holds it
  void PushActive(const std::string& key, Entry& entry);
  void PushBackoffOrActive(const std::string& key, Entry& entry, Clock::time_point now);
  void Promote(Clock::time_point now);  // due back-offs and overdue unschedulable pods
  // The back-off set an entry in kBackoff is in.
  std::set<std::pair<Clock::time_point, std::string>>& BackoffSet(const Entry& entry) {
    return entry.error_backoff ? error_backoff_ : backoff_;
  }
  std::chrono::milliseconds BackoffFor(int attempts) const;

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::set<ActiveKey> active_;                      // guarded by mu_
  // Pods backing off, by end of back-off: after being unschedulable, and after an error.
  std::set<std::pair<Clock::time_point, std::string>> backoff_;        // guarded by mu_
  std::set<std::pair<Clock::time_point, std::string>> error_backoff_;  // guarded by mu_
  std::unordered_set<std::string> unschedulable_;                      // guarded by mu_
  uint64_t seq_ = 0;                                                   // guarded by mu_
  uint64_t moves_ = 0;                                                 // guarded by mu_
  Clock::time_point next_flush_{};                                     // guarded by mu_
  bool closed_ = false;                                                // guarded by mu_
};

}  // namespace orch::sched
