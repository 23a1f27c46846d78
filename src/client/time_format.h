// Timestamps as the Kubernetes API writes them: metav1.Time ("2006-01-02T15:04:05Z") and
// metav1.MicroTime ("2006-01-02T15:04:05.000000Z"), always UTC.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <string>

namespace orch::client {

inline std::string FormatTime(std::chrono::system_clock::time_point t, bool micro = false) {
  auto since_epoch = t.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  std::time_t tt = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (micro) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds);
    out += fmt::format(".{:06}", us.count());
  }
  return out + "Z";
}

inline std::string NowTime() {
  return FormatTime(std::chrono::system_clock::now());
}
inline std::string NowMicroTime() {
  return FormatTime(std::chrono::system_clock::now(), true);
}

}  // namespace orch::client
