// RFC 3339 formatting and parsing for the agent (time_util.h).
#include "time_util.h"

#include <fmt/format.h>

#include <cctype>
#include <ctime>

namespace orch::agent {

std::string FormatTime(SystemTime t, bool micro) {
  auto since_epoch = t.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
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

std::string FormatNanos(int64_t nanos) {
  if (nanos <= 0) return "";
  return FormatTime(SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(nanos))));
}

std::optional<SystemTime> ParseTime(std::string_view s) {
  auto digits = [&](size_t pos, size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || s.size() < 20 || s[4] != '-' ||
      s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  int offset_seconds = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om) return std::nullopt;
    offset_seconds = (*oh * 3600 + *om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  std::time_t t = timegm(&tm);
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(
      std::chrono::seconds(t - offset_seconds) + std::chrono::nanoseconds(nanos)));
}

}  // namespace orch::agent
