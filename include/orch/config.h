// The configuration of each role, built once from the command line and config file by
// cmd/orch/main.cpp. Role code reads only these structs, never CLI11.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace orch {

// What a node (embedded agent or `orch agent`) needs.
struct AgentConfig {
  std::string data_dir = "/var/lib/orch";
  std::string server_url;  // --join / --server / ORCH_URL; empty for the embedded agent
  std::string token;       // --token / --token-file / ORCH_TOKEN
  std::string node_name;   // --node-name; default: the host name
  std::string node_ip;     // --node-ip; default: the address of the default route
  std::vector<std::string> node_labels;  // --node-label k=v
  std::vector<std::string> node_taints;  // --node-taint k=v:Effect
  std::string container_runtime_endpoint;  // --container-runtime-endpoint; empty = own containerd
  std::string cluster_dns = "10.43.0.10";
  std::string cluster_domain = "cluster.local";
  bool debug = false;
};

// What `orch server` needs; `agent` is the embedded agent's share.
struct ServerConfig {
  std::string data_dir = "/var/lib/orch";
  int https_listen_port = 6443;
  std::string bind_address = "0.0.0.0";
  std::string advertise_address;  // default: the node IP
  std::vector<std::string> tls_san;
  std::string write_kubeconfig = "/etc/orch/orch.yaml";
  std::string write_kubeconfig_mode;  // octal, e.g. "0644"; empty = 0600
  std::string token;                  // --token / --token-file / ORCH_TOKEN; empty = generate
  std::string datastore_endpoint;     // empty = embedded SQLite under data_dir
  std::string cluster_cidr = "10.42.0.0/16";
  std::string service_cidr = "10.43.0.0/16";
  std::vector<std::string> disable;   // --disable COMPONENT (e.g. servicelb, ingress, dns)
  bool disable_agent = false;
  bool debug = false;
  AgentConfig agent;
};

}  // namespace orch
