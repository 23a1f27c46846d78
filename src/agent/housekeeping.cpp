// The housekeeping thread (housekeeping.h): sleeps on a condition variable between passes so
// Stop never waits for a period to end.
#include "housekeeping.h"

#include "orch/log.h"
#include "process_memory.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";
// Start-up is over (informers synced, first heartbeats and relists done) this long after Start.
constexpr auto kReleaseStartupPagesAfter = std::chrono::seconds(5);
// Later releases (PageReleasePolicy): at most this often, and only after the resident code and
// read-only data grew this much (a burst of 50 pod starts: 3 MiB; at rest: 0.4 MiB in 95 s).
constexpr auto kReleasePagesInterval = std::chrono::seconds(30);
constexpr size_t kReleasePagesMinGrowth = 1024 * 1024;
// Free heap is looked at this often and given back from this much on: a burst of pod work
// leaves megabytes free in the arenas, which malloc returns to the kernel only from their tops.
constexpr auto kTrimPeriod = std::chrono::seconds(10);
constexpr size_t kTrimMinFreeBytes = 512 * 1024;

}  // namespace

Housekeeping::Housekeeping(cri::Runtime& runtime, const KubeletSettings& settings,
                           std::function<void(const std::string&)> on_gc_shortfall,
                           bool manage_process_memory)
    : settings_(settings),
      logs_(runtime,
            LogRotationOptions{settings.container_log_max_size, settings.container_log_max_files}),
      images_(runtime,
              ImageGcOptions{settings.image_gc_high_threshold, settings.image_gc_low_threshold,
                             settings.image_minimum_gc_age, cri::kPauseImage}),
      on_gc_shortfall_(std::move(on_gc_shortfall)),
      manage_process_memory_(manage_process_memory) {}

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
  auto next_trim = Clock::now() + kReleaseStartupPagesAfter;
  PageReleasePolicy release(Clock::now(), kReleaseStartupPagesAfter, kReleasePagesInterval,
                            kReleasePagesMinGrowth);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto wake = std::min(next_logs, next_gc);
    if (manage_process_memory_) wake = std::min(wake, next_trim);
    wake_.wait_until(lock, wake, [this] { return stopping_; });
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
    if (manage_process_memory_ && now >= next_trim) {
      if (size_t before = ResidentFilePages(); release.Due(now, before)) {
        ReleaseReadOnlyImagePages();
        size_t after = ResidentFilePages();
        release.Released(Clock::now(), after);
        log::Debug(kLog, "dropped code and read-only data from the mappings: {} -> {} KiB resident",
                   before / 1024, after / 1024);
      }
      TrimFreeHeap(kTrimMinFreeBytes);
      next_trim = Clock::now() + kTrimPeriod;
    }
    lock.lock();
  }
}

}  // namespace orch::agent
