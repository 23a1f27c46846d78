// The pieces of joining a cluster (orch/join.h) that decide, apart from the network: the join
// token's form, the CA check, whether stored credentials can be reused, how answers map to errors.
#pragma once

#include <chrono>
#include <string>

#include "orch/join.h"
#include "orch/status.h"

namespace orch::agent {

// A join token: k3s's full form "K10<sha256 hex of the CA bundle>::<user>:<secret>", or a bare
// secret (no CA hash: the CA is trusted on first use).
struct JoinToken {
  std::string ca_hash;  // lower-case hex; empty for a bare secret
  std::string user;
  std::string secret;
  std::string text;  // the token as given, sent as bearer token
};

// kInvalidArgument naming what is wrong (never echoing the secret).
Result<JoinToken> ParseJoinToken(const std::string& token);

// OK when the token pins no CA or `ca_bundle_pem` hashes to its pin; otherwise kInvalidArgument
// "the server's CA does not match the token's hash".
Status CheckCaBundle(const JoinToken& token, const std::string& ca_bundle_pem);

// OK when `credentials` (PEM fields) can be used for `node_name`: the key matches the
// certificate, whose subject is system:node:<node_name> in system:nodes, which is signed by the
// CA and valid for more than `renew_within_days` days, and the CA passes CheckCaBundle. Otherwise
// the reason to join again (kNotFound, kInvalidArgument or kUnavailable).
Status CheckCredentials(const NodeCredentials& credentials, const std::string& node_name,
                        const JoinToken& token, int renew_within_days);

// The Status for a failed answer of the join endpoint: 401/403 "the server refused the token",
// other 4xx kInvalidArgument, 5xx kUnavailable (retry); `body` is the API Status whose message is
// quoted.
Status JoinRefusal(int http_code, const std::string& body);

// The wait before attempt `attempt` (1-based) after failures: initial, doubling, capped at max.
std::chrono::milliseconds JoinBackoff(int attempt, std::chrono::milliseconds initial,
                                      std::chrono::milliseconds max);

}  // namespace orch::agent
