// The controllers' work queue and its worker threads (work_queue.h): deduplicated keys, one
// worker per key at a time, delayed adds and per-key exponential back-off.
#include "orch/work_queue.h"

#include <algorithm>

#include "orch/log.h"

namespace orch {

WorkQueue::WorkQueue(std::chrono::milliseconds base_delay, std::chrono::milliseconds max_delay)
    : base_delay_(base_delay), max_delay_(max_delay) {}

WorkQueue::~WorkQueue() {
  ShutDown();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  if (shutting_down_ || !dirty_.insert(key).second) return;
  // A key being processed goes back in the queue when its worker calls Done.
  if (processing_.count(key)) return;
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  auto at = Clock::now() + delay;
  auto it = delayed_at_.find(key);
  if (it != delayed_at_.end()) {
    if (it->second <= at) return;  // already due sooner
    auto [first, last] = delayed_.equal_range(it->second);
    for (auto d = first; d != last; ++d) {
      if (d->second == key) {
        delayed_.erase(d);
        break;
      }
    }
    it->second = at;
  } else {
    delayed_at_.emplace(key, at);
  }
  delayed_.emplace(at, key);
  // A waiting Get may have to wake up earlier than it planned.
  cv_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    int failures = failures_[key]++;
    delay = max_delay_;
    // base * 2^failures, without overflowing the shift.
    if (failures < 32) {
      auto scaled = base_delay_ * (int64_t{1} << failures);
      if (scaled < max_delay_) delay = scaled;
    }
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

void WorkQueue::PromoteDue(Clock::time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = std::move(delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
    delayed_at_.erase(key);
    if (!dirty_.insert(key).second) continue;
    if (!processing_.count(key)) queue_.push_back(std::move(key));
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDue(Clock::now());
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      dirty_.erase(key);
      processing_.insert(key);
      return key;
    }
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, delayed_.begin()->first);
    }
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::Length() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

WorkerPool::WorkerPool(std::string name, WorkQueue& queue, int workers,
                       std::function<Status(const std::string& key)> reconcile)
    : queue_(queue) {
  for (int i = 0; i < std::max(workers, 1); ++i) {
    threads_.emplace_back([name, &queue, reconcile] {
      while (auto key = queue.Get()) {
        Status status;
        try {
          status = reconcile(*key);
        } catch (const std::exception& e) {
          // A reconcile that throws is a bug, but one key must not take the controller down.
          status = Internal(fmt::format("reconcile threw: {}", e.what()));
        }
        if (status.ok()) {
          queue.Forget(*key);
        } else {
          log::Warn(name, "{}: {} (will retry)", *key, status.ToString());
          queue.AddRateLimited(*key);
        }
        queue.Done(*key);
      }
    });
  }
}

WorkerPool::~WorkerPool() {
  queue_.ShutDown();
  for (auto& t : threads_) t.join();
}

}  // namespace orch
