// A node with the pods placed on it and the running totals filters and scores need (requested
// resources, host ports, pods per owner), and the read-only cluster state one decision sees.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster_view.h"

namespace orch::sched {

// Not thread-safe; the scheduler cache guards its NodeInfos with its mutex. Copyable on purpose:
// preemption and nominated pods work on copies.
class NodeInfo {
 public:
  NodeInfo() = default;
  explicit NodeInfo(NodePtr node) : node_(std::move(node)) {}

  // Null while pods name a node whose Node object is not (or no longer) known.
  const NodePtr& node() const { return node_; }
  void SetNode(NodePtr node) { node_ = std::move(node); }

  void AddPod(PodPtr pod);
  // Removes the pod with this cache key; false when it is not here.
  bool RemovePod(const std::string& cache_key);
  const PodPtr* FindPod(const std::string& cache_key) const;

  const std::vector<PodPtr>& pods() const { return pods_; }
  const Resources& requested() const { return requested_; }
  int64_t non_zero_milli_cpu() const { return non_zero_milli_cpu_; }
  int64_t non_zero_memory() const { return non_zero_memory_; }
  const std::vector<HostPort>& used_ports() const { return used_ports_; }
  int pods_with_affinity() const { return pods_with_affinity_; }
  int pods_with_required_anti_affinity() const { return pods_with_required_anti_affinity_; }
  // Pods on this node controlled by the owner with this uid.
  int OwnerCount(const std::string& owner_uid) const;

 private:
  void Account(const PodView& pod, int sign);

  NodePtr node_;
  std::vector<PodPtr> pods_;
  Resources requested_;
  int64_t non_zero_milli_cpu_ = 0;
  int64_t non_zero_memory_ = 0;
  std::vector<HostPort> used_ports_;
  int pods_with_affinity_ = 0;
  int pods_with_required_anti_affinity_ = 0;
  std::unordered_map<std::string, int> owner_counts_;
};

// Pods nominated to nodes by preemption, by node name: their room is kept for them.
using NominatedPods = std::unordered_map<std::string, std::vector<PodPtr>>;
// Namespace labels by namespace name, for namespaceSelector in affinity terms.
using NamespaceLabels = std::unordered_map<std::string, Labels>;

// What one scheduling decision reads. Nodes are those with a Node object, ordered by name.
struct ClusterState {
  std::vector<const NodeInfo*> nodes;
  const NamespaceLabels* namespaces = nullptr;
  const NominatedPods* nominated = nullptr;
  const PodVolumes* volumes = nullptr;  // the claims of the pod being scheduled, when it has any

  const Labels* NamespaceLabelsOf(const std::string& ns) const;
};

}  // namespace orch::sched
