// Pod cgroups (pod_cgroups.h): the limits upstream puts on a pod's cgroup, and the cgroupfs
// directories for cgroup v1 (cpu, cpuacct, memory, pids, ... each its own tree) and v2.
#include "pod_cgroups.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "container_config.h"
#include "orch/quantity.h"

namespace orch::agent {
namespace {

constexpr int64_t kMinShares = 2;
constexpr int64_t kMaxShares = 262144;
constexpr int64_t kMinQuota = 1000;

// A quantity in its base unit (milli for cpu); nullopt when unset.
std::optional<int64_t> Amount(const json& container, const char* kind, const char* resource) {
  const json& v = At(container, {"resources", kind, resource});
  if (v.is_null()) return std::nullopt;
  auto q = Quantity::FromJson(v);
  if (!q.ok()) return std::nullopt;
  return std::string_view(resource) == "cpu" ? q->MilliValue() : q->Value();
}

int64_t Request(const json& container, const char* resource) {
  if (auto r = Amount(container, "requests", resource)) return *r;
  return Amount(container, "limits", resource).value_or(0);
}

// Upstream's sum: app containers added up, then at least the largest init container (they run
// one at a time, before the others). `limit` nullopt when some container has none.
struct Sum {
  int64_t request = 0;
  std::optional<int64_t> limit = 0;
};
Sum SumOf(const json& pod, const char* resource) {
  Sum app;
  for (const json& c : Array(pod, {"spec", "containers"})) {
    app.request += Request(c, resource);
    auto l = Amount(c, "limits", resource);
    if (!l || *l == 0) {
      app.limit.reset();
    } else if (app.limit) {
      *app.limit += *l;
    }
  }
  for (const json& c : Array(pod, {"spec", "initContainers"})) {
    app.request = std::max(app.request, Request(c, resource));
    auto l = Amount(c, "limits", resource);
    if (!l || *l == 0) {
      app.limit.reset();
    } else if (app.limit) {
      app.limit = std::max(*app.limit, *l);
    }
  }
  return app;
}

std::string LowerQos(const json& pod) {
  std::string qos = QosClass(pod);
  if (qos == "Burstable") return "burstable";
  if (qos == "BestEffort") return "besteffort";
  return "";
}

// cgroup files cannot be replaced by rename: write in place.
Status WriteCgroupFile(const std::string& file, const std::string& value) {
  FILE* f = fopen(file.c_str(), "we");
  if (f == nullptr) return Internal(fmt::format("open {}: {}", file, strerror(errno)));
  bool ok = fputs(value.c_str(), f) >= 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok) return Internal(fmt::format("write {} to {}: {}", value, file, strerror(errno)));
  return Status::Ok();
}

Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Internal(fmt::format("mkdir {}: {}", dir, strerror(errno)));
  }
  return Status::Ok();
}

// The v1 hierarchies mounted under root (those with a cgroup.procs file at their top).
std::vector<std::string> Hierarchies(const std::string& root) {
  std::vector<std::string> out;
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string dir = root + "/" + name;
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // skip cpu,cpuacct links
    if (access((dir + "/cgroup.procs").c_str(), F_OK) == 0) out.push_back(dir);
  }
  closedir(d);
  return out;
}

}  // namespace

PodCgroupLimits PodLimits(const json& pod) {
  PodCgroupLimits out;
  std::string qos = QosClass(pod);
  if (qos == "BestEffort") return out;
  Sum cpu = SumOf(pod, "cpu");
  Sum memory = SumOf(pod, "memory");
  out.cpu_shares = std::clamp<int64_t>(cpu.request * 1024 / 1000, kMinShares, kMaxShares);
  if (cpu.limit) out.cpu_quota = std::max(*cpu.limit * out.cpu_period / 1000, kMinQuota);
  if (memory.limit) out.memory_limit = *memory.limit;
  return out;
}

std::string PodCgroupParent(const json& pod, CgroupDriver driver) {
  std::string uid = Str(pod, {"metadata", "uid"});
  std::string qos = LowerQos(pod);
  if (driver == CgroupDriver::kSystemd) {
    std::replace(uid.begin(), uid.end(), '-', '_');
    return qos.empty() ? fmt::format("kubepods-pod{}.slice", uid)
                       : fmt::format("kubepods-{}-pod{}.slice", qos, uid);
  }
  return qos.empty() ? fmt::format("/kubepods/pod{}", uid)
                     : fmt::format("/kubepods/{}/pod{}", qos, uid);
}

bool PodCgroups::unified() const {
  return access((root_ + "/cgroup.controllers").c_str(), F_OK) == 0;
}

Status PodCgroups::Ensure(const json& pod) {
  const std::string parent = PodCgroupParent(pod, CgroupDriver::kCgroupfs);
  const std::string qos = LowerQos(pod);
  const PodCgroupLimits limits = PodLimits(pod);
  std::vector<std::string> levels = {"/kubepods"};
  if (!qos.empty()) levels.push_back("/kubepods/" + qos);
  levels.push_back(parent);

  if (unified()) {
    for (const auto& level : levels) {
      if (Status s = MakeDir(root_ + level); !s.ok()) return s;
    }
    // Children can only use the controllers their parents delegate.
    std::string at = root_;
    for (const auto& level : levels) {
      if (level == parent) break;
      (void)WriteCgroupFile(at + "/cgroup.subtree_control", "+cpu +memory +pids");
      at = root_ + level;
    }
    (void)WriteCgroupFile(at + "/cgroup.subtree_control", "+cpu +memory +pids");
    std::string dir = root_ + parent;
    // cpu.weight from shares, the formula runc and the kubelet use.
    int64_t weight = 1 + ((limits.cpu_shares - 2) * 9999) / 262142;
    if (Status s = WriteCgroupFile(dir + "/cpu.weight", std::to_string(weight)); !s.ok()) return s;
    std::string max = limits.cpu_quota > 0 ? std::to_string(limits.cpu_quota) : "max";
    if (Status s = WriteCgroupFile(dir + "/cpu.max", fmt::format("{} {}", max, limits.cpu_period));
        !s.ok()) {
      return s;
    }
    return WriteCgroupFile(dir + "/memory.max",
                           limits.memory_limit > 0 ? std::to_string(limits.memory_limit) : "max");
  }

  // v1: the controllers the pod's limits use; runc creates the levels in the other hierarchies
  // itself (and fills cpuset's cpus and mems from the parent).
  for (const char* controller : {"cpu", "cpuacct", "memory", "pids"}) {
    std::string base = root_ + "/" + controller;
    if (access((base + "/cgroup.procs").c_str(), F_OK) != 0) continue;
    for (const auto& level : levels) {
      if (Status s = MakeDir(base + level); !s.ok()) return s;
    }
  }
  std::string cpu = root_ + "/cpu" + parent;
  if (access(cpu.c_str(), F_OK) == 0) {
    if (!qos.empty() && qos == "besteffort") {
      (void)WriteCgroupFile(root_ + "/cpu/kubepods/besteffort/cpu.shares", "2");
    }
    if (Status s = WriteCgroupFile(cpu + "/cpu.shares", std::to_string(limits.cpu_shares));
        !s.ok()) {
      return s;
    }
    if (Status s = WriteCgroupFile(cpu + "/cpu.cfs_period_us", std::to_string(limits.cpu_period));
        !s.ok()) {
      return s;
    }
    if (Status s = WriteCgroupFile(cpu + "/cpu.cfs_quota_us", std::to_string(limits.cpu_quota));
        !s.ok()) {
      return s;
    }
  }
  std::string memory = root_ + "/memory" + parent;
  if (access(memory.c_str(), F_OK) == 0) {
    // -1 is v1's "no limit".
    if (Status s =
            WriteCgroupFile(memory + "/memory.limit_in_bytes", std::to_string(limits.memory_limit));
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

Status PodCgroups::RemovePod(const std::string& uid) {
  Status result = Status::Ok();
  for (const char* level : {"/kubepods/", "/kubepods/burstable/", "/kubepods/besteffort/"}) {
    if (Status s = Remove(level + ("pod" + uid)); !s.ok()) result = s;
  }
  return result;
}

Status PodCgroups::Remove(const std::string& cgroup_parent) {
  if (cgroup_parent.empty() || cgroup_parent.front() != '/') return Status::Ok();
  std::vector<std::string> dirs;
  if (unified()) {
    dirs.push_back(root_ + cgroup_parent);
  } else {
    for (const auto& h : Hierarchies(root_)) dirs.push_back(h + cgroup_parent);
  }
  Status result = Status::Ok();
  for (const auto& dir : dirs) {
    // runc leaves no container cgroups once the sandbox is removed; empty leftovers go first.
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || e->d_type != DT_DIR) continue;
        (void)rmdir((dir + "/" + name).c_str());
      }
      closedir(d);
    }
    if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      result = Unavailable(fmt::format("rmdir {}: {}", dir, strerror(errno)));
    }
  }
  return result;
}

}  // namespace orch::agent
