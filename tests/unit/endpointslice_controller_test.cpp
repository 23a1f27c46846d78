// The EndpointSlice and mirroring controllers: endpoints and conditions from pods, slice
// planning (reuse, split at the size limit, placeholder), and both controllers against the fake
// API (labels, owner, readiness, scale to zero, Services without selectors mirrored).
#include "endpointslice_controller.h"

#include <catch2/catch.hpp>

#include "controller_test_util.h"
#include "endpoints_controller.h"

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

json Pod(const std::string& name, const std::string& ip, bool ready) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name},
        {"namespace", "default"},
        {"uid", "uid-" + name},
        {"labels", {{"app", "web"}}}}},
      {"spec",
       {{"nodeName", "node1"},
        {"containers",
         json::array({{{"name", "c"},
                       {"image", "busybox"},
                       {"ports", json::array({{{"name", "http"}, {"containerPort", 8080}}})}}})}}},
      {"status", {{"phase", "Running"}, {"podIP", ip}}}};
  pod["status"]["conditions"] =
      json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}});
  return pod;
}

json Service(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "svc-uid"}}},
          {"spec",
           {{"selector", {{"app", "web"}}},
            {"clusterIP", "10.43.0.20"},
            {"ports", json::array({{{"name", "web"}, {"port", 80}, {"targetPort", "http"}}})}}}};
}

std::vector<json> Slices(ControllerFixture& f, const std::string& service) {
  return f.List(resources::kEndpointSlices, "default",
                std::string(ctrl::kServiceNameLabel) + "=" + service);
}

size_t EndpointCount(const std::vector<json>& slices) {
  size_t n = 0;
  for (const json& s : slices) n += s.value("endpoints", json::array()).size();
  return n;
}

}  // namespace

TEST_CASE("slice endpoints: conditions, terminating pods, publishNotReadyAddresses") {
  json terminating = Pod("t", "10.42.0.7", true);
  terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  std::vector<ObjectPtr> pods = {Ptr(Pod("a", "10.42.0.5", true)),
                                 Ptr(Pod("b", "10.42.0.6", false)), Ptr(terminating),
                                 Ptr(Pod("none", "", true))};
  auto groups = ctrl::DesiredSliceGroups(Service("web"), pods);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].ports == json::array({{{"name", "web"}, {"port", 8080}, {"protocol", "TCP"}}}));
  REQUIRE(groups[0].endpoints.size() == 3);
  const json& a = groups[0].endpoints[0];
  CHECK(a["addresses"] == json::array({"10.42.0.5"}));
  CHECK(a["conditions"] == json({{"ready", true}, {"serving", true}, {"terminating", false}}));
  CHECK(a["nodeName"] == "node1");
  CHECK(a["targetRef"]["name"] == "a");
  CHECK(groups[0].endpoints[1]["conditions"] ==
        json({{"ready", false}, {"serving", false}, {"terminating", false}}));
  CHECK(groups[0].endpoints[2]["conditions"] ==
        json({{"ready", false}, {"serving", true}, {"terminating", true}}));

  json publish = Service("web");
  publish["spec"]["publishNotReadyAddresses"] = true;
  groups = ctrl::DesiredSliceGroups(publish, pods);
  for (const json& e : groups[0].endpoints) CHECK(e["conditions"]["ready"] == true);
}

TEST_CASE("slice planning: placeholder, split, reuse, removal") {
  json service = Service("web");
  json labels = {{ctrl::kServiceNameLabel, "web"},
                 {ctrl::kManagedByLabel, ctrl::kSliceControllerName}};
  json owner = {{"kind", "Service"}, {"name", "web"}, {"uid", "svc-uid"}, {"controller", true}};

  // Nothing: one empty slice.
  auto plan = ctrl::PlanSlices(service, {}, {}, labels, owner);
  REQUIRE(plan.create.size() == 1);
  CHECK(plan.create[0]["endpoints"].empty());
  CHECK(plan.create[0]["metadata"]["generateName"] == "web-");
  CHECK(plan.create[0]["addressType"] == "IPv4");
  CHECK(plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "svc-uid");

  // 5 endpoints at 2 per slice: 3 slices.
  std::vector<ObjectPtr> pods;
  for (int i = 0; i < 5; ++i)
    pods.push_back(Ptr(Pod(fmt::format("p{}", i), fmt::format("10.42.0.{}", i + 1), true)));
  auto groups = ctrl::DesiredSliceGroups(service, pods);
  plan = ctrl::PlanSlices(service, groups, {}, labels, owner, 2);
  CHECK(plan.create.size() == 3);
  CHECK(plan.update.empty());

  // Existing slices are reused: identical ones untouched, a changed one updated, extras removed.
  std::vector<ObjectPtr> existing;
  for (size_t i = 0; i < plan.create.size(); ++i) {
    json s = plan.create[i];
    s["metadata"]["name"] = fmt::format("web-{}", i);
    s["metadata"]["resourceVersion"] = "7";
    existing.push_back(Ptr(s));
  }
  auto same = ctrl::PlanSlices(service, groups, existing, labels, owner, 2);
  CHECK(same.create.empty());
  CHECK(same.update.empty());
  CHECK(same.remove.empty());

  pods.pop_back();
  pods.pop_back();
  groups = ctrl::DesiredSliceGroups(service, pods);
  auto shrunk = ctrl::PlanSlices(service, groups, existing, labels, owner, 2);
  CHECK(shrunk.create.empty());
  REQUIRE(shrunk.update.size() == 1);  // web-0 keeps p0 and p1; web-1 drops p3
  CHECK(shrunk.update[0]["metadata"]["name"] == "web-1");
  CHECK(shrunk.update[0]["metadata"]["resourceVersion"] == "7");
  CHECK(shrunk.remove == std::vector<std::string>{"web-2"});
}

TEST_CASE("endpointslice controller follows pods; mirroring covers Services without selectors") {
  ControllerFixture f;
  f.Add(orch::NewEndpointSliceController(f.context));
  f.Add(orch::NewEndpointSliceMirroringController(f.context));
  REQUIRE(f.api.Create(resources::kServices, "default", Service("web")).ok());

  // A placeholder first.
  REQUIRE(WaitUntil([&] { return Slices(f, "web").size() == 1; }));
  json slice = Slices(f, "web")[0];
  CHECK(slice["metadata"]["labels"][ctrl::kManagedByLabel] == ctrl::kSliceControllerName);
  CHECK(slice["metadata"]["ownerReferences"][0]["kind"] == "Service");
  CHECK(slice["metadata"]["ownerReferences"][0]["name"] == "web");

  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.api
                .Create(resources::kPods, "default",
                        Pod(fmt::format("p{}", i), fmt::format("10.42.0.{}", i + 1), i != 2))
                .ok());
  }
  REQUIRE(WaitUntil([&] {
    auto slices = Slices(f, "web");
    return slices.size() == 1 && EndpointCount(slices) == 3;
  }));
  auto endpoints = Slices(f, "web")[0]["endpoints"];
  int ready = 0;
  for (const json& e : endpoints) ready += e["conditions"]["ready"].get<bool>() ? 1 : 0;
  CHECK(ready == 2);

  // A graceful deletion: the pod stays as a terminating endpoint, serving but not ready.
  REQUIRE(f.api.Delete(resources::kPods, "default", "p0").ok());
  REQUIRE(WaitUntil([&] {
    auto slices = Slices(f, "web");
    if (slices.size() != 1) return false;
    for (const json& e : slices[0]["endpoints"]) {
      if (e["targetRef"]["name"] == "p0") return e["conditions"]["terminating"] == true;
    }
    return false;
  }));
  // Scale to zero: one empty slice remains.
  orch::DeleteOptions now;
  now.grace_period_seconds = 0;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.api.Delete(resources::kPods, "default", fmt::format("p{}", i), now).ok());
  }
  REQUIRE(WaitUntil([&] {
    auto slices = Slices(f, "web");
    return slices.size() == 1 && EndpointCount(slices) == 0;
  }));

  // A Service without a selector and its hand-written Endpoints: mirrored.
  json manual = Service("manual");
  manual["spec"].erase("selector");
  REQUIRE(f.api.Create(resources::kServices, "default", manual).ok());
  json user_endpoints = {
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata", {{"name", "manual"}, {"namespace", "default"}, {"labels", {{"x", "y"}}}}},
      {"subsets", json::array({{{"addresses", json::array({{{"ip", "192.0.2.1"}}})},
                                {"notReadyAddresses", json::array({{{"ip", "192.0.2.2"}}})},
                                {"ports", json::array({{{"name", "https"}, {"port", 6443}}})}}})}};
  REQUIRE(f.api.Create(resources::kEndpoints, "default", user_endpoints).ok());
  REQUIRE(WaitUntil([&] { return EndpointCount(Slices(f, "manual")) == 2; }));
  json mirrored = Slices(f, "manual")[0];
  CHECK(mirrored["metadata"]["labels"][ctrl::kManagedByLabel] == ctrl::kMirroringControllerName);
  CHECK(mirrored["metadata"]["labels"]["x"] == "y");
  CHECK(mirrored["ports"] ==
        json::array({{{"name", "https"}, {"port", 6443}, {"protocol", "TCP"}}}));
  CHECK(mirrored["endpoints"][0]["conditions"]["ready"] == true);
  CHECK(mirrored["endpoints"][1]["conditions"]["ready"] == false);

  // The Service goes: so do its slices.
  REQUIRE(f.api.Delete(resources::kServices, "default", "manual").ok());
  REQUIRE(f.api.Delete(resources::kServices, "default", "web").ok());
  REQUIRE(WaitUntil([&] { return Slices(f, "manual").empty() && Slices(f, "web").empty(); }));
}
