// Unit tests of service-account JWTs (orch/sa_token.h): keys, RS256 signatures, upstream's
// claim layout, and the issuer, expiry and audience checks.
#include "orch/sa_token.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "orch/base64.h"
#include "orch/files.h"

using namespace orch;
using namespace orch::satoken;
using json = nlohmann::json;

namespace {

const SigningKey& TestKey() {
  static const SigningKey key = *SigningKey::Generate();
  return key;
}

Claims PodClaims(int64_t now) {
  Claims c;
  c.issuer = kDefaultIssuer;
  c.audiences = {kDefaultIssuer, "k3s"};
  c.ns = "default";
  c.service_account = {"default", "sa-uid"};
  c.pod = ObjectRef{"web", "pod-uid"};
  c.node = ObjectRef{"node1", "node-uid"};
  c.issued_at = c.not_before = now;
  c.expiry = now + 3600;
  return c;
}

}  // namespace

TEST_CASE("base64url round trips and refuses standard base64") {
  std::string data = "\xfb\xff\xfe hello";
  std::string enc = Base64UrlEncode(data);
  CHECK(enc.find('=') == std::string::npos);
  CHECK(enc.find('+') == std::string::npos);
  CHECK(enc.find('/') == std::string::npos);
  CHECK(Base64UrlDecode(enc) == data);
  CHECK_FALSE(Base64UrlDecode("ab+/").has_value());
  CHECK_FALSE(Base64UrlDecode("a").has_value());
}

TEST_CASE("a signed token verifies and carries upstream's claims") {
  int64_t now = 1700000000;
  json claims = ClaimsToJson(PodClaims(now));
  auto token = TestKey().Sign(claims);
  REQUIRE(token.ok());
  // Header names the algorithm and the key.
  auto header = json::parse(*Base64UrlDecode(token->substr(0, token->find('.'))));
  CHECK(header["alg"] == "RS256");
  CHECK(header["kid"] == TestKey().key_id());

  auto verified = TestKey().Verify(*token);
  REQUIRE(verified.ok());
  const json& c = *verified;
  CHECK(c["iss"] == kDefaultIssuer);
  CHECK(c["sub"] == "system:serviceaccount:default:default");
  CHECK(c["aud"] == json::array({kDefaultIssuer, "k3s"}));
  CHECK(c["exp"] == now + 3600);
  CHECK(c["iat"] == now);
  CHECK(c["nbf"] == now);
  CHECK(c["jti"].get<std::string>().size() == 36);
  CHECK(c["kubernetes.io"]["namespace"] == "default");
  CHECK(c["kubernetes.io"]["serviceaccount"] == json({{"name", "default"}, {"uid", "sa-uid"}}));
  CHECK(c["kubernetes.io"]["pod"] == json({{"name", "web"}, {"uid", "pod-uid"}}));
  CHECK(c["kubernetes.io"]["node"] == json({{"name", "node1"}, {"uid", "node-uid"}}));
  CHECK_FALSE(c["kubernetes.io"].contains("warnafter"));
  CHECK_FALSE(c["kubernetes.io"].contains("secret"));

  auto v = ValidateClaims(c, kDefaultIssuer, {kDefaultIssuer}, now + 10);
  REQUIRE(v.ok());
  CHECK_FALSE(v->legacy);
  CHECK(v->ns == "default");
  CHECK(v->service_account.name == "default");
  CHECK(v->service_account.uid == "sa-uid");
  REQUIRE(v->pod);
  CHECK(v->pod->uid == "pod-uid");
  CHECK(v->expiry == now + 3600);
}

TEST_CASE("tampered, foreign and malformed tokens are refused") {
  auto token = *TestKey().Sign(ClaimsToJson(PodClaims(1700000000)));
  // Another key's signature.
  auto other = SigningKey::Generate();
  REQUIRE(other.ok());
  CHECK_FALSE(other->Verify(token).ok());
  // A changed payload.
  size_t first = token.find('.'), second = token.find('.', first + 1);
  json claims = json::parse(*Base64UrlDecode(token.substr(first + 1, second - first - 1)));
  claims["kubernetes.io"]["namespace"] = "kube-system";
  std::string forged =
      token.substr(0, first + 1) + Base64UrlEncode(claims.dump()) + token.substr(second);
  CHECK_FALSE(TestKey().Verify(forged).ok());
  // alg none.
  std::string none =
      Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode(claims.dump()) + ".";
  CHECK_FALSE(TestKey().Verify(none).ok());
  for (const char* garbage : {"", "abc", "a.b", "a.b.c.d", "!!!.???.***", "K10abc::server:x"}) {
    CHECK_FALSE(TestKey().Verify(garbage).ok());
  }
}

TEST_CASE("expiry, not-before, issuer and audience are checked") {
  int64_t now = 1700000000;
  json c = ClaimsToJson(PodClaims(now));
  CHECK(ValidateClaims(c, kDefaultIssuer, {"k3s"}, now).ok());
  // Expired (beyond the 60 s leeway).
  CHECK(ValidateClaims(c, kDefaultIssuer, {kDefaultIssuer}, now + 3600 + 30).ok());
  auto expired = ValidateClaims(c, kDefaultIssuer, {kDefaultIssuer}, now + 3600 + 61);
  REQUIRE_FALSE(expired.ok());
  CHECK(expired.status().message() == "token has expired");
  // Not valid yet.
  CHECK_FALSE(ValidateClaims(c, kDefaultIssuer, {kDefaultIssuer}, now - 120).ok());
  // Another issuer, another audience.
  CHECK_FALSE(ValidateClaims(c, "https://other", {kDefaultIssuer}, now).ok());
  CHECK_FALSE(ValidateClaims(c, kDefaultIssuer, {"vault"}, now).ok());
  // The subject must be the service account's.
  json wrong_sub = c;
  wrong_sub["sub"] = "system:serviceaccount:kube-system:default";
  CHECK_FALSE(ValidateClaims(wrong_sub, kDefaultIssuer, {kDefaultIssuer}, now).ok());
  json no_exp = c;
  no_exp.erase("exp");
  CHECK_FALSE(ValidateClaims(no_exp, kDefaultIssuer, {kDefaultIssuer}, now).ok());
}

TEST_CASE("warnafter and secret bindings are laid out as upstream") {
  Claims c = PodClaims(100);
  c.pod.reset();
  c.node.reset();
  c.secret = ObjectRef{"s", "secret-uid"};
  c.warn_after = 3707;
  json j = ClaimsToJson(c);
  CHECK(j["kubernetes.io"]["warnafter"] == 3707);
  CHECK(j["kubernetes.io"]["secret"] == json({{"name", "s"}, {"uid", "secret-uid"}}));
  auto v = ValidateClaims(j, kDefaultIssuer, {"k3s"}, 200);
  REQUIRE(v.ok());
  REQUIRE(v->secret);
  CHECK(v->secret->name == "s");
  CHECK_FALSE(v->pod);
}

TEST_CASE("legacy secret tokens have no expiry and name their secret") {
  json c = LegacyClaims("ns1", "builder", "sa-uid", "builder-token");
  CHECK(c["iss"] == "kubernetes/serviceaccount");
  CHECK(c["sub"] == "system:serviceaccount:ns1:builder");
  CHECK(c["kubernetes.io/serviceaccount/secret.name"] == "builder-token");
  CHECK_FALSE(c.contains("exp"));
  auto token = TestKey().Sign(c);
  REQUIRE(token.ok());
  auto claims = TestKey().Verify(*token);
  REQUIRE(claims.ok());
  auto v = ValidateClaims(*claims, kDefaultIssuer, {kDefaultIssuer}, 4000000000);
  REQUIRE(v.ok());
  CHECK(v->legacy);
  CHECK(v->secret_name == "builder-token");
  CHECK(v->service_account.uid == "sa-uid");
  CHECK(v->expiry == 0);
}

TEST_CASE("the key is created once and reused") {
  auto dir = std::filesystem::temp_directory_path() / ("sa_token_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "service.key").string();
  auto first = SigningKey::LoadOrCreate(path);
  REQUIRE(first.ok());
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_read) ==
        std::filesystem::perms::none);
  auto second = SigningKey::LoadOrCreate(path);
  REQUIRE(second.ok());
  CHECK(first->key_id() == second->key_id());
  auto token = first->Sign({{"x", 1}});
  REQUIRE(token.ok());
  CHECK(second->Verify(*token).ok());
  json jwk = second->PublicJwk();
  CHECK(jwk["kty"] == "RSA");
  CHECK(jwk["e"] == "AQAB");
  CHECK(jwk["kid"] == first->key_id());
  // A file that is not a key is refused, not replaced.
  std::string bad = (dir / "bad.key").string();
  REQUIRE(WriteFileAtomic(bad, "garbage", 0600).ok());
  CHECK_FALSE(SigningKey::LoadOrCreate(bad).ok());
  CHECK(*ReadFileToString(bad) == "garbage");
  std::filesystem::remove_all(dir);
}
