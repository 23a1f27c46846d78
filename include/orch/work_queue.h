// The work queue every controller loop runs on (client-go's rate-limited queue): keys, not
// objects, so bursts of changes to one object collapse into one reconcile; a key is never handed
// to two workers at once; failures are retried with per-key exponential back-off.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "orch/status.h"

namespace orch {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // Back-off of a failing key: base * 2^failures, capped at `max_delay`.
  explicit WorkQueue(std::chrono::milliseconds base_delay = std::chrono::milliseconds(5),
                     std::chrono::milliseconds max_delay = std::chrono::seconds(300));
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is already waiting. A key added while being processed is queued again
  // when its worker calls Done.
  void Add(const std::string& key);
  // Queues `key` after `delay` (periodic resync, requeue-after).
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // Queues `key` after its back-off, which doubles each time until Forget.
  void AddRateLimited(const std::string& key);
  // Resets the back-off of `key` (call after a successful reconcile).
  void Forget(const std::string& key);

  // Blocks until a key is ready; nullopt once ShutDown was called. The caller must call Done.
  std::optional<std::string> Get();
  void Done(const std::string& key);

  // Wakes every Get with nullopt; later Adds are ignored.
  void ShutDown();
  size_t Length() const;

 private:
  void PromoteDue(Clock::time_point now);  // moves delayed keys whose time has come

  const std::chrono::milliseconds base_delay_;
  const std::chrono::milliseconds max_delay_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;                        // guarded by mu_; FIFO of ready keys
  std::set<std::string> dirty_;                          // guarded by mu_; queued or to requeue
  std::set<std::string> processing_;                     // guarded by mu_
  std::multimap<Clock::time_point, std::string> delayed_;  // guarded by mu_
  std::map<std::string, Clock::time_point> delayed_at_;   // guarded by mu_; one entry per key
  std::map<std::string, int> failures_;                  // guarded by mu_
  bool shutting_down_ = false;                           // guarded by mu_
};

// Runs `workers` threads taking keys from `queue` and calling `reconcile` on them: OK -> Forget,
// error -> AddRateLimited (logged with `name`). The destructor shuts the queue down and joins.
class WorkerPool {
 public:
  WorkerPool(std::string name, WorkQueue& queue, int workers,
             std::function<Status(const std::string& key)> reconcile);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

 private:
  WorkQueue& queue_;
  std::vector<std::thread> threads_;
};

}  // namespace orch
