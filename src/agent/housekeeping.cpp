// The housekeeping thread (housekeeping.h): sleeps on a condition variable between passes so
// Stop never waits for a period to end.
#include "housekeeping.h"

#include "orch/log.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";

}  // namespace

Housekeeping::Housekeeping(cri::Runtime& runtime, const KubeletSettings& settings,
                           std::function<void(const std::string&)> on_gc_shortfall)
    : settings_(settings),
      logs_(runtime,
            LogRotationOptions{settings.container_log_max_size, settings.container_log_max_files}),
      images_(runtime,
              ImageGcOptions{settings.image_gc_high_threshold, settings.image_gc_low_threshold,
                             settings.image_minimum_gc_age, cri::kPauseImage}),
      on_gc_shortfall_(std::move(on_gc_shortfall)) {}

void Housekeeping::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Housekeeping::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Housekeeping::Run() {
  using Clock = std::chrono::steady_clock;
  auto next_logs = Clock::now() + settings_.container_log_check_period;
  // Images are first looked at soon after start, so their ages count from then.
  auto next_gc =
      Clock::now() + std::min<Clock::duration>(settings_.image_gc_period, std::chrono::seconds(30));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_until(lock, std::min(next_logs, next_gc), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    auto now = Clock::now();
    if (now >= next_logs) {
      logs_.RotateOnce();
      next_logs = Clock::now() + settings_.container_log_check_period;
    }
    if (now >= next_gc) {
      auto result = images_.CollectOnce();
      if (!result.ok()) {
        log::Warn(kLog, "image garbage collection: {}", result.status().message());
      } else if (!result->shortfall.empty()) {
        log::Warn(kLog, "image garbage collection: {}", result->shortfall);
        if (on_gc_shortfall_) on_gc_shortfall_(result->shortfall);
      }
      next_gc = Clock::now() + settings_.image_gc_period;
    }
    lock.lock();
  }
}

}  // namespace orch::agent
