// The node's pod network as CNI sees it: once the server has given the node a pod CIDR
// (spec.podCIDR, from the node IPAM controller), the agent writes the CNI config list that
// containerd loads: a bridge with host-local IPAM on that CIDR, portmap for hostPorts.
// Until then pods on the pod network wait (host-network pods do not).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "agent_paths.h"
#include "orch/informer.h"
#include "orch/status.h"

namespace orch::agent {

struct CniOptions {
  std::string network_name = "orch";
  std::string bridge = "orch0";
  std::string pod_cidr;  // "10.42.0.0/24"
  std::string ipam_dir;  // host-local's lease folder
  int mtu = 0;           // the bridge's and pods' MTU; 0 = the plugin's default (1500)
};

// The text of the .conflist (CNI 1.0.0).
std::string CniConfigList(const CniOptions& options);

// Watches the node for its pod CIDR and writes the CNI config when it arrives (or changes).
// Thread-safe accessors.
class PodNetwork {
 public:
  // `mtu`: the pods' MTU (below the node's with an overlay), 0 = the bridge plugin's default.
  PodNetwork(const AgentPaths& paths, std::string node_name, std::string bridge,
             std::function<void()> on_ready, int mtu = 0)
      : paths_(paths),
        node_name_(std::move(node_name)),
        bridge_(std::move(bridge)),
        on_ready_(std::move(on_ready)),
        mtu_(mtu) {}

  // Registers on the informer of this node (metadata.name=<node>); call before the factory
  // starts.
  void Watch(Informer& node_informer);
  bool ready() const { return ready_.load(); }
  std::string pod_cidr() const;
  // Logs that pods wait for the pod CIDR while they do, from 5 s after the first call, then at
  // most once a minute (a server without its node IPAM controller would leave them waiting).
  void ReportWaiting();

 private:
  void OnNode(const nlohmann::json& node);

  const AgentPaths paths_;
  const std::string node_name_;
  const std::string bridge_;
  std::function<void()> on_ready_;
  const int mtu_;
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  std::string pod_cidr_;  // guarded by mu_: the CIDR the written config uses
  std::chrono::steady_clock::time_point last_report_;                   // guarded by mu_
  bool reported_ = false;                                               // guarded by mu_
  std::optional<std::chrono::steady_clock::time_point> waiting_since_;  // guarded by mu_
};

}  // namespace orch::agent
