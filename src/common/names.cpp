// Implementation of orch/names.h on top of the syntax checks of orch/labels.h, so a value
// accepted here is accepted by any Kubernetes API server.
#include "orch/names.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "orch/labels.h"

namespace orch {
namespace {

// One line for the CLI: what was refused, then upstream's reasons (the rules and their wording
// are orch/labels.h's, so the CLI refuses exactly what the API server refuses).
Status Refused(std::string_view what, const std::vector<std::string>& reasons) {
  if (reasons.empty()) return Status::Ok();
  return InvalidArgument(fmt::format("{}: {}", what, fmt::join(reasons, "; ")));
}

}  // namespace

Status ValidateDnsSubdomain(std::string_view name) {
  if (name.empty()) return InvalidArgument("empty name");
  const std::string what = fmt::format("'{}' is not a valid DNS-1123 name", name);
  if (Status s = Refused(what, IsDns1123Subdomain(name)); !s.ok()) return s;
  // The API server stops here; these names also serve as DNS host names, whose labels DNS
  // limits to 63 characters.
  for (size_t start = 0; start <= name.size();) {
    size_t dot = std::min(name.find('.', start), name.size());
    if (Status s = Refused(what, IsDns1123Label(name.substr(start, dot - start))); !s.ok()) {
      return s;
    }
    start = dot + 1;
  }
  return Status::Ok();
}

Status ValidateDnsHostName(std::string_view name) {
  if (name.starts_with("*.")) return ValidateDnsSubdomain(name.substr(2));
  return ValidateDnsSubdomain(name);
}

Status ValidateLabelKey(std::string_view key) {
  return Refused(fmt::format("label key '{}' is invalid", key), IsQualifiedName(key));
}

Status ValidateLabelValue(std::string_view value) {
  return Refused(fmt::format("label value '{}' is invalid", value), IsValidLabelValue(value));
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
