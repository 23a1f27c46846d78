// The in-process API client against a real API server on a temporary SQLite store: every verb,
// error mapping, and watches (order, resume, stop from inside a callback).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "orch/apiserver.h"
#include "orch/store.h"
#include "test_api_server.h"

namespace orch {
namespace {

using nlohmann::json;

// A server on a fresh data dir, torn down at scope exit.
struct TestServer : testing::TestApiServer {
  TestServer() : TestApiServer("orch-inproc-") {}
};

json ConfigMap(const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", {{"app", "x"}}}}},
          {"data", {{"k", value}}}};
}

// Collects watch events; tests wait for a count.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> events;
  std::optional<Status> ended;

  WatchHandler Handler() {
    return {[this](WatchEvent e) {
              std::lock_guard lock(mu);
              events.push_back(std::move(e));
              cv.notify_all();
            },
            [this](Status s) {
              std::lock_guard lock(mu);
              ended = s;
              cv.notify_all();
            }};
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return events.size() >= n; });
  }
  bool WaitEnd() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return ended.has_value(); });
  }
};

TEST_CASE("in-process client: verbs and errors") {
  TestServer ts;
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  const ResourceRef& cms = resources::kConfigMaps;

  auto created = client->Create(cms, "default", ConfigMap("a", "1"));
  REQUIRE(created.ok());
  CHECK((*created)["metadata"]["uid"].get<std::string>().size() > 0);
  CHECK((*created)["metadata"]["managedFields"][0]["manager"] == "tester");

  auto dup = client->Create(cms, "default", ConfigMap("a", "1"));
  CHECK(dup.status().code() == StatusCode::kAlreadyExists);
  CHECK(client->Get(cms, "default", "missing").status().code() == StatusCode::kNotFound);
  auto invalid = client->Create(cms, "default", ConfigMap("Bad_Name", "1"));
  CHECK(invalid.status().code() == StatusCode::kInvalidArgument);
  CHECK(invalid.status().message().find("Bad_Name") != std::string::npos);

  json stale = *created;
  stale["data"]["k"] = "2";
  auto updated = client->Update(cms, "default", stale);
  REQUIRE(updated.ok());
  CHECK((*updated)["data"]["k"] == "2");
  stale["data"]["k"] = "3";  // still carries the first resourceVersion
  CHECK(client->Update(cms, "default", stale).status().code() == StatusCode::kConflict);

  auto patched = client->Patch(cms, "default", "a", PatchType::kMerge, R"({"data":{"m":"1"}})");
  REQUIRE(patched.ok());
  CHECK((*patched)["data"]["m"] == "1");
  patched = client->Patch(cms, "default", "a", PatchType::kJson,
                          R"([{"op":"replace","path":"/data/m","value":"2"}])");
  REQUIRE(patched.ok());
  CHECK((*patched)["data"]["m"] == "2");
  patched = client->Patch(cms, "default", "a", PatchType::kStrategicMerge, R"({"data":{"s":"1"}})");
  REQUIRE(patched.ok());
  CHECK((*patched)["data"]["s"] == "1");
  patched = client->Patch(cms, "default", "b", PatchType::kApply, ConfigMap("b", "applied").dump());
  REQUIRE(patched.ok());
  CHECK((*patched)["data"]["k"] == "applied");

  for (int i = 0; i < 5; ++i)
    REQUIRE(client->Create(cms, "default", ConfigMap(fmt::format("p{}", i), "v")).ok());
  // Pages of 3 with a selector: a, b and p0..p4 are 7 objects in 3 pages.
  ListOptions page;
  page.limit = 3;
  page.label_selector = "app=x";
  std::vector<size_t> sizes;
  do {
    auto listed = client->List(cms, "default", page);
    REQUIRE(listed.ok());
    sizes.push_back(listed->items.size());
    page.continue_token = listed->continue_token;
  } while (!page.continue_token.empty() && sizes.size() < 10);
  CHECK(sizes == std::vector<size_t>{3, 3, 1});

  auto gone = client->Delete(cms, "default", "a");
  REQUIRE(gone.ok());
  CHECK(gone->is_null());
  CHECK(client->Get(cms, "default", "a").status().code() == StatusCode::kNotFound);
  CHECK(client->Delete(cms, "default", "a").status().code() == StatusCode::kNotFound);

  // An object held by a finalizer is returned with its deletionTimestamp.
  json held = ConfigMap("held", "1");
  held["metadata"]["finalizers"] = {"example.com/hold"};
  REQUIRE(client->Create(cms, "default", held).ok());
  auto pending = client->Delete(cms, "default", "held");
  REQUIRE(pending.ok());
  CHECK((*pending)["metadata"].contains("deletionTimestamp"));
}

TEST_CASE("in-process client: watches") {
  TestServer ts;
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  const ResourceRef& cms = resources::kConfigMaps;

  auto base = client->List(cms, "default");
  REQUIRE(base.ok());
  Recorder live;
  WatchOptions from_list;
  from_list.resource_version = base->resource_version;
  auto watch = client->StartWatch(cms, "default", from_list, live.Handler());
  REQUIRE(watch.ok());

  auto created = client->Create(cms, "default", ConfigMap("w", "1"));
  REQUIRE(created.ok());
  REQUIRE(client->Patch(cms, "default", "w", PatchType::kMerge, R"({"data":{"k":"2"}})").ok());
  REQUIRE(client->Delete(cms, "default", "w").ok());
  REQUIRE(live.WaitFor(3));
  {
    std::lock_guard lock(live.mu);
    CHECK(live.events[0].type == WatchEvent::Type::kAdded);
    CHECK(live.events[1].type == WatchEvent::Type::kModified);
    CHECK(live.events[1].Object()["data"]["k"] == "2");
    CHECK(live.events[2].type == WatchEvent::Type::kDeleted);
  }

  // Resuming from the create's resourceVersion replays what came after it.
  Recorder resumed;
  WatchOptions from_create;
  from_create.resource_version = (*created)["metadata"]["resourceVersion"];
  auto replay = client->StartWatch(cms, "default", from_create, resumed.Handler());
  REQUIRE(replay.ok());
  REQUIRE(resumed.WaitFor(2));
  {
    std::lock_guard lock(resumed.mu);
    CHECK(resumed.events[0].type == WatchEvent::Type::kModified);
    CHECK(resumed.events[1].type == WatchEvent::Type::kDeleted);
  }

  // A watch stopped from inside its own callback receives nothing more, and does not deadlock.
  std::unique_ptr<Watch> self_stopping;
  std::mutex mu;
  int seen = 0;
  WatchHandler stopper{[&](WatchEvent) {
                         std::lock_guard lock(mu);
                         ++seen;
                         self_stopping->Stop();
                       },
                       nullptr};
  auto started = client->StartWatch(cms, "default", {}, stopper);
  REQUIRE(started.ok());
  self_stopping = std::move(*started);
  REQUIRE(client->Create(cms, "default", ConfigMap("s1", "1")).ok());
  REQUIRE(client->Create(cms, "default", ConfigMap("s2", "1")).ok());
  REQUIRE(live.WaitFor(5));  // both creates have been delivered to the other watch
  {
    std::lock_guard lock(mu);
    CHECK(seen == 1);
  }

  // A bad selector ends the watch with the API's error.
  Recorder bad;
  WatchOptions bad_selector;
  bad_selector.label_selector = "a in (";
  auto refused = client->StartWatch(cms, "default", bad_selector, bad.Handler());
  REQUIRE(refused.ok());
  REQUIRE(bad.WaitEnd());
  CHECK(bad.ended->code() == StatusCode::kInvalidArgument);

  // The server's timeout ends a watch cleanly.
  Recorder timed;
  WatchOptions short_watch;
  short_watch.timeout_seconds = 1;
  auto expiring = client->StartWatch(cms, "default", short_watch, timed.Handler());
  REQUIRE(expiring.ok());
  REQUIRE(timed.WaitEnd());
  CHECK(timed.ended->ok());
}

TEST_CASE("in-process client: watchers share the server's decoded object") {
  TestServer ts;
  auto client = ts.server->NewClient("tester", {"system:masters"}, "tester");
  auto other = ts.server->NewClient("other", {"system:masters"}, "other");
  const ResourceRef& cms = resources::kConfigMaps;
  auto base = client->List(cms, "default");
  REQUIRE(base.ok());
  WatchOptions from_list;
  from_list.resource_version = base->resource_version;
  Recorder first, second;
  auto w1 = client->StartWatch(cms, "default", from_list, first.Handler());
  auto w2 = other->StartWatch(cms, "default", from_list, second.Handler());
  REQUIRE(w1.ok());
  REQUIRE(w2.ok());

  auto created = client->Create(cms, "default", ConfigMap("shared", "1"));
  REQUIRE(created.ok());
  REQUIRE(first.WaitFor(1));
  REQUIRE(second.WaitFor(1));
  std::lock_guard lock1(first.mu);
  std::lock_guard lock2(second.mu);
  const WatchEvent& a = first.events[0];
  const WatchEvent& b = second.events[0];
  REQUIRE(a.shared != nullptr);
  // One object for both watchers, no text to parse, and the same content as the write's answer.
  CHECK(a.shared == b.shared);
  CHECK(a.object.is_null());
  CHECK(&a.Object() == a.shared.get());
  CHECK(a.Object() == *created);

  // A watch of another version than the stored one gets its own converted object.
  const ResourceRef hpa_v1{"autoscaling", "v1", "horizontalpodautoscalers"};
  const ResourceRef hpa_v2{"autoscaling", "v2", "horizontalpodautoscalers"};
  Recorder v1, v2;
  auto hpas = client->List(hpa_v1, "default");
  REQUIRE(hpas.ok());
  WatchOptions from_hpas;
  from_hpas.resource_version = hpas->resource_version;
  auto wv1 = client->StartWatch(hpa_v1, "default", from_hpas, v1.Handler());
  auto wv2 = other->StartWatch(hpa_v2, "default", from_hpas, v2.Handler());
  REQUIRE(wv1.ok());
  REQUIRE(wv2.ok());
  json hpa = {
      {"apiVersion", "autoscaling/v1"},
      {"kind", "HorizontalPodAutoscaler"},
      {"metadata", {{"name", "h"}}},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "d"}}},
        {"minReplicas", 1},
        {"maxReplicas", 3},
        {"targetCPUUtilizationPercentage", 50}}}};
  REQUIRE(client->Create(hpa_v1, "default", hpa).ok());
  REQUIRE(v1.WaitFor(1));
  REQUIRE(v2.WaitFor(1));
  std::lock_guard lock3(v1.mu);
  std::lock_guard lock4(v2.mu);
  CHECK(v1.events[0].Object()["apiVersion"] == "autoscaling/v1");
  CHECK(v1.events[0].Object()["spec"]["targetCPUUtilizationPercentage"] == 50);
  CHECK(v2.events[0].Object()["apiVersion"] == "autoscaling/v2");
  CHECK(v1.events[0].shared != v2.events[0].shared);
}

}  // namespace
}  // namespace orch
