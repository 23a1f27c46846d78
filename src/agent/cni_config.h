// The node's pod network as CNI sees it: once the server has given the node a pod CIDR
// (spec.podCIDR, from the node IPAM controller), the agent writes the CNI config list that
// containerd loads: a bridge with host-local IPAM on that CIDR, portmap for hostPorts.
// Until then pods on the pod network wait (host-network pods do not).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
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
};

// The text of the .conflist (CNI 1.0.0).
std::string CniConfigList(const CniOptions& options);

// Watches the node for its pod CIDR and writes the CNI config when it arrives (or changes).
// Thread-safe accessors.
class PodNetwork {
 public:
  PodNetwork(const AgentPaths& paths, std::string node_name, std::string bridge,
             std::function<void()> on_ready)
      : paths_(paths),
        node_name_(std::move(node_name)),
        bridge_(std::move(bridge)),
        on_ready_(std::move(on_ready)) {}

  // Registers on the informer of this node (metadata.name=<node>); call before the factory
  // starts.
  void Watch(Informer& node_informer);
  bool ready() const { return ready_.load(); }
  std::string pod_cidr() const;
  // Logs (again) that pods wait for the pod CIDR, when they still do.
  void ReportWaiting();

 private:
  void OnNode(const nlohmann::json& node);

  const AgentPaths paths_;
  const std::string node_name_;
  const std::string bridge_;
  std::function<void()> on_ready_;
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  std::string pod_cidr_;  // guarded by mu_: the CIDR the written config uses
};

}  // namespace orch::agent
