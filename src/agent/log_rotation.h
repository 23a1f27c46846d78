// Container log rotation, the kubelet's container log manager: a running container's CRI log
// file past containerLogMaxSize is renamed aside and the runtime reopens a fresh one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "orch/runtime.h"

namespace orch::agent {

struct LogRotationOptions {
  int64_t max_size = 10 * 1024 * 1024;
  // Files per container run, the live one included (at least 2).
  int max_files = 5;
};

// The rotated files of `log_path` ("<log_path>.<YYYYMMDD-hhmmss>"), oldest first.
std::vector<std::string> RotatedLogFiles(const std::string& log_path);

// Not thread-safe: one housekeeping thread calls it.
class ContainerLogRotator {
 public:
  using Clock = std::chrono::system_clock;
  ContainerLogRotator(cri::Runtime& runtime, LogRotationOptions options,
                      std::function<Clock::time_point()> now = Clock::now)
      : runtime_(runtime), options_(options), now_(std::move(now)) {}

  // One pass over the running containers: each log at or past max_size is renamed to
  // "<path>.<UTC time>" and the runtime told to reopen it (CRI ReopenContainerLog, so the
  // container's output goes to a new file at the same path, where `kubectl logs` reads);
  // rotated files beyond max_files - 1 are removed, oldest first. A failed reopen renames the
  // file back. Returns how many logs were rotated; errors are logged, never fatal.
  int RotateOnce();

 private:
  bool Rotate(const std::string& container_id, const std::string& path);

  cri::Runtime& runtime_;
  const LogRotationOptions options_;
  std::function<Clock::time_point()> now_;
};

}  // namespace orch::agent
