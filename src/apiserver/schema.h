// The schema model of API objects: one tree of Schema nodes per named type, built from the
// project's schema files (schema/*.schema, built-in kinds) or from a CRD's openAPIV3Schema.
// The same model drives validation, defaulting, strategic-merge keys, apply and OpenAPI.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "orch/go_strconv.h"
#include "orch/status.h"

namespace orch::api {

using json = nlohmann::json;

struct Schema;

// One field of an object type. The description is the field's own (it differs from the
// description of the type the field refers to).
struct Property {
  std::string name;
  std::string description;
  const Schema* schema = nullptr;  // never null once a SchemaSet is complete
  // Kubernetes protobuf (generated.proto): the field's number in its message, 0 when the field
  // is not on the wire (apiVersion/kind of kinds, CRD schemas). When proto_inline is set the
  // field belongs to a Go struct embedded inline, which travels as the message field
  // proto_inline of the parent (e.g. Volume's VolumeSource, 2) holding field proto_field.
  int32_t proto_field = 0;
  int32_t proto_inline = 0;
  // A zero scalar on the wire means unset (Go: non-pointer field with omitempty) and is left
  // out of the JSON; otherwise zero values are kept (pointers, fields without omitempty).
  bool proto_omit_zero = false;
};

// A node of a schema tree. Named nodes (`name` set) are the types of the schema files or of
// OpenAPI's components; unnamed nodes are inline (primitives, arrays, maps, CRD sub-schemas).
// How the special values are represented (readers branch on these):
//   int-or-string: type kAny, int_or_string = true, format "int-or-string"
//   quantity:      type kString, format "quantity" (JSON numbers are valid too)
//   time / bytes:  type kString, format "date-time" / "byte"
//   any (JSON):    type kAny, preserve_unknown_fields = true
//   map[T]:        type kObject, additional_properties = T, no properties
// Primitive nodes without attributes are shared by every field that uses them.
struct Schema {
  enum class Type { kAny, kObject, kArray, kString, kInteger, kNumber, kBoolean };
  enum class ListType { kNone, kAtomic, kSet, kMap };  // x-kubernetes-list-type (kNone = unset)

  Type type = Type::kAny;
  std::string name;  // full type name, e.g. io.k8s.api.core.v1.PodSpec; empty if inline
  // Set on an unnamed per-field copy of the named type `ref`, made because the field adds its
  // own attributes (default, patch strategy, nullable, ...). The copy carries everything of `ref`
  // (properties, items, ...) so readers never need to follow it; OpenAPI writes such a field as
  // `allOf: [{$ref}]` plus the field's attributes, as upstream does.
  const Schema* ref = nullptr;
  std::string format;       // int32, int64, double, date-time, byte, int-or-string, quantity, ...
  std::string description;  // the type's own description

  // Objects. `properties` keeps declaration order (OpenAPI output, tables, explain).
  std::vector<Property> properties;
  const Schema* additional_properties = nullptr;  // maps: the schema of every value
  std::vector<std::string> required;
  bool preserve_unknown_fields = false;  // x-kubernetes-preserve-unknown-fields / type `any`
  bool embedded_resource = false;        // x-kubernetes-embedded-resource
  std::string map_type;                  // x-kubernetes-map-type: "" | "atomic" | "granular"

  // Arrays.
  const Schema* items = nullptr;
  ListType list_type = ListType::kNone;
  std::vector<std::string> list_map_keys;  // x-kubernetes-list-map-keys
  std::string patch_merge_key;             // x-kubernetes-patch-merge-key
  std::string patch_strategy;              // x-kubernetes-patch-strategy: merge, retainKeys, ...

  // Scalars and value constraints.
  bool int_or_string = false;  // x-kubernetes-int-or-string (also set for format int-or-string)
  bool nullable = false;
  std::vector<json> enum_values;
  std::optional<json> default_value;
  std::optional<double> minimum, maximum;
  bool exclusive_minimum = false, exclusive_maximum = false;
  std::optional<int64_t> min_length, max_length, min_items, max_items, min_properties,
      max_properties;
  std::string pattern;
  bool unique_items = false;
  // Only in CRD schemas (value validation, never structural): allOf/anyOf/oneOf/not.
  std::vector<const Schema*> all_of, any_of, one_of;
  const Schema* not_schema = nullptr;

  // Kinds this named type is the top-level schema of (x-kubernetes-group-version-kind).
  struct GroupVersionKind {
    std::string group, version, kind;
  };
  std::vector<GroupVersionKind> gvks;

  const Property* FindProperty(const std::string& field) const;
  // The named type this node is (name) or is a per-field copy of (ref->name); "" when inline.
  const std::string& TypeName() const { return ref != nullptr ? ref->name : name; }
  // True when the node accepts fields it does not declare (preserve-unknown-fields, `any`).
  bool KeepsUnknownFields() const { return preserve_unknown_fields || type == Type::kAny; }
};

// "object", "array", "string", "integer", "number", "boolean", or "" for kAny.
const char* SchemaTypeName(Schema::Type type);

// One field-level validation failure, shaped like upstream's field.Error so that the REST layer
// can answer 422 Invalid with `details.causes` and the message kubectl prints.
struct FieldError {
  std::string reason;   // FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
  std::string field;    // spec.replicas, spec.containers[0].name
  std::string message;  // the body: `Invalid value: 0: spec.replicas in body should be ...`

  // "spec.replicas: Invalid value: 0: ..." (upstream's Error()).
  std::string ToString() const { return field.empty() ? message : field + ": " + message; }
  // {"reason":..., "message":..., "field":...} for Status.details.causes.
  json ToCause() const { return {{"reason", reason}, {"message", message}, {"field", field}}; }
};

// Builders of FieldErrors with upstream's wording (k8s.io/apimachinery/pkg/util/validation/field).
// Values print as Go prints them: strings quoted, numbers bare, objects as compact JSON.
FieldError FieldRequired(std::string field, const std::string& detail = "");
FieldError FieldForbidden(std::string field, const std::string& detail);
FieldError FieldInvalid(std::string field, const json& value, const std::string& detail);
FieldError FieldTypeInvalid(std::string field, const json& value, const std::string& detail);
FieldError FieldNotSupported(std::string field, const json& value,
                             const std::vector<std::string>& supported);
FieldError FieldTooMany(std::string field, int64_t actual, int64_t max);
FieldError FieldTooLong(std::string field, int64_t max_length);
// Go's strconv.Quote ("a\"b" for a"b) and fmt's %v of a JSON value (1, 1.5, 1e+21, "x" unquoted).
using orch::GoQuote;
std::string GoFormat(const json& value);

// Owns schema nodes and indexes named types and kinds. Read-only (and so thread-safe) once
// built; a CRD gets a SchemaSet of its own.
class SchemaSet {
 public:
  SchemaSet() = default;
  SchemaSet(const SchemaSet&) = delete;
  SchemaSet& operator=(const SchemaSet&) = delete;

  // Creates a node owned by this set.
  Schema* New();
  // Registers a named node (name must be set and unique) and indexes its gvks, which must be
  // set before. Returns it for chaining.
  Schema* AddNamed(Schema* schema);

  const Schema* Find(const std::string& full_name) const;
  // The top-level schema of a kind, e.g. ("apps", "v1", "Deployment"); core group is "".
  const Schema* FindKind(const std::string& group, const std::string& version,
                         const std::string& kind) const;
  const std::map<std::string, const Schema*>& named() const { return named_; }
  size_t node_count() const { return nodes_.size(); }

 private:
  using GvkKey = std::tuple<std::string, std::string, std::string>;
  std::vector<std::unique_ptr<Schema>> nodes_;
  std::map<std::string, const Schema*> named_;
  std::map<GvkKey, const Schema*> kinds_;  // (group, version, kind) -> top-level schema
};

}  // namespace orch::api
