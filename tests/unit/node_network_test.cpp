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
  // Forwarding between pods survives a FORWARD policy of DROP.
  CHECK(rules.find("*filter\n:ORCH-POD-FORWARD - [0:0]\n-I FORWARD -m comment --comment \"orch pod "
                   "network forwarding\" -j ORCH-POD-FORWARD\n") != std::string::npos);
  CHECK(rules.find("-A ORCH-POD-FORWARD -s 10.42.1.0/24 -j ACCEPT\n-A ORCH-POD-FORWARD -d "
                   "10.42.1.0/24 -j ACCEPT\n") != std::string::npos);
  CHECK(rules.rfind("COMMIT\n") == rules.size() - 7);

  // Jumps already there are not inserted twice.
  std::string saved =
      "*nat\n-A PREROUTING -m comment --comment \"orch cluster DNS\" -j ORCH-DNS\n"
      "-A OUTPUT -m comment --comment \"orch cluster DNS\" -j ORCH-DNS\n"
      "-A POSTROUTING -m comment --comment \"orch pod egress masquerade\" -j ORCH-EGRESS\n"
      "*filter\n-A FORWARD -m comment --comment \"orch pod network forwarding\" -j "
      "ORCH-POD-FORWARD\n";
  input.existing_jumps = orch::NodeNetworkJumps(saved);
  CHECK(input.existing_jumps.size() == 4);
  CHECK(orch::NodeNetworkRules(input).find("-I ") == std::string::npos);

  // No pod CIDR yet, no DNS: empty chains.
  orch::NodeNetworkRulesInput none;
  none.existing_jumps = input.existing_jumps;
  CHECK(orch::NodeNetworkRules(none) ==
        "*nat\n:ORCH-EGRESS - [0:0]\n:ORCH-DNS - [0:0]\nCOMMIT\n*filter\n:ORCH-POD-FORWARD - "
        "[0:0]\nCOMMIT\n");
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

namespace {

json VxlanNode(const std::string& name, const std::string& ip, const std::string& cidr,
               const std::string& mac) {
  json node = Node(name, ip, cidr);
  node["metadata"]["annotations"] = {
      {orch::kBackendTypeAnnotation, "vxlan"},
      {orch::kBackendDataAnnotation, json({{"VNI", 1}, {"VtepMAC", mac}}).dump()},
      {orch::kPublicIpAnnotation, ip}};
  return node;
}

class FakeOverlay : public orch::Overlay {
 public:
  orch::Result<std::string> Ensure(const std::string& node_ip,
                                   const std::string& address) override {
    std::lock_guard lock(mu_);
    device_ = node_ip + " " + address;
    return std::string("0a:00:00:00:00:01");
  }
  orch::Result<std::vector<orch::VxlanPeer>> ListPeers() override {
    std::lock_guard lock(mu_);
    return peers_;
  }
  orch::Status AddPeer(const orch::VxlanPeer& peer) override {
    std::lock_guard lock(mu_);
    peers_.push_back({"", peer.gateway, peer.mac, peer.node_ip});
    return orch::Status::Ok();
  }
  orch::Status DeletePeer(const orch::VxlanPeer& peer) override {
    std::lock_guard lock(mu_);
    std::erase_if(peers_, [&](const orch::VxlanPeer& p) { return p.gateway == peer.gateway; });
    return orch::Status::Ok();
  }
  orch::Status Remove() override {
    std::lock_guard lock(mu_);
    device_.clear();
    peers_.clear();
    ++removed_;
    return orch::Status::Ok();
  }
  std::string device() {
    std::lock_guard lock(mu_);
    return device_;
  }
  std::vector<std::string> gateways() {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& p : peers_) out.push_back(p.gateway + " " + p.mac + " " + p.node_ip);
    std::sort(out.begin(), out.end());
    return out;
  }
  int removed() {
    std::lock_guard lock(mu_);
    return removed_;
  }

 private:
  std::mutex mu_;
  std::string device_;
  std::vector<orch::VxlanPeer> peers_;
  int removed_ = 0;
};

}  // namespace

TEST_CASE("vxlan peers come from other nodes' flannel annotations") {
  json no_mac = Node("d", "192.168.5.4", "10.42.3.0/24");
  no_mac["metadata"]["annotations"] = {{orch::kBackendTypeAnnotation, "vxlan"}};
  json host_gw = Node("e", "192.168.5.5", "10.42.4.0/24");
  host_gw["metadata"]["annotations"] = {{orch::kBackendTypeAnnotation, "host-gw"}};
  json public_ip = VxlanNode("f", "192.168.5.6", "10.42.5.0/24", "0a:00:00:00:00:06");
  public_ip["metadata"]["annotations"][orch::kPublicIpAnnotation] = "203.0.113.6";
  std::vector<ObjectPtr> nodes = {
      Ptr(VxlanNode("a", "192.168.5.1", "10.42.0.0/24", "0a:00:00:00:00:01")),
      Ptr(VxlanNode("c", "192.168.5.3", "10.42.2.0/24", "0a:00:00:00:00:03")),
      Ptr(VxlanNode("b", "192.168.5.2", "10.42.1.0/24", "0a:00:00:00:00:02")),
      Ptr(no_mac),
      Ptr(host_gw),
      Ptr(public_ip)};
  auto peers = orch::DesiredVxlanPeers(nodes, "a", "192.168.5.1");
  REQUIRE(peers.size() == 3);
  CHECK(peers[0].cidr == "10.42.1.0/24");
  CHECK(peers[0].gateway == "10.42.1.0");
  CHECK(peers[0].mac == "0a:00:00:00:00:02");
  CHECK(peers[0].node_ip == "192.168.5.2");
  CHECK(peers[1].cidr == "10.42.2.0/24");
  CHECK(peers[2].node_ip == "203.0.113.6");  // public-ip wins over the InternalIP
}

TEST_CASE("the vxlan backend makes the device, announces it and follows its peers") {
  orch::testing::FakeApiClient api;
  const orch::ResourceRef nodes{"", "v1", "nodes", false};
  REQUIRE(api.Create(nodes, "", Node("a", "192.168.5.1", "10.42.0.0/24")).ok());
  REQUIRE(api.Create(nodes, "", VxlanNode("b", "192.168.5.2", "10.42.1.0/24", "0a:00:00:00:00:02"))
              .ok());
  auto informers = orch::InformerFactory::Create(api);
  RecordingNetfilter netfilter;
  FakeRoutes routes;
  FakeOverlay overlay;
  orch::NodeNetworkOptions options;
  options.node_name = "a";
  options.node_ip = "192.168.5.1";
  options.backend = "vxlan";
  options.local_pod_cidr = [] { return std::string("10.42.0.0/24"); };
  options.min_sync_period = std::chrono::milliseconds(50);
  std::mutex mu;
  std::map<std::string, std::string> announced;
  options.annotate = [&](const std::map<std::string, std::string>& annotations) {
    {
      std::lock_guard lock(mu);
      announced = annotations;
    }
    json patch = {{"metadata", {{"annotations", annotations}}}};
    return api.Patch(nodes, "", "a", orch::PatchType::kMerge, patch.dump()).status();
  };
  auto network = orch::NewNodeNetwork(options, *informers, netfilter, routes, &overlay);
  REQUIRE(network->Start().ok());
  informers->Start();
  CHECK(WaitUntil([&] { return overlay.device() == "192.168.5.1 10.42.0.0"; }));
  CHECK(WaitUntil([&] {
    return routes.routes() == std::vector<PodRoute>{{"10.42.1.0/24", "10.42.1.0", "flannel.1"}};
  }));
  CHECK(routes.routes().front().dev == "flannel.1");
  CHECK(overlay.gateways() == std::vector<std::string>{"10.42.1.0 0a:00:00:00:00:02 192.168.5.2"});
  CHECK(WaitUntil([&] {
    std::lock_guard lock(mu);
    return announced[orch::kBackendTypeAnnotation] == "vxlan" &&
           announced[orch::kPublicIpAnnotation] == "192.168.5.1" &&
           json::parse(announced[orch::kBackendDataAnnotation]) ==
               json({{"VNI", 1}, {"VtepMAC", "0a:00:00:00:00:01"}});
  }));
  // A peer that announces itself later is added; one that leaves goes with its route.
  REQUIRE(api.Create(nodes, "", Node("c", "192.168.5.3", "10.42.2.0/24")).ok());
  json c = VxlanNode("c", "192.168.5.3", "10.42.2.0/24", "0a:00:00:00:00:03");
  REQUIRE(
      api.Patch(nodes, "", "c", orch::PatchType::kMerge, json({{"metadata", c["metadata"]}}).dump())
          .ok());
  CHECK(WaitUntil([&] { return routes.routes().size() == 2; }));
  CHECK(overlay.gateways().size() == 2);
  REQUIRE(api.Delete(nodes, "", "b").ok());
  CHECK(WaitUntil([&] {
    return routes.routes() == std::vector<PodRoute>{{"10.42.2.0/24", "10.42.2.0", "flannel.1"}};
  }));
  CHECK(overlay.gateways() == std::vector<std::string>{"10.42.2.0 0a:00:00:00:00:03 192.168.5.3"});
  network->Stop();
  informers->Stop();
  CHECK(overlay.removed() == 0);

  // Started again with host-gw, the node drops the overlay.
  options.backend = "host-gw";
  auto informers2 = orch::InformerFactory::Create(api);
  auto host_gw = orch::NewNodeNetwork(options, *informers2, netfilter, routes, &overlay);
  REQUIRE(host_gw->Start().ok());
  CHECK(overlay.removed() == 1);
  host_gw->Stop();
}
