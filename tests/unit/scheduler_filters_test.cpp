// The scheduler's pure logic that decides where a pod may go: parsing of pods and nodes, label and
// node selectors, each filter with upstream's reason, the FitError message, and preemption.
#include <catch2/catch.hpp>
#include <random>

#include "algorithm.h"
#include "cluster_view.h"
#include "filters.h"
#include "scheduler_fixtures.h"

using namespace orch::sched;
using namespace orch::sched::testing;
using nlohmann::json;

namespace {

FilterStatus Filter(const json& pod_json, Cluster& cluster, const std::string& node) {
  PodPtr pod = ParsePod(pod_json);
  ClusterState state = cluster.State();
  return RunFilters(*pod, PreFilter(*pod, state), cluster.Node(node));
}

std::string Reason(const FilterStatus& s) {
  return s.reasons.empty() ? "" : s.reasons.front();
}

json Container(const std::string& name, json requests, json limits = nullptr) {
  json c = {{"name", name}, {"image", "busybox"}, {"resources", json::object()}};
  if (!requests.is_null()) c["resources"]["requests"] = requests;
  if (!limits.is_null()) c["resources"]["limits"] = limits;
  return c;
}

json TolerationJson(const std::string& key, const std::string& op, const std::string& value,
                    const std::string& effect) {
  json t = {{"operator", op}};
  if (!key.empty()) t["key"] = key;
  if (!value.empty()) t["value"] = value;
  if (!effect.empty()) t["effect"] = effect;
  return t;
}

json NodeTermJson(const std::string& key, const std::string& op, std::vector<std::string> values) {
  json e = {{"key", key}, {"operator", op}};
  if (!values.empty()) e["values"] = values;
  return {{"matchExpressions", json::array({e})}};
}

json AffinityTermJson(const json& match_labels, const std::string& topology_key) {
  return {{"labelSelector", {{"matchLabels", match_labels}}}, {"topologyKey", topology_key}};
}

}  // namespace

TEST_CASE("Pod requests add containers, take the init peak, limits stand in, overhead adds") {
  json pod = MakePod("p");
  pod["spec"]["containers"] = json::array({
      Container("a", {{"cpu", "100m"}, {"memory", "64Mi"}}),
      Container("b", {{"cpu", "200m"}}, {{"memory", "128Mi"}, {"nvidia.com/gpu", "1"}}),
  });
  pod["spec"]["initContainers"] = json::array({Container("init", {{"cpu", "1"}})});
  pod["spec"]["overhead"] = {{"cpu", "10m"}};
  PodPtr view = ParsePod(pod);
  CHECK(view->requests.milli_cpu == 1010);  // max(300m, 1) + 10m
  CHECK(view->requests.memory == (64 + 128) * 1024 * 1024);
  CHECK(view->requests.Scalar("nvidia.com/gpu") == 1);
  CHECK(view->non_zero_milli_cpu == 1010);

  SECTION("a sidecar runs beside the containers and the later init containers") {
    pod["spec"]["initContainers"] = json::array({
        Container("sidecar", {{"cpu", "500m"}}),
        Container("init", {{"cpu", "600m"}}),
    });
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always";
    pod["spec"].erase("overhead");
    PodPtr v = ParsePod(pod);
    CHECK(v->requests.milli_cpu == 1100);  // max(300m + 500m, 600m + 500m)
  }
}

TEST_CASE("Pods without requests are counted with upstream's defaults for scoring only") {
  PodPtr view = ParsePod(MakePod("p"));
  CHECK(view->requests.IsZero());
  CHECK(view->non_zero_milli_cpu == 100);
  CHECK(view->non_zero_memory == 200 * 1024 * 1024);
}

TEST_CASE("A node that is not Ready carries the taint the lifecycle controller would add") {
  json node = MakeNode("n1");
  CHECK(ParseNode(node)->taints.empty());
  node["status"]["conditions"][0]["status"] = "False";
  REQUIRE(ParseNode(node)->taints.size() == 1);
  CHECK(ParseNode(node)->taints[0].key == "node.kubernetes.io/not-ready");
  node["status"]["conditions"][0]["status"] = "Unknown";
  CHECK(ParseNode(node)->taints[0].key == "node.kubernetes.io/unreachable");
  node["status"].erase("conditions");
  CHECK(ParseNode(node)->taints[0].key == "node.kubernetes.io/not-ready");
  node["spec"]["taints"] =
      json::array({{{"key", "node.kubernetes.io/not-ready"}, {"effect", "NoSchedule"}}});
  CHECK(ParseNode(node)->taints.size() == 1);
}

TEST_CASE("Node allocatable falls back to capacity") {
  json node = MakeNode("n1");
  node["status"]["capacity"] = node["status"]["allocatable"];
  node["status"]["capacity"]["cpu"] = "2500m";
  node["status"].erase("allocatable");
  NodePtr view = ParseNode(node);
  CHECK(view->allocatable.milli_cpu == 2500);
  CHECK(view->allowed_pods == 110);
}

TEST_CASE("Label selectors: null matches nothing, empty everything, expressions as upstream") {
  Labels labels = Labels::FromPairs({{"app", "web"}, {"tier", "front"}});
  CHECK_FALSE(SelectorFromJson(nullptr).Matches(labels));
  CHECK(SelectorFromJson(json::object()).Matches(labels));
  CHECK(SelectorFromJson({{"matchLabels", {{"app", "web"}}}}).Matches(labels));
  CHECK_FALSE(SelectorFromJson({{"matchLabels", {{"app", "db"}}}}).Matches(labels));
  auto expr = [](const std::string& key, const std::string& op, std::vector<std::string> values) {
    json e = {{"key", key}, {"operator", op}};
    if (!values.empty()) e["values"] = values;
    return json{{"matchExpressions", json::array({e})}};
  };
  CHECK(SelectorFromJson(expr("app", "In", {"db", "web"})).Matches(labels));
  CHECK_FALSE(SelectorFromJson(expr("app", "NotIn", {"web"})).Matches(labels));
  CHECK(SelectorFromJson(expr("zone", "NotIn", {"a"})).Matches(labels));
  CHECK(SelectorFromJson(expr("tier", "Exists", {})).Matches(labels));
  CHECK(SelectorFromJson(expr("zone", "DoesNotExist", {})).Matches(labels));
  CHECK_FALSE(SelectorFromJson(expr("app", "Bogus", {"web"})).Matches(labels));
}

TEST_CASE("Node selector terms: In, NotIn, Exists, DoesNotExist, Gt, Lt and metadata.name") {
  Labels labels = Labels::FromPairs({{"zone", "a"}, {"cores", "8"}});
  auto matches = [&](const json& term) {
    return NodeSelectorTerm::FromJson(term).Matches(labels, "node-1");
  };
  CHECK(matches(NodeTermJson("zone", "In", {"a", "b"})));
  CHECK_FALSE(matches(NodeTermJson("zone", "NotIn", {"a"})));
  CHECK(matches(NodeTermJson("disk", "NotIn", {"ssd"})));
  CHECK(matches(NodeTermJson("zone", "Exists", {})));
  CHECK(matches(NodeTermJson("disk", "DoesNotExist", {})));
  CHECK(matches(NodeTermJson("cores", "Gt", {"4"})));
  CHECK_FALSE(matches(NodeTermJson("cores", "Lt", {"4"})));
  CHECK_FALSE(matches(NodeTermJson("zone", "Gt", {"4"})));  // not a number
  CHECK_FALSE(matches(NodeTermJson("cores", "Gt", {"4", "5"})));
  json fields = {
      {"matchFields",
       json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"node-1"}}}})}};
  CHECK(matches(fields));
  fields["matchFields"][0]["values"] = {"node-2"};
  CHECK_FALSE(matches(fields));
  CHECK_FALSE(matches(json::object()));  // an empty term selects nothing
}

TEST_CASE("Tolerations match taints by key, operator, value and effect") {
  Taint taint{"dedicated", "gpu", "NoSchedule"};
  auto tolerates = [&](const json& t) {
    json pod = MakePod("p");
    pod["spec"]["tolerations"] = json::array({t});
    return ToleratesAll(ParsePod(pod)->tolerations, taint);
  };
  CHECK(tolerates(TolerationJson("dedicated", "Equal", "gpu", "NoSchedule")));
  CHECK(tolerates(TolerationJson("dedicated", "Equal", "gpu", "")));
  CHECK_FALSE(tolerates(TolerationJson("dedicated", "Equal", "cpu", "NoSchedule")));
  CHECK_FALSE(tolerates(TolerationJson("dedicated", "Equal", "gpu", "NoExecute")));
  CHECK(tolerates(TolerationJson("dedicated", "Exists", "", "")));
  CHECK(tolerates(TolerationJson("", "Exists", "", "")));
  CHECK_FALSE(tolerates(TolerationJson("other", "Exists", "", "")));
}

TEST_CASE("Cordoned nodes are unschedulable unless the pod tolerates it") {
  Cluster cluster;
  json node = MakeNode("n1");
  node["spec"]["unschedulable"] = true;
  cluster.AddNode(node);
  FilterStatus s = Filter(MakePod("p"), cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnresolvable);
  CHECK(Reason(s) == "node(s) were unschedulable");
  json pod = MakePod("p");
  pod["spec"]["tolerations"] =
      json::array({TolerationJson("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")});
  CHECK(Filter(pod, cluster, "n1").ok());
}

TEST_CASE("Untolerated NoSchedule and NoExecute taints reject the node, PreferNoSchedule not") {
  Cluster cluster;
  json node = MakeNode("n1");
  node["spec"]["taints"] =
      json::array({{{"key", "soft"}, {"effect", "PreferNoSchedule"}},
                   {{"key", "node-role.kubernetes.io/control-plane"}, {"effect", "NoSchedule"}}});
  cluster.AddNode(node);
  FilterStatus s = Filter(MakePod("p"), cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnresolvable);
  CHECK(Reason(s) == "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }");

  json noexec = MakeNode("n2");
  noexec["spec"]["taints"] =
      json::array({{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoExecute"}}});
  cluster.AddNode(noexec);
  CHECK(Reason(Filter(MakePod("p"), cluster, "n2")) ==
        "node(s) had untolerated taint {dedicated: db}");

  json pod = MakePod("p");
  pod["spec"]["tolerations"] = json::array(
      {TolerationJson("node-role.kubernetes.io/control-plane", "Exists", "", "NoSchedule"),
       TolerationJson("dedicated", "Equal", "db", "")});
  CHECK(Filter(pod, cluster, "n1").ok());
  CHECK(Filter(pod, cluster, "n2").ok());
}

TEST_CASE("A node that is not Ready is rejected with the not-ready taint") {
  Cluster cluster;
  json node = MakeNode("n1");
  node["status"]["conditions"][0]["status"] = "False";
  cluster.AddNode(node);
  CHECK(Reason(Filter(MakePod("p"), cluster, "n1")) ==
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }");
}

TEST_CASE("nodeSelector and required node affinity must both match") {
  Cluster cluster;
  json node = MakeNode("n1");
  LabelsOf(node)["disk"] = "ssd";
  LabelsOf(node)["zone"] = "a";
  cluster.AddNode(node);
  json pod = MakePod("p");
  pod["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  CHECK(Filter(pod, cluster, "n1").ok());
  pod["spec"]["nodeSelector"] = {{"disk", "hdd"}};
  FilterStatus s = Filter(pod, cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnresolvable);
  CHECK(Reason(s) == "node(s) didn't match Pod's node affinity/selector");

  pod["spec"].erase("nodeSelector");
  pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms",
       json::array({NodeTermJson("zone", "In", {"b"}), NodeTermJson("disk", "Exists", {})})}};
  CHECK(Filter(pod, cluster, "n1").ok());  // terms are ORed
  pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms", json::array({NodeTermJson("zone", "In", {"b"})})}};
  CHECK(Reason(Filter(pod, cluster, "n1")) == "node(s) didn't match Pod's node affinity/selector");
}

TEST_CASE("Host ports conflict by protocol, port and overlapping addresses") {
  auto with_port = [](json pod, int port, const std::string& protocol, const std::string& ip) {
    json p = {{"containerPort", 80}, {"hostPort", port}};
    if (!protocol.empty()) p["protocol"] = protocol;
    if (!ip.empty()) p["hostIP"] = ip;
    pod["spec"]["containers"][0]["ports"] = json::array({p});
    return pod;
  };
  Cluster cluster;
  cluster.AddNode(MakeNode("n1"));
  cluster.AddPod(with_port(MakePod("existing"), 8080, "", "10.0.0.1"), "n1");
  FilterStatus s = Filter(with_port(MakePod("p"), 8080, "TCP", ""), cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnschedulable);
  CHECK(Reason(s) == "node(s) didn't have free ports for the requested pod ports");
  CHECK(Filter(with_port(MakePod("p"), 8080, "UDP", ""), cluster, "n1").ok());
  CHECK(Filter(with_port(MakePod("p"), 8080, "TCP", "10.0.0.2"), cluster, "n1").ok());
  CHECK_FALSE(Filter(with_port(MakePod("p"), 8080, "TCP", "10.0.0.1"), cluster, "n1").ok());
  CHECK(Filter(with_port(MakePod("p"), 8081, "TCP", ""), cluster, "n1").ok());
}

TEST_CASE("Resources must fit allocatable minus the requests of the node's pods") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "2", "4Gi", 3));
  cluster.AddPod(MakePod("a", "1500m", "1Gi"), "n1");
  CHECK(Filter(MakePod("p", "500m", "3Gi"), cluster, "n1").ok());
  FilterStatus s = Filter(MakePod("p", "600m", "4Gi"), cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnschedulable);
  CHECK(s.reasons == std::vector<std::string>{"Insufficient cpu", "Insufficient memory"});

  json gpu = MakePod("g");
  gpu["spec"]["containers"][0]["resources"]["requests"] = {{"nvidia.com/gpu", "1"}};
  CHECK(Reason(Filter(gpu, cluster, "n1")) == "Insufficient nvidia.com/gpu");

  cluster.AddPod(MakePod("b"), "n1");
  cluster.AddPod(MakePod("c"), "n1");
  CHECK(Filter(MakePod("p"), cluster, "n1").reasons == std::vector<std::string>{"Too many pods"});
}

TEST_CASE("Terminating pods still hold their room; removing a pod frees it") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "1"));
  PodPtr a = cluster.AddPod(MakePod("a", "1"), "n1");
  CHECK_FALSE(Filter(MakePod("p", "500m"), cluster, "n1").ok());
  REQUIRE(cluster.Node("n1").RemovePod(a->CacheKey()));
  CHECK(Filter(MakePod("p", "500m"), cluster, "n1").ok());
  CHECK(cluster.Node("n1").requested().milli_cpu == 0);
}

TEST_CASE("Topology spread DoNotSchedule keeps the skew within maxSkew") {
  Cluster cluster;
  for (auto [name, zone] : {std::pair{"a1", "a"}, {"a2", "a"}, {"b1", "b"}}) {
    json node = MakeNode(name);
    LabelsOf(node)["zone"] = zone;
    cluster.AddNode(node);
  }
  json web = MakePod("w");
  LabelsOf(web)["app"] = "web";
  json w1 = web;
  w1["metadata"]["name"] = "w1";
  w1["metadata"]["uid"] = "w1";
  json w2 = web;
  w2["metadata"]["name"] = "w2";
  w2["metadata"]["uid"] = "w2";
  cluster.AddPod(w1, "a1");
  cluster.AddPod(w2, "a2");
  json pod = web;
  pod["spec"]["topologySpreadConstraints"] =
      json::array({{{"maxSkew", 1},
                    {"topologyKey", "zone"},
                    {"whenUnsatisfiable", "DoNotSchedule"},
                    {"labelSelector", {{"matchLabels", {{"app", "web"}}}}}}});
  FilterStatus s = Filter(pod, cluster, "a1");
  CHECK(s.code == FilterStatus::Code::kUnschedulable);
  CHECK(Reason(s) == "node(s) didn't match pod topology spread constraints");
  CHECK(Filter(pod, cluster, "b1").ok());

  SECTION("pods in other namespaces do not count") {
    json other = MakePod("x", "", "", "other");
    LabelsOf(other)["app"] = "web";
    cluster.AddPod(other, "b1");
    CHECK(Filter(pod, cluster, "b1").ok());
  }
  SECTION("a node without the topology label is rejected for good") {
    cluster.AddNode(MakeNode("bare"));
    FilterStatus bare = Filter(pod, cluster, "bare");
    CHECK(bare.code == FilterStatus::Code::kUnresolvable);
    CHECK(Reason(bare) ==
          "node(s) didn't match pod topology spread constraints (missing required label)");
  }
  SECTION("minDomains above the number of domains makes the minimum zero") {
    pod["spec"]["topologySpreadConstraints"][0]["minDomains"] = 3;
    pod["spec"]["topologySpreadConstraints"][0]["maxSkew"] = 2;
    CHECK(Filter(pod, cluster, "b1").ok());
    CHECK_FALSE(Filter(pod, cluster, "a1").ok());  // 2 + 1 - 0 > 2
  }
  SECTION("nodes the pod's node affinity excludes are not domains") {
    pod["spec"]["nodeSelector"] = {{"zone", "a"}};
    CHECK(Filter(pod, cluster, "a1").ok());  // only zone a counts: skew 2 + 1 - 2 = 1
  }
}

TEST_CASE("Required pod affinity needs a matching pod in the node's topology domain") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1"));
  cluster.AddNode(MakeNode("n2"));
  json db = MakePod("db");
  LabelsOf(db)["app"] = "db";
  cluster.AddPod(db, "n1");
  json pod = MakePod("p");
  pod["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
      json::array({AffinityTermJson({{"app", "db"}}, "kubernetes.io/hostname")});
  CHECK(Filter(pod, cluster, "n1").ok());
  FilterStatus s = Filter(pod, cluster, "n2");
  CHECK(s.code == FilterStatus::Code::kUnresolvable);
  CHECK(Reason(s) == "node(s) didn't match pod affinity rules");

  SECTION("terms look in the pod's namespace unless told otherwise") {
    json other = pod;
    other["metadata"]["namespace"] = "other";
    CHECK_FALSE(Filter(other, cluster, "n1").ok());
    other["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
         ["namespaces"] = {"default"};
    CHECK(Filter(other, cluster, "n1").ok());
    json selector_term =
        other["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    selector_term[0].erase("namespaces");
    selector_term[0]["namespaceSelector"] = {{"matchLabels", {{"team", "data"}}}};
    other["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        selector_term;
    CHECK_FALSE(Filter(other, cluster, "n1").ok());
    cluster.namespaces["default"] = Labels::FromPairs({{"team", "data"}});
    CHECK(Filter(other, cluster, "n1").ok());
  }
  SECTION("the first pod of a group that selects itself may go anywhere") {
    json first = MakePod("first");
    LabelsOf(first)["app"] = "cache";
    first["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json::array({AffinityTermJson({{"app", "cache"}}, "kubernetes.io/hostname")});
    CHECK(Filter(first, cluster, "n2").ok());
  }
}

TEST_CASE("Required anti-affinity, the pod's own and that of existing pods") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1"));
  cluster.AddNode(MakeNode("n2"));
  json web = MakePod("web-1");
  LabelsOf(web)["app"] = "web";
  web["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
      json::array({AffinityTermJson({{"app", "web"}}, "kubernetes.io/hostname")});
  cluster.AddPod(web, "n1");

  json pod = web;
  pod["metadata"]["name"] = "web-2";
  pod["metadata"]["uid"] = "web-2";
  FilterStatus s = Filter(pod, cluster, "n1");
  CHECK(s.code == FilterStatus::Code::kUnschedulable);
  CHECK(Reason(s) == "node(s) didn't match pod anti-affinity rules");
  CHECK(Filter(pod, cluster, "n2").ok());

  // A pod without terms of its own still may not join a pod that repels it.
  json plain = MakePod("plain");
  LabelsOf(plain)["app"] = "web";
  CHECK(Reason(Filter(plain, cluster, "n1")) ==
        "node(s) didn't satisfy existing pods anti-affinity rules");
  LabelsOf(plain)["app"] = "db";
  CHECK(Filter(plain, cluster, "n1").ok());
}

TEST_CASE("The FitError message counts and sorts reasons like upstream") {
  std::vector<FilterStatus> failures = {
      FilterStatus::Fail(FilterStatus::Code::kUnschedulable, kPluginNodeResourcesFit,
                         "Insufficient cpu"),
      FilterStatus::Fail(FilterStatus::Code::kUnresolvable, kPluginTaintToleration,
                         "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
      FilterStatus::Fail(FilterStatus::Code::kUnresolvable, kPluginTaintToleration,
                         "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
  };
  CHECK(FormatFitError(3, failures,
                       "preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
                       "scheduling.") ==
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 "
        "Preemption is not helpful for scheduling.");
  // The "<count> <reason>" strings are sorted as strings: "10 ..." before "2 ...".
  std::vector<FilterStatus> many(12,
                                 FilterStatus::Fail(FilterStatus::Code::kUnschedulable, 0, "b"));
  many[0].reasons = {"a"};
  many[1].reasons = {"a"};
  CHECK(FormatFitError(12, many) == "0/12 nodes are available: 10 b, 2 a.");
}

TEST_CASE("SchedulePod reports every node's reason when none fits") {
  Cluster cluster;
  cluster.AddNode(MakeNode("small", "1"));
  for (const char* name : {"cp1", "cp2"}) {
    json node = MakeNode(name, "8");
    node["spec"]["taints"] =
        json::array({{{"key", "node-role.kubernetes.io/control-plane"}, {"effect", "NoSchedule"}}});
    cluster.AddNode(node);
  }
  std::mt19937_64 rng(1);
  PodPtr pod = ParsePod(MakePod("big", "2"));
  ScheduleResult r = SchedulePod(*pod, cluster.State(), rng);
  CHECK(r.node.empty());
  CHECK(r.failed_plugins == (kPluginNodeResourcesFit | kPluginTaintToleration));
  CHECK(r.message ==
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }.");
  PreemptionResult p = Preempt(*pod, cluster.State(), r.statuses);
  CHECK(p.node.empty());
  CHECK(p.message ==
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.");

  Cluster empty;
  ScheduleResult none = SchedulePod(*pod, empty.State(), rng);
  CHECK(none.message == "no nodes available to schedule pods");
}

TEST_CASE("SchedulePod keeps the room of pods nominated at the same or a higher priority") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "1"));
  json nominee = MakePod("nominee", "800m");
  nominee["spec"]["priority"] = 100;
  cluster.nominated["n1"].push_back(ParsePod(nominee));
  std::mt19937_64 rng(1);
  PodPtr low = ParsePod(MakePod("low", "500m"));
  CHECK(SchedulePod(*low, cluster.State(), rng).node.empty());
  json high = MakePod("high", "500m");
  high["spec"]["priority"] = 1000;
  CHECK(SchedulePod(*ParsePod(high), cluster.State(), rng).node == "n1");
  // The nominee itself is not kept out by its own reservation.
  nominee["spec"]["priority"] = 100;
  CHECK(SchedulePod(*ParsePod(nominee), cluster.State(), rng).node == "n1");
}

TEST_CASE("Preemption evicts the fewest, lowest-priority pods on the best node") {
  Cluster cluster;
  cluster.AddNode(MakeNode("n1", "2"));
  cluster.AddNode(MakeNode("n2", "2"));
  auto pod_with = [](const std::string& name, const std::string& cpu, int priority) {
    json p = MakePod(name, cpu);
    p["spec"]["priority"] = priority;
    return p;
  };
  // n1: two low pods; n2: one mid pod and one low pod.
  cluster.AddPod(pod_with("n1-low-a", "1", 1), "n1");
  cluster.AddPod(pod_with("n1-low-b", "1", 1), "n1");
  cluster.AddPod(pod_with("n2-mid", "1", 50), "n2");
  cluster.AddPod(pod_with("n2-low", "1", 2), "n2");

  std::mt19937_64 rng(1);
  PodPtr pod = ParsePod(pod_with("important", "1", 100));
  ScheduleResult r = SchedulePod(*pod, cluster.State(), rng);
  REQUIRE(r.node.empty());
  PreemptionResult p = Preempt(*pod, cluster.State(), r.statuses);
  // On n1 one low pod is enough (victim priority 1); on n2 the low pod (priority 2). n1 wins.
  CHECK(p.node == "n1");
  REQUIRE(p.victims.size() == 1);
  CHECK(p.victims[0]->priority == 1);

  SECTION("no lower-priority pods: nothing to preempt") {
    PodPtr peer = ParsePod(pod_with("peer", "1", 1));
    PreemptionResult none =
        Preempt(*peer, cluster.State(), SchedulePod(*peer, cluster.State(), rng).statuses);
    CHECK(none.node.empty());
    CHECK(none.message ==
          "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.");
  }
  SECTION("preemptionPolicy Never") {
    json never = pod_with("never", "1", 100);
    never["spec"]["preemptionPolicy"] = "Never";
    PreemptionResult none = Preempt(*ParsePod(never), cluster.State(), r.statuses);
    CHECK(none.node.empty());
    CHECK(none.message == "preemption: not eligible due to preemptionPolicy=Never.");
  }
  SECTION("a preemptor waits while its victims terminate") {
    json victim = pod_with("n1-low-a", "1", 1);
    victim["metadata"]["uid"] = "uid-default-n1-low-a";
    victim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
    victim["spec"]["nodeName"] = "n1";
    cluster.Node("n1").RemovePod("uid-default-n1-low-a");
    cluster.Node("n1").AddPod(ParsePod(victim));
    json waiting = pod_with("important", "1", 100);
    waiting["status"]["nominatedNodeName"] = "n1";
    PreemptionResult wait = Preempt(*ParsePod(waiting), cluster.State(), r.statuses);
    CHECK(wait.node.empty());
    CHECK(wait.message ==
          "preemption: not eligible due to a terminating pod on the nominated node.");
  }
  SECTION("needing more than one victim takes only as many as needed") {
    PodPtr huge = ParsePod(pod_with("huge", "2", 100));
    ScheduleResult rh = SchedulePod(*huge, cluster.State(), rng);
    PreemptionResult ph = Preempt(*huge, cluster.State(), rh.statuses);
    CHECK(ph.node == "n1");  // n2 would need its priority-50 pod
    CHECK(ph.victims.size() == 2);
  }
}
