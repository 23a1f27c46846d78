// The scheduler's queue (priority order, back-off, parking unschedulable pods until an event
// that can help) and cache (assumed pods, confirmation by the informer, expiry, nominations).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <thread>

#include "filters.h"
#include "scheduler_cache.h"
#include "scheduler_fixtures.h"
#include "scheduling_queue.h"

using namespace orch::sched;
using namespace orch::sched::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
  SchedulingQueue::Clock::time_point now = SchedulingQueue::Clock::now();
};

SchedulingQueue::Options Options(FakeClock& clock) {
  SchedulingQueue::Options o;
  o.initial_backoff = 1000ms;
  o.max_backoff = 10000ms;
  o.max_unschedulable = 5min;
  o.now = [&clock] { return clock.now; };
  return o;
}

PodPtr Pod(const std::string& name, int priority = 0) {
  json pod = MakePod(name);
  pod["spec"]["priority"] = priority;
  return ParsePod(pod);
}

std::string PopName(SchedulingQueue& queue) {
  auto item = queue.TryPop();
  return item ? item->pod->name : "";
}

}  // namespace

TEST_CASE("Ready pods come out by priority, then in arrival order") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("low-1", 1));
  queue.AddOrUpdate(Pod("high", 100));
  queue.AddOrUpdate(Pod("low-2", 1));
  queue.AddOrUpdate(Pod("mid", 50));
  CHECK(PopName(queue) == "high");
  CHECK(PopName(queue) == "mid");
  CHECK(PopName(queue) == "low-1");
  CHECK(PopName(queue) == "low-2");
  CHECK(PopName(queue) == "");
  CHECK(queue.counts().in_flight == 4);
}

TEST_CASE("An unschedulable pod waits for an event that can help, then for its back-off") {
  FakeClock clock;
  SchedulingQueue::Options options = Options(clock);
  options.pop_from_backoff = false;
  SchedulingQueue queue(options);
  queue.AddOrUpdate(Pod("p"));
  REQUIRE(PopName(queue) == "p");
  queue.Unschedulable("default/p", kPluginNodeResourcesFit);
  CHECK(queue.counts().unschedulable == 1);
  queue.MoveOnEvent(kPluginTaintToleration);  // cannot help
  CHECK(queue.counts().unschedulable == 1);
  queue.MoveOnEvent(kPluginNodeResourcesFit);
  CHECK(queue.counts().backoff == 1);  // the first back-off (1 s) is not over
  CHECK(PopName(queue) == "");
  clock.now += 1001ms;
  CHECK(PopName(queue) == "p");
}

TEST_CASE("With nothing ready, a pod backing off after being unschedulable comes out at once") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  for (const char* name : {"early", "late"}) {
    queue.AddOrUpdate(Pod(name));
    REQUIRE(PopName(queue) == name);
    queue.Unschedulable(fmt::format("default/{}", name), kPluginNodeUnschedulable);
    clock.now += 100ms;  // "late" backs off until 100 ms after "early"
  }
  queue.MoveOnEvent(kPluginNodeUnschedulable);
  CHECK(queue.counts().backoff == 2);
  // Ready pods still go first; then the back-off that ends first, long before it ends.
  queue.AddOrUpdate(Pod("ready"));
  CHECK(PopName(queue) == "ready");
  auto item = queue.TryPop();
  REQUIRE(item);
  CHECK(item->pod->name == "early");
  CHECK(item->attempts == 2);
  CHECK(PopName(queue) == "late");
  CHECK(queue.counts().backoff == 0);
}

TEST_CASE("A pod backing off after an error waits its back-off even with nothing ready") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("failed"));
  REQUIRE(PopName(queue) == "failed");
  queue.Backoff("default/failed");
  queue.Requeue(Pod("rejected"));  // a binding the API refused
  CHECK(queue.counts().backoff == 2);
  CHECK(PopName(queue) == "");
  clock.now += 1001ms;
  CHECK(PopName(queue) == "failed");
  CHECK(PopName(queue) == "rejected");
}

TEST_CASE("An event during an attempt sends the pod to back-off instead of parking it") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("p"));
  REQUIRE(PopName(queue) == "p");
  queue.MoveOnEvent(kPluginTaintToleration);
  queue.Unschedulable("default/p", kPluginNodeResourcesFit);
  CHECK(queue.counts().backoff == 1);
  clock.now += 1001ms;
  CHECK(PopName(queue) == "p");
}

TEST_CASE("Back-off doubles per attempt up to the maximum") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("p"));
  for (int attempt = 1; attempt <= 6; ++attempt) {
    REQUIRE(PopName(queue) == "p");
    queue.Backoff("default/p");
    auto expected = std::min(1000ms * (1 << (attempt - 1)), 10000ms);
    clock.now += expected - 1ms;
    CHECK(PopName(queue) == "");
    clock.now += 1ms;
  }
  CHECK(PopName(queue) == "p");
}

TEST_CASE("Updates: a spec change retries a parked pod, a status change does not") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  json pod = MakePod("p");
  queue.AddOrUpdate(ParsePod(pod));
  REQUIRE(PopName(queue) == "p");
  queue.Unschedulable("default/p", kPluginNodeAffinity);
  json status_only = pod;
  status_only["status"]["conditions"] = json::array({{{"type", "PodScheduled"}}});
  queue.AddOrUpdate(ParsePod(status_only));
  CHECK(queue.counts().unschedulable == 1);
  json relabelled = pod;
  LabelsOf(relabelled)["x"] = "y";
  queue.AddOrUpdate(ParsePod(relabelled));
  CHECK(queue.counts().unschedulable == 0);
  clock.now += 1001ms;
  auto item = queue.TryPop();
  REQUIRE(item);
  CHECK(item->pod->labels.Find("x") != nullptr);
  CHECK(item->attempts == 2);
}

TEST_CASE("Deleted pods leave the queue; Done forgets; Requeue comes back after a back-off") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("a"));
  queue.AddOrUpdate(Pod("b"));
  queue.Delete("default/a");
  CHECK(PopName(queue) == "b");
  queue.Done("default/b");
  CHECK(queue.counts().in_flight == 0);
  queue.Requeue(Pod("b"));
  CHECK(PopName(queue) == "");
  clock.now += 1001ms;
  CHECK(PopName(queue) == "b");
  queue.Delete("default/b");
  queue.Unschedulable("default/b", kAllPlugins);  // outcome of a deleted pod: ignored
  CHECK(queue.counts().unschedulable == 0);
}

TEST_CASE("Parked pods are retried after the maximum unschedulable time anyway") {
  FakeClock clock;
  SchedulingQueue queue(Options(clock));
  queue.AddOrUpdate(Pod("p"));
  REQUIRE(PopName(queue) == "p");
  queue.Unschedulable("default/p", kPluginNodeAffinity);
  clock.now += 4min;
  CHECK(PopName(queue) == "");
  clock.now += 61s;
  CHECK(PopName(queue) == "p");
}

TEST_CASE("Pop blocks until a pod arrives, and Close wakes it") {
  SchedulingQueue queue(SchedulingQueue::Options{});
  std::thread adder([&] {
    std::this_thread::sleep_for(20ms);
    queue.AddOrUpdate(Pod("late"));
  });
  auto item = queue.Pop();
  adder.join();
  REQUIRE(item);
  CHECK(item->pod->name == "late");
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    queue.Close();
  });
  CHECK_FALSE(queue.Pop());
  closer.join();
}

TEST_CASE("The cache counts assumed pods at once and swaps in the informer's copy") {
  SchedulerCache cache(30s);
  cache.UpsertNode(ParseNode(MakeNode("n1", "2")));
  PodPtr pod = ParsePod(MakePod("p", "1"));
  {
    auto lock = cache.Lock();
    cache.AssumeLocked(pod, "n1");
    ClusterState state = cache.StateLocked();
    REQUIRE(state.nodes.size() == 1);
    CHECK(state.nodes[0]->requested().milli_cpu == 1000);
  }
  CHECK(cache.IsAssumed(pod->CacheKey()));
  json bound = MakePod("p", "1");
  bound["spec"]["nodeName"] = "n1";
  cache.UpsertBoundPod(ParsePod(bound));
  CHECK_FALSE(cache.IsAssumed(pod->CacheKey()));
  auto lock = cache.Lock();
  CHECK(cache.StateLocked().nodes[0]->requested().milli_cpu == 1000);
  CHECK(cache.StateLocked().nodes[0]->pods().size() == 1);
}

TEST_CASE("The cache forgets failed bindings and expires unconfirmed ones") {
  SchedulerCache cache(30s);
  cache.UpsertNode(ParseNode(MakeNode("n1", "2")));
  PodPtr a = ParsePod(MakePod("a", "1"));
  PodPtr b = ParsePod(MakePod("b", "1"));
  {
    auto lock = cache.Lock();
    cache.AssumeLocked(a, "n1");
    cache.AssumeLocked(b, "n1");
  }
  cache.Forget(a->CacheKey());
  auto now = SchedulerCache::Clock::now();
  cache.FinishBinding(b->CacheKey(), now);
  CHECK(cache.CleanupExpired(now + 29s) == 0);
  CHECK(cache.CleanupExpired(now + 31s) == 1);
  auto lock = cache.Lock();
  CHECK(cache.StateLocked().nodes[0]->pods().empty());
  CHECK(cache.StateLocked().nodes[0]->requested().milli_cpu == 0);
}

TEST_CASE("Terminal pods hold nothing; a removed node leaves the state but keeps its pods") {
  SchedulerCache cache;
  cache.UpsertNode(ParseNode(MakeNode("n1")));
  json pod = MakePod("p", "1");
  pod["spec"]["nodeName"] = "n1";
  cache.UpsertBoundPod(ParsePod(pod));
  pod["status"]["phase"] = "Succeeded";
  cache.UpsertBoundPod(ParsePod(pod));
  {
    auto lock = cache.Lock();
    CHECK(cache.StateLocked().nodes[0]->pods().empty());
  }
  pod["status"]["phase"] = "Running";
  cache.UpsertBoundPod(ParsePod(pod));
  cache.RemoveNode("n1");
  {
    auto lock = cache.Lock();
    CHECK(cache.StateLocked().nodes.empty());
  }
  CHECK_FALSE(cache.UpsertNode(ParseNode(MakeNode("n1"))) == false);  // back: a change
  auto lock = cache.Lock();
  REQUIRE(cache.StateLocked().nodes.size() == 1);
  CHECK(cache.StateLocked().nodes[0]->pods().size() == 1);
}

TEST_CASE("Node updates that change nothing the scheduler reads are not changes") {
  SchedulerCache cache;
  json node = MakeNode("n1");
  CHECK(cache.UpsertNode(ParseNode(node)));
  node["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:00Z";
  CHECK_FALSE(cache.UpsertNode(ParseNode(node)));
  LabelsOf(node)["zone"] = "a";
  CHECK(cache.UpsertNode(ParseNode(node)));
}

TEST_CASE("Nominations: from the API, and ours until the API shows them") {
  SchedulerCache cache;
  cache.UpsertNode(ParseNode(MakeNode("n1")));
  json pod = MakePod("p", "1");
  pod["status"]["nominatedNodeName"] = "n1";
  cache.UpsertPendingPod(ParsePod(pod));
  {
    auto lock = cache.Lock();
    CHECK(cache.StateLocked().nominated->at("n1").size() == 1);
  }
  pod["status"].erase("nominatedNodeName");
  cache.UpsertPendingPod(ParsePod(pod));
  {
    auto lock = cache.Lock();
    CHECK(cache.StateLocked().nominated->empty());
    cache.NominateLocked(ParsePod(pod), "n1");
  }
  cache.UpsertPendingPod(ParsePod(pod));  // an older update without it: ours stays
  {
    auto lock = cache.Lock();
    CHECK(cache.StateLocked().nominated->count("n1") == 1);
  }
  cache.RemovePod(ParsePod(pod)->CacheKey());
  auto lock = cache.Lock();
  CHECK(cache.StateLocked().nominated->empty());
}
