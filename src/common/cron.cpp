// Cron schedules and TZif time zones (cron.h). Matching walks local civil time field by
// field (month, day, hour, minute), skipping whole months or days that cannot match, and maps
// the result back to UTC through the zone: local times in a DST gap do not exist and are
// skipped, ambiguous ones (the repeated hour) fire at their first occurrence.
#include "orch/cron.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

namespace orch::cron {
namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  return sys_days(std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d})
      .time_since_epoch()
      .count();
}

year_month_day CivilFromDays(int64_t day) {
  return year_month_day(sys_days(days(day)));
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// ---- TZif reading.

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Skip(size_t n) {
    if (pos_ + n > data_.size()) return false;
    pos_ += n;
    return true;
  }
  bool Int(size_t width, int64_t* out) {
    if (pos_ + width > data_.size()) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += width;
    if (width == 4) {
      *out = static_cast<int32_t>(static_cast<uint32_t>(v));
    } else {
      *out = static_cast<int64_t>(v);
    }
    return true;
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

// A POSIX TZ rule: standard offset, and optionally a DST offset between two "Mm.w.d/time" dates.
struct TimeZone::Rule {
  struct Date {
    int month = 0, week = 0, weekday = 0;
    int64_t time = 7200;  // seconds after local midnight
  };
  int64_t std_offset = 0;
  std::optional<int64_t> dst_offset;
  Date start, end;

  // UTC seconds of `date` in `year`, given the offset in force before it.
  static int64_t Moment(int year, const Date& date, int64_t offset_before) {
    int64_t first = DaysFromCivil(year, static_cast<unsigned>(date.month), 1);
    int first_weekday = static_cast<int>(((first % 7) + 11) % 7);  // 1970-01-01 was a Thursday
    int64_t day = first + (date.weekday - first_weekday + 7) % 7 + 7 * (date.week - 1);
    if (date.week == 5) {
      int64_t next_month = date.month == 12
                               ? DaysFromCivil(year + 1, 1, 1)
                               : DaysFromCivil(year, static_cast<unsigned>(date.month + 1), 1);
      while (day >= next_month) day -= 7;
    }
    return day * 86400 + date.time - offset_before;
  }

  int64_t OffsetAt(int64_t utc) const {
    if (!dst_offset) return std_offset;
    int year = static_cast<int>(CivilFromDays(FloorDiv(utc + std_offset, 86400)).year());
    int64_t begin = Moment(year, start, std_offset);
    int64_t finish = Moment(year, end, *dst_offset);
    bool dst = begin < finish ? (utc >= begin && utc < finish) : !(utc >= finish && utc < begin);
    return dst ? *dst_offset : std_offset;
  }
};

namespace {

// Parses "[+-]hh[:mm[:ss]]" at `pos`; POSIX offsets are west-positive, times are not negated.
bool ParseHms(std::string_view s, size_t& pos, int64_t* out) {
  int sign = 1;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) sign = s[pos++] == '-' ? -1 : 1;
  int64_t parts[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    if (pos == start) return false;
    parts[i] = std::stoll(std::string(s.substr(start, pos - start)));
    if (i == 2 || pos >= s.size() || s[pos] != ':') break;
    ++pos;
  }
  *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
  return true;
}

bool ParseName(std::string_view s, size_t& pos) {
  if (pos < s.size() && s[pos] == '<') {
    size_t close = s.find('>', pos);
    if (close == std::string_view::npos) return false;
    pos = close + 1;
    return true;
  }
  size_t start = pos;
  while (pos < s.size() && std::isalpha(static_cast<unsigned char>(s[pos]))) ++pos;
  return pos - start >= 3;
}

}  // namespace

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  return std::make_shared<const TimeZone>();
}

Result<std::shared_ptr<const TimeZone>> TimeZone::Load(const std::string& name,
                                                       const std::string& zoneinfo_dir) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return Utc();
  if (name.front() == '/' || name.find("..") != std::string::npos ||
      name.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
          std::string::npos) {
    return InvalidArgument(fmt::format("unknown time zone {}", name));
  }
  std::ifstream in(zoneinfo_dir + "/" + name, std::ios::binary);
  if (!in) return NotFound(fmt::format("unknown time zone {}", name));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Parse(buffer.str());
}

Result<std::shared_ptr<const TimeZone>> TimeZone::Parse(std::string_view tzif) {
  auto bad = [] { return InvalidArgument("not a TZif time zone file"); };
  auto zone = std::make_shared<TimeZone>();
  Reader r(tzif);
  for (int pass = 0; pass < 2; ++pass) {
    if (r.Rest().substr(0, 4) != "TZif" || r.Rest().size() < 44) return bad();
    char version = r.Rest()[4];
    if (!r.Skip(20)) return bad();
    int64_t isut = 0, isstd = 0, leap = 0, timecnt = 0, typecnt = 0, charcnt = 0;
    for (int64_t* n : {&isut, &isstd, &leap, &timecnt, &typecnt, &charcnt}) {
      if (!r.Int(4, n) || *n < 0) return bad();
    }
    const size_t width = pass == 0 ? 4 : 8;
    if (pass == 0 && version != '\0') {
      // Version 2+: skip the 32-bit block; the 64-bit one follows.
      size_t skip = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
      if (!r.Skip(skip)) return bad();
      continue;
    }
    std::vector<int64_t> times(timecnt);
    for (int64_t& t : times) {
      if (!r.Int(width, &t)) return bad();
    }
    std::vector<int64_t> type_of(timecnt);
    for (int64_t& t : type_of) {
      if (!r.Int(1, &t) || t >= typecnt) return bad();
    }
    std::vector<int64_t> type_offsets(typecnt);
    for (int64_t& off : type_offsets) {
      int64_t isdst = 0, idx = 0;
      if (!r.Int(4, &off) || !r.Int(1, &isdst) || !r.Int(1, &idx)) return bad();
    }
    if (!r.Skip(charcnt + leap * (width + 4) + isstd + isut)) return bad();
    zone->transitions_ = std::move(times);
    for (int64_t t : type_of) zone->offsets_.push_back(type_offsets[t]);
    zone->initial_offset_ = typecnt > 0 ? type_offsets[0] : 0;
    if (pass == 1 || version == '\0') {
      // The footer: "\n<POSIX TZ>\n" (version 2+ only).
      std::string_view rest = r.Rest();
      if (version != '\0' && rest.size() >= 2 && rest[0] == '\n') {
        std::string_view tz = rest.substr(1, rest.find('\n', 1) - 1);
        auto rule = std::make_shared<Rule>();
        size_t pos = 0;
        int64_t off = 0;
        if (!tz.empty() && ParseName(tz, pos) && ParseHms(tz, pos, &off)) {
          rule->std_offset = -off;
          if (pos < tz.size() && ParseName(tz, pos)) {
            int64_t dst = rule->std_offset + 3600;
            if (pos < tz.size() && tz[pos] != ',') {
              if (ParseHms(tz, pos, &off)) dst = -off;
            }
            auto parse_date = [&](Rule::Date& d) {
              if (pos >= tz.size() || tz[pos] != ',' || pos + 1 >= tz.size() ||
                  tz[pos + 1] != 'M') {
                return false;
              }
              pos += 2;
              int values[3];
              for (int i = 0; i < 3; ++i) {
                size_t start = pos;
                while (pos < tz.size() && std::isdigit(static_cast<unsigned char>(tz[pos]))) ++pos;
                if (pos == start) return false;
                values[i] = std::stoi(std::string(tz.substr(start, pos - start)));
                if (i < 2) {
                  if (pos >= tz.size() || tz[pos] != '.') return false;
                  ++pos;
                }
              }
              d.month = values[0];
              d.week = values[1];
              d.weekday = values[2];
              if (d.month < 1 || d.month > 12 || d.week < 1 || d.week > 5 || d.weekday > 6) {
                return false;
              }
              if (pos < tz.size() && tz[pos] == '/') {
                ++pos;
                if (!ParseHms(tz, pos, &d.time)) return false;
              }
              return true;
            };
            if (parse_date(rule->start) && parse_date(rule->end)) rule->dst_offset = dst;
          }
          zone->rule_ = std::move(rule);
        }
      }
      break;
    }
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

int64_t TimeZone::OffsetAt(int64_t utc) const {
  if (transitions_.empty() || utc >= transitions_.back()) {
    if (rule_) return rule_->OffsetAt(utc);
    if (transitions_.empty()) return initial_offset_;
    return offsets_.back();
  }
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<size_t>(it - transitions_.begin() - 1)];
}

// ---------------------------------------------------------------------------------------------
// Schedules.

namespace {

const std::map<std::string, int>& Names() {
  static const std::map<std::string, int> kNames = {
      {"jan", 1}, {"feb", 2}, {"mar", 3},  {"apr", 4},  {"may", 5},  {"jun", 6}, {"jul", 7},
      {"aug", 8}, {"sep", 9}, {"oct", 10}, {"nov", 11}, {"dec", 12}, {"sun", 0}, {"mon", 1},
      {"tue", 2}, {"wed", 3}, {"thu", 4},  {"fri", 5},  {"sat", 6}};
  return kNames;
}

Result<int> ParseValue(std::string_view text, int min, int max, bool names) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (names) {
    auto it = Names().find(lower);
    if (it != Names().end()) return it->second;
  }
  if (lower.empty() || lower.size() > 4 ||
      lower.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument(fmt::format("failed to parse int from {}", text));
  }
  int value = std::stoi(lower);
  if (value < min || value > max) {
    return InvalidArgument(fmt::format("value {} out of range [{}, {}]", value, min, max));
  }
  return value;
}

// One field: a comma list of "*", "?", "a", "a-b", each with an optional "/step".
Status ParseField(std::string_view field, int min, int max, bool names, std::vector<int>& out,
                  bool* star) {
  *star = false;
  size_t pos = 0;
  while (pos <= field.size()) {
    size_t comma = field.find(',', pos);
    std::string_view part =
        field.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? field.size() + 1 : comma + 1;
    int step = 1;
    size_t slash = part.find('/');
    std::string_view range = part.substr(0, slash);
    if (slash != std::string_view::npos) {
      auto s = ParseValue(part.substr(slash + 1), 1, 1000, false);
      if (!s.ok()) return s.status();
      step = *s;
    }
    int first = min, last = max;
    if (range == "*" || range == "?") {
      if (slash == std::string_view::npos) *star = true;
    } else {
      size_t dash = range.find('-');
      auto a = ParseValue(range.substr(0, dash), min, max, names);
      if (!a.ok()) return a.status();
      first = *a;
      if (dash != std::string_view::npos) {
        auto b = ParseValue(range.substr(dash + 1), min, max, names);
        if (!b.ok()) return b.status();
        last = *b;
      } else if (slash == std::string_view::npos) {
        last = first;
      }
      if (first > last) {
        return InvalidArgument(
            fmt::format("beginning of range ({}) beyond end of range ({}): {}", first, last, part));
      }
    }
    for (int v = first; v <= last; v += step) out.push_back(v);
  }
  return Status::Ok();
}

}  // namespace

Result<Schedule> Schedule::Parse(std::string_view text) {
  std::vector<std::string> fields;
  std::istringstream in{std::string(text)};
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() == 1 && !fields[0].empty() && fields[0][0] == '@') {
    static const std::map<std::string, std::string> kMacros = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    auto it = kMacros.find(fields[0]);
    if (it == kMacros.end()) {
      return InvalidArgument(fmt::format("unrecognized descriptor: {}", fields[0]));
    }
    return Parse(it->second);
  }
  if (fields.size() != 5) {
    return InvalidArgument(
        fmt::format("expected exactly 5 fields, found {}: {}", fields.size(), text));
  }
  Schedule s;
  struct Spec {
    int min, max;
    bool names;
  };
  const Spec specs[5] = {
      {0, 59, false}, {0, 23, false}, {1, 31, false}, {1, 12, true}, {0, 7, true}};
  bool stars[5] = {};
  for (int i = 0; i < 5; ++i) {
    std::vector<int> values;
    if (Status st =
            ParseField(fields[i], specs[i].min, specs[i].max, specs[i].names, values, &stars[i]);
        !st.ok()) {
      return st;
    }
    for (int v : values) {
      switch (i) {
        case 0:
          s.minutes_.set(v);
          break;
        case 1:
          s.hours_.set(v);
          break;
        case 2:
          s.days_.set(v);
          break;
        case 3:
          s.months_.set(v);
          break;
        default:
          s.weekdays_.set(v % 7);
          break;  // 7 is Sunday too
      }
    }
  }
  s.day_star_ = stars[2];
  s.weekday_star_ = stars[4];
  return s;
}

bool Schedule::MatchesDay(int day_of_month, int month, int day_of_week) const {
  (void)month;
  bool dom = days_.test(day_of_month);
  bool dow = weekdays_.test(day_of_week);
  // As cron: when either field is unrestricted both must match, otherwise either may.
  if (day_star_ || weekday_star_) return dom && dow;
  return dom || dow;
}

std::optional<TimePoint> Schedule::Next(TimePoint after, const TimeZone& zone) const {
  using std::chrono::seconds;
  const int64_t after_utc = std::chrono::duration_cast<seconds>(after.time_since_epoch()).count();
  // Local civil time as seconds, starting at the next whole minute.
  int64_t local = after_utc + zone.OffsetAt(after_utc);
  local = FloorDiv(local, 60) * 60 + 60;
  const int64_t limit = local + int64_t{5} * 366 * 86400;
  while (local < limit) {
    int64_t day = FloorDiv(local, 86400);
    int64_t second_of_day = local - day * 86400;
    year_month_day ymd = CivilFromDays(day);
    int y = static_cast<int>(ymd.year());
    unsigned m = static_cast<unsigned>(ymd.month());
    unsigned d = static_cast<unsigned>(ymd.day());
    if (!months_.test(m)) {
      local = (m == 12 ? DaysFromCivil(y + 1, 1, 1) : DaysFromCivil(y, m + 1, 1)) * 86400;
      continue;
    }
    int weekday = static_cast<int>(((day % 7) + 11) % 7);
    if (!MatchesDay(static_cast<int>(d), static_cast<int>(m), weekday)) {
      local = (day + 1) * 86400;
      continue;
    }
    int hour = static_cast<int>(second_of_day / 3600);
    if (!hours_.test(hour)) {
      local = day * 86400 + (hour + 1) * 3600;
      continue;
    }
    int minute = static_cast<int>((second_of_day % 3600) / 60);
    if (!minutes_.test(minute)) {
      local += 60;
      continue;
    }
    // Back to UTC: the offsets around this local time; the earliest that maps back wins.
    std::optional<int64_t> best;
    for (int64_t probe : {local - 86400, local, local + 86400}) {
      int64_t offset = zone.OffsetAt(probe - zone.OffsetAt(probe));
      int64_t utc = local - offset;
      if (zone.OffsetAt(utc) == offset && utc > after_utc && (!best || utc < *best)) best = utc;
    }
    if (best) return TimePoint(seconds(*best));
    local += 60;  // a local time the zone skips (DST gap), or one already passed
  }
  return std::nullopt;
}

}  // namespace orch::cron
