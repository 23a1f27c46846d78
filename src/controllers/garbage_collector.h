// The garbage collector: deletes objects whose owners (metadata.ownerReferences) are gone, and
// carries out foreground (foregroundDeletion finalizer) and orphan (orphan finalizer) deletions.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// A kind the collector watches: its objects may own others or be owned. Owner references to
// kinds not listed here are taken as valid (the collector cannot tell whether they exist).
struct CollectedKind {
  ResourceRef resource;
  std::string api_version;  // "apps/v1"
  std::string kind;         // "ReplicaSet"
};
// Pods, the workload kinds, configmaps, secrets, services, endpoints, endpointslices,
// persistentvolumeclaims, serviceaccounts, leases, nodes, ingresses, networkpolicies,
// poddisruptionbudgets, horizontalpodautoscalers, the RBAC kinds and persistentvolumes.
const std::vector<CollectedKind>& DefaultCollectedKinds();

struct GarbageCollectorOptions {
  std::vector<CollectedKind> kinds = DefaultCollectedKinds();
  // Custom resources too: every CustomResourceDefinition's kind is watched from when it appears.
  bool custom_resources = true;
  // A safety net for a missed event: every owned object is checked again this often.
  std::chrono::milliseconds resync_period = std::chrono::minutes(10);
};

// The factory of the AllControllers() table ("garbagecollector").
std::unique_ptr<Component> NewGarbageCollector(ControllerContext& context);
std::unique_ptr<Component> NewGarbageCollector(ControllerContext& context,
                                               GarbageCollectorOptions options);

namespace ctrl {

inline constexpr char kOrphanFinalizer[] = "orphan";
inline constexpr char kForegroundFinalizer[] = "foregroundDeletion";

bool HasFinalizer(const json& object, std::string_view finalizer);
// The group of an apiVersion: "apps/v1" -> "apps", "v1" -> "".
std::string GroupOf(std::string_view api_version);

}  // namespace ctrl
}  // namespace orch
