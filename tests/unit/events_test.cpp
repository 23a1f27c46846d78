// The event recorder on the fake API client: the Event it writes, and repeats folded into count.
#include "orch/events.h"

#include <catch2/catch.hpp>
#include <thread>

#include "fake_api_client.h"

namespace {

using json = nlohmann::json;

json Pod() {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "web-1"}, {"namespace", "shop"}, {"uid", "u-1"}, {"resourceVersion", "7"}}}};
}

}  // namespace

TEST_CASE("Events are written once and their repeats counted") {
  orch::testing::FakeApiClient fake;
  auto recorder = orch::EventRecorder::Create(fake, "default-scheduler", "node-a");
  recorder->Record(Pod(), "Warning", "FailedScheduling", "0/1 nodes are available");
  recorder->Record(Pod(), "Warning", "FailedScheduling", "0/1 nodes are available");
  recorder->Record(Pod(), "Warning", "FailedScheduling", "0/1 nodes are available");
  recorder->Record(Pod(), "Normal", "Scheduled", "assigned shop/web-1 to node-a");
  recorder->Record({{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "node-a"}}}},
                   "Normal", "Starting", "starting");
  recorder->Stop();  // writes what is queued

  auto events = fake.List(orch::resources::kEvents, "shop");
  REQUIRE(events.ok());
  REQUIRE(events->items.size() == 2);
  const json* failed = nullptr;
  for (const json& e : events->items) {
    if (e["reason"] == "FailedScheduling") failed = &e;
  }
  REQUIRE(failed != nullptr);
  const json& e = *failed;
  CHECK(e["count"] == 3);
  CHECK(e["type"] == "Warning");
  CHECK(e["message"] == "0/1 nodes are available");
  CHECK(e["metadata"]["name"].get<std::string>().rfind("web-1.", 0) == 0);
  CHECK(e["involvedObject"] == json{{"kind", "Pod"},
                                    {"apiVersion", "v1"},
                                    {"namespace", "shop"},
                                    {"name", "web-1"},
                                    {"uid", "u-1"},
                                    {"resourceVersion", "7"}});
  CHECK(e["source"] == json{{"component", "default-scheduler"}, {"host", "node-a"}});
  CHECK(e["reportingComponent"] == "default-scheduler");
  CHECK(e["reportingInstance"] == "node-a");
  CHECK(e["firstTimestamp"].get<std::string>().size() == 20);
  CHECK(e["lastTimestamp"] >= e["firstTimestamp"]);

  // Events of cluster-scoped objects go to "default".
  auto node_events = fake.List(orch::resources::kEvents, "default");
  REQUIRE(node_events.ok());
  REQUIRE(node_events->items.size() == 1);
  CHECK(node_events->items[0]["involvedObject"]["kind"] == "Node");
  CHECK_FALSE(node_events->items[0]["involvedObject"].contains("namespace"));

  // Recording after Stop is ignored, never blocks.
  recorder->Record(Pod(), "Normal", "Late", "late");
  recorder->Stop();
}

TEST_CASE("An event deleted meanwhile is written anew") {
  orch::testing::FakeApiClient fake;
  auto recorder = orch::EventRecorder::Create(fake, "kubelet");
  recorder->Record(Pod(), "Normal", "Pulled", "pulled");
  std::string first_name;
  for (int i = 0; i < 1000 && first_name.empty(); ++i) {
    auto events = fake.List(orch::resources::kEvents, "shop");
    REQUIRE(events.ok());
    if (!events->items.empty()) first_name = events->items[0]["metadata"]["name"];
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(!first_name.empty());
  REQUIRE(fake.Delete(orch::resources::kEvents, "shop", first_name).ok());
  recorder->Record(Pod(), "Normal", "Pulled", "pulled");
  recorder->Stop();
  auto events = fake.List(orch::resources::kEvents, "shop");
  REQUIRE(events.ok());
  REQUIRE(events->items.size() == 1);
  CHECK(events->items[0]["metadata"]["name"] != first_name);
  CHECK(events->items[0]["count"] == 1);
  CHECK_FALSE(events->items[0]["source"].contains("host"));
}
