// Node selectors, node affinity, taints and tolerations (include/orch/node_placement.h), with the
// semantics of the core/v1 helpers; one implementation for the scheduler and the DaemonSet
// controller.
#include "orch/node_placement.h"

#include <algorithm>
#include <charconv>

#include "orch/json_path.h"

namespace orch::placement {
namespace {

using nlohmann::json;

using json_path::Field;
using json_path::String;

std::vector<std::string> Strings(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

// Go's strconv.ParseInt(text, 10, 64), which takes a leading sign.
bool ParseInt64(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const char* begin = text.data();
  if (*begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::vector<NodeSelectorTerm::Requirement> ParseNodeRequirements(const json& list) {
  using Op = NodeSelectorTerm::Op;
  std::vector<NodeSelectorTerm::Requirement> out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    NodeSelectorTerm::Requirement r;
    r.key = String(item, "key");
    const std::string op = String(item, "operator");
    if (op == "In") {
      r.op = Op::kIn;
    } else if (op == "NotIn") {
      r.op = Op::kNotIn;
    } else if (op == "Exists") {
      r.op = Op::kExists;
    } else if (op == "DoesNotExist") {
      r.op = Op::kDoesNotExist;
    } else if (op == "Gt") {
      r.op = Op::kGt;
    } else if (op == "Lt") {
      r.op = Op::kLt;
    } else {
      r.op = Op::kInvalid;
    }
    r.values = Strings(Field(item, "values"));
    out.push_back(std::move(r));
  }
  return out;
}

bool RequirementMatches(const NodeSelectorTerm::Requirement& r, const std::string* value) {
  using Op = NodeSelectorTerm::Op;
  switch (r.op) {
    case Op::kIn:
      return value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
    case Op::kNotIn:
      return !value || std::find(r.values.begin(), r.values.end(), *value) == r.values.end();
    case Op::kExists:
      return value != nullptr;
    case Op::kDoesNotExist:
      return value == nullptr;
    case Op::kGt:
    case Op::kLt: {
      int64_t have = 0;
      int64_t want = 0;
      if (!value || r.values.size() != 1 || !ParseInt64(*value, &have) ||
          !ParseInt64(r.values[0], &want)) {
        return false;
      }
      return r.op == Op::kGt ? have > want : have < want;
    }
    case Op::kInvalid:
      return false;
  }
  return false;
}

}  // namespace

// ----- Labels -----

Labels Labels::FromJson(const json& map) {
  Labels out;
  if (!map.is_object()) return out;
  out.items_.reserve(map.size());
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it.value().is_string()) out.items_.emplace_back(it.key(), it.value().get<std::string>());
  }
  // nlohmann's object is a std::map: already sorted by key.
  return out;
}

Labels Labels::FromPairs(std::vector<std::pair<std::string, std::string>> pairs) {
  Labels out;
  out.items_ = std::move(pairs);
  std::sort(out.items_.begin(), out.items_.end());
  out.items_.erase(std::unique(out.items_.begin(), out.items_.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   out.items_.end());
  return out;
}

const std::string* Labels::Find(std::string_view key) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& item, std::string_view k) { return item.first < k; });
  if (it == items_.end() || it->first != key) return nullptr;
  return &it->second;
}

// ----- Node selectors -----

NodeSelectorTerm NodeSelectorTerm::FromJson(const json& term) {
  NodeSelectorTerm out;
  out.match_expressions = ParseNodeRequirements(Field(term, "matchExpressions"));
  out.match_fields = ParseNodeRequirements(Field(term, "matchFields"));
  return out;
}

bool NodeSelectorTerm::Matches(const Labels& node_labels, const std::string& node_name) const {
  if (match_expressions.empty() && match_fields.empty()) return false;
  for (const Requirement& r : match_expressions) {
    if (!RequirementMatches(r, node_labels.Find(r.key))) return false;
  }
  for (const Requirement& r : match_fields) {
    // metadata.name is the only field selectable, with In and NotIn.
    if (r.key != "metadata.name" || (r.op != Op::kIn && r.op != Op::kNotIn)) return false;
    if (!RequirementMatches(r, &node_name)) return false;
  }
  return true;
}

std::optional<NodeSelector> NodeSelector::FromJson(const json& node_selector) {
  const json& terms = Field(node_selector, "nodeSelectorTerms");
  if (!terms.is_array()) return std::nullopt;
  NodeSelector out;
  out.terms.reserve(terms.size());
  for (const json& term : terms) out.terms.push_back(NodeSelectorTerm::FromJson(term));
  return out;
}

bool NodeSelector::Matches(const Labels& node_labels, const std::string& node_name) const {
  for (const NodeSelectorTerm& term : terms) {
    if (term.Matches(node_labels, node_name)) return true;
  }
  return false;
}

NodeConstraints NodeConstraints::FromPodSpec(const json& pod_spec) {
  NodeConstraints out;
  out.node_selector = Labels::FromJson(Field(pod_spec, "nodeSelector"));
  out.required_affinity =
      NodeSelector::FromJson(Field(Field(Field(pod_spec, "affinity"), "nodeAffinity"),
                                   "requiredDuringSchedulingIgnoredDuringExecution"));
  return out;
}

bool NodeConstraints::Matches(const Labels& node_labels, const std::string& node_name) const {
  for (const auto& [key, value] : node_selector.items()) {
    const std::string* have = node_labels.Find(key);
    if (!have || *have != value) return false;
  }
  return !required_affinity || required_affinity->Matches(node_labels, node_name);
}

// ----- Taints and tolerations -----

Taint Taint::FromJson(const json& taint) {
  return {String(taint, "key"), String(taint, "value"), String(taint, "effect")};
}

Toleration Toleration::FromJson(const json& toleration) {
  Toleration out;
  out.key = String(toleration, "key");
  const std::string op = String(toleration, "operator");
  out.exists = op == "Exists";
  out.valid = op.empty() || op == "Exists" || op == "Equal";
  out.value = String(toleration, "value");
  out.effect = String(toleration, "effect");
  return out;
}

bool Toleration::Tolerates(const Taint& taint) const {
  if (!valid) return false;
  if (!effect.empty() && effect != taint.effect) return false;
  if (!key.empty() && key != taint.key) return false;
  if (exists) return true;
  return key == taint.key && value == taint.value;
}

std::vector<Taint> TaintsFromJson(const json& taints) {
  std::vector<Taint> out;
  if (!taints.is_array()) return out;
  out.reserve(taints.size());
  for (const json& t : taints) out.push_back(Taint::FromJson(t));
  return out;
}

std::vector<Toleration> TolerationsFromJson(const json& tolerations) {
  std::vector<Toleration> out;
  if (!tolerations.is_array()) return out;
  out.reserve(tolerations.size());
  for (const json& t : tolerations) out.push_back(Toleration::FromJson(t));
  return out;
}

bool ToleratesAll(const std::vector<Toleration>& tolerations, const Taint& taint) {
  for (const Toleration& t : tolerations) {
    if (t.Tolerates(taint)) return true;
  }
  return false;
}

const Taint* FirstUntoleratedTaint(const std::vector<Toleration>& tolerations,
                                   const std::vector<Taint>& taints) {
  for (const Taint& taint : taints) {
    if (taint.effect != "NoSchedule" && taint.effect != "NoExecute") continue;
    if (!ToleratesAll(tolerations, taint)) return &taint;
  }
  return nullptr;
}

}  // namespace orch::placement
