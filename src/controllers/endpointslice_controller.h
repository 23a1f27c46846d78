// The EndpointSlice controller (slices of the pods behind each Service with a selector) and the
// EndpointSlice mirroring controller (slices mirroring the Endpoints of Services without one),
// with the pure logic they are built from, exposed for the unit tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "controller_util.h"
#include "orch/controllers.h"

namespace orch {

// The factories of the AllControllers() table ("endpointslice", "endpointslicemirroring").
std::unique_ptr<Component> NewEndpointSliceController(ControllerContext& context);
std::unique_ptr<Component> NewEndpointSliceMirroringController(ControllerContext& context);

namespace ctrl {

inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
inline constexpr char kManagedByLabel[] = "endpointslice.kubernetes.io/managed-by";
inline constexpr char kSliceControllerName[] = "endpointslice-controller.k8s.io";
inline constexpr char kMirroringControllerName[] = "endpointslicemirroring-controller.k8s.io";
// Endpoints with this label set to "true" are not mirrored.
inline constexpr char kSkipMirrorLabel[] = "endpointslice.kubernetes.io/skip-mirror";
// Upstream's default --max-endpoints-per-slice.
inline constexpr size_t kMaxEndpointsPerSlice = 100;

// The endpoints and ports a Service should have, one group per distinct set of ports (pods whose
// named ports resolve differently land in different slices).
struct SliceGroup {
  json ports = json::array();   // sorted EndpointPorts
  std::vector<json> endpoints;  // sorted by address
};

// The slice endpoints of `service` backed by `pods` (those its selector matched): every pod with
// an IPv4 address that is not Succeeded/Failed, terminating ones included, with conditions
// ready (ready and not terminating; always with publishNotReadyAddresses), serving (ready,
// terminating or not) and terminating, nodeName, targetRef and hostname.
std::vector<SliceGroup> DesiredSliceGroups(const json& service, const std::vector<ObjectPtr>& pods);

// The slice groups mirroring an Endpoints object's subsets: addresses ready, notReadyAddresses
// not ready; ports as given.
std::vector<SliceGroup> MirroredSliceGroups(const json& endpoints);

// Desired slices for one Service from its groups, reusing `existing` slices (the ones this
// controller manages for it) where it can. What to write: slices to create (no name yet), slices
// to update (name and resourceVersion kept), and names of slices to delete.
struct SlicePlan {
  std::vector<json> create;
  std::vector<json> update;
  std::vector<std::string> remove;
};
// `labels` are the labels every slice gets (service name, managed-by, the Service's own);
// `owner_ref` the controller reference to the Service (null: none).
SlicePlan PlanSlices(const json& service, const std::vector<SliceGroup>& groups,
                     const std::vector<ObjectPtr>& existing, const json& labels,
                     const json& owner_ref, size_t max_per_slice = kMaxEndpointsPerSlice);

}  // namespace ctrl
}  // namespace orch
