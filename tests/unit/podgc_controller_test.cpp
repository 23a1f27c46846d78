// The pod garbage collector against the fake API: pods of deleted nodes (after the quarantine,
// marked Failed with DisruptionTarget first), unscheduled terminating pods, terminating pods on
// not-ready nodes, and the terminated-pod threshold; plus its pure helpers.
#include "podgc_controller.h"

#include <catch2/catch.hpp>
#include <thread>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace podgc = orch::ctrl::podgc;
namespace resources = orch::resources;

json Pod(const std::string& name, const std::string& node, const std::string& phase,
         const std::string& created = "2026-01-01T00:00:00Z") {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"creationTimestamp", created}}},
      {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}},
      {"status", {{"phase", phase}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  return pod;
}

json Node(const std::string& name, const std::string& ready) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}}},
          {"status", {{"conditions", json::array({{{"type", "Ready"}, {"status", ready}}})}}}};
}

orch::ObjectPtr Ptr(json object) {
  return std::make_shared<const json>(std::move(object));
}

struct PodGcFixture : ControllerFixture {
  explicit PodGcFixture(int64_t threshold = 12500) {
    orch::PodGcControllerOptions options;
    options.now = clock.Func();
    options.period = std::chrono::milliseconds(20);
    options.quarantine = std::chrono::seconds(40);
    options.terminated_threshold = threshold;
    Add(orch::NewPodGcController(context, options));
  }
  bool Exists(const std::string& name) { return api.Get(resources::kPods, "default", name).ok(); }
};

}  // namespace

TEST_CASE("podgc: the oldest terminated pods beyond the threshold go") {
  std::vector<orch::ObjectPtr> pods = {
      Ptr(Pod("new", "n", "Succeeded", "2026-01-03T00:00:00Z")),
      Ptr(Pod("old", "n", "Failed", "2026-01-01T00:00:00Z")),
      Ptr(Pod("running", "n", "Running", "2025-01-01T00:00:00Z")),
      Ptr(Pod("mid", "n", "Succeeded", "2026-01-02T00:00:00Z")),
  };
  auto victims = podgc::TerminatedPodsToDelete(pods, 1);
  REQUIRE(victims.size() == 2);
  CHECK(ctrl::NameOf(*victims[0]) == "old");
  CHECK(ctrl::NameOf(*victims[1]) == "mid");
  CHECK(podgc::TerminatedPodsToDelete(pods, 3).empty());
  CHECK(podgc::TerminatedPodsToDelete(pods, 0).empty());  // disabled
}

TEST_CASE("podgc: terminating pods on not-ready nodes once their deadline passed") {
  const auto now = orch::ParseTime("2026-01-01T00:10:00Z").value();
  json pod = Pod("p", "n", "Running");
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:05:00Z";
  CHECK(podgc::ShouldForceDeleteTerminating(pod, Node("n", "Unknown"), now));
  CHECK_FALSE(podgc::ShouldForceDeleteTerminating(pod, Node("n", "True"), now));
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:15:00Z";
  CHECK_FALSE(podgc::ShouldForceDeleteTerminating(pod, Node("n", "False"), now));
  json out_of_service = Node("n", "False");
  out_of_service["spec"]["taints"] = {
      {{"key", podgc::kOutOfServiceTaint}, {"value", "nodeshutdown"}, {"effect", "NoExecute"}}};
  CHECK(podgc::ShouldForceDeleteTerminating(pod, out_of_service, now));
  pod["metadata"].erase("deletionTimestamp");
  CHECK_FALSE(podgc::ShouldForceDeleteTerminating(pod, out_of_service, now));

  json patch =
      podgc::MarkFailedPatch(Pod("p", "n", "Running"), "PodGC: node no longer exists", now);
  CHECK(patch["status"]["phase"] == "Failed");
  CHECK(patch["status"]["conditions"][0]["reason"] == "DeletionByPodGC");
  CHECK(podgc::MarkFailedPatch(Pod("p", "n", "Succeeded"), "x", now).is_null());
}

TEST_CASE("podgc: pods of a deleted node go after the quarantine, marked Failed first") {
  PodGcFixture f;
  REQUIRE(f.api.Create(resources::kNodes, "", Node("alive", "True")).ok());
  REQUIRE(f.api.Create(resources::kPods, "default", Pod("kept", "alive", "Running")).ok());
  REQUIRE(f.api.Create(resources::kPods, "default", Pod("stranded", "gone", "Running")).ok());
  // Not before the quarantine has passed: the node may just be missing from the cache.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(f.Exists("stranded"));
  f.clock.Advance(std::chrono::seconds(41));
  REQUIRE(WaitUntil([&] { return !f.Exists("stranded"); }));
  CHECK(f.Exists("kept"));
}

TEST_CASE("podgc: unscheduled terminating pods and terminated pods over the threshold") {
  PodGcFixture f(/*threshold=*/1);
  REQUIRE(f.api.Create(resources::kNodes, "", Node("n", "True")).ok());
  json stuck = Pod("stuck", "", "Pending");
  stuck["metadata"]["finalizers"] = {"example.com/hold"};
  REQUIRE(f.api.Create(resources::kPods, "default", stuck).ok());
  REQUIRE(f.api.Delete(resources::kPods, "default", "stuck").ok());
  REQUIRE(f.api
              .Create(resources::kPods, "default",
                      Pod("done-old", "n", "Succeeded", "2026-01-01T00:00:00Z"))
              .ok());
  // The API dates pods itself, to the second: the second one is younger.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  REQUIRE(f.api
              .Create(resources::kPods, "default",
                      Pod("done-new", "n", "Succeeded", "2026-01-02T00:00:00Z"))
              .ok());
  REQUIRE(WaitUntil([&] { return !f.Exists("done-old"); }));
  CHECK(f.Exists("done-new"));
  // A force deletion still waits for finalizers; what podgc can do is mark it Failed.
  REQUIRE(WaitUntil([&] {
    auto pod = f.api.Get(resources::kPods, "default", "stuck");
    return !pod.ok() || ctrl::PodPhase(*pod) == "Failed";
  }));
}
