// WorkQueue and WorkerPool: deduplication, one worker per key, requeue while processing, delayed
// and rate-limited adds, shutdown.
#include "orch/work_queue.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("A key waiting in the queue is queued once") {
  orch::WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  CHECK(q.Length() == 2);
  CHECK(q.Get() == "a");
  CHECK(q.Get() == "b");
  CHECK(q.Length() == 0);
}

TEST_CASE("A key added while it is processed is handed out again only after Done") {
  orch::WorkQueue q;
  q.Add("a");
  auto key = q.Get();
  REQUIRE(key == "a");
  q.Add("a");
  q.Add("a");
  CHECK(q.Length() == 0);  // not to a second worker while the first holds it
  q.Done("a");
  CHECK(q.Length() == 1);
  CHECK(q.Get() == "a");
  q.Done("a");
  CHECK(q.Length() == 0);
}

TEST_CASE("Delayed adds arrive, and the earliest delay of a key wins") {
  orch::WorkQueue q;
  q.AddAfter("late", std::chrono::hours(1));
  q.AddAfter("a", std::chrono::hours(1));
  q.AddAfter("a", 1ms);
  CHECK(q.Length() == 0);
  CHECK(q.Get() == "a");  // would block for an hour if the later time had been kept
  q.Done("a");
  CHECK(q.Length() == 0);
  q.AddAfter("b", 0ms);  // no delay: at once
  CHECK(q.Length() == 1);
}

TEST_CASE("Rate-limited adds are delayed until Forget resets the back-off") {
  orch::WorkQueue immediate(0ms, 0ms);
  immediate.AddRateLimited("a");
  CHECK(immediate.Length() == 1);

  orch::WorkQueue slow(std::chrono::hours(1), std::chrono::hours(2));
  slow.AddRateLimited("a");
  CHECK(slow.Length() == 0);  // waits out its back-off
  slow.Forget("a");
  slow.Add("b");
  CHECK(slow.Get() == "b");
}

TEST_CASE("ShutDown wakes a waiting Get and later adds are ignored") {
  orch::WorkQueue q;
  std::optional<std::string> got = "unset";
  std::thread waiter([&] { got = q.Get(); });
  q.ShutDown();
  waiter.join();
  CHECK_FALSE(got.has_value());
  q.Add("a");
  CHECK(q.Length() == 0);
  CHECK_FALSE(q.Get().has_value());
}

TEST_CASE("WorkerPool retries failures and never runs one key on two workers") {
  orch::WorkQueue q(1ms, 10ms);
  std::mutex mu;
  std::map<std::string, int> calls;      // guarded by mu
  std::map<std::string, int> in_flight;  // guarded by mu
  std::atomic<bool> overlap{false};
  std::atomic<int> done{0};
  {
    orch::WorkerPool pool("test", q, 4, [&](const std::string& key) {
      int n;
      {
        std::lock_guard lock(mu);
        if (in_flight[key]++ > 0) overlap = true;
        n = ++calls[key];
      }
      std::this_thread::sleep_for(1ms);
      {
        std::lock_guard lock(mu);
        --in_flight[key];
      }
      // "flaky" fails twice before it succeeds.
      if (key == "flaky" && n < 3) return orch::Unavailable("not yet");
      ++done;
      return orch::Status::Ok();
    });
    q.Add("flaky");
    for (int i = 0; i < 200; ++i) q.Add("hot");
    while (true) {
      {
        std::lock_guard lock(mu);
        if (calls["flaky"] >= 3 && in_flight["hot"] == 0 && q.Length() == 0) break;
      }
      std::this_thread::sleep_for(1ms);
    }
  }  // the pool shuts the queue down and joins
  CHECK_FALSE(overlap);
  CHECK(calls["flaky"] == 3);
  CHECK(calls["hot"] >= 1);
  CHECK(calls["hot"] <= 200);
  CHECK_FALSE(q.Get().has_value());
}
