// Server-side tables for `kubectl get` (Accept: application/json;as=Table;v=v1;g=meta.k8s.io):
// upstream's columns and cell logic per kind, CRD additionalPrinterColumns, and the human
// durations of AGE cells.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch::api {

using json = nlohmann::json;

// What each row carries besides its cells (the includeObject query parameter).
enum class IncludeObject {
  kNone,      // "object": null
  kMetadata,  // a PartialObjectMetadata (kubectl's default)
  kObject,    // the whole object
};

// "" and "Metadata" → kMetadata, "Object", "None"; anything else is InvalidArgument with
// upstream's `unrecognized includeObject value: "x"` (answered 400).
Result<IncludeObject> ParseIncludeObject(std::string_view value);

// The Table of `objects` of a built-in resource (plural, e.g. "pods"; group "" for core):
// {"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"columnDefinitions":[...],
//  "rows":[{"cells":[...],"object":...}]}. Columns and cells are those of upstream's printers
// (k8s.io/kubernetes/pkg/printers/internalversion, 1.32), always with the `-o wide` columns
// (priority 1), as the API server generates them. Resources upstream prints with its default
// convertor (roles, limitranges, ...) get NAME and CREATED AT; resources unknown here get NAME
// and AGE. `now` is the clock AGE cells are computed against. The caller sets
// metadata.resourceVersion/continue. Objects must be JSON objects (InvalidArgument otherwise).
Result<json> BuildTable(const std::string& resource, const std::string& group,
                        const std::vector<const json*>& objects, IncludeObject include,
                        std::chrono::system_clock::time_point now);

// The Table of custom resources, from the served CRD version's additionalPrinterColumns (a JSON
// array of {name,type,format,description,priority,jsonPath}; null or empty gives NAME and AGE,
// as upstream defaults). A column whose jsonPath does not parse ends the column list there, as
// upstream falls back to the columns before it.
Result<json> BuildCustomResourceTable(const json& printer_columns,
                                      const std::vector<const json*>& objects,
                                      IncludeObject include,
                                      std::chrono::system_clock::time_point now);

// duration.HumanDuration: "5s", "3m2s", "10m", "5h", "2d3h", "45d", "3y"; "0s" for slightly
// negative durations (clock skew) and "<invalid>" below -1s.
std::string HumanDuration(std::chrono::nanoseconds d);

// The subset of client-go's JSONPath that printer columns use: `.a.b`, `['a.b']`, `[0]`, `[-1]`,
// `[*]`, `.*` and filters `[?(@.type=="Ready")]` (==, !=, <, <=, >, >= against a string or
// number, or `[?(@.x)]` for presence). Missing keys yield no result.
class JsonPath {
 public:
  // Parses an expression such as `.status.conditions[?(@.type=="Ready")].status` (with or
  // without surrounding braces). InvalidArgument when it is not understood.
  static Result<JsonPath> Parse(std::string_view expression);
  // The values the path selects in `root`, in document order; pointers into `root`.
  std::vector<const json*> Find(const json& root) const;

  struct Step;  // defined in tables.cpp

 private:
  std::vector<std::shared_ptr<const Step>> steps_;
};

}  // namespace orch::api
