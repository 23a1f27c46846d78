// Validation of the role configs (orch/config.h): every check a user's flag or config file can
// fail, each returning a message that names the flag.
#include "orch/config.h"

#include <fmt/format.h>

#include <algorithm>

#include "orch/names.h"
#include "orch/net.h"

namespace orch {
namespace {

Status Prefixed(std::string_view flag, const Status& status) {
  if (status.ok()) return status;
  return InvalidArgument(fmt::format("--{}: {}", flag, status.message()));
}

Status CheckAddress(std::string_view flag, const std::string& value, bool allow_empty) {
  if (value.empty() && allow_empty) return Status::Ok();
  return Prefixed(flag, IpAddress::Parse(value).status());
}

Result<Cidr> CheckCidr(std::string_view flag, const std::string& value) {
  if (value.find(',') != std::string::npos) {
    return InvalidArgument(fmt::format(
        "--{}: '{}': dual-stack (comma-separated) CIDRs are not supported yet", flag, value));
  }
  auto cidr = Cidr::Parse(value);
  if (!cidr.ok()) return Prefixed(flag, cidr.status());
  return cidr;
}

// The node fields shared by the embedded agent and `orch agent`.
Status ValidateNode(const AgentConfig& config) {
  if (!config.node_name.empty()) {
    if (Status s = Prefixed("node-name", ValidateDnsSubdomain(config.node_name)); !s.ok()) {
      return s;
    }
  }
  if (Status s = CheckAddress("node-ip", config.node_ip, true); !s.ok()) return s;
  for (const std::string& label : config.node_labels) {
    if (Status s = Prefixed("node-label", ParseLabel(label).status()); !s.ok()) return s;
  }
  for (const std::string& taint : config.node_taints) {
    if (Status s = Prefixed("node-taint", ParseTaint(taint).status()); !s.ok()) return s;
  }
  if (config.data_dir.empty()) return InvalidArgument("--data-dir: must not be empty");
  if (config.flannel_backend != "host-gw" && config.flannel_backend != "vxlan" &&
      config.flannel_backend != "none") {
    return InvalidArgument(fmt::format(
        "--flannel-backend: '{}' is not one of host-gw, vxlan, none", config.flannel_backend));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> NormalizeComponentName(std::string_view name) {
  if (name == "coredns") return std::string("dns");
  if (name == "traefik") return std::string("ingress");
  if (std::find(kDisableableComponents.begin(), kDisableableComponents.end(), name) !=
      kDisableableComponents.end()) {
    return std::string(name);
  }
  return InvalidArgument(fmt::format("--disable: unknown component '{}' (known: {})", name,
                                     fmt::join(kDisableableComponents, ", ")));
}

bool IsDisabled(const ServerConfig& config, std::string_view name) {
  return std::find(config.disable.begin(), config.disable.end(), name) != config.disable.end();
}

Status ValidateServerConfig(const ServerConfig& config) {
  if (config.data_dir.empty()) return InvalidArgument("--data-dir: must not be empty");
  if (Status s = Prefixed("https-listen-port", ValidatePort(config.https_listen_port)); !s.ok()) {
    return s;
  }
  if (Status s = CheckAddress("bind-address", config.bind_address, false); !s.ok()) return s;
  if (Status s = CheckAddress("advertise-address", config.advertise_address, true); !s.ok()) {
    return s;
  }
  for (const std::string& san : config.tls_san) {
    if (!IpAddress::Parse(san).ok() && !ValidateDnsHostName(san).ok()) {
      return InvalidArgument(
          fmt::format("--tls-san: '{}' is neither an IP address nor a DNS name", san));
    }
  }
  if (config.write_kubeconfig.empty()) {
    return InvalidArgument("--write-kubeconfig: must not be empty");
  }
  if (config.write_kubeconfig_mode > 0777) {
    return InvalidArgument(fmt::format("--write-kubeconfig-mode: {:o} is not a file mode",
                                       config.write_kubeconfig_mode));
  }

  auto cluster_cidr = CheckCidr("cluster-cidr", config.cluster_cidr);
  if (!cluster_cidr.ok()) return cluster_cidr.status();
  auto service_cidr = CheckCidr("service-cidr", config.service_cidr);
  if (!service_cidr.ok()) return service_cidr.status();
  if (cluster_cidr->family() != service_cidr->family()) {
    return InvalidArgument(
        fmt::format("--cluster-cidr {} and --service-cidr {} must be of the "
                    "same IP family",
                    cluster_cidr->ToString(), service_cidr->ToString()));
  }
  if (cluster_cidr->Overlaps(*service_cidr)) {
    return InvalidArgument(fmt::format("--cluster-cidr {} and --service-cidr {} overlap",
                                       cluster_cidr->ToString(), service_cidr->ToString()));
  }
  auto dns = IpAddress::Parse(config.cluster_dns);
  if (!dns.ok()) return Prefixed("cluster-dns", dns.status());
  if (!service_cidr->Contains(*dns)) {
    return InvalidArgument(fmt::format("--cluster-dns {} is outside --service-cidr {}",
                                       dns->ToString(), service_cidr->ToString()));
  }
  if (*dns == service_cidr->network()) {
    return InvalidArgument(
        fmt::format("--cluster-dns {} is the network address of --service-cidr", dns->ToString()));
  }
  if (Status s = Prefixed("cluster-domain", ValidateDnsSubdomain(config.cluster_domain)); !s.ok()) {
    return s;
  }
  for (const std::string& component : config.disable) {
    if (Status s = NormalizeComponentName(component).status(); !s.ok()) return s;
  }
  if (config.cluster_init && !config.datastore_endpoint.empty()) {
    return InvalidArgument(
        "--cluster-init runs its own etcd: it cannot go with --datastore-endpoint");
  }
  if (!config.server_url.empty() && config.token.empty()) {
    return InvalidArgument("--server needs the cluster's --token (or --token-file)");
  }
  if (!config.server_url.empty() && !config.server_url.starts_with("https://")) {
    return InvalidArgument("--server: '" + config.server_url + "' is not an https:// URL");
  }
  for (auto [flag, port] : {std::pair{"etcd-client-port", config.etcd_client_port},
                            std::pair{"etcd-peer-port", config.etcd_peer_port}}) {
    if (Status s = Prefixed(flag, ValidatePort(port)); !s.ok()) return s;
  }
  return ValidateNode(config.agent);
}

Status ValidateAgentConfig(const AgentConfig& config) {
  if (config.server_url.empty()) {
    return InvalidArgument(
        "an agent needs the server to join: --server https://HOST:6443 (or "
        "ORCH_URL)");
  }
  std::string_view url = config.server_url;
  if (!url.starts_with("https://") || url.size() == std::string_view("https://").size()) {
    return InvalidArgument(
        fmt::format("--server: '{}' must be an https:// URL, e.g. https://10.0.0.1:6443", url));
  }
  if (config.token.empty()) {
    return InvalidArgument(
        "an agent needs the cluster's join token: --token or --token-file (or "
        "ORCH_TOKEN)");
  }
  if (Status s = Prefixed("cluster-domain", ValidateDnsSubdomain(config.cluster_domain)); !s.ok()) {
    return s;
  }
  if (Status s = CheckAddress("cluster-dns", config.cluster_dns, false); !s.ok()) return s;
  return ValidateNode(config);
}

}  // namespace orch
