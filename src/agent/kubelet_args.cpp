// Parsing of --kubelet-arg items into the settings the agent honours (kubelet_args.h).
#include "kubelet_args.h"

#include <fmt/format.h>

#include "orch/go_strconv.h"
#include "orch/quantity.h"

namespace orch::agent {

Result<std::chrono::milliseconds> ParseGoDurationMs(const std::string& text) {
  auto bad = [&] {
    return InvalidArgument(fmt::format("'{}' is not a duration like 2m, 1m30s or 500ms", text));
  };
  if (text.empty()) return bad();
  if (text == "0") return std::chrono::milliseconds(0);
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == start) return bad();
    double value = 0;
    try {
      value = std::stod(text.substr(start, i - start));
    } catch (const std::exception&) {
      return bad();
    }
    size_t unit_start = i;
    while (i < text.size() && !((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    if (unit == "ms") {
      total += value;
    } else if (unit == "s") {
      total += value * 1000;
    } else if (unit == "m") {
      total += value * 60'000;
    } else if (unit == "h") {
      total += value * 3'600'000;
    } else {
      return bad();
    }
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

Result<KubeletSettings> ParseKubeletArgs(const std::vector<std::string>& args,
                                         std::vector<std::string>* ignored) {
  KubeletSettings out;
  for (const std::string& item : args) {
    auto eq = item.find('=');
    std::string key = item.substr(0, eq);
    while (!key.empty() && key.front() == '-') key.erase(0, 1);
    std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    auto bad = [&](std::string_view why) {
      return InvalidArgument(fmt::format("--kubelet-arg {}: {}", item, why));
    };
    auto integer = [&](int lo, int hi) -> Result<int> {
      auto n = GoParseInt(value);
      if (!n || *n < lo || *n > hi) {
        return bad(fmt::format("must be an integer from {} to {}", lo, hi));
      }
      return static_cast<int>(*n);
    };
    auto seconds = [&](int64_t min_ms) -> Result<std::chrono::seconds> {
      auto d = ParseGoDurationMs(value);
      if (!d.ok()) return bad(d.status().message());
      if (d->count() < min_ms) return bad(fmt::format("must be at least {}ms", min_ms));
      return std::chrono::duration_cast<std::chrono::seconds>(*d);
    };
    if (eq == std::string::npos) return bad("expected KEY=VALUE");
    if (key == "container-log-max-size") {
      auto q = Quantity::Parse(value);
      if (!q.ok()) return bad(q.status().message());
      if (q->Value() <= 0) return bad("must be greater than zero");
      out.container_log_max_size = q->Value();
    } else if (key == "container-log-max-files") {
      auto n = integer(2, 1000);
      if (!n.ok()) return n.status();
      out.container_log_max_files = *n;
    } else if (key == "image-gc-high-threshold") {
      auto n = integer(0, 100);
      if (!n.ok()) return n.status();
      out.image_gc_high_threshold = *n;
    } else if (key == "image-gc-low-threshold") {
      auto n = integer(0, 100);
      if (!n.ok()) return n.status();
      out.image_gc_low_threshold = *n;
    } else if (key == "image-minimum-gc-age") {
      auto d = seconds(0);
      if (!d.ok()) return d.status();
      out.image_minimum_gc_age = *d;
    } else if (key == "image-gc-period") {
      auto d = seconds(1000);
      if (!d.ok()) return d.status();
      out.image_gc_period = *d;
    } else if (key == "container-log-check-period") {
      auto d = seconds(1000);
      if (!d.ok()) return d.status();
      out.container_log_check_period = *d;
    } else if (key == "cgroups-per-qos") {
      if (value != "true" && value != "false") return bad("must be true or false");
      out.cgroups_per_qos = value == "true";
    } else if (key == "cgroup-driver") {
      if (value != "cgroupfs" && value != "systemd") return bad("must be cgroupfs or systemd");
      out.cgroup_driver = value;
    } else if (ignored != nullptr) {
      ignored->push_back(item);
    }
  }
  if (out.image_gc_low_threshold > out.image_gc_high_threshold) {
    return InvalidArgument(
        fmt::format("--kubelet-arg image-gc-low-threshold ({}) must not exceed "
                    "image-gc-high-threshold ({})",
                    out.image_gc_low_threshold, out.image_gc_high_threshold));
  }
  return out;
}

}  // namespace orch::agent
