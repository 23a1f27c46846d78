// Reading containers' CRI log files as `kubectl logs` shows them: the CRI line format
// ("<RFC 3339 time> <stdout|stderr> <P|F> <text>"), the pods/log options (tail, since,
// timestamps, limitBytes) and where in a file the last N lines start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "orch/status.h"
#include "stream_request.h"

namespace orch::agent {

struct CriLogLine {
  int64_t time_nanos = 0;   // since the Unix epoch
  std::string_view stream;  // "stdout" or "stderr"
  bool partial = false;     // tag P: the line goes on in the next entry
  std::string_view content;
};

// One line of a CRI log file, without its '\n'; nullopt when it is not in the format.
std::optional<CriLogLine> ParseCriLogLine(std::string_view line);

struct LogOptions {
  bool follow = false;
  bool timestamps = false;
  std::optional<int64_t> tail_lines;
  std::optional<int64_t> limit_bytes;
  std::optional<int64_t> since_nanos;  // absolute; lines before it are skipped
};

// The pods/log query parameters (follow, timestamps, tailLines, limitBytes, sinceSeconds,
// sinceTime) relative to `now_nanos`; InvalidArgument for values upstream refuses.
Result<LogOptions> ParseLogOptions(const UrlQuery& query, int64_t now_nanos);

// "2024-05-01T10:00:00.123456789Z": the kubelet's fixed-width timestamp (RFC3339NanoFixed).
std::string FormatLogTime(int64_t nanos);

// Turns CRI log lines into the bytes kubectl prints. Not thread-safe.
class LogFormatter {
 public:
  explicit LogFormatter(const LogOptions& options);
  // Appends the output of one file line (without '\n') to `out`. False once limitBytes is
  // reached: the caller stops (what was appended is still sent). Lines not in the CRI
  // format are skipped.
  bool Add(std::string_view line, std::string& out);
  bool done() const { return done_; }

 private:
  const LogOptions options_;
  bool continuing_ = false;  // the last entry was partial: no timestamp before the next
  std::optional<int64_t> remaining_;
  bool done_ = false;
};

// The offset where the last `lines` lines of the file begin (0 when it has fewer); a
// trailing line without '\n' counts as a line. Reads backwards in blocks: memory stays bounded.
Result<int64_t> TailOffset(int fd, int64_t size, int64_t lines);

}  // namespace orch::agent
