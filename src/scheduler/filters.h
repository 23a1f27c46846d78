// The scheduler's filters (which nodes can take a pod) with upstream's reasons, and the
// "0/3 nodes are available: ..." message built from them. Pure functions over the cluster views.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cluster_view.h"
#include "node_info.h"

namespace orch::sched {

// Which filter rejected a node, as bits, so that the queue retries a pod only on the cluster
// events that can change that filter's answer.
enum FilterPlugin : uint32_t {
  kPluginNodeUnschedulable = 1u << 0,
  kPluginTaintToleration = 1u << 1,
  kPluginNodeAffinity = 1u << 2,
  kPluginNodePorts = 1u << 3,
  kPluginNodeResourcesFit = 1u << 4,
  kPluginPodTopologySpread = 1u << 5,
  kPluginInterPodAffinity = 1u << 6,
  kPluginVolumeBinding = 1u << 7,
  kAllPlugins = (1u << 8) - 1,
};

// Upstream's reasons, verbatim: users and tools grep for them.
inline constexpr char kReasonNodeUnschedulable[] = "node(s) were unschedulable";
inline constexpr char kReasonNodeAffinity[] = "node(s) didn't match Pod's node affinity/selector";
inline constexpr char kReasonNodePorts[] =
    "node(s) didn't have free ports for the requested pod ports";
inline constexpr char kReasonTooManyPods[] = "Too many pods";
inline constexpr char kReasonSpread[] = "node(s) didn't match pod topology spread constraints";
inline constexpr char kReasonSpreadMissingLabel[] =
    "node(s) didn't match pod topology spread constraints (missing required label)";
inline constexpr char kReasonAffinity[] = "node(s) didn't match pod affinity rules";
inline constexpr char kReasonAntiAffinity[] = "node(s) didn't match pod anti-affinity rules";
inline constexpr char kReasonExistingAntiAffinity[] =
    "node(s) didn't satisfy existing pods anti-affinity rules";
inline constexpr char kReasonVolumeNodeAffinity[] = "node(s) had volume node affinity conflict";
inline constexpr char kReasonUnboundImmediate[] =
    "pod has unbound immediate PersistentVolumeClaims";
inline constexpr char kNoNodesAvailable[] = "no nodes available to schedule pods";

// "node(s) had untolerated taint {key: value}".
std::string UntoleratedTaintReason(const Taint& taint);
// "Insufficient cpu", "Insufficient nvidia.com/gpu".
std::string InsufficientReason(const std::string& resource);

// The answer of one filter for one node. kUnschedulable: removing pods could help (preemption
// may try); kUnresolvable: it could not.
struct FilterStatus {
  enum class Code { kSuccess, kUnschedulable, kUnresolvable };
  Code code = Code::kSuccess;
  uint32_t plugin = 0;
  std::vector<std::string> reasons;

  bool ok() const { return code == Code::kSuccess; }
  static FilterStatus Fail(Code code, uint32_t plugin, std::string reason) {
    return {code, plugin, {std::move(reason)}};
  }
};

// Per-pod work done once before the per-node filters: pod (anti-)affinity and spread counts.
struct PreFilterState {
  using TopologyCounts = std::map<std::pair<std::string, std::string>, int64_t>;
  // Topology pairs holding pods whose required anti-affinity selects the incoming pod.
  TopologyCounts existing_anti_affinity;
  // Topology pairs holding pods that match all required affinity terms of the incoming pod.
  TopologyCounts affinity;
  // Topology pairs holding pods that match a required anti-affinity term of the incoming pod.
  TopologyCounts anti_affinity;
  // The incoming pod matches all its own required affinity terms (it may start a group).
  bool self_matches_affinity = false;

  struct Spread {
    const SpreadConstraint* constraint = nullptr;
    std::unordered_map<std::string, int64_t> counts;  // matching pods per domain value
    int64_t min_match = 0;
    bool self_match = false;
  };
  std::vector<Spread> spread;  // the DoNotSchedule constraints

  const PodVolumes* volumes = nullptr;  // from the ClusterState
};

PreFilterState PreFilter(const PodView& pod, const ClusterState& cluster);

// The filters, in upstream's order.
FilterStatus FilterNodeUnschedulable(const PodView& pod, const NodeInfo& node);
FilterStatus FilterTaintToleration(const PodView& pod, const NodeInfo& node);
FilterStatus FilterNodeAffinity(const PodView& pod, const NodeInfo& node);
FilterStatus FilterNodePorts(const PodView& pod, const NodeInfo& node);
FilterStatus FilterNodeResourcesFit(const PodView& pod, const NodeInfo& node);
// VolumeBinding: claims that keep the pod off every node (kUnresolvable with the reason of
// PodVolumes::unresolvable), and bound volumes whose node affinity the node does not match.
FilterStatus FilterVolumeBinding(const PreFilterState& state, const NodeInfo& node);
FilterStatus FilterPodTopologySpread(const PodView& pod, const PreFilterState& state,
                                     const NodeInfo& node);
FilterStatus FilterInterPodAffinity(const PodView& pod, const PreFilterState& state,
                                    const NodeInfo& node);

// Every filter in order; the first failure decides. `node` must have a Node.
FilterStatus RunFilters(const PodView& pod, const PreFilterState& state, const NodeInfo& node);

// nodeSelector and required node affinity (also used by spread and scores).
bool MatchesNodeSelectorAndAffinity(const PodView& pod, const NodeView& node);
// The first NoSchedule/NoExecute taint the pod does not tolerate, or null.
const Taint* FirstUntoleratedTaint(const PodView& pod, const NodeView& node);

// Counts each reason over the failed nodes and formats them as upstream's FitError does:
// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable." followed by
// " <post_filter>" (the preemption part) when given.
std::string FormatFitError(size_t num_nodes, const std::vector<FilterStatus>& failures,
                           const std::string& post_filter = "");

}  // namespace orch::sched
