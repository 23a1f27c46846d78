// The DaemonSet controller (one pod on every eligible node, rolling updates, OnDelete, history)
// and the pure logic it is built from, exposed for the unit tests.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct DaemonSetControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::seconds(30);
  // At most this many pods are created per sync (upstream's burstReplicas).
  int burst_replicas = 250;
  // The back-off before a failed daemon pod on the same node is deleted (and so replaced) again:
  // doubles from `initial` up to `max`, forgotten after 2 * max without failures.
  std::chrono::milliseconds failed_pod_backoff_initial = std::chrono::seconds(1);
  std::chrono::milliseconds failed_pod_backoff_max = std::chrono::minutes(15);
};

// The factory of the AllControllers() table, and one with options for tests.
std::unique_ptr<Component> NewDaemonSetController(ControllerContext& context);
std::unique_ptr<Component> NewDaemonSetController(ControllerContext& context,
                                                  DaemonSetControllerOptions options);

namespace ctrl::daemon {

// The label with the DaemonSet's template generation on its pods (kept for old clients).
inline constexpr char kPodTemplateGenerationLabel[] = "pod-template-generation";
// Where apps/v1 DaemonSets carry their template generation, when the API server sets it.
inline constexpr char kTemplateGenerationAnnotation[] = "deprecated.daemonset.template.generation";

// Event reasons, as upstream's.
inline constexpr char kFailedDaemonPod[] = "FailedDaemonPod";
inline constexpr char kSelectingAll[] = "SelectingAll";

// ---------------------------------------------------------------------------------------------
// Nodes.

// Whether the node's labels match a v1.NodeSelector's terms (one term must match; each term
// ANDs its matchExpressions and its matchFields on metadata.name).
bool MatchesNodeSelectorTerms(const json& node_selector, const json& node);

// The tolerations every daemon pod gets (upstream's): not-ready and unreachable NoExecute
// without tolerationSeconds; disk-, memory- and pid-pressure and unschedulable NoSchedule;
// network-unavailable NoSchedule for hostNetwork pods. Tolerations already there are kept.
void AddDaemonTolerations(json& pod_spec);
// Makes the pod's required node affinity name `node` (matchFields metadata.name In [node]) in
// every term, keeping the terms' matchExpressions, or in one new term when there are none.
void SetNodeNameAffinity(json& pod_spec, const std::string& node);
// The node a daemon pod is for: spec.nodeName, else the single metadata.name of its required
// node affinity's matchFields; "" when neither.
std::string TargetNodeName(const json& pod);

struct NodeVerdict {
  bool should_run = false;               // a daemon pod belongs on the node
  bool should_continue_running = false;  // a daemon pod already there may stay
};
// upstream's NodeShouldRunDaemonPod: the template's nodeName (if any) is the node's, its
// nodeSelector and required node affinity match the node, and (with the daemon tolerations)
// the pod tolerates the node's NoSchedule and NoExecute taints. A pod that only fails on
// NoSchedule taints may continue running.
NodeVerdict NodeShouldRunDaemonPod(const json& node, const json& ds);

// ---------------------------------------------------------------------------------------------
// Pods.

// The DaemonSet's template generation: its annotation, else metadata.generation.
int64_t TemplateGeneration(const json& ds);
// A pod of the current template for `node`: PodFromTemplate plus the hash and generation
// labels, the daemon tolerations and the node affinity.
json NewDaemonPod(const json& ds, const json& controller_ref, const std::string& node,
                  const std::string& hash);
// The pod runs the current template: its hash label is `hash` or its generation label is the
// DaemonSet's.
bool IsPodUpdated(const json& pod, const std::string& hash, int64_t template_generation);

// The DaemonSet's pods by target node (TargetNodeName; pods without one under ""). Pods that
// are being deleted and have terminated are left out: they hold nothing on their node.
using NodePods = std::map<std::string, std::vector<ObjectPtr>>;
NodePods GroupByNode(const std::vector<ObjectPtr>& pods);

// maxSurge and maxUnavailable of a RollingUpdate DaemonSet against `desired` nodes (both round
// up); maxUnavailable 1 when both are 0. (0, 0) for OnDelete.
std::pair<int64_t, int64_t> SurgeAndUnavailable(const json& ds, int64_t desired);

// What the manage step does (upstream's podsShouldBeOnNode over every node).
struct NodePlan {
  std::vector<std::string> nodes_needing_pods;
  std::vector<ObjectPtr> pods_to_delete;  // includes failed_pods
  // Failed pods deleted now (for the FailedDaemonPod event and the back-off), with their node.
  std::vector<std::pair<ObjectPtr, std::string>> failed_pods;
  // Nodes whose failed pod waits for its back-off: sync again later.
  std::vector<std::string> nodes_in_backoff;
};
// `nodes` are every Node; `in_backoff(node)` says whether a failed pod there must wait. A node
// that should run a pod and has none gets one; extra pods go (the oldest stays; with maxSurge,
// an old and a new pod may share a node until the new one is available); pods on nodes that no
// longer qualify, or that are gone, go; failed and succeeded pods go.
NodePlan PlanNodes(const json& ds, const std::vector<ObjectPtr>& nodes, const NodePods& node_pods,
                   const std::string& hash, TimePoint now,
                   const std::function<bool(const std::string& node)>& in_backoff);

// One step of a RollingUpdate (upstream's rollingUpdate): without surge, delete old pods while
// at most maxUnavailable nodes are unavailable (old pods that are not available go at once);
// with surge, create new pods next to old ones on up to maxSurge nodes and delete an old pod once
// the new one beside it is available.
struct RollingPlan {
  std::vector<ObjectPtr> pods_to_delete;
  std::vector<std::string> nodes_needing_pods;
};
RollingPlan PlanRollingUpdate(const json& ds, const std::vector<ObjectPtr>& nodes,
                              const NodePods& node_pods, const std::string& hash, TimePoint now);

// The status kubectl reads (desiredNumberScheduled, currentNumberScheduled, numberReady,
// numberAvailable, updatedNumberScheduled, numberMisscheduled, numberUnavailable,
// observedGeneration), with the old status's collisionCount and conditions kept.
json CalculateStatus(const json& ds, const std::vector<ObjectPtr>& nodes, const NodePods& node_pods,
                     const std::string& hash, TimePoint now);

}  // namespace ctrl::daemon
}  // namespace orch
