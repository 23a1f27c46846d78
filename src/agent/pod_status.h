// A pod's status as the kubelet reports it, computed from what the runtime knows of its
// containers and what the pod worker decided (waiting reasons): container and init container
// statuses, phase, conditions, IPs, start time and QoS class. Pure functions, unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "json_util.h"
#include "orch/runtime.h"
#include "orch/timestamps.h"

namespace orch::agent {

// One container instance the runtime has (or had) for a container of the pod.
struct ContainerInstance {
  cri::ContainerStatus status;
  uint32_t restart_count = 0;
  std::string termination_message;
};

// What the status shows of one container of the spec.
struct ContainerView {
  std::optional<ContainerInstance> current;   // the newest instance
  std::optional<ContainerInstance> previous;  // the one before it (lastState)
  // Set when the container waits: before its first start (ContainerCreating, ErrImagePull,
  // CreateContainerConfigError, ...) or between restarts (CrashLoopBackOff). Empty otherwise.
  std::string waiting_reason;
  std::string waiting_message;
  // From the probes, for a running current instance: `started` (no startup probe, or it
  // succeeded) and `ready` (started, and no readiness probe or it succeeded).
  bool started = true;
  bool ready = true;
};

struct PodView {
  std::string host_ip;
  std::vector<std::string> pod_ips;  // empty while no sandbox has an address (kept from before)
  bool sandbox_ready = false;
  bool terminating = false;                         // being deleted and its containers stopped
  std::map<std::string, ContainerView> containers;  // by container name
};

// "busybox" -> "docker.io/library/busybox:latest": an image as container statuses show it.
std::string NormalizeImageName(const std::string& image);

// The status of one container of the spec (`init`: an init container; `initialized`: whether
// the pod's init containers are done, deciding PodInitializing for app containers).
json ContainerStatusJson(const json& spec, const ContainerView& view, bool init, bool initialized);

// Pending, Running, Succeeded or Failed from the computed statuses, by upstream's rules.
std::string PodPhase(const json& pod, const json& init_statuses, const json& statuses,
                     bool terminating);

// The whole status: the pod's current status with the agent's fields replaced. Conditions of
// types the agent does not own are kept; lastTransitionTime is kept while a condition's status
// stays the same.
json ComputePodStatus(const json& pod, const PodView& view, SystemTime now);

}  // namespace orch::agent
