// API discovery documents built from the served resources: the legacy APIVersions /
// APIGroupList / APIGroup / APIResourceList, and the aggregated APIGroupDiscoveryList (v2 and
// v2beta1) that kubectl 1.27+ asks for first.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "resources.h"

namespace orch::api {

using json = nlohmann::json;

json ApiVersions(const std::string& server_address);
json ApiGroupList(const ResourceSet& resources);
// Null when the group is not served.
json ApiGroup(const ResourceSet& resources, const std::string& group);
// Null when the group/version is not served.
json ApiResourceList(const ResourceSet& resources, const std::string& group,
                     const std::string& version);

// `legacy` = the core group alone (for /api), else every named group (for /apis).
// `api_version` is apidiscovery.k8s.io/v2 or /v2beta1, as the client asked.
json AggregatedDiscovery(const ResourceSet& resources, bool legacy, const std::string& api_version);

// The aggregated discovery version the Accept header asks for ("v2", "v2beta1") or "".
std::string AggregatedDiscoveryVersion(const std::string& accept);

}  // namespace orch::api
