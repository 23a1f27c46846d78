// The Deployment controller: one ReplicaSet per pod template (named by its pod-template-hash),
// rolled from old to new by RollingUpdate or Recreate, with revisions, pause, scaling in
// proportion and progress conditions, as `kubectl rollout` expects.
#pragma once

#include <chrono>
#include <memory>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct DeploymentControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  std::chrono::milliseconds resync_period = std::chrono::seconds(30);
};

// The factory of the AllControllers() table ("deployment").
std::unique_ptr<Component> NewDeploymentController(ControllerContext& context);
std::unique_ptr<Component> NewDeploymentController(ControllerContext& context,
                                                   DeploymentControllerOptions options);

}  // namespace orch
