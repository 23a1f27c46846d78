// The server URL and admin credentials in the kubeconfig `orch server` writes (one `key: value`
// per line, PEMs base64-encoded), as HTTPS client options; shared by C++ e2e tests and benchmarks.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "orch/api_client.h"
#include "orch/base64.h"

namespace orch::testing {

// The options, or options with an empty server_url while the file is missing or incomplete.
inline HttpsClientOptions KubeconfigCredentials(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  auto field = [&](const std::string& key) -> std::string {
    size_t at = text.find(key + ": ");
    if (at == std::string::npos) return "";
    size_t start = at + key.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  };
  HttpsClientOptions options;
  const std::string ca = field("certificate-authority-data"), key = field("client-key-data");
  if (ca.empty() || key.empty()) return options;
  options.server_url = field("server");
  options.ca_pem = Base64Decode(ca).value_or("");
  options.cert_pem = Base64Decode(field("client-certificate-data")).value_or("");
  options.key_pem = Base64Decode(key).value_or("");
  return options;
}

}  // namespace orch::testing
