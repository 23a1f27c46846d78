// The disruption controller: keeps each PodDisruptionBudget's status (expected, healthy and
// desired pods, disruptions allowed, the DisruptionAllowed condition) current, and forgets the
// evictions recorded in status.disruptedPods once the pods are gone or 2 minutes have passed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct DisruptionControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::seconds(30);
};

// The factory of the AllControllers() table ("disruption").
std::unique_ptr<Component> NewDisruptionController(ControllerContext& context);
std::unique_ptr<Component> NewDisruptionController(ControllerContext& context,
                                                   DisruptionControllerOptions options);

namespace ctrl::disruption {

// An eviction recorded in status.disruptedPods that the pod's deletion has not confirmed within
// this time is forgotten (upstream's DeletionTimeout).
inline constexpr std::chrono::minutes kDeletionTimeout{2};

// An int-or-percent field ("50%" or 3) applied to `total` (upstream's
// GetScaledValueFromIntOrPercent); kInvalidArgument for a malformed percent.
Result<int64_t> ScaledValue(const json& int_or_percent, int64_t total, bool round_up);

// The pods the budget selects among `pods` (an empty or unreadable selector selects none).
std::vector<ObjectPtr> SelectedPods(const json& pdb, const std::vector<ObjectPtr>& pods);

// A pod's controller: its uid (empty for a pod without one) and its scale (spec.replicas).
using ControllerScale = std::function<Result<std::pair<std::string, int64_t>>(const json& pod)>;

struct BudgetStatus {
  json status;                       // the PodDisruptionBudgetStatus to write
  std::optional<TimePoint> recheck;  // when a recorded eviction expires
  std::vector<std::string> expired;  // pods whose recorded eviction expired unconfirmed
  int unmanaged = 0;                 // selected pods without a controller
  Status error;                      // why the status is the fail-safe one (0 allowed)
};

// The status of `pdb` over its selected `pods` at `now` (upstream's rules). The expected count
// is the number of pods for an integer minAvailable, else the sum of the scales of the pods'
// controllers (each counted once, pods without one skipped), which `controller_scale` gives. On
// failure the status allows no disruption and its condition says SyncFailed.
BudgetStatus CalculateStatus(const json& pdb, const std::vector<ObjectPtr>& pods,
                             const ControllerScale& controller_scale, TimePoint now);

}  // namespace ctrl::disruption
}  // namespace orch
