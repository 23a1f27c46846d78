// The scheduler's scores (which feasible node is best), each normalized to 0..100 and weighted
// like upstream's default profile. Pure functions over the cluster views.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster_view.h"
#include "node_info.h"

namespace orch::sched {

inline constexpr int64_t kMaxNodeScore = 100;

// Upstream's default weights; owner spread stands in for the default topology spread
// constraints (hostname, ScheduleAnyway), which upstream scores under PodTopologySpread.
struct ScoreWeights {
  int64_t taint_toleration = 3;
  int64_t node_affinity = 2;
  int64_t least_allocated = 1;
  int64_t balanced_allocation = 1;
  int64_t inter_pod_affinity = 2;
  int64_t topology_spread = 2;
  int64_t owner_spread = 2;
};

// Per-node scores, already 0..100.
// Free cpu and memory after placing the pod (requests with upstream's defaults for pods that
// give none), averaged.
int64_t LeastAllocatedScore(const PodView& pod, const NodeInfo& node);
// 100 when cpu and memory would be used in the same proportion, less as they drift apart.
int64_t BalancedAllocationScore(const PodView& pod, const NodeInfo& node);

// Raw per-node values, normalized over the feasible nodes below.
// Sum of the weights of the preferred node affinity terms the node matches.
int64_t NodeAffinityRawScore(const PodView& pod, const NodeView& node);
// PreferNoSchedule taints the pod does not tolerate.
int64_t TaintTolerationRawScore(const PodView& pod, const NodeView& node);

// Upstream's DefaultNormalizeScore: scales so the largest becomes 100 (or, reversed, so the
// largest becomes 0 and zero becomes 100).
void NormalizeScores(std::vector<int64_t>& scores, bool reverse);

// Scores that depend on the pods across the cluster, for each of `feasible`, normalized.
std::vector<int64_t> InterPodAffinityScores(const PodView& pod, const ClusterState& cluster,
                                            const std::vector<const NodeInfo*>& feasible);
std::vector<int64_t> TopologySpreadScores(const PodView& pod, const ClusterState& cluster,
                                          const std::vector<const NodeInfo*>& feasible);
// Fewer pods of the same controller on a node is better.
std::vector<int64_t> OwnerSpreadScores(const PodView& pod,
                                       const std::vector<const NodeInfo*>& feasible);

// The weighted sum of every score, for each of `feasible`.
std::vector<int64_t> ScoreNodes(const PodView& pod, const ClusterState& cluster,
                                const std::vector<const NodeInfo*>& feasible,
                                const ScoreWeights& weights = {});

}  // namespace orch::sched
