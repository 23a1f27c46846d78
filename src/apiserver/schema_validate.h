// Checks and completes API objects against their schema: unknown fields and decode-type errors
// (fieldValidation), CRD value validation, pruning and structural defaulting.
//
// Upstream's order for a write, which callers follow:
//   built-in kinds: ValidateFields (decode) -> ApplyDefaults -> per-kind validation
//   custom resources: ValidateFields (custom_resource) -> Prune -> ApplyDefaults -> ValidateValues
// All functions are pure functions of their arguments (thread-safe on distinct objects) and
// never throw.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"
#include "schema.h"

namespace orch::api {

// A `pattern` of a schema: Go's RE2 syntax (literals, `.`, classes with ranges, negation, \d \w
// \s and POSIX [:name:] classes, escapes, `^` `$` `\A` `\z` `\b` `\B`, groups `(...)`
// `(?:...)` `(?P<n>...)`, alternation, `* + ? {n} {n,} {n,m}`, flags i s m), matched in time
// linear in the text like RE2, never recursing per character: a long value cannot exhaust the
// stack. Backreferences and lookaround are rejected, as RE2 rejects them. Immutable, thread-safe.
class Pattern {
 public:
  // InvalidArgument "error parsing regexp: <why>: `<where>`" for bad syntax.
  static Result<Pattern> Compile(std::string_view pattern);
  // Go's regexp.MatchString: whether the pattern matches anywhere in `text` (UTF-8).
  bool Search(std::string_view text) const;

  struct Program;  // the compiled NFA (schema_validate.cpp)

 private:
  explicit Pattern(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const Program> program_;
};

// The fieldValidation query parameter.
enum class ValidationMode {
  kIgnore,  // unknown fields are dropped silently
  kWarn,    // one `Warning:` per unknown field (upstream's default when the parameter is absent)
  kStrict,  // unknown fields fail the request (400, "strict decoding error: ...")
};

// Parses "Ignore" | "Warn" | "Strict"; "" is kWarn. Anything else is InvalidArgument with
// upstream's field error text for the parameter.
Result<ValidationMode> ParseValidationMode(std::string_view value);

// What decoding an object against its schema found.
struct FieldCheck {
  // Paths of unknown fields as upstream prints them: "spec.foo", "spec.containers[0].foo",
  // "metadata.labels" is never one (maps accept any key). Empty in kIgnore mode.
  std::vector<std::string> unknown_fields;
  // Built-in kinds: values of the wrong JSON type, in the Go decoder's wording, e.g.
  // `json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type
  // int32`. Upstream stops at the first; the first here is the one to report (400 BadRequest,
  // after "<Kind> in version \"v1\" cannot be handled as a <Kind>: ").
  std::vector<std::string> type_errors;
  // kWarn: the warning texts, `unknown field "spec.foo"`, one per unknown field.
  std::vector<std::string> warnings;

  // kStrict: "strict decoding error: unknown field \"spec.foo\", unknown field \"spec.bar\"";
  // "" when there is no unknown field.
  std::string StrictError() const;
};

struct FieldCheckOptions {
  // CRD semantics: values of the wrong type are not decode errors but value-validation errors
  // (ValidateValues reports them after defaulting, as upstream does).
  bool custom_resource = false;
};

// Walks `obj` along `schema`: fields the schema does not declare (except under preserve-unknown
// nodes, `any` fields, maps, and apiVersion/kind/metadata of embedded resources) and, for
// built-in kinds, values whose JSON type cannot decode into the field. `metadata` is checked
// against ObjectMeta like any other field. Duplicate fields are invisible after JSON parsing
// and are not reported.
FieldCheck ValidateFields(const json& obj, const Schema& schema, ValidationMode mode,
                          const FieldCheckOptions& options = {});

// Value validation of custom resources, as the apiextensions validator reports it: wrong types
// (FieldValueTypeInvalid), enum (FieldValueNotSupported), required (FieldValueRequired),
// minimum/maximum, min/maxLength, pattern, min/maxItems, uniqueItems, min/maxProperties,
// allOf/anyOf/oneOf/not (FieldValueInvalid, FieldValueTooLong, FieldValueTooMany). Messages like
// `Invalid value: 0: spec.replicas in body should be greater than or equal to 1`. Appends to
// `errors`. Built-in kinds may use it too; their upstream messages come from hand-written
// validation and differ.
void ValidateValues(const json& obj, const Schema& schema, std::vector<FieldError>& errors);

// Drops the fields ValidateFields reports as unknown (custom resources store only what their
// schema declares) and returns their paths. Also drops `null` values of fields that are not
// nullable (upstream prunes them, or defaulting replaces them): those are not listed.
std::vector<std::string> Prune(json& obj, const Schema& schema);

// Upstream's structural defaulting: a field with a default that is absent (or null and not
// nullable) in a present object gets a copy of the default; then defaulting continues into
// every field, list item and map value, so `default={}` on an object creates it and then its
// own fields are defaulted.
void ApplyDefaults(json& obj, const Schema& schema);

}  // namespace orch::api
