// The fake API client that other unit tests build on: versions, conflicts, status, generation,
// finalizers, graceful pod deletion, binding, selectors, paging, watches and compaction.
#include "fake_api_client.h"

#include <catch2/catch.hpp>
#include <condition_variable>

namespace {

using json = nlohmann::json;
using orch::StatusCode;
using orch::testing::FakeApiClient;
namespace resources = orch::resources;

json Deployment(const std::string& name, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
          {"spec", {{"replicas", replicas}}},
          {"status", {{"replicas", 0}}}};
}

std::string Rv(const json& o) {
  return o["metadata"]["resourceVersion"];
}

}  // namespace

TEST_CASE("Fake: create, update, conflicts, status and generation") {
  FakeApiClient fake;
  auto created = fake.Create(resources::kDeployments, "ns", Deployment("web", 1));
  REQUIRE(created.ok());
  CHECK(Rv(*created) == "2");  // the empty store is at 1, as etcd is
  CHECK((*created)["metadata"]["namespace"] == "ns");
  CHECK((*created)["metadata"]["generation"] == 1);
  CHECK(!(*created)["metadata"]["uid"].get<std::string>().empty());
  CHECK(fake.Create(resources::kDeployments, "ns", Deployment("web", 1)).status().code() ==
        StatusCode::kAlreadyExists);
  CHECK(fake.Create(resources::kDeployments, "", Deployment("web", 1)).status().code() ==
        StatusCode::kInvalidArgument);

  json next = *created;
  next["spec"]["replicas"] = 3;
  next["status"]["replicas"] = 99;  // ignored: status has its own subresource
  auto updated = fake.Update(resources::kDeployments, "ns", next);
  REQUIRE(updated.ok());
  CHECK(Rv(*updated) == "3");
  CHECK((*updated)["metadata"]["generation"] == 2);
  CHECK((*updated)["status"]["replicas"] == 0);
  CHECK(fake.Update(resources::kDeployments, "ns", next).status().code() == StatusCode::kConflict);

  json status = *updated;
  status["status"]["replicas"] = 3;
  status["spec"]["replicas"] = 7;  // ignored through the status subresource
  auto with_status = fake.Update(resources::kDeployments, "ns", status, "status");
  REQUIRE(with_status.ok());
  CHECK((*with_status)["status"]["replicas"] == 3);
  CHECK((*with_status)["spec"]["replicas"] == 3);
  CHECK((*with_status)["metadata"]["generation"] == 2);

  // A write that changes nothing keeps the version.
  auto same = fake.Update(resources::kDeployments, "ns", *with_status);
  REQUIRE(same.ok());
  CHECK(Rv(*same) == Rv(*with_status));
  CHECK(fake.CurrentResourceVersion() == 4);

  json generated = Deployment("", 1);
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "web-";
  auto gen = fake.Create(resources::kDeployments, "ns", generated);
  REQUIRE(gen.ok());
  CHECK((*gen)["metadata"]["name"].get<std::string>().size() == 9);
}

TEST_CASE("Fake: patches") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kDeployments, "ns", Deployment("web", 1)).ok());
  auto merged = fake.Patch(resources::kDeployments, "ns", "web", orch::PatchType::kMerge,
                           R"({"spec":{"replicas":2}})");
  REQUIRE(merged.ok());
  CHECK((*merged)["spec"]["replicas"] == 2);
  auto json_patch = fake.Patch(resources::kDeployments, "ns", "web", orch::PatchType::kJson,
                               R"([{"op":"replace","path":"/spec/replicas","value":4}])");
  REQUIRE(json_patch.ok());
  CHECK((*json_patch)["spec"]["replicas"] == 4);
  auto status = fake.Patch(resources::kDeployments, "ns", "web", orch::PatchType::kMerge,
                           R"({"status":{"replicas":4}})", "status");
  REQUIRE(status.ok());
  CHECK((*status)["status"]["replicas"] == 4);
  CHECK(fake.Patch(resources::kDeployments, "ns", "web", orch::PatchType::kMerge,
                   R"({"metadata":{"resourceVersion":"1"},"spec":{"replicas":5}})")
            .status()
            .code() == StatusCode::kConflict);
  CHECK(fake.Patch(resources::kDeployments, "ns", "web", orch::PatchType::kStrategicMerge, "{}")
            .status()
            .code() == StatusCode::kInvalidArgument);
  CHECK(fake.Patch(resources::kDeployments, "ns", "nope", orch::PatchType::kMerge, "{}")
            .status()
            .code() == StatusCode::kNotFound);
}

TEST_CASE("Fake: deletion with finalizers, graceful pods, binding and eviction") {
  FakeApiClient fake;
  json held = Deployment("held", 1);
  held["metadata"]["finalizers"] = {"example.com/x"};
  REQUIRE(fake.Create(resources::kDeployments, "ns", held).ok());
  auto pending = fake.Delete(resources::kDeployments, "ns", "held");
  REQUIRE(pending.ok());
  REQUIRE(pending->is_object());
  CHECK((*pending)["metadata"].contains("deletionTimestamp"));
  REQUIRE(fake.Patch(resources::kDeployments, "ns", "held", orch::PatchType::kMerge,
                     R"({"metadata":{"finalizers":null}})")
              .ok());
  CHECK(fake.Get(resources::kDeployments, "ns", "held").status().code() == StatusCode::kNotFound);

  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "p"}, {"namespace", "ns"}}},
              {"spec", {{"containers", json::array()}}}};
  REQUIRE(fake.Create(resources::kPods, "ns", pod).ok());
  json binding = {{"target", {{"kind", "Node"}, {"name", "n1"}}}};
  REQUIRE(fake.Post(resources::kPods, "ns", "p", "binding", binding).ok());
  CHECK(fake.Post(resources::kPods, "ns", "p", "binding", binding).status().code() ==
        StatusCode::kConflict);
  auto terminating = fake.Delete(resources::kPods, "ns", "p");
  REQUIRE(terminating.ok());
  CHECK((*terminating)["metadata"]["deletionGracePeriodSeconds"] == 30);
  orch::DeleteOptions now;
  now.grace_period_seconds = 0;
  auto gone = fake.Delete(resources::kPods, "ns", "p", now);
  REQUIRE(gone.ok());
  CHECK(gone->is_null());

  REQUIRE(fake.Create(resources::kPods, "ns", pod).ok());  // unbound: goes at once
  REQUIRE(fake.Post(resources::kPods, "ns", "p", "eviction", json::object()).ok());
  CHECK(fake.Get(resources::kPods, "ns", "p").status().code() == StatusCode::kNotFound);
}

TEST_CASE("Fake: selectors and paging") {
  FakeApiClient fake;
  for (int i = 0; i < 5; ++i) {
    json d = Deployment(fmt::format("d{}", i), i);
    d["metadata"]["labels"]["parity"] = i % 2 ? "odd" : "even";
    REQUIRE(fake.Create(resources::kDeployments, i < 4 ? "a" : "b", d).ok());
  }
  orch::ListOptions options;
  options.label_selector = "parity=even";
  auto even = fake.List(resources::kDeployments, "", options);
  REQUIRE(even.ok());
  CHECK(even->items.size() == 3);
  options.label_selector = "parity!=even,app";
  CHECK(fake.List(resources::kDeployments, "", options)->items.size() == 2);
  options.label_selector = "";
  options.field_selector = "spec.replicas=2";
  CHECK(fake.List(resources::kDeployments, "", options)->items.size() == 1);
  options.field_selector = "metadata.namespace=b";
  CHECK(fake.List(resources::kDeployments, "", options)->items.size() == 1);

  orch::ListOptions paged;
  paged.limit = 2;
  std::vector<size_t> sizes;
  do {
    auto page = fake.List(resources::kDeployments, "a", paged);
    REQUIRE(page.ok());
    CHECK(page->resource_version == "6");
    sizes.push_back(page->items.size());
    paged.continue_token = page->continue_token;
  } while (!paged.continue_token.empty());
  CHECK(sizes == std::vector<size_t>{2, 2});
}

TEST_CASE("Fake: watches resume from a version and end with kCompacted when too old") {
  FakeApiClient fake;
  REQUIRE(fake.Create(resources::kDeployments, "ns", Deployment("a", 1)).ok());  // rv 2
  REQUIRE(fake.Create(resources::kDeployments, "ns", Deployment("b", 1)).ok());  // rv 3

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;
  std::optional<orch::Status> end;
  orch::WatchHandler handler;
  handler.on_event = [&](orch::WatchEvent e) {
    std::lock_guard lock(mu);
    seen.push_back(std::to_string(static_cast<int>(e.type)) + " " +
                   e.object["metadata"].value("name", ""));
  };
  handler.on_end = [&](orch::Status s) {
    std::lock_guard lock(mu);
    end = s;
    cv.notify_all();
  };
  orch::WatchOptions from_a;
  from_a.resource_version = "2";
  auto watch = fake.StartWatch(resources::kDeployments, "ns", from_a, handler);
  REQUIRE(watch.ok());
  REQUIRE(fake.Delete(resources::kDeployments, "ns", "a").ok());
  REQUIRE(fake.WaitForDelivery());
  {
    std::lock_guard lock(mu);
    CHECK(seen == std::vector<std::string>{"0 b", "2 a"});
  }
  (*watch)->Stop();
  CHECK(fake.WatchCount() == 0);

  fake.Compact();
  auto too_old = fake.StartWatch(resources::kDeployments, "ns", from_a, handler);
  REQUIRE(too_old.ok());
  std::unique_lock lock(mu);
  cv.wait_for(lock, std::chrono::seconds(10), [&] { return end.has_value(); });
  REQUIRE(end.has_value());
  CHECK(end->code() == StatusCode::kCompacted);
}
