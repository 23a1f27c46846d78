// Timestamps as the Kubernetes API writes them (RFC 3339, UTC, seconds or microseconds) from
// the clock and from CRI's nanoseconds, and parsed back (deletionTimestamp, startTime).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orch::agent {

using SystemTime = std::chrono::system_clock::time_point;

// "2006-01-02T15:04:05Z" (metav1.Time), or with ".000000" microseconds (metav1.MicroTime).
std::string FormatTime(SystemTime t, bool micro = false);
// A CRI timestamp (nanoseconds since the epoch) as metav1.Time; "" for 0 (not yet).
std::string FormatNanos(int64_t nanos);
// RFC 3339 with an optional fraction and a Z or +hh:mm offset; nullopt when malformed.
std::optional<SystemTime> ParseTime(std::string_view text);

}  // namespace orch::agent
