// The node lifecycle controller: notices nodes whose kubelet stopped renewing its Lease and
// posting status (conditions Unknown), taints nodes by their conditions and by cordoning, marks
// the pods of unreachable nodes not ready, and evicts pods that do not tolerate NoExecute taints.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct NodeLifecycleControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  // A node whose Lease and Ready heartbeat have not changed for this long is unreachable
  // (upstream's --node-monitor-grace-period).
  std::chrono::milliseconds grace_period = std::chrono::seconds(40);
  // The same for a node that never posted a Ready condition (upstream's
  // --node-startup-grace-period).
  std::chrono::milliseconds startup_grace_period = std::chrono::seconds(60);
  std::chrono::milliseconds resync_period = std::chrono::minutes(1);
};

// The factory of the AllControllers() table ("nodelifecycle"): the grace period comes from
// ControllerContext::node_monitor_grace_period, the startup grace period is 1.5 times it.
std::unique_ptr<Component> NewNodeLifecycleController(ControllerContext& context);
std::unique_ptr<Component> NewNodeLifecycleController(ControllerContext& context,
                                                      NodeLifecycleControllerOptions options);

namespace ctrl::nodelifecycle {

inline constexpr char kLeaseNamespace[] = "kube-node-lease";
inline constexpr char kTaintNotReady[] = "node.kubernetes.io/not-ready";
inline constexpr char kTaintUnreachable[] = "node.kubernetes.io/unreachable";
inline constexpr char kTaintUnschedulable[] = "node.kubernetes.io/unschedulable";
inline constexpr char kTaintMemoryPressure[] = "node.kubernetes.io/memory-pressure";
inline constexpr char kTaintDiskPressure[] = "node.kubernetes.io/disk-pressure";
inline constexpr char kTaintPidPressure[] = "node.kubernetes.io/pid-pressure";
inline constexpr char kTaintNetworkUnavailable[] = "node.kubernetes.io/network-unavailable";

// What the controller last saw of a node's kubelet: a change of either time is a sign of life,
// dated by the controller's own clock (the kubelet's clock may be skewed).
struct NodeHealth {
  std::string heartbeat;    // the Ready condition's lastHeartbeatTime
  std::string lease_renew;  // the Lease's spec.renewTime
  TimePoint probe;          // when one of them last changed
};

// Updates `health` from the node and its Lease (null when it has none). A fresh `health`
// (`first`) is dated `now`, as upstream dates the nodes it finds at start.
void ObserveHeartbeat(NodeHealth& health, const json& node, const json* lease, TimePoint now,
                      bool first);

// The status of a node whose kubelet went silent: Ready, MemoryPressure, DiskPressure and
// PIDPressure Unknown (reason NodeStatusUnknown, "Kubelet stopped posting node status.";
// missing ones NodeStatusNeverUpdated), heartbeat times kept. Nullopt when nothing changes.
std::optional<json> MarkStatusUnknown(const json& status, TimePoint now);

// The Ready condition's status ("True", "False", "Unknown"), or "" without one.
std::string ReadyStatus(const json& node);

// The taints the node should carry: its own, with those this controller manages (by condition:
// not-ready and unreachable NoSchedule + NoExecute, memory/disk/pid pressure and
// network-unavailable NoSchedule; by spec.unschedulable: unschedulable NoSchedule) added or
// removed. Taints kept keep their timeAdded; new NoExecute ones get `now`.
json DesiredTaints(const json& node, TimePoint now);

// When the taint manager deletes `pod` from a node with `taints`: nullopt if it tolerates every
// NoExecute taint without a time limit (or there is none); otherwise the latest timeAdded of the
// NoExecute taints (`fallback_start` when none has one) plus the smallest tolerationSeconds of
// the tolerations used. A pod that does not tolerate one of them gets TimePoint::min(): at once.
std::optional<TimePoint> EvictionTime(const json& pod, const json& taints,
                                      TimePoint fallback_start);

// Whether `taints` has a NoExecute taint.
bool HasNoExecuteTaint(const json& taints);

}  // namespace ctrl::nodelifecycle
}  // namespace orch
