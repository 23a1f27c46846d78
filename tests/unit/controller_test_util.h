// Test fixtures for the workload controllers: the fake API client with a real informer factory,
// an event recorder that keeps what it is told, a settable clock, and polling helpers.
#pragma once

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller_util.h"
#include "fake_api_client.h"
#include "orch/controllers.h"
#include "orch/events.h"
#include "orch/informer.h"
#include "replicaset_controller.h"

namespace orch::testing {

using json = nlohmann::json;

// Keeps every event, for assertions on reasons and messages.
class RecordingEvents : public EventRecorder {
 public:
  struct Event {
    std::string object;  // "Kind/name"
    std::string type, reason, message;
  };

  void Record(const json& involved, const std::string& type, const std::string& reason,
              const std::string& message) override {
    std::lock_guard lock(mu_);
    events_.push_back(
        {involved.value("kind", "") + "/" + ctrl::NameOf(involved), type, reason, message});
  }
  void Stop() override {}

  std::vector<Event> Events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<Event> WithReason(const std::string& reason) const {
    std::vector<Event> out;
    for (const Event& e : Events()) {
      if (e.reason == reason) out.push_back(e);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

inline ObjectPtr Ptr(json object) {
  return std::make_shared<const json>(std::move(object));
}

// A PodTemplateSpec with `labels` and one container "c" running `image`.
inline json PodTemplate(json labels, const std::string& image) {
  return {{"metadata", {{"labels", std::move(labels)}}},
          {"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}};
}

// A clock the test moves by hand.
class ManualClock {
 public:
  ManualClock() : now_(std::chrono::system_clock::now()) {}
  ctrl::TimePoint Now() const {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(std::chrono::seconds by) {
    std::lock_guard lock(mu_);
    now_ += by;
  }
  ctrl::NowFunc Func() {
    return [this] { return Now(); };
  }

 private:
  mutable std::mutex mu_;
  ctrl::TimePoint now_;
};

// Polls `done` every 5 ms for up to 20 s; true once it holds.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// The fake API, informers over it and a controller context; controllers added with Add are
// started at once and stopped (before the informers) when the fixture goes.
class ControllerFixture {
 public:
  ControllerFixture()
      : informers_(InformerFactory::Create(api)),
        context(ControllerContext{api, *informers_, events}) {
    // The fake lists an empty store at resourceVersion "0", which a watch reads as "from now":
    // a write between an informer's list and its watch would be lost. One write first.
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}};
    REQUIRE(api.Create(resources::kNamespaces, "", ns).ok());
    informers_->Start();
  }
  ~ControllerFixture() {
    for (auto& c : controllers_) c->Stop();
    informers_->Stop();
  }

  void Add(std::unique_ptr<Component> controller) {
    REQUIRE(controller->Start().ok());
    controllers_.push_back(std::move(controller));
  }
  // The ReplicaSet controller on the fixture's clock, resyncing every `resync`.
  void AddReplicaSetController(std::chrono::milliseconds resync = std::chrono::hours(1)) {
    ReplicaSetControllerOptions options;
    options.now = clock.Func();
    options.resync_period = resync;
    Add(NewReplicaController(context, ReplicaKind::ReplicaSet(), options));
  }

  std::vector<json> List(const ResourceRef& ref, const std::string& ns = "default",
                         const std::string& label_selector = "") {
    ListOptions options;
    options.label_selector = label_selector;
    auto list = api.List(ref, ns, options);
    REQUIRE(list.ok());
    return list->items;
  }
  json Get(const ResourceRef& ref, const std::string& name, const std::string& ns = "default") {
    auto got = api.Get(ref, ns, name);
    REQUIRE(got.ok());
    return *got;
  }
  std::vector<json> Pods(const std::string& label_selector = "") {
    return List(resources::kPods, "default", label_selector);
  }
  // Active pods (not being deleted).
  size_t ActivePods(const std::string& label_selector = "") {
    size_t n = 0;
    for (const json& p : Pods(label_selector)) n += ctrl::IsPodActive(p) ? 1 : 0;
    return n;
  }

  // Writes `patch` (a merge patch) to the object, retrying on conflicts.
  void Patch(const ResourceRef& ref, const std::string& name, const json& patch,
             const std::string& subresource = "") {
    auto result = api.Patch(ref, "default", name, PatchType::kMerge, patch.dump(), subresource);
    REQUIRE(result.ok());
  }

  // What a kubelet reports for a running pod: phase Running and Ready (or not). False when the
  // pod is gone (a controller may delete it meanwhile).
  bool SetPodRunning(const std::string& name, bool ready, ctrl::TimePoint ready_since) {
    json status = {
        {"phase", "Running"},
        {"conditions", json::array({{{"type", "Ready"},
                                     {"status", ready ? "True" : "False"},
                                     {"lastTransitionTime", orch::FormatTime(ready_since)}}})}};
    json patch = {{"status", status}};
    auto result =
        api.Patch(resources::kPods, "default", name, PatchType::kMerge, patch.dump(), "status");
    if (!result.ok()) REQUIRE(result.status().code() == StatusCode::kNotFound);
    return result.ok();
  }
  // Marks every active, not yet ready pod matching `label_selector` ready; returns how many.
  int MakePodsReady(const std::string& label_selector, ctrl::TimePoint since) {
    int n = 0;
    for (const json& p : Pods(label_selector)) {
      if (!ctrl::IsPodActive(p) || ctrl::IsPodReady(p)) continue;
      if (SetPodRunning(ctrl::NameOf(p), true, since)) ++n;
    }
    return n;
  }

  FakeApiClient api;
  RecordingEvents events;
  ManualClock clock;  // what the controllers added with the fixture's helpers read as now

 private:
  std::unique_ptr<InformerFactory> informers_;

 public:
  ControllerContext context;

 private:
  std::vector<std::unique_ptr<Component>> controllers_;
};

}  // namespace orch::testing
