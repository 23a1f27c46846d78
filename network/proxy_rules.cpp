// The service proxy's rules (include/orch/service_proxy.h): Services and EndpointSlices in,
// iptables-restore text out, with kube-proxy's semantics in chains of orch's own.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "orch/json_path.h"
#include "orch/net.h"
#include "orch/service_proxy.h"

namespace orch {
namespace {

using json = nlohmann::json;
using json_path::Field;
using json_path::String;

constexpr char kServicesChain[] = "ORCH-SERVICES";
constexpr char kExternalServicesChain[] = "ORCH-EXTERNAL-SERVICES";
constexpr char kNodePortsChain[] = "ORCH-NODEPORTS";
constexpr char kPostroutingChain[] = "ORCH-POSTROUTING";
constexpr char kMarkMasqChain[] = "ORCH-MARK-MASQ";
constexpr char kFirewallChain[] = "ORCH-FIREWALL";
constexpr char kForwardChain[] = "ORCH-FORWARD";
constexpr char kMasqMark[] = "0x4000";
constexpr int64_t kDefaultAffinitySeconds = 10800;

// The jumps from the built-in chains: table, chain, extra matches, target.
struct Jump {
  const char* table;
  const char* chain;
  const char* matches;
  const char* comment;
  const char* target;
};
constexpr Jump kJumps[] = {
    {"nat", "PREROUTING", "", "orch service portals", kServicesChain},
    {"nat", "OUTPUT", "", "orch service portals", kServicesChain},
    {"nat", "POSTROUTING", "", "orch postrouting rules", kPostroutingChain},
    {"filter", "INPUT", "-m conntrack --ctstate NEW ", "orch external services",
     kExternalServicesChain},
    {"filter", "INPUT", "", "orch firewall", kFirewallChain},
    {"filter", "FORWARD", "-m conntrack --ctstate NEW ", "orch service portals", kServicesChain},
    {"filter", "FORWARD", "-m conntrack --ctstate NEW ", "orch external services",
     kExternalServicesChain},
    {"filter", "FORWARD", "", "orch forwarding rules", kForwardChain},
    {"filter", "OUTPUT", "-m conntrack --ctstate NEW ", "orch service portals", kServicesChain},
    {"filter", "OUTPUT", "", "orch firewall", kFirewallChain},
};

int64_t Int(const json& j, std::initializer_list<std::string_view> path, int64_t fallback = 0) {
  const json& v = Field(j, path);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

bool Bool(const json& j, std::initializer_list<std::string_view> path, bool fallback) {
  const json& v = Field(j, path);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A stable 16-character chain suffix: FNV-1a, base32. Chains are renamed only when what they
// stand for changes.
std::string ChainHash(const std::string& input) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : input) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // A second round over the first hash spreads short inputs over all 80 bits we print.
  uint64_t h2 = h ^ 0x9e3779b97f4a7c15ULL;
  for (unsigned char c : input) {
    h2 ^= c;
    h2 *= 1099511628211ULL;
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  for (int i = 0; i < 12; ++i) out.push_back(kAlphabet[(h >> (i * 5)) & 31]);
  for (int i = 0; i < 4; ++i) out.push_back(kAlphabet[(h2 >> (i * 5)) & 31]);
  return out;
}

bool IsIPv4(const std::string& ip) {
  auto address = IpAddress::Parse(ip);
  return address.ok() && address->family() == IpFamily::kV4;
}

struct Endpoint {
  std::string ip;
  int64_t port = 0;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool local = false;
  std::string chain;  // ORCH-SEP-...
};

struct ServicePort {
  std::string key;       // ns/name:port-name, for comments and hashes
  std::string protocol;  // tcp, udp, sctp
  std::string cluster_ip;
  int64_t port = 0;
  int64_t node_port = 0;
  std::vector<std::string> external_ips;  // spec.externalIPs and load balancer ingress IPs
  bool node_load_balancer = false;        // orch's load balancer: `port` on the node's addresses
  bool external_local = false;            // externalTrafficPolicy Local
  bool internal_local = false;            // internalTrafficPolicy Local
  int64_t affinity_seconds = 0;           // ClientIP affinity; 0 = none
  std::vector<Endpoint> endpoints;
};

// Endpoints traffic may go to: the ready ones, or, when none is ready, the serving ones that are
// terminating (so connections drain instead of failing while a rollout replaces every pod).
std::vector<const Endpoint*> Usable(const std::vector<Endpoint>& all, bool local_only) {
  std::vector<const Endpoint*> ready, draining;
  for (const Endpoint& e : all) {
    if (local_only && !e.local) continue;
    if (e.ready) {
      ready.push_back(&e);
    } else if (e.serving && e.terminating) {
      draining.push_back(&e);
    }
  }
  return ready.empty() ? draining : ready;
}

// The "-A CHAIN ..." lines of `text` by chain, each chain's in their order.
std::map<std::string, std::string> RulesByChain(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (line.rfind("-A ", 0) == 0) {
      std::string_view chain = line.substr(3, line.find(' ', 3) - 3);
      out[std::string(chain)].append(line).push_back('\n');
    }
    start = end + 1;
  }
  return out;
}

// FNV-1a: tells whether a chain's rules changed since the last restore.
uint64_t ContentHash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

class RuleWriter {
 public:
  explicit RuleWriter(const ProxyRulesInput& input) : input_(input) {}

  ProxyRules Build() {
    std::vector<ServicePort> ports = Collect();
    for (const ServicePort& sp : ports) WriteServicePort(sp);
    // NodePorts last among the services: addresses of the node itself.
    nat_ << fmt::format(
        "-A {} -m comment --comment \"orch service nodeports; NOTE: this must be the last rule "
        "in this chain\" -m addrtype --dst-type LOCAL -j {}\n",
        kServicesChain, kNodePortsChain);

    ProxyRules out;
    out.service_ports = ports.size();
    out.endpoints = endpoint_chains_;
    std::ostringstream text;
    for (const char* table : {"filter", "nat"}) {
      const bool nat = std::string_view(table) == "nat";
      const std::set<std::string>& wanted = nat ? nat_chains_ : filter_chains_;
      const std::set<std::string>& existing =
          nat ? input_.existing_nat_chains : input_.existing_filter_chains;
      std::map<std::string, std::string> rules = RulesByChain(nat ? nat_.str() : filter_.str());
      // Chains whose rules are what the last restore left there are not written again.
      std::vector<const std::string*> write;
      for (const std::string& chain : wanted) {
        std::string key = fmt::format("{}/{}", table, chain);
        uint64_t hash = ContentHash(rules[chain]);
        auto written = input_.written_chains.find(key);
        if (written == input_.written_chains.end() || written->second != hash) {
          write.push_back(&chain);
        }
        out.chain_hashes.emplace(std::move(key), hash);
      }
      std::vector<const std::string*> stale;
      for (const std::string& chain : existing) {
        if (!wanted.count(chain)) stale.push_back(&chain);
      }
      std::vector<const Jump*> jumps;
      for (const Jump& jump : kJumps) {
        if (jump.table != std::string_view(table) || !input_.insert_jumps) continue;
        if (input_.existing_jumps.count(JumpKey(jump))) continue;
        jumps.push_back(&jump);
      }
      if (write.empty() && stale.empty() && jumps.empty()) continue;  // nothing to do here
      out.chains_written += write.size();
      text << "*" << table << "\n";
      // Declaring a chain flushes it: the written ones are refilled, the stale ones deleted.
      for (const std::string* chain : write) text << ":" << *chain << " - [0:0]\n";
      for (const std::string* chain : stale) text << ":" << *chain << " - [0:0]\n";
      for (const Jump* jump : jumps) {
        text << fmt::format("-I {} {}-m comment --comment \"{}\" -j {}\n", jump->chain,
                            jump->matches, jump->comment, jump->target);
      }
      for (const std::string* chain : write) text << rules[*chain];
      for (const std::string* chain : stale) text << "-X " << *chain << "\n";
      text << "COMMIT\n";
    }
    out.text = text.str();
    out.nat_chains = std::move(nat_chains_);
    out.filter_chains = std::move(filter_chains_);
    return out;
  }

  static std::string JumpKey(const Jump& jump) {
    return fmt::format("{}/{}>{}", jump.table, jump.chain, jump.target);
  }

 private:
  std::vector<ServicePort> Collect() {
    // The endpoints of each Service, from all of its slices, by Service port name and protocol.
    struct SlicePort {
      int64_t port;
      std::vector<Endpoint> endpoints;
    };
    std::map<std::string, std::map<std::string, std::map<std::string, Endpoint>>> by_service;
    for (const ObjectPtr& slice : input_.slices) {
      const json& s = *slice;
      if (String(s, {"addressType"}) != "IPv4") continue;
      std::string service = String(s, {"metadata", "labels", "kubernetes.io/service-name"});
      if (service.empty()) continue;
      std::string service_key = String(s, {"metadata", "namespace"}) + "/" + service;
      const json& ports = Field(s, {"ports"});
      const json& endpoints = Field(s, {"endpoints"});
      if (!ports.is_array() || !endpoints.is_array()) continue;
      for (const json& port : ports) {
        int64_t number = Int(port, {"port"});
        if (number <= 0) continue;
        std::string port_key =
            String(port, {"name"}) + "/" + Lower(String(port, {"protocol"}, "TCP"));
        auto& eps = by_service[service_key][port_key];
        for (const json& e : endpoints) {
          const json& addresses = Field(e, {"addresses"});
          if (!addresses.is_array() || addresses.empty() || !addresses[0].is_string()) continue;
          Endpoint ep;
          ep.ip = addresses[0].get<std::string>();
          if (!IsIPv4(ep.ip)) continue;
          ep.port = number;
          ep.ready = Bool(e, {"conditions", "ready"}, true);
          ep.serving = Bool(e, {"conditions", "serving"}, ep.ready);
          ep.terminating = Bool(e, {"conditions", "terminating"}, false);
          ep.local = !input_.node_name.empty() && String(e, {"nodeName"}) == input_.node_name;
          eps[fmt::format("{}:{}", ep.ip, ep.port)] = ep;  // a duplicate across slices once
        }
      }
    }

    std::vector<ObjectPtr> services = input_.services;
    std::sort(services.begin(), services.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
      return std::make_pair(String(*a, {"metadata", "namespace"}),
                            String(*a, {"metadata", "name"})) <
             std::make_pair(String(*b, {"metadata", "namespace"}),
                            String(*b, {"metadata", "name"}));
    });
    std::vector<ServicePort> out;
    for (const ObjectPtr& service : services) {
      const json& svc = *service;
      std::string type = String(svc, {"spec", "type"}, "ClusterIP");
      std::string cluster_ip = String(svc, {"spec", "clusterIP"});
      if (type == "ExternalName" || !IsIPv4(cluster_ip)) continue;  // headless or not IPv4
      std::string service_key =
          String(svc, {"metadata", "namespace"}) + "/" + String(svc, {"metadata", "name"});
      const json& ports = Field(svc, {"spec", "ports"});
      if (!ports.is_array()) continue;
      std::vector<std::string> external_ips;
      const json& ext = Field(svc, {"spec", "externalIPs"});
      if (ext.is_array()) {
        for (const json& ip : ext) {
          if (ip.is_string() && IsIPv4(ip.get<std::string>())) external_ips.push_back(ip);
        }
      }
      bool node_load_balancer = false;
      if (type == "LoadBalancer") {
        const json& ingress = Field(svc, {"status", "loadBalancer", "ingress"});
        bool serving_node = false;  // this node is among the ingress addresses
        if (ingress.is_array()) {
          for (const json& i : ingress) {
            std::string ip = String(i, {"ip"});
            const auto& node_ips = input_.node_ips;
            if (std::find(node_ips.begin(), node_ips.end(), ip) != node_ips.end()) {
              serving_node = true;
            }
            // A load balancer that proxies (ipMode Proxy) needs the traffic sent to it.
            if (String(i, {"ipMode"}) == "Proxy") continue;
            if (IsIPv4(ip) &&
                std::find(external_ips.begin(), external_ips.end(), ip) == external_ips.end()) {
              external_ips.push_back(ip);
            }
          }
        }
        // orch's own load balancer (no class) has no pods: the nodes it lists answer at the
        // port themselves. Its status being set is the sign that it runs (--disable servicelb).
        node_load_balancer = String(svc, {"spec", "loadBalancerClass"}).empty() &&
                             ingress.is_array() && !ingress.empty() &&
                             (serving_node || input_.node_ips.empty());
      }
      const bool has_node_ports = type == "NodePort" || type == "LoadBalancer";
      const bool external_local = String(svc, {"spec", "externalTrafficPolicy"}) == "Local" &&
                                  (has_node_ports || !external_ips.empty() || node_load_balancer);
      int64_t affinity = 0;
      if (String(svc, {"spec", "sessionAffinity"}) == "ClientIP") {
        affinity = Int(svc, {"spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"},
                       kDefaultAffinitySeconds);
        if (affinity <= 0) affinity = kDefaultAffinitySeconds;
      }
      for (const json& port : ports) {
        ServicePort sp;
        std::string name = String(port, {"name"});
        sp.protocol = Lower(String(port, {"protocol"}, "TCP"));
        sp.key = name.empty() ? service_key : service_key + ":" + name;
        sp.cluster_ip = cluster_ip;
        sp.port = Int(port, {"port"});
        if (sp.port <= 0) continue;
        if (has_node_ports) sp.node_port = Int(port, {"nodePort"});
        sp.external_ips = external_ips;
        sp.node_load_balancer = node_load_balancer;
        sp.external_local = external_local;
        sp.internal_local = String(svc, {"spec", "internalTrafficPolicy"}) == "Local";
        sp.affinity_seconds = affinity;
        auto service_it = by_service.find(service_key);
        if (service_it != by_service.end()) {
          auto port_it = service_it->second.find(name + "/" + sp.protocol);
          if (port_it != service_it->second.end()) {
            for (auto& [ep_key, ep] : port_it->second) {
              Endpoint e = ep;
              e.chain = "ORCH-SEP-" + ChainHash(sp.key + "/" + sp.protocol + "/" + ep_key);
              sp.endpoints.push_back(std::move(e));
            }
          }
        }
        out.push_back(std::move(sp));
      }
    }
    return out;
  }

  std::string Match(const ServicePort& sp, int64_t port) const {
    return fmt::format("-p {} -m {} --dport {}", sp.protocol, sp.protocol, port);
  }

  void NatChain(const std::string& chain) { nat_chains_.insert(chain); }

  // The rules spreading traffic of `chain` evenly over `endpoints` (each rule takes 1/n of what
  // the ones before it left), with ClientIP affinity checked first.
  void Balance(const std::string& chain, const ServicePort& sp,
               const std::vector<const Endpoint*>& endpoints) {
    if (sp.affinity_seconds > 0) {
      for (const Endpoint* e : endpoints) {
        nat_ << fmt::format(
            "-A {} -m comment --comment \"{} -> {}:{}\" -m recent --name {} --mask "
            "255.255.255.255 --rsource --rcheck --seconds {} --reap -j {}\n",
            chain, sp.key, e->ip, e->port, e->chain, sp.affinity_seconds, e->chain);
      }
    }
    const size_t n = endpoints.size();
    for (size_t i = 0; i < n; ++i) {
      const Endpoint* e = endpoints[i];
      if (i + 1 < n) {
        nat_ << fmt::format(
            "-A {} -m comment --comment \"{} -> {}:{}\" -m statistic --mode random "
            "--probability {:.10f} -j {}\n",
            chain, sp.key, e->ip, e->port, 1.0 / static_cast<double>(n - i), e->chain);
      } else {
        nat_ << fmt::format("-A {} -m comment --comment \"{} -> {}:{}\" -j {}\n", chain, sp.key,
                            e->ip, e->port, e->chain);
      }
    }
  }

  void WriteEndpointChain(const ServicePort& sp, const Endpoint& e) {
    if (nat_chains_.count(e.chain)) return;  // shared by the cluster and local chains
    NatChain(e.chain);
    ++endpoint_chains_;
    // Hairpin: a pod reaching itself through the Service must see the reply come back via NAT.
    nat_ << fmt::format("-A {} -m comment --comment \"{}\" -s {}/32 -j {}\n", e.chain, sp.key, e.ip,
                        kMarkMasqChain);
    std::string affinity;
    if (sp.affinity_seconds > 0) {
      affinity =
          fmt::format("-m recent --name {} --mask 255.255.255.255 --rsource --set ", e.chain);
    }
    nat_ << fmt::format(
        "-A {} -m comment --comment \"{}\" -p {} {}-m {} -j DNAT --to-destination "
        "{}:{}\n",
        e.chain, sp.key, sp.protocol, affinity, sp.protocol, e.ip, e.port);
  }

  void WriteServicePort(const ServicePort& sp) {
    const std::string hash = ChainHash(sp.key + "/" + sp.protocol);
    const std::string svc_chain = "ORCH-SVC-" + hash;
    const std::string ext_chain = "ORCH-EXT-" + hash;
    const std::string local_chain = "ORCH-SVL-" + hash;
    const std::string cidr = input_.local_pod_cidr;

    std::vector<const Endpoint*> cluster = Usable(sp.endpoints, false);
    std::vector<const Endpoint*> local = Usable(sp.endpoints, true);
    // What ClusterIP traffic may reach (internalTrafficPolicy Local: this node's endpoints).
    std::vector<const Endpoint*> internal = sp.internal_local ? local : cluster;

    // The ClusterIP.
    if (!internal.empty()) {
      NatChain(svc_chain);
      nat_ << fmt::format("-A {} -m comment --comment \"{} cluster IP\" -d {}/32 {} -j {}\n",
                          kServicesChain, sp.key, sp.cluster_ip, Match(sp, sp.port), svc_chain);
      if (!cidr.empty()) {
        // From outside the pod network (the node itself, 127.0.0.1): replies must come back here.
        nat_ << fmt::format(
            "-A {} -m comment --comment \"{} cluster IP\" ! -s {} -d {}/32 {} -j {}\n", svc_chain,
            sp.key, cidr, sp.cluster_ip, Match(sp, sp.port), kMarkMasqChain);
      }
      Balance(svc_chain, sp, internal);
      for (const Endpoint* e : internal) WriteEndpointChain(sp, *e);
    } else {
      filter_ << fmt::format(
          "-A {} -m comment --comment \"{} has no endpoints\" -d {}/32 {} -j REJECT "
          "--reject-with icmp-port-unreachable\n",
          kServicesChain, sp.key, sp.cluster_ip, Match(sp, sp.port));
    }

    // Traffic from outside: NodePorts, externalIPs, load balancer IPs and ports.
    if (sp.node_port <= 0 && sp.external_ips.empty() && !sp.node_load_balancer) return;
    // The ports taken on the node's own addresses.
    std::vector<std::pair<int64_t, const char*>> node_ports;
    if (sp.node_port > 0) node_ports.emplace_back(sp.node_port, "");
    if (sp.node_load_balancer) node_ports.emplace_back(sp.port, " load balancer");
    if (cluster.empty()) {
      for (const std::string& ip : sp.external_ips) {
        filter_ << fmt::format(
            "-A {} -m comment --comment \"{} has no endpoints\" -d {}/32 {} -j REJECT "
            "--reject-with icmp-port-unreachable\n",
            kExternalServicesChain, sp.key, ip, Match(sp, sp.port));
      }
      for (const auto& [port, what] : node_ports) {
        filter_ << fmt::format(
            "-A {} -m comment --comment \"{}{} has no endpoints\" -m addrtype --dst-type LOCAL "
            "{} -j REJECT --reject-with icmp-port-unreachable\n",
            kExternalServicesChain, sp.key, what, Match(sp, port));
      }
      return;
    }
    NatChain(ext_chain);
    if (!sp.external_local) {
      // Any node may forward to any endpoint: the reply must come back through this node.
      nat_ << fmt::format(
          "-A {} -m comment --comment \"masquerade traffic for {} external "
          "destinations\" -j {}\n",
          ext_chain, sp.key, kMarkMasqChain);
      nat_ << fmt::format("-A {} -j {}\n", ext_chain, svc_chain);
      if (internal.empty()) {
        // internalTrafficPolicy Local without local endpoints: the cluster chain still serves
        // external traffic.
        NatChain(svc_chain);
        Balance(svc_chain, sp, cluster);
        for (const Endpoint* e : cluster) WriteEndpointChain(sp, *e);
      }
    } else {
      // externalTrafficPolicy Local keeps the client's address and only uses this node's
      // endpoints, except for pods and the node itself, which get the whole Service.
      if (!internal.empty()) {
        if (!cidr.empty()) {
          nat_ << fmt::format(
              "-A {} -m comment --comment \"pod traffic for {} external "
              "destinations\" -s {} -j {}\n",
              ext_chain, sp.key, cidr, svc_chain);
        }
        nat_ << fmt::format(
            "-A {} -m comment --comment \"masquerade LOCAL traffic for {} "
            "external destinations\" -m addrtype --src-type LOCAL -j {}\n",
            ext_chain, sp.key, kMarkMasqChain);
        nat_ << fmt::format(
            "-A {} -m comment --comment \"route LOCAL traffic for {} external "
            "destinations\" -m addrtype --src-type LOCAL -j {}\n",
            ext_chain, sp.key, svc_chain);
      }
      if (!local.empty()) {
        NatChain(local_chain);
        nat_ << fmt::format("-A {} -j {}\n", ext_chain, local_chain);
        Balance(local_chain, sp, local);
        for (const Endpoint* e : local) WriteEndpointChain(sp, *e);
      } else {
        // No endpoint here: external traffic is dropped, as kube-proxy does.
        for (const std::string& ip : sp.external_ips) {
          filter_ << fmt::format(
              "-A {} -m comment --comment \"{} has no local endpoints\" -d {}/32 {} -j DROP\n",
              kExternalServicesChain, sp.key, ip, Match(sp, sp.port));
        }
        for (const auto& [port, what] : node_ports) {
          filter_ << fmt::format(
              "-A {} -m comment --comment \"{}{} has no local endpoints\" -m addrtype "
              "--dst-type LOCAL {} -j DROP\n",
              kExternalServicesChain, sp.key, what, Match(sp, port));
        }
      }
    }
    for (const std::string& ip : sp.external_ips) {
      nat_ << fmt::format("-A {} -m comment --comment \"{} external IP\" -d {}/32 {} -j {}\n",
                          kServicesChain, sp.key, ip, Match(sp, sp.port), ext_chain);
    }
    for (const auto& [port, what] : node_ports) {
      nat_ << fmt::format("-A {} -m comment --comment \"{}{}\" {} -j {}\n", kNodePortsChain, sp.key,
                          what, Match(sp, port), ext_chain);
    }
  }

 public:
  void WriteFixedChains() {
    nat_chains_ = {kServicesChain, kNodePortsChain, kPostroutingChain, kMarkMasqChain};
    filter_chains_ = {kServicesChain, kExternalServicesChain, kFirewallChain, kForwardChain};
    nat_ << fmt::format("-A {} -j MARK --or-mark {}\n", kMarkMasqChain, kMasqMark);
    nat_ << fmt::format("-A {} -m mark ! --mark {}/{} -j RETURN\n", kPostroutingChain, kMasqMark,
                        kMasqMark);
    // The mark must not follow the packet (it may be re-routed through this host again).
    nat_ << fmt::format("-A {} -j MARK --xor-mark {}\n", kPostroutingChain, kMasqMark);
    nat_ << fmt::format(
        "-A {} -m comment --comment \"orch service traffic requiring SNAT\" -j MASQUERADE\n",
        kPostroutingChain);
    // route_localnet lets NodePorts answer on 127.0.0.1; nothing else may reach 127/8 from
    // outside.
    filter_ << fmt::format(
        "-A {} -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s "
        "127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n",
        kFirewallChain);
    // Service traffic is forwarded even under a FORWARD policy of DROP (Docker sets one).
    filter_ << fmt::format(
        "-A {} -m comment --comment \"orch forwarding rules\" -m mark --mark {}/{} -j ACCEPT\n",
        kForwardChain, kMasqMark, kMasqMark);
    filter_ << fmt::format(
        "-A {} -m comment --comment \"orch forwarding conntrack rule\" -m conntrack --ctstate "
        "RELATED,ESTABLISHED -j ACCEPT\n",
        kForwardChain);
  }

 private:
  const ProxyRulesInput& input_;
  std::ostringstream nat_;
  std::ostringstream filter_;
  std::set<std::string> nat_chains_;
  std::set<std::string> filter_chains_;
  size_t endpoint_chains_ = 0;
};

bool IsOrchChain(const std::string& chain) {
  return chain.rfind("ORCH-", 0) == 0;
}

// The node network's chains (node_network.cpp) are orch's but not the proxy's to delete; the
// cleanup removes them too.
bool IsProxyChain(const std::string& chain) {
  return IsOrchChain(chain) && chain != "ORCH-DNS" && chain != "ORCH-EGRESS" &&
         chain != "ORCH-POD-FORWARD";
}

}  // namespace

ProxyRules BuildProxyRules(const ProxyRulesInput& input) {
  RuleWriter writer(input);
  writer.WriteFixedChains();
  return writer.Build();
}

ExistingRules ParseSavedRules(const std::string& save_output, const std::string& table) {
  ExistingRules out;
  std::istringstream in(save_output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > 1 && line[0] == ':') {
      std::string chain = line.substr(1, line.find(' ') - 1);
      if (IsProxyChain(chain)) out.chains.insert(chain);
      continue;
    }
    if (line.rfind("-A ", 0) != 0) continue;
    std::string chain = line.substr(3, line.find(' ', 3) - 3);
    for (const Jump& jump : kJumps) {
      if (jump.table != table || chain != jump.chain) continue;
      std::string tail = std::string(" -j ") + jump.target;
      if (line.size() >= tail.size() &&
          line.compare(line.size() - tail.size(), tail.size(), tail) == 0) {
        out.jumps.insert(RuleWriter::JumpKey(jump));
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> JumpSourceChains() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Jump& jump : kJumps) {
    std::pair<std::string, std::string> source{jump.table, jump.chain};
    if (std::find(out.begin(), out.end(), source) == out.end()) out.push_back(std::move(source));
  }
  return out;
}

Result<std::string> Netfilter::SaveChain(const std::string& table, const std::string& chain) {
  auto saved = Save(table);
  if (!saved.ok()) return saved.status();
  std::string prefix = "-A " + chain + " ";
  std::string out;
  std::istringstream in(*saved);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) out += line + "\n";
  }
  return out;
}

std::string CleanupRules(const std::string& nat_save, const std::string& filter_save) {
  std::ostringstream text;
  for (const auto& [table, save] :
       {std::pair<std::string, const std::string&>{"filter", filter_save}, {"nat", nat_save}}) {
    std::set<std::string> chains;  // every one of orch's, the node network's included
    std::vector<std::string> deletes;
    std::istringstream in(save);
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() > 1 && line[0] == ':') {
        std::string chain = line.substr(1, line.find(' ') - 1);
        if (IsOrchChain(chain)) chains.insert(chain);
        continue;
      }
      if (line.rfind("-A ", 0) != 0) continue;
      std::string chain = line.substr(3, line.find(' ', 3) - 3);
      if (IsOrchChain(chain)) continue;  // goes with its chain
      // A rule of a built-in (or someone else's) chain that jumps to one of ours.
      auto target = line.rfind(" -j ");
      if (target == std::string::npos) continue;
      std::string to = line.substr(target + 4);
      to = to.substr(0, to.find(' '));
      if (IsOrchChain(to)) deletes.push_back("-D" + line.substr(2));
    }
    if (chains.empty() && deletes.empty()) continue;
    text << "*" << table << "\n";
    for (const std::string& chain : chains) text << ":" << chain << " - [0:0]\n";
    for (const std::string& d : deletes) text << d << "\n";
    for (const std::string& chain : chains) text << "-X " << chain << "\n";
    text << "COMMIT\n";
  }
  return text.str();
}

}  // namespace orch
