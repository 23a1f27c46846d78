// The namespace controller: a namespace being deleted (phase Terminating) loses every object in
// it, then its `kubernetes` finalizer, and so disappears.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

struct NamespaceControllerOptions {
  ctrl::NowFunc now = ctrl::SystemNow;
  // How soon a namespace whose content is still going away is looked at again (pods waiting
  // for their grace period are looked at when it ends).
  std::chrono::milliseconds recheck = std::chrono::seconds(1);
};

// The factory of the AllControllers() table ("namespace").
std::unique_ptr<Component> NewNamespaceController(ControllerContext& context);
std::unique_ptr<Component> NewNamespaceController(ControllerContext& context,
                                                  NamespaceControllerOptions options);

namespace ctrl {

inline constexpr char kNamespaceFinalizer[] = "kubernetes";

// The namespaced collections the controller empties: orch's built-in ones (a fixed list; the
// API has no others but custom resources, which are found through their definitions).
const std::vector<ResourceRef>& BuiltinNamespacedResources();

}  // namespace ctrl
}  // namespace orch
