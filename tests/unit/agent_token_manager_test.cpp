// Unit tests of the agent's service-account token cache (src/agent/token_manager.h): the
// TokenRequest it sends, reuse until 80 % of the lifetime, renewal, keeping a valid token while
// renewal fails, forgetting a pod's tokens; and projected volumes writing the token file.
#include <catch2/catch.hpp>

#include "fake_api_client.h"
#include "orch/timestamps.h"
#include "token_manager.h"

namespace orch::agent {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// Answers serviceaccounts/NAME/token with "token-N" valid for the requested lifetime.
class TokenApi : public testing::FakeApiClient {
 public:
  Result<json> Post(const ResourceRef& ref, const std::string& ns, const std::string& name,
                    const std::string& subresource, const json& body) override {
    requests.push_back({ns, name, subresource, body});
    if (fail) return Unavailable("the server is away");
    if (ref.resource != "serviceaccounts" || subresource != "token") return NotFound("no");
    auto expires = now + seconds(body["spec"]["expirationSeconds"].get<int64_t>());
    json out = body;
    out["status"] = {{"token", "token-" + std::to_string(++issued)},
                     {"expirationTimestamp", FormatTime(expires)}};
    return out;
  }
  struct Request {
    std::string ns, name, subresource;
    json body;
  };
  std::vector<Request> requests;
  system_clock::time_point now = system_clock::time_point(seconds(1700000000));
  int issued = 0;
  bool fail = false;
};

json Pod() {
  return {{"metadata", {{"name", "web"}, {"namespace", "apps"}, {"uid", "uid-1"}}},
          {"spec", {{"serviceAccountName", "builder"}}}};
}

}  // namespace

TEST_CASE("tokens are requested bound to the pod and renewed at 80 % of their lifetime") {
  TokenApi api;
  TokenManager tokens(api, [&] { return api.now; });
  auto first = tokens.Token(Pod(), "", 3607);
  REQUIRE(first.ok());
  CHECK(*first == "token-1");
  REQUIRE(api.requests.size() == 1);
  const auto& r = api.requests[0];
  CHECK(r.ns == "apps");
  CHECK(r.name == "builder");
  CHECK(r.subresource == "token");
  CHECK(r.body["kind"] == "TokenRequest");
  CHECK(r.body["spec"]["expirationSeconds"] == 3607);
  CHECK(r.body["spec"]["boundObjectRef"] ==
        json({{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "web"}, {"uid", "uid-1"}}));
  CHECK_FALSE(r.body["spec"].contains("audiences"));

  api.now += seconds(2800);  // under 80 % of 3607 s
  CHECK(*tokens.Token(Pod(), "", 3607) == "token-1");
  CHECK(api.requests.size() == 1);
  api.now += seconds(100);  // past 2885.6 s
  CHECK(*tokens.Token(Pod(), "", 3607) == "token-2");

  // Another audience is another token.
  auto vault = tokens.Token(Pod(), "vault", 600);
  REQUIRE(vault.ok());
  CHECK(*vault == "token-3");
  CHECK(api.requests.back().body["spec"]["audiences"] == json::array({"vault"}));
}

TEST_CASE("a valid token keeps serving while renewal fails; none is an error") {
  TokenApi api;
  TokenManager tokens(api, [&] { return api.now; });
  REQUIRE(*tokens.Token(Pod(), "", 600) == "token-1");
  api.fail = true;
  api.now += seconds(500);  // due for renewal, still valid
  auto kept = tokens.Token(Pod(), "", 600);
  REQUIRE(kept.ok());
  CHECK(*kept == "token-1");
  api.now += seconds(200);  // expired
  auto gone = tokens.Token(Pod(), "", 600);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.status().code() == StatusCode::kUnavailable);
  CHECK(gone.status().message() == "failed to fetch token: the server is away");
}

TEST_CASE("Forget drops a pod's tokens") {
  TokenApi api;
  TokenManager tokens(api, [&] { return api.now; });
  REQUIRE(*tokens.Token(Pod(), "", 3600) == "token-1");
  tokens.Forget("uid-1");
  CHECK(*tokens.Token(Pod(), "", 3600) == "token-2");
}

TEST_CASE("renewal is due at 80 % of the lifetime or after a day") {
  auto t0 = system_clock::time_point(seconds(1000));
  CHECK_FALSE(TokenManager::NeedsRefresh(t0, t0 + seconds(1000), t0 + seconds(799)));
  CHECK(TokenManager::NeedsRefresh(t0, t0 + seconds(1000), t0 + seconds(800)));
  CHECK(TokenManager::NeedsRefresh(t0, t0 + std::chrono::hours(24 * 365),
                                   t0 + std::chrono::hours(25)));
}

}  // namespace orch::agent
