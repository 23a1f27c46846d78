// The Service allocator's load balancer port book: one LoadBalancer Service per port/protocol,
// refused with upstream's Invalid Status naming the holder, freed on type change and delete,
// other load balancer classes exempt, and Repair making the books match the Services.
#include "service_allocator.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "orch/store.h"
#include "resources.h"

namespace {

using json = nlohmann::json;
using orch::api::AdmissionRequest;
using orch::api::ServiceAllocator;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string templ = fs::temp_directory_path().string() + "/orch-alloc-XXXXXX";
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

json Service(const std::string& name, const std::string& type, int port,
             const std::string& protocol = "TCP") {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"type", type},
            {"ports", json::array({{{"name", "p"}, {"port", port}, {"protocol", protocol}}})}}}};
}

// The allocator over a real (SQLite) store, with the write step played by the test: Admit, then
// Committed or Aborted as Rest does.
struct Fixture {
  Fixture() {
    orch::StoreOptions options;
    options.data_dir = dir.path();
    auto opened = orch::OpenStore(options);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    auto cidr = orch::Cidr::Parse("10.43.0.0/16");
    REQUIRE(cidr.ok());
    allocator = std::make_unique<ServiceAllocator>(*store, *cidr);
    type.kind = "Service";
    type.version = "v1";
    type.plural = "services";
  }

  // Admits and commits `object` (replacing `old` when given); the error when refused.
  std::optional<orch::api::ApiError> Write(json& object, const json* old = nullptr,
                                           bool dry_run = false) {
    AdmissionRequest request;
    request.operation =
        old ? AdmissionRequest::Operation::kUpdate : AdmissionRequest::Operation::kCreate;
    request.type = &type;
    request.object = &object;
    request.old = old;
    request.dry_run = dry_run;
    if (auto error = allocator->Admit(request)) return error;
    if (dry_run) {
      allocator->Aborted(request);
    } else {
      allocator->Committed(request);
    }
    return std::nullopt;
  }

  void Delete(const json& object) {
    AdmissionRequest request;
    request.operation = AdmissionRequest::Operation::kDelete;
    request.type = &type;
    request.old = &object;
    REQUIRE_FALSE(allocator->Admit(request));
    allocator->Committed(request);
  }

  // The holder of a load balancer port, "" when free.
  std::string Holder(const std::string& protocol, int port) {
    auto kv = store->Get(ServiceAllocator::LoadBalancerPortKey(protocol, port));
    return kv.ok() ? kv->value : "";
  }

  TempDir dir;
  std::unique_ptr<orch::Store> store;
  std::unique_ptr<ServiceAllocator> allocator;
  orch::api::ResourceType type;
};

std::string Cause(const orch::api::ApiError& e) {
  return e.details["causes"][0]["field"].get<std::string>() + ": " +
         e.details["causes"][0]["message"].get<std::string>();
}

}  // namespace

TEST_CASE("which Services orch's load balancer serves") {
  CHECK(ServiceAllocator::UsesNodeLoadBalancer(Service("a", "LoadBalancer", 80)));
  CHECK_FALSE(ServiceAllocator::UsesNodeLoadBalancer(Service("a", "NodePort", 80)));
  json other = Service("a", "LoadBalancer", 80);
  other["spec"]["loadBalancerClass"] = "example.com/lb";
  CHECK_FALSE(ServiceAllocator::UsesNodeLoadBalancer(other));
  other["spec"]["loadBalancerClass"] = "";
  CHECK(ServiceAllocator::UsesNodeLoadBalancer(other));
}

TEST_CASE("a load balancer port belongs to one Service") {
  Fixture f;
  json web = Service("web", "LoadBalancer", 80);
  REQUIRE_FALSE(f.Write(web));
  CHECK(f.Holder("TCP", 80) == "default/web");
  CHECK(web["spec"]["ports"][0].contains("nodePort"));  // a NodePort as well

  json second = Service("web2", "LoadBalancer", 80);
  auto refused = f.Write(second);
  REQUIRE(refused);
  CHECK(refused->code == 422);
  CHECK(refused->reason == "Invalid");
  CHECK(Cause(*refused) ==
        "spec.ports[0].port: Invalid value: 80: port 80/TCP is already used by LoadBalancer "
        "Service default/web");
  CHECK(refused->message.find("Invalid value: 80: port 80/TCP is already used by LoadBalancer "
                              "Service default/web") != std::string::npos);
  // Its NodePort and ClusterIP went back.
  orch::RangeOptions node_ports;
  node_ports.prefix = "/registry/ranges/servicenodeports/";
  auto ports = f.store->List(node_ports);
  REQUIRE(ports.ok());
  CHECK(ports->kvs.size() == 1);

  // A dry run is refused the same way and takes nothing.
  json dry = Service("web3", "LoadBalancer", 80);
  CHECK(f.Write(dry, nullptr, true));
  json dry_free = Service("web3", "LoadBalancer", 81);
  CHECK_FALSE(f.Write(dry_free, nullptr, true));
  CHECK(f.Holder("TCP", 81).empty());

  // Another protocol, another class, or a plain NodePort Service may use the port.
  json udp = Service("dns", "LoadBalancer", 80, "UDP");
  CHECK_FALSE(f.Write(udp));
  CHECK(f.Holder("UDP", 80) == "default/dns");
  json metallb = Service("ext", "LoadBalancer", 80);
  metallb["spec"]["loadBalancerClass"] = "metallb.universe.tf/metallb";
  CHECK_FALSE(f.Write(metallb));
  json node_port = Service("np", "NodePort", 80);
  CHECK_FALSE(f.Write(node_port));

  // Updating the holder keeps its port; an update of another Service onto it is refused.
  json web_again = web;
  web_again["metadata"]["labels"] = {{"x", "y"}};
  CHECK_FALSE(f.Write(web_again, &web));
  CHECK(f.Holder("TCP", 80) == "default/web");
  json np_to_lb = node_port;
  np_to_lb["spec"]["type"] = "LoadBalancer";
  auto update_refused = f.Write(np_to_lb, &node_port);
  REQUIRE(update_refused);
  CHECK(Cause(*update_refused) ==
        "spec.ports[0].port: Invalid value: 80: port 80/TCP is already used by LoadBalancer "
        "Service default/web");

  // Turning the holder into a ClusterIP Service frees the port; deleting frees it too.
  json web_cluster = web_again;
  web_cluster["spec"]["type"] = "ClusterIP";
  CHECK_FALSE(f.Write(web_cluster, &web_again));
  CHECK(f.Holder("TCP", 80).empty());
  REQUIRE_FALSE(f.Write(second));
  CHECK(f.Holder("TCP", 80) == "default/web2");
  f.Delete(second);
  CHECK(f.Holder("TCP", 80).empty());
}

TEST_CASE("a port change moves the Service's claim") {
  Fixture f;
  json web = Service("web", "LoadBalancer", 80);
  REQUIRE_FALSE(f.Write(web));
  json moved = web;
  moved["spec"]["ports"][0]["port"] = 8080;
  moved["spec"]["ports"][0].erase("nodePort");
  REQUIRE_FALSE(f.Write(moved, &web));
  CHECK(f.Holder("TCP", 80).empty());
  CHECK(f.Holder("TCP", 8080) == "default/web");
}

TEST_CASE("Repair makes the load balancer book match the Services") {
  Fixture f;
  json web = Service("web", "LoadBalancer", 80);
  REQUIRE_FALSE(f.Write(web));
  json gone = Service("gone", "LoadBalancer", 443);
  REQUIRE_FALSE(f.Write(gone));
  // A Service stored without its key (an older orch), and a key whose Service is gone.
  json old = Service("old", "LoadBalancer", 8443);
  old["spec"]["clusterIP"] = "10.43.0.77";
  old["spec"]["clusterIPs"] = json::array({"10.43.0.77"});
  f.allocator->Repair({web, old});
  CHECK(f.Holder("TCP", 80) == "default/web");
  CHECK(f.Holder("TCP", 443).empty());
  CHECK(f.Holder("TCP", 8443) == "default/old");
  auto ip = f.store->Get(ServiceAllocator::IpKey("10.43.0.77"));
  REQUIRE(ip.ok());
  CHECK(ip->value == "default/old");
  // A Service that has since become a ClusterIP lets its port go.
  json web_cluster = web;
  web_cluster["spec"]["type"] = "ClusterIP";
  f.allocator->Repair({web_cluster, old});
  CHECK(f.Holder("TCP", 80).empty());
  CHECK(f.Holder("TCP", 8443) == "default/old");
}

TEST_CASE("a load balancer port in the NodePort range and a NodePort exclude each other") {
  Fixture f;
  json np = Service("np", "NodePort", 80);
  np["spec"]["ports"][0]["nodePort"] = 30080;
  REQUIRE_FALSE(f.Write(np));
  json lb = Service("lb", "LoadBalancer", 30080);
  auto refused = f.Write(lb);
  REQUIRE(refused);
  CHECK(Cause(*refused) ==
        "spec.ports[0].port: Invalid value: 30080: port 30080/TCP is already used as a node port "
        "by Service default/np");
  CHECK(f.Holder("TCP", 30080).empty());  // nothing kept from the refused write

  json lb2 = Service("lb2", "LoadBalancer", 30081);
  REQUIRE_FALSE(f.Write(lb2));
  auto node_port = f.store->Get(ServiceAllocator::PortKey(30081));
  REQUIRE(node_port.ok());
  CHECK(node_port->value == "default/lb2");
  json np2 = Service("np2", "NodePort", 80);
  np2["spec"]["ports"][0]["nodePort"] = 30081;
  auto taken = f.Write(np2);
  REQUIRE(taken);
  CHECK(Cause(*taken) ==
        "spec.ports[0].nodePort: Invalid value: 30081: provided port is already allocated");
  // Its own NodePort may be the same number; deleting it frees both.
  json lb2_again = lb2;
  lb2_again["spec"]["ports"][0]["nodePort"] = 30081;
  REQUIRE_FALSE(f.Write(lb2_again, &lb2));
  f.Delete(lb2_again);
  CHECK(f.Holder("TCP", 30081).empty());
  CHECK_FALSE(f.store->Get(ServiceAllocator::PortKey(30081)).ok());
  REQUIRE_FALSE(f.Write(np2));
}
