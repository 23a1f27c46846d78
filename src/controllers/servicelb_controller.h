// The service load balancer controller (k3s's ServiceLB, without its pods): LoadBalancer
// Services get the addresses of the Ready nodes in status.loadBalancer.ingress.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/component.h"
#include "orch/controllers.h"

namespace orch {

// The factory of the AllControllers() table ("servicelb"; `--disable servicelb` leaves it out).
std::unique_ptr<Component> NewServiceLbController(ControllerContext& context);

namespace ctrl {

// k3s's node labels: when any node has enablelb=true, only those nodes serve load balancers; a
// Service labelled lbpool=P is served only by the nodes labelled lbpool=P among them.
inline constexpr char kEnableLbLabel[] = "svccontroller.k3s.cattle.io/enablelb";
inline constexpr char kLbPoolLabel[] = "svccontroller.k3s.cattle.io/lbpool";
// Upstream's label keeping a node out of every load balancer.
inline constexpr char kExcludeLbLabel[] = "node.kubernetes.io/exclude-from-external-load-balancers";

// Whether orch's load balancer serves `service`: type LoadBalancer without a loadBalancerClass
// (a class names another implementation, which orch leaves alone). The same rule decides the
// port check of the API server and which Services the node proxy opens on node addresses.
bool ServiceLbHandles(const json& service);

// The addresses to list for `service` from `nodes`: of each serving node (Ready, not being
// deleted, not excluded, in the enablelb/lbpool selection) its ExternalIPs, or its InternalIPs
// when it has none, of the Service's IP families; sorted, without duplicates.
std::vector<std::string> LoadBalancerIps(const json& service, const std::vector<ObjectPtr>& nodes);

// status.loadBalancer.ingress for `ips` ([{"ip": ...}, ...]).
json IngressFor(const std::vector<std::string>& ips);

// The node fields LoadBalancerIps reads, as a comparable string: a node update that leaves it
// unchanged cannot change any Service's ingress.
std::string LoadBalancerNodeFingerprint(const json& node);

}  // namespace ctrl
}  // namespace orch
