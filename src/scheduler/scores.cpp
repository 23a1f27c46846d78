// The scores of the default scheduling profile (NodeResourcesFit LeastAllocated,
// NodeResourcesBalancedAllocation, NodeAffinity, TaintToleration, InterPodAffinity,
// PodTopologySpread) plus spreading of one controller's pods, from their documented behaviour.
#include "scores.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "filters.h"

namespace orch::sched {
namespace {

int64_t FreeFraction(int64_t requested, int64_t allocatable) {
  if (allocatable <= 0 || requested > allocatable) return 0;
  return (allocatable - requested) * kMaxNodeScore / allocatable;
}

double UsedFraction(int64_t requested, int64_t allocatable) {
  if (allocatable <= 0) return 0;
  return std::min(1.0, static_cast<double>(requested) / static_cast<double>(allocatable));
}

using TopologyScores = std::map<std::pair<std::string, std::string>, int64_t>;

void AddTopologyScore(TopologyScores& scores, const NodeView& node, const std::string& key,
                      int64_t weight) {
  if (weight == 0) return;
  if (const std::string* value = node.labels.Find(key)) scores[{key, *value}] += weight;
}

}  // namespace

int64_t LeastAllocatedScore(const PodView& pod, const NodeInfo& node) {
  const Resources& allocatable = node.node()->allocatable;
  int64_t cpu =
      FreeFraction(node.non_zero_milli_cpu() + pod.non_zero_milli_cpu, allocatable.milli_cpu);
  int64_t memory = FreeFraction(node.non_zero_memory() + pod.non_zero_memory, allocatable.memory);
  return (cpu + memory) / 2;
}

int64_t BalancedAllocationScore(const PodView& pod, const NodeInfo& node) {
  const Resources& allocatable = node.node()->allocatable;
  double cpu =
      UsedFraction(node.requested().milli_cpu + pod.requests.milli_cpu, allocatable.milli_cpu);
  double memory = UsedFraction(node.requested().memory + pod.requests.memory, allocatable.memory);
  // The standard deviation of two fractions is half their distance.
  double deviation = std::abs(cpu - memory) / 2;
  return static_cast<int64_t>((1 - deviation) * kMaxNodeScore);
}

int64_t NodeAffinityRawScore(const PodView& pod, const NodeView& node) {
  int64_t score = 0;
  for (const PreferredSchedulingTerm& p : pod.preferred_node_affinity) {
    if (p.weight != 0 && p.term.Matches(node.labels, node.name)) score += p.weight;
  }
  return score;
}

int64_t TaintTolerationRawScore(const PodView& pod, const NodeView& node) {
  int64_t count = 0;
  for (const Taint& taint : node.taints) {
    if (taint.effect != "PreferNoSchedule") continue;
    bool tolerated = false;
    for (const Toleration& t : pod.tolerations) {
      if ((t.effect.empty() || t.effect == "PreferNoSchedule") && t.Tolerates(taint)) {
        tolerated = true;
        break;
      }
    }
    if (!tolerated) ++count;
  }
  return count;
}

void NormalizeScores(std::vector<int64_t>& scores, bool reverse) {
  int64_t max = 0;
  for (int64_t s : scores) max = std::max(max, s);
  if (max == 0) {
    if (reverse) std::fill(scores.begin(), scores.end(), kMaxNodeScore);
    return;
  }
  for (int64_t& s : scores) {
    s = kMaxNodeScore * s / max;
    if (reverse) s = kMaxNodeScore - s;
  }
}

std::vector<int64_t> InterPodAffinityScores(const PodView& pod, const ClusterState& cluster,
                                            const std::vector<const NodeInfo*>& feasible) {
  std::vector<int64_t> out(feasible.size(), 0);
  bool pod_prefers = !pod.preferred_affinity.empty() || !pod.preferred_anti_affinity.empty();
  bool others_have_terms = false;
  for (const NodeInfo* info : cluster.nodes) {
    if (info->pods_with_affinity() > 0) others_have_terms = true;
  }
  if (!pod_prefers && !others_have_terms) return out;

  // Upstream's hard pod affinity weight: an existing pod's required affinity to this pod counts
  // like a preferred term of weight 1.
  constexpr int64_t kHardAffinityWeight = 1;
  const Labels* own_ns_labels = cluster.NamespaceLabelsOf(pod.ns);
  TopologyScores topology;
  for (const NodeInfo* info : cluster.nodes) {
    const NodeView& node = *info->node();
    bool scan_existing_terms = info->pods_with_affinity() > 0;
    if (!pod_prefers && !scan_existing_terms) continue;
    for (const PodPtr& existing : info->pods()) {
      if (pod_prefers) {
        const Labels* ns_labels = cluster.NamespaceLabelsOf(existing->ns);
        for (const AffinityTerm& t : pod.preferred_affinity) {
          if (TermMatches(t, pod.ns, *existing, ns_labels)) {
            AddTopologyScore(topology, node, t.topology_key, t.weight);
          }
        }
        for (const AffinityTerm& t : pod.preferred_anti_affinity) {
          if (TermMatches(t, pod.ns, *existing, ns_labels)) {
            AddTopologyScore(topology, node, t.topology_key, -t.weight);
          }
        }
      }
      if (!scan_existing_terms || !existing->HasAffinityTerms()) continue;
      for (const AffinityTerm& t : existing->preferred_affinity) {
        if (TermMatches(t, existing->ns, pod, own_ns_labels)) {
          AddTopologyScore(topology, node, t.topology_key, t.weight);
        }
      }
      for (const AffinityTerm& t : existing->preferred_anti_affinity) {
        if (TermMatches(t, existing->ns, pod, own_ns_labels)) {
          AddTopologyScore(topology, node, t.topology_key, -t.weight);
        }
      }
      for (const AffinityTerm& t : existing->required_affinity) {
        if (TermMatches(t, existing->ns, pod, own_ns_labels)) {
          AddTopologyScore(topology, node, t.topology_key, kHardAffinityWeight);
        }
      }
    }
  }
  if (topology.empty()) return out;
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < feasible.size(); ++i) {
    const NodeView& node = *feasible[i]->node();
    int64_t score = 0;
    for (const auto& [pair, weight] : topology) {
      const std::string* value = node.labels.Find(pair.first);
      if (value && *value == pair.second) score += weight;
    }
    out[i] = score;
    min = std::min(min, score);
    max = std::max(max, score);
  }
  for (int64_t& s : out) s = max > min ? kMaxNodeScore * (s - min) / (max - min) : 0;
  return out;
}

std::vector<int64_t> TopologySpreadScores(const PodView& pod, const ClusterState& cluster,
                                          const std::vector<const NodeInfo*>& feasible) {
  std::vector<int64_t> out(feasible.size(), 0);
  std::vector<const SpreadConstraint*> soft;
  for (const SpreadConstraint& c : pod.spread_constraints) {
    if (!c.do_not_schedule) soft.push_back(&c);
  }
  if (soft.empty()) return out;
  auto has_all_keys = [&](const NodeView& node) {
    for (const SpreadConstraint* c : soft) {
      if (!node.labels.Find(c->topology_key)) return false;
    }
    return true;
  };
  // Domains are those of the feasible nodes; pods are counted on every node the pod's node
  // affinity (and, when asked, taints) would allow, in those domains.
  std::vector<std::unordered_set<std::string>> domains(soft.size());
  for (const NodeInfo* info : feasible) {
    if (!has_all_keys(*info->node())) continue;
    for (size_t c = 0; c < soft.size(); ++c) {
      domains[c].insert(*info->node()->labels.Find(soft[c]->topology_key));
    }
  }
  std::vector<std::unordered_map<std::string, int64_t>> counts(soft.size());
  for (const NodeInfo* info : cluster.nodes) {
    const NodeView& node = *info->node();
    if (!has_all_keys(node)) continue;
    bool affinity_ok = MatchesNodeSelectorAndAffinity(pod, node);
    bool taints_ok = FirstUntoleratedTaint(pod, node) == nullptr;
    for (size_t c = 0; c < soft.size(); ++c) {
      if (soft[c]->honor_node_affinity && !affinity_ok) continue;
      if (soft[c]->honor_node_taints && !taints_ok) continue;
      const std::string& value = *node.labels.Find(soft[c]->topology_key);
      if (!domains[c].count(value)) continue;
      int64_t matching = 0;
      for (const PodPtr& existing : info->pods()) {
        if (existing->ns == pod.ns && !existing->deleting &&
            soft[c]->selector.Matches(existing->labels)) {
          ++matching;
        }
      }
      counts[c][value] += matching;
    }
  }
  // More matching pods in a node's domains is worse; domains are weighted by how many there are
  // so that a constraint over few large domains does not drown one over many small ones.
  std::vector<double> raw(feasible.size(), 0);
  std::vector<bool> eligible(feasible.size(), false);
  double min = std::numeric_limits<double>::max();
  double max = 0;
  for (size_t i = 0; i < feasible.size(); ++i) {
    const NodeView& node = *feasible[i]->node();
    if (!has_all_keys(node)) continue;
    eligible[i] = true;
    double score = 0;
    for (size_t c = 0; c < soft.size(); ++c) {
      const std::string& value = *node.labels.Find(soft[c]->topology_key);
      auto it = counts[c].find(value);
      int64_t count = it == counts[c].end() ? 0 : it->second;
      double weight = std::log(static_cast<double>(domains[c].size()) + 2);
      score += static_cast<double>(count) * weight + static_cast<double>(soft[c]->max_skew - 1);
    }
    raw[i] = score;
    min = std::min(min, score);
    max = std::max(max, score);
  }
  for (size_t i = 0; i < feasible.size(); ++i) {
    if (!eligible[i]) continue;  // nodes without the topology labels get the lowest score
    if (max == 0) {
      out[i] = kMaxNodeScore;
    } else {
      out[i] = static_cast<int64_t>(std::round(kMaxNodeScore * (max + min - raw[i]) / max));
    }
  }
  return out;
}

std::vector<int64_t> OwnerSpreadScores(const PodView& pod,
                                       const std::vector<const NodeInfo*>& feasible) {
  std::vector<int64_t> out(feasible.size(), kMaxNodeScore);
  if (pod.owner_uid.empty()) return out;
  for (size_t i = 0; i < feasible.size(); ++i) out[i] = feasible[i]->OwnerCount(pod.owner_uid);
  NormalizeScores(out, /*reverse=*/true);
  return out;
}

std::vector<int64_t> ScoreNodes(const PodView& pod, const ClusterState& cluster,
                                const std::vector<const NodeInfo*>& feasible,
                                const ScoreWeights& weights) {
  size_t n = feasible.size();
  std::vector<int64_t> total(n, 0);
  std::vector<int64_t> affinity(n, 0);
  std::vector<int64_t> taints(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const NodeInfo& info = *feasible[i];
    total[i] += weights.least_allocated * LeastAllocatedScore(pod, info);
    total[i] += weights.balanced_allocation * BalancedAllocationScore(pod, info);
    affinity[i] = NodeAffinityRawScore(pod, *info.node());
    taints[i] = TaintTolerationRawScore(pod, *info.node());
  }
  NormalizeScores(affinity, /*reverse=*/false);
  NormalizeScores(taints, /*reverse=*/true);
  std::vector<int64_t> inter_pod = InterPodAffinityScores(pod, cluster, feasible);
  std::vector<int64_t> spread = TopologySpreadScores(pod, cluster, feasible);
  std::vector<int64_t> owner = OwnerSpreadScores(pod, feasible);
  for (size_t i = 0; i < n; ++i) {
    total[i] += weights.node_affinity * affinity[i] + weights.taint_toleration * taints[i] +
                weights.inter_pod_affinity * inter_pod[i] + weights.topology_spread * spread[i] +
                weights.owner_spread * owner[i];
  }
  return total;
}

}  // namespace orch::sched
