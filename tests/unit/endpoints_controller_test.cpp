// The Endpoints controller: subsets from pods (ready and not, named ports, headless,
// publishNotReadyAddresses, terminating and terminal pods), and the controller against the fake
// API (create, follow readiness, Services without selectors untouched, delete with the Service).
#include "endpoints_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace resources = orch::resources;

ObjectPtr Ptr(json j) {
  return std::make_shared<const json>(std::move(j));
}

json Pod(const std::string& name, const std::string& ip, bool ready,
         const json& labels = {{"app", "web"}}) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}, {"labels", labels}}},
      {"spec",
       {{"nodeName", "node1"},
        {"containers", json::array({{{"name", "c"},
                                     {"image", "busybox"},
                                     {"ports", json::array({{{"name", "http"},
                                                             {"containerPort", 8080},
                                                             {"protocol", "TCP"}}})}}})}}},
      {"status", {{"phase", "Running"}}}};
  if (!ip.empty()) {
    pod["status"]["podIP"] = ip;
    pod["status"]["podIPs"] = json::array({{{"ip", ip}}});
  }
  pod["status"]["conditions"] =
      json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}});
  return pod;
}

json Service(const std::string& name, const json& target_port = "http") {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"team", "a"}}}}},
          {"spec",
           {{"selector", {{"app", "web"}}},
            {"clusterIP", "10.43.0.20"},
            {"ports", json::array({{{"name", "web"},
                                    {"port", 80},
                                    {"protocol", "TCP"},
                                    {"targetPort", target_port}}})}}}};
}

}  // namespace

TEST_CASE("endpoint subsets: ready and not ready, named ports") {
  json service = Service("web");
  std::vector<ObjectPtr> pods = {Ptr(Pod("b", "10.42.0.6", false)),
                                 Ptr(Pod("a", "10.42.0.5", true)), Ptr(Pod("pending", "", false))};
  json subsets = ctrl::EndpointSubsets(service, pods);
  REQUIRE(subsets.size() == 1);
  const json& s = subsets[0];
  REQUIRE(s["addresses"].size() == 1);
  CHECK(s["addresses"][0]["ip"] == "10.42.0.5");
  CHECK(s["addresses"][0]["nodeName"] == "node1");
  CHECK(s["addresses"][0]["targetRef"] ==
        json({{"kind", "Pod"}, {"namespace", "default"}, {"name", "a"}, {"uid", "uid-a"}}));
  REQUIRE(s["notReadyAddresses"].size() == 1);
  CHECK(s["notReadyAddresses"][0]["ip"] == "10.42.0.6");
  CHECK(s["ports"] == json::array({{{"name", "web"}, {"port", 8080}, {"protocol", "TCP"}}}));
}

TEST_CASE("endpoint subsets: a named port resolves per pod and pods without it are left out") {
  json other = Pod("other", "10.42.0.7", true);
  other["spec"]["containers"][0]["ports"][0]["containerPort"] = 9090;
  json none = Pod("none", "10.42.0.8", true);
  none["spec"]["containers"][0]["ports"][0]["name"] = "metrics";
  json udp = Pod("udp", "10.42.0.9", true);
  udp["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP";
  json subsets = ctrl::EndpointSubsets(
      Service("web"), {Ptr(Pod("a", "10.42.0.5", true)), Ptr(other), Ptr(none), Ptr(udp)});
  REQUIRE(subsets.size() == 2);
  std::map<int, std::string> by_port;
  for (const json& s : subsets) {
    REQUIRE(s["addresses"].size() == 1);
    by_port[s["ports"][0]["port"].get<int>()] = s["addresses"][0]["ip"];
  }
  CHECK(by_port == std::map<int, std::string>{{8080, "10.42.0.5"}, {9090, "10.42.0.7"}});

  json numeric = ctrl::EndpointSubsets(Service("web", 7000), {Ptr(none)});
  REQUIRE(numeric.size() == 1);
  CHECK(numeric[0]["ports"][0]["port"] == 7000);
  json service = Service("web");
  service["spec"]["ports"][0].erase("targetPort");
  CHECK(ctrl::EndpointSubsets(service, {Ptr(none)})[0]["ports"][0]["port"] == 80);
}

TEST_CASE("endpoint subsets: terminating, terminal, publishNotReadyAddresses, headless") {
  json terminating = Pod("t", "10.42.0.5", true);
  terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  json failed = Pod("f", "10.42.0.6", false);
  failed["status"]["phase"] = "Failed";
  json not_ready = Pod("n", "10.42.0.7", false);
  std::vector<ObjectPtr> pods = {Ptr(terminating), Ptr(failed), Ptr(not_ready)};

  json subsets = ctrl::EndpointSubsets(Service("web"), pods);
  REQUIRE(subsets.size() == 1);
  CHECK_FALSE(subsets[0].contains("addresses"));
  REQUIRE(subsets[0]["notReadyAddresses"].size() == 1);
  CHECK(subsets[0]["notReadyAddresses"][0]["ip"] == "10.42.0.7");

  json publish = Service("web");
  publish["spec"]["publishNotReadyAddresses"] = true;
  subsets = ctrl::EndpointSubsets(publish, pods);
  REQUIRE(subsets.size() == 1);
  CHECK(subsets[0]["addresses"].size() == 2);  // terminating and not ready, not the failed one
  CHECK_FALSE(subsets[0].contains("notReadyAddresses"));

  json headless = Service("web");
  headless["spec"]["clusterIP"] = "None";
  headless["spec"].erase("ports");
  json named = Pod("h", "10.42.0.9", true);
  named["spec"]["hostname"] = "h0";
  named["spec"]["subdomain"] = "web";
  subsets = ctrl::EndpointSubsets(headless, {Ptr(named)});
  REQUIRE(subsets.size() == 1);
  CHECK_FALSE(subsets[0].contains("ports"));
  CHECK(subsets[0]["addresses"][0]["hostname"] == "h0");
  CHECK(ctrl::EndpointLabels(headless) ==
        json({{"team", "a"}, {"service.kubernetes.io/headless", ""}}));
  CHECK(ctrl::EndpointLabels(Service("web")) == json({{"team", "a"}}));
}

TEST_CASE("endpoints controller keeps Endpoints in step with pods") {
  ControllerFixture f;
  f.Add(orch::NewEndpointsController(f.context));
  REQUIRE(f.api.Create(resources::kServices, "default", Service("web")).ok());
  REQUIRE(f.api.Create(resources::kPods, "default", Pod("a", "10.42.0.5", false)).ok());

  auto endpoints = [&]() -> json {
    auto got = f.api.Get(resources::kEndpoints, "default", "web");
    return got.ok() ? *got : json();
  };
  REQUIRE(WaitUntil([&] {
    json e = endpoints();
    return !e.is_null() && e.contains("subsets") && e["subsets"].size() == 1 &&
           e["subsets"][0].contains("notReadyAddresses");
  }));
  CHECK(endpoints()["metadata"]["labels"] == json({{"team", "a"}}));

  // Ready: moves to addresses.
  REQUIRE(f.SetPodRunning("a", true, ctrl::SystemNow()));
  REQUIRE(WaitUntil([&] {
    json e = endpoints();
    return e.contains("subsets") && e["subsets"].size() == 1 &&
           e["subsets"][0].contains("addresses") && !e["subsets"][0].contains("notReadyAddresses");
  }));

  // A pod whose labels stop matching leaves.
  f.Patch(resources::kPods, "a", {{"metadata", {{"labels", {{"app", "other"}}}}}});
  REQUIRE(WaitUntil([&] {
    json e = endpoints();
    return e.contains("subsets") && e["subsets"].empty();
  }));

  // A Service without a selector: its Endpoints are the user's.
  json manual = Service("manual");
  manual["spec"].erase("selector");
  REQUIRE(f.api.Create(resources::kServices, "default", manual).ok());
  json user_endpoints = {
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata", {{"name", "manual"}, {"namespace", "default"}}},
      {"subsets", json::array({{{"addresses", json::array({{{"ip", "192.0.2.1"}}})},
                                {"ports", json::array({{{"port", 1234}}})}}})}};
  REQUIRE(f.api.Create(resources::kEndpoints, "default", user_endpoints).ok());

  // Deleting the Service deletes its Endpoints.
  REQUIRE(f.api.Delete(resources::kServices, "default", "web").ok());
  REQUIRE(WaitUntil([&] { return endpoints().is_null(); }));

  // Settle, then check the user's Endpoints were never touched.
  REQUIRE(f.api.Create(resources::kServices, "default", Service("web2")).ok());
  REQUIRE(WaitUntil([&] { return f.api.Get(resources::kEndpoints, "default", "web2").ok(); }));
  auto kept = f.api.Get(resources::kEndpoints, "default", "manual");
  REQUIRE(kept.ok());
  CHECK((*kept)["subsets"] == user_endpoints["subsets"]);
  CHECK(
      (*kept)["metadata"]["resourceVersion"] ==
      f.api.Get(resources::kEndpoints, "default", "manual")->at("metadata").at("resourceVersion"));
  for (const auto& action : f.api.Actions()) {
    if (action.resource == "endpoints" && action.name == "manual") {
      CHECK(action.verb != "update");  // only the test's own create and gets
      CHECK(action.verb != "patch");
      CHECK(action.verb != "delete");
    }
  }
}
