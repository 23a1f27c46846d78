// The event recorder on the fake API client: the Event it writes, and repeats folded into count.
#include "orch/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
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

TEST_CASE("A full queue logs its drops once per interval, with the count") {
  // The recorder's log lines go to stderr: catch them in a file.
  char path[] = "/tmp/events_test_log.XXXXXX";
  int log_fd = mkstemp(path);
  REQUIRE(log_fd >= 0);
  int saved_stderr = dup(STDERR_FILENO);
  REQUIRE(dup2(log_fd, STDERR_FILENO) >= 0);

  // Each create waits for a go from the test, so the recorder writes one event at a time.
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0, allowed = 0;
  bool open = false;
  orch::testing::FakeApiClient fake;
  fake.SetErrorHook([&](const orch::testing::Action& a) {
    if (a.verb != "create") return orch::Status::Ok();
    std::unique_lock lock(mu);
    int me = ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return open || allowed >= me; });
    return orch::Status::Ok();
  });
  auto wait_entered = [&](int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered >= n; });
  };
  auto recorder = orch::EventRecorder::Create(fake, "default-scheduler");
  auto record = [&](int i) {
    recorder->Record(Pod(), "Warning", "FailedScheduling", fmt::format("attempt {}", i));
  };
  int n = 0;
  record(n++);
  REQUIRE(wait_entered(1));  // the writer holds one, the queue is empty
  for (int i = 0; i < 1000; ++i) record(n++);
  // The queue is full: every new event is dropped, while the writer frees one place at a time.
  const int kRounds = 100;
  for (int round = 1; round <= kRounds; ++round) {
    record(n++);  // dropped
    {
      std::lock_guard lock(mu);
      allowed = round;
      cv.notify_all();
    }
    REQUIRE(wait_entered(round + 1));  // one more left the queue
    record(n++);                       // takes its place
  }
  {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  recorder->Stop();

  fflush(stderr);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  close(log_fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);

  // Every drop is counted, in a few lines rather than one (or two) per dropped event.
  std::string log = text.str();
  std::regex line("event queue full: dropped ([0-9]+) event");
  int lines = 0, dropped = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    ++lines;
    dropped += std::stoi((*it)[1]);
  }
  INFO(log);
  CHECK(dropped == kRounds);
  CHECK(lines >= 1);
  // Once per 10 s and once at the end (the loop takes well under a second); before, every drop
  // logged a line and the next write another.
  CHECK(lines < kRounds / 4);
  auto events = fake.List(orch::resources::kEvents, "shop");
  REQUIRE(events.ok());
  CHECK(events->items.size() == static_cast<size_t>(n - kRounds));
}
