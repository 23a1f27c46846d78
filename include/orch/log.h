// Leveled, one-line-per-event logging to stderr, each line tagged with the component name:
//   2026-11-27T05:10:00.123Z INFO  store: opened /var/lib/orch/server/db/state.db at revision 42
// The level is the one piece of process-wide state: set once by main before any thread starts.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace orch::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level) { return level >= GetLevel(); }

// Writes one line atomically (a single write(2)), so lines from threads never interleave.
void Write(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void Debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kError)) Write(Level::kError, component, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace orch::log
