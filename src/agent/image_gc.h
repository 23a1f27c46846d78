// Image garbage collection as the kubelet does it: when the image filesystem is fuller than the
// high threshold, unused images are removed, least recently used first, down to the low one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "orch/runtime.h"
#include "orch/status.h"

namespace orch::agent {

struct ImageGcOptions {
  int high_threshold = 85;  // percent used; 100 turns collection off
  int low_threshold = 80;
  std::chrono::seconds min_age{120};  // an image seen for less than this is kept
  std::string pause_image = cri::kPauseImage;
};

struct DiskSpace {
  uint64_t capacity = 0;
  uint64_t available = 0;
};

// Size and free space of the filesystem holding `path` (statvfs).
Result<DiskSpace> StatFilesystem(const std::string& path);

struct ImageGcResult {
  int usage_percent = 0;
  uint64_t wanted = 0;  // bytes to free to reach the low threshold (0 below the high one)
  uint64_t freed = 0;
  std::vector<std::string> removed;  // image IDs
  // Set when less than `wanted` could be freed, in the kubelet's words (its FreeDiskSpaceFailed
  // event).
  std::string shortfall;
};

// Not thread-safe: one housekeeping thread calls it.
class ImageGarbageCollector {
 public:
  using Clock = std::chrono::steady_clock;
  using DiskFn = std::function<Result<DiskSpace>(const std::string& path)>;

  ImageGarbageCollector(cri::Runtime& runtime, ImageGcOptions options, DiskFn disk = StatFilesystem,
                        std::function<Clock::time_point()> now = Clock::now)
      : runtime_(runtime),
        options_(std::move(options)),
        disk_(std::move(disk)),
        now_(std::move(now)) {}

  // Notes which images the containers (any state) use, then, when the image filesystem is at or
  // above the high threshold, removes unused images (never the pause image, pinned images, or
  // images seen for less than min_age), least recently used first (then first seen first),
  // until the low threshold is reached. Errors are the runtime's or the filesystem's.
  Result<ImageGcResult> CollectOnce();

 private:
  struct Record {
    Clock::time_point first_seen;
    Clock::time_point last_used;  // first_seen until a container uses it
    uint64_t size = 0;
    bool protected_ = false;  // the pause image or pinned
  };
  // Refreshes records_ and in_use_ from the runtime.
  Status Detect(Clock::time_point now);

  cri::Runtime& runtime_;
  const ImageGcOptions options_;
  DiskFn disk_;
  std::function<Clock::time_point()> now_;
  std::map<std::string, Record> records_;  // by image ID
  std::map<std::string, bool> in_use_;     // image ID -> used by a container at the last Detect
};

}  // namespace orch::agent
