// The DaemonSet controller: node eligibility, daemon pods, the manage and rolling-update plans and
// the status (pure), then the controller against the fake API: a pod per node, node changes,
// rolling updates, OnDelete, failed pods and history.
#include "daemonset_controller.h"

#include <catch2/catch.hpp>

#include "controller_history.h"
#include "controller_test_util.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using orch::ObjectPtr;
using orch::testing::ControllerFixture;
using orch::testing::Ptr;
using orch::testing::WaitUntil;
namespace ctrl = orch::ctrl;
namespace daemon = orch::ctrl::daemon;
namespace history = orch::ctrl::history;
namespace resources = orch::resources;

json Node(const std::string& name, json labels = json::object(), json taints = json::array()) {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", name}, {"labels", std::move(labels)}}},
               {"spec", json::object()}};
  if (!taints.empty()) node["spec"]["taints"] = std::move(taints);
  return node;
}

json DaemonSet(const std::string& name, const std::string& image,
               json strategy = {{"type", "RollingUpdate"},
                                {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 0}}}}) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"generation", 1}, {"uid", "u"}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", name}}}}},
            {"template", orch::testing::PodTemplate({{"app", name}}, image)},
            {"updateStrategy", std::move(strategy)}}}};
}

// A daemon pod of `ds` on `node` with the revision hash `hash`, ready or not.
json DaemonPod(const std::string& name, const std::string& node, const std::string& hash,
               bool ready, int created_second = 0, const std::string& phase = "Running") {
  char created[32];
  std::snprintf(created, sizeof(created), "2026-01-01T00:00:%02dZ", created_second);
  json pod = {{"metadata",
               {{"name", name},
                {"namespace", "default"},
                {"creationTimestamp", created},
                {"labels", {{"app", "web"}, {"controller-revision-hash", hash}}}}},
              {"spec", {{"nodeName", node}}},
              {"status", {{"phase", phase}}}};
  if (ready) {
    pod["status"]["conditions"] = json::array(
        {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2026-01-01T00:00:00Z"}}});
  }
  return pod;
}

std::vector<std::string> Names(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> out;
  for (const ObjectPtr& o : objects) out.push_back(ctrl::NameOf(*o));
  std::sort(out.begin(), out.end());
  return out;
}

const auto kNow = std::chrono::system_clock::now();
const auto kNoBackoff = [](const std::string&) { return false; };

TEST_CASE("tolerations and node selector terms") {
  json taint = {{"key", "k"}, {"value", "v"}, {"effect", "NoSchedule"}};
  CHECK(orch::ctrl::Tolerates({{"key", "k"}, {"operator", "Equal"}, {"value", "v"}}, taint));
  CHECK(orch::ctrl::Tolerates({{"key", "k"}, {"value", "v"}}, taint));  // Equal by default
  CHECK_FALSE(orch::ctrl::Tolerates({{"key", "k"}, {"value", "w"}}, taint));
  CHECK(orch::ctrl::Tolerates({{"key", "k"}, {"operator", "Exists"}}, taint));
  CHECK(orch::ctrl::Tolerates({{"operator", "Exists"}}, taint));
  CHECK_FALSE(orch::ctrl::Tolerates({{"operator", "Exists"}, {"effect", "NoExecute"}}, taint));

  json node = Node("n1", {{"zone", "a"}, {"cpus", "8"}});
  auto terms = [](json term) { return json{{"nodeSelectorTerms", json::array({term})}}; };
  auto expr = [](const std::string& key, const std::string& op, json values = json::array()) {
    return json{
        {"matchExpressions", json::array({{{"key", key}, {"operator", op}, {"values", values}}})}};
  };
  CHECK(daemon::MatchesNodeSelectorTerms(terms(expr("zone", "In", {"a", "b"})), node));
  CHECK_FALSE(daemon::MatchesNodeSelectorTerms(terms(expr("zone", "NotIn", {"a"})), node));
  CHECK(daemon::MatchesNodeSelectorTerms(terms(expr("gpu", "DoesNotExist")), node));
  CHECK_FALSE(daemon::MatchesNodeSelectorTerms(terms(expr("gpu", "Exists")), node));
  CHECK(daemon::MatchesNodeSelectorTerms(terms(expr("cpus", "Gt", {"4"})), node));
  CHECK_FALSE(daemon::MatchesNodeSelectorTerms(terms(expr("cpus", "Lt", {"4"})), node));
  json by_name = {
      {"matchFields",
       json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n1"}}}})}};
  CHECK(daemon::MatchesNodeSelectorTerms(terms(by_name), node));
  CHECK_FALSE(daemon::MatchesNodeSelectorTerms(terms(by_name), Node("n2")));
  CHECK_FALSE(daemon::MatchesNodeSelectorTerms(terms(json::object()), node));  // empty term
  // One of several terms suffices.
  json two = {
      {"nodeSelectorTerms", json::array({expr("zone", "In", {"b"}), expr("zone", "In", {"a"})})}};
  CHECK(daemon::MatchesNodeSelectorTerms(two, node));
}

TEST_CASE("daemon pods get upstream's tolerations, node affinity and labels") {
  json spec = {{"tolerations", json::array({{{"key", "node.kubernetes.io/not-ready"},
                                             {"operator", "Exists"},
                                             {"effect", "NoExecute"}}})}};
  daemon::AddDaemonTolerations(spec);
  CHECK(spec["tolerations"].size() == 6);  // not-ready kept once
  spec["hostNetwork"] = true;
  daemon::AddDaemonTolerations(spec);
  CHECK(spec["tolerations"].size() == 7);
  CHECK(spec["tolerations"][6]["key"] == "node.kubernetes.io/network-unavailable");
  for (const json& t : spec["tolerations"]) CHECK_FALSE(t.contains("tolerationSeconds"));

  json ds = DaemonSet("web", "nginx:1");
  ds["spec"]["template"]["spec"]["affinity"] = {
      {"nodeAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{"nodeSelectorTerms",
           json::array({{{"matchExpressions",
                          json::array({{{"key", "zone"}, {"operator", "Exists"}}})}}})}}}}}};
  json ref = ctrl::NewControllerRef(ds, "apps/v1", "DaemonSet");
  json pod = daemon::NewDaemonPod(ds, ref, "n1", "h1");
  CHECK(pod["metadata"]["generateName"] == "web-");
  CHECK(pod["metadata"]["labels"] ==
        json{{"app", "web"}, {"controller-revision-hash", "h1"}, {"pod-template-generation", "1"}});
  CHECK(pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet");
  const json& term = pod["spec"]["affinity"]["nodeAffinity"]
                        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
  CHECK(term["matchExpressions"][0]["key"] == "zone");  // kept
  CHECK(term["matchFields"] ==
        json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n1"}}}}));
  CHECK(pod["spec"]["tolerations"].size() == 6);
  CHECK(daemon::TargetNodeName(pod) == "n1");
  pod["spec"]["nodeName"] = "n2";
  CHECK(daemon::TargetNodeName(pod) == "n2");
  CHECK(daemon::TargetNodeName(json::object()).empty());

  json no_affinity = json::object();
  daemon::SetNodeNameAffinity(no_affinity, "n3");
  CHECK(daemon::TargetNodeName({{"spec", no_affinity}}) == "n3");

  CHECK(daemon::IsPodUpdated(DaemonPod("p", "n1", "h1", true), "h1", 5));
  CHECK_FALSE(daemon::IsPodUpdated(DaemonPod("p", "n1", "h0", true), "h1", 5));
  json by_generation = DaemonPod("p", "n1", "h0", true);
  by_generation["metadata"]["labels"]["pod-template-generation"] = "5";
  CHECK(daemon::IsPodUpdated(by_generation, "h1", 5));
  ds["metadata"]["annotations"] = {{"deprecated.daemonset.template.generation", "7"}};
  CHECK(daemon::TemplateGeneration(ds) == 7);
}

TEST_CASE("which nodes should run a daemon pod") {
  json ds = DaemonSet("web", "nginx:1");
  CHECK(daemon::NodeShouldRunDaemonPod(Node("n1"), ds).should_run);

  // NoSchedule: no new pod, an existing one stays. NoExecute: neither.
  auto no_schedule = daemon::NodeShouldRunDaemonPod(
      Node("n1", {}, json::array({{{"key", "dedicated"}, {"effect", "NoSchedule"}}})), ds);
  CHECK_FALSE(no_schedule.should_run);
  CHECK(no_schedule.should_continue_running);
  auto no_execute = daemon::NodeShouldRunDaemonPod(
      Node("n1", {}, json::array({{{"key", "dedicated"}, {"effect", "NoExecute"}}})), ds);
  CHECK_FALSE(no_execute.should_run);
  CHECK_FALSE(no_execute.should_continue_running);
  // PreferNoSchedule does not keep daemons away; the default tolerations cover not-ready etc.
  CHECK(daemon::NodeShouldRunDaemonPod(
            Node("n1", {}, json::array({{{"key", "x"}, {"effect", "PreferNoSchedule"}}})), ds)
            .should_run);
  CHECK(daemon::NodeShouldRunDaemonPod(
            Node("n1", {},
                 json::array(
                     {{{"key", "node.kubernetes.io/unreachable"}, {"effect", "NoExecute"}},
                      {{"key", "node.kubernetes.io/unschedulable"}, {"effect", "NoSchedule"}}})),
            ds)
            .should_run);
  // A tolerated taint.
  json tolerant = ds;
  tolerant["spec"]["template"]["spec"]["tolerations"] =
      json::array({{{"key", "dedicated"}, {"operator", "Exists"}}});
  CHECK(
      daemon::NodeShouldRunDaemonPod(
          Node("n1", {}, json::array({{{"key", "dedicated"}, {"effect", "NoSchedule"}}})), tolerant)
          .should_run);

  // nodeSelector and required affinity.
  json selective = ds;
  selective["spec"]["template"]["spec"]["nodeSelector"] = {{"role", "edge"}};
  CHECK_FALSE(daemon::NodeShouldRunDaemonPod(Node("n1"), selective).should_continue_running);
  CHECK(daemon::NodeShouldRunDaemonPod(Node("n1", {{"role", "edge"}}), selective).should_run);
  json affine = ds;
  affine["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"] = {
            {"nodeSelectorTerms",
             json::array(
                 {{{"matchExpressions",
                    json::array({{{"key", "zone"}, {"operator", "In"}, {"values", {"a"}}}})}}})}};
  CHECK(daemon::NodeShouldRunDaemonPod(Node("n1", {{"zone", "a"}}), affine).should_run);
  CHECK_FALSE(daemon::NodeShouldRunDaemonPod(Node("n1", {{"zone", "b"}}), affine).should_run);
  // A template naming a node runs there only.
  json pinned = ds;
  pinned["spec"]["template"]["spec"]["nodeName"] = "n2";
  CHECK_FALSE(daemon::NodeShouldRunDaemonPod(Node("n1"), pinned).should_run);
  CHECK(daemon::NodeShouldRunDaemonPod(Node("n2"), pinned).should_run);
}

TEST_CASE("the manage plan creates, keeps and deletes daemon pods") {
  json ds = DaemonSet("web", "nginx:1");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"role", "edge"}};
  std::vector<ObjectPtr> nodes = {
      Ptr(Node("empty", {{"role", "edge"}})),  Ptr(Node("one", {{"role", "edge"}})),
      Ptr(Node("two", {{"role", "edge"}})),    Ptr(Node("unlabelled")),
      Ptr(Node("failed", {{"role", "edge"}})), Ptr(Node("done", {{"role", "edge"}}))};
  std::vector<ObjectPtr> pods = {
      Ptr(DaemonPod("p-one", "one", "h1", true)),
      Ptr(DaemonPod("p-two-old", "two", "h1", true, 1)),
      Ptr(DaemonPod("p-two-new", "two", "h1", true, 2)),
      Ptr(DaemonPod("p-unlabelled", "unlabelled", "h1", true)),
      Ptr(DaemonPod("p-gone", "gone", "h1", true)),
      Ptr(DaemonPod("p-failed", "failed", "h1", false, 0, "Failed")),
      Ptr(DaemonPod("p-done", "done", "h1", false, 0, "Succeeded")),
  };
  json terminating = DaemonPod("p-terminating", "empty", "h1", true);
  terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  pods.push_back(Ptr(terminating));

  auto plan = daemon::PlanNodes(ds, nodes, daemon::GroupByNode(pods), "h1", kNow, kNoBackoff);
  // "empty" has a pod still terminating: no second one yet.
  CHECK(plan.nodes_needing_pods.empty());
  CHECK(Names(plan.pods_to_delete) ==
        std::vector<std::string>{"p-done", "p-failed", "p-gone", "p-two-new", "p-unlabelled"});
  REQUIRE(plan.failed_pods.size() == 1);
  CHECK(plan.failed_pods[0].second == "failed");

  // Once it is gone, the node gets a pod; a failed pod in back-off waits.
  pods.pop_back();
  auto later = daemon::PlanNodes(ds, nodes, daemon::GroupByNode(pods), "h1", kNow,
                                 [](const std::string& node) { return node == "failed"; });
  CHECK(later.nodes_needing_pods == std::vector<std::string>{"empty"});
  CHECK(later.failed_pods.empty());
  CHECK(later.nodes_in_backoff == std::vector<std::string>{"failed"});
}

TEST_CASE("with maxSurge an old and a new pod share a node until the new one is available") {
  json ds = DaemonSet(
      "web", "nginx:2",
      {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", 1}}}});
  std::vector<ObjectPtr> nodes = {Ptr(Node("a")), Ptr(Node("b"))};
  std::vector<ObjectPtr> pods = {
      Ptr(DaemonPod("a-old", "a", "h1", true, 1)), Ptr(DaemonPod("a-new", "a", "h2", false, 2)),
      Ptr(DaemonPod("b-old", "b", "h1", true, 1)), Ptr(DaemonPod("b-new", "b", "h2", true, 2))};
  auto plan = daemon::PlanNodes(ds, nodes, daemon::GroupByNode(pods), "h2", kNow, kNoBackoff);
  CHECK(Names(plan.pods_to_delete) == std::vector<std::string>{"b-old"});
}

TEST_CASE("rolling update steps") {
  std::vector<ObjectPtr> nodes = {Ptr(Node("a")), Ptr(Node("b")), Ptr(Node("c")), Ptr(Node("d"))};
  SECTION("maxUnavailable bounds the old pods deleted at once") {
    json ds = DaemonSet("web", "nginx:2");
    ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = 2;
    std::vector<ObjectPtr> pods = {
        Ptr(DaemonPod("a", "a", "h1", true)), Ptr(DaemonPod("b", "b", "h1", true)),
        Ptr(DaemonPod("c", "c", "h1", true)), Ptr(DaemonPod("d", "d", "h2", false))};
    auto plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(plan.nodes_needing_pods.empty());
    CHECK(plan.pods_to_delete.size() == 1);  // d's new pod is not ready: one more may go

    // Old pods that are unavailable anyway go regardless.
    pods[2] = Ptr(DaemonPod("c", "c", "h1", false));
    plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(Names(plan.pods_to_delete) == std::vector<std::string>{"a", "c"});
  }
  SECTION("percentages round up; a node without a pod counts as unavailable") {
    json ds = DaemonSet("web", "nginx:2");
    ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "30%";  // of 4: 2
    CHECK(daemon::SurgeAndUnavailable(ds, 4) == std::make_pair(int64_t{0}, int64_t{2}));
    std::vector<ObjectPtr> pods = {Ptr(DaemonPod("a", "a", "h1", true)),
                                   Ptr(DaemonPod("b", "b", "h1", true)),
                                   Ptr(DaemonPod("c", "c", "h1", true))};
    auto plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(plan.pods_to_delete.size() == 1);
  }
  SECTION("surge creates new pods beside old ones, then deletes the old") {
    json ds = DaemonSet("web", "nginx:2",
                        {{"type", "RollingUpdate"},
                         {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", "50%"}}}});
    std::vector<ObjectPtr> pods = {
        Ptr(DaemonPod("a", "a", "h1", true)), Ptr(DaemonPod("b", "b", "h1", true)),
        Ptr(DaemonPod("c", "c", "h1", true)), Ptr(DaemonPod("d", "d", "h1", true))};
    auto plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(plan.nodes_needing_pods.size() == 2);
    CHECK(plan.pods_to_delete.empty());
    pods.push_back(Ptr(DaemonPod("a2", "a", "h2", true)));
    pods.push_back(Ptr(DaemonPod("b2", "b", "h2", false)));
    plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(Names(plan.pods_to_delete) == std::vector<std::string>{"a"});
    CHECK(plan.nodes_needing_pods.size() == 1);  // b still surging: one more node may
  }
  SECTION("OnDelete never replaces") {
    json ds = DaemonSet("web", "nginx:2", {{"type", "OnDelete"}});
    std::vector<ObjectPtr> pods = {Ptr(DaemonPod("a", "a", "h1", true))};
    auto plan = daemon::PlanRollingUpdate(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
    CHECK(plan.pods_to_delete.empty());
    CHECK(plan.nodes_needing_pods.empty());
  }
}

TEST_CASE("daemon set status") {
  json ds = DaemonSet("web", "nginx:2");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"role", "edge"}};
  ds["status"] = {{"collisionCount", 2}};
  std::vector<ObjectPtr> nodes = {Ptr(Node("a", {{"role", "edge"}})),
                                  Ptr(Node("b", {{"role", "edge"}})),
                                  Ptr(Node("c", {{"role", "edge"}})), Ptr(Node("d"))};
  std::vector<ObjectPtr> pods = {Ptr(DaemonPod("a", "a", "h2", true)),
                                 Ptr(DaemonPod("b", "b", "h1", false)),
                                 Ptr(DaemonPod("d", "d", "h1", true))};
  json status = daemon::CalculateStatus(ds, nodes, daemon::GroupByNode(pods), "h2", kNow);
  CHECK(status == json{{"desiredNumberScheduled", 3},
                       {"currentNumberScheduled", 2},
                       {"numberMisscheduled", 1},
                       {"numberReady", 1},
                       {"numberAvailable", 1},
                       {"numberUnavailable", 2},
                       {"updatedNumberScheduled", 1},
                       {"observedGeneration", 1},
                       {"collisionCount", 2}});
}

// ---------------------------------------------------------------------------------------------
// The controller against the fake API.

struct DaemonFixture {
  DaemonFixture() {
    orch::DaemonSetControllerOptions options;
    options.now = fixture.clock.Func();
    options.failed_pod_backoff_initial = 50ms;
    options.failed_pod_backoff_max = 200ms;
    fixture.Add(orch::NewDaemonSetController(fixture.context, options));
  }
  void AddNode(const json& node) { REQUIRE(fixture.api.Create(resources::kNodes, "", node).ok()); }
  void CreateDaemonSet(json ds) {
    ds["metadata"].erase("uid");
    ds["metadata"].erase("generation");
    REQUIRE(fixture.api.Create(resources::kDaemonSets, "default", ds).ok());
  }
  // Active pods by target node.
  std::map<std::string, std::vector<json>> PodsByNode() {
    std::map<std::string, std::vector<json>> out;
    for (const json& p : fixture.Pods()) {
      if (ctrl::IsPodActive(p)) out[daemon::TargetNodeName(p)].push_back(p);
    }
    return out;
  }
  bool OnePodOn(const std::vector<std::string>& nodes) {
    auto by_node = PodsByNode();
    if (by_node.size() != nodes.size()) return false;
    for (const std::string& n : nodes) {
      if (by_node[n].size() != 1) return false;
    }
    return true;
  }
  // Plays the kubelet: every active pod not yet ready becomes Running and Ready.
  void MakeReady() { fixture.MakePodsReady("", fixture.clock.Now() - 1s); }
  // The status, {} until the controller first writes one.
  json Status() {
    json status = fixture.Get(resources::kDaemonSets, "web")["status"];
    return status.is_object() ? status : json::object();
  }

  ControllerFixture fixture;
};

TEST_CASE("the controller runs one pod per eligible node and follows node changes") {
  DaemonFixture d;
  d.AddNode(Node("a", {{"role", "edge"}}));
  d.AddNode(Node("b", {{"role", "edge"}}));
  d.AddNode(Node("c", {{"role", "edge"}}, json::array({{{"key", "x"}, {"effect", "NoSchedule"}}})));
  d.AddNode(Node("d"));
  json ds = DaemonSet("web", "nginx:1");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"role", "edge"}};
  d.CreateDaemonSet(ds);
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"a", "b"}); }));
  json pod = d.PodsByNode()["a"][0];
  json revision = d.fixture.List(resources::kControllerRevisions).at(0);
  CHECK(pod["metadata"]["labels"]["controller-revision-hash"] ==
        revision["metadata"]["labels"]["controller-revision-hash"]);
  CHECK(revision["revision"] == 1);
  CHECK(revision["data"]["spec"]["template"]["$patch"] == "replace");
  CHECK(d.fixture.events.WithReason("SuccessfulCreate").size() == 2);

  d.MakeReady();
  REQUIRE(WaitUntil([&] {
    json s = d.Status();
    return s.value("numberReady", 0) == 2 && s.value("numberAvailable", 0) == 2 &&
           s.value("desiredNumberScheduled", 0) == 2 && s.value("updatedNumberScheduled", 0) == 2;
  }));

  // A node gains the label: a pod; a node loses it: its pod goes.
  d.fixture.Patch(resources::kNodes, "d", {{"metadata", {{"labels", {{"role", "edge"}}}}}});
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"a", "b", "d"}); }));
  d.fixture.Patch(resources::kNodes, "a", {{"metadata", {{"labels", {{"role", nullptr}}}}}});
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"b", "d"}); }));
  // The event follows the deletion the test may already see.
  CHECK(WaitUntil([&] { return !d.fixture.events.WithReason("SuccessfulDelete").empty(); }));

  // A deleted node's pod goes; an extra pod on a node goes.
  REQUIRE(d.fixture.api.Delete(resources::kNodes, "", "b").ok());
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"d"}); }));
}

TEST_CASE("the controller rolls out a new template within maxUnavailable and keeps history") {
  DaemonFixture d;
  for (const char* n : {"a", "b", "c"}) d.AddNode(Node(n));
  d.CreateDaemonSet(DaemonSet("web", "nginx:1"));
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"a", "b", "c"}); }));
  d.MakeReady();
  REQUIRE(WaitUntil([&] { return d.Status().value("numberAvailable", 0) == 3; }));

  d.fixture.Patch(
      resources::kDaemonSets, "web",
      {{"spec",
        {{"template",
          {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx:2"}}})}}}}}}}});
  // Play the kubelet until every pod runs nginx:2; never more than one node down at once.
  REQUIRE(WaitUntil([&] {
    d.MakeReady();
    auto by_node = d.PodsByNode();
    CHECK(by_node.size() >= 2);
    int updated = 0;
    for (auto& [node, pods] : by_node) {
      for (const json& p : pods) updated += p["spec"]["containers"][0]["image"] == "nginx:2";
    }
    json s = d.Status();
    return updated == 3 && by_node.size() == 3 && s.value("updatedNumberScheduled", 0) == 3 &&
           s.value("numberAvailable", 0) == 3 && s.value("observedGeneration", 0) == 2;
  }));
  auto revisions = d.fixture.List(resources::kControllerRevisions);
  REQUIRE(revisions.size() == 2);

  // Back to nginx:1 (what `kubectl rollout undo` does): revision 1 becomes 3.
  d.fixture.Patch(
      resources::kDaemonSets, "web",
      {{"spec",
        {{"template",
          {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx:1"}}})}}}}}}}});
  REQUIRE(WaitUntil([&] {
    auto list = d.fixture.List(resources::kControllerRevisions);
    return list.size() == 2 && (list[0]["revision"] == 3 || list[1]["revision"] == 3);
  }));
}

TEST_CASE("OnDelete replaces a pod only once it is deleted") {
  DaemonFixture d;
  for (const char* n : {"a", "b"}) d.AddNode(Node(n));
  d.CreateDaemonSet(DaemonSet("web", "nginx:1", {{"type", "OnDelete"}}));
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"a", "b"}); }));
  d.MakeReady();
  d.fixture.Patch(
      resources::kDaemonSets, "web",
      {{"spec",
        {{"template",
          {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx:2"}}})}}}}}}}});
  REQUIRE(WaitUntil([&] {
    json s = d.Status();
    return s.value("observedGeneration", 0) == 2 && s.value("updatedNumberScheduled", -1) == 0;
  }));
  auto by_node = d.PodsByNode();
  REQUIRE(by_node["a"].size() == 1);
  CHECK(by_node["a"][0]["spec"]["containers"][0]["image"] == "nginx:1");
  REQUIRE(d.fixture.api.Delete(resources::kPods, "default", ctrl::NameOf(by_node["a"][0])).ok());
  REQUIRE(WaitUntil([&] {
    auto now = d.PodsByNode();
    return now["a"].size() == 1 && now["a"][0]["spec"]["containers"][0]["image"] == "nginx:2";
  }));
  CHECK(d.PodsByNode()["b"][0]["spec"]["containers"][0]["image"] == "nginx:1");
}

TEST_CASE("a failed daemon pod is deleted and replaced, with an event") {
  DaemonFixture d;
  d.AddNode(Node("a"));
  d.CreateDaemonSet(DaemonSet("web", "nginx:1"));
  REQUIRE(WaitUntil([&] { return d.OnePodOn({"a"}); }));
  const std::string first = ctrl::NameOf(d.PodsByNode()["a"][0]);
  d.fixture.Patch(resources::kPods, first, {{"status", {{"phase", "Failed"}}}}, "status");
  REQUIRE(WaitUntil([&] {
    auto by_node = d.PodsByNode();
    return by_node["a"].size() == 1 && ctrl::NameOf(by_node["a"][0]) != first;
  }));
  auto failed = d.fixture.events.WithReason("FailedDaemonPod");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].message.find("will try to kill it") != std::string::npos);
}

}  // namespace
