// Joining a cluster: how `orch agent --join URL --token T` obtains and keeps its node
// credentials (the cluster CA, pinned by the token, and a client certificate signed by it), and
// learns the server's cluster-wide settings.
#pragma once

#include <chrono>
#include <stop_token>
#include <string>

#include "orch/cluster_settings.h"
#include "orch/config.h"
#include "orch/status.h"

namespace orch {

// What a node's HTTPS API client needs (HttpsClientOptions), all PEM, and where it is stored.
struct NodeCredentials {
  std::string ca_pem;    // the cluster CA bundle the server's certificate chains to
  std::string cert_pem;  // client certificate of user system:node:<name>, group system:nodes
  std::string key_pem;
  std::string ca_file;    // <data-dir>/agent/server-ca.crt
  std::string cert_file;  // <data-dir>/agent/client-node.crt
  std::string key_file;   // <data-dir>/agent/client-node.key
};

struct JoinOptions {
  // Bound on one HTTPS exchange (connect, TLS, request, answer).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  // While the server cannot be reached: waits between attempts, doubling up to the maximum.
  std::chrono::milliseconds initial_backoff = std::chrono::seconds(1);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
  // Stored certificates expiring sooner than this are renewed by joining again.
  int renew_within_days = 30;
};

// The node's credentials for config.node_name. The stored ones under <data-dir>/agent are used
// when all three files exist, the key matches the certificate, the certificate is for this node,
// chains to the stored CA and is valid for renew_within_days more days, and the CA matches the
// token's hash. Otherwise the node joins config.server_url with config.token: it fetches the CA
// bundle from /cacerts without verifying TLS (the only unverified call), compares its SHA-256
// with the token's hash (a bare-secret token has none: the CA is trusted on first use, with a
// warning, and must match a CA stored by an earlier join), then, over TLS verified against that
// CA, sends a CSR for a new key with the token as bearer token and stores the certificate, key
// and CA (mode 0600, atomic writes).
// Failure: kInvalidArgument with a one-line message when retrying cannot help (the server
// refused the token, its CA does not match the token, a bad URL or token); kCancelled when
// `stop` was requested. While the server cannot be reached (or answers 5xx) it retries with
// back-off, logging every attempt. Blocks the calling thread.
Result<NodeCredentials> JoinCluster(const AgentConfig& config, std::stop_token stop,
                                    const JoinOptions& options = {});

// The cluster-wide settings of the server at config.server_url: GET /v1-orch/config with
// config.token as bearer token, over TLS verified against `ca_pem` (the joined CA). Called at
// every start, so a server restarted with other flags is followed at the agent's next start.
// Failure: kNotFound when the server hands out none (an orch server older than the agent);
// kInvalidArgument when it refuses the token or its answer is unusable; kCancelled on `stop`.
// While the server cannot be reached it retries with back-off, as JoinCluster does.
Result<ClusterSettings> FetchClusterSettings(const AgentConfig& config, const std::string& ca_pem,
                                             std::stop_token stop, const JoinOptions& options = {});

}  // namespace orch
