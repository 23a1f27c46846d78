// CronJob schedules: the standard five-field cron syntax (and @hourly-style macros) evaluated in
// a time zone read from the system's tz database (TZif files; GCC 12 has no std::chrono tzdb).
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch::cron {

using TimePoint = std::chrono::system_clock::time_point;

// A time zone: UTC offsets over time, from a TZif file's transitions and, past the last one,
// its POSIX TZ footer rule ("EST5EDT,M3.2.0,M11.1.0").
class TimeZone {
 public:
  static std::shared_ptr<const TimeZone> Utc();
  // `name` as in spec.timeZone ("Europe/Berlin"), under `zoneinfo_dir`. kNotFound for an
  // unknown zone, kInvalidArgument for a name that tries to leave the directory or a bad file.
  static Result<std::shared_ptr<const TimeZone>> Load(
      const std::string& name, const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  // From the bytes of a TZif file (for tests).
  static Result<std::shared_ptr<const TimeZone>> Parse(std::string_view tzif);

  // The offset from UTC, in seconds, at UTC time `utc_seconds` (since the epoch).
  int64_t OffsetAt(int64_t utc_seconds) const;

 private:
  struct Rule;                        // a parsed POSIX TZ footer
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int64_t> offsets_;      // offset after each transition
  int64_t initial_offset_ = 0;        // before the first transition
  std::shared_ptr<const Rule> rule_;  // after the last transition (may be null)
};

// A parsed cron schedule.
class Schedule {
 public:
  // Five fields (minute hour day-of-month month day-of-week: numbers, names JAN-DEC and
  // SUN-SAT, *, ?, lists, ranges and steps) or a macro (@yearly, @annually, @monthly, @weekly,
  // @daily, @midnight, @hourly). kInvalidArgument with the reason otherwise.
  static Result<Schedule> Parse(std::string_view text);

  // The first time strictly after `after` (whole minutes) that matches, in `zone`; nullopt when
  // none falls within the next five years (e.g. "0 0 30 2 *").
  std::optional<TimePoint> Next(TimePoint after, const TimeZone& zone) const;

 private:
  bool MatchesDay(int day_of_month, int month, int day_of_week) const;

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_;
  bool day_star_ = false;  // day-of-month or day-of-week was * or ?: the two are ANDed
  bool weekday_star_ = false;
};

}  // namespace orch::cron
