// The machine's load average, printed by the benchmarks beside their numbers: on a shared machine
// it says how far the run's timings are the machine's rather than orch's.
#pragma once

#include <fstream>
#include <string>

namespace orch::testing {

// The 1, 5 and 15 minute load averages from /proc/loadavg ("2.37 2.15 2.19"), or "unknown".
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

}  // namespace orch::testing
