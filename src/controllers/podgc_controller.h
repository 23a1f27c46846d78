// The pod garbage collector (upstream's podgc): deletes pods bound to nodes that no longer exist,
// terminating pods stuck on nodes that are not Ready, unscheduled terminating pods, and the
// oldest terminated pods beyond a threshold.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct PodGcControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  // How often the collector looks (upstream's gcCheckPeriod).
  std::chrono::milliseconds period = std::chrono::seconds(20);
  // Terminated pods (Succeeded or Failed) kept at most; 0 or less keeps them all
  // (upstream's --terminated-pod-gc-threshold, default 12500).
  int64_t terminated_threshold = 12500;
  // A node missing from the cache must stay missing this long, and be missing from the API,
  // before its pods are deleted (upstream's quarantine time): a new node may not be cached yet.
  std::chrono::milliseconds quarantine = std::chrono::seconds(40);
};

// The factory of the AllControllers() table ("podgc").
std::unique_ptr<Component> NewPodGcController(ControllerContext& context);
std::unique_ptr<Component> NewPodGcController(ControllerContext& context,
                                              PodGcControllerOptions options);

namespace ctrl::podgc {

inline constexpr char kOutOfServiceTaint[] = "node.kubernetes.io/out-of-service";

// The terminated pods to delete so that at most `threshold` remain: the oldest first by
// creationTimestamp (pods being deleted already are not chosen, but count). None when
// threshold <= 0.
std::vector<ObjectPtr> TerminatedPodsToDelete(const std::vector<ObjectPtr>& pods,
                                              int64_t threshold);

// Whether a terminating pod on `node` may be force-deleted at `now`: the node is not Ready, and
// either carries the out-of-service taint or the pod's deletion deadline (deletionTimestamp,
// which the API server sets to the deletion time plus the grace period) has passed.
bool ShouldForceDeleteTerminating(const json& pod, const json& node, TimePoint now);

// The status patch that marks a pod Failed before it is force-deleted (upstream since 1.26):
// phase Failed and, when `message` is not empty (a pod of a deleted node), a DisruptionTarget
// condition (reason DeletionByPodGC) added to its conditions. Null for pods already Succeeded
// or Failed.
json MarkFailedPatch(const json& pod, const std::string& message, TimePoint now);

}  // namespace ctrl::podgc
}  // namespace orch
