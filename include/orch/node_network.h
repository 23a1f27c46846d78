// The node's share of the pod network outside CNI: host-gw routes to the other nodes' pod CIDRs
// through their InternalIPs (flannel's host-gw backend), masquerade of pod traffic leaving the
// cluster, and the redirect of the cluster DNS address to this node's DNS listener.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "orch/component.h"
#include "orch/informer.h"
#include "orch/service_proxy.h"
#include "orch/status.h"

namespace orch {

struct PodRoute {
  std::string cidr;  // another node's pod CIDR
  std::string via;   // that node's InternalIP
  bool operator==(const PodRoute&) const = default;
  auto operator<=>(const PodRoute&) const = default;
};

// The kernel's routing table, as far as orch's routes go (they carry their own protocol number,
// so a restarted agent finds and removes the stale ones and leaves everyone else's alone).
class RouteTable {
 public:
  virtual ~RouteTable() = default;
  virtual Result<std::vector<PodRoute>> List() = 0;   // orch's IPv4 routes
  virtual Status Replace(const PodRoute& route) = 0;  // `ip route replace CIDR via IP`
  virtual Status Delete(const PodRoute& route) = 0;
};

// `ip route` from PATH (or /usr/sbin, /sbin). Thread-safe.
std::unique_ptr<RouteTable> NewSystemRouteTable();

// The routes this node wants: one per other node with an IPv4 spec.podCIDR and an InternalIP
// (ExternalIP when it has none), sorted. Nodes with this node's name or address are skipped.
// Pure.
std::vector<PodRoute> DesiredPodRoutes(const std::vector<ObjectPtr>& nodes,
                                       const std::string& own_node, const std::string& own_ip);

struct NodeNetworkRulesInput {
  std::string local_pod_cidr;          // "" = not known yet: no masquerade rule
  std::vector<std::string> pod_cidrs;  // every node's, this one's included: not masqueraded
  std::string cluster_dns;             // "" = no redirect
  std::string dns_address;             // where the redirect goes (this node's listener)
  uint16_t dns_port = 53;
  // Jump rules from built-in chains already present (keys from NodeNetworkJumps); the others
  // are inserted.
  std::set<std::string> existing_jumps;
};

// iptables-restore --noflush text for the nat table: chains ORCH-EGRESS (from POSTROUTING) and
// ORCH-DNS (from PREROUTING and OUTPUT), rewritten whole. Pure.
std::string NodeNetworkRules(const NodeNetworkRulesInput& input);

// Which of the jumps NodeNetworkRules inserts iptables-save's nat output already shows.
std::set<std::string> NodeNetworkJumps(const std::string& nat_save);

struct NodeNetworkOptions {
  std::string node_name;
  std::string node_ip;
  std::function<std::string()> local_pod_cidr;  // read at every sync
  std::string cluster_dns;                      // "" = no DNS redirect
  std::string dns_address;
  uint16_t dns_port = 53;
  std::chrono::milliseconds min_sync_period{500};
};

class NodeNetwork : public Component {
 public:
  // Asks for a sync soon (the local pod CIDR arrived). Thread-safe.
  virtual void RequestSync() = 0;
};

// Start registers a handler on the informer of all Nodes and starts the sync thread, which
// after every change replaces or deletes orch's routes and rewrites the two chains; failures are
// retried with back-off. Stop ends the thread and leaves routes and rules in place (a restarted
// agent takes them over). `informers`, `netfilter` and `routes` must outlive the component.
std::unique_ptr<NodeNetwork> NewNodeNetwork(NodeNetworkOptions options, InformerFactory& informers,
                                            Netfilter& netfilter, RouteTable& routes);

// Deletes orch's routes (`orch agent --cleanup`; the chains go with the proxy's cleanup).
Status CleanupPodRoutes(RouteTable& routes);

}  // namespace orch
