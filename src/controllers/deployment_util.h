// The arithmetic and bookkeeping of Deployments, free of I/O so that it is unit-tested alone:
// template hashes, rolling-update fenceposts, proportional scaling, revisions, conditions, status.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller_util.h"

namespace orch::ctrl::deploy {

inline constexpr char kPodTemplateHashLabel[] = "pod-template-hash";
inline constexpr char kRevisionAnnotation[] = "deployment.kubernetes.io/revision";
inline constexpr char kRevisionHistoryAnnotation[] = "deployment.kubernetes.io/revision-history";
inline constexpr char kDesiredReplicasAnnotation[] = "deployment.kubernetes.io/desired-replicas";
inline constexpr char kMaxReplicasAnnotation[] = "deployment.kubernetes.io/max-replicas";

// Condition reasons, as upstream's (kubectl and dashboards match on them).
inline constexpr char kNewReplicaSetCreated[] = "NewReplicaSetCreated";
inline constexpr char kFoundNewReplicaSet[] = "FoundNewReplicaSet";
inline constexpr char kReplicaSetUpdated[] = "ReplicaSetUpdated";
inline constexpr char kNewReplicaSetAvailable[] = "NewReplicaSetAvailable";
inline constexpr char kProgressDeadlineExceeded[] = "ProgressDeadlineExceeded";
inline constexpr char kFailedRSCreate[] = "ReplicaSetCreateError";
inline constexpr char kDeploymentPaused[] = "DeploymentPaused";
inline constexpr char kDeploymentResumed[] = "DeploymentResumed";
inline constexpr char kMinimumReplicasAvailable[] = "MinimumReplicasAvailable";
inline constexpr char kMinimumReplicasUnavailable[] = "MinimumReplicasUnavailable";

using RsList = std::vector<ObjectPtr>;

// The pod-template-hash of a Deployment's pod template: FNV-1a (32 bit) over the template's
// canonical JSON (keys sorted, no whitespace, nulls and empty objects and arrays dropped),
// followed, when a collision count is set, by that count as 8 little-endian bytes; the decimal
// value of the hash is then spelled with the consonants and digits of generated names
// ("bcdfghjklmnpqrstvwxz2456789"), one character per decimal digit, as upstream spells its
// hashes. Equal templates give equal hashes in every orch version that keeps this definition;
// the value differs from upstream's, which hashes Go's in-memory form.
std::string ComputeHash(const json& pod_template, std::optional<int64_t> collision_count);
// Whether two pod templates are equal once their pod-template-hash labels are ignored.
bool EqualIgnoreHash(const json& t1, const json& t2);

// An int-or-percent (intstr.IntOrString) scaled against `total`: percentages round up or down.
Result<int64_t> ScaledValue(const json& int_or_percent, int64_t total, bool round_up);
// maxSurge (rounded up) and maxUnavailable (rounded down) for `desired` replicas; when both are
// zero maxUnavailable becomes 1, or a rollout could never progress.
Result<std::pair<int64_t, int64_t>> ResolveFenceposts(const json& max_surge,
                                                      const json& max_unavailable, int64_t desired);

int64_t Replicas(const json& object);  // spec.replicas, default 1
bool IsRollingUpdate(const json& deployment);
int64_t MaxSurge(const json& deployment);        // 0 unless RollingUpdate
int64_t MaxUnavailable(const json& deployment);  // 0 unless RollingUpdate; at most replicas
bool HasProgressDeadline(const json& deployment);
bool HasRevisionHistoryLimit(const json& deployment);

int64_t Revision(const json& replica_set);  // its revision annotation, 0 when absent or bad
int64_t MaxRevision(const RsList& replica_sets);
std::optional<int64_t> IntAnnotation(const json& object, const char* key);

// The ReplicaSet whose template equals the Deployment's (the oldest if several), or null.
ObjectPtr FindNewReplicaSet(const json& deployment, const RsList& replica_sets);
// Every other one.
RsList FindOldReplicaSets(const json& deployment, const RsList& replica_sets,
                          const ObjectPtr& new_rs);
RsList FilterActive(const RsList& replica_sets);  // spec.replicas > 0
void SortByCreation(RsList& replica_sets);        // oldest first, then by name
void SortBySizeNewer(RsList& replica_sets);       // largest first, newest first among equals
void SortBySizeOlder(RsList& replica_sets);       // largest first, oldest first among equals
void SortByRevision(RsList& replica_sets);        // lowest revision first
// The only active ReplicaSet, or the newest when none is active; null when several are.
ObjectPtr FindActiveOrLatest(const ObjectPtr& new_rs, RsList old_rss);

int64_t SpecReplicaSum(const RsList& replica_sets);       // sum of spec.replicas
int64_t StatusReplicaSum(const RsList& replica_sets);     // sum of status.replicas
int64_t ReadyReplicaSum(const RsList& replica_sets);      // sum of status.readyReplicas
int64_t AvailableReplicaSum(const RsList& replica_sets);  // sum of status.availableReplicas

// The new ReplicaSet and the Deployment have the same size, and all of it is available.
bool IsSaturated(const json& deployment, const ObjectPtr& new_rs);
// How many replicas the new ReplicaSet should have now: RollingUpdate grows it as far as
// maxSurge lets the total grow, Recreate gives it everything.
Result<int64_t> NewRSNewReplicas(const json& deployment, const RsList& all_rss, const json& new_rs);
// The share of `to_add` replicas (negative: to remove) that `rs` gets when a Deployment is
// resized in the middle of a rollout, from its size against its max-replicas annotation.
int64_t GetProportion(const json& rs, const json& deployment, int64_t to_add, int64_t added);

// The desired-replicas and max-replicas annotations; true when they changed.
bool SetReplicasAnnotations(json& rs, int64_t desired, int64_t max_replicas);
bool ReplicasAnnotationsNeedUpdate(const json& rs, int64_t desired, int64_t max_replicas);
// Copies the Deployment's annotations (but kubectl's last-applied configuration and the
// controller's own) to its new ReplicaSet, raises its revision to `new_revision` (keeping the
// old one in revision-history) and, for a ReplicaSet being created, sets the replica
// annotations. True when anything changed.
bool SetNewReplicaSetAnnotations(const json& deployment, json& rs, const std::string& new_revision,
                                 bool exists);
// The annotations `kubectl rollout undo` must not copy from a ReplicaSet to its Deployment.
bool SkipCopyAnnotation(const std::string& key);

// Conditions (DeploymentCondition: type, status, lastUpdateTime, lastTransitionTime, reason,
// message).
json NewCondition(const std::string& type, const std::string& status, const std::string& reason,
                  const std::string& message, TimePoint now);
// Adds or replaces `condition`; keeps the old transition time when the status is the same, and
// changes nothing when status and reason are the same.
void SetCondition(json& status, json condition);
void RemoveCondition(json& status, const std::string& type);

// upstream's calculateStatus: counts from the ReplicaSets, the Available condition, the rest of
// the old status kept.
json CalculateStatus(const RsList& all_rss, const ObjectPtr& new_rs, const json& deployment,
                     TimePoint now);
// The rollout is done: every replica updated and available and the spec observed.
bool DeploymentComplete(const json& deployment, const json& status);
// Something moved since the last status: more updated, ready or available, fewer old.
bool DeploymentProgressing(const json& deployment, const json& new_status);
// The Progressing condition has not been updated for progressDeadlineSeconds.
bool DeploymentTimedOut(const json& deployment, const json& new_status, TimePoint now);

}  // namespace orch::ctrl::deploy
