// The cluster-wide settings a server hands its agents: what a server serves, the JSON round trip,
// and how a joined agent takes them (the server wins; a conflicting flag the user gave refuses).
#include "orch/cluster_settings.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using Catch::Matchers::Contains;
using nlohmann::json;

namespace orch {
namespace {

ServerConfig Server() {
  ServerConfig config;
  config.cluster_cidr = "10.52.0.0/16";
  config.service_cidr = "10.53.0.0/16";
  config.cluster_dns = "10.53.0.53";
  config.cluster_domain = "example.local";
  config.disable = {"dns", "servicelb"};
  config.agent.flannel_backend = "vxlan";
  config.agent.disable_kube_proxy = true;
  return config;
}

}  // namespace

TEST_CASE("a server serves its own flags, --disable dns included") {
  ClusterSettings s = ClusterSettingsOf(Server());
  CHECK(s.cluster_cidr == "10.52.0.0/16");
  CHECK(s.service_cidr == "10.53.0.0/16");
  CHECK(s.cluster_dns == "10.53.0.53");
  CHECK(s.cluster_domain == "example.local");
  CHECK(s.disable_dns);
  CHECK(s.flannel_backend == "vxlan");
  CHECK(s.disable_kube_proxy);
  CHECK_FALSE(ClusterSettingsOf(ServerConfig()).disable_dns);
}

TEST_CASE("the settings survive their JSON form, with the documented keys") {
  ClusterSettings s = ClusterSettingsOf(Server());
  std::string text = ClusterSettingsToJson(s);
  json body = json::parse(text);
  CHECK(body["clusterDNS"] == "10.53.0.53");
  CHECK(body["clusterDomain"] == "example.local");
  CHECK(body["flannelBackend"] == "vxlan");
  CHECK(body["disableDNS"] == true);
  CHECK(body["disableKubeProxy"] == true);
  CHECK(body["clusterCIDR"] == "10.52.0.0/16");
  CHECK(body["serviceCIDR"] == "10.53.0.0/16");
  auto parsed = ParseClusterSettings(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == s);

  // Keys a newer server adds are ignored.
  body["futureSetting"] = 1;
  CHECK(ParseClusterSettings(body.dump()).ok());
}

TEST_CASE("unusable settings from a server are refused, naming the key") {
  json good = json::parse(ClusterSettingsToJson(ClusterSettingsOf(Server())));
  auto error_with = [&](const char* key, const json& value) {
    json body = good;
    if (value.is_null()) {
      body.erase(key);
    } else {
      body[key] = value;
    }
    auto parsed = ParseClusterSettings(body.dump());
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    return parsed.status().message();
  };
  CHECK_THAT(error_with("clusterDNS", json()), Contains("\"clusterDNS\""));
  CHECK_THAT(error_with("clusterDNS", "ten"), Contains("clusterDNS 'ten'"));
  CHECK_THAT(error_with("serviceCIDR", "10.43.0.0"), Contains("serviceCIDR"));
  CHECK_THAT(error_with("clusterDomain", "Not A Domain"), Contains("clusterDomain"));
  CHECK_THAT(error_with("flannelBackend", "wireguard"), Contains("'wireguard'"));
  CHECK_THAT(error_with("disableDNS", "yes"), Contains("\"disableDNS\""));
  CHECK_FALSE(ParseClusterSettings("[]").ok());
  CHECK_FALSE(ParseClusterSettings("not json").ok());
}

TEST_CASE("a joined agent runs with the server's settings; node-local flags stay its own") {
  AgentConfig agent;  // the defaults of `orch agent` with no cluster-wide flags
  agent.node_name = "n1";
  agent.node_ip = "192.168.1.5";
  agent.node_labels = {"zone=a"};
  std::vector<std::string> notes;
  REQUIRE(ApplyClusterSettings(ClusterSettingsOf(Server()), agent, &notes).ok());
  CHECK(agent.cluster_dns == "10.53.0.53");
  CHECK(agent.cluster_domain == "example.local");
  CHECK(agent.cluster_cidr == "10.52.0.0/16");
  CHECK(agent.service_cidr == "10.53.0.0/16");
  CHECK(agent.disable_dns);
  CHECK(agent.flannel_backend == "vxlan");
  CHECK(agent.disable_kube_proxy);
  CHECK(agent.node_name == "n1");
  CHECK(agent.node_ip == "192.168.1.5");
  CHECK(agent.node_labels == std::vector<std::string>{"zone=a"});
  REQUIRE(notes.size() == 7);  // every value differed from the agent's defaults
  CHECK_THAT(notes[2], Contains("cluster-dns 10.53.0.53") && Contains("10.43.0.10"));

  // Nothing to say when the server runs the defaults.
  AgentConfig plain;
  notes.clear();
  ServerConfig defaults;
  REQUIRE(ApplyClusterSettings(ClusterSettingsOf(defaults), plain, &notes).ok());
  CHECK(notes.empty());
}

TEST_CASE("a cluster-wide flag given to the agent must match the server's") {
  ClusterSettings server = ClusterSettingsOf(Server());  // vxlan, kube-proxy disabled

  AgentConfig conflicting;
  conflicting.flannel_backend = "host-gw";
  conflicting.flannel_backend_given = true;
  Status s = ApplyClusterSettings(server, conflicting);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Contains("--flannel-backend host-gw") && Contains("vxlan"));

  // The same value given is fine, and so is a different one not given (the agent's default).
  AgentConfig same;
  same.flannel_backend = "vxlan";
  same.flannel_backend_given = true;
  same.disable_kube_proxy = true;
  same.disable_kube_proxy_given = true;
  CHECK(ApplyClusterSettings(server, same).ok());
  AgentConfig defaulted;
  CHECK(ApplyClusterSettings(server, defaulted).ok());
  CHECK(defaulted.flannel_backend == "vxlan");

  AgentConfig proxy;
  proxy.disable_kube_proxy = false;
  proxy.disable_kube_proxy_given = true;  // --disable-kube-proxy=false
  s = ApplyClusterSettings(server, proxy);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Contains("--disable-kube-proxy=false"));
}

}  // namespace orch
