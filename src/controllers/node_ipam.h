// Node IPAM controller: a pod CIDR per Node from the cluster CIDR (node_ipam.cpp).
#pragma once

#include <memory>

#include "orch/controllers.h"

namespace orch {

std::unique_ptr<Component> NewNodeIpamController(ControllerContext& context);

}  // namespace orch
