// Label selectors (the labelSelector query parameter and the LabelSelector fields of objects) and
// the syntax of label keys, label values and DNS names, with the semantics and error wording of
// k8s.io/apimachinery, shared by the API server, scheduler, controllers, agent and CLI.
#pragma once

#include <concepts>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch {

// ---------------------------------------------------------------------------------------------
// Name and label syntax. Each returns upstream's messages (k8s.io/apimachinery/pkg/util/validation)
// for what is wrong, empty when the value is valid; callers prefix them with the field path.
// All are pure functions, safe from any thread.

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
  std::string field;     // spec.selector.matchExpressions[0].values
  nlohmann::json value;  // the offending value (kInvalid)
  std::string detail;    // upstream's explanation

  // Upstream's Error(): `spec.selector.matchLabels: Invalid value: "-x": a valid label must ...`.
  std::string ToString() const;
};

// metav1/validation.ValidateLabels: every key a qualified name, every value a label value.
// Anything but an object has no findings.
std::vector<SelectorFieldError> ValidateLabels(const nlohmann::json& labels,
                                               const std::string& path);
// metav1/validation.ValidateLabelSelector for a LabelSelector object (matchLabels and
// matchExpressions) at `path`. A null selector is valid.
std::vector<SelectorFieldError> ValidateLabelSelector(const nlohmann::json& selector,
                                                      const std::string& path,
                                                      bool allow_invalid_label_value = false);

// ---------------------------------------------------------------------------------------------
// Label selectors.

// A conjunction of requirements on an object's labels, built from the string form
// (`a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3`) or from a LabelSelector object. A value type:
// copyable, immutable and thread-safe once built.
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

    // Whether a label with `value` (null when the label is absent) satisfies the requirement.
    bool Matches(const std::string* value) const;
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
  static Result<LabelSelector> FromJson(const nlohmann::json& selector);
  // labels.SelectorFromSet: key=value for every entry of a label map (a service's selector);
  // no validation, as upstream does none. A null or empty map gives Everything.
  static LabelSelector FromMap(const nlohmann::json& labels);

  // Whether `labels` (an object of string values, or null for no labels) satisfies every
  // requirement.
  bool Matches(const nlohmann::json& labels) const;
  // The same against any label source with `const std::string* Find(std::string_view) const`
  // (null when absent), such as the scheduler's parsed label vectors.
  template <typename LabelSource>
  requires requires(const LabelSource& source, std::string_view key) {
    { source.Find(key) } -> std::convertible_to<const std::string*>;
  }
  bool Matches(const LabelSource& labels) const {
    if (nothing_) return false;
    for (const Requirement& r : requirements_) {
      if (!r.Matches(labels.Find(r.key))) return false;
    }
    return true;
  }
  // Adds a requirement (the scheduler's matchLabelKeys); Nothing stays Nothing.
  void Add(Requirement requirement) { requirements_.push_back(std::move(requirement)); }
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
std::string FormatLabelSelector(const nlohmann::json& selector);
// labels.FormatLabels: sorted "k=v,k2=v2", "<none>" when empty. Used by table cells.
std::string FormatLabels(const nlohmann::json& labels);

}  // namespace orch
