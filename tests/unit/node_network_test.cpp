// The node network: host-gw routes wanted from the Node list, the egress masquerade and cluster
// DNS redirect rules, which jumps iptables-save shows, and the component over the fake API with
// a recording Netfilter and route table.
#include "orch/node_network.h"

#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "fake_api_client.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::PodRoute;

json Node(const std::string& name, const std::string& ip, const std::string& cidr) {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", name}}},
               {"spec", json::object()},
               {"status", {{"addresses", json::array()}}}};
  if (!cidr.empty()) {
    node["spec"]["podCIDR"] = cidr;
    node["spec"]["podCIDRs"] = {cidr};
  }
  if (!ip.empty()) {
    node["status"]["addresses"].push_back({{"type", "InternalIP"}, {"address", ip}});
  }
  node["status"]["addresses"].push_back({{"type", "Hostname"}, {"address", name}});
  return node;
}

ObjectPtr Ptr(json j) {
  return std::make_shared<const json>(std::move(j));
}

class RecordingNetfilter : public orch::Netfilter {
 public:
  orch::Status Restore(const std::string& rules) override {
    std::lock_guard lock(mu_);
    restores_.push_back(rules);
    return orch::Status::Ok();
  }
  orch::Result<std::string> Save(const std::string&) override { return std::string(); }
  orch::Status SetSysctl(const std::string&, const std::string&) override {
    return orch::Status::Ok();
  }
  std::vector<std::string> Restores() {
    std::lock_guard lock(mu_);
    return restores_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> restores_;
};

class FakeRoutes : public orch::RouteTable {
 public:
  orch::Result<std::vector<PodRoute>> List() override {
    std::lock_guard lock(mu_);
    return routes_;
  }
  orch::Status Replace(const PodRoute& route) override {
    std::lock_guard lock(mu_);
    std::erase_if(routes_, [&](const PodRoute& r) { return r.cidr == route.cidr; });
    routes_.push_back(route);
    std::sort(routes_.begin(), routes_.end());
    return orch::Status::Ok();
  }
  orch::Status Delete(const PodRoute& route) override {
    std::lock_guard lock(mu_);
    std::erase(routes_, route);
    return orch::Status::Ok();
  }
  std::vector<PodRoute> routes() {
    std::lock_guard lock(mu_);
    return routes_;
  }

 private:
  std::mutex mu_;
  std::vector<PodRoute> routes_;
};

bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return done();
}

}  // namespace

TEST_CASE("routes go to every other node's pod CIDR via its InternalIP") {
  std::vector<ObjectPtr> nodes = {Ptr(Node("a", "192.168.5.1", "10.42.0.0/24")),
                                  Ptr(Node("b", "192.168.5.2", "10.42.1.0/24")),
                                  Ptr(Node("c", "192.168.5.3", "10.42.2.0/24")),
                                  Ptr(Node("no-cidr", "192.168.5.4", "")),
                                  Ptr(Node("no-ip", "", "10.42.4.0/24")),
                                  Ptr(Node("v6", "192.168.5.6", "fd00:42::/64"))};
  auto routes = orch::DesiredPodRoutes(nodes, "a", "192.168.5.1");
  CHECK(routes ==
        std::vector<PodRoute>{{"10.42.1.0/24", "192.168.5.2"}, {"10.42.2.0/24", "192.168.5.3"}});
  // A node with this node's address is this node under another name (a rename): no route.
  CHECK(orch::DesiredPodRoutes(nodes, "z", "192.168.5.2") ==
        std::vector<PodRoute>{{"10.42.0.0/24", "192.168.5.1"}, {"10.42.2.0/24", "192.168.5.3"}});
}

TEST_CASE("egress masquerades pod traffic leaving the pod CIDRs; DNS is redirected locally") {
  orch::NodeNetworkRulesInput input;
  input.local_pod_cidr = "10.42.0.0/24";
  input.pod_cidrs = {"10.42.1.0/24", "10.42.0.0/24", "10.42.1.0/24"};
  input.cluster_dns = "10.43.0.10";
  input.dns_address = "192.168.5.1";
  input.dns_port = 53;
  std::string rules = orch::NodeNetworkRules(input);
  CHECK(rules.find("*nat\n:ORCH-EGRESS - [0:0]\n:ORCH-DNS - [0:0]\n") == 0);
  CHECK(rules.find("-A ORCH-EGRESS -s 10.42.0.0/24 -d 10.42.0.0/24 -j RETURN\n") !=
        std::string::npos);
  CHECK(rules.find("-A ORCH-EGRESS -s 10.42.0.0/24 -d 10.42.1.0/24 -j RETURN\n") !=
        std::string::npos);
  CHECK(rules.find("-s 10.42.0.0/24 -m comment --comment \"pod traffic leaving the cluster\" -j "
                   "MASQUERADE") != std::string::npos);
  CHECK(rules.find("-A ORCH-DNS -d 10.43.0.10/32 -p udp -m udp --dport 53") != std::string::npos);
  CHECK(rules.find("-j DNAT --to-destination 192.168.5.1:53") != std::string::npos);
  CHECK(rules.find("-I POSTROUTING -m comment --comment \"orch pod egress masquerade\" -j "
                   "ORCH-EGRESS") != std::string::npos);
  CHECK(rules.find("-I OUTPUT") != std::string::npos);
  CHECK(rules.rfind("COMMIT\n") == rules.size() - 7);

  // Jumps already there are not inserted twice.
  std::string saved =
      "*nat\n-A PREROUTING -m comment --comment \"orch cluster DNS\" -j ORCH-DNS\n"
      "-A OUTPUT -m comment --comment \"orch cluster DNS\" -j ORCH-DNS\n"
      "-A POSTROUTING -m comment --comment \"orch pod egress masquerade\" -j ORCH-EGRESS\n";
  input.existing_jumps = orch::NodeNetworkJumps(saved);
  CHECK(input.existing_jumps.size() == 3);
  CHECK(orch::NodeNetworkRules(input).find("-I ") == std::string::npos);

  // No pod CIDR yet, no DNS: empty chains.
  orch::NodeNetworkRulesInput none;
  none.existing_jumps = input.existing_jumps;
  CHECK(orch::NodeNetworkRules(none) == "*nat\n:ORCH-EGRESS - [0:0]\n:ORCH-DNS - [0:0]\nCOMMIT\n");
}

TEST_CASE("the component follows nodes joining and leaving and removes stale routes") {
  orch::testing::FakeApiClient api;
  const orch::ResourceRef nodes{"", "v1", "nodes", false};
  REQUIRE(api.Create(nodes, "", Node("a", "192.168.5.1", "10.42.0.0/24")).ok());
  REQUIRE(api.Create(nodes, "", Node("b", "192.168.5.2", "10.42.1.0/24")).ok());
  auto informers = orch::InformerFactory::Create(api);
  RecordingNetfilter netfilter;
  FakeRoutes routes;
  // Left over from an earlier run: a node that is gone.
  REQUIRE(routes.Replace({"10.42.9.0/24", "192.168.5.9"}).ok());
  orch::NodeNetworkOptions options;
  options.node_name = "a";
  options.node_ip = "192.168.5.1";
  options.local_pod_cidr = [] { return std::string("10.42.0.0/24"); };
  options.min_sync_period = std::chrono::milliseconds(50);
  auto network = orch::NewNodeNetwork(options, *informers, netfilter, routes);
  REQUIRE(network->Start().ok());
  informers->Start();
  CHECK(WaitUntil([&] {
    return routes.routes() == std::vector<PodRoute>{{"10.42.1.0/24", "192.168.5.2"}};
  }));
  REQUIRE(api.Create(nodes, "", Node("c", "192.168.5.3", "10.42.2.0/24")).ok());
  CHECK(WaitUntil([&] {
    return routes.routes() ==
           std::vector<PodRoute>{{"10.42.1.0/24", "192.168.5.2"}, {"10.42.2.0/24", "192.168.5.3"}};
  }));
  CHECK(WaitUntil([&] {
    return netfilter.Restores().back().find("-d 10.42.2.0/24 -j RETURN") != std::string::npos;
  }));
  REQUIRE(api.Delete(nodes, "", "b").ok());
  CHECK(WaitUntil([&] {
    return routes.routes() == std::vector<PodRoute>{{"10.42.2.0/24", "192.168.5.3"}};
  }));
  network->Stop();
  informers->Stop();
}
