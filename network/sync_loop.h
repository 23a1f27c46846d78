// The loop both node programmers (service proxy, node network) run: one thread that applies the
// node's whole desired state after changes, coalescing bursts and backing off after failures.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "orch/log.h"
#include "orch/status.h"

namespace orch {

class SyncLoop {
 public:
  struct Options {
    std::string log_name;                         // for the retry warning
    std::chrono::milliseconds min_period{500};    // at most one sync per period
    std::chrono::milliseconds retry_floor{500};   // first back-off after a failure
    std::chrono::milliseconds retry_max{30'000};  // back-off doubles up to this
    // Blocks up to the given time; true once the inputs are complete (informers synced). The
    // loop syncs only after it returned true.
    std::function<bool(std::chrono::milliseconds)> ready;
  };

  // `sync` applies the desired state; `on_failure` runs after each failed one (optional).
  SyncLoop(Options options, std::function<Status()> sync, std::function<void()> on_failure = {})
      : options_(std::move(options)), sync_(std::move(sync)), on_failure_(std::move(on_failure)) {}
  ~SyncLoop() { Stop(); }

  // Starts the thread; the first sync runs as soon as the inputs are ready.
  void Start() {
    pending_ = true;
    thread_ = std::thread([this] { Run(); });
  }
  // Asks for a sync soon. Thread-safe.
  void Request() {
    {
      std::lock_guard lock(mu_);
      pending_ = true;
    }
    cv_.notify_all();
  }
  // Ends the thread (a running sync finishes first).
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Clock = std::chrono::steady_clock;

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void Run() {
    if (options_.ready) {
      while (!options_.ready(std::chrono::milliseconds(500))) {
        if (Stopping()) return;
      }
    }
    Clock::time_point earliest = Clock::now();  // the next sync may not start before this
    std::chrono::milliseconds retry_delay(0);
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || pending_; });
        if (cv_.wait_until(lock, earliest, [this] { return stopping_; })) return;
        pending_ = false;
      }
      Status s = sync_();
      if (s.ok()) {
        retry_delay = std::chrono::milliseconds(0);
        earliest = Clock::now() + options_.min_period;
        continue;
      }
      retry_delay = std::min(options_.retry_max, std::max(retry_delay * 2, options_.retry_floor));
      log::Warn(options_.log_name, "sync failed, retrying in {} ms: {}", retry_delay.count(),
                s.message());
      if (on_failure_) on_failure_();
      earliest = Clock::now() + std::max(retry_delay, options_.min_period);
      Request();
    }
  }

  const Options options_;
  const std::function<Status()> sync_;
  const std::function<void()> on_failure_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace orch
