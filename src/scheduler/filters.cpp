// The filters of the default scheduling profile (NodeUnschedulable, TaintToleration,
// NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity), each written
// from the documented behaviour of its upstream namesake.
#include "filters.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>

namespace orch::sched {
namespace {

using Code = FilterStatus::Code;

const std::string* NodeLabel(const NodeInfo& node, const std::string& key) {
  return node.node()->labels.Find(key);
}

void CountPair(PreFilterState::TopologyCounts& counts, const NodeView& node, const std::string& key,
               int64_t delta) {
  const std::string* value = node.labels.Find(key);
  if (!value) return;
  auto pair = std::make_pair(key, *value);
  int64_t& count = counts[pair];
  count += delta;
  if (count == 0) counts.erase(pair);
}

bool MatchesAllTerms(const std::vector<AffinityTerm>& terms, const std::string& owner_ns,
                     const PodView& pod, const Labels* pod_ns_labels) {
  if (terms.empty()) return false;
  for (const AffinityTerm& term : terms) {
    if (!TermMatches(term, owner_ns, pod, pod_ns_labels)) return false;
  }
  return true;
}

bool NodeHasAllSpreadKeys(const NodeView& node, const std::vector<PreFilterState::Spread>& spread) {
  for (const PreFilterState::Spread& s : spread) {
    if (!node.labels.Find(s.constraint->topology_key)) return false;
  }
  return true;
}

}  // namespace

std::string UntoleratedTaintReason(const Taint& taint) {
  return fmt::format("node(s) had untolerated taint {{{}: {}}}", taint.key, taint.value);
}

std::string InsufficientReason(const std::string& resource) {
  return fmt::format("Insufficient {}", resource);
}

bool MatchesNodeSelectorAndAffinity(const PodView& pod, const NodeView& node) {
  return pod.node_constraints.Matches(node.labels, node.name);
}

const Taint* FirstUntoleratedTaint(const PodView& pod, const NodeView& node) {
  return placement::FirstUntoleratedTaint(pod.tolerations, node.taints);
}

PreFilterState PreFilter(const PodView& pod, const ClusterState& cluster) {
  PreFilterState state;
  state.volumes = cluster.volumes;
  const Labels* own_ns_labels = cluster.NamespaceLabelsOf(pod.ns);

  // Inter-pod affinity: existing pods' anti-affinity against this pod, then this pod's terms
  // against existing pods. Skipped cheaply when no pod anywhere has such terms.
  for (const NodeInfo* info : cluster.nodes) {
    if (info->pods_with_required_anti_affinity() == 0) continue;
    for (const PodPtr& existing : info->pods()) {
      for (const AffinityTerm& term : existing->required_anti_affinity) {
        if (TermMatches(term, existing->ns, pod, own_ns_labels)) {
          CountPair(state.existing_anti_affinity, *info->node(), term.topology_key, 1);
        }
      }
    }
  }
  if (!pod.required_affinity.empty() || !pod.required_anti_affinity.empty()) {
    state.self_matches_affinity =
        MatchesAllTerms(pod.required_affinity, pod.ns, pod, own_ns_labels);
    for (const NodeInfo* info : cluster.nodes) {
      for (const PodPtr& existing : info->pods()) {
        const Labels* ns_labels = cluster.NamespaceLabelsOf(existing->ns);
        if (MatchesAllTerms(pod.required_affinity, pod.ns, *existing, ns_labels)) {
          for (const AffinityTerm& term : pod.required_affinity) {
            CountPair(state.affinity, *info->node(), term.topology_key, 1);
          }
        }
        for (const AffinityTerm& term : pod.required_anti_affinity) {
          if (TermMatches(term, pod.ns, *existing, ns_labels)) {
            CountPair(state.anti_affinity, *info->node(), term.topology_key, 1);
          }
        }
      }
    }
  }

  // Topology spread (DoNotSchedule): matching pods per domain, over the nodes the pod could go
  // to by its node affinity (and taints, when the constraint says so).
  for (const SpreadConstraint& c : pod.spread_constraints) {
    if (!c.do_not_schedule) continue;
    PreFilterState::Spread s;
    s.constraint = &c;
    s.self_match = c.selector.Matches(pod.labels);
    state.spread.push_back(std::move(s));
  }
  if (!state.spread.empty()) {
    for (const NodeInfo* info : cluster.nodes) {
      const NodeView& node = *info->node();
      if (!NodeHasAllSpreadKeys(node, state.spread)) continue;
      bool affinity_ok = MatchesNodeSelectorAndAffinity(pod, node);
      bool taints_ok = FirstUntoleratedTaint(pod, node) == nullptr;
      for (PreFilterState::Spread& s : state.spread) {
        if (s.constraint->honor_node_affinity && !affinity_ok) continue;
        if (s.constraint->honor_node_taints && !taints_ok) continue;
        int64_t matching = 0;
        for (const PodPtr& existing : info->pods()) {
          if (existing->ns == pod.ns && !existing->deleting &&
              s.constraint->selector.Matches(existing->labels)) {
            ++matching;
          }
        }
        s.counts[*node.labels.Find(s.constraint->topology_key)] += matching;
      }
    }
    for (PreFilterState::Spread& s : state.spread) {
      if (s.counts.empty() || static_cast<int64_t>(s.counts.size()) < s.constraint->min_domains) {
        s.min_match = 0;  // fewer domains than minDomains: the global minimum counts as zero
        continue;
      }
      int64_t min = std::numeric_limits<int64_t>::max();
      for (const auto& [value, count] : s.counts) min = std::min(min, count);
      s.min_match = min;
    }
  }
  return state;
}

FilterStatus FilterNodeUnschedulable(const PodView& pod, const NodeInfo& node) {
  if (!node.node()->unschedulable) return {};
  static const Taint kUnschedulable{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
  if (ToleratesAll(pod.tolerations, kUnschedulable)) return {};
  return FilterStatus::Fail(Code::kUnresolvable, kPluginNodeUnschedulable,
                            kReasonNodeUnschedulable);
}

FilterStatus FilterTaintToleration(const PodView& pod, const NodeInfo& node) {
  const Taint* taint = FirstUntoleratedTaint(pod, *node.node());
  if (!taint) return {};
  return FilterStatus::Fail(Code::kUnresolvable, kPluginTaintToleration,
                            UntoleratedTaintReason(*taint));
}

FilterStatus FilterNodeAffinity(const PodView& pod, const NodeInfo& node) {
  if (MatchesNodeSelectorAndAffinity(pod, *node.node())) return {};
  return FilterStatus::Fail(Code::kUnresolvable, kPluginNodeAffinity, kReasonNodeAffinity);
}

FilterStatus FilterNodePorts(const PodView& pod, const NodeInfo& node) {
  for (const HostPort& want : pod.host_ports) {
    for (const HostPort& used : node.used_ports()) {
      if (want.ConflictsWith(used)) {
        return FilterStatus::Fail(Code::kUnschedulable, kPluginNodePorts, kReasonNodePorts);
      }
    }
  }
  return {};
}

FilterStatus FilterNodeResourcesFit(const PodView& pod, const NodeInfo& node) {
  const NodeView& view = *node.node();
  FilterStatus status;
  auto fail = [&](std::string reason) {
    status.code = Code::kUnschedulable;
    status.plugin = kPluginNodeResourcesFit;
    status.reasons.push_back(std::move(reason));
  };
  if (static_cast<int64_t>(node.pods().size()) + 1 > view.allowed_pods) fail(kReasonTooManyPods);
  const Resources& want = pod.requests;
  const Resources& used = node.requested();
  const Resources& have = view.allocatable;
  if (want.milli_cpu > 0 && want.milli_cpu > have.milli_cpu - used.milli_cpu) {
    fail(InsufficientReason("cpu"));
  }
  if (want.memory > 0 && want.memory > have.memory - used.memory) {
    fail(InsufficientReason("memory"));
  }
  if (want.ephemeral_storage > 0 &&
      want.ephemeral_storage > have.ephemeral_storage - used.ephemeral_storage) {
    fail(InsufficientReason("ephemeral-storage"));
  }
  for (const auto& [name, amount] : want.scalars) {
    if (amount > 0 && amount > have.Scalar(name) - used.Scalar(name)) {
      fail(InsufficientReason(name));
    }
  }
  return status;
}

FilterStatus FilterPodTopologySpread(const PodView& /*pod*/, const PreFilterState& state,
                                     const NodeInfo& node) {
  for (const PreFilterState::Spread& s : state.spread) {
    const std::string* value = NodeLabel(node, s.constraint->topology_key);
    if (!value) {
      return FilterStatus::Fail(Code::kUnresolvable, kPluginPodTopologySpread,
                                kReasonSpreadMissingLabel);
    }
    auto it = s.counts.find(*value);
    int64_t count = it == s.counts.end() ? 0 : it->second;
    int64_t skew = count + (s.self_match ? 1 : 0) - s.min_match;
    if (skew > s.constraint->max_skew) {
      return FilterStatus::Fail(Code::kUnschedulable, kPluginPodTopologySpread, kReasonSpread);
    }
  }
  return {};
}

FilterStatus FilterInterPodAffinity(const PodView& pod, const PreFilterState& state,
                                    const NodeInfo& node) {
  // Required affinity: every term's topology must exist on the node and hold a matching pod;
  // the first pod of a group that selects itself may go anywhere while no pod matches yet.
  bool pods_exist = true;
  for (const AffinityTerm& term : pod.required_affinity) {
    const std::string* value = NodeLabel(node, term.topology_key);
    if (!value) {
      return FilterStatus::Fail(Code::kUnresolvable, kPluginInterPodAffinity, kReasonAffinity);
    }
    auto it = state.affinity.find({term.topology_key, *value});
    if (it == state.affinity.end() || it->second <= 0) pods_exist = false;
  }
  if (!pods_exist) {
    if (!state.affinity.empty() || !state.self_matches_affinity) {
      return FilterStatus::Fail(Code::kUnresolvable, kPluginInterPodAffinity, kReasonAffinity);
    }
  }
  for (const AffinityTerm& term : pod.required_anti_affinity) {
    const std::string* value = NodeLabel(node, term.topology_key);
    if (!value) continue;
    auto it = state.anti_affinity.find({term.topology_key, *value});
    if (it != state.anti_affinity.end() && it->second > 0) {
      return FilterStatus::Fail(Code::kUnschedulable, kPluginInterPodAffinity, kReasonAntiAffinity);
    }
  }
  for (const auto& [pair, count] : state.existing_anti_affinity) {
    if (count <= 0) continue;
    const std::string* value = NodeLabel(node, pair.first);
    if (value && *value == pair.second) {
      return FilterStatus::Fail(Code::kUnschedulable, kPluginInterPodAffinity,
                                kReasonExistingAntiAffinity);
    }
  }
  return {};
}

FilterStatus FilterVolumeBinding(const PreFilterState& state, const NodeInfo& node) {
  if (!state.volumes) return {};
  if (!state.volumes->unresolvable.empty()) {
    return FilterStatus::Fail(Code::kUnresolvable, kPluginVolumeBinding,
                              state.volumes->unresolvable);
  }
  const NodeView& view = *node.node();
  for (const NodeSelector& affinity : state.volumes->bound_affinity) {
    if (!affinity.Matches(view.labels, view.name)) {
      return FilterStatus::Fail(Code::kUnresolvable, kPluginVolumeBinding,
                                kReasonVolumeNodeAffinity);
    }
  }
  return {};
}

FilterStatus RunFilters(const PodView& pod, const PreFilterState& state, const NodeInfo& node) {
  FilterStatus s = FilterNodeUnschedulable(pod, node);
  if (!s.ok()) return s;
  s = FilterTaintToleration(pod, node);
  if (!s.ok()) return s;
  s = FilterNodeAffinity(pod, node);
  if (!s.ok()) return s;
  s = FilterNodePorts(pod, node);
  if (!s.ok()) return s;
  s = FilterNodeResourcesFit(pod, node);
  if (!s.ok()) return s;
  s = FilterVolumeBinding(state, node);
  if (!s.ok()) return s;
  s = FilterPodTopologySpread(pod, state, node);
  if (!s.ok()) return s;
  return FilterInterPodAffinity(pod, state, node);
}

std::string FormatFitError(size_t num_nodes, const std::vector<FilterStatus>& failures,
                           const std::string& post_filter) {
  std::map<std::string, int> histogram;
  for (const FilterStatus& f : failures) {
    for (const std::string& reason : f.reasons) ++histogram[reason];
  }
  // Upstream sorts the "<count> <reason>" strings themselves, count included.
  std::vector<std::string> parts;
  parts.reserve(histogram.size());
  for (const auto& [reason, count] : histogram)
    parts.push_back(fmt::format("{} {}", count, reason));
  std::sort(parts.begin(), parts.end());
  std::string message = fmt::format("0/{} nodes are available", num_nodes);
  message += ":";
  if (!parts.empty()) message += fmt::format(" {}.", fmt::join(parts, ", "));
  if (!post_filter.empty()) message += " " + post_filter;
  return message;
}

}  // namespace orch::sched
