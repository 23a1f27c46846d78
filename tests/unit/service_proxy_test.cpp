// The service proxy: rule generation (ClusterIP balancing, masquerade, NodePort, externalIPs,
// externalTrafficPolicy Local, ClientIP affinity, REJECT without endpoints, stale chains, jumps),
// the cleanup text, and the component over the fake API with a recording Netfilter.
#include "orch/service_proxy.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "fake_api_client.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::ProxyRulesInput;

ObjectPtr Ptr(json j) {
  return std::make_shared<const json>(std::move(j));
}

json Service(const std::string& name, const std::string& type = "ClusterIP") {
  json svc = {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", name}, {"namespace", "default"}}},
              {"spec",
               {{"type", type},
                {"clusterIP", "10.43.0.20"},
                {"ports", json::array({{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}}})}}}};
  if (type == "NodePort") svc["spec"]["ports"][0]["nodePort"] = 30080;
  return svc;
}

json Endpoint(const std::string& ip, const std::string& node, bool ready = true,
              bool terminating = false) {
  return {{"addresses", json::array({ip})},
          {"nodeName", node},
          {"conditions",
           {{"ready", ready}, {"serving", ready || terminating}, {"terminating", terminating}}}};
}

json Slice(const std::string& service, std::vector<json> endpoints, const std::string& name = "") {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name.empty() ? service + "-abcde" : name},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}})},
          {"endpoints", endpoints}};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// The lines containing every one of `parts`.
std::vector<std::string> Grep(const std::string& text, std::vector<std::string> parts) {
  std::vector<std::string> out;
  for (const std::string& line : Lines(text)) {
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const std::string& p) { return line.find(p) != std::string::npos; })) {
      out.push_back(line);
    }
  }
  return out;
}

// The chain a rule jumps to.
std::string Target(const std::string& line) {
  auto at = line.rfind(" -j ");
  REQUIRE(at != std::string::npos);
  std::string t = line.substr(at + 4);
  return t.substr(0, t.find(' '));
}

ProxyRulesInput Input(std::vector<json> services, std::vector<json> slices) {
  ProxyRulesInput input;
  for (json& s : services) input.services.push_back(Ptr(std::move(s)));
  for (json& s : slices) input.slices.push_back(Ptr(std::move(s)));
  input.node_name = "node1";
  input.local_pod_cidr = "10.42.0.0/24";
  return input;
}

// What iptables-restore --noflush makes of the tables: declaring a chain creates or flushes it,
// -A appends, -I inserts first, -X deletes; chains not named are left alone.
class TableModel {
 public:
  using Chains = std::map<std::string, std::vector<std::string>>;

  void Apply(const std::string& text) {
    std::string table;
    for (const std::string& line : Lines(text)) {
      if (line.empty()) continue;
      if (line[0] == '*') {
        table = line.substr(1);
      } else if (line[0] == ':') {
        tables_[table][line.substr(1, line.find(' ') - 1)].clear();
      } else if (line.rfind("-A ", 0) == 0 || line.rfind("-I ", 0) == 0) {
        std::string chain = line.substr(3, line.find(' ', 3) - 3);
        auto& rules = tables_[table][chain];
        std::string rule = line.substr(3 + chain.size() + 1);
        rules.insert(line[1] == 'A' ? rules.end() : rules.begin(), rule);
      } else if (line.rfind("-X ", 0) == 0) {
        tables_[table].erase(line.substr(3));
      }
    }
  }
  const Chains& Table(const std::string& table) { return tables_[table]; }
  size_t Count(const std::string& table, const std::string& part) {
    size_t n = 0;
    for (const auto& [chain, rules] : tables_[table]) {
      for (const std::string& rule : rules) n += rule.find(part) != std::string::npos;
    }
    return n;
  }

 private:
  std::map<std::string, Chains> tables_;
};

}  // namespace

TEST_CASE("ClusterIP: even random balancing, masquerade from outside, hairpin, DNAT") {
  auto rules = orch::BuildProxyRules(
      Input({Service("web")},
            {Slice("web", {Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1"),
                           Endpoint("10.42.1.7", "node2")})}));
  const std::string& t = rules.text;
  CHECK(rules.service_ports == 1);
  CHECK(rules.endpoints == 3);
  // Two tables, each committed.
  CHECK(Grep(t, {"*filter"}).size() == 1);
  CHECK(Grep(t, {"*nat"}).size() == 1);
  CHECK(Grep(t, {"COMMIT"}).size() == 2);

  auto entry = Grep(t, {"-A ORCH-SERVICES", "-d 10.43.0.20/32", "--dport 80"});
  REQUIRE(entry.size() == 1);
  std::string svc = Target(entry[0]);
  CHECK(svc.rfind("ORCH-SVC-", 0) == 0);
  CHECK(svc.size() <= 28);  // iptables' limit on chain names
  CHECK(Grep(t, {":" + svc + " - [0:0]"}).size() == 1);
  CHECK(Grep(t, {"-A " + svc, "! -s 10.42.0.0/24", "-j ORCH-MARK-MASQ"}).size() == 1);

  auto balance = Grep(t, {"-A " + svc, "ORCH-SEP-"});
  REQUIRE(balance.size() == 3);
  CHECK(balance[0].find("--probability 0.3333333333") != std::string::npos);
  CHECK(balance[1].find("--probability 0.5000000000") != std::string::npos);
  CHECK(balance[2].find("statistic") == std::string::npos);
  std::set<std::string> seps;
  for (const auto& line : balance) seps.insert(Target(line));
  CHECK(seps.size() == 3);
  for (const std::string& sep : seps) {
    auto dnat = Grep(t, {"-A " + sep + " ", "-j DNAT"});
    REQUIRE(dnat.size() == 1);
    CHECK(dnat[0].find(":8080") != std::string::npos);
    CHECK(Grep(t, {"-A " + sep + " ", "/32 -j ORCH-MARK-MASQ"}).size() == 1);  // hairpin
  }
  CHECK(Grep(t, {"--to-destination 10.42.1.7:8080"}).size() == 1);
  // No REJECT: it has endpoints. The NodePort jump is the last rule of ORCH-SERVICES.
  CHECK(Grep(t, {"REJECT"}).empty());
  auto services = Grep(t, {"-A ORCH-SERVICES "});
  CHECK(services.back().find("--dst-type LOCAL -j ORCH-NODEPORTS") != std::string::npos);
  // Masquerade of marked packets.
  CHECK(Grep(t, {"-A ORCH-POSTROUTING", "MASQUERADE"}).size() == 1);
  CHECK(Grep(t, {"-A ORCH-MARK-MASQ -j MARK --or-mark 0x4000"}).size() == 1);
  // Same input, same text (chain names are stable).
  CHECK(orch::BuildProxyRules(
            Input({Service("web")},
                  {Slice("web", {Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1"),
                                 Endpoint("10.42.1.7", "node2")})}))
            .text == t);
}

TEST_CASE("only ready endpoints get traffic; terminating serving ones when none is ready") {
  auto rules = orch::BuildProxyRules(
      Input({Service("web")},
            {Slice("web", {Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1", false),
                           Endpoint("10.42.0.7", "node1", false, true)})}));
  CHECK(Grep(rules.text, {"-j DNAT"}).size() == 1);
  CHECK(Grep(rules.text, {"--to-destination 10.42.0.5:8080"}).size() == 1);

  rules = orch::BuildProxyRules(
      Input({Service("web")}, {Slice("web", {Endpoint("10.42.0.6", "node1", false),
                                             Endpoint("10.42.0.7", "node1", false, true)})}));
  CHECK(Grep(rules.text, {"-j DNAT"}).size() == 1);
  CHECK(Grep(rules.text, {"--to-destination 10.42.0.7:8080"}).size() == 1);
}

TEST_CASE("a Service without endpoints is rejected, on its ClusterIP and NodePort") {
  auto rules = orch::BuildProxyRules(Input({Service("web", "NodePort")}, {Slice("web", {})}));
  const std::string& t = rules.text;
  CHECK(Grep(t, {"ORCH-SVC-"}).empty());
  CHECK(Grep(t, {"-A ORCH-SERVICES", "-d 10.43.0.20/32", "--dport 80", "-j REJECT"}).size() == 1);
  CHECK(Grep(t, {"-A ORCH-EXTERNAL-SERVICES", "--dst-type LOCAL", "--dport 30080", "-j REJECT"})
            .size() == 1);
  // Headless and ExternalName Services get nothing.
  json headless = Service("h");
  headless["spec"]["clusterIP"] = "None";
  json external = Service("e");
  external["spec"]["type"] = "ExternalName";
  rules = orch::BuildProxyRules(Input({headless, external}, {}));
  CHECK(rules.service_ports == 0);
}

TEST_CASE("NodePort and externalIPs go through the external chain, masqueraded") {
  json svc = Service("web", "NodePort");
  svc["spec"]["externalIPs"] = json::array({"192.0.2.10"});
  auto rules =
      orch::BuildProxyRules(Input({svc}, {Slice("web", {Endpoint("10.42.1.7", "node2")})}));
  const std::string& t = rules.text;
  auto nodeport = Grep(t, {"-A ORCH-NODEPORTS", "-p tcp -m tcp --dport 30080"});
  REQUIRE(nodeport.size() == 1);
  std::string ext = Target(nodeport[0]);
  CHECK(ext.rfind("ORCH-EXT-", 0) == 0);
  auto external_ip = Grep(t, {"-A ORCH-SERVICES", "-d 192.0.2.10/32", "--dport 80"});
  REQUIRE(external_ip.size() == 1);
  CHECK(Target(external_ip[0]) == ext);
  auto ext_rules = Grep(t, {"-A " + ext + " "});
  REQUIRE(ext_rules.size() == 2);
  CHECK(Target(ext_rules[0]) == "ORCH-MARK-MASQ");
  CHECK(Target(ext_rules[1]).rfind("ORCH-SVC-", 0) == 0);
}

TEST_CASE("externalTrafficPolicy Local: local endpoints only from outside, no masquerade") {
  json svc = Service("web", "NodePort");
  svc["spec"]["externalTrafficPolicy"] = "Local";
  auto rules = orch::BuildProxyRules(Input(
      {svc}, {Slice("web", {Endpoint("10.42.0.5", "node1"), Endpoint("10.42.1.7", "node2")})}));
  const std::string& t = rules.text;
  std::string ext = Target(Grep(t, {"-A ORCH-NODEPORTS"})[0]);
  auto ext_rules = Grep(t, {"-A " + ext + " "});
  REQUIRE(ext_rules.size() == 4);
  CHECK(ext_rules[0].find("-s 10.42.0.0/24") != std::string::npos);  // pods: whole Service
  CHECK(ext_rules[1].find("--src-type LOCAL -j ORCH-MARK-MASQ") != std::string::npos);
  CHECK(Target(ext_rules[2]).rfind("ORCH-SVC-", 0) == 0);
  std::string local = Target(ext_rules[3]);
  CHECK(local.rfind("ORCH-SVL-", 0) == 0);
  auto local_rules = Grep(t, {"-A " + local + " "});
  REQUIRE(local_rules.size() == 1);
  std::string sep = Target(local_rules[0]);
  CHECK(Grep(t, {"-A " + sep + " ", "--to-destination 10.42.0.5:8080"}).size() == 1);

  // No local endpoint: external traffic is dropped, the ClusterIP still works.
  rules = orch::BuildProxyRules(Input({svc}, {Slice("web", {Endpoint("10.42.1.7", "node2")})}));
  CHECK(Grep(rules.text, {"ORCH-SVL-"}).empty());
  CHECK(Grep(rules.text, {"-A ORCH-EXTERNAL-SERVICES", "--dport 30080", "-j DROP"}).size() == 1);
  CHECK(Grep(rules.text, {"--to-destination 10.42.1.7:8080"}).size() == 1);
}

// A LoadBalancer Service (nodePort 30080) whose status lists `ingress`.
json LoadBalancer(const std::string& name, std::vector<std::string> ingress) {
  json svc = Service(name, "NodePort");
  svc["spec"]["type"] = "LoadBalancer";
  json list = json::array();
  for (const std::string& ip : ingress) list.push_back({{"ip", ip}});
  svc["status"]["loadBalancer"] = ingress.empty() ? json::object() : json{{"ingress", list}};
  return svc;
}

TEST_CASE("LoadBalancer: the port on the node's addresses and the ingress IPs") {
  json svc = LoadBalancer("web", {"172.31.0.2", "172.31.0.3"});
  ProxyRulesInput input = Input({svc}, {Slice("web", {Endpoint("10.42.1.7", "node2")})});
  input.node_ips = {"172.31.0.2"};
  auto rules = orch::BuildProxyRules(input);
  const std::string& t = rules.text;
  // The NodePort and the Service's port on every local address (127.0.0.1 too), to one chain.
  auto node_port = Grep(t, {"-A ORCH-NODEPORTS", "--dport 30080"});
  REQUIRE(node_port.size() == 1);
  std::string ext = Target(node_port[0]);
  auto lb_port = Grep(t, {"-A ORCH-NODEPORTS", "load balancer", "-p tcp -m tcp --dport 80 "});
  REQUIRE(lb_port.size() == 1);
  CHECK(Target(lb_port[0]) == ext);
  // Every ingress IP (the other node's included) goes the same way, as kube-proxy does.
  for (const char* ip : {"172.31.0.2", "172.31.0.3"}) {
    auto to_ip = Grep(t, {"-A ORCH-SERVICES", std::string("-d ") + ip + "/32", "--dport 80"});
    REQUIRE(to_ip.size() == 1);
    CHECK(Target(to_ip[0]) == ext);
  }
  CHECK(Target(Grep(t, {"-A " + ext + " "})[0]) == "ORCH-MARK-MASQ");

  SECTION("a node the load balancer does not list keeps the port free") {
    input.node_ips = {"172.31.0.9"};
    auto other = orch::BuildProxyRules(input).text;
    CHECK(Grep(other, {"-A ORCH-NODEPORTS", "load balancer"}).empty());
    CHECK(Grep(other, {"-A ORCH-SERVICES", "-d 172.31.0.3/32", "--dport 80"}).size() == 1);
  }
  SECTION("no status yet (servicelb disabled or not done): only the NodePort") {
    ProxyRulesInput pending =
        Input({LoadBalancer("web", {})}, {Slice("web", {Endpoint("10.42.1.7", "node2")})});
    auto text = orch::BuildProxyRules(pending).text;
    CHECK(Grep(text, {"load balancer"}).empty());
    CHECK(Grep(text, {"-A ORCH-NODEPORTS", "--dport 30080"}).size() == 1);
  }
  SECTION("another loadBalancerClass: its ingress IPs only, not the node's addresses") {
    json metal = LoadBalancer("web", {"192.0.2.50"});
    metal["spec"]["loadBalancerClass"] = "metallb.universe.tf/metallb";
    auto text =
        orch::BuildProxyRules(Input({metal}, {Slice("web", {Endpoint("10.42.1.7", "node2")})}))
            .text;
    CHECK(Grep(text, {"load balancer"}).empty());
    CHECK(Grep(text, {"-A ORCH-SERVICES", "-d 192.0.2.50/32", "--dport 80"}).size() == 1);
  }
  SECTION("ipMode Proxy: the traffic goes to the load balancer") {
    json proxied = LoadBalancer("web", {"192.0.2.50"});
    proxied["spec"]["loadBalancerClass"] = "example.com/proxy";
    proxied["status"]["loadBalancer"]["ingress"][0]["ipMode"] = "Proxy";
    auto text =
        orch::BuildProxyRules(Input({proxied}, {Slice("web", {Endpoint("10.42.1.7", "node2")})}))
            .text;
    CHECK(Grep(text, {"192.0.2.50"}).empty());
  }
  SECTION("without endpoints the port is rejected; with Local and none here, dropped") {
    ProxyRulesInput none = Input({svc}, {Slice("web", {})});
    auto text = orch::BuildProxyRules(none).text;
    CHECK(Grep(text, {"-A ORCH-EXTERNAL-SERVICES", "load balancer has no endpoints",
                      "--dst-type LOCAL", "--dport 80 ", "-j REJECT"})
              .size() == 1);
    json local = svc;
    local["spec"]["externalTrafficPolicy"] = "Local";
    text = orch::BuildProxyRules(Input({local}, {Slice("web", {Endpoint("10.42.1.7", "node2")})}))
               .text;
    CHECK(Grep(text, {"-A ORCH-EXTERNAL-SERVICES", "load balancer has no local endpoints",
                      "--dport 80 ", "-j DROP"})
              .size() == 1);
  }
}

TEST_CASE("sessionAffinity ClientIP remembers the client per endpoint") {
  json svc = Service("web");
  svc["spec"]["sessionAffinity"] = "ClientIP";
  svc["spec"]["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 600}}}};
  auto rules = orch::BuildProxyRules(Input(
      {svc}, {Slice("web", {Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1")})}));
  auto checks = Grep(rules.text, {"-m recent", "--rcheck --seconds 600 --reap"});
  REQUIRE(checks.size() == 2);
  for (const auto& line : checks) {
    std::string sep = Target(line);
    CHECK(line.find("--name " + sep) != std::string::npos);
    CHECK(Grep(rules.text, {"-A " + sep + " ", "--name " + sep, "--set", "-j DNAT"}).size() == 1);
  }
  // The affinity checks come before the random choice.
  auto svc_rules = Grep(rules.text, {"-A ORCH-SVC-"});
  CHECK(svc_rules[1].find("--rcheck") != std::string::npos);
  CHECK(svc_rules.back().find("--rcheck") == std::string::npos);
}

TEST_CASE("named ports match slices by name; endpoints from several slices merge") {
  json svc = Service("web");
  svc["spec"]["ports"].push_back({{"name", "metrics"}, {"port", 9100}, {"protocol", "TCP"}});
  json other = Slice("web", {Endpoint("10.42.0.9", "node1")}, "web-other");
  other["ports"] = json::array({{{"name", "metrics"}, {"port", 9999}, {"protocol", "TCP"}}});
  auto rules = orch::BuildProxyRules(
      Input({svc}, {Slice("web", {Endpoint("10.42.0.5", "node1")}),
                    Slice("web", {Endpoint("10.42.0.6", "node1")}, "web-2"), other}));
  CHECK(rules.service_ports == 2);
  CHECK(Grep(rules.text, {"-j DNAT", ":8080"}).size() == 2);
  CHECK(Grep(rules.text, {"--to-destination 10.42.0.9:9999"}).size() == 1);
  CHECK(Grep(rules.text, {"-A ORCH-SERVICES", "--dport 9100"}).size() == 1);
}

TEST_CASE("stale chains are flushed and deleted; missing jumps are inserted") {
  ProxyRulesInput input = Input({Service("web")}, {Slice("web", {Endpoint("10.42.0.5", "node1")})});
  input.existing_nat_chains = {"ORCH-SERVICES", "ORCH-SVC-OLDOLDOLDOLDOLDO"};
  input.insert_jumps = true;
  input.existing_jumps = {"nat/PREROUTING>ORCH-SERVICES"};
  auto rules = orch::BuildProxyRules(input);
  CHECK(Grep(rules.text, {":ORCH-SVC-OLDOLDOLDOLDOLDO - [0:0]"}).size() == 1);
  CHECK(Grep(rules.text, {"-X ORCH-SVC-OLDOLDOLDOLDOLDO"}).size() == 1);
  CHECK(rules.nat_chains.count("ORCH-SVC-OLDOLDOLDOLDOLDO") == 0);
  CHECK(Grep(rules.text, {"-I PREROUTING"}).empty());                      // already there
  CHECK(Grep(rules.text, {"-I OUTPUT", "-j ORCH-SERVICES"}).size() == 2);  // nat and filter
  CHECK(Grep(rules.text, {"-I POSTROUTING", "-j ORCH-POSTROUTING"}).size() == 1);
  CHECK(Grep(rules.text, {"-I INPUT", "-j ORCH-FIREWALL"}).size() == 1);
  CHECK(Grep(rules.text, {"-I FORWARD", "-j ORCH-FORWARD"}).size() == 1);
  // Without a check, no jumps at all.
  input.insert_jumps = false;
  CHECK(Grep(orch::BuildProxyRules(input).text, {"-I "}).empty());
}

TEST_CASE("only the chains whose rules changed are written again") {
  auto with_db = [](std::vector<json> web_endpoints) {
    json db = Service("db");
    db["spec"]["clusterIP"] = "10.43.0.30";
    return Input({Service("web"), db}, {Slice("web", std::move(web_endpoints)),
                                        Slice("db", {Endpoint("10.42.0.9", "node1")})});
  };
  ProxyRulesInput input = with_db({Endpoint("10.42.0.5", "node1")});
  auto first = orch::BuildProxyRules(input);
  TableModel kernel;
  kernel.Apply(first.text);
  CHECK(first.chains_written == first.nat_chains.size() + first.filter_chains.size());

  // The same input again: nothing to write.
  input.existing_nat_chains = first.nat_chains;
  input.existing_filter_chains = first.filter_chains;
  input.written_chains = first.chain_hashes;
  auto same = orch::BuildProxyRules(input);
  CHECK(same.text.empty());
  CHECK(same.chains_written == 0);
  CHECK(same.chain_hashes == first.chain_hashes);

  // web gains an endpoint: its service chain and the new endpoint's chain, nothing of db's and
  // not ORCH-SERVICES (web had endpoints already).
  ProxyRulesInput second =
      with_db({Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1")});
  second.existing_nat_chains = first.nat_chains;
  second.existing_filter_chains = first.filter_chains;
  second.written_chains = first.chain_hashes;
  auto change = orch::BuildProxyRules(second);
  INFO(change.text);
  CHECK(change.chains_written == 2);
  CHECK(Grep(change.text, {"db"}).empty());
  CHECK(Grep(change.text, {"-A ORCH-SERVICES"}).empty());
  CHECK(Grep(change.text, {"-j DNAT --to-destination 10.42.0.6:8080"}).size() == 1);
  CHECK(Grep(change.text, {"-j DNAT --to-destination 10.42.0.5:8080"}).empty());
  kernel.Apply(change.text);
  // The tables end up as a full write of the new state leaves them.
  TableModel fresh;
  fresh.Apply(orch::BuildProxyRules(
                  with_db({Endpoint("10.42.0.5", "node1"), Endpoint("10.42.0.6", "node1")}))
                  .text);
  CHECK(kernel.Table("nat") == fresh.Table("nat"));
  CHECK(kernel.Table("filter") == fresh.Table("filter"));

  // web loses every endpoint: its chains go, ORCH-SERVICES in both tables is rewritten (the
  // REJECT rule), db's chains stay untouched.
  ProxyRulesInput third = with_db({});
  third.existing_nat_chains = change.nat_chains;
  third.existing_filter_chains = change.filter_chains;
  third.written_chains = change.chain_hashes;
  auto gone = orch::BuildProxyRules(third);
  INFO(gone.text);
  CHECK(Grep(gone.text, {"-X ORCH-SVC-"}).size() == 1);
  CHECK(Grep(gone.text, {"-X ORCH-SEP-"}).size() == 2);
  CHECK(Grep(gone.text, {":ORCH-SERVICES - [0:0]"}).size() == 2);
  CHECK(Grep(gone.text, {"-j DNAT"}).empty());
  kernel.Apply(gone.text);
  TableModel fresh3;
  fresh3.Apply(orch::BuildProxyRules(with_db({})).text);
  CHECK(kernel.Table("nat") == fresh3.Table("nat"));
  CHECK(kernel.Table("filter") == fresh3.Table("filter"));
  CHECK(kernel.Count("nat", "--to-destination 10.42.0.9:8080") == 1);
}

TEST_CASE("saved rules are parsed and cleaned up") {
  const std::string nat = R"(# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ORCH-SERVICES - [0:0]
:ORCH-SVC-ABC - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m comment --comment "orch service portals" -j ORCH-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m comment --comment "orch service portals" -j ORCH-SERVICES
-A ORCH-SERVICES -d 10.43.0.20/32 -p tcp -m tcp --dport 80 -j ORCH-SVC-ABC
COMMIT
)";
  auto parsed = orch::ParseSavedRules(nat, "nat");
  CHECK(parsed.chains == std::set<std::string>{"ORCH-SERVICES", "ORCH-SVC-ABC"});
  CHECK(parsed.jumps ==
        std::set<std::string>{"nat/PREROUTING>ORCH-SERVICES", "nat/OUTPUT>ORCH-SERVICES"});

  std::string cleanup = orch::CleanupRules(nat, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
  CHECK(cleanup.find("*filter") == std::string::npos);  // nothing of ours there
  CHECK(Grep(cleanup,
             {"-D PREROUTING -m comment --comment \"orch service portals\" -j ORCH-SERVICES"})
            .size() == 1);
  CHECK(Grep(cleanup, {"-D OUTPUT"}).size() == 1);
  CHECK(Grep(cleanup, {"CNI-HOSTPORT"}).empty());
  CHECK(Grep(cleanup, {"-X ORCH-SERVICES"}).size() == 1);
  CHECK(Grep(cleanup, {"-X ORCH-SVC-ABC"}).size() == 1);
  CHECK(Grep(cleanup, {":ORCH-SVC-ABC - [0:0]"}).size() == 1);
  CHECK(orch::CleanupRules("*nat\nCOMMIT\n", "*filter\nCOMMIT\n").empty());
}

namespace {

// Records every restore; Save answers with what was restored so far (enough for the proxy).
class RecordingNetfilter : public orch::Netfilter {
 public:
  orch::Status Restore(const std::string& rules) override {
    std::lock_guard lock(mu_);
    restores_.push_back(rules);
    kernel_.Apply(rules);
    return orch::Status::Ok();
  }
  // How many rules of the modelled table contain `part`.
  size_t Count(const std::string& table, const std::string& part) {
    std::lock_guard lock(mu_);
    return kernel_.Count(table, part);
  }
  orch::Result<std::string> Save(const std::string& table) override {
    std::lock_guard lock(mu_);
    ++saves_;
    return "*" + table + "\nCOMMIT\n";
  }
  orch::Status SetSysctl(const std::string& key, const std::string& value) override {
    std::lock_guard lock(mu_);
    sysctls_[key] = value;
    return orch::Status::Ok();
  }
  std::vector<std::string> Restores() {
    std::lock_guard lock(mu_);
    return restores_;
  }
  std::map<std::string, std::string> Sysctls() {
    std::lock_guard lock(mu_);
    return sysctls_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> restores_;
  std::map<std::string, std::string> sysctls_;
  TableModel kernel_;
  int saves_ = 0;
};

bool WaitUntil(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

}  // namespace

TEST_CASE("the proxy component syncs on changes, coalesced, with jumps on the first sync") {
  orch::testing::FakeApiClient api;
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}};
  REQUIRE(api.Create({"", "v1", "namespaces", false}, "", ns).ok());
  auto informers = orch::InformerFactory::Create(api);
  RecordingNetfilter netfilter;
  orch::ServiceProxyOptions options;
  options.node_name = "node1";
  options.local_pod_cidr = [] { return std::string("10.42.0.0/24"); };
  options.min_sync_period = std::chrono::milliseconds(200);
  auto proxy = orch::NewServiceProxy(options, *informers, netfilter);
  REQUIRE(proxy->Start().ok());
  informers->Start();

  // The first sync writes the fixed chains and the jumps.
  REQUIRE(WaitUntil([&] { return !netfilter.Restores().empty(); }));
  CHECK(netfilter.Sysctls()["net/ipv4/conf/all/route_localnet"] == "1");
  std::string first = netfilter.Restores()[0];
  CHECK(Grep(first, {"-I PREROUTING", "-j ORCH-SERVICES"}).size() == 1);

  // A burst of changes: a handful of syncs, the last one with everything.
  const orch::ResourceRef slices{"discovery.k8s.io", "v1", "endpointslices"};
  REQUIRE(api.Create({"", "v1", "services"}, "default", Service("web")).ok());
  for (int i = 0; i < 20; ++i) {
    REQUIRE(api.Create(slices, "default",
                       Slice("web", {Endpoint(fmt::format("10.42.0.{}", i + 2), "node1")},
                             fmt::format("web-{}", i)))
                .ok());
  }
  // Later syncs write only what changed: the tables, not the last restore, hold everything.
  bool all_endpoints = WaitUntil([&] { return netfilter.Count("nat", "-j DNAT") == 20; });
  INFO("last restore of " << netfilter.Restores().size() << ":\n" << netfilter.Restores().back());
  REQUIRE(all_endpoints);
  CHECK(netfilter.Restores().size() < 20);
  // Later syncs do not insert the jumps again.
  CHECK(Grep(netfilter.Restores().back(), {"-I "}).empty());

  // Deleting the Service removes its chains.
  REQUIRE(api.Delete({"", "v1", "services"}, "default", "web").ok());
  REQUIRE(WaitUntil([&] { return netfilter.Count("nat", "-j DNAT") == 0; }));
  CHECK(Grep(netfilter.Restores().back(), {"-X ORCH-SVC-"}).size() == 1);
  CHECK(Grep(netfilter.Restores().back(), {"-X ORCH-SEP-"}).size() == 20);
  proxy->Stop();
  informers->Stop();
}

TEST_CASE("the node network's chains are not the proxy's to delete") {
  std::string saved =
      "*nat\n:ORCH-SERVICES - [0:0]\n:ORCH-DNS - [0:0]\n:ORCH-EGRESS - [0:0]\nCOMMIT\n";
  auto existing = orch::ParseSavedRules(saved, "nat");
  CHECK(existing.chains == std::set<std::string>{"ORCH-SERVICES"});
  // The cleanup removes them all.
  std::string cleanup = orch::CleanupRules(saved, "");
  CHECK(cleanup.find("-X ORCH-DNS") != std::string::npos);
  CHECK(cleanup.find("-X ORCH-EGRESS") != std::string::npos);
}
