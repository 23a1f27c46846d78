// The API server's DaemonSet strategy: the deprecated.daemonset.template.generation annotation
// upstream keeps (1 on create, one more per template change, never what a client writes).
#include <catch2/catch.hpp>

#include "test_api_server.h"

namespace orch {
namespace {

using nlohmann::json;

constexpr char kAnnotation[] = "deprecated.daemonset.template.generation";

json DaemonSet(const std::string& image) {
  json labels = {{"app", "agent"}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", "agent"}}},
          {"spec",
           {{"selector", {{"matchLabels", labels}}},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}}}}}};
}

std::string Annotation(const json& ds) {
  return ds["metadata"]["annotations"].value(kAnnotation, "");
}

TEST_CASE("DaemonSet template generation: 1 on create, +1 per template change only") {
  testing::TestApiServer ts("orch-ds-generation-");
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  const ResourceRef& ds = resources::kDaemonSets;

  auto created = client->Create(ds, "default", DaemonSet("busybox:1"));
  REQUIRE(created.ok());
  CHECK(Annotation(*created) == "1");
  CHECK((*created)["metadata"]["generation"] == 1);

  // A change outside the template bumps metadata.generation but not the template generation.
  json strategy = *created;
  strategy["spec"]["minReadySeconds"] = 5;
  auto updated = client->Update(ds, "default", strategy);
  REQUIRE(updated.ok());
  CHECK((*updated)["metadata"]["generation"] == 2);
  CHECK(Annotation(*updated) == "1");

  // A template change bumps both; what the client says about the annotation is ignored.
  json image = *updated;
  image["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2";
  image["metadata"]["annotations"][kAnnotation] = "41";
  updated = client->Update(ds, "default", image);
  REQUIRE(updated.ok());
  CHECK((*updated)["metadata"]["generation"] == 3);
  CHECK(Annotation(*updated) == "2");

  // Removing it in an update changes nothing either; a status write keeps it.
  json removed = *updated;
  removed["metadata"]["annotations"].erase(kAnnotation);
  updated = client->Update(ds, "default", removed);
  REQUIRE(updated.ok());
  CHECK(Annotation(*updated) == "2");
  json status = *updated;
  status["status"] = {{"currentNumberScheduled", 0},
                      {"desiredNumberScheduled", 0},
                      {"numberMisscheduled", 0},
                      {"numberReady", 0}};
  updated = client->Update(ds, "default", status, "status");
  REQUIRE(updated.ok());
  CHECK(Annotation(*updated) == "2");

  // A merge patch of the template counts too.
  auto patched =
      client->Patch(ds, "default", "agent", PatchType::kMerge,
                    R"({"spec":{"template":{"metadata":{"annotations":{"restartedAt":"now"}}}}})");
  REQUIRE(patched.ok());
  CHECK(Annotation(*patched) == "3");
}

TEST_CASE("DaemonSet template generation: a positive number sent on create is kept") {
  testing::TestApiServer ts("orch-ds-generation-");
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  json sent = DaemonSet("busybox:1");
  sent["metadata"]["annotations"][kAnnotation] = "7";
  auto created = client->Create(resources::kDaemonSets, "default", sent);
  REQUIRE(created.ok());
  CHECK(Annotation(*created) == "7");
  json bad = DaemonSet("busybox:1");
  bad["metadata"]["name"] = "other";
  bad["metadata"]["annotations"][kAnnotation] = "seven";
  created = client->Create(resources::kDaemonSets, "default", bad);
  REQUIRE(created.ok());
  CHECK(Annotation(*created) == "1");
}

}  // namespace
}  // namespace orch
