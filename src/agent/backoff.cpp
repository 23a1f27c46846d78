// Per-key exponential back-off (backoff.h).
#include "backoff.h"

#include <algorithm>

namespace orch::agent {

bool Backoff::InBackoff(const std::string& key, Clock::time_point since,
                        Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return false;
  return now - since < it->second.delay;
}

Backoff::Clock::time_point Backoff::ReadyAt(const std::string& key, Clock::time_point since,
                                            Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return since;
  return since + it->second.delay;
}

Backoff::Duration Backoff::Remaining(const std::string& key, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return Duration(0);
  auto left = it->second.last_update + it->second.delay - now;
  return left.count() > 0 ? std::chrono::ceil<Duration>(left) : Duration(0);
}

void Backoff::Next(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (inserted || Expired(e, now) || e.delay.count() == 0) {
    e.delay = initial_;
  } else {
    e.delay = std::min(Duration(e.delay * 2), max_);
  }
  e.last_update = now;
}

Backoff::Duration Backoff::Delay(const std::string& key, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return Duration(0);
  return it->second.delay;
}

void Backoff::Reset(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

void Backoff::ResetPrefix(const std::string& prefix) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = entries_.erase(it);
  }
}

}  // namespace orch::agent
