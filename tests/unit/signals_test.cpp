// Stop signals: blocked signals stay pending until WaitForStopSignal takes them.
#include "orch/signals.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <string>

TEST_CASE("A blocked SIGTERM is taken by WaitForStopSignal") {
  REQUIRE(orch::BlockStopSignals().ok());
  orch::RequestStop();  // SIGTERM to this process: pending, not fatal, because it is blocked
  CHECK(orch::WaitForStopSignal() == SIGTERM);
  ::raise(SIGINT);
  CHECK(orch::WaitForStopSignal() == SIGINT);
  CHECK(std::string(orch::SignalName(SIGTERM)) == "SIGTERM");
}
