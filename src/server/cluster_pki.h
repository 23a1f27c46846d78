// The server's credentials on disk: the cluster CA, the API serving certificate, the admin
// client certificate and kubeconfig, the join token (k3s's K10<ca hash>::server:<secret> form)
// and the Secrets encryption key. Created on first start, reused (and renewed when needed) after.
#pragma once

#include <string>
#include <vector>

#include "orch/config.h"
#include "orch/status.h"

namespace orch {

struct ClusterCredentials {
  std::string ca_cert_file;
  std::string ca_cert_pem;
  std::string ca_key_file;
  std::string serving_cert_file;
  std::string serving_key_file;
  std::string token;         // the full K10... token, as written to <data-dir>/server/token
  std::string token_secret;  // the part after "::server:"
  std::string encryption_key_file;
  std::string kubeconfig_file;
};

// Ensures every credential exists under <data-dir>/server/{tls,cred} and writes the admin
// kubeconfig to --write-kubeconfig with --write-kubeconfig-mode. `sans` are the serving
// certificate's IPs and names; the certificate is reissued when they change or it nears expiry.
// A --token that differs from the stored one is refused (the cluster's token cannot change).
Result<ClusterCredentials> EnsureClusterCredentials(const ServerConfig& config,
                                                    const std::vector<std::string>& sans);

// The CA hash and secret of a token in k3s's full form "K10<sha256>::<user>:<secret>"; a bare
// secret gives an empty hash.
struct ParsedToken {
  std::string ca_hash;
  std::string user;
  std::string secret;
};
Result<ParsedToken> ParseToken(const std::string& token);

}  // namespace orch
