// The agent's service-account token cache (token_manager.h).
#include "token_manager.h"

#include <fmt/format.h>

#include "orch/timestamps.h"

namespace orch::agent {

using std::chrono::system_clock;

namespace {

// Upstream renews a token at the latest after a day, however long it is valid.
constexpr std::chrono::hours kMaxTokenAge(24);

}  // namespace

TokenManager::TokenManager(ApiClient& client, Clock now)
    : client_(client), now_(now ? std::move(now) : [] { return system_clock::now(); }) {}

bool TokenManager::NeedsRefresh(system_clock::time_point issued, system_clock::time_point expires,
                                system_clock::time_point now) {
  auto lifetime = expires - issued;
  return now >= issued + lifetime * 8 / 10 || now - issued > kMaxTokenAge;
}

Result<std::string> TokenManager::Token(const json& pod, const std::string& audience,
                                        int64_t expiration_seconds) {
  const std::string uid = Str(pod, {"metadata", "uid"});
  const std::string key = fmt::format("{}/{}/{}", uid, audience, expiration_seconds);
  auto now = now_();
  std::optional<Entry> cached;
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(key);
    if (it != tokens_.end()) cached = it->second;
  }
  if (cached && !NeedsRefresh(cached->issued, cached->expires, now)) return cached->token;

  const std::string ns = Str(pod, {"metadata", "namespace"});
  std::string account = Str(pod, {"spec", "serviceAccountName"});
  if (account.empty()) account = "default";
  json spec = {{"expirationSeconds", expiration_seconds},
               {"boundObjectRef",
                {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"name", Str(pod, {"metadata", "name"})},
                 {"uid", uid}}}};
  if (!audience.empty()) spec["audiences"] = json::array({audience});
  json request = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  auto answer = client_.Post(resources::kServiceAccounts, ns, account, "token", request);
  std::string token = answer.ok() ? Str(*answer, {"status", "token"}) : "";
  if (token.empty()) {
    std::string why = answer.ok() ? "the answer has no token" : answer.status().message();
    // A token that is still valid keeps serving while renewal fails.
    if (cached && now < cached->expires) return cached->token;
    return Unavailable(fmt::format("failed to fetch token: {}", why));
  }
  auto expires = ParseTime(Str(*answer, {"status", "expirationTimestamp"}));
  Entry entry{token, now, expires ? *expires : now + std::chrono::seconds(expiration_seconds)};
  std::lock_guard lock(mu_);
  tokens_[key] = entry;
  return token;
}

void TokenManager::Forget(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = tokens_.lower_bound(uid + "/");
  while (it != tokens_.end() && it->first.rfind(uid + "/", 0) == 0) it = tokens_.erase(it);
}

}  // namespace orch::agent
