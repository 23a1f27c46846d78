// The ControllerRevision history that DaemonSets and StatefulSets keep (upstream's
// pkg/controller/history semantics): naming, hashing, listing, the current revision, truncation.
#pragma once

// Shared by the DaemonSet and StatefulSet controllers; keep the declarations below stable and
// note any change here.
//
// A revision is an apps/v1 ControllerRevision named "<owner name>-<hash>", where the hash is
// deploy::ComputeHash over its `data` (plus the owner's status.collisionCount when it is not 0).
// It carries the labels the caller gives (upstream gives the pod template's labels, which the
// owner's selector matches) plus controller-revision-hash: <hash>, the owner's annotations, a
// controller ownerReference to the owner and `revision`, a number that grows each time the owner
// returns to a template. Both controllers store `data` as a strategic-merge patch of the owner
// ({"spec":{"template":{...,"$patch":"replace"}}}, TemplateRevisionData), which is what
// `kubectl rollout undo` applies.
//
// Everything here is thread-safe as far as its arguments are: the free functions keep no state.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "controller_util.h"

namespace orch::ctrl::history {

// The label on revisions (and on DaemonSet pods: the hash; StatefulSet pods: the revision name).
inline constexpr char kControllerRevisionHashLabel[] = "controller-revision-hash";
// spec.revisionHistoryLimit when unset.
inline constexpr int64_t kDefaultRevisionHistoryLimit = 10;

using RevisionList = std::vector<ObjectPtr>;

// The object a history belongs to. `object` must outlive the calls it is passed to.
struct Owner {
  const json& object;       // the DaemonSet or StatefulSet as read (name, namespace, uid)
  std::string api_version;  // "apps/v1"
  std::string kind;         // "DaemonSet", "StatefulSet"
};

// ---------------------------------------------------------------------------------------------
// Pure functions.

// The hash of revision data: deploy::ComputeHash of `data`, with `collision_count` fed in only
// when it is not 0 (an owner without status.collisionCount and one with 0 hash alike).
std::string HashRevisionData(const json& data, int64_t collision_count);
// "<owner name>-<hash>", the owner name cut to 223 characters so the whole stays a valid name.
std::string RevisionName(std::string_view owner_name, std::string_view hash);

// {"spec":{"template":<spec.template of owner>,"$patch":"replace"}} with "$patch" inside the
// template: the data both controllers store, as upstream does.
json TemplateRevisionData(const json& owner);
// The pod template a revision made by TemplateRevisionData holds (without "$patch"); null JSON
// when the revision has none.
json TemplateFromRevision(const json& revision);

// A ControllerRevision to create (not yet written): name, namespace, labels (`labels` plus the
// hash label), annotations (when `annotations` is a non-empty object), controller ownerReference,
// `data` and `revision`.
json NewRevision(const Owner& owner, const json& labels, const json& annotations, const json& data,
                 int64_t revision, int64_t collision_count);

int64_t RevisionNumber(const json& revision);  // `revision`, 0 when absent
// Its controller-revision-hash label, or, lacking that, what follows the last '-' of its name.
std::string RevisionHash(const json& revision);
// Equal data (nulls, empty objects and empty arrays ignored, as Go's omitempty would).
bool EqualRevision(const json& a, const json& b);

// Sorts by revision, then creation time, then name (oldest first).
void SortRevisions(RevisionList& revisions);
// The highest revision number, 0 for none.
int64_t MaxRevision(const RevisionList& revisions);
// The revisions whose data equals `data`, in the order of `revisions`.
RevisionList FindEqualRevisions(const RevisionList& revisions, const json& data);
// spec.revisionHistoryLimit of `owner`, kDefaultRevisionHistoryLimit when unset or negative.
int64_t RevisionHistoryLimit(const json& owner);

// ---------------------------------------------------------------------------------------------
// Reading and writing through the API.

// The revisions `owner` controls, from an informer of controllerrevisions that has the
// controller index (AddControllerIndex, added before the informers start), sorted by
// SortRevisions. Never calls the API.
RevisionList ListRevisions(const Informer& revisions, const json& owner);

// ListRevisions plus adoption of orphaned revisions matching `selector` and release of
// controlled ones that no longer match it (RefManager over controllerrevisions; `owner_resource`
// is re-read once before adopting). Sorted by SortRevisions. `first_error` gets the first failed
// adoption or release; what succeeded is still returned.
RevisionList ClaimRevisions(ApiClient& client, const Informer& revisions, const Owner& owner,
                            const ResourceRef& owner_resource, const LabelSelector& selector,
                            Status* first_error);

// Creates NewRevision(owner, labels, annotations, data, revision, *collision_count). When the
// name is taken by a revision with equal data, that revision is the result; when it is taken by
// different data (a hash collision), *collision_count is incremented and the create retried
// under the new name (a few times, then kConflict): the caller must persist a changed count in
// the owner's status.collisionCount, or the next sync hashes to the colliding name again.
Result<ObjectPtr> CreateRevision(ApiClient& client, const Owner& owner, const json& labels,
                                 const json& annotations, const json& data, int64_t revision,
                                 int64_t* collision_count);

struct CurrentRevision {
  ObjectPtr revision;      // the revision whose data equals the owner's current data
  RevisionList revisions;  // every revision of the owner after the call, SortRevisions order
  bool created = false;    // `revision` was created by this call
};

// Makes sure a revision with `data` exists and is the newest. `revisions` are the owner's (from
// ListRevisions/ClaimRevisions). If revisions with equal data exist, the newest of them is the
// current one and, when another revision is newer, its `revision` is raised to max + 1 (a merge
// patch with its resourceVersion as precondition: a stale cache gives kConflict, retry later).
// Otherwise CreateRevision with max + 1 (see there for *collision_count). Errors are the API's.
Result<CurrentRevision> EnsureCurrentRevision(ApiClient& client, const Owner& owner,
                                              const json& labels, const json& annotations,
                                              const json& data, const RevisionList& revisions,
                                              int64_t* collision_count);

// Deletes the oldest revisions beyond `limit` among those not in use. A revision is in use when
// its name or its hash (RevisionHash) is in `in_use`: the caller puts there the current and
// update revisions and the controller-revision-hash labels of its live pods. Revisions already
// gone are not errors; returns the first other error (after trying the rest). `deleted` (may be
// null) gets how many were deleted.
Status TruncateHistory(ApiClient& client, RevisionList revisions,
                       const std::set<std::string>& in_use, int64_t limit, int* deleted = nullptr);

}  // namespace orch::ctrl::history
