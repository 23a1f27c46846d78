// Per-key exponential back-off for restarting crashed containers and retrying image pulls, with
// the kubelet's numbers: 10 s doubling to 5 min, forgotten after 10 min without a failure.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace orch::agent {

// Thread-safe. Times are wall-clock (they are compared with CRI's finishedAt), passed in so
// tests control them.
class Backoff {
 public:
  using Clock = std::chrono::system_clock;
  using Duration = std::chrono::milliseconds;

  explicit Backoff(Duration initial = std::chrono::seconds(10),
                   Duration max = std::chrono::minutes(5))
      : initial_(initial), max_(max) {}

  // Whether `key` must still wait at `now`: its current delay, counted from `since` (when the
  // container finished), has not passed. False for an unknown or expired key.
  bool InBackoff(const std::string& key, Clock::time_point since, Clock::time_point now) const;
  // When the wait that InBackoff checks ends (since + delay); `since` for an unknown key.
  Clock::time_point ReadyAt(const std::string& key, Clock::time_point since,
                            Clock::time_point now) const;
  // How long until the current delay, counted from the last Next, has passed (0 when it has,
  // or for an unknown or expired key): for retries of an operation that just failed.
  Duration Remaining(const std::string& key, Clock::time_point now) const;
  // Records an attempt: the first (or first after expiry) sets the initial delay, each later
  // one doubles it up to the maximum.
  void Next(const std::string& key, Clock::time_point now);
  // The current delay of `key` (0 when unknown or expired).
  Duration Delay(const std::string& key, Clock::time_point now) const;
  void Reset(const std::string& key);
  // Forgets every key whose prefix is `prefix` (a pod's keys when the pod goes).
  void ResetPrefix(const std::string& prefix);

 private:
  struct Entry {
    Duration delay{0};
    Clock::time_point last_update;
  };
  // An entry untouched for twice the maximum delay counts as gone: a container that ran fine
  // that long starts over at the initial delay.
  bool Expired(const Entry& e, Clock::time_point now) const {
    return now - e.last_update > 2 * max_;
  }

  const Duration initial_;
  const Duration max_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace orch::agent
