// One scheduling decision (filter every node, score the feasible ones, pick the best) and
// preemption (which lower-priority pods to evict so that a pod fits). Pure: reads a ClusterState,
// writes nothing; the scheduler component turns the answers into API calls.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cluster_view.h"
#include "filters.h"
#include "node_info.h"
#include "scores.h"

namespace orch::sched {

struct ScheduleResult {
  std::string node;  // the chosen node; empty when none fits
  // On failure: each node's status (same order as ClusterState::nodes), the FitError message
  // (without the preemption part) and the union of the filters that rejected nodes.
  std::vector<FilterStatus> statuses;
  std::string message;
  uint32_t failed_plugins = 0;
  size_t feasible_nodes = 0;
};

// Filters every node (with the room of pods nominated to it at the same or higher priority
// taken), scores the feasible ones and picks the highest total, ties broken at random by `rng`.
ScheduleResult SchedulePod(const PodView& pod, const ClusterState& cluster, std::mt19937_64& rng,
                           const ScoreWeights& weights = {});

inline constexpr char kPreemptionNotHelpful[] = "Preemption is not helpful for scheduling";
inline constexpr char kNoPreemptionVictims[] = "No preemption victims found for incoming pod";

struct PreemptionResult {
  // The node to nominate and the pods to evict there, lowest priority first; node is empty when
  // preemption cannot help, and `message` then says why ("preemption: ...").
  std::string node;
  std::vector<PodPtr> victims;
  std::string message;
};

// Upstream's default preemption: among nodes whose failure removing pods could fix, remove every
// lower-priority pod, check the pod fits, then give back as many of them as possible, most
// important first. The node picked has the lowest highest-victim priority, then the lowest sum of
// victim priorities, then the fewest victims. `statuses` are the SchedulePod failure statuses.
PreemptionResult Preempt(const PodView& pod, const ClusterState& cluster,
                         const std::vector<FilterStatus>& statuses);

}  // namespace orch::sched
