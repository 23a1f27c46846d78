// The pure logic of StatefulSets, free of I/O so that it is unit-tested alone: ordinal identity,
// claims from volumeClaimTemplates, which pod to create, delete or update next, and the status.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "controller_util.h"

namespace orch::ctrl::sts {

// The labels a StatefulSet pod carries besides its template's (upstream's names: DNS, Services
// and users select single pods by them).
inline constexpr char kPodNameLabel[] = "statefulset.kubernetes.io/pod-name";
inline constexpr char kPodIndexLabel[] = "apps.kubernetes.io/pod-index";

// ---------------------------------------------------------------------------------------------
// Identity.

// A pod name split as upstream does with `(.*)-([0-9]+)$`: the parent's name and the ordinal;
// ordinal -1 when the name does not end in "-<digits>" (or the number does not fit).
struct ParsedName {
  std::string parent;
  int64_t ordinal = -1;
};
ParsedName ParsePodName(std::string_view name);
int64_t OrdinalOf(const json& pod);  // ParsePodName of its name; -1 when none

int64_t Replicas(const json& set);      // spec.replicas, default 1
int64_t StartOrdinal(const json& set);  // spec.ordinals.start, default 0
int64_t EndOrdinal(const json& set);    // StartOrdinal + Replicas - 1
bool InOrdinalRange(const json& set, int64_t ordinal);
// "<set name>-<ordinal>".
std::string PodName(const json& set, int64_t ordinal);
// The pod's name parses to the set's name (upstream's isMemberOf): only such pods are claimed.
bool IsMemberOf(const json& set, const json& pod);

bool IsParallel(const json& set);    // podManagementPolicy Parallel (default OrderedReady)
bool IsOnDelete(const json& set);    // updateStrategy.type OnDelete (default RollingUpdate)
int64_t Partition(const json& set);  // updateStrategy.rollingUpdate.partition, default 0
int64_t MinReadySeconds(const json& set);

// The pod's controller-revision-hash label: the name of the revision it was made from.
std::string PodRevision(const json& pod);

// ---------------------------------------------------------------------------------------------
// Claims.

// "<template name>-<set name>-<ordinal>".
std::string ClaimName(const json& claim_template, const json& set, int64_t ordinal);
// The PersistentVolumeClaims the pod at `ordinal` mounts, one per volumeClaimTemplate, ready to
// create: the template's metadata and spec, the set's namespace, and labels that are the
// template's plus the set's selector matchLabels (as upstream).
std::vector<json> ClaimsFor(const json& set, int64_t ordinal);

// whenDeleted / whenScaled of spec.persistentVolumeClaimRetentionPolicy: true for Delete.
bool DeleteWhenDeleted(const json& set);
bool DeleteWhenScaled(const json& set);
// The ownerReferences `claim` should have under the set's retention policy for the pod that
// mounts it (upstream's updateClaimOwnerRefForSetAndPod): a controller reference to the set when
// whenDeleted is Delete (and the pod is in range, or whenScaled is Retain), to the pod when
// whenScaled is Delete and the pod was scaled away; references to the set or the pod removed
// otherwise; other references kept. A reference is not added when the claim already has another
// controller. nullopt when nothing changes.
std::optional<json> ClaimOwnerReferences(const json& claim, const json& set, const json& pod);

// ---------------------------------------------------------------------------------------------
// Pods.

// A pod to create for `ordinal` from `pod_template` (the template of the revision it belongs
// to), with the set's identity: name, hostname and subdomain (spec.serviceName), the pod-name,
// pod-index and controller-revision-hash labels, and the claims of ClaimsFor mounted as volumes
// named after their templates (replacing a template volume of that name).
json NewPod(const json& set, const json& pod_template, const std::string& revision, int64_t ordinal,
            const json& controller_ref);
// The pod has the set's identity labels for its ordinal (upstream's identityMatches).
bool IdentityMatches(const json& set, const json& pod);
// Every volumeClaimTemplate is mounted from this ordinal's claim (upstream's storageMatches).
bool StorageMatches(const json& set, const json& pod);

bool IsRunningAndReady(const json& pod);  // phase Running and the Ready condition True
bool IsTerminating(const json& pod);      // deletionTimestamp set
bool IsFailedOrSucceeded(const json& pod);
// Running, ready, available for minReadySeconds and not terminating.
bool IsHealthy(const json& pod, int64_t min_ready_seconds, TimePoint now);

// ---------------------------------------------------------------------------------------------
// What to do next.

// One step of a sync, in the order they must happen.
struct Step {
  enum class Type {
    kCreate,           // create the pod at `ordinal` (its claims first) from `revision`
    kDeleteFailed,     // delete a Failed or Succeeded pod, to recreate it with the same name
    kFixIdentity,      // patch the identity labels of `pod`
    kDeleteCondemned,  // delete a pod beyond the replicas (scale down)
    kDeleteForUpdate,  // delete a pod of an older revision (rolling update)
  };
  Type type;
  int64_t ordinal = -1;
  ObjectPtr pod;         // the existing pod (not for kCreate)
  std::string revision;  // kCreate: the revision the new pod belongs to
};

struct Plan {
  std::vector<Step> steps;
  // Why the plan stops where it does ("" when it does not wait): what the controller logs.
  std::string waiting;
};

// What a sync knows: the set, its member pods (claimed, any ordinal), the names of its current
// and update revisions and the time.
struct PlanInput {
  const json& set;
  const std::vector<ObjectPtr>& pods;
  std::string current_revision;
  std::string update_revision;
  TimePoint now;
};

// The revision a pod created now at `ordinal` belongs to (upstream's newVersionedStatefulSetPod):
// the current one below the partition of a RollingUpdate, the update revision otherwise.
std::string RevisionForOrdinal(const json& set, int64_t ordinal, const std::string& current,
                               const std::string& update);

// Upstream's updateStatefulSet as a pure function. OrderedReady: create the lowest missing
// ordinal once every lower one is Running and Ready, one at a time; delete the highest
// condemned pod once every replica is healthy, one at a time, waiting for it to go. Parallel:
// create every missing pod and delete every condemned one at once. Failed pods are deleted (and
// recreated by a later sync). A set being deleted gets no steps. RollingUpdate then deletes, from
// the highest ordinal down to the partition, the first pod of another revision, waiting for each
// to come back healthy (or, with rollingUpdate.maxUnavailable, up to that many unavailable at a
// time); OnDelete never deletes for updates.
Plan PlanSync(const PlanInput& input);

// ---------------------------------------------------------------------------------------------
// Status.

// status.replicas (created pods), readyReplicas, availableReplicas, currentReplicas,
// updatedReplicas (by revision, not counting terminating pods), currentRevision, updateRevision,
// collisionCount and observedGeneration; a RollingUpdate whose pods are all updated and ready
// makes the update revision current. Other fields of the old status (conditions) are kept.
json ComputeStatus(const json& set, const std::vector<ObjectPtr>& pods,
                   const std::string& current_revision, const std::string& update_revision,
                   int64_t collision_count, TimePoint now);

}  // namespace orch::ctrl::sts
