// Authentication by verified client certificate or by bearer token (static tokens first, then
// the token authenticators such as service-account JWTs).
#include "auth.h"

#include <openssl/crypto.h>

namespace orch::api {

void Authenticator::AddToken(const std::string& token, UserInfo user) {
  std::lock_guard lock(mu_);
  tokens_[token] = std::move(user);
}

void Authenticator::AddTokenAuthenticator(const TokenAuthenticator* authenticator) {
  std::lock_guard lock(mu_);
  token_authenticators_.push_back(authenticator);
}

std::optional<UserInfo> Authenticator::Authenticate(const Request& request) const {
  if (request.peer) {
    UserInfo user{request.peer->common_name, request.peer->organizations};
    user.groups.push_back("system:authenticated");
    return user;
  }
  std::string header = request.headers.Get("authorization");
  static const std::string kBearer = "Bearer ";
  if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0) {
    std::string token = header.substr(kBearer.size());
    std::vector<const TokenAuthenticator*> others;
    {
      std::lock_guard lock(mu_);
      for (const auto& [known, user] : tokens_) {
        // Constant-time comparison: a token must not leak through timing.
        if (known.size() == token.size() &&
            CRYPTO_memcmp(known.data(), token.data(), token.size()) == 0) {
          UserInfo out = user;
          out.groups.push_back("system:authenticated");
          return out;
        }
      }
      others = token_authenticators_;
    }
    // Outside the lock: these may read the datastore.
    for (const TokenAuthenticator* a : others) {
      if (auto user = a->AuthenticateToken(token)) return user;
    }
  }
  return std::nullopt;
}

}  // namespace orch::api
