// The servicelb controller: which nodes a LoadBalancer Service lists (Ready, ExternalIP over
// InternalIP, k3s's enablelb and lbpool labels, the exclude label, IP families), and, against the
// fake API, status written and kept current as nodes change, cleared when the type changes,
// Services of another loadBalancerClass left alone, with upstream's events.
#include "servicelb_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

json Node(const std::string& name, const std::string& internal_ip, bool ready = true,
          const std::string& external_ip = "") {
  json addresses = json::array({{{"type", "InternalIP"}, {"address", internal_ip}},
                                {{"type", "Hostname"}, {"address", name}}});
  if (!external_ip.empty()) addresses.push_back({{"type", "ExternalIP"}, {"address", external_ip}});
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", name}}},
      {"status",
       {{"addresses", addresses},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
}

json LbService(const std::string& name, int port = 80) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"clusterIP", "10.43.0.20"},
            {"ipFamilies", json::array({"IPv4"})},
            {"ports", json::array({{{"port", port}, {"protocol", "TCP"}, {"nodePort", 31000}}})}}}};
}

std::vector<ObjectPtr> Nodes(std::initializer_list<json> nodes) {
  std::vector<ObjectPtr> out;
  for (const json& n : nodes) out.push_back(Ptr(n));
  return out;
}

using Ips = std::vector<std::string>;

}  // namespace

TEST_CASE("a LoadBalancer Service lists its serving nodes' addresses") {
  json svc = LbService("web");
  SECTION("Ready nodes, sorted by address, ExternalIP when a node has one") {
    auto nodes =
        Nodes({Node("a", "10.0.0.10"), Node("b", "10.0.0.9"), Node("c", "10.0.0.11", false),
               Node("d", "10.0.0.12", true, "203.0.113.4")});
    CHECK(ctrl::LoadBalancerIps(svc, nodes) == Ips{"10.0.0.9", "10.0.0.10", "203.0.113.4"});
  }
  SECTION("no Ready node, no address") {
    CHECK(ctrl::LoadBalancerIps(svc, Nodes({Node("a", "10.0.0.1", false)})).empty());
  }
  SECTION("nodes being deleted or excluded are left out") {
    json deleting = Node("a", "10.0.0.1");
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
    json excluded = Node("b", "10.0.0.2");
    excluded["metadata"]["labels"][ctrl::kExcludeLbLabel] = "";
    CHECK(ctrl::LoadBalancerIps(svc, Nodes({deleting, excluded, Node("c", "10.0.0.3")})) ==
          Ips{"10.0.0.3"});
  }
  SECTION("enablelb=true on some nodes: only those serve; lbpool narrows further") {
    json a = Node("a", "10.0.0.1");
    a["metadata"]["labels"][ctrl::kEnableLbLabel] = "true";
    a["metadata"]["labels"][ctrl::kLbPoolLabel] = "edge";
    json b = Node("b", "10.0.0.2");
    b["metadata"]["labels"][ctrl::kEnableLbLabel] = "true";
    json c = Node("c", "10.0.0.3");
    c["metadata"]["labels"][ctrl::kEnableLbLabel] = "false";
    CHECK(ctrl::LoadBalancerIps(svc, Nodes({a, b, c})) == Ips{"10.0.0.1", "10.0.0.2"});
    json pooled = svc;
    pooled["metadata"]["labels"][ctrl::kLbPoolLabel] = "edge";
    CHECK(ctrl::LoadBalancerIps(pooled, Nodes({a, b, c})) == Ips{"10.0.0.1"});
  }
  SECTION("only the Service's IP families") {
    json dual = Node("a", "10.0.0.1");
    dual["status"]["addresses"].push_back({{"type", "InternalIP"}, {"address", "fd00::1"}});
    CHECK(ctrl::LoadBalancerIps(svc, Nodes({dual})) == Ips{"10.0.0.1"});
    json v6 = svc;
    v6["spec"]["ipFamilies"] = json::array({"IPv6"});
    CHECK(ctrl::LoadBalancerIps(v6, Nodes({dual})) == Ips{"fd00::1"});
  }
  CHECK(ctrl::IngressFor({"10.0.0.1"}) == json::array({{{"ip", "10.0.0.1"}}}));
}

TEST_CASE("which Services the controller serves") {
  CHECK(ctrl::ServiceLbHandles(LbService("a")));
  json other = LbService("a");
  other["spec"]["loadBalancerClass"] = "example.com/lb";
  CHECK_FALSE(ctrl::ServiceLbHandles(other));
  json node_port = LbService("a");
  node_port["spec"]["type"] = "NodePort";
  CHECK_FALSE(ctrl::ServiceLbHandles(node_port));
}

TEST_CASE("a node's load balancer fingerprint ignores heartbeats") {
  json node = Node("a", "10.0.0.1");
  json beat = node;
  beat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:00Z";
  CHECK(ctrl::LoadBalancerNodeFingerprint(node) == ctrl::LoadBalancerNodeFingerprint(beat));
  json not_ready = Node("a", "10.0.0.1", false);
  CHECK(ctrl::LoadBalancerNodeFingerprint(node) != ctrl::LoadBalancerNodeFingerprint(not_ready));
  json moved = Node("a", "10.0.0.2");
  CHECK(ctrl::LoadBalancerNodeFingerprint(node) != ctrl::LoadBalancerNodeFingerprint(moved));
}

TEST_CASE("the controller keeps LoadBalancer status current") {
  ControllerFixture f;
  f.Add(orch::NewServiceLbController(f.context));
  REQUIRE(f.api.Create(resources::kNodes, "", Node("n1", "10.0.0.1")).ok());
  REQUIRE(f.api.Create(resources::kServices, "default", LbService("web")).ok());

  auto ingress = [&](const std::string& name) {
    json svc = f.Get(resources::kServices, name);
    Ips ips;
    const json& list = ctrl::Field(svc, {"status", "loadBalancer", "ingress"});
    if (list.is_array()) {
      for (const json& i : list) ips.push_back(i.value("ip", ""));
    }
    return ips;
  };
  REQUIRE(WaitUntil([&] { return ingress("web") == Ips{"10.0.0.1"}; }));
  CHECK(f.events.WithReason("EnsuringLoadBalancer").size() == 1);
  REQUIRE(WaitUntil([&] { return f.events.WithReason("EnsuredLoadBalancer").size() == 1; }));

  // A second node joins, then the first turns NotReady.
  REQUIRE(f.api.Create(resources::kNodes, "", Node("n2", "10.0.0.2")).ok());
  REQUIRE(WaitUntil([&] { return ingress("web") == Ips{"10.0.0.1", "10.0.0.2"}; }));
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("UpdatedLoadBalancer").empty(); }));
  json n1 = f.Get(resources::kNodes, "n1", "");
  n1["status"]["conditions"][0]["status"] = "False";
  REQUIRE(f.api.Update(resources::kNodes, "", n1, "status").ok());
  REQUIRE(WaitUntil([&] { return ingress("web") == Ips{"10.0.0.2"}; }));
  // A node that goes away leaves no address.
  REQUIRE(f.api.Delete(resources::kNodes, "", "n2").ok());
  REQUIRE(WaitUntil([&] { return ingress("web").empty(); }));
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("UnAvailableLoadBalancer").empty(); }));
  n1["status"]["conditions"][0]["status"] = "True";
  n1.erase("metadata");
  REQUIRE(f.api
              .Patch(resources::kNodes, "", "n1", orch::PatchType::kMerge,
                     json{{"status", n1["status"]}}.dump(), "status")
              .ok());
  REQUIRE(WaitUntil([&] { return ingress("web") == Ips{"10.0.0.1"}; }));

  // Another class is left alone.
  json other = LbService("metal");
  other["spec"]["loadBalancerClass"] = "metallb.universe.tf/metallb";
  REQUIRE(f.api.Create(resources::kServices, "default", other).ok());

  // Turning into a ClusterIP Service clears the status.
  f.Patch(resources::kServices, "web", {{"spec", {{"type", "ClusterIP"}}}});
  REQUIRE(WaitUntil([&] { return ingress("web").empty(); }));
  REQUIRE(WaitUntil([&] { return !f.events.WithReason("DeletedLoadBalancer").empty(); }));
  CHECK(ingress("metal").empty());
  json metal = f.Get(resources::kServices, "metal");
  CHECK_FALSE(ctrl::Field(metal, {"status", "loadBalancer"}).contains("ingress"));
}

TEST_CASE("--disable servicelb leaves the controller out") {
  ControllerFixture f;
  const auto& all = orch::AllControllers();
  CHECK(std::count_if(all.begin(), all.end(), [](const orch::ControllerEntry& e) {
          return std::string_view(e.name) == "servicelb";
        }) == 1);
  auto names = [](const std::vector<std::unique_ptr<orch::Component>>& controllers) {
    std::vector<std::string> out;
    for (const auto& c : controllers) out.emplace_back(c->Name());
    return out;
  };
  auto enabled = names(orch::NewControllers(f.context));
  CHECK(std::count(enabled.begin(), enabled.end(), "servicelb") == 1);
  auto disabled = names(orch::NewControllers(f.context, {"servicelb"}));
  CHECK(std::count(disabled.begin(), disabled.end(), "servicelb") == 0);
  CHECK(disabled.size() + 1 == enabled.size());
}
