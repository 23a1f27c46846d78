// PATCH semantics of the API server as pure functions on JSON: JSON patch (RFC 6902), JSON merge
// patch (RFC 7386) and strategic merge patch, each behaving as upstream's PATCH handler does.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/go_strconv.h"
#include "orch/status.h"
#include "schema.h"

namespace orch::api {

using json = nlohmann::json;

// The four PATCH content types of Kubernetes (server-side apply lives in apply.h).
enum class PatchType { kJsonPatch, kMergePatch, kStrategicMergePatch, kApplyPatch };

// "application/json-patch+json" → kJsonPatch, "application/merge-patch+json" → kMergePatch,
// "application/strategic-merge-patch+json" → kStrategicMergePatch, "application/apply-patch+yaml"
// → kApplyPatch; parameters after ';' are ignored. nullopt for anything else: answer 415 with
// UnsupportedPatchTypeMessage().
std::optional<PatchType> PatchTypeFromContentType(std::string_view content_type);
std::string_view ContentTypeOf(PatchType type);

// Upstream's 415 message, listing the types the resource accepts.
std::string UnsupportedPatchTypeMessage(bool custom_resource);

// Custom resources accept every patch type but strategic merge patch (there are no patch
// strategies in a CRD schema). A failure here is answered 415 UnsupportedMediaType with the
// Status message.
Status CheckPatchTypeSupported(PatchType type, bool custom_resource);

// Documents and patches nested deeper than this are refused (kInvalidArgument) instead of
// recursing without bound.
inline constexpr int kMaxPatchDepth = 100;
// Upstream's limits for JSON patches: operations per patch (413) and bytes added by `copy`.
inline constexpr size_t kMaxJsonPatchOperations = 10000;
inline constexpr size_t kMaxJsonPatchCopyBytes = 3 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386, evanphx/json-patch's MergePatch as the API server uses it).
//
// `null` in the patch deletes, objects merge recursively, everything else replaces. Nulls are
// pruned from values that are added. The patch must be a JSON object.
// Failures are kInvalidArgument, answered 400 BadRequest ("Invalid JSON Patch").
Result<json> MergePatch(const json& doc, const json& patch);

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902), in two steps because upstream answers them differently:
//
//   DecodeJsonPatch: the body must be an array of objects. kInvalidArgument → 400 BadRequest;
//     more than kMaxJsonPatchOperations → kTooLarge → 413 RequestEntityTooLarge.
//   ApplyJsonPatch: runs the operations in order on a copy of `doc`; every failure (a failed
//     `test`, a missing path, a bad index, an unknown op) is answered 422 Unprocessable Entity
//     with the Status message, which follows evanphx/json-patch v4 word for word
//     ("testing value /spec/replicas failed: test failed").
//
// Semantics follow the v4 library the API server links: negative array indices count from the
// end, `replace` of a missing object member adds it, `-` appends, `~1` and `~0` are unescaped.
struct JsonPatch {
  std::vector<json> operations;  // each a JSON object, or null (which fails at apply time)
};
Result<JsonPatch> DecodeJsonPatch(const json& body);
Result<json> ApplyJsonPatch(const json& doc, const JsonPatch& patch);

// ---------------------------------------------------------------------------------------------
// Strategic merge patch, driven by the schema of the object's kind (`schema` is its top-level
// node). What `kubectl apply` (client-side) and `kubectl patch --type strategic` send:
//
//   - maps merge, `null` deletes a field;
//   - lists whose schema has patch_strategy containing "merge" merge: lists of objects by
//     patch_merge_key (containers by name, ports by containerPort, ...), lists of scalars as
//     sets (finalizers); every other list is replaced;
//   - new items go first, unless `$setElementOrder/<list>` gives the order;
//   - `$patch: replace` (map or list item: replace the whole map/list), `$patch: delete` (list
//     item: delete by merge key; map: empty it), `$retainKeys` (keep only these keys),
//     `$deleteFromPrimitiveList/<list>` (remove scalars from a merged scalar list).
//
// A nullptr schema means a custom resource: refused (see CheckPatchTypeSupported). Subtrees
// without schema merge as maps and replace lists. Errors as upstream's handler answers them:
//   kInvalidArgument → 400 BadRequest, except IsUnprocessablePatchError(status) → 422;
//   kInternal → 500 (upstream returns those errors unwrapped, e.g. "map: map[image:nginx] does
//   not contain declared merge key: name"; kubectl prints "Error from server: <message>").
Result<json> StrategicMergePatch(const json& original, const json& patch, const Schema* schema);

// True for the strategic merge patch errors upstream answers 422 ("lists of lists are not
// supported", "patch content doesn't match retainKeys list").
bool IsUnprocessablePatchError(const Status& status);

// Helpers shared with server-side apply (apply.cpp): limits, and values printed as upstream's
// Go code prints them in messages.
namespace patch_util {
// kInvalidArgument when `value` nests deeper than `max_depth` (checked without recursion).
Status CheckDepth(const json& value, int max_depth, std::string_view what);
// encoding/json's name of a JSON type in "cannot unmarshal X": object, array, string, number,
// bool.
const char* JsonTypeName(const json& value);
// strconv.Quote: "a\"b".
using orch::GoQuote;
// fmt's %v of a decoded JSON value: map[a:1 b:[x y]], strings bare, <nil> for null.
std::string GoFormat(const json& value);
// encoding/json's compact encoding (keys sorted, <>& escaped as \u003c...).
std::string GoJson(const json& value);
// True when `value` is the string `s`.
bool IsString(const json& value, std::string_view s);
}  // namespace patch_util

}  // namespace orch::api
