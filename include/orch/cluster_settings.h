// The cluster-wide settings a server hands to the agents that join it (k3s serves its own at
// /v1-k3s/config), so every node runs with the server's network, DNS and proxy choices.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "orch/config.h"
#include "orch/status.h"

namespace orch {

// Served at GET /v1-orch/config (src/apiserver/node_join.h) as JSON with these camelCase keys:
// {"clusterCIDR", "serviceCIDR", "clusterDNS", "clusterDomain", "disableDNS", "flannelBackend",
//  "disableKubeProxy"}.
struct ClusterSettings {
  std::string cluster_cidr;
  std::string service_cidr;
  std::string cluster_dns;
  std::string cluster_domain;
  bool disable_dns = false;
  std::string flannel_backend;
  bool disable_kube_proxy = false;

  bool operator==(const ClusterSettings&) const = default;
};

// The settings of a server started with `config` (its flags; --disable dns counts).
ClusterSettings ClusterSettingsOf(const ServerConfig& config);

std::string ClusterSettingsToJson(const ClusterSettings& settings);

// kInvalidArgument naming the first missing or malformed key (a value that does not parse as the
// flag would, e.g. an unknown flannel backend). Unknown keys are ignored, so a newer server can
// add some.
Result<ClusterSettings> ParseClusterSettings(std::string_view json_text);

// Makes `config` (a joined agent's) use the server's settings. A cluster-wide flag the user gave
// the agent (AgentConfig::*_given) with another value is an error, kInvalidArgument naming both
// values, as k3s refuses a server whose critical settings differ from the cluster's; given with
// the same value it is fine. Adds a line to `notes` for every value that changed from the agent's
// own default, for the log.
Status ApplyClusterSettings(const ClusterSettings& settings, AgentConfig& config,
                            std::vector<std::string>* notes = nullptr);

}  // namespace orch
