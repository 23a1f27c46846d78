// The scheduling queue: three pools (ready, backing off, unschedulable) over one map of entries,
// so that every pod is in exactly one pool or in flight, and moves between them are O(log n).
#include "scheduling_queue.h"

#include <algorithm>
#include <vector>

namespace orch::sched {
namespace {

// How often overdue unschedulable pods are looked for: upstream checks every 30 s too.
constexpr std::chrono::seconds kFlushPeriod{30};

}  // namespace

SchedulingQueue::SchedulingQueue(Options options) : options_(std::move(options)) {
  next_flush_ = options_.now() + kFlushPeriod;
}

std::chrono::milliseconds SchedulingQueue::BackoffFor(int attempts) const {
  std::chrono::milliseconds d = options_.initial_backoff;
  for (int i = 1; i < attempts && d < options_.max_backoff; ++i) d *= 2;
  return std::min(d, options_.max_backoff);
}

void SchedulingQueue::Unlink(const std::string& key, Entry& entry) {
  switch (entry.state) {
    case State::kActive:
      active_.erase({-int64_t{entry.queued_priority}, entry.seq, key});
      break;
    case State::kBackoff:
      BackoffSet(entry).erase({entry.backoff_until, key});
      break;
    case State::kUnschedulable:
      unschedulable_.erase(key);
      break;
    case State::kInFlight:
      break;
  }
}

void SchedulingQueue::PushActive(const std::string& key, Entry& entry) {
  entry.state = State::kActive;
  entry.seq = ++seq_;
  entry.queued_priority = entry.pod->priority;
  active_.insert({-int64_t{entry.queued_priority}, entry.seq, key});
  cv_.notify_one();
}

void SchedulingQueue::PushBackoffOrActive(const std::string& key, Entry& entry,
                                          Clock::time_point now) {
  if (entry.attempts > 0 && entry.backoff_until > now) {
    entry.state = State::kBackoff;
    BackoffSet(entry).insert({entry.backoff_until, key});
    cv_.notify_one();  // the waiter may need an earlier wake-up
  } else {
    PushActive(key, entry);
  }
}

void SchedulingQueue::AddOrUpdate(PodPtr pod) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  const std::string key = pod->key;
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.pod->uid != pod->uid) {
    if (it != entries_.end()) {
      Unlink(key, it->second);
      entries_.erase(it);
    }
    Entry& entry = entries_[key];
    entry.pod = std::move(pod);
    PushActive(key, entry);
    return;
  }
  Entry& entry = it->second;
  bool changed = entry.pod->spec_hash != pod->spec_hash;
  if (entry.state == State::kActive) {
    // Keep the place in line (a pod's priority cannot change).
    entry.pod = std::move(pod);
    return;
  }
  entry.pod = std::move(pod);
  if (entry.state == State::kInFlight) {
    entry.updated_in_flight = entry.updated_in_flight || changed;
  } else if (entry.state == State::kUnschedulable && changed) {
    unschedulable_.erase(key);
    PushBackoffOrActive(key, entry, options_.now());
  }
}

void SchedulingQueue::Delete(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Unlink(key, it->second);
  entries_.erase(it);
}

void SchedulingQueue::Promote(Clock::time_point now) {
  for (auto* set : {&backoff_, &error_backoff_}) {
    while (!set->empty() && set->begin()->first <= now) {
      std::string key = set->begin()->second;
      set->erase(set->begin());
      auto it = entries_.find(key);
      if (it != entries_.end()) PushActive(key, it->second);
    }
  }
  if (now < next_flush_) return;
  next_flush_ = now + kFlushPeriod;
  std::vector<std::string> overdue;
  for (const std::string& key : unschedulable_) {
    const Entry& entry = entries_.at(key);
    if (now - entry.unschedulable_since >= options_.max_unschedulable) overdue.push_back(key);
  }
  for (const std::string& key : overdue) {
    unschedulable_.erase(key);
    PushBackoffOrActive(key, entries_.at(key), now);
  }
}

std::optional<SchedulingQueue::Item> SchedulingQueue::TakeLocked(Clock::time_point now) {
  Promote(now);
  std::string key;
  if (!active_.empty()) {
    key = std::get<2>(*active_.begin());
    active_.erase(active_.begin());
  } else if (options_.pop_from_backoff && !backoff_.empty()) {
    key = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
  } else {
    return std::nullopt;
  }
  Entry& entry = entries_.at(key);
  entry.state = State::kInFlight;
  entry.attempts++;
  entry.moves_at_pop = moves_;
  entry.updated_in_flight = false;
  return Item{entry.pod, entry.attempts};
}

std::optional<SchedulingQueue::Item> SchedulingQueue::Pop() {
  std::unique_lock lock(mu_);
  while (!closed_) {
    Clock::time_point now = options_.now();
    if (auto item = TakeLocked(now)) return item;
    Clock::time_point wake = next_flush_;
    if (!backoff_.empty()) wake = std::min(wake, backoff_.begin()->first);
    if (!error_backoff_.empty()) wake = std::min(wake, error_backoff_.begin()->first);
    cv_.wait_until(lock, wake);
  }
  return std::nullopt;
}

std::optional<SchedulingQueue::Item> SchedulingQueue::TryPop() {
  std::lock_guard lock(mu_);
  if (closed_) return std::nullopt;
  return TakeLocked(options_.now());
}

void SchedulingQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kInFlight) return;
  entries_.erase(it);
}

void SchedulingQueue::Unschedulable(const std::string& key, uint32_t plugins) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kInFlight) return;
  Entry& entry = it->second;
  Clock::time_point now = options_.now();
  entry.backoff_until = now + BackoffFor(entry.attempts);
  entry.error_backoff = false;
  if (entry.updated_in_flight || entry.moves_at_pop != moves_) {
    // The cluster or the pod changed while we looked: the answer may be stale, try again soon.
    PushBackoffOrActive(key, entry, now);
    return;
  }
  entry.state = State::kUnschedulable;
  entry.plugins = plugins;
  entry.unschedulable_since = now;
  unschedulable_.insert(key);
}

void SchedulingQueue::Backoff(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kInFlight) return;
  Clock::time_point now = options_.now();
  it->second.backoff_until = now + BackoffFor(it->second.attempts);
  it->second.error_backoff = true;
  PushBackoffOrActive(key, it->second, now);
}

void SchedulingQueue::Requeue(PodPtr pod) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  const std::string key = pod->key;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.state == State::kInFlight) return;  // already being looked at again
    Unlink(key, it->second);
    entries_.erase(it);
  }
  Entry& entry = entries_[key];
  entry.pod = std::move(pod);
  entry.attempts = 1;
  Clock::time_point now = options_.now();
  entry.backoff_until = now + BackoffFor(1);
  entry.error_backoff = true;
  PushBackoffOrActive(key, entry, now);
}

void SchedulingQueue::MoveOnEvent(uint32_t plugins) {
  std::lock_guard lock(mu_);
  ++moves_;
  if (unschedulable_.empty()) return;
  Clock::time_point now = options_.now();
  std::vector<std::string> moved;
  for (const std::string& key : unschedulable_) {
    if (entries_.at(key).plugins & plugins) moved.push_back(key);
  }
  for (const std::string& key : moved) {
    unschedulable_.erase(key);
    PushBackoffOrActive(key, entries_.at(key), now);
  }
}

void SchedulingQueue::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

SchedulingQueue::Counts SchedulingQueue::counts() const {
  std::lock_guard lock(mu_);
  Counts c;
  c.active = active_.size();
  c.backoff = backoff_.size() + error_backoff_.size();
  c.unschedulable = unschedulable_.size();
  c.in_flight = entries_.size() - c.active - c.backoff - c.unschedulable;
  return c;
}

}  // namespace orch::sched
