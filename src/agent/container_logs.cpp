// CRI log files read as `kubectl logs` shows them (container_logs.h).
#include "container_logs.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

#include "orch/timestamps.h"

namespace orch::agent {

std::optional<CriLogLine> ParseCriLogLine(std::string_view line) {
  CriLogLine out;
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  auto nanos = ParseTimestampNanos(line.substr(0, sp));
  if (!nanos) return std::nullopt;
  out.time_nanos = *nanos;
  line.remove_prefix(sp + 1);
  sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  out.stream = line.substr(0, sp);
  if (out.stream != "stdout" && out.stream != "stderr") return std::nullopt;
  line.remove_prefix(sp + 1);
  // The tag field: "P" or "F", possibly followed by ":"-separated tags of later versions; the
  // content after it may be empty (an empty line has no space after the tag).
  sp = line.find(' ');
  std::string_view tags = line.substr(0, sp);
  out.content = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  std::string_view first = tags.substr(0, tags.find(':'));
  if (first == "P") {
    out.partial = true;
  } else if (first != "F") {
    return std::nullopt;
  }
  return out;
}

Result<LogOptions> ParseLogOptions(const UrlQuery& query, int64_t now_nanos) {
  LogOptions o;
  o.follow = query.IsTrue("follow");
  o.timestamps = query.IsTrue("timestamps");
  auto integer = [&](const char* name, int64_t min) -> Result<std::optional<int64_t>> {
    if (!query.Has(name)) return std::optional<int64_t>();
    std::string v = query.Get(name);
    try {
      size_t used = 0;
      int64_t n = std::stoll(v, &used);
      if (used == v.size() && n >= min) return std::optional<int64_t>(n);
    } catch (const std::exception&) {
    }
    return InvalidArgument(fmt::format("{}: Invalid value: \"{}\"", name, v));
  };
  auto tail = integer("tailLines", 0);
  if (!tail.ok()) return tail.status();
  o.tail_lines = *tail;
  auto limit = integer("limitBytes", 1);
  if (!limit.ok()) return limit.status();
  o.limit_bytes = *limit;
  auto since = integer("sinceSeconds", 1);
  if (!since.ok()) return since.status();
  if (*since) o.since_nanos = now_nanos - **since * 1'000'000'000;
  if (query.Has("sinceTime")) {
    auto t = ParseTimestampNanos(query.Get("sinceTime"));
    if (!t)
      return InvalidArgument(
          fmt::format("sinceTime: Invalid value: \"{}\"", query.Get("sinceTime")));
    o.since_nanos = *t;
  }
  return o;
}

std::string FormatLogTime(int64_t nanos) {
  int64_t secs = nanos / 1'000'000'000;
  int64_t frac = nanos % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

LogFormatter::LogFormatter(const LogOptions& options)
    : options_(options), remaining_(options.limit_bytes) {}

bool LogFormatter::Add(std::string_view line, std::string& out) {
  if (done_) return false;
  auto entry = ParseCriLogLine(line);
  if (!entry) return true;
  if (options_.since_nanos && entry->time_nanos < *options_.since_nanos) return true;
  std::string piece;
  if (options_.timestamps && !continuing_) piece = FormatLogTime(entry->time_nanos) + " ";
  piece.append(entry->content);
  if (!entry->partial) piece.push_back('\n');
  continuing_ = entry->partial;
  if (remaining_) {
    if (static_cast<int64_t>(piece.size()) >= *remaining_) {
      piece.resize(static_cast<size_t>(*remaining_));
      done_ = true;
    }
    *remaining_ -= static_cast<int64_t>(piece.size());
  }
  out += piece;
  return !done_;
}

Result<int64_t> TailOffset(int fd, int64_t size, int64_t lines) {
  if (lines <= 0) return size;
  constexpr int64_t kBlock = 64 * 1024;
  std::vector<char> block(kBlock);
  int64_t pos = size;
  int64_t found = 0;
  bool first = true;
  while (pos > 0) {
    int64_t start = std::max<int64_t>(0, pos - kBlock);
    int64_t n = pos - start;
    ssize_t got = pread(fd, block.data(), static_cast<size_t>(n), start);
    if (got != n)
      return Internal(fmt::format("read log file: {}", got < 0 ? strerror(errno) : "short read"));
    for (int64_t i = n - 1; i >= 0; --i) {
      if (block[i] != '\n') {
        first = false;
        continue;
      }
      // The newline that ends the file's last line starts no line of its own.
      if (first && start + i == size - 1) {
        first = false;
        continue;
      }
      first = false;
      if (++found == lines) return start + i + 1;
    }
    pos = start;
  }
  return 0;
}

}  // namespace orch::agent
