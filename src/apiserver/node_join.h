// Node join on the API server: an agent holding the cluster's join token sends a certificate
// signing request and gets its node client certificate, signed by the cluster CA, and the
// cluster-wide settings it must run with.
#pragma once

#include <string>
#include <vector>

#include "http.h"
#include "orch/pki.h"
#include "orch/status.h"

namespace orch::api {

// The one path of the join protocol (k3s serves its own under /v1-k3s/):
//   POST /v1-orch/client-node.crt
//   Authorization: Bearer <join token>            (the full K10... form or the bare secret)
//   Content-Type: application/json
//   {"nodeName": "<node>", "csr": "<PEM certificate signing request>"}
// answers 200 with {"certificate": "<PEM>", "caBundle": "<PEM>"}: a client certificate for
// user system:node:<node> in group system:nodes, whatever subject the CSR names. Errors are
// Kubernetes Status objects: 401 without a join token, 403 for callers that authenticated some
// other way, 400 for a bad body, CSR or node name, 405 for other methods.
//
// And the cluster-wide settings every agent takes from the server (orch/cluster_settings.h; k3s
// serves them at /v1-k3s/config), read by a joined agent at each start:
//   GET /v1-orch/config
//   Authorization: Bearer <join token>
// answers 200 with the settings' JSON; 401/403 as above, 404 when the server has none to give.
inline constexpr const char* kNodeJoinPrefix = "/v1-orch/";
inline constexpr const char* kNodeCertificatePath = "/v1-orch/client-node.crt";
inline constexpr const char* kNodeConfigPath = "/v1-orch/config";
inline constexpr int kNodeCertificateDays = 365;

class NodeCertificateSigner {
 public:
  // `ca` signs; `ca_bundle_pem` goes back to the agent; `join_tokens` are the bearer tokens
  // that may join (compared in constant time); `settings_json` is served at kNodeConfigPath
  // (empty: 404).
  NodeCertificateSigner(pki::Credential ca, std::string ca_bundle_pem,
                        std::vector<std::string> join_tokens, std::string settings_json = "")
      : ca_(std::move(ca)),
        ca_bundle_pem_(std::move(ca_bundle_pem)),
        join_tokens_(std::move(join_tokens)),
        settings_json_(std::move(settings_json)) {}

  // Answers a request under kNodeJoinPrefix. `authenticated` says whether the caller proved some
  // other identity (client certificate, API token), which turns a 401 into a 403. Thread-safe.
  Response Serve(const Request& request, bool authenticated) const;

 private:
  bool HasJoinToken(const Request& request) const;
  // The 401/403 for a request without the join token.
  Response Refusal(const Request& request, bool authenticated, const std::string& forbidden) const;
  Response ServeSettings(const Request& request, bool authenticated) const;

  const pki::Credential ca_;
  const std::string ca_bundle_pem_;
  const std::vector<std::string> join_tokens_;
  const std::string settings_json_;
};

}  // namespace orch::api
