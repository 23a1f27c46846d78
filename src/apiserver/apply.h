// Server-side apply and managedFields bookkeeping, following structured-merge-diff and
// k8s.io/apimachinery/pkg/util/managedfields: each field manager owns a set of fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orch/status.h"
#include "schema.h"

namespace orch::api {

using json = nlohmann::json;

// What the field manager needs to know about the request besides the objects.
struct FieldManagerOptions {
  std::string api_version;  // the endpoint's group/version: "apps/v1", "v1"
  std::string kind;         // the endpoint's kind; "" = the live object's (apply checks it)
  std::string subresource;  // "", "status", "scale": recorded in managedFields entries
  std::string now;          // RFC 3339 UTC time for managedFields[].time, e.g. 2024-05-01T10:00:00Z
  // Fields whose ownership is not tracked, each a path of field names: the strategy's reset
  // fields (upstream: {"status"} on the main resource of kinds with a status subresource,
  // {"spec"}, {"metadata"} on .../status).
  std::vector<std::vector<std::string>> reset_fields;
};

// A field owned by another manager with a different value than the applied one.
struct ApplyConflict {
  std::string manager;      // "kubectl-client-side-apply"
  std::string operation;    // "Apply" or "Update"
  std::string api_version;  // of the owner's entry
  std::string subresource;  // of the owner's entry
  std::string field;        // ".spec.replicas", ".spec.containers[name=\"web\"].image"
  std::string message;      // "conflict with \"kubectl-client-side-apply\" using apps/v1"
};

struct ApplyResult {
  // The object to store, with metadata.managedFields updated; nulls of the configuration are
  // dropped. When `conflicts` is not empty this is the live object, unchanged.
  json object;
  // Non-empty: nothing was applied; answer 409 Conflict with ApplyConflictMessage() and
  // ApplyConflictCauses() as details.causes.
  std::vector<ApplyConflict> conflicts;
  // False when applying changed no field (the object differs from live at most in
  // managedFields: a new co-owner, never a new time).
  bool changed = false;
};

// Server-side apply (PATCH application/apply-patch+yaml; kubectl sends JSON) of `config` by
// `manager` onto `live` (nullptr: the object does not exist yet; the result is to be created).
//
// The configuration is merged into the live object (maps by key, associative lists by their
// list-map keys or patch merge key, sets by value, atomic lists and maps replaced). Fields the
// manager applied before and omits now are removed unless another manager owns them. A field
// the configuration sets to another value than live while another manager owns it is a
// conflict, unless `force` (ownership then moves to `manager`). Applying the same
// configuration again changes nothing, not even managedFields times. For manager "kubectl"
// the upstream migration rules for client-side apply hold: conflicts on fields whose value
// still equals the last-applied-configuration annotation are forced, and that annotation, if
// present, is rewritten with `config`.
//
// The result carries its managedFields: a create or update that follows must not pass it through
// UpdateManagedFields (upstream records apply only as Apply; an Update on top would take every
// field away from the applier).
//
// `schema` is the top-level schema of the kind; nullptr (a CRD without schema) treats every
// map as granular and every list as atomic, as upstream does for untyped objects.
// Errors: kInvalidArgument → 400 BadRequest (not an object, wrong apiVersion/kind,
// metadata.managedFields set); kInternal → 500 (list items without their keys, duplicate keys
// in the configuration, undecodable live managedFields), with upstream's messages.
Result<ApplyResult> ServerSideApply(const json* live, const json& config,
                                    const std::string& manager, bool force, const Schema* schema,
                                    const FieldManagerOptions& options);

// "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1:
// .spec.replicas", or the multi-conflict form grouped by manager.
std::string ApplyConflictMessage(const std::vector<ApplyConflict>& conflicts);
// [{"type":"FieldManagerConflict","message":"conflict with ...","field":".spec.replicas"}].
json ApplyConflictCauses(const std::vector<ApplyConflict>& conflicts);

// Records a non-apply write (create, update, patch) of `updated` by `manager` (operation
// Update): fields it added or changed become its own, removed fields leave every owner. On a
// create (`old` nullptr) the whole object is the manager's. managedFields sent in `updated`
// replace the stored ones when they decode (kubectl replace); `[]` or `[{}]` clear them.
// Existing objects without managedFields stay untracked. Writes the result into
// updated.metadata.managedFields. Never fails on odd input: an undecodable state keeps the
// stored managedFields (as upstream's UpdateNoErrors); errors only for non-objects or nesting
// beyond kMaxPatchDepth (kInvalidArgument).
Status UpdateManagedFields(const json* old, json& updated, const std::string& manager,
                           const Schema* schema, const FieldManagerOptions& options);

}  // namespace orch::api
