// Image garbage collection (image_gc.h): usage of the image filesystem against the thresholds,
// and the least recently used unused images removed first.
#include "image_gc.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "orch/log.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";

// "docker.io/orch/pause:3.9" also matches the short "orch/pause:3.9" some runtimes report.
bool NamesImage(const cri::Image& image, const std::string& ref) {
  for (const auto& tag : image.repo_tags) {
    if (tag == ref) return true;
  }
  return image.id == ref;
}

}  // namespace

Result<DiskSpace> StatFilesystem(const std::string& path) {
  struct statvfs st {};
  if (statvfs(path.c_str(), &st) != 0) {
    return Internal(fmt::format("statvfs {}: {}", path, strerror(errno)));
  }
  return DiskSpace{static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                   static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
}

Status ImageGarbageCollector::Detect(Clock::time_point now) {
  auto images = runtime_.ListImages();
  if (!images.ok()) return images.status();
  auto containers = runtime_.ListContainers({});
  if (!containers.ok()) return containers.status();
  std::set<std::string> used;
  for (const cri::Container& c : *containers) {
    if (!c.image_ref.empty()) used.insert(c.image_ref);
    if (!c.image.empty()) used.insert(c.image);
  }
  std::map<std::string, Record> next;
  in_use_.clear();
  for (const cri::Image& image : *images) {
    Record record;
    if (auto it = records_.find(image.id); it != records_.end()) {
      record = it->second;
    } else {
      record.first_seen = now;
      record.last_used = now;
    }
    record.size = image.size;
    record.protected_ = image.pinned || NamesImage(image, options_.pause_image);
    bool in_use = used.contains(image.id);
    for (const auto& tag : image.repo_tags) in_use = in_use || used.contains(tag);
    for (const auto& digest : image.repo_digests) in_use = in_use || used.contains(digest);
    if (in_use) record.last_used = now;
    in_use_[image.id] = in_use;
    next[image.id] = record;
  }
  records_ = std::move(next);
  return Status::Ok();
}

Result<ImageGcResult> ImageGarbageCollector::CollectOnce() {
  const Clock::time_point now = now_();
  if (Status s = Detect(now); !s.ok()) return s;
  ImageGcResult result;
  if (options_.high_threshold >= 100) return result;
  auto filesystems = runtime_.ImageFsInfo();
  if (!filesystems.ok()) return filesystems.status();
  if (filesystems->empty()) return Internal("the runtime reports no image filesystem");
  auto disk = disk_(filesystems->front().mountpoint);
  if (!disk.ok()) return disk.status();
  if (disk->capacity == 0) return result;
  uint64_t used = disk->capacity - std::min(disk->available, disk->capacity);
  result.usage_percent = static_cast<int>(used * 100 / disk->capacity);
  if (result.usage_percent < options_.high_threshold) return result;

  uint64_t target_available =
      disk->capacity * static_cast<uint64_t>(100 - options_.low_threshold) / 100;
  result.wanted = target_available > disk->available ? target_available - disk->available : 0;
  if (result.wanted == 0) return result;

  struct Candidate {
    std::string id;
    Record record;
  };
  std::vector<Candidate> candidates;
  for (const auto& [id, record] : records_) {
    if (record.protected_ || in_use_[id]) continue;
    if (now - record.first_seen < options_.min_age) continue;
    candidates.push_back({id, record});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.record.last_used != b.record.last_used) return a.record.last_used < b.record.last_used;
    return a.record.first_seen < b.record.first_seen;
  });
  for (const Candidate& c : candidates) {
    if (result.freed >= result.wanted) break;
    if (Status s = runtime_.RemoveImage(c.id); !s.ok()) {
      log::Warn(kLog, "image garbage collection: remove {}: {}", c.id, s.message());
      continue;
    }
    log::Info(kLog, "image garbage collection: removed {} ({} bytes)", c.id, c.record.size);
    result.freed += c.record.size;
    result.removed.push_back(c.id);
    records_.erase(c.id);
  }
  if (result.freed < result.wanted) {
    result.shortfall = fmt::format(
        "Failed to garbage collect required amount of images. Attempted to free {} bytes, but "
        "only found {} bytes eligible to free.",
        result.wanted, result.freed);
  }
  return result;
}

}  // namespace orch::agent
