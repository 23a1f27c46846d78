// The Deployment controller: its arithmetic (hashes, fenceposts, proportions, conditions) and,
// with the ReplicaSet controller against the fake API, rollouts (RollingUpdate step by step,
// Recreate), undo, pause, proportional scaling, history cleanup, collisions and deadlines.
#include "deployment_controller.h"

#include <catch2/catch.hpp>
#include <iostream>

#include "controller_test_util.h"
#include "deployment_util.h"
#include "replicaset_controller.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace deploy = orch::ctrl::deploy;
namespace resources = orch::resources;

json Template(const std::string& app, const std::string& image) {
  return orch::testing::PodTemplate({{"app", app}}, image);
}

// A Deployment as the API would store it, defaults included.
json Deployment(const std::string& name, int replicas, const std::string& image,
                json max_surge = "25%", json max_unavailable = "25%") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template", Template(name, image)},
            {"strategy",
             {{"type", "RollingUpdate"},
              {"rollingUpdate", {{"maxSurge", max_surge}, {"maxUnavailable", max_unavailable}}}}},
            {"revisionHistoryLimit", 10},
            {"progressDeadlineSeconds", 600}}}};
}

ObjectPtr Rs(int replicas, json extra = json::object()) {
  json rs = {{"metadata", {{"name", "rs"}, {"creationTimestamp", "2024-01-01T00:00:00Z"}}},
             {"spec", {{"replicas", replicas}}}};
  rs.merge_patch(extra);
  return orch::testing::Ptr(std::move(rs));
}

// kubectl rollout status for a Deployment (kubectl/pkg/polymorphichelpers/rollout_status.go):
// "done", or why it is still waiting.
std::string RolloutStatus(const json& d) {
  if (ctrl::IntField(d, {"metadata", "generation"}) >
      ctrl::IntField(d, {"status", "observedGeneration"})) {
    return "waiting for the spec to be observed";
  }
  const json& s = ctrl::Field(d, {"status"});
  const json* progressing = ctrl::FindCondition(s, "Progressing");
  if (progressing != nullptr && (*progressing)["reason"] == "ProgressDeadlineExceeded") {
    return "exceeded its progress deadline";
  }
  auto count = [&](const char* field) { return ctrl::IntField(s, {field}); };
  if (count("updatedReplicas") < ctrl::IntField(d, {"spec", "replicas"}, 1)) return "updating";
  if (count("replicas") > count("updatedReplicas")) return "old replicas pending";
  if (count("availableReplicas") < count("updatedReplicas")) return "not available";
  return "done";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure logic.

TEST_CASE("pod-template-hash is stable, canonical and spelled safely") {
  json t = Template("web", "nginx:1");
  std::string h = deploy::ComputeHash(t, std::nullopt);
  CHECK(h == deploy::ComputeHash(json::parse(t.dump()), std::nullopt));
  // Absent and empty fields, and key order, do not matter.
  json same = t;
  same["metadata"]["annotations"] = json::object();
  same["spec"]["volumes"] = json::array();
  same["metadata"]["creationTimestamp"] = nullptr;
  CHECK(deploy::ComputeHash(same, std::nullopt) == h);
  CHECK(deploy::ComputeHash(Template("web", "nginx:2"), std::nullopt) != h);
  CHECK(deploy::ComputeHash(t, 1) != h);
  CHECK(deploy::ComputeHash(t, 1) != deploy::ComputeHash(t, 2));
  CHECK(h.find_first_not_of("bcdfghjklmnpqrstvwxz2456789") == std::string::npos);
  CHECK(!h.empty());
  CHECK(h.size() <= 10);

  json labeled = t;
  labeled["metadata"]["labels"]["pod-template-hash"] = h;
  CHECK(deploy::EqualIgnoreHash(labeled, t));
  CHECK_FALSE(deploy::EqualIgnoreHash(labeled, Template("web", "nginx:2")));
}

TEST_CASE("maxSurge rounds up, maxUnavailable rounds down, never both zero") {
  auto f = deploy::ResolveFenceposts("25%", "25%", 10);
  REQUIRE(f.ok());
  CHECK(f->first == 3);   // 2.5 up
  CHECK(f->second == 2);  // 2.5 down
  f = deploy::ResolveFenceposts(2, 0, 10);
  REQUIRE(f.ok());
  CHECK(*f == std::make_pair(int64_t{2}, int64_t{0}));
  f = deploy::ResolveFenceposts("0%", "10%", 5);  // 0.5 rounds down to 0: unavailable becomes 1
  REQUIRE(f.ok());
  CHECK(*f == std::make_pair(int64_t{0}, int64_t{1}));
  CHECK_FALSE(deploy::ResolveFenceposts("abc", 1, 5).ok());
  CHECK_FALSE(deploy::ResolveFenceposts("5", 1, 5).ok());

  json d = Deployment("web", 3, "x", 0, 5);
  CHECK(deploy::MaxUnavailable(d) == 3);  // never more than the replicas
  CHECK(deploy::MaxSurge(d) == 0);
  d["spec"]["strategy"] = {{"type", "Recreate"}};
  CHECK(deploy::MaxUnavailable(d) == 0);
  CHECK(deploy::MaxSurge(d) == 0);
}

TEST_CASE("the new ReplicaSet grows as far as maxSurge allows") {
  json d = Deployment("web", 10, "x", 3, 2);
  CHECK(*deploy::NewRSNewReplicas(d, {Rs(10), Rs(0)}, *Rs(0)) == 3);
  CHECK(*deploy::NewRSNewReplicas(d, {Rs(8), Rs(5)}, *Rs(5)) == 5);   // at the limit
  CHECK(*deploy::NewRSNewReplicas(d, {Rs(2), Rs(8)}, *Rs(8)) == 10);  // capped at replicas
  d["spec"]["strategy"] = {{"type", "Recreate"}};
  CHECK(*deploy::NewRSNewReplicas(d, {Rs(10), Rs(0)}, *Rs(0)) == 10);
}

TEST_CASE("a resize mid-rollout is shared in proportion to the ReplicaSets' sizes") {
  json d = Deployment("web", 20, "x", 3, 0);  // was 10 (+3 surge = 13), now 20 (+3 = 23)
  json annotated = {
      {"metadata", {{"annotations", {{"deployment.kubernetes.io/max-replicas", "13"}}}}}};
  ObjectPtr old_rs = Rs(10, annotated), new_rs = Rs(3, annotated);
  int64_t to_add = 10;
  int64_t a = deploy::GetProportion(*old_rs, d, to_add, 0);
  int64_t b = deploy::GetProportion(*new_rs, d, to_add, a);
  CHECK(a == 8);  // round(10 * 23 / 13) - 10
  CHECK(b == 2);  // round(3 * 23 / 13) - 3
  d["spec"]["replicas"] = 0;
  CHECK(deploy::GetProportion(*old_rs, d, -13, 0) == -10);
}

TEST_CASE("revision annotations of the new ReplicaSet") {
  json d = Deployment("web", 3, "x", 1, 1);
  d["metadata"]["annotations"] = {{"kubernetes.io/change-cause", "v2"},
                                  {"kubectl.kubernetes.io/last-applied-configuration", "{}"},
                                  {"deployment.kubernetes.io/revision", "7"}};
  json rs = {{"metadata", json::object()}, {"spec", {{"replicas", 0}}}};
  CHECK(deploy::SetNewReplicaSetAnnotations(d, rs, "4", false));
  const json& a = rs["metadata"]["annotations"];
  CHECK(a == json{{"kubernetes.io/change-cause", "v2"},
                  {"deployment.kubernetes.io/revision", "4"},
                  {"deployment.kubernetes.io/desired-replicas", "3"},
                  {"deployment.kubernetes.io/max-replicas", "4"}});
  CHECK_FALSE(deploy::SetNewReplicaSetAnnotations(d, rs, "4", true));
  // Brought back by an undo: a new revision, the old one remembered.
  CHECK(deploy::SetNewReplicaSetAnnotations(d, rs, "6", true));
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "6");
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "4");
  CHECK(deploy::SetNewReplicaSetAnnotations(d, rs, "9", true));
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "4,6");
  CHECK(deploy::Revision(rs) == 9);
}

TEST_CASE("conditions keep their transition time while the status holds") {
  auto t0 = *orch::ParseTime("2024-01-01T00:00:00Z");
  auto t1 = t0 + std::chrono::minutes(1);
  json status = json::object();
  deploy::SetCondition(status, deploy::NewCondition("Progressing", "True", "A", "a", t0));
  deploy::SetCondition(status, deploy::NewCondition("Progressing", "True", "A", "again", t1));
  CHECK(status["conditions"][0]["message"] == "a");  // same status and reason: unchanged
  deploy::SetCondition(status, deploy::NewCondition("Progressing", "True", "B", "b", t1));
  CHECK(status["conditions"][0]["reason"] == "B");
  CHECK(status["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z");
  CHECK(status["conditions"][0]["lastUpdateTime"] == "2024-01-01T00:01:00Z");
  deploy::SetCondition(status, deploy::NewCondition("Progressing", "False", "C", "c", t1));
  CHECK(status["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:01:00Z");
  deploy::SetCondition(status, deploy::NewCondition("Available", "True", "D", "d", t1));
  CHECK(status["conditions"].size() == 2);
  deploy::RemoveCondition(status, "Progressing");
  CHECK(status["conditions"].size() == 1);
}

TEST_CASE("status, completeness, progress and timeout") {
  auto now = *orch::ParseTime("2024-01-01T00:10:00Z");
  json d = Deployment("web", 3, "x", 1, 1);
  d["metadata"]["generation"] = 2;
  ObjectPtr old_rs =
      Rs(1, {{"metadata", {{"uid", "old"}}},
             {"status", {{"replicas", 1}, {"readyReplicas", 1}, {"availableReplicas", 1}}}});
  ObjectPtr new_rs =
      Rs(3, {{"metadata", {{"uid", "new"}}},
             {"status", {{"replicas", 3}, {"readyReplicas", 2}, {"availableReplicas", 1}}}});
  json s = deploy::CalculateStatus({old_rs, new_rs}, new_rs, d, now);
  CHECK(s["observedGeneration"] == 2);
  CHECK(s["replicas"] == 4);
  CHECK(s["updatedReplicas"] == 3);
  CHECK(s["readyReplicas"] == 3);
  CHECK(s["availableReplicas"] == 2);
  CHECK(s["unavailableReplicas"] == 2);
  const json* available = ctrl::FindCondition(s, "Available");
  REQUIRE(available != nullptr);
  CHECK((*available)["status"] == "True");  // 2 >= 3 - maxUnavailable(1)
  CHECK((*available)["reason"] == "MinimumReplicasAvailable");
  CHECK_FALSE(deploy::DeploymentComplete(d, s));
  CHECK(deploy::DeploymentProgressing(d, s));  // from an empty status everything is progress

  json done = {
      {"observedGeneration", 2}, {"replicas", 3}, {"updatedReplicas", 3}, {"availableReplicas", 3}};
  CHECK(deploy::DeploymentComplete(d, done));

  json stuck = {
      {"conditions", json::array({deploy::NewCondition("Progressing", "True", "ReplicaSetUpdated",
                                                       "m", now - std::chrono::seconds(601))})}};
  CHECK(deploy::DeploymentTimedOut(d, stuck, now));
  CHECK_FALSE(deploy::DeploymentTimedOut(d, stuck, now - std::chrono::seconds(2)));
  stuck["conditions"][0]["reason"] = "NewReplicaSetAvailable";
  CHECK_FALSE(deploy::DeploymentTimedOut(d, stuck, now));
}

// ---------------------------------------------------------------------------------------------
// The controller (with the ReplicaSet controller) against the fake API.

namespace {

struct DeployFixture : ControllerFixture {
  explicit DeployFixture(std::chrono::milliseconds resync = std::chrono::hours(1)) {
    AddReplicaSetController(resync);
    orch::DeploymentControllerOptions options;
    options.now = clock.Func();
    options.resync_period = resync;
    Add(orch::NewDeploymentController(context, options));
  }

  json D(const std::string& name = "web") { return Get(resources::kDeployments, name); }
  std::vector<json> ReplicaSets(const std::string& app = "web") {
    return List(resources::kReplicaSets, "default", "app=" + app);
  }
  // The ReplicaSet whose template runs `image`, or null.
  json RsWithImage(const std::string& image, const std::string& app = "web") {
    for (const json& rs : ReplicaSets(app)) {
      if (rs["spec"]["template"]["spec"]["containers"][0]["image"] == image) return rs;
    }
    return nullptr;
  }
  int64_t SpecOf(const std::string& image) {
    json rs = RsWithImage(image);
    return rs.is_null() ? -1 : deploy::Replicas(rs);
  }
  void SetImage(const std::string& image, const std::string& name = "web") {
    Patch(resources::kDeployments, name,
          {{"spec",
            {{"template",
              {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}}}}}});
  }
  // Marks pods ready until the rollout of `name` is done (as kubectl rollout status sees it).
  bool RollOut(const std::string& name = "web") {
    bool done = WaitUntil([&] {
      MakePodsReady("app=" + name, clock.Now());
      return RolloutStatus(D(name)) == "done";
    });
    if (!done) {
      // What the controllers left behind, to tell why.
      std::cerr << "deployment: " << D(name).dump() << "\n";
      for (const json& rs : ReplicaSets(name)) std::cerr << "replicaset: " << rs.dump() << "\n";
      for (const json& pod : Pods("app=" + name)) std::cerr << "pod: " << pod.dump() << "\n";
    }
    return done;
  }
};

}  // namespace

TEST_CASE("a Deployment creates a hashed ReplicaSet and rolls it out") {
  DeployFixture f;
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 3, "v1")).ok());
  REQUIRE(WaitUntil([&] { return f.ActivePods("app=web") == 3; }));
  auto rss = f.ReplicaSets();
  REQUIRE(rss.size() == 1);
  const json& rs = rss[0];
  const std::string hash = deploy::ComputeHash(Template("web", "v1"), std::nullopt);
  CHECK(ctrl::NameOf(rs) == "web-" + hash);
  CHECK(rs["metadata"]["labels"]["pod-template-hash"] == hash);
  CHECK(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == hash);
  CHECK(rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash);
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1");
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3");
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4");
  CHECK((*ctrl::GetControllerOf(rs))["kind"] == "Deployment");
  for (const json& pod : f.Pods("app=web")) {
    CHECK(pod["metadata"]["labels"]["pod-template-hash"] == hash);
  }
  CHECK(RolloutStatus(f.D()) != "done");

  REQUIRE(f.RollOut());
  json d = f.D();
  CHECK(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1");
  CHECK(d["status"]["replicas"] == 3);
  CHECK(d["status"]["updatedReplicas"] == 3);
  CHECK(d["status"]["readyReplicas"] == 3);
  CHECK(d["status"]["availableReplicas"] == 3);
  CHECK(d["status"]["unavailableReplicas"] == 0);
  const json* available = ctrl::FindCondition(d["status"], "Available");
  REQUIRE(available != nullptr);
  CHECK((*available)["status"] == "True");
  CHECK((*available)["message"] == "Deployment has minimum availability.");
  const json* progressing = ctrl::FindCondition(d["status"], "Progressing");
  REQUIRE(progressing != nullptr);
  CHECK((*progressing)["reason"] == "NewReplicaSetAvailable");
  CHECK((*progressing)["message"] ==
        "ReplicaSet \"web-" + hash + "\" has successfully progressed.");
  auto scaling = f.events.WithReason("ScalingReplicaSet");
  REQUIRE(!scaling.empty());
  CHECK(scaling[0].object == "Deployment/web");
  CHECK(scaling[0].message == "Scaled up replica set web-" + hash + " from 0 to 3");
}

TEST_CASE("RollingUpdate moves replicas within maxSurge and maxUnavailable") {
  DeployFixture f;
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 4, "v1", 1, 1)).ok());
  REQUIRE(f.RollOut());
  f.SetImage("v2");
  // replicas 4, maxSurge 1, maxUnavailable 1: at most 5 pods, at least 3 available. One old pod
  // goes (4 -> 3), which makes room for two new ones (0 -> 2); then nothing moves until new
  // pods are ready.
  auto hold = [&](int64_t new_size, int64_t old_size) {
    REQUIRE(WaitUntil([&] { return f.SpecOf("v2") == new_size && f.SpecOf("v1") == old_size; }));
    REQUIRE(f.api.WaitForDelivery());
    std::this_thread::sleep_for(100ms);
    CHECK(f.SpecOf("v2") == new_size);
    CHECK(f.SpecOf("v1") == old_size);
  };
  hold(2, 3);
  CHECK(f.D()["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2");
  CHECK(RolloutStatus(f.D()) == "updating");
  // Two new pods ready: 5 available, so two old ones go, and two more new ones come.
  CHECK(f.MakePodsReady("app=web", f.clock.Now()) == 2);
  hold(4, 1);
  REQUIRE(f.RollOut());
  CHECK(f.ActivePods("app=web") == 4);
  json old_rs = f.RsWithImage("v1");
  CHECK(old_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1");
  CHECK(f.RsWithImage("v2")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2");
  bool saw_down = false;
  for (const auto& e : f.events.WithReason("ScalingReplicaSet")) {
    if (e.message == "Scaled down replica set " + ctrl::NameOf(old_rs) + " from 4 to 3") {
      saw_down = true;
    }
  }
  CHECK(saw_down);
}

TEST_CASE("Recreate removes every old pod before the new ReplicaSet grows") {
  DeployFixture f;
  json d = Deployment("web", 2, "v1");
  d["spec"]["strategy"] = {{"type", "Recreate"}};
  REQUIRE(f.api.Create(resources::kDeployments, "default", d).ok());
  REQUIRE(f.RollOut());
  const std::string old_name = ctrl::NameOf(f.RsWithImage("v1"));
  f.SetImage("v2");
  REQUIRE(f.RollOut());
  CHECK(f.SpecOf("v1") == 0);
  CHECK(f.SpecOf("v2") == 2);
  const std::string new_name = ctrl::NameOf(f.RsWithImage("v2"));
  auto scaling = f.events.WithReason("ScalingReplicaSet");
  auto index_of = [&](const std::string& message) {
    for (size_t i = 0; i < scaling.size(); ++i) {
      if (scaling[i].message == message) return static_cast<int>(i);
    }
    return -1;
  };
  int down = index_of("Scaled down replica set " + old_name + " from 2 to 0");
  int up = index_of("Scaled up replica set " + new_name + " from 0 to 2");
  REQUIRE(down >= 0);
  REQUIRE(up >= 0);
  CHECK(down < up);
}

TEST_CASE("undo by restoring an old template reuses its ReplicaSet with a new revision") {
  DeployFixture f;
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 2, "v1")).ok());
  REQUIRE(f.RollOut());
  f.SetImage("v2");
  REQUIRE(f.RollOut());
  // What `kubectl rollout undo` does: the Deployment gets revision 1's template back.
  f.SetImage("v1");
  REQUIRE(f.RollOut());
  CHECK(f.ReplicaSets().size() == 2);
  json back = f.RsWithImage("v1");
  CHECK(back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3");
  CHECK(back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1");
  CHECK(deploy::Replicas(back) == 2);
  CHECK(f.SpecOf("v2") == 0);
  CHECK(f.D()["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3");
}

TEST_CASE("a paused Deployment scales but does not roll out until resumed") {
  DeployFixture f;
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 2, "v1")).ok());
  REQUIRE(f.RollOut());
  f.Patch(resources::kDeployments, "web", {{"spec", {{"paused", true}}}});
  REQUIRE(WaitUntil([&] {
    json d = f.D();
    const json* c = ctrl::FindCondition(d["status"], "Progressing");
    return c != nullptr && (*c)["reason"] == "DeploymentPaused" && (*c)["status"] == "Unknown";
  }));
  f.SetImage("v2");
  f.Patch(resources::kDeployments, "web", {{"spec", {{"replicas", 3}}}});
  REQUIRE(WaitUntil([&] { return f.SpecOf("v1") == 3; }));
  REQUIRE(WaitUntil([&] {
    json d = f.D();
    return ctrl::IntField(d, {"status", "observedGeneration"}) ==
           ctrl::IntField(d, {"metadata", "generation"});
  }));
  CHECK(f.ReplicaSets().size() == 1);  // no rollout while paused
  CHECK(f.RsWithImage("v2").is_null());

  f.Patch(resources::kDeployments, "web", {{"spec", {{"paused", false}}}});
  REQUIRE(WaitUntil([&] { return f.SpecOf("v2") > 0; }));
  REQUIRE(f.RollOut());
  CHECK(f.SpecOf("v2") == 3);
  CHECK(f.SpecOf("v1") == 0);
}

TEST_CASE("a resize mid-rollout scales old and new ReplicaSets in proportion") {
  DeployFixture f;
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 10, "v1", 3, 0)).ok());
  REQUIRE(f.RollOut());
  f.SetImage("v2");
  // maxUnavailable 0: three surge pods, and no old pod goes until they are ready.
  REQUIRE(WaitUntil([&] { return f.SpecOf("v2") == 3 && f.SpecOf("v1") == 10; }));
  f.Patch(resources::kDeployments, "web", {{"spec", {{"replicas", 20}}}});
  bool shared = WaitUntil([&] { return f.SpecOf("v1") == 18 && f.SpecOf("v2") == 5; });
  if (!shared) {
    for (const json& rs : f.ReplicaSets()) std::cerr << "replicaset: " << rs.dump() << "\n";
    for (const auto& e : f.events.Events())
      std::cerr << "event: " << e.reason << " " << e.message << "\n";
  }
  REQUIRE(shared);
  json rs = f.RsWithImage("v1");
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20");
  CHECK(rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "23");
  REQUIRE(f.RollOut());
  CHECK(f.SpecOf("v2") == 20);
  CHECK(f.SpecOf("v1") == 0);
}

TEST_CASE("revisionHistoryLimit deletes the oldest unused ReplicaSets") {
  DeployFixture f;
  json d = Deployment("web", 1, "v1");
  d["spec"]["revisionHistoryLimit"] = 1;
  REQUIRE(f.api.Create(resources::kDeployments, "default", d).ok());
  REQUIRE(f.RollOut());
  f.SetImage("v2");
  REQUIRE(f.RollOut());
  f.SetImage("v3");
  REQUIRE(f.RollOut());
  REQUIRE(WaitUntil([&] { return f.ReplicaSets().size() == 2; }));
  CHECK(f.RsWithImage("v1").is_null());
  CHECK(!f.RsWithImage("v2").is_null());
  CHECK(!f.RsWithImage("v3").is_null());
}

TEST_CASE("a name taken by another ReplicaSet bumps collisionCount") {
  DeployFixture f;
  const std::string hash = deploy::ComputeHash(Template("web", "v1"), std::nullopt);
  // Same name, another template, labels the Deployment does not select: not adoptable.
  json squatter = {
      {"apiVersion", "apps/v1"},
      {"kind", "ReplicaSet"},
      {"metadata",
       {{"name", "web-" + hash}, {"namespace", "default"}, {"labels", {{"app", "other"}}}}},
      {"spec",
       {{"replicas", 0},
        {"selector", {{"matchLabels", {{"app", "other"}}}}},
        {"template", Template("other", "x")}}}};
  REQUIRE(f.api.Create(resources::kReplicaSets, "default", squatter).ok());
  REQUIRE(f.api.Create(resources::kDeployments, "default", Deployment("web", 1, "v1")).ok());
  REQUIRE(f.RollOut());
  CHECK(f.D()["status"]["collisionCount"] == 1);
  json rs = f.RsWithImage("v1");
  CHECK(ctrl::NameOf(rs) == "web-" + deploy::ComputeHash(Template("web", "v1"), 1));
}

TEST_CASE("a rollout without progress exceeds its deadline") {
  DeployFixture f(std::chrono::milliseconds(50));  // resyncs notice the fake clock moving
  json d = Deployment("web", 2, "v1");
  d["spec"]["progressDeadlineSeconds"] = 10;
  REQUIRE(f.api.Create(resources::kDeployments, "default", d).ok());
  REQUIRE(f.RollOut());
  f.SetImage("v2");
  REQUIRE(WaitUntil([&] { return f.SpecOf("v2") > 0; }));
  REQUIRE(WaitUntil([&] {
    json d = f.D();
    const json* c = ctrl::FindCondition(d["status"], "Progressing");
    return c != nullptr && (*c)["reason"] == "ReplicaSetUpdated";
  }));
  CHECK(RolloutStatus(f.D()) != "exceeded its progress deadline");
  f.clock.Advance(std::chrono::seconds(11));
  REQUIRE(WaitUntil([&] { return RolloutStatus(f.D()) == "exceeded its progress deadline"; }));
  json now = f.D();
  const json* c = ctrl::FindCondition(now["status"], "Progressing");
  REQUIRE(c != nullptr);
  CHECK((*c)["status"] == "False");
  CHECK((*c)["message"] ==
        "ReplicaSet \"" + ctrl::NameOf(f.RsWithImage("v2")) + "\" has timed out progressing.");
}
