// The node agent's restart back-off: 10 s doubling to 5 min, counted from the container's end,
// forgotten after 10 min of quiet.
#include <catch2/catch.hpp>

#include "backoff.h"

using namespace orch::agent;
using namespace std::chrono_literals;

TEST_CASE("back-off doubles up to its maximum") {
  Backoff b(10s, 300s);
  auto t0 = Backoff::Clock::time_point() + 1000h;
  CHECK_FALSE(b.InBackoff("k", t0, t0));  // unknown: the first restart is at once
  CHECK(b.Delay("k", t0) == 0s);
  b.Next("k", t0);
  CHECK(b.Delay("k", t0) == 10s);
  CHECK(b.InBackoff("k", t0, t0 + 9s));
  CHECK_FALSE(b.InBackoff("k", t0, t0 + 10s));
  CHECK(b.ReadyAt("k", t0, t0) == t0 + 10s);
  std::vector<int> delays;
  auto t = t0;
  for (int i = 0; i < 7; ++i) {
    t += 1s;
    b.Next("k", t);
    delays.push_back(static_cast<int>(
        std::chrono::duration_cast<std::chrono::seconds>(b.Delay("k", t)).count()));
  }
  CHECK(delays == std::vector<int>{20, 40, 80, 160, 300, 300, 300});
}

TEST_CASE("back-off remaining time, expiry and reset") {
  Backoff b(10s, 300s);
  auto t0 = Backoff::Clock::time_point() + 1000h;
  b.Next("pod/a", t0);
  CHECK(b.Remaining("pod/a", t0 + 4s) == 6s);
  CHECK(b.Remaining("pod/a", t0 + 11s) == 0s);
  // Ten quiet minutes (twice the maximum) and it starts over.
  b.Next("pod/a", t0 + 1s);
  CHECK(b.Delay("pod/a", t0 + 2s) == 20s);
  CHECK(b.Delay("pod/a", t0 + 1s + 601s) == 0s);
  b.Next("pod/a", t0 + 1s + 601s);
  CHECK(b.Delay("pod/a", t0 + 1s + 601s) == 10s);
  b.Next("pod/b", t0);
  b.Next("other/c", t0);
  b.ResetPrefix("pod/");
  CHECK(b.Delay("pod/a", t0) == 0s);
  CHECK(b.Delay("pod/b", t0) == 0s);
  CHECK(b.Delay("other/c", t0) == 10s);
  b.Reset("other/c");
  CHECK(b.Delay("other/c", t0) == 0s);
}
