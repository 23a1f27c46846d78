// The node's share of the pod network outside CNI: routes to the other nodes' pod CIDRs, either
// through their InternalIPs (flannel's host-gw backend) or through a VXLAN device (flannel's vxlan
// backend), masquerade of pod traffic leaving the cluster, and the redirect of the cluster DNS
// address to this node's DNS listener.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
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
  PodRoute() = default;
  PodRoute(std::string to, std::string next_hop, std::string device = "")
      : cidr(std::move(to)), via(std::move(next_hop)), dev(std::move(device)) {}
  std::string cidr;  // another node's pod CIDR
  std::string via;   // host-gw: that node's InternalIP; vxlan: its flannel.1 address
  std::string dev;   // "" (host-gw: the kernel picks it) or the VXLAN device (`onlink`)
  // A route is known by where it leads and its next hop; the device follows from those.
  bool operator==(const PodRoute& o) const { return cidr == o.cidr && via == o.via; }
  auto operator<=>(const PodRoute& o) const {
    if (auto c = cidr <=> o.cidr; c != 0) return c;
    return via <=> o.via;
  }
};

// flannel's names, so tools that know flannel recognise orch's overlay: the device, its VNI and
// UDP port, and the Node annotations through which nodes find each other's VXLAN endpoint.
inline constexpr char kVxlanDevice[] = "flannel.1";
inline constexpr int kVxlanVni = 1;
inline constexpr int kVxlanPort = 8472;
inline constexpr int kVxlanOverhead = 50;  // outer IPv4 + UDP + VXLAN + Ethernet headers
inline constexpr char kBackendTypeAnnotation[] = "flannel.alpha.coreos.com/backend-type";
inline constexpr char kBackendDataAnnotation[] = "flannel.alpha.coreos.com/backend-data";
inline constexpr char kPublicIpAnnotation[] = "flannel.alpha.coreos.com/public-ip";

// Another node's VXLAN endpoint as this node's kernel knows it: a permanent neighbour entry
// (gateway -> mac) and a forwarding entry (mac -> node_ip) on the VXLAN device.
struct VxlanPeer {
  std::string cidr;     // its pod CIDR (not known to the kernel's entries: not compared)
  std::string gateway;  // the network address of its pod CIDR: its flannel.1 address
  std::string mac;      // its flannel.1 MAC (VtepMAC)
  std::string node_ip;  // where the encapsulated packets go
  bool operator==(const VxlanPeer& o) const {
    return gateway == o.gateway && mac == o.mac && node_ip == o.node_ip;
  }
};

// The VXLAN device and its peer entries. Thread-safe.
class Overlay {
 public:
  virtual ~Overlay() = default;
  // Creates flannel.1 (VNI 1, UDP 8472, no learning) on the interface that holds node_ip, or
  // recreates it when those differ; sets its MTU (that interface's minus kVxlanOverhead) and
  // address (`address`/32) and brings it up. Returns its MAC.
  virtual Result<std::string> Ensure(const std::string& node_ip, const std::string& address) = 0;
  virtual Result<std::vector<VxlanPeer>> ListPeers() = 0;  // cidr left empty
  virtual Status AddPeer(const VxlanPeer& peer) = 0;       // neighbour, then forwarding entry
  virtual Status DeletePeer(const VxlanPeer& peer) = 0;
  // Deletes the device (its routes and entries go with it); Ok when there is none.
  virtual Status Remove() = 0;
};

// `ip` and `bridge` from PATH (or /usr/sbin, /sbin).
std::unique_ptr<Overlay> NewSystemOverlay();

// The MTU pods get: that of the interface holding node_ip, less kVxlanOverhead for "vxlan"; for
// the other backends 0 (the CNI default, 1500) unless the interface's is smaller.
Result<int> PodMtu(const std::string& backend, const std::string& node_ip);

// The VXLAN peers this node wants: every other node with a pod CIDR whose annotations say
// backend vxlan and give a VtepMAC (public-ip, else its InternalIP, as the endpoint). Pure.
std::vector<VxlanPeer> DesiredVxlanPeers(const std::vector<ObjectPtr>& nodes,
                                         const std::string& own_node, const std::string& own_ip);

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

// iptables-restore --noflush text, chains rewritten whole: in nat ORCH-EGRESS (from POSTROUTING)
// and ORCH-DNS (from PREROUTING and OUTPUT); in filter ORCH-POD-FORWARD (from FORWARD), which
// accepts traffic from and to every pod CIDR. Pure.
std::string NodeNetworkRules(const NodeNetworkRulesInput& input);

// Which of the jumps NodeNetworkRules inserts iptables-save's output (nat and filter tables)
// already shows.
std::set<std::string> NodeNetworkJumps(const std::string& saved);

struct NodeNetworkOptions {
  std::string node_name;
  std::string node_ip;
  std::string backend = "host-gw";  // "host-gw", "vxlan" or "none" (AgentConfig::flannel_backend)
  // Merges these annotations into this node's metadata (flannel's backend annotations, so the
  // other nodes find this one's VXLAN endpoint). Called from the sync thread; may block.
  std::function<Status(const std::map<std::string, std::string>&)> annotate;
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
// after every change replaces or deletes orch's routes (and with vxlan the device, its peer
// entries and this node's annotations) and rewrites the two chains; failures are retried with
// back-off. With another backend than vxlan a VXLAN device left from before is removed. Stop
// ends the thread and leaves routes and rules in place (a restarted agent takes them over).
// `informers`, `netfilter`, `routes` and `overlay` (required for vxlan) must outlive it.
std::unique_ptr<NodeNetwork> NewNodeNetwork(NodeNetworkOptions options, InformerFactory& informers,
                                            Netfilter& netfilter, RouteTable& routes,
                                            Overlay* overlay = nullptr);

// Deletes orch's routes (`orch agent --cleanup`; the chains go with the proxy's cleanup) and,
// when given, the VXLAN device.
Status CleanupPodRoutes(RouteTable& routes, Overlay* overlay = nullptr);

}  // namespace orch
