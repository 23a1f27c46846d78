// Role config validation: each rule a user can break, and the defaults passing.
#include "orch/config.h"

#include <catch2/catch.hpp>
#include <functional>
#include <string>

namespace {

// Applies `change` to a default server config and returns the validation message ("" = valid).
std::string ServerError(const std::function<void(orch::ServerConfig&)>& change) {
  orch::ServerConfig config;
  change(config);
  orch::Status s = orch::ValidateServerConfig(config);
  return s.ok() ? "" : s.message();
}

orch::AgentConfig GoodAgent() {
  orch::AgentConfig agent;
  agent.server_url = "https://10.0.0.1:6443";
  agent.token = "secret";
  return agent;
}

}  // namespace

TEST_CASE("Default server config is valid") {
  CHECK(ServerError([](auto&) {}) == "");
}

TEST_CASE("Server config errors name the flag") {
  using Catch::Contains;
  CHECK_THAT(ServerError([](auto& c) { c.https_listen_port = 0; }),
             Contains("--https-listen-port"));
  CHECK_THAT(ServerError([](auto& c) { c.https_listen_port = 65536; }),
             Contains("outside 1..65535"));
  CHECK_THAT(ServerError([](auto& c) { c.bind_address = "0.0.0"; }), Contains("--bind-address"));
  CHECK_THAT(ServerError([](auto& c) { c.advertise_address = "not-an-ip"; }),
             Contains("--advertise-address"));
  CHECK_THAT(ServerError([](auto& c) {
               c.tls_san = {"ok.example.com", "not valid"};
             }),
             Contains("--tls-san: 'not valid'"));
  CHECK(ServerError([](auto& c) { c.tls_san = {"10.0.0.5", "*.example.com", "fd00::5"}; }) == "");
  CHECK_THAT(ServerError([](auto& c) { c.cluster_cidr = "10.42.0.0/33"; }),
             Contains("--cluster-cidr"));
  CHECK_THAT(ServerError([](auto& c) { c.service_cidr = "10.43.0.0"; }),
             Contains("--service-cidr"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_cidr = "10.0.0.0/8"; }), Contains("overlap"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_cidr = "10.42.0.0/16,fd00::/56"; }),
             Contains("dual-stack"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_cidr = "fd00:42::/56"; }),
             Contains("same IP family"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_dns = "10.42.0.10"; }),
             Contains("--cluster-dns 10.42.0.10 is outside --service-cidr 10.43.0.0/16"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_dns = "10.43.0.0"; }),
             Contains("network address"));
  CHECK_THAT(ServerError([](auto& c) { c.cluster_domain = "Cluster_Local"; }),
             Contains("--cluster-domain"));
  CHECK_THAT(ServerError([](auto& c) { c.write_kubeconfig_mode = 01777; }),
             Contains("--write-kubeconfig-mode"));
  CHECK_THAT(ServerError([](auto& c) { c.disable = {"nope"}; }), Contains("unknown component"));
  CHECK_THAT(ServerError([](auto& c) { c.agent.node_name = "Bad_Name"; }), Contains("--node-name"));
  CHECK_THAT(ServerError([](auto& c) { c.agent.node_ip = "1.2.3"; }), Contains("--node-ip"));
  CHECK_THAT(ServerError([](auto& c) { c.agent.node_labels = {"nolabel"}; }),
             Contains("--node-label"));
  CHECK_THAT(ServerError([](auto& c) { c.agent.node_taints = {"k=v"}; }), Contains("--node-taint"));
  CHECK_THAT(ServerError([](auto& c) { c.data_dir = ""; }), Contains("--data-dir"));
}

TEST_CASE("IPv6 single-stack server config is valid") {
  CHECK(ServerError([](auto& c) {
          c.cluster_cidr = "fd00:42::/56";
          c.service_cidr = "fd00:43::/112";
          c.cluster_dns = "fd00:43::a";
        }) == "");
}

TEST_CASE("Agent config needs a server URL and a token") {
  CHECK(orch::ValidateAgentConfig(GoodAgent()).ok());

  auto agent = GoodAgent();
  agent.server_url = "";
  CHECK_THAT(orch::ValidateAgentConfig(agent).message(), Catch::Contains("--server"));
  agent.server_url = "http://10.0.0.1:6443";
  CHECK_THAT(orch::ValidateAgentConfig(agent).message(), Catch::Contains("https://"));
  agent = GoodAgent();
  agent.token = "";
  CHECK_THAT(orch::ValidateAgentConfig(agent).message(), Catch::Contains("--token"));
  agent = GoodAgent();
  agent.node_labels = {"a=b", "c"};
  CHECK_THAT(orch::ValidateAgentConfig(agent).message(), Catch::Contains("--node-label"));
}

TEST_CASE("Component names accept k3s aliases") {
  CHECK(*orch::NormalizeComponentName("coredns") == "dns");
  CHECK(*orch::NormalizeComponentName("traefik") == "ingress");
  CHECK(*orch::NormalizeComponentName("servicelb") == "servicelb");
  CHECK_FALSE(orch::NormalizeComponentName("metrics").ok());
  orch::ServerConfig config;
  config.disable = {"dns"};
  CHECK(orch::IsDisabled(config, "dns"));
  CHECK_FALSE(orch::IsDisabled(config, "ingress"));
}
