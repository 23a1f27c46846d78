// The Kubernetes syntax of names, labels and taints (DNS-1123 names, qualified label keys) as
// Status values for the CLI, checked by orch/labels.h so the CLI refuses what the cluster would.
#pragma once

#include <string>
#include <string_view>

#include "orch/status.h"

namespace orch {

// Each check returns Ok or InvalidArgument with one line: the value, then upstream's reasons.

// A DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters, each
// dot-separated part starting and ending alphanumeric. Node names and most object names. Each part
// is also held to DNS's 63 characters (which the API server does not check), as these names
// serve as host names too.
Status ValidateDnsSubdomain(std::string_view name);

// A host name for a TLS certificate: a DNS-1123 subdomain, optionally with a leading "*." wildcard.
Status ValidateDnsHostName(std::string_view name);

// A label key: [prefix/]name, prefix a DNS-1123 subdomain, name at most 63 characters of
// alphanumerics, '-', '_', '.', starting and ending alphanumeric.
Status ValidateLabelKey(std::string_view key);

// A label value: empty, or like the name part of a key.
Status ValidateLabelValue(std::string_view value);

struct Label {
  std::string key;
  std::string value;
};

// "key=value" (value may be empty), as `--node-label` takes it.
Result<Label> ParseLabel(std::string_view text);

struct Taint {
  std::string key;
  std::string value;   // may be empty
  std::string effect;  // NoSchedule, PreferNoSchedule or NoExecute
};

// "key=value:Effect" or "key:Effect", as `--node-taint` takes it (k3s and kubelet syntax).
Result<Taint> ParseTaint(std::string_view text);

}  // namespace orch
