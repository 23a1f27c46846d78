// Unit tests for the shared API timestamps (include/orch/timestamps.h): metav1.Time and
// MicroTime formatting, RFC 3339 parsing with offsets, fractions and saturation.
#include "orch/timestamps.h"

#include <catch2/catch.hpp>
#include <cstdint>

using namespace std::chrono;

TEST_CASE("Timestamps parse as RFC 3339") {
  CHECK(orch::ParseTimestampNanos("2024-05-01T12:00:00Z") == 1714564800LL * 1000000000);
  CHECK(orch::ParseTimestampNanos("2024-05-01T14:00:00+02:00") == 1714564800LL * 1000000000);
  CHECK(orch::ParseTimestampNanos("2024-05-01T12:00:00.5Z") == 1714564800500000000LL);
  CHECK(orch::ParseTimestampNanos("1970-01-01T00:00:00Z") == 0);
  CHECK(orch::ParseTimestampNanos("0001-01-01T00:00:00Z") == INT64_MIN);
  CHECK_FALSE(orch::ParseTimestampNanos("2024-02-30T00:00:00Z"));
  CHECK_FALSE(orch::ParseTimestampNanos("2023-02-29T00:00:00Z"));
  CHECK_FALSE(orch::ParseTimestampNanos("yesterday"));
  CHECK_FALSE(orch::ParseTimestampNanos("2024-05-01 12:00:00Z"));
  CHECK_FALSE(orch::ParseTimestampNanos("2024-05-01T12:00:00"));
  CHECK_FALSE(orch::ParseTimestampNanos("2024-05-01T12:00:00.Z"));
}

TEST_CASE("Timestamps format as metav1.Time and MicroTime in UTC") {
  const orch::SystemTime t = *orch::ParseTime("2024-02-29T23:59:58.123456789+01:00");
  CHECK(orch::FormatTime(t) == "2024-02-29T22:59:58Z");
  CHECK(orch::FormatMicroTime(t) == "2024-02-29T22:59:58.123456Z");
  CHECK(orch::FormatNanos(1714564800500000000LL) == "2024-05-01T12:00:00Z");
  // Before the epoch the seconds round down, not toward zero.
  CHECK(orch::FormatMicroTime(orch::SystemTime(milliseconds(-1500))) ==
        "1969-12-31T23:59:58.500000Z");
  // What is formatted parses back to the same instant (at the format's precision).
  CHECK(orch::ParseTime(orch::FormatMicroTime(t)) ==
        orch::SystemTime(floor<microseconds>(t.time_since_epoch())));
}
