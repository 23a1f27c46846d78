// The configuration of each role, built once from the command line, environment and config file
// by cmd/orch/cli.cpp. Role code reads only these structs, never CLI11.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch {

inline constexpr const char* kDefaultDataDir = "/var/lib/orch";
inline constexpr const char* kDefaultKubeconfig = "/etc/orch/orch.yaml";
inline constexpr const char* kDefaultConfigFile = "/etc/orch/config.yaml";

// The packaged components `--disable` can turn off. k3s's names "coredns" and "traefik" are
// accepted too and mean "dns" and "ingress".
inline constexpr std::array<std::string_view, 4> kDisableableComponents = {
    "dns", "servicelb", "ingress", "local-storage"};

// What a node (embedded agent or `orch agent`) needs. After the CLI is done every field is
// filled: node_name and node_ip hold the host's defaults when no flag gave them.
struct AgentConfig {
  std::string data_dir = kDefaultDataDir;
  std::string server_url;  // --join / --server / ORCH_URL; empty for the embedded agent
  std::string token;       // --token / --token-file / ORCH_TOKEN; empty for the embedded agent
  std::string node_name;   // --node-name; default: the host name, lowercased
  std::string node_ip;     // --node-ip; default: the source address of the default route
  std::vector<std::string> node_labels;    // --node-label k=v, validated
  std::vector<std::string> node_taints;    // --node-taint k=v:Effect, validated
  std::string container_runtime_endpoint;  // --container-runtime-endpoint; empty = own containerd
  // Cluster-wide settings: the server's. The embedded agent gets them from the server's flags,
  // a joined agent from the server at start (orch/cluster_settings.h).
  std::string cluster_dns = "10.43.0.10";
  std::string cluster_domain = "cluster.local";
  std::string cluster_cidr = "10.42.0.0/16";
  std::string service_cidr = "10.43.0.0/16";
  // The server's --disable dns: pods keep cluster_dns as their nameserver (as k3s's kubelet), but
  // the node serves no DNS there, so a DNS Service of the user's own can take that address.
  bool disable_dns = false;
  bool disable_kube_proxy = false;  // --disable-kube-proxy: no service proxy on the nodes
  // --flannel-backend: how pods reach other nodes' pods: "host-gw" (routes via node IPs),
  // "vxlan" (flannel.1 overlay) or "none" (no routes). The same on every node.
  std::string flannel_backend = "host-gw";
  // Whether the user gave an agent --flannel-backend / --disable-kube-proxy (flag, variable or
  // config file): a joined agent refuses to start when such a value differs from the server's.
  bool flannel_backend_given = false;
  bool disable_kube_proxy_given = false;
  // --kubelet-arg KEY=VALUE as k3s takes them (src/agent/kubelet_args.h lists what is honoured).
  std::vector<std::string> kubelet_args;
  bool debug = false;
};

// What `orch server` needs; `agent` is the embedded agent's share (its data_dir, cluster_dns,
// cluster_domain and debug mirror the server's).
struct ServerConfig {
  std::string data_dir = kDefaultDataDir;
  int https_listen_port = 6443;
  std::string bind_address = "0.0.0.0";
  std::string advertise_address;  // default: the node IP
  std::vector<std::string> tls_san;
  std::string write_kubeconfig = kDefaultKubeconfig;
  uint32_t write_kubeconfig_mode = 0600;  // --write-kubeconfig-mode, octal on the command line
  std::string token;                      // --token / --token-file / ORCH_TOKEN; empty = generate
  std::string datastore_endpoint;         // empty = embedded SQLite under data_dir
  std::string datastore_cafile;           // TLS files for https:// etcd endpoints
  std::string datastore_certfile;
  std::string datastore_keyfile;
  // HA (src/server/bootstrap.h): --server https://FIRST:6443 joins the cluster of that server
  // (with --token); --cluster-init runs an embedded etcd member; its client and peer ports.
  std::string server_url;
  bool cluster_init = false;
  int etcd_client_port = 2379;
  int etcd_peer_port = 2380;
  std::string cluster_cidr = "10.42.0.0/16";
  std::string service_cidr = "10.43.0.0/16";
  std::string cluster_dns = "10.43.0.10";  // default: the 10th address of service_cidr
  std::string cluster_domain = "cluster.local";
  std::vector<std::string> disable;  // normalized names from kDisableableComponents
  bool disable_agent = false;
  bool disable_scheduler = false;                // --disable-scheduler
  bool disable_controller_manager = false;       // --disable-controller-manager
  int64_t node_monitor_grace_period_ms = 40000;  // --node-monitor-grace-period
  bool debug = false;
  AgentConfig agent;
};

// Checks what a user can get wrong, with a one-line message naming the flag: CIDRs valid, of one
// family and not overlapping; cluster DNS inside the service CIDR; addresses, port, labels,
// taints, names and components well-formed. Empty node_name/node_ip/advertise_address are
// accepted (they mean "the host's default").
Status ValidateServerConfig(const ServerConfig& config);

// As above for `orch agent`, which also needs a server URL (https://HOST:PORT) and a token.
Status ValidateAgentConfig(const AgentConfig& config);

// "coredns" -> "dns", "traefik" -> "ingress", known names unchanged; kInvalidArgument otherwise.
Result<std::string> NormalizeComponentName(std::string_view name);

// Whether `name` (a kDisableableComponents entry) is turned off by --disable.
bool IsDisabled(const ServerConfig& config, std::string_view name);

}  // namespace orch
