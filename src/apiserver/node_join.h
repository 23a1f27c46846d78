// Node join on the API server: an agent holding the cluster's join token sends a certificate
// signing request and gets its node client certificate, signed by the cluster CA.
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
inline constexpr const char* kNodeJoinPrefix = "/v1-orch/";
inline constexpr const char* kNodeCertificatePath = "/v1-orch/client-node.crt";
inline constexpr int kNodeCertificateDays = 365;

class NodeCertificateSigner {
 public:
  // `ca` signs; `ca_bundle_pem` goes back to the agent; `join_tokens` are the bearer tokens
  // that may join (compared in constant time).
  NodeCertificateSigner(pki::Credential ca, std::string ca_bundle_pem,
                        std::vector<std::string> join_tokens)
      : ca_(std::move(ca)),
        ca_bundle_pem_(std::move(ca_bundle_pem)),
        join_tokens_(std::move(join_tokens)) {}

  // Answers a request under kNodeJoinPrefix. `authenticated` says whether the caller proved some
  // other identity (client certificate, API token), which turns a 401 into a 403. Thread-safe.
  Response Serve(const Request& request, bool authenticated) const;

 private:
  bool HasJoinToken(const Request& request) const;

  const pki::Credential ca_;
  const std::string ca_bundle_pem_;
  const std::vector<std::string> join_tokens_;
};

}  // namespace orch::api
