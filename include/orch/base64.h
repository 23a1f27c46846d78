// Standard base64 (RFC 4648, with padding), as Kubernetes uses for Secret data, kubeconfig
// certificate data and continue tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace orch {

std::string Base64Encode(std::string_view data);
// nullopt when `text` is not valid padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace orch
