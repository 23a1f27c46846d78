// The Node object the agent registers and keeps current: labels and taints from the flags,
// capacity and allocatable from the machine, addresses, nodeInfo, images, and the Ready,
// MemoryPressure, DiskPressure and PIDPressure conditions with kubelet's default thresholds.
// Pure functions of the facts gathered by node_status.cpp, unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json_util.h"
#include "machine.h"
#include "orch/runtime.h"
#include "orch/status.h"
#include "orch/timestamps.h"

namespace orch::agent {

// Kubelet's default hard eviction thresholds, which also decide the pressure conditions.
inline constexpr uint64_t kMemoryAvailableThreshold = 100ull << 20;  // memory.available<100Mi
inline constexpr double kNodefsAvailableRatio = 0.10;                // nodefs.available<10%
inline constexpr double kNodefsInodesFreeRatio = 0.05;               // nodefs.inodesFree<5%
inline constexpr double kPidAvailableRatio = 0.10;                   // fewer than 10% PIDs left
inline constexpr int kMaxPods = 110;
inline constexpr size_t kMaxImagesInStatus = 50;

// "k=v" -> {k, v}; "k=v:NoSchedule" (or "k:NoSchedule") -> a taint object.
Result<std::pair<std::string, std::string>> ParseNodeLabel(const std::string& text);
Result<json> ParseNodeTaint(const std::string& text);

struct NodeIdentity {
  std::string name;
  std::string ip;
  bool control_plane = false;
  std::vector<std::string> labels;  // --node-label
  std::vector<std::string> taints;  // --node-taint
};

// metadata.labels of the node: the well-known ones, the control-plane role, --node-label.
std::map<std::string, std::string> NodeLabels(const NodeIdentity& id, const MachineInfo& machine);

// The object to create at registration (metadata with NodeLabels, spec.taints, status).
Result<json> NewNodeObject(const NodeIdentity& id, const MachineInfo& machine, const json& status);

// Adds the agent's labels and missing taints to an existing node (re-registration); returns
// whether anything changed.
Result<bool> MergeRegistration(json& node, const NodeIdentity& id, const MachineInfo& machine);

// What the status is made of at one moment.
struct NodeFacts {
  NodeIdentity id;
  MachineInfo machine;
  std::string runtime_version;  // "containerd://1.6.20~ds1"
  std::string kubelet_version;  // orch's Kubernetes version
  FilesystemStats nodefs;
  std::optional<MemoryStats> memory;  // unset when unreadable (no pressure is reported then)
  std::optional<PidStats> pids;
  bool runtime_ready = false;
  bool network_ready = false;
  std::string runtime_message;  // why the runtime or its network is not ready
  std::vector<cri::Image> images;
};

// The whole status; conditions keep their lastTransitionTime from `old_status` while their
// status does not change, and get lastHeartbeatTime `now`.
json NodeStatusJson(const NodeFacts& facts, const json& old_status, SystemTime now);

// Whether two statuses differ in anything but heartbeat times.
bool NodeStatusChanged(const json& old_status, const json& new_status);

}  // namespace orch::agent
