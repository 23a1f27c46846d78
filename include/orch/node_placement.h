// Where a pod may run, typed: node labels, node selectors and required node affinity, taints and
// tolerations with upstream's semantics, shared by the scheduler and the DaemonSet controller.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orch::placement {

// Labels as a vector sorted by key: objects carry a handful, and a scan of a few contiguous
// entries is cheaper than a tree or hash lookup. Immutable once built; safe to share.
class Labels {
 public:
  Labels() = default;
  // An object of string values (metadata.labels, nodeSelector); other values are skipped.
  static Labels FromJson(const nlohmann::json& map);
  static Labels FromPairs(std::vector<std::pair<std::string, std::string>> pairs);

  // The value of `key`, or null when absent.
  const std::string* Find(std::string_view key) const;
  bool empty() const { return items_.empty(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  bool operator==(const Labels& other) const { return items_ == other.items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// A v1.NodeSelectorTerm: matchExpressions on labels (In, NotIn, Exists, DoesNotExist, Gt, Lt)
// AND matchFields on metadata.name (In, NotIn). A term with neither matches no node; an unknown
// operator or field matches nothing.
struct NodeSelectorTerm {
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt, kInvalid };
  struct Requirement {
    std::string key;
    Op op = Op::kIn;
    std::vector<std::string> values;
  };
  std::vector<Requirement> match_expressions;
  std::vector<Requirement> match_fields;

  static NodeSelectorTerm FromJson(const nlohmann::json& term);
  bool Matches(const Labels& node_labels, const std::string& node_name) const;
};

// A v1.NodeSelector (a required node affinity): the node must match one of the terms.
struct NodeSelector {
  std::vector<NodeSelectorTerm> terms;

  // From {"nodeSelectorTerms": [...]}; nullopt when that list is absent.
  static std::optional<NodeSelector> FromJson(const nlohmann::json& node_selector);
  bool Matches(const Labels& node_labels, const std::string& node_name) const;
};

// A pod spec's node constraints: spec.nodeSelector (every label equal) and
// spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.
struct NodeConstraints {
  Labels node_selector;
  std::optional<NodeSelector> required_affinity;

  static NodeConstraints FromPodSpec(const nlohmann::json& pod_spec);
  bool Matches(const Labels& node_labels, const std::string& node_name) const;
};

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute

  static Taint FromJson(const nlohmann::json& taint);
};

struct Toleration {
  std::string key;      // empty with Exists: every key
  bool exists = false;  // operator Exists (else Equal)
  std::string value;
  std::string effect;  // empty: every effect
  bool valid = true;   // false for an operator other than Equal, Exists or none

  static Toleration FromJson(const nlohmann::json& toleration);
  // Upstream's ToleratesTaint.
  bool Tolerates(const Taint& taint) const;
};

// spec.taints of a node, spec.tolerations of a pod (non-arrays read as empty).
std::vector<Taint> TaintsFromJson(const nlohmann::json& taints);
std::vector<Toleration> TolerationsFromJson(const nlohmann::json& tolerations);

// Whether one of `tolerations` tolerates `taint`.
bool ToleratesAll(const std::vector<Toleration>& tolerations, const Taint& taint);

// The first of `taints` with effect NoSchedule or NoExecute that no toleration tolerates (what
// keeps a pod off a node), or null.
const Taint* FirstUntoleratedTaint(const std::vector<Toleration>& tolerations,
                                   const std::vector<Taint>& taints);

}  // namespace orch::placement
