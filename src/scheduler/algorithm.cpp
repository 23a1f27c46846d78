// The scheduling cycle of one pod and the preemption dry run, over a read-only ClusterState.
// Nominated pods and preemption victims are handled on copies of NodeInfo, never in place.
#include "algorithm.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <tuple>

namespace orch::sched {
namespace {

// Pods nominated to `node` that outrank or equal `pod` (other than itself): their room is taken.
std::vector<PodPtr> NominatedAhead(const PodView& pod, const ClusterState& cluster,
                                   const std::string& node) {
  std::vector<PodPtr> out;
  if (!cluster.nominated) return out;
  auto it = cluster.nominated->find(node);
  if (it == cluster.nominated->end()) return out;
  for (const PodPtr& p : it->second) {
    if (p->key != pod.key && p->priority >= pod.priority) out.push_back(p);
  }
  return out;
}

FilterStatus FilterWithNominated(const PodView& pod, const PreFilterState& state,
                                 const ClusterState& cluster, const NodeInfo& node) {
  std::vector<PodPtr> ahead = NominatedAhead(pod, cluster, node.node()->name);
  if (ahead.empty()) return RunFilters(pod, state, node);
  NodeInfo copy = node;
  for (PodPtr& p : ahead) copy.AddPod(std::move(p));
  return RunFilters(pod, state, copy);
}

struct Candidate {
  size_t index = 0;
  std::vector<PodPtr> victims;  // most important first
};

// Victims on node `index`, or the status saying why preemption there cannot help.
std::optional<Candidate> SelectVictims(const PodView& pod, const ClusterState& cluster,
                                       size_t index, FilterStatus* why) {
  NodeInfo copy = *cluster.nodes[index];
  std::vector<PodPtr> potential;
  for (const PodPtr& p : copy.pods()) {
    if (p->priority < pod.priority) potential.push_back(p);
  }
  if (potential.empty()) {
    *why = FilterStatus::Fail(FilterStatus::Code::kUnresolvable, 0, kNoPreemptionVictims);
    return std::nullopt;
  }
  for (const PodPtr& p : potential) copy.RemovePod(p->CacheKey());
  for (PodPtr& p : NominatedAhead(pod, cluster, copy.node()->name)) copy.AddPod(std::move(p));
  ClusterState trial = cluster;
  trial.nodes[index] = &copy;
  FilterStatus status = RunFilters(pod, PreFilter(pod, trial), copy);
  if (!status.ok()) {
    *why = std::move(status);
    return std::nullopt;
  }
  std::sort(potential.begin(), potential.end(), [](const PodPtr& a, const PodPtr& b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->key < b->key;
  });
  Candidate candidate;
  candidate.index = index;
  for (const PodPtr& p : potential) {
    copy.AddPod(p);
    if (RunFilters(pod, PreFilter(pod, trial), copy).ok()) continue;  // reprieved
    copy.RemovePod(p->CacheKey());
    candidate.victims.push_back(p);
  }
  return candidate;
}

}  // namespace

ScheduleResult SchedulePod(const PodView& pod, const ClusterState& cluster, std::mt19937_64& rng,
                           const ScoreWeights& weights) {
  ScheduleResult result;
  if (cluster.nodes.empty()) {
    result.message = kNoNodesAvailable;
    result.failed_plugins = kAllPlugins;
    return result;
  }
  if (cluster.volumes && !cluster.volumes->unresolvable.empty()) {
    // Upstream's VolumeBinding PreFilter: one reason for the whole cluster, not per node.
    result.statuses.assign(cluster.nodes.size(),
                           FilterStatus::Fail(FilterStatus::Code::kUnresolvable,
                                              kPluginVolumeBinding, cluster.volumes->unresolvable));
    result.message = fmt::format("0/{} nodes are available: {}.", cluster.nodes.size(),
                                 cluster.volumes->unresolvable);
    result.failed_plugins = kPluginVolumeBinding;
    return result;
  }
  PreFilterState state = PreFilter(pod, cluster);
  std::vector<const NodeInfo*> feasible;
  result.statuses.resize(cluster.nodes.size());
  for (size_t i = 0; i < cluster.nodes.size(); ++i) {
    FilterStatus status = FilterWithNominated(pod, state, cluster, *cluster.nodes[i]);
    if (status.ok()) {
      feasible.push_back(cluster.nodes[i]);
    } else {
      result.failed_plugins |= status.plugin;
    }
    result.statuses[i] = std::move(status);
  }
  result.feasible_nodes = feasible.size();
  if (feasible.empty()) {
    result.message = FormatFitError(cluster.nodes.size(), result.statuses);
    return result;
  }
  result.statuses.clear();
  if (feasible.size() == 1) {
    result.node = feasible[0]->node()->name;
    return result;
  }
  std::vector<int64_t> scores = ScoreNodes(pod, cluster, feasible, weights);
  // Reservoir sampling over the best: each of k tied nodes is kept with probability 1/k.
  int64_t best = std::numeric_limits<int64_t>::min();
  size_t chosen = 0;
  uint64_t ties = 0;
  for (size_t i = 0; i < feasible.size(); ++i) {
    if (scores[i] > best) {
      best = scores[i];
      chosen = i;
      ties = 1;
    } else if (scores[i] == best) {
      ++ties;
      if (std::uniform_int_distribution<uint64_t>(0, ties - 1)(rng) == 0) chosen = i;
    }
  }
  result.node = feasible[chosen]->node()->name;
  return result;
}

PreemptionResult Preempt(const PodView& pod, const ClusterState& cluster,
                         const std::vector<FilterStatus>& statuses) {
  PreemptionResult result;
  if (pod.preempt_never) {
    result.message = "preemption: not eligible due to preemptionPolicy=Never.";
    return result;
  }
  // A pod that already preempted waits for its victims to go before preempting again.
  if (!pod.nominated_node_name.empty()) {
    for (size_t i = 0; i < cluster.nodes.size(); ++i) {
      const NodeInfo& info = *cluster.nodes[i];
      if (info.node()->name != pod.nominated_node_name) continue;
      if (i < statuses.size() && statuses[i].code == FilterStatus::Code::kUnresolvable) break;
      for (const PodPtr& p : info.pods()) {
        if (p->priority < pod.priority && p->deleting) {
          result.message =
              "preemption: not eligible due to a terminating pod on the nominated node.";
          return result;
        }
      }
    }
  }
  std::vector<FilterStatus> outcome(cluster.nodes.size());
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < cluster.nodes.size(); ++i) {
    if (i >= statuses.size() || statuses[i].code != FilterStatus::Code::kUnschedulable) {
      outcome[i] = FilterStatus::Fail(FilterStatus::Code::kUnresolvable, 0, kPreemptionNotHelpful);
      continue;
    }
    std::optional<Candidate> c = SelectVictims(pod, cluster, i, &outcome[i]);
    if (!c) continue;
    if (c->victims.empty()) {
      // It fits with every pod given back: nothing to evict here (the next attempt will tell).
      outcome[i] = FilterStatus::Fail(FilterStatus::Code::kUnresolvable, 0, kNoPreemptionVictims);
      continue;
    }
    candidates.push_back(std::move(*c));
  }
  if (candidates.empty()) {
    result.message = "preemption: " + FormatFitError(cluster.nodes.size(), outcome);
    return result;
  }
  auto rank = [](const Candidate& c) {
    int64_t highest = c.victims.front()->priority;
    int64_t sum = 0;
    for (const PodPtr& v : c.victims) {
      // Shifted so that negative priorities still add up to more for more pods.
      sum += static_cast<int64_t>(v->priority) + (int64_t{1} << 31);
    }
    return std::make_tuple(highest, sum, c.victims.size(), c.index);
  };
  const Candidate* best = &candidates.front();
  for (const Candidate& c : candidates) {
    if (rank(c) < rank(*best)) best = &c;
  }
  result.node = cluster.nodes[best->index]->node()->name;
  result.victims.assign(best->victims.rbegin(), best->victims.rend());
  return result;
}

}  // namespace orch::sched
