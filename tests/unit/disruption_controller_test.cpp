// The disruption controller: scaled int-or-percent values, which pods a budget selects, the
// status upstream computes (expected, desired, healthy, allowed, recorded evictions, condition)
// and, against the fake API, a budget over a ReplicaSet kept current as its pods change.
#include "disruption_controller.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace dc = orch::ctrl::disruption;
namespace resources = orch::resources;
using std::chrono::seconds;

json Budget(json spec) {
  spec["selector"] = {{"matchLabels", {{"app", "web"}}}};
  return {{"apiVersion", "policy/v1"},
          {"kind", "PodDisruptionBudget"},
          {"metadata", {{"name", "web"}, {"namespace", "default"}, {"generation", 2}}},
          {"spec", std::move(spec)}};
}

json Pod(const std::string& name, bool ready, const std::string& owner_uid = "rs-uid") {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}},
      {"status",
       {{"phase", "Running"},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
  if (!owner_uid.empty()) {
    pod["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "apps/v1"},
                                                       {"kind", "ReplicaSet"},
                                                       {"name", "web"},
                                                       {"uid", owner_uid},
                                                       {"controller", true}}});
  }
  return pod;
}

// Every pod belongs to one controller of scale `scale`.
dc::ControllerScale ScaleOf(int64_t scale) {
  return [scale](const json& pod) -> orch::Result<std::pair<std::string, int64_t>> {
    const json* ref = ctrl::GetControllerOf(pod);
    if (ref == nullptr) return std::make_pair(std::string(), int64_t{0});
    return std::make_pair(ctrl::StringField(*ref, {"uid"}), scale);
  };
}

std::vector<ObjectPtr> Pods(int ready, int not_ready) {
  std::vector<ObjectPtr> pods;
  for (int i = 0; i < ready; ++i) pods.push_back(Ptr(Pod(fmt::format("r{}", i), true)));
  for (int i = 0; i < not_ready; ++i) pods.push_back(Ptr(Pod(fmt::format("u{}", i), false)));
  return pods;
}

}  // namespace

TEST_CASE("int-or-percent values scale as upstream's") {
  CHECK(*dc::ScaledValue(3, 10, true) == 3);
  CHECK(*dc::ScaledValue("50%", 5, true) == 3);
  CHECK(*dc::ScaledValue("50%", 5, false) == 2);
  CHECK(*dc::ScaledValue("100%", 4, true) == 4);
  CHECK_FALSE(dc::ScaledValue("half", 4, true).ok());
  CHECK_FALSE(dc::ScaledValue("x%", 4, true).ok());
}

TEST_CASE("a budget selects the pods its selector matches; an empty selector none") {
  std::vector<ObjectPtr> pods = Pods(2, 0);
  json other = Pod("other", true);
  other["metadata"]["labels"] = {{"app", "db"}};
  pods.push_back(Ptr(other));
  CHECK(dc::SelectedPods(Budget({{"minAvailable", 1}}), pods).size() == 2);
  json empty = Budget({{"minAvailable", 1}});
  empty["spec"]["selector"] = json::object();
  CHECK(dc::SelectedPods(empty, pods).empty());
}

TEST_CASE("status from an integer minAvailable counts the selected pods") {
  auto now = std::chrono::system_clock::now();
  auto result = dc::CalculateStatus(Budget({{"minAvailable", 2}}), Pods(3, 1), ScaleOf(99), now);
  REQUIRE(result.error.ok());
  const json& s = result.status;
  CHECK(s["expectedPods"] == 4);
  CHECK(s["desiredHealthy"] == 2);
  CHECK(s["currentHealthy"] == 3);
  CHECK(s["disruptionsAllowed"] == 1);
  CHECK(s["observedGeneration"] == 2);
  const json* condition = ctrl::FindCondition(s, "DisruptionAllowed");
  REQUIRE(condition != nullptr);
  CHECK((*condition)["status"] == "True");
  CHECK((*condition)["reason"] == "SufficientPods");

  result = dc::CalculateStatus(Budget({{"minAvailable", 3}}), Pods(3, 0), ScaleOf(3), now);
  CHECK(result.status["disruptionsAllowed"] == 0);
  CHECK((*ctrl::FindCondition(result.status, "DisruptionAllowed"))["reason"] == "InsufficientPods");
}

TEST_CASE("status from maxUnavailable or a percent uses the controllers' scale") {
  auto now = std::chrono::system_clock::now();
  auto result = dc::CalculateStatus(Budget({{"maxUnavailable", 1}}), Pods(2, 0), ScaleOf(3), now);
  CHECK(result.status["expectedPods"] == 3);
  CHECK(result.status["desiredHealthy"] == 2);
  CHECK(result.status["disruptionsAllowed"] == 0);
  result = dc::CalculateStatus(Budget({{"maxUnavailable", "50%"}}), Pods(4, 0), ScaleOf(4), now);
  CHECK(result.status["desiredHealthy"] == 2);
  CHECK(result.status["disruptionsAllowed"] == 2);
  result = dc::CalculateStatus(Budget({{"minAvailable", "50%"}}), Pods(3, 0), ScaleOf(3), now);
  CHECK(result.status["desiredHealthy"] == 2);
  CHECK(result.status["disruptionsAllowed"] == 1);

  // Pods without a controller are not counted; a missing controller fails safe.
  std::vector<ObjectPtr> pods = Pods(2, 0);
  pods.push_back(Ptr(Pod("bare", true, "")));
  result = dc::CalculateStatus(Budget({{"maxUnavailable", 1}}), pods, ScaleOf(2), now);
  CHECK(result.unmanaged == 1);
  CHECK(result.status["expectedPods"] == 2);
  dc::ControllerScale missing = [](const json&) -> orch::Result<std::pair<std::string, int64_t>> {
    return orch::NotFound("found no controllers for pod \"r0\"");
  };
  result = dc::CalculateStatus(Budget({{"maxUnavailable", 1}}), Pods(3, 0), missing, now);
  CHECK_FALSE(result.error.ok());
  CHECK(result.status["disruptionsAllowed"] == 0);
  CHECK((*ctrl::FindCondition(result.status, "DisruptionAllowed"))["reason"] == "SyncFailed");
}

TEST_CASE("recorded evictions count as unhealthy until confirmed or 2 minutes old") {
  auto now = std::chrono::system_clock::now();
  json pdb = Budget({{"minAvailable", 1}});
  pdb["status"]["disruptedPods"] = {{"r0", orch::FormatTime(now - seconds(30))},
                                    {"r1", orch::FormatTime(now - seconds(200))},
                                    {"gone", orch::FormatTime(now - seconds(10))}};
  auto result = dc::CalculateStatus(pdb, Pods(3, 0), ScaleOf(3), now);
  CHECK(result.status["currentHealthy"] == 2);  // r0 is being evicted
  CHECK(result.status["disruptedPods"].size() == 1);
  CHECK(result.status["disruptedPods"].contains("r0"));
  CHECK(result.expired == std::vector<std::string>{"r1"});
  REQUIRE(result.recheck);
  CHECK(*result.recheck > now);
  CHECK(*result.recheck <= now + seconds(91));
}

TEST_CASE("the controller keeps a budget's status current") {
  ControllerFixture f;
  orch::DisruptionControllerOptions options;
  f.Add(orch::NewDisruptionController(f.context, options));
  json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata", {{"name", "web"}, {"namespace", "default"}}},
             {"spec",
              {{"replicas", 3},
               {"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"template", orch::testing::PodTemplate({{"app", "web"}}, "busybox")}}}};
  auto created = f.api.Create(resources::kReplicaSets, "default", rs);
  REQUIRE(created.ok());
  const std::string uid = ctrl::UidOf(*created);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.api.Create(resources::kPods, "default", Pod(fmt::format("p{}", i), true, uid)).ok());
  }
  json pdb = Budget({{"maxUnavailable", 1}});
  pdb["metadata"].erase("generation");
  REQUIRE(f.api.Create(resources::kPodDisruptionBudgets, "default", pdb).ok());
  auto status_is = [&](int64_t healthy, int64_t allowed) {
    json s = f.Get(resources::kPodDisruptionBudgets, "web").value("status", json::object());
    return s.value("currentHealthy", -1) == healthy &&
           s.value("disruptionsAllowed", -1) == allowed && s.value("expectedPods", -1) == 3 &&
           s.value("desiredHealthy", -1) == 2 && s.value("observedGeneration", -1) == 1;
  };
  REQUIRE(WaitUntil([&] { return status_is(3, 1); }));
  REQUIRE(f.SetPodRunning("p0", false, std::chrono::system_clock::now()));
  REQUIRE(WaitUntil([&] { return status_is(2, 0); }));
}
