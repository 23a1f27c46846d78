// Label and field selectors (the labelSelector/fieldSelector query parameters and LabelSelector
// fields of objects), and the syntax checks of label keys, label values and DNS names, all with
// the semantics and error wording of k8s.io/apimachinery.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch::api {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Name and label syntax. Each returns upstream's messages (k8s.io/apimachinery/pkg/util/validation)
// for what is wrong, empty when the value is valid; callers prefix them with the field path.

// [prefix/]name: prefix a DNS-1123 subdomain, name at most 63 alphanumerics, '-', '_', '.'.
std::vector<std::string> IsQualifiedName(std::string_view value);
// Empty, or at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric.
std::vector<std::string> IsValidLabelValue(std::string_view value);
// [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters (namespaces, services, ports names).
std::vector<std::string> IsDns1123Label(std::string_view value);
// Dot-separated DNS-1123 labels, at most 253 characters (most object names).
std::vector<std::string> IsDns1123Subdomain(std::string_view value);
// [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters (service names).
std::vector<std::string> IsDns1035Label(std::string_view value);

// One finding of ValidateLabelSelector/ValidateLabels, shaped like upstream's field.Error so the
// REST layer can turn it into its own field error (422 causes).
struct SelectorFieldError {
  enum class Type { kRequired, kForbidden, kInvalid };
  Type type = Type::kInvalid;
  std::string field;   // spec.selector.matchExpressions[0].values
  json value;          // the offending value (kInvalid)
  std::string detail;  // upstream's explanation

  // Upstream's Error(): `spec.selector.matchLabels: Invalid value: "-x": a valid label must ...`.
  std::string ToString() const;
};

// metav1/validation.ValidateLabels: every key a qualified name, every value a label value.
std::vector<SelectorFieldError> ValidateLabels(const json& labels, const std::string& path);
// metav1/validation.ValidateLabelSelector for a LabelSelector object (matchLabels and
// matchExpressions) at `path`. A null selector is valid.
std::vector<SelectorFieldError> ValidateLabelSelector(const json& selector, const std::string& path,
                                                      bool allow_invalid_label_value = false);

// ---------------------------------------------------------------------------------------------
// Label selectors.

// A conjunction of requirements on an object's labels, built from the string form
// (`a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3`) or from a LabelSelector object. Immutable and
// thread-safe once built.
class LabelSelector {
 public:
  enum class Op {
    kIn,
    kNotIn,
    kEquals,
    kDoubleEquals,
    kNotEquals,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;  // sorted and unique for kIn/kNotIn
  };

  // Matches every object (an empty selector, labels.Everything()).
  LabelSelector() = default;
  // Matches no object (a null LabelSelector field, labels.Nothing()).
  static LabelSelector Nothing();

  // labels.Parse. Errors are InvalidArgument with upstream's text, e.g.
  // "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"; the REST
  // layer answers them with 400 BadRequest.
  static Result<LabelSelector> Parse(std::string_view text);
  // metav1.LabelSelectorAsSelector: null → Nothing, {} → Everything, else matchLabels and
  // matchExpressions (In, NotIn, Exists, DoesNotExist). Errors (InvalidArgument) as upstream's:
  // `"Foo" is not a valid label selector operator`, or the requirement's validation errors.
  static Result<LabelSelector> FromJson(const json& selector);
  // labels.SelectorFromSet: key=value for every entry of a label map (a service's selector);
  // no validation, as upstream does none. A null or empty map gives Everything.
  static LabelSelector FromMap(const json& labels);

  // Whether `labels` (an object of string values, or null for no labels) satisfies every
  // requirement.
  bool Matches(const json& labels) const;
  // True for Everything (no requirements).
  bool Empty() const { return !nothing_ && requirements_.empty(); }
  bool IsNothing() const { return nothing_; }
  // The canonical string form (requirements sorted by key), "" for Everything and Nothing.
  std::string String() const;
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
  bool nothing_ = false;
};

// metav1.FormatLabelSelector: the selector's string, "<none>" when empty or null, "<error>" when
// the object is invalid. Used by table cells.
std::string FormatLabelSelector(const json& selector);
// labels.FormatLabels: sorted "k=v,k2=v2", "<none>" when empty. Used by table cells.
std::string FormatLabels(const json& labels);

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
