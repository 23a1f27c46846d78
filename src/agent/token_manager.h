// Service-account tokens for projected volumes (serviceAccountToken sources): obtained from the
// API with a TokenRequest bound to the pod, kept per pod, and renewed once 80 % of their lifetime
// (or 24 hours) has passed, as the kubelet's token manager does.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "json_util.h"
#include "orch/api_client.h"
#include "orch/status.h"

namespace orch::agent {

// Thread-safe.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A token of `pod`'s service account bound to the pod, for `audience` ("" = the API server's)
  // and `expiration_seconds`. A cached token is returned until it needs renewal; when renewal
  // fails the old token is returned while it is still valid. kUnavailable (with the API's
  // message) when no token can be had now; the caller retries.
  virtual Result<std::string> Token(const json& pod, const std::string& audience,
                                    int64_t expiration_seconds) = 0;
  // Drops the tokens of pod `uid` (its volumes are gone).
  virtual void Forget(const std::string& uid) = 0;
};

class TokenManager : public TokenSource {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // `client` must outlive the manager; `now` defaults to the system clock.
  explicit TokenManager(ApiClient& client, Clock now = nullptr);

  Result<std::string> Token(const json& pod, const std::string& audience,
                            int64_t expiration_seconds) override;
  void Forget(const std::string& uid) override;

  // Whether a token issued at `issued` and expiring at `expires` is due for renewal at `now`.
  static bool NeedsRefresh(std::chrono::system_clock::time_point issued,
                           std::chrono::system_clock::time_point expires,
                           std::chrono::system_clock::time_point now);

 private:
  struct Entry {
    std::string token;
    std::chrono::system_clock::time_point issued, expires;
  };
  ApiClient& client_;
  Clock now_;
  std::mutex mu_;
  std::map<std::string, Entry> tokens_;  // by "<pod uid>/<audience>/<seconds>"; guarded by mu_
};

}  // namespace orch::agent
