// The scheduler's scores: each one's raw value and normalization, the weighted total, and the
// pick of the best node with a random tie-break.
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "algorithm.h"
#include "cluster_view.h"
#include "scheduler_fixtures.h"
#include "scores.h"

using namespace orch::sched;
using namespace orch::sched::testing;
using nlohmann::json;

namespace {

std::vector<const NodeInfo*> Feasible(const Cluster& cluster) {
  return cluster.State().nodes;
}

json Owned(json pod, const std::string& owner_uid) {
  pod["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "apps/v1"},
                                                     {"kind", "ReplicaSet"},
                                                     {"name", "rs"},
                                                     {"uid", owner_uid},
                                                     {"controller", true}}});
  return pod;
}

json Named(json pod, const std::string& name) {
  pod["metadata"]["name"] = name;
  pod["metadata"]["uid"] = "uid-" + name;
  return pod;
}

}  // namespace

TEST_CASE("Least allocated scores the free share of cpu and memory after placing the pod") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "4", "8Gi"));
  PodPtr pod = ParsePod(MakePod("p", "1", "2Gi"));
  CHECK(LeastAllocatedScore(*pod, cluster.Node("n1")) == 75);
  cluster.AddPod(MakePod("a", "2", "2Gi"), "n1");
  CHECK(LeastAllocatedScore(*pod, cluster.Node("n1")) == (25 + 50) / 2);
  // A pod without requests is counted as 100m and 200Mi.
  PodPtr empty = ParsePod(MakePod("e"));
  CHECK(LeastAllocatedScore(*empty, cluster.Node("n1")) == (47 + 72) / 2);
}

TEST_CASE("Balanced allocation prefers equal shares of cpu and memory") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "4", "8Gi"));
  CHECK(BalancedAllocationScore(*ParsePod(MakePod("p", "1", "2Gi")), cluster.Node("n1")) == 100);
  // cpu 1/2, memory 1/8: deviation 0.1875.
  CHECK(BalancedAllocationScore(*ParsePod(MakePod("p", "2", "1Gi")), cluster.Node("n1")) == 81);
}

TEST_CASE("Preferred node affinity sums matching weights, normalized to the best node") {
  Cluster cluster;
  json a = MakeNode("a");
  LabelsOf(a)["disk"] = "ssd";
  LabelsOf(a)["zone"] = "z1";
  json b = MakeNode("b");
  LabelsOf(b)["zone"] = "z1";
  cluster.AddNode(a);
  cluster.AddNode(b);
  cluster.AddNode(MakeNode("c"));
  json pod = MakePod("p");
  json ssd = {{"weight", 10},
              {"preference",
               {{"matchExpressions",
                 json::array({{{"key", "disk"}, {"operator", "In"}, {"values", {"ssd"}}}})}}}};
  json zone = {{"weight", 5},
               {"preference",
                {{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "Exists"}}})}}}};
  pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
      json::array({ssd, zone});
  PodPtr view = ParsePod(pod);
  std::vector<int64_t> raw;
  for (const NodeInfo* n : Feasible(cluster))
    raw.push_back(NodeAffinityRawScore(*view, *n->node()));
  CHECK(raw == std::vector<int64_t>{15, 5, 0});
  NormalizeScores(raw, false);
  CHECK(raw == std::vector<int64_t>{100, 33, 0});
}

TEST_CASE("Untolerated PreferNoSchedule taints lower a node's score") {
  Cluster cluster;
  json two = MakeNode("a");
  two["spec"]["taints"] = json::array({{{"key", "x"}, {"effect", "PreferNoSchedule"}},
                                       {{"key", "y"}, {"effect", "PreferNoSchedule"}}});
  json one = MakeNode("b");
  one["spec"]["taints"] = json::array({{{"key", "x"}, {"effect", "PreferNoSchedule"}}});
  cluster.AddNode(two);
  cluster.AddNode(one);
  cluster.AddNode(MakeNode("c"));
  json pod = MakePod("p");
  PodPtr view = ParsePod(pod);
  std::vector<int64_t> raw;
  for (const NodeInfo* n : Feasible(cluster)) {
    raw.push_back(TaintTolerationRawScore(*view, *n->node()));
  }
  CHECK(raw == std::vector<int64_t>{2, 1, 0});
  NormalizeScores(raw, true);
  CHECK(raw == std::vector<int64_t>{0, 50, 100});

  pod["spec"]["tolerations"] =
      json::array({{{"key", "y"}, {"operator", "Exists"}, {"effect", "PreferNoSchedule"}}});
  CHECK(TaintTolerationRawScore(*ParsePod(pod), *cluster.Node("a").node()) == 1);
}

TEST_CASE("Preferred pod affinity and anti-affinity score by topology domain") {
  Cluster cluster;
  for (auto [name, zone] : {std::pair{"a1", "a"}, {"a2", "a"}, {"b1", "b"}}) {
    json node = MakeNode(name);
    LabelsOf(node)["zone"] = zone;
    cluster.AddNode(node);
  }
  json db = MakePod("db");
  LabelsOf(db)["app"] = "db";
  cluster.AddPod(db, "a1");
  json term = {{"weight", 50},
               {"podAffinityTerm",
                {{"labelSelector", {{"matchLabels", {{"app", "db"}}}}}, {"topologyKey", "zone"}}}};
  json pod = MakePod("p");
  pod["spec"]["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
      json::array({term});
  CHECK(InterPodAffinityScores(*ParsePod(pod), cluster.State(), Feasible(cluster)) ==
        std::vector<int64_t>{100, 100, 0});

  json anti = MakePod("p");
  anti["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
      json::array({term});
  CHECK(InterPodAffinityScores(*ParsePod(anti), cluster.State(), Feasible(cluster)) ==
        std::vector<int64_t>{0, 0, 100});

  SECTION("existing pods' preferences about the incoming pod count too") {
    json shy = MakePod("shy");
    json avoid_web = {{"labelSelector", {{"matchLabels", {{"app", "web"}}}}},
                      {"topologyKey", "kubernetes.io/hostname"}};
    json weighted = {{"weight", 10}, {"podAffinityTerm", avoid_web}};
    shy["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
        json::array({weighted});
    cluster.AddPod(shy, "b1");
    json web = MakePod("web");
    LabelsOf(web)["app"] = "web";
    CHECK(InterPodAffinityScores(*ParsePod(web), cluster.State(), Feasible(cluster)) ==
          std::vector<int64_t>{100, 100, 0});
  }
}

TEST_CASE("ScheduleAnyway spread constraints favour the emptier domain") {
  Cluster cluster;
  for (auto [name, zone] : {std::pair{"a1", "a"}, {"b1", "b"}}) {
    json node = MakeNode(name);
    LabelsOf(node)["zone"] = zone;
    cluster.AddNode(node);
  }
  cluster.AddNode(MakeNode("nozone"));
  json web = MakePod("w");
  LabelsOf(web)["app"] = "web";
  cluster.AddPod(Named(web, "w1"), "a1");
  cluster.AddPod(Named(web, "w2"), "a1");
  json pod = web;
  pod["spec"]["topologySpreadConstraints"] =
      json::array({{{"maxSkew", 1},
                    {"topologyKey", "zone"},
                    {"whenUnsatisfiable", "ScheduleAnyway"},
                    {"labelSelector", {{"matchLabels", {{"app", "web"}}}}}}});
  std::vector<int64_t> scores =
      TopologySpreadScores(*ParsePod(pod), cluster.State(), Feasible(cluster));
  REQUIRE(scores.size() == 3);  // a1, b1, nozone
  CHECK(scores[1] == 100);
  CHECK(scores[0] < scores[1]);
  CHECK(scores[2] == 0);  // without the label: the lowest score
}

TEST_CASE("Pods of one owner spread across nodes") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1"));
  cluster.AddNode(MakeNode("n2"));
  cluster.AddNode(MakeNode("n3"));
  cluster.AddPod(Owned(Named(MakePod("x"), "a"), "rs-1"), "n1");
  cluster.AddPod(Owned(Named(MakePod("x"), "b"), "rs-1"), "n1");
  cluster.AddPod(Owned(Named(MakePod("x"), "c"), "rs-1"), "n2");
  cluster.AddPod(Owned(Named(MakePod("x"), "d"), "rs-2"), "n3");
  PodPtr pod = ParsePod(Owned(MakePod("new"), "rs-1"));
  CHECK(OwnerSpreadScores(*pod, Feasible(cluster)) == std::vector<int64_t>{0, 50, 100});
  CHECK(OwnerSpreadScores(*ParsePod(MakePod("orphan")), Feasible(cluster)) ==
        std::vector<int64_t>{100, 100, 100});
}

TEST_CASE("The weighted total picks the emptier node; ties are broken at random") {
  Cluster cluster;
  cluster.AddNode(MakeNode("busy"));
  cluster.AddNode(MakeNode("idle"));
  cluster.AddPod(MakePod("a", "3", "6Gi"), "busy");
  std::mt19937_64 rng(7);
  PodPtr pod = ParsePod(MakePod("p", "500m", "512Mi"));
  std::vector<int64_t> totals = ScoreNodes(*pod, cluster.State(), Feasible(cluster));
  CHECK(totals[0] < totals[1]);
  CHECK(SchedulePod(*pod, cluster.State(), rng).node == "idle");

  Cluster twins;
  twins.AddNode(MakeNode("t1"));
  twins.AddNode(MakeNode("t2"));
  twins.AddNode(MakeNode("t3"));
  std::set<std::string> picked;
  for (int i = 0; i < 100; ++i) picked.insert(SchedulePod(*pod, twins.State(), rng).node);
  CHECK(picked == std::set<std::string>{"t1", "t2", "t3"});
}

TEST_CASE("A replica set's pods land on different nodes one after another") {
  Cluster cluster;
  for (const char* n : {"n1", "n2", "n3"}) cluster.AddNode(MakeNode(n));
  std::mt19937_64 rng(3);
  std::set<std::string> used;
  for (int i = 0; i < 3; ++i) {
    json pod = Owned(Named(MakePod("x", "100m", "64Mi"), "web-" + std::to_string(i)), "rs-web");
    std::string node = SchedulePod(*ParsePod(pod), cluster.State(), rng).node;
    used.insert(node);
    cluster.AddPod(pod, node);
  }
  CHECK(used.size() == 3);
}
