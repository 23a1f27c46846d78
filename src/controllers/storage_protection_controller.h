// The pvc-protection and pv-protection controllers (kube-controller-manager's names): the
// kubernetes.io/pvc-protection and kubernetes.io/pv-protection finalizers on every claim and
// volume, removed once a deleted claim is used by no unfinished pod, or a deleted volume is no
// longer Bound.
#pragma once

#include <memory>

#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

std::unique_ptr<Component> NewPvcProtectionController(ControllerContext& context);
std::unique_ptr<Component> NewPvProtectionController(ControllerContext& context);

}  // namespace orch
