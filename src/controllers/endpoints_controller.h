// The Endpoints controller (one Endpoints object per Service with a selector) and the pod-to-
// endpoint logic it shares with the EndpointSlice controller, exposed for the unit tests.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/controllers.h"

namespace orch {

// The factory of the AllControllers() table ("endpoints").
std::unique_ptr<Component> NewEndpointsController(ControllerContext& context);

namespace ctrl {

// The label the Endpoints and EndpointSlices of a headless Service carry.
inline constexpr char kHeadlessLabel[] = "service.kubernetes.io/headless";

// Whether the Service's endpoints are computed from pods: it has a non-empty spec.selector.
// Services without one have their Endpoints written by someone else; the controllers leave them
// alone.
bool ServiceHasSelector(const json& service);
// The keys of the Services in `services` whose selector matches `pod`'s labels: whose endpoints
// a change of the pod may change.
std::vector<std::string> ServicesSelecting(const Informer& services, const json& pod);
// spec.clusterIP is "None".
bool IsHeadlessService(const json& service);

// Whether `pod` may back a Service at all: it has an IPv4 pod IP, is not Succeeded or Failed,
// and is not being deleted unless `include_terminating`.
bool ShouldPodBeInEndpoints(const json& pod, bool include_terminating);
// The pod's IPv4 address (status.podIPs or status.podIP), or "".
std::string PodIPv4(const json& pod);

// The port a Service port reaches on `pod`: an integer targetPort as it is, a named one looked
// up among the pod's container ports of the same protocol (nullopt when the pod has none), and
// no targetPort the Service port itself.
std::optional<int64_t> FindPodPort(const json& pod, const json& service_port);

// The endpoint port (name, port, protocol, appProtocol) of `service_port` resolved to `port`.
json EndpointPort(const json& service_port, int64_t port);

// The targetRef of an endpoint backed by `pod`.
json PodTargetRef(const json& pod);

// The pod's hostname for DNS when it asks for this Service as its subdomain (spec.hostname set
// and spec.subdomain equal to the Service's name), else "".
std::string EndpointHostname(const json& pod, const json& service);

// The labels of a Service's Endpoints/EndpointSlices: the Service's own, plus the headless label.
json EndpointLabels(const json& service);

// The subsets of the Endpoints of `service` backed by `pods` (those its selector matched):
// addresses of ready pods (all of them with publishNotReadyAddresses), notReadyAddresses of the
// others, grouped by the set of ports they resolve to, sorted so equal inputs give equal output.
// A headless Service without ports gets addresses without ports.
json EndpointSubsets(const json& service, const std::vector<ObjectPtr>& pods);

}  // namespace ctrl
}  // namespace orch
