// Field selectors (the fieldSelector query parameter): the grammar of k8s.io/apimachinery and the
// field labels each kind accepts. Label selectors and name syntax are in orch/labels.h.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/labels.h"
#include "orch/status.h"

namespace orch::api {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Field selectors.

// The field paths one kind can be selected by: which labels the API accepts (upstream's field
// label conversion for the kind, with its own rejection message) and the value each has on an
// object (upstream's ToSelectableFields). Immutable once built.
class FieldRules {
 public:
  // Returns the value of a canonical field of `object`, "" when absent.
  using Extractor = std::function<std::string(const json& object)>;

  // Accepts `label` as `canonical` (aliases such as pods' spec.host → spec.nodeName).
  FieldRules& Accept(const std::string& label, const std::string& canonical, Extractor value);
  FieldRules& Accept(const std::string& label, Extractor value) {
    return Accept(label, label, std::move(value));
  }
  // Accepts `label` whose value no object has (upstream accepts some labels it never sets).
  FieldRules& AcceptUnset(const std::string& label);
  // The message for an unsupported label.
  FieldRules& Reject(std::function<std::string(const std::string& label)> message);

  // The canonical label, or the upstream error message for an unsupported one.
  Result<std::string> Convert(const std::string& label) const;
  // The object's value of a canonical label ("" when absent).
  std::string Value(const json& object, const std::string& canonical) const;

 private:
  std::map<std::string, std::string> aliases_;   // accepted label → canonical
  std::map<std::string, Extractor> extractors_;  // canonical → value
  std::function<std::string(const std::string&)> reject_;
};

// The rules of a built-in resource (plural name and API group, "" for core), e.g. pods accept
// spec.nodeName and status.phase. Resources without rules of their own accept metadata.name and
// metadata.namespace with upstream's `"foo" is not a known field selector: only
// "metadata.name", "metadata.namespace"`. The returned rules live for the whole process.
std::shared_ptr<const FieldRules> BuiltinFieldRules(std::string_view group,
                                                    std::string_view resource);
// The rules of a custom resource: metadata.name, metadata.namespace when namespaced, and the
// CRD version's selectableFields (JSONPaths such as ".spec.color"), with upstream's
// "field label not supported: foo".
std::shared_ptr<const FieldRules> CustomResourceFieldRules(
    bool namespaced, const std::vector<std::string>& selectable_fields);

// A conjunction of `field=value`, `field==value` and `field!=value` terms, matched against
// objects through the FieldRules it was parsed with. Immutable and thread-safe once built.
class FieldSelector {
 public:
  enum class Op { kEquals, kNotEquals };
  struct Requirement {
    std::string field;  // canonical label
    Op op = Op::kEquals;
    std::string value;  // unescaped
  };

  // Matches everything.
  FieldSelector() = default;

  // fields.ParseSelector plus the kind's field label conversion, as the API server applies them
  // to ?fieldSelector=. Errors (InvalidArgument, answered 400) in upstream's words:
  // "invalid selector: 'a'; can't understand 'a'", "invalid field selector: invalid escape
  // sequence: \x", "field label not supported: foo", ... With null `rules` only the syntax is
  // checked and fields are read from the object by their dotted path.
  static Result<FieldSelector> Parse(std::string_view text,
                                     std::shared_ptr<const FieldRules> rules);

  bool Matches(const json& object) const;
  bool Empty() const { return requirements_.empty(); }
  // The value a selector pins `field` to with `=`/`==` (metadata.name for a single-object watch).
  std::optional<std::string> RequiresExactMatch(const std::string& field) const;
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
  std::shared_ptr<const FieldRules> rules_;
};

// fields.EscapeValue: backslash-escapes '\', ',' and '=' for use as a field selector value.
std::string EscapeFieldValue(std::string_view value);

}  // namespace orch::api
