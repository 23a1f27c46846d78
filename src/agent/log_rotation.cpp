// Container log rotation (log_rotation.h): size check, rename, CRI ReopenContainerLog, and the
// removal of rotated files past the limit.
#include "log_rotation.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "orch/log.h"

namespace orch::agent {
namespace {

constexpr std::string_view kLog = "agent";

// "20240501-101500": digits and one dash, as the kubelet names rotated logs.
bool IsRotationSuffix(std::string_view s) {
  if (s.size() != 15 || s[8] != '-') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i != 8 && (s[i] < '0' || s[i] > '9')) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> RotatedLogFiles(const std::string& log_path) {
  std::vector<std::string> out;
  auto slash = log_path.rfind('/');
  if (slash == std::string::npos) return out;
  std::string dir = log_path.substr(0, slash);
  std::string prefix = log_path.substr(slash + 1) + ".";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix &&
        IsRotationSuffix(name.substr(prefix.size()))) {
      out.push_back(dir + "/" + std::string(name));
    }
  }
  closedir(d);
  // The suffix is a fixed-width time: name order is time order.
  std::sort(out.begin(), out.end());
  return out;
}

int ContainerLogRotator::RotateOnce() {
  cri::ContainerFilter filter;
  filter.state = cri::ContainerState::kRunning;
  auto containers = runtime_.ListContainers(filter);
  if (!containers.ok()) {
    log::Warn(kLog, "log rotation: {}", containers.status().message());
    return 0;
  }
  int rotated = 0;
  for (const cri::Container& c : *containers) {
    auto status = runtime_.GetContainerStatus(c.id);
    if (!status.ok() || status->log_path.empty()) continue;
    struct stat st {};
    if (stat(status->log_path.c_str(), &st) != 0) continue;
    if (st.st_size < options_.max_size) continue;
    if (Rotate(c.id, status->log_path)) ++rotated;
  }
  return rotated;
}

bool ContainerLogRotator::Rotate(const std::string& container_id, const std::string& path) {
  // Room for the file rotated now: max_files counts the live file too.
  std::vector<std::string> old = RotatedLogFiles(path);
  size_t keep = static_cast<size_t>(std::max(options_.max_files, 2) - 2);
  for (size_t i = 0; i + keep < old.size(); ++i) {
    if (unlink(old[i].c_str()) != 0 && errno != ENOENT) {
      log::Warn(kLog, "log rotation: remove {}: {}", old[i], strerror(errno));
    }
  }
  std::time_t t = Clock::to_time_t(now_());
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string target = fmt::format("{}.{:04}{:02}{:02}-{:02}{:02}{:02}", path, tm.tm_year + 1900,
                                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  // Two rotations in one second would overwrite the first: wait for the next pass.
  if (access(target.c_str(), F_OK) == 0) return false;
  if (rename(path.c_str(), target.c_str()) != 0) {
    log::Warn(kLog, "log rotation: rename {}: {}", path, strerror(errno));
    return false;
  }
  if (Status s = runtime_.ReopenContainerLog(container_id); !s.ok()) {
    // The container keeps writing to the renamed file: give it its name back.
    log::Warn(kLog, "log rotation: reopen the log of {}: {}", container_id, s.message());
    if (rename(target.c_str(), path.c_str()) != 0) {
      log::Warn(kLog, "log rotation: rename {} back: {}", target, strerror(errno));
    }
    return false;
  }
  log::Debug(kLog, "rotated {} to {}", path, target);
  return true;
}

}  // namespace orch::agent
