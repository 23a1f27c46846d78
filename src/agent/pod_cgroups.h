// Pod-level cgroups, as the kubelet's cgroups-per-qos: every pod gets a cgroup under its QoS
// class (kubepods/pod<uid> for Guaranteed, kubepods/burstable/pod<uid>,
// kubepods/besteffort/pod<uid>) holding the pod's summed limits; it is the sandbox's
// cgroup_parent, so the runtime puts every container of the pod inside it.
#pragma once

#include <cstdint>
#include <string>

#include "json_util.h"
#include "orch/status.h"

namespace orch::agent {

// The pod's cgroup settings by upstream's rules: CPU shares from the summed requests (2 at
// least; BestEffort 2), a CFS quota and a memory limit only when every container sets that
// limit (init containers count with their largest value).
struct PodCgroupLimits {
  int64_t cpu_shares = 2;
  int64_t cpu_quota = -1;  // microseconds per period; -1 = none
  int64_t cpu_period = 100000;
  int64_t memory_limit = -1;  // bytes; -1 = none
};
PodCgroupLimits PodLimits(const json& pod);

enum class CgroupDriver { kCgroupfs, kSystemd };

// The sandbox's cgroup_parent: "/kubepods/burstable/pod<uid>" (cgroupfs) or
// "kubepods-burstable-pod<uid_with_underscores>.slice" (systemd).
std::string PodCgroupParent(const json& pod, CgroupDriver driver);

// Creates and removes pod cgroups on the cgroup filesystem mounted at `root` (v1: one hierarchy
// per controller; v2: the unified one). Thread-safe (stateless but for its settings).
class PodCgroups {
 public:
  explicit PodCgroups(std::string root = "/sys/fs/cgroup") : root_(std::move(root)) {}

  // Makes the pod's cgroup (and kubepods and the QoS level) and writes its limits (cgroupfs
  // driver only: with systemd the runtime makes the slices). Failures name the file.
  Status Ensure(const json& pod);
  // Removes the pod's cgroup from every hierarchy, once its containers are gone; a cgroup that
  // still has processes is left (the next cleanup retries). OK when absent.
  Status Remove(const std::string& cgroup_parent);
  // Remove for each QoS level the pod with this uid may have used.
  Status RemovePod(const std::string& uid);

  bool unified() const;

 private:
  std::string root_;
};

}  // namespace orch::agent
