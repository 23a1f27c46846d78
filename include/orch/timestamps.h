// Timestamps as the Kubernetes API writes them: metav1.Time ("2006-01-02T15:04:05Z") and
// metav1.MicroTime ("2006-01-02T15:04:05.000000Z"), always UTC, and RFC 3339 parsed back.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orch {

using SystemTime = std::chrono::system_clock::time_point;

// metav1.Time: seconds precision, UTC.
std::string FormatTime(SystemTime t);
// metav1.MicroTime: microseconds precision, UTC (leases, events).
std::string FormatMicroTime(SystemTime t);
std::string NowTime();
std::string NowMicroTime();
// CRI timestamps (nanoseconds since the epoch) as metav1.Time.
inline std::string FormatNanos(int64_t nanos) {
  return FormatTime(SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(nanos))));
}

// RFC 3339 ("2024-05-01T10:00:00Z", optional fraction, Z or ±hh:mm offset, `t`/`z` accepted) as
// nanoseconds since the Unix epoch, saturated to the int64 range: year 1, upstream's zero time,
// gives the minimum. nullopt when malformed or not a real date (2024-02-30).
std::optional<int64_t> ParseTimestampNanos(std::string_view text);
// The same as a time point.
std::optional<SystemTime> ParseTime(std::string_view text);

}  // namespace orch
