// The node agent's pod sandboxes: DNS by dnsPolicy and dnsConfig, host names, the managed
// /etc/hosts, labels, hostPorts and pod-level security.
#include <catch2/catch.hpp>

#include "runtime_labels.h"
#include "sandbox_config.h"

using json = nlohmann::json;
using namespace orch::agent;
namespace cri = orch::cri;

namespace {

SandboxContext Context() {
  SandboxContext ctx;
  ctx.node_name = "node-a";
  ctx.cluster_dns = "10.43.0.10";
  ctx.cluster_domain = "cluster.local";
  ctx.host_dns = ParseResolvConf("nameserver 192.168.1.1\nsearch lan\noptions edns0\n");
  ctx.log_root = "/data/agent/pod-logs";
  return ctx;
}

json Pod(json spec = json::object()) {
  json pod = {{"metadata",
               {{"name", "web"},
                {"namespace", "shop"},
                {"uid", "u-1"},
                {"labels", {{"app", "web"}}},
                {"annotations", {{"note", "x"}}}}},
              {"spec", {{"containers", json::array({{{"name", "c"}}})}}}};
  pod["spec"].update(spec);
  return pod;
}

}  // namespace

TEST_CASE("resolv.conf parsing") {
  auto dns = ParseResolvConf(
      "# comment\nnameserver 1.1.1.1\nnameserver 8.8.8.8 ; x\ndomain old\nsearch a.b c.d\n"
      "options ndots:2 timeout:1\nbogus line\n");
  CHECK(dns.servers == std::vector<std::string>{"1.1.1.1", "8.8.8.8"});
  CHECK(dns.searches == std::vector<std::string>{"a.b", "c.d"});
  CHECK(dns.options == std::vector<std::string>{"ndots:2", "timeout:1"});
}

TEST_CASE("DNS by policy") {
  SandboxContext ctx = Context();
  auto cluster = PodDnsConfig(Pod(), ctx);  // ClusterFirst by default
  CHECK(cluster.servers == std::vector<std::string>{"10.43.0.10"});
  CHECK(cluster.searches == std::vector<std::string>{"shop.svc.cluster.local", "svc.cluster.local",
                                                     "cluster.local", "lan"});
  CHECK(cluster.options == std::vector<std::string>{"ndots:5"});

  auto host = PodDnsConfig(Pod({{"dnsPolicy", "Default"}}), ctx);
  CHECK(host.servers == std::vector<std::string>{"192.168.1.1"});
  CHECK(host.searches == std::vector<std::string>{"lan"});
  // ClusterFirst on the host network means the node's; ClusterFirstWithHostNet the cluster's.
  CHECK(PodDnsConfig(Pod({{"hostNetwork", true}}), ctx).servers ==
        std::vector<std::string>{"192.168.1.1"});
  CHECK(PodDnsConfig(Pod({{"hostNetwork", true}, {"dnsPolicy", "ClusterFirstWithHostNet"}}), ctx)
            .servers == std::vector<std::string>{"10.43.0.10"});
  // No cluster DNS configured: the node's.
  SandboxContext no_dns = ctx;
  no_dns.cluster_dns.clear();
  CHECK(PodDnsConfig(Pod(), no_dns).servers == std::vector<std::string>{"192.168.1.1"});

  json custom = {
      {"nameservers", json::array({"9.9.9.9"})},
      {"searches", json::array({"my.domain", "svc.cluster.local"})},
      {"options", json::array({{{"name", "ndots"}, {"value", "2"}}, {{"name", "rotate"}}})}};
  auto none = PodDnsConfig(Pod({{"dnsPolicy", "None"}, {"dnsConfig", custom}}), ctx);
  CHECK(none.servers == std::vector<std::string>{"9.9.9.9"});
  CHECK(none.searches == std::vector<std::string>{"my.domain", "svc.cluster.local"});
  CHECK(none.options == std::vector<std::string>{"ndots:2", "rotate"});
  auto merged = PodDnsConfig(Pod({{"dnsConfig", custom}}), ctx);
  CHECK(merged.servers == std::vector<std::string>{"10.43.0.10", "9.9.9.9"});
  CHECK(merged.searches == std::vector<std::string>{"shop.svc.cluster.local", "svc.cluster.local",
                                                    "cluster.local", "lan", "my.domain"});
  CHECK(merged.options == std::vector<std::string>{"ndots:2", "rotate"});
}

TEST_CASE("host names, domains and the managed hosts file") {
  auto [name, domain] = PodHostnameAndDomain(Pod(), "cluster.local");
  CHECK(name == "web");
  CHECK(domain.empty());
  auto [h2, d2] =
      PodHostnameAndDomain(Pod({{"hostname", "db-0"}, {"subdomain", "db"}}), "cluster.local");
  CHECK(h2 == "db-0");
  CHECK(d2 == "db.shop.svc.cluster.local");
  json long_name = Pod();
  long_name["metadata"]["name"] = std::string(62, 'a') + "-b";
  CHECK(PodHostnameAndDomain(long_name, "cluster.local").first == std::string(62, 'a'));

  std::string hosts = HostsFileContent(
      Pod({{"hostname", "db-0"},
           {"subdomain", "db"},
           {"hostAliases", json::array({{{"ip", "1.2.3.4"}, {"hostnames", {"foo", "bar"}}}})}}),
      {"10.42.0.8"}, "cluster.local");
  CHECK(hosts.rfind("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n", 0) == 0);
  CHECK(hosts.find("10.42.0.8\tdb-0.db.shop.svc.cluster.local\tdb-0\n") != std::string::npos);
  CHECK(hosts.find("# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n") != std::string::npos);
  CHECK(HostsFileContent(Pod(), {"10.42.0.9"}, "cluster.local").find("10.42.0.9\tweb\n") !=
        std::string::npos);
}

TEST_CASE("sandbox config: identity, labels, ports, namespaces, security") {
  json pod =
      Pod({{"containers",
            json::array({{{"name", "c"},
                          {"ports", json::array({{{"containerPort", 80}, {"hostPort", 8080}},
                                                 {{"containerPort", 53},
                                                  {"hostPort", 5353},
                                                  {"protocol", "UDP"},
                                                  {"hostIP", "127.0.0.1"}},
                                                 {{"containerPort", 9090}}})},
                          {"securityContext", {{"privileged", true}}}}})},
           {"shareProcessNamespace", true},
           {"securityContext",
            {{"runAsUser", 1000},
             {"runAsGroup", 3000},
             {"fsGroup", 2000},
             {"supplementalGroups", {4000}},
             {"sysctls",
              json::array({{{"name", "net.ipv4.ip_unprivileged_port_start"}, {"value", "0"}}})}}}});
  cri::PodSandboxConfig c = BuildSandboxConfig(pod, Context(), 2);
  CHECK(c.name == "web");
  CHECK(c.namespace_ == "shop");
  CHECK(c.uid == "u-1");
  CHECK(c.attempt == 2);
  CHECK(c.hostname == "web");
  CHECK(c.log_directory == "/data/agent/pod-logs/shop_web_u-1");
  CHECK(c.labels.at("app") == "web");
  CHECK(c.labels.at(kPodNameLabel) == "web");
  CHECK(c.labels.at(kPodNamespaceLabel) == "shop");
  CHECK(c.labels.at(kPodUidLabel) == "u-1");
  CHECK(c.labels.at(kNodeLabel) == "node-a");
  CHECK(c.annotations.at("note") == "x");
  REQUIRE(c.port_mappings.size() == 2);
  CHECK(c.port_mappings[0].container_port == 80);
  CHECK(c.port_mappings[0].host_port == 8080);
  CHECK(c.port_mappings[0].protocol == cri::Protocol::kTcp);
  CHECK(c.port_mappings[1].protocol == cri::Protocol::kUdp);
  CHECK(c.port_mappings[1].host_ip == "127.0.0.1");
  CHECK(c.security.namespaces.pid == cri::NamespaceMode::kPod);
  CHECK(c.security.namespaces.network == cri::NamespaceMode::kPod);
  CHECK(c.security.privileged);
  CHECK(c.security.run_as_user == 1000);
  CHECK(c.security.run_as_group == 3000);
  CHECK(c.security.supplemental_groups == std::vector<int64_t>{4000, 2000});
  CHECK(c.sysctls.at("net.ipv4.ip_unprivileged_port_start") == "0");
  CHECK(c.dns.servers == std::vector<std::string>{"10.43.0.10"});

  cri::PodSandboxConfig host = BuildSandboxConfig(
      Pod({{"hostNetwork", true}, {"hostPID", true}, {"hostIPC", true}}), Context(), 0);
  CHECK(host.hostname.empty());
  CHECK(host.security.namespaces.network == cri::NamespaceMode::kNode);
  CHECK(host.security.namespaces.pid == cri::NamespaceMode::kNode);
  CHECK(host.security.namespaces.ipc == cri::NamespaceMode::kNode);
  CHECK(host.port_mappings.empty());
}
