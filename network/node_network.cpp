// The node network component (include/orch/node_network.h): one sync thread, woken by Node
// changes, keeps orch's routes (host-gw, or through the VXLAN device and its peer entries) and
// its egress/DNS nat chains in step with the cluster.
#include "orch/node_network.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "orch/log.h"
#include "sync_loop.h"

namespace orch {
namespace {

constexpr std::string_view kLog = "routes";
constexpr char kEgressChain[] = "ORCH-EGRESS";
constexpr char kDnsChain[] = "ORCH-DNS";
constexpr char kPodForwardChain[] = "ORCH-POD-FORWARD";
constexpr std::chrono::seconds kMaxRetryDelay(30);

struct Jump {
  const char* table;
  const char* chain;
  const char* target;
  const char* comment;
};
constexpr Jump kJumps[] = {
    {"nat", "POSTROUTING", kEgressChain, "orch pod egress masquerade"},
    {"nat", "PREROUTING", kDnsChain, "orch cluster DNS"},
    {"nat", "OUTPUT", kDnsChain, "orch cluster DNS"},
    {"filter", "FORWARD", kPodForwardChain, "orch pod network forwarding"},
};

std::string JumpKey(const Jump& jump) {
  return fmt::format("{}>{}", jump.chain, jump.target);
}

bool IsIPv4Cidr(const std::string& cidr) {
  return cidr.find('.') != std::string::npos && cidr.find('/') != std::string::npos;
}

std::string NodeAddress(const nlohmann::json& node, const char* type) {
  auto status = node.find("status");
  if (status == node.end() || !status->contains("addresses")) return "";
  for (const auto& a : (*status)["addresses"]) {
    if (a.value("type", "") == type) {
      std::string ip = a.value("address", "");
      if (ip.find('.') != std::string::npos) return ip;
    }
  }
  return "";
}

std::string Annotation(const nlohmann::json& node, const char* key) {
  auto metadata = node.find("metadata");
  if (metadata == node.end()) return "";
  auto annotations = metadata->find("annotations");
  if (annotations == metadata->end() || !annotations->is_object()) return "";
  auto value = annotations->find(key);
  return value != annotations->end() && value->is_string() ? value->get<std::string>() : "";
}

// What other nodes need to know of a node's backend.
bool BackendAnnotationsDiffer(const nlohmann::json& a, const nlohmann::json& b) {
  for (const char* key : {kBackendTypeAnnotation, kBackendDataAnnotation, kPublicIpAnnotation}) {
    if (Annotation(a, key) != Annotation(b, key)) return true;
  }
  return false;
}

std::string VtepMac(const nlohmann::json& node) {
  auto data = nlohmann::json::parse(Annotation(node, kBackendDataAnnotation), nullptr, false);
  if (!data.is_object()) return "";
  auto mac = data.find("VtepMAC");
  return mac != data.end() && mac->is_string() ? mac->get<std::string>() : "";
}

// "10.42.1.0/24" -> "10.42.1.0" (spec.podCIDR has its host bits zero).
std::string NetworkAddress(const std::string& cidr) {
  return cidr.substr(0, cidr.find('/'));
}

std::vector<std::string> PodCidrsOf(const nlohmann::json& node) {
  std::vector<std::string> out;
  auto spec = node.find("spec");
  if (spec == node.end()) return out;
  if (auto list = spec->find("podCIDRs"); list != spec->end() && list->is_array()) {
    for (const auto& c : *list) {
      if (c.is_string() && IsIPv4Cidr(c.get<std::string>())) out.push_back(c.get<std::string>());
    }
  }
  std::string single = spec->value("podCIDR", "");
  if (out.empty() && IsIPv4Cidr(single)) out.push_back(single);
  return out;
}

class NodeNetworkImpl : public NodeNetwork {
 public:
  NodeNetworkImpl(NodeNetworkOptions options, InformerFactory& informers, Netfilter& netfilter,
                  RouteTable& routes, Overlay* overlay)
      : options_(std::move(options)),
        nodes_(informers.For(resources::kNodes)),
        netfilter_(netfilter),
        routes_(routes),
        overlay_(overlay) {}
  ~NodeNetworkImpl() override { Stop(); }

  std::string_view Name() const override { return "node-network"; }

  Status Start() override {
    if (options_.backend == "vxlan" && overlay_ == nullptr) {
      return InvalidArgument("the vxlan backend needs an overlay");
    }
    if (options_.backend != "vxlan" && overlay_ != nullptr) {
      // A VXLAN device left from an earlier start with --flannel-backend vxlan.
      if (Status s = overlay_->Remove(); !s.ok()) {
        log::Warn(kLog, "cannot remove {}: {}", kVxlanDevice, s.message());
      }
    }
    // Pods of other nodes are reached by routing through this host.
    if (Status s = netfilter_.SetSysctl("net/ipv4/ip_forward", "1"); !s.ok()) {
      log::Warn(kLog, "pods on other nodes may be unreachable: {}", s.message());
    }
    auto changed = [this](const ObjectPtr&) { RequestSync(); };
    auto updated = [this](const ObjectPtr& old_node, const ObjectPtr& node) {
      if (PodCidrsOf(*old_node) != PodCidrsOf(*node) ||
          NodeAddress(*old_node, "InternalIP") != NodeAddress(*node, "InternalIP") ||
          BackendAnnotationsDiffer(*old_node, *node)) {
        RequestSync();
      }
    };
    nodes_.AddHandler({changed, updated, changed});
    loop_.Start();  // the DNS redirect at once; routes once the node list is known
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }
  void RequestSync() override { loop_.Request(); }

 private:
  Status Sync() {
    NodeNetworkRulesInput input;
    if (options_.local_pod_cidr) input.local_pod_cidr = options_.local_pod_cidr();
    std::vector<ObjectPtr> nodes = nodes_.List();
    for (const ObjectPtr& node : nodes) {
      for (std::string& cidr : PodCidrsOf(*node)) input.pod_cidrs.push_back(std::move(cidr));
    }
    if (!input.local_pod_cidr.empty()) input.pod_cidrs.push_back(input.local_pod_cidr);
    input.cluster_dns = options_.cluster_dns;
    input.dns_address = options_.dns_address;
    input.dns_port = options_.dns_port;
    auto saved = netfilter_.Save("nat");
    if (!saved.ok()) return saved.status();
    auto filter = netfilter_.Save("filter");
    if (!filter.ok()) return filter.status();
    input.existing_jumps = NodeNetworkJumps(*saved + *filter);
    Status rules = netfilter_.Restore(NodeNetworkRules(input));

    Status routes = Status::Ok();
    if (nodes_.HasSynced()) {
      if (options_.backend == "vxlan") {
        routes = SyncVxlan(nodes, input.local_pod_cidr);
      } else if (options_.backend == "host-gw") {
        routes = SyncRoutes(DesiredPodRoutes(nodes, options_.node_name, options_.node_ip));
        if (routes.ok()) {
          routes = Announce(nodes, {{kBackendTypeAnnotation, "host-gw"},
                                    {kPublicIpAnnotation, options_.node_ip}});
        }
      } else {
        routes = SyncRoutes({});  // "none": pods reach other nodes by other means
      }
    }
    return rules.ok() ? routes : rules;
  }

  // flannel's vxlan backend: this node's device and announcement, then for every peer its
  // neighbour and forwarding entries before the route that needs them, stale ones after.
  Status SyncVxlan(const std::vector<ObjectPtr>& nodes, const std::string& local_pod_cidr) {
    if (local_pod_cidr.empty()) return Status::Ok();  // the device's address comes from it
    auto mac = overlay_->Ensure(options_.node_ip, NetworkAddress(local_pod_cidr));
    if (!mac.ok()) return mac.status();
    nlohmann::json data = {{"VNI", kVxlanVni}, {"VtepMAC", *mac}};
    Status announced = Announce(nodes, {{kBackendTypeAnnotation, "vxlan"},
                                        {kBackendDataAnnotation, data.dump()},
                                        {kPublicIpAnnotation, options_.node_ip}});
    std::vector<VxlanPeer> want = DesiredVxlanPeers(nodes, options_.node_name, options_.node_ip);
    auto have = overlay_->ListPeers();
    if (!have.ok()) return have.status();
    Status result = announced;
    for (const VxlanPeer& peer : want) {
      if (std::find(have->begin(), have->end(), peer) != have->end()) continue;
      if (Status s = overlay_->AddPeer(peer); !s.ok()) result = s;
    }
    std::vector<PodRoute> routes;
    for (const VxlanPeer& peer : want) routes.push_back({peer.cidr, peer.gateway, kVxlanDevice});
    std::sort(routes.begin(), routes.end());
    if (Status s = SyncRoutes(routes); !s.ok()) result = s;
    for (VxlanPeer peer : *have) {
      if (std::find(want.begin(), want.end(), peer) != want.end()) continue;
      // The forwarding entry stays while another CIDR of the same node needs it.
      for (const VxlanPeer& w : want) {
        if (w.mac == peer.mac && w.node_ip == peer.node_ip) peer.node_ip.clear();
      }
      if (Status s = overlay_->DeletePeer(peer); !s.ok()) {
        result = s;
      } else {
        log::Info(kLog, "removed the VXLAN peer {} at {}", peer.mac, peer.node_ip);
      }
    }
    return result;
  }

  // Writes the annotations this node's Node object lacks (once; a failure is retried with the
  // sync).
  Status Announce(const std::vector<ObjectPtr>& nodes,
                  const std::map<std::string, std::string>& annotations) {
    if (!options_.annotate) return Status::Ok();
    for (const ObjectPtr& node : nodes) {
      if (node->value("metadata", nlohmann::json::object()).value("name", "") !=
          options_.node_name) {
        continue;
      }
      bool current = true;
      for (const auto& [key, value] : annotations) {
        if (Annotation(*node, key.c_str()) != value) current = false;
      }
      if (current) return Status::Ok();
      return options_.annotate(annotations);
    }
    return Status::Ok();  // not registered yet: its arrival wakes the loop again
  }

  Status SyncRoutes(const std::vector<PodRoute>& want) {
    auto have = routes_.List();
    if (!have.ok()) return have.status();
    Status result = Status::Ok();
    for (const PodRoute& route : *have) {
      if (std::find(want.begin(), want.end(), route) != want.end()) continue;
      if (Status s = routes_.Delete(route); !s.ok()) {
        result = s;
      } else {
        log::Info(kLog, "removed the route to {} via {}", route.cidr, route.via);
      }
    }
    for (const PodRoute& route : want) {
      if (std::find(have->begin(), have->end(), route) != have->end()) continue;
      if (Status s = routes_.Replace(route); !s.ok()) {
        result = s;
      } else {
        log::Info(kLog, "pods in {} are reached via {}", route.cidr, route.via);
      }
    }
    return result;
  }

  const NodeNetworkOptions options_;
  Informer& nodes_;
  Netfilter& netfilter_;
  RouteTable& routes_;
  Overlay* const overlay_;  // null unless the backend may need it

  // Last: its thread uses the members above and is stopped before they go.
  SyncLoop loop_{{.log_name = std::string(kLog),
                  .min_period = options_.min_sync_period,
                  .retry_floor = std::chrono::seconds(1),
                  .retry_max = kMaxRetryDelay,
                  .ready = {}},
                 [this] { return Sync(); }};
};

}  // namespace

std::vector<PodRoute> DesiredPodRoutes(const std::vector<ObjectPtr>& nodes,
                                       const std::string& own_node, const std::string& own_ip) {
  std::vector<PodRoute> out;
  for (const ObjectPtr& node : nodes) {
    const auto& metadata = node->value("metadata", nlohmann::json::object());
    if (metadata.value("name", "") == own_node) continue;
    if (metadata.contains("deletionTimestamp")) continue;
    std::string via = NodeAddress(*node, "InternalIP");
    if (via.empty()) via = NodeAddress(*node, "ExternalIP");
    if (via.empty() || via == own_ip) continue;
    for (std::string& cidr : PodCidrsOf(*node)) out.push_back({std::move(cidr), via});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<VxlanPeer> DesiredVxlanPeers(const std::vector<ObjectPtr>& nodes,
                                         const std::string& own_node, const std::string& own_ip) {
  std::vector<VxlanPeer> out;
  for (const ObjectPtr& node : nodes) {
    const auto& metadata = node->value("metadata", nlohmann::json::object());
    if (metadata.value("name", "") == own_node) continue;
    if (metadata.contains("deletionTimestamp")) continue;
    if (Annotation(*node, kBackendTypeAnnotation) != "vxlan") continue;
    std::string mac = VtepMac(*node);
    if (mac.empty()) continue;
    std::string endpoint = Annotation(*node, kPublicIpAnnotation);
    if (endpoint.empty()) endpoint = NodeAddress(*node, "InternalIP");
    if (endpoint.empty()) endpoint = NodeAddress(*node, "ExternalIP");
    if (endpoint.empty() || endpoint == own_ip) continue;
    for (std::string& cidr : PodCidrsOf(*node)) {
      std::string gateway = NetworkAddress(cidr);
      out.push_back({std::move(cidr), std::move(gateway), mac, endpoint});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const VxlanPeer& a, const VxlanPeer& b) { return a.cidr < b.cidr; });
  return out;
}

std::string NodeNetworkRules(const NodeNetworkRulesInput& input) {
  std::ostringstream text;
  auto jumps = [&](std::string_view table) {
    for (const Jump& jump : kJumps) {
      if (jump.table != table || input.existing_jumps.contains(JumpKey(jump))) continue;
      text << fmt::format("-I {} -m comment --comment \"{}\" -j {}\n", jump.chain, jump.comment,
                          jump.target);
    }
  };
  std::vector<std::string> cidrs = input.pod_cidrs;
  std::sort(cidrs.begin(), cidrs.end());
  cidrs.erase(std::unique(cidrs.begin(), cidrs.end()), cidrs.end());
  text << "*nat\n";
  text << fmt::format(":{} - [0:0]\n:{} - [0:0]\n", kEgressChain, kDnsChain);
  jumps("nat");
  if (!input.local_pod_cidr.empty()) {
    // Pod to pod keeps its source address (the Kubernetes network model); the rest leaves
    // with the node's.
    for (const std::string& cidr : cidrs) {
      text << fmt::format("-A {} -s {} -d {} -j RETURN\n", kEgressChain, input.local_pod_cidr,
                          cidr);
    }
    text << fmt::format(
        "-A {} -s {} -m comment --comment \"pod traffic leaving the cluster\" -j MASQUERADE\n",
        kEgressChain, input.local_pod_cidr);
  }
  if (!input.cluster_dns.empty() && !input.dns_address.empty()) {
    for (const char* proto : {"udp", "tcp"}) {
      text << fmt::format(
          "-A {} -d {}/32 -p {} -m {} --dport 53 -m comment --comment \"cluster DNS on this "
          "node\" -j DNAT --to-destination {}:{}\n",
          kDnsChain, input.cluster_dns, proto, proto, input.dns_address, input.dns_port);
    }
  }
  text << "COMMIT\n";
  // Pod traffic between nodes is forwarded even under a FORWARD policy of DROP (Docker sets
  // one), as flannel does.
  text << "*filter\n";
  text << fmt::format(":{} - [0:0]\n", kPodForwardChain);
  jumps("filter");
  if (!input.local_pod_cidr.empty()) {
    for (const std::string& cidr : cidrs) {
      text << fmt::format("-A {} -s {} -j ACCEPT\n-A {} -d {} -j ACCEPT\n", kPodForwardChain, cidr,
                          kPodForwardChain, cidr);
    }
  }
  text << "COMMIT\n";
  return text.str();
}

std::set<std::string> NodeNetworkJumps(const std::string& nat_save) {
  std::set<std::string> out;
  std::istringstream lines(nat_save);
  std::string line;
  while (std::getline(lines, line)) {
    for (const Jump& jump : kJumps) {
      std::string head = fmt::format("-A {} ", jump.chain);
      std::string tail = fmt::format(" -j {}", jump.target);
      if (line.rfind(head, 0) == 0 && line.size() >= tail.size() &&
          line.compare(line.size() - tail.size(), tail.size(), tail) == 0) {
        out.insert(JumpKey(jump));
      }
    }
  }
  return out;
}

std::unique_ptr<NodeNetwork> NewNodeNetwork(NodeNetworkOptions options, InformerFactory& informers,
                                            Netfilter& netfilter, RouteTable& routes,
                                            Overlay* overlay) {
  return std::make_unique<NodeNetworkImpl>(std::move(options), informers, netfilter, routes,
                                           overlay);
}

Status CleanupPodRoutes(RouteTable& routes, Overlay* overlay) {
  auto have = routes.List();
  if (!have.ok()) return have.status();
  for (const PodRoute& route : *have) {
    if (Status s = routes.Delete(route); !s.ok()) return s;
  }
  return overlay != nullptr ? overlay->Remove() : Status::Ok();
}

}  // namespace orch
