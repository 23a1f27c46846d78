// A container's CRI configuration from its pod spec: QoS class and cgroup resources (CPU
// shares and quota, memory limit, OOM score), security context, labels and annotations the
// agent finds it by again, and the spec hash that detects changes. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "container_env.h"
#include "json_util.h"
#include "orch/runtime.h"

namespace orch::agent {

// "Guaranteed", "Burstable" or "BestEffort", by upstream's rules over cpu and memory of every
// container (requests default to limits).
std::string QosClass(const json& pod);

// CPU shares from the request (2 without one), CFS quota from the limit (period 100 ms), the
// memory limit, and the OOM score adjustment of the pod's QoS class.
cri::LinuxResources ContainerResources(const json& pod, const json& container,
                                       int64_t node_memory_bytes);

// A stable hash of what can change in a pod's container spec (its image; hex): a different hash
// means the container must be replaced.
std::string ContainerSpecHash(const json& container);

// What BuildContainerConfig needs besides the pod and container specs.
struct ContainerInputs {
  std::string node_name;
  int64_t node_memory_bytes = 0;
  uint32_t restart_count = 0;
  std::string image_ref;  // the image ID the pull resolved
  EnvList env;
  std::vector<cri::Mount> mounts;  // volumes, /etc/hosts, the termination message file
  std::string termination_message_file;
};

// The effective user and group (container securityContext over the pod's), when set.
std::optional<int64_t> EffectiveRunAsUser(const json& pod, const json& container);
bool EffectiveRunAsNonRoot(const json& pod, const json& container);

cri::ContainerConfig BuildContainerConfig(const json& pod, const json& container,
                                          const ContainerInputs& in);

}  // namespace orch::agent
