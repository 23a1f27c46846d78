// The node placement rules the scheduler and the DaemonSet controller share: node selector terms
// (operators, matchFields), nodeSelector plus required affinity, taints against tolerations.
#include "orch/node_placement.h"

#include <catch2/catch.hpp>

namespace {

using json = nlohmann::json;
namespace placement = orch::placement;

json Expr(const std::string& key, const std::string& op, json values = json()) {
  json r = {{"key", key}, {"operator", op}};
  if (!values.is_null()) r["values"] = values;
  return r;
}

bool TermMatches(json term, const placement::Labels& labels, const std::string& name = "n1") {
  return placement::NodeSelectorTerm::FromJson(term).Matches(labels, name);
}

}  // namespace

TEST_CASE("node selector terms: label operators, numeric comparisons and metadata.name") {
  auto labels = placement::Labels::FromJson({{"zone", "a"}, {"cpus", "8"}, {"bad", 3}});
  CHECK(labels.Find("bad") == nullptr);  // non-string values are not labels
  CHECK(TermMatches({{"matchExpressions", {Expr("zone", "In", {"a", "b"})}}}, labels));
  CHECK_FALSE(TermMatches({{"matchExpressions", {Expr("zone", "NotIn", {"a"})}}}, labels));
  CHECK(TermMatches({{"matchExpressions", {Expr("gpu", "NotIn", {"x"})}}}, labels));
  CHECK(TermMatches({{"matchExpressions", {Expr("gpu", "DoesNotExist")}}}, labels));
  CHECK_FALSE(TermMatches({{"matchExpressions", {Expr("gpu", "Exists")}}}, labels));
  CHECK(TermMatches({{"matchExpressions", {Expr("cpus", "Gt", {"+4"})}}}, labels));
  CHECK_FALSE(TermMatches({{"matchExpressions", {Expr("cpus", "Lt", {"4"})}}}, labels));
  CHECK_FALSE(TermMatches({{"matchExpressions", {Expr("zone", "Gt", {"4"})}}}, labels));
  CHECK_FALSE(TermMatches({{"matchExpressions", {Expr("zone", "Like", {"a"})}}}, labels));
  CHECK_FALSE(TermMatches(json::object(), labels));  // an empty term matches no node
  json by_name = {{"matchFields", {Expr("metadata.name", "In", {"n1"})}}};
  CHECK(TermMatches(by_name, labels, "n1"));
  CHECK_FALSE(TermMatches(by_name, labels, "n2"));
  CHECK_FALSE(TermMatches({{"matchFields", {Expr("metadata.name", "Exists")}}}, labels));
  CHECK_FALSE(TermMatches({{"matchFields", {Expr("metadata.uid", "In", {"n1"})}}}, labels));
}

TEST_CASE("node constraints: every nodeSelector label and one required affinity term") {
  json spec = {{"nodeSelector", {{"disk", "ssd"}}},
               {"affinity",
                {{"nodeAffinity",
                  {{"requiredDuringSchedulingIgnoredDuringExecution",
                    {{"nodeSelectorTerms",
                      {{{"matchExpressions", {Expr("zone", "In", {"a"})}}},
                       {{"matchExpressions", {Expr("zone", "In", {"b"})}}}}}}}}}}}};
  auto constraints = placement::NodeConstraints::FromPodSpec(spec);
  CHECK(constraints.Matches(placement::Labels::FromJson({{"disk", "ssd"}, {"zone", "b"}}), "n"));
  CHECK_FALSE(constraints.Matches(placement::Labels::FromJson({{"zone", "b"}}), "n"));
  CHECK_FALSE(
      constraints.Matches(placement::Labels::FromJson({{"disk", "ssd"}, {"zone", "c"}}), "n"));
  CHECK(placement::NodeConstraints::FromPodSpec(json::object())
            .Matches(placement::Labels::FromJson(json::object()), "n"));
  CHECK_FALSE(placement::NodeSelector::FromJson(json::object()).has_value());
}

TEST_CASE("tolerations against taints, as upstream's ToleratesTaint") {
  auto taint = placement::Taint::FromJson({{"key", "k"}, {"value", "v"}, {"effect", "NoSchedule"}});
  auto tolerates = [&](json t) { return placement::Toleration::FromJson(t).Tolerates(taint); };
  CHECK(tolerates({{"key", "k"}, {"value", "v"}}));
  CHECK(tolerates({{"key", "k"}, {"operator", "Equal"}, {"value", "v"}, {"effect", "NoSchedule"}}));
  CHECK_FALSE(tolerates({{"key", "k"}, {"value", "w"}}));
  CHECK(tolerates({{"key", "k"}, {"operator", "Exists"}}));
  CHECK(tolerates({{"operator", "Exists"}}));  // every key
  CHECK_FALSE(tolerates({{"operator", "Exists"}, {"effect", "NoExecute"}}));
  CHECK_FALSE(tolerates({{"key", "k"}, {"operator", "Gt"}, {"value", "v"}}));

  auto taints = placement::TaintsFromJson({{{"key", "soft"}, {"effect", "PreferNoSchedule"}},
                                           {{"key", "hard"}, {"effect", "NoExecute"}}});
  auto none = placement::TolerationsFromJson(json());
  const placement::Taint* first = placement::FirstUntoleratedTaint(none, taints);
  REQUIRE(first != nullptr);
  CHECK(first->key == "hard");  // PreferNoSchedule never keeps a pod off
  auto all = placement::TolerationsFromJson({{{"key", "hard"}, {"operator", "Exists"}}});
  CHECK(placement::FirstUntoleratedTaint(all, taints) == nullptr);
}
