// Builds SchemaSets: from the project's schema files (schema/README.md, compiled into the binary)
// and from a CustomResourceDefinition's openAPIV3Schema, with upstream's structural-schema check.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"
#include "schema.h"

namespace orch::api {

// One schema file: its name (for error messages, e.g. "apps_v1.schema") and its text.
struct SchemaFile {
  std::string name;
  std::string_view text;  // only read during the call
};

// Parses `files` (format: src/apiserver/schema/README.md) into a new, complete SchemaSet: every
// field resolved (references may cross files and point forward), `<Kind>List` derived for every
// kind whose type has `metadata` of type ObjectMeta. Errors are InvalidArgument with one `file:line: what` per
// problem (at most 20), e.g. `core_v1.schema:12: unknown type "PodSpek"`.
Result<std::unique_ptr<SchemaSet>> LoadSchemas(const std::vector<SchemaFile>& files);

// The *.schema files embedded at build time, in name order.
std::vector<SchemaFile> BuiltinSchemaFiles();

// LoadSchemas(BuiltinSchemaFiles()). Runs at every server start; a few milliseconds.
Result<std::unique_ptr<SchemaSet>> LoadBuiltinSchemas();

// Converts a CRD's openAPIV3Schema (JSONSchemaProps as JSON) into unnamed nodes owned by `into`
// and returns the root. Understands type, properties, items, additionalProperties (bool or
// schema), required, enum, default, nullable, format, minimum/maximum/exclusive*, min/maxLength,
// pattern, min/maxItems, uniqueItems, min/maxProperties, allOf/anyOf/oneOf/not and the
// x-kubernetes-* extensions. InvalidArgument when the input is not a schema at all (wrong JSON
// types); structural problems are ValidateStructuralSchema's job and do not fail the conversion.
Result<const Schema*> SchemaFromOpenApiV3(const json& open_api_v3_schema, SchemaSet& into);

// Upstream's structural-schema rules (the main ones): every node has a type unless it is
// int-or-string or preserves unknown fields; arrays have items; the root is an object without
// additionalProperties; properties and additionalProperties exclude each other; embedded
// resources are objects; value validations (allOf/anyOf/oneOf/not) do not declare types,
// defaults, descriptions, nullable or x-kubernetes-* extensions; root metadata may only restrict
// name and generateName; patterns compile. Messages as upstream, paths under `path` (e.g.
// "spec.versions[0].schema.openAPIV3Schema"); empty when the schema is structural.
std::vector<FieldError> ValidateStructuralSchema(const json& open_api_v3_schema,
                                                 const std::string& path);

// Converts `open_api_v3_schema` as SchemaFromOpenApiV3 does and registers it in `into` as the
// kind group/version/kind, named like upstream's published CRD schemas (reversed group, then
// version and kind: com.example.stable.v1.CronTab). The root (and every embedded resource) gets
// apiVersion, kind and metadata (ObjectMeta from `builtins`, when given) as upstream treats them
// implicitly; `<Kind>List` is registered too. Returns the kind's schema.
Result<const Schema*> AddCustomResourceSchema(SchemaSet& into, const json& open_api_v3_schema,
                                              const std::string& group, const std::string& version,
                                              const std::string& kind, const SchemaSet* builtins);

}  // namespace orch::api
