// The kubelet settings orch's agent honours, taken from --kubelet-arg KEY=VALUE as k3s passes
// them to its kubelet: container log rotation and image garbage collection.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "orch/status.h"

namespace orch::agent {

// Defaults are upstream's KubeletConfiguration defaults.
struct KubeletSettings {
  int64_t container_log_max_size = 10 * 1024 * 1024;  // containerLogMaxSize 10Mi
  int container_log_max_files = 5;                    // containerLogMaxFiles
  int image_gc_high_threshold = 85;                   // percent of the image filesystem
  int image_gc_low_threshold = 80;
  std::chrono::seconds image_minimum_gc_age{120};  // imageMinimumGCAge 2m
  // orch's own: how often image garbage collection runs (the kubelet's fixed 5 minutes).
  std::chrono::seconds image_gc_period{300};
  // orch's own: how often the log sizes are checked (the kubelet's fixed 10 seconds).
  std::chrono::seconds container_log_check_period{10};
  bool cgroups_per_qos = true;             // cgroups-per-qos: pod cgroups under kubepods
  std::string cgroup_driver = "cgroupfs";  // cgroup-driver: cgroupfs or systemd
};

// Parses "KEY=VALUE" items (a leading "--" on KEY is allowed, as k3s accepts both). Known keys:
// container-log-max-size (a quantity: 10Mi), container-log-max-files (>= 2),
// image-gc-high-threshold and image-gc-low-threshold (0..100, low <= high),
// image-minimum-gc-age (a Go duration), and orch's image-gc-period and
// container-log-check-period, cgroups-per-qos (true/false), cgroup-driver (cgroupfs, systemd: the
// one the runtime uses). InvalidArgument naming the item for a bad value; unknown keys
// are collected in `ignored` (kubelet flags orch has no use for) so the caller can log them.
Result<KubeletSettings> ParseKubeletArgs(const std::vector<std::string>& args,
                                         std::vector<std::string>* ignored = nullptr);

// A Go duration ("2m", "1m30s", "500ms", "1h"); nullopt-like failure as InvalidArgument.
Result<std::chrono::milliseconds> ParseGoDurationMs(const std::string& text);

}  // namespace orch::agent
