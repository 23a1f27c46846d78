// Counts the calls in flight at once, for tests that check work runs side by side: each call is
// held until `want` calls are in flight together (or 10 s passed), so a serial caller shows 1.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace orch::testing {

class ConcurrencyGauge {
 public:
  explicit ConcurrencyGauge(int want) : want_(want) {}

  // Runs `call` counted as in flight, after holding it as described above.
  template <typename Call>
  auto Run(Call&& call) {
    {
      std::unique_lock lock(mu_);
      ++in_flight_;
      most_ = std::max(most_, in_flight_);
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return most_ >= want_; });
    }
    auto result = call();
    std::lock_guard lock(mu_);
    --in_flight_;
    return result;
  }

  // The most calls that were in flight together.
  int Most() {
    std::lock_guard lock(mu_);
    return most_;
  }

 private:
  const int want_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  int most_ = 0;
};

}  // namespace orch::testing
