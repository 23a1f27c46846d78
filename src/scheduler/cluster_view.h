// Typed views of the Node and Pod fields the scheduler reads, parsed once per object version so
// that filters and scores never touch JSON; plus label and node selectors with upstream semantics.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orch/labels.h"
#include "orch/node_placement.h"

namespace orch::sched {

// Labels, node selectors, taints and tolerations are shared with the DaemonSet controller.
using placement::Labels;
using placement::NodeSelector;
using placement::NodeSelectorTerm;
using placement::Taint;
using placement::ToleratesAll;
using placement::Toleration;

// A metav1.LabelSelector as affinity terms and spread constraints read it: null matches nothing,
// {} everything, and one that does not convert (an unknown operator) matches nothing.
LabelSelector SelectorFromJson(const nlohmann::json& selector);

struct PreferredSchedulingTerm {
  int32_t weight = 0;
  NodeSelectorTerm term;
};

// Amounts of resources: cpu in millicores, memory and storage in bytes, other scalar resources
// (extended resources, hugepages-*) by name, sorted.
struct Resources {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  std::vector<std::pair<std::string, int64_t>> scalars;

  int64_t Scalar(std::string_view name) const;
  void AddScalar(const std::string& name, int64_t amount);
  void Add(const Resources& other);
  void Sub(const Resources& other);
  // Each resource becomes the larger of the two (init containers vs the rest).
  void Max(const Resources& other);
  bool IsZero() const;
};

struct HostPort {
  std::string protocol = "TCP";
  std::string host_ip = "0.0.0.0";  // "0.0.0.0" (or empty in the spec) means every address
  int32_t port = 0;

  // Same protocol and port, and the addresses overlap.
  bool ConflictsWith(const HostPort& other) const;
};

// A pod (anti-)affinity term: pods matching `selector` in the term's namespaces, counted per value
// of `topology_key` on their nodes.
struct AffinityTerm {
  LabelSelector selector;
  std::vector<std::string> namespaces;  // explicit namespaces
  bool has_namespace_selector = false;
  LabelSelector namespace_selector;
  std::string topology_key;
  int32_t weight = 0;  // preferred terms only
};

struct SpreadConstraint {
  int32_t max_skew = 1;
  std::string topology_key;
  bool do_not_schedule = true;  // whenUnsatisfiable: DoNotSchedule (else ScheduleAnyway)
  LabelSelector selector;       // with matchLabelKeys folded in
  int32_t min_domains = 1;
  bool honor_node_affinity = true;  // nodeAffinityPolicy (default Honor)
  bool honor_node_taints = false;   // nodeTaintsPolicy (default Ignore)
};

// What the scheduler knows of a pod. Immutable once parsed; shared between the queue and cache.
struct PodView {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::string key;  // "ns/name"

  std::string node_name;
  std::string scheduler_name;
  std::string phase;
  std::string nominated_node_name;
  bool deleting = false;  // metadata.deletionTimestamp set
  bool gated = false;     // spec.schedulingGates not empty
  int32_t priority = 0;
  bool preempt_never = false;  // spec.preemptionPolicy: Never
  Labels labels;
  std::string owner_uid;  // the controller ownerReference

  Resources requests;  // what the pod occupies on a node (containers, init containers, overhead)
  int64_t non_zero_milli_cpu = 0;  // requests with upstream's defaults for scoring (100m, 200Mi)
  int64_t non_zero_memory = 0;
  std::vector<HostPort> host_ports;

  std::vector<Toleration> tolerations;
  placement::NodeConstraints node_constraints;  // nodeSelector and required node affinity
  std::vector<PreferredSchedulingTerm> preferred_node_affinity;
  std::vector<AffinityTerm> required_affinity;
  std::vector<AffinityTerm> required_anti_affinity;
  std::vector<AffinityTerm> preferred_affinity;
  std::vector<AffinityTerm> preferred_anti_affinity;
  std::vector<SpreadConstraint> spread_constraints;
  // spec.volumes[].persistentVolumeClaim.claimName, in order.
  std::vector<std::string> claims;

  // A hash of labels and spec: tells a change the scheduler cares about from a status update.
  uint64_t spec_hash = 0;

  bool IsTerminal() const { return phase == "Succeeded" || phase == "Failed"; }
  bool HasAffinityTerms() const {
    return !required_affinity.empty() || !required_anti_affinity.empty() ||
           !preferred_affinity.empty() || !preferred_anti_affinity.empty();
  }
  // The key the cache identifies pods by: the uid, or "ns/name" for objects without one.
  const std::string& CacheKey() const { return uid.empty() ? key : uid; }
};

using PodPtr = std::shared_ptr<const PodView>;

// Set on unbound claims of WaitForFirstConsumer classes once the pod's node is chosen.
inline constexpr char kSelectedNodeAnnotation[] = "volume.kubernetes.io/selected-node";

// What the VolumeBinding filter needs of one pod's PersistentVolumeClaims. Claims change apart
// from pods, so the scheduler reads them from its claim, volume and class informers before each
// attempt instead of keeping them in the PodView.
struct PodVolumes {
  // Why no node can take the pod now: a claim missing or being deleted, or unbound while its
  // class binds at once ("pod has unbound immediate PersistentVolumeClaims"). Empty when fine.
  std::string unresolvable;
  // The required node affinity of each bound volume that has one: the node must match all.
  std::vector<NodeSelector> bound_affinity;
  // Unbound claims of WaitForFirstConsumer classes: annotated with the chosen node
  // (volume.kubernetes.io/selected-node) before the pod is bound, for the provisioner.
  std::vector<std::string> delayed_claims;
};

// What the scheduler knows of a node.
struct NodeView {
  std::string name;
  Labels labels;
  // spec.taints, plus node.kubernetes.io/not-ready (Ready False or missing) or
  // node.kubernetes.io/unreachable (Ready Unknown) with NoSchedule when the node is not Ready and
  // carries no such taint yet: what the node lifecycle controller would add.
  std::vector<Taint> taints;
  bool unschedulable = false;
  Resources allocatable;
  int64_t allowed_pods = 0;

  // True when the two differ in nothing filters or scores read (heartbeats change nothing).
  bool SameForScheduling(const NodeView& other) const;
};

using NodePtr = std::shared_ptr<const NodeView>;

PodPtr ParsePod(const nlohmann::json& pod);
NodePtr ParseNode(const nlohmann::json& node);

// Whether an affinity term of a pod in `owner_ns` selects `pod`; `pod_ns_labels` are the labels of
// `pod`'s namespace (null when unknown) for namespaceSelector.
bool TermMatches(const AffinityTerm& term, const std::string& owner_ns, const PodView& pod,
                 const Labels* pod_ns_labels);

}  // namespace orch::sched
