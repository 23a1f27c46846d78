// The ServiceAccount controller: every namespace that is not terminating has a `default`
// ServiceAccount, created when the namespace appears and again when someone deletes it.
#pragma once

#include <memory>
#include <string>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// The factory of the AllControllers() table ("serviceaccount").
std::unique_ptr<Component> NewServiceAccountController(ControllerContext& context);

namespace ctrl {

inline constexpr char kDefaultServiceAccount[] = "default";

// Whether a namespace should have the default ServiceAccount: it exists and is not being
// deleted (phase Terminating or a deletionTimestamp: creating in it would be refused anyway).
bool NamespaceWantsServiceAccounts(const json& ns);

// The ServiceAccount the controller creates in `ns`.
json DefaultServiceAccount(const std::string& ns);

}  // namespace ctrl
}  // namespace orch
