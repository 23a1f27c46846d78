// The StatefulSet controller: pods with stable names, hostnames and claims, created and deleted
// in ordinal order (or in parallel), rolled to new revisions kept as ControllerRevisions.
#pragma once

#include <chrono>
#include <memory>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct StatefulSetControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::seconds(30);
};

// The factories of the AllControllers() table ("statefulset").
std::unique_ptr<Component> NewStatefulSetController(ControllerContext& context);
std::unique_ptr<Component> NewStatefulSetController(ControllerContext& context,
                                                    StatefulSetControllerOptions options);

}  // namespace orch
