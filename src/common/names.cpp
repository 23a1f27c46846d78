// Implementation of orch/names.h, following k8s.io/apimachinery/pkg/util/validation so a value
// accepted here is accepted by any Kubernetes API server.
#include "orch/names.h"

#include <fmt/format.h>

namespace orch {
namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

// One DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDnsLabel(std::string_view part) {
  if (part.empty() || part.size() > 63) return false;
  if (!IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
  for (char c : part) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// The name part of a label key, and a non-empty label value:
// [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters.
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

Status ValidateDnsSubdomain(std::string_view name) {
  if (name.empty()) return InvalidArgument("empty name");
  bool ok = name.size() <= 253;
  for (size_t start = 0; ok;) {
    size_t dot = name.find('.', start);
    std::string_view part = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
    ok = IsDnsLabel(part);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (!ok) {
    return InvalidArgument(
        fmt::format("'{}' is not a valid DNS-1123 name (lowercase letters, digits, '-' and '.', "
                    "at most 253 characters)",
                    name));
  }
  return Status::Ok();
}

Status ValidateDnsHostName(std::string_view name) {
  if (name.starts_with("*.")) return ValidateDnsSubdomain(name.substr(2));
  return ValidateDnsSubdomain(name);
}

Status ValidateLabelKey(std::string_view key) {
  std::string_view name = key;
  size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (!ValidateDnsSubdomain(prefix).ok()) {
      return InvalidArgument(
          fmt::format("label key '{}': prefix '{}' is not a DNS-1123 name", key, prefix));
    }
  }
  if (!IsQualifiedNamePart(name)) {
    return InvalidArgument(fmt::format(
        "label key '{}' is invalid (a name of at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit, optionally prefixed by DNS-NAME/)",
        key));
  }
  return Status::Ok();
}

Status ValidateLabelValue(std::string_view value) {
  if (value.empty() || IsQualifiedNamePart(value)) return Status::Ok();
  return InvalidArgument(fmt::format(
      "label value '{}' is invalid (at most 63 letters, digits, '-', '_' or '.', starting and "
      "ending with a letter or digit)",
      value));
}

Result<Label> ParseLabel(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgument(fmt::format("label '{}' must be KEY=VALUE", text));
  }
  Label label{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
  if (Status s = ValidateLabelKey(label.key); !s.ok()) return s;
  if (Status s = ValidateLabelValue(label.value); !s.ok()) return s;
  return label;
}

Result<Taint> ParseTaint(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument(fmt::format("taint '{}' must be KEY=VALUE:EFFECT or KEY:EFFECT", text));
  }
  Taint taint;
  taint.effect = std::string(text.substr(colon + 1));
  std::string_view key_value = text.substr(0, colon);
  size_t eq = key_value.find('=');
  taint.key = std::string(key_value.substr(0, eq));
  if (eq != std::string_view::npos) taint.value = std::string(key_value.substr(eq + 1));
  if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
      taint.effect != "NoExecute") {
    return InvalidArgument(
        fmt::format("taint '{}': effect must be NoSchedule, PreferNoSchedule or NoExecute", text));
  }
  if (Status s = ValidateLabelKey(taint.key); !s.ok()) {
    return InvalidArgument(fmt::format("taint '{}': {}", text, s.message()));
  }
  if (Status s = ValidateLabelValue(taint.value); !s.ok()) {
    return InvalidArgument(fmt::format("taint '{}': {}", text, s.message()));
  }
  return taint;
}

}  // namespace orch
