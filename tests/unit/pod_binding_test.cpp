// pods/binding against a real API server: the scheduler's write sets spec.nodeName and the
// PodScheduled condition, leaves managed fields alone (as upstream), and refuses a second binding.
#include <catch2/catch.hpp>

#include "test_api_server.h"

namespace orch {
namespace {

using nlohmann::json;

json Binding(const std::string& pod, const std::string& node) {
  return {{"apiVersion", "v1"},
          {"kind", "Binding"},
          {"metadata", {{"name", pod}}},
          {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
}

TEST_CASE("pods/binding assigns the node once, with PodScheduled, without managed fields") {
  testing::TestApiServer ts("orch-binding-");
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  auto scheduler = ts.server->NewClient("scheduler", {"system:masters"}, "default-scheduler");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
  auto created = client->Create(resources::kPods, "default", pod);
  REQUIRE(created.ok());

  auto bound = scheduler->Post(resources::kPods, "default", "p", "binding", Binding("p", "n1"));
  REQUIRE(bound.ok());
  auto got = client->Get(resources::kPods, "default", "p");
  REQUIRE(got.ok());
  CHECK((*got)["spec"]["nodeName"] == "n1");
  bool scheduled = false;
  for (const json& c : (*got)["status"]["conditions"]) {
    if (c["type"] == "PodScheduled") scheduled = c["status"] == "True";
  }
  CHECK(scheduled);
  CHECK((*got)["metadata"]["managedFields"] == (*created)["metadata"]["managedFields"]);
  CHECK((*got)["metadata"]["resourceVersion"] != (*created)["metadata"]["resourceVersion"]);

  auto again = scheduler->Post(resources::kPods, "default", "p", "binding", Binding("p", "n2"));
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == StatusCode::kConflict);
  CHECK(again.status().message().find("already assigned to node \"n1\"") != std::string::npos);

  auto missing = scheduler->Post(resources::kPods, "default", "q", "binding", Binding("q", "n1"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace orch
