// The cluster-wide settings a server hands its agents (orch/cluster_settings.h): their JSON form,
// and how a joined agent takes them over its own flags.
#include "orch/cluster_settings.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "orch/names.h"
#include "orch/net.h"

namespace orch {
namespace {

using json = nlohmann::json;

Result<std::string> StringField(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) {
    return InvalidArgument(fmt::format("the server's settings have no string \"{}\"", key));
  }
  return it->get<std::string>();
}

Result<bool> BoolField(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_boolean()) {
    return InvalidArgument(fmt::format("the server's settings have no boolean \"{}\"", key));
  }
  return it->get<bool>();
}

}  // namespace

ClusterSettings ClusterSettingsOf(const ServerConfig& config) {
  return {.cluster_cidr = config.cluster_cidr,
          .service_cidr = config.service_cidr,
          .cluster_dns = config.cluster_dns,
          .cluster_domain = config.cluster_domain,
          .disable_dns = IsDisabled(config, "dns"),
          .flannel_backend = config.agent.flannel_backend,
          .disable_kube_proxy = config.agent.disable_kube_proxy};
}

std::string ClusterSettingsToJson(const ClusterSettings& s) {
  return json{{"clusterCIDR", s.cluster_cidr},
              {"serviceCIDR", s.service_cidr},
              {"clusterDNS", s.cluster_dns},
              {"clusterDomain", s.cluster_domain},
              {"disableDNS", s.disable_dns},
              {"flannelBackend", s.flannel_backend},
              {"disableKubeProxy", s.disable_kube_proxy}}
      .dump();
}

Result<ClusterSettings> ParseClusterSettings(std::string_view json_text) {
  json body = json::parse(json_text, nullptr, false);
  if (!body.is_object()) return InvalidArgument("the server's settings are not a JSON object");
  ClusterSettings s;
  for (auto [key, field] : {std::pair{"clusterCIDR", &s.cluster_cidr},
                            {"serviceCIDR", &s.service_cidr},
                            {"clusterDNS", &s.cluster_dns},
                            {"clusterDomain", &s.cluster_domain},
                            {"flannelBackend", &s.flannel_backend}}) {
    auto value = StringField(body, key);
    if (!value.ok()) return value.status();
    *field = std::move(*value);
  }
  for (auto [key, field] :
       {std::pair{"disableDNS", &s.disable_dns}, {"disableKubeProxy", &s.disable_kube_proxy}}) {
    auto value = BoolField(body, key);
    if (!value.ok()) return value.status();
    *field = *value;
  }
  // Checked as the server's flags are: a value the node cannot use is refused here, once, rather
  // than failing somewhere in the network setup.
  for (auto [key, cidr] :
       {std::pair{"clusterCIDR", &s.cluster_cidr}, {"serviceCIDR", &s.service_cidr}}) {
    if (auto parsed = Cidr::Parse(*cidr); !parsed.ok()) {
      return InvalidArgument(
          fmt::format("the server's {} '{}': {}", key, *cidr, parsed.status().message()));
    }
  }
  if (auto dns = IpAddress::Parse(s.cluster_dns); !dns.ok()) {
    return InvalidArgument(
        fmt::format("the server's clusterDNS '{}': {}", s.cluster_dns, dns.status().message()));
  }
  if (Status v = ValidateDnsSubdomain(s.cluster_domain); !v.ok()) {
    return InvalidArgument(
        fmt::format("the server's clusterDomain '{}': {}", s.cluster_domain, v.message()));
  }
  if (s.flannel_backend != "host-gw" && s.flannel_backend != "vxlan" &&
      s.flannel_backend != "none") {
    return InvalidArgument(
        fmt::format("the server's flannelBackend '{}' is not one of host-gw, "
                    "vxlan, none (is the agent older than the server?)",
                    s.flannel_backend));
  }
  return s;
}

Status ApplyClusterSettings(const ClusterSettings& settings, AgentConfig& config,
                            std::vector<std::string>* notes) {
  if (config.flannel_backend_given && config.flannel_backend != settings.flannel_backend) {
    return InvalidArgument(fmt::format(
        "--flannel-backend {}: the server runs flannel backend {}, and every node must use the "
        "server's (remove the flag to take it)",
        config.flannel_backend, settings.flannel_backend));
  }
  if (config.disable_kube_proxy_given && config.disable_kube_proxy != settings.disable_kube_proxy) {
    return InvalidArgument(fmt::format(
        "--disable-kube-proxy={}: the server has --disable-kube-proxy={}, and every node must "
        "follow the server (remove the flag to take it)",
        config.disable_kube_proxy, settings.disable_kube_proxy));
  }
  auto note = [&](const char* what, const std::string& from, const std::string& to) {
    if (notes != nullptr && from != to) {
      notes->push_back(
          fmt::format("{} {} (the server's; this node's default was {})", what, to, from));
    }
  };
  auto yes_no = [](bool b) { return std::string(b ? "true" : "false"); };
  note("cluster-cidr", config.cluster_cidr, settings.cluster_cidr);
  note("service-cidr", config.service_cidr, settings.service_cidr);
  note("cluster-dns", config.cluster_dns, settings.cluster_dns);
  note("cluster-domain", config.cluster_domain, settings.cluster_domain);
  note("disable dns", yes_no(config.disable_dns), yes_no(settings.disable_dns));
  note("flannel-backend", config.flannel_backend, settings.flannel_backend);
  note("disable-kube-proxy", yes_no(config.disable_kube_proxy),
       yes_no(settings.disable_kube_proxy));
  config.cluster_cidr = settings.cluster_cidr;
  config.service_cidr = settings.service_cidr;
  config.cluster_dns = settings.cluster_dns;
  config.cluster_domain = settings.cluster_domain;
  config.disable_dns = settings.disable_dns;
  config.flannel_backend = settings.flannel_backend;
  config.disable_kube_proxy = settings.disable_kube_proxy;
  return Status::Ok();
}

}  // namespace orch
