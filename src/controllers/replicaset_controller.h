// The ReplicaSet and ReplicationController controllers (one code path; they differ in kind and in
// the selector's form) and the pure logic they are built from, exposed for the unit tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// The kind a replica controller manages.
struct ReplicaKind {
  std::string component;      // "replicaset", "replicationcontroller"
  ResourceRef resource;       // resources::kReplicaSets
  std::string api_version;    // "apps/v1"
  std::string kind;           // "ReplicaSet"
  bool map_selector = false;  // ReplicationController: spec.selector is a plain label map

  static ReplicaKind ReplicaSet();
  static ReplicaKind ReplicationController();
};

struct ReplicaSetControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::seconds(30);
  // At most this many pods are created or deleted per sync (upstream's burstReplicas).
  int burst_replicas = 500;
};

// The factories of the AllControllers() table.
std::unique_ptr<Component> NewReplicaSetController(ControllerContext& context);
std::unique_ptr<Component> NewReplicationController(ControllerContext& context);
std::unique_ptr<Component> NewReplicaController(ControllerContext& context, ReplicaKind kind,
                                                ReplicaSetControllerOptions options);

namespace ctrl {

// Sorts `pods` so that the ones to delete first come first (upstream's ActivePodsWithRanks):
// unassigned before assigned; Pending before Unknown before Running; not ready before ready;
// lower controller.kubernetes.io/pod-deletion-cost first; more pods of the same owner on the
// node (`ranks`, parallel to `pods`) first; ready more recently first; more restarts first;
// created more recently first.
void SortPodsForDeletion(std::vector<ObjectPtr>& pods, std::vector<int>& ranks);

// The `count` pods of `pods` to delete. `related` are the active pods of this owner and of its
// siblings (ReplicaSets of the same Deployment): pods on nodes crowded with them go first.
std::vector<ObjectPtr> PodsToDelete(std::vector<ObjectPtr> pods,
                                    const std::vector<ObjectPtr>& related, size_t count);

// The status of replica owner `owner` that controls the active `pods`: replicas,
// fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration and the
// ReplicaFailure condition (set when `manage_error` is an error: FailedCreate when pods were
// missing (`diff` < 0), FailedDelete otherwise; removed once managing succeeds).
json CalculateReplicaStatus(const json& owner, const std::vector<ObjectPtr>& pods,
                            const Status& manage_error, int diff, TimePoint now);

}  // namespace ctrl
}  // namespace orch
