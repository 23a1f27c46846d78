// Service-account tokens: the RSA signing key (k3s's <data-dir>/server/tls/service.key) and the
// JWTs (RS256) the API server issues and accepts, with upstream's claims. Pure code, no I/O but
// the key file.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "orch/status.h"

struct evp_pkey_st;

namespace orch::satoken {

// Upstream's issuer for a cluster domain of cluster.local (kube-apiserver's
// --service-account-issuer as k3s sets it); also the default API audience.
inline constexpr char kDefaultIssuer[] = "https://kubernetes.default.svc.cluster.local";
// The issuer of tokens in kubernetes.io/service-account-token Secrets.
inline constexpr char kLegacyIssuer[] = "kubernetes/serviceaccount";
// Upstream's bounds of TokenRequest's expirationSeconds, and its default.
inline constexpr int64_t kMinExpirationSeconds = 600;
inline constexpr int64_t kMaxExpirationSeconds = int64_t{1} << 32;
inline constexpr int64_t kDefaultExpirationSeconds = 3600;
// What the admission plugin asks for in kube-api-access volumes; a pod-bound token requested
// with exactly this lifetime is valid a year but flagged (warnafter) after it, as upstream
// does so that clients which never reload their token keep working.
inline constexpr int64_t kWarnOnlyExpirationSeconds = 3607;
inline constexpr int64_t kExtendedExpirationSeconds = 365LL * 24 * 3600;
// Secret type and annotations of legacy token Secrets.
inline constexpr char kSecretType[] = "kubernetes.io/service-account-token";
inline constexpr char kNameAnnotation[] = "kubernetes.io/service-account.name";
inline constexpr char kUidAnnotation[] = "kubernetes.io/service-account.uid";

// An RSA key pair. Copies share the key; thread-safe (const use only).
class SigningKey {
 public:
  // Reads the PEM private key at `path`, or creates a 2048-bit one there (mode 0600) when the
  // file does not exist. Fails on an unreadable or non-RSA key (never replaces it).
  static Result<SigningKey> LoadOrCreate(const std::string& path);
  static Result<SigningKey> FromPem(const std::string& private_key_pem);
  static Result<SigningKey> Generate();

  // A compact JWS (header {"alg":"RS256","kid":...}) over `claims`.
  Result<std::string> Sign(const nlohmann::json& claims) const;
  // The claims of `token` when its signature is this key's; kInvalidArgument for anything
  // malformed or signed otherwise. Checks nothing inside the claims.
  Result<nlohmann::json> Verify(const std::string& token) const;

  // base64url(SHA-256 of the DER public key), as upstream's kid.
  const std::string& key_id() const { return key_id_; }
  std::string PrivateKeyPem() const;
  // The public key as a JWK (kty, alg, use, kid, n, e), for /openid/v1/jwks.
  nlohmann::json PublicJwk() const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string key_id_;
};

struct ObjectRef {
  std::string name;
  std::string uid;
};

// The claims of a bound token, as upstream lays them out: iss, sub, aud, exp, iat, nbf, jti and
// "kubernetes.io": {namespace, serviceaccount, pod|secret, node, warnafter}.
struct Claims {
  std::string issuer;
  std::vector<std::string> audiences;
  std::string ns;
  ObjectRef service_account;
  std::optional<ObjectRef> pod, secret, node;
  int64_t issued_at = 0, not_before = 0, expiry = 0;
  int64_t warn_after = 0;  // 0: none
  std::string id;          // jti
};
nlohmann::json ClaimsToJson(const Claims& claims);

// The claims of a legacy Secret token (no expiry, no audience).
nlohmann::json LegacyClaims(const std::string& ns, const std::string& service_account,
                            const std::string& service_account_uid, const std::string& secret_name);

// What a verified token says, checked against the accepted issuers and audiences at `now`
// (Unix seconds; 60 s of leeway for clock skew on exp, nbf and iat, as upstream's JWT library).
struct Validated {
  bool legacy = false;
  std::string ns;
  ObjectRef service_account;
  std::optional<ObjectRef> pod, secret, node;
  std::string secret_name;  // legacy tokens
  int64_t expiry = 0;       // 0: none (legacy)
};
Result<Validated> ValidateClaims(const nlohmann::json& claims, const std::string& issuer,
                                 const std::vector<std::string>& audiences, int64_t now);

// "system:serviceaccount:NS:NAME"
std::string UserName(const std::string& ns, const std::string& name);

// URL-safe base64 without padding (RFC 7515).
std::string Base64UrlEncode(const std::string& data);
std::optional<std::string> Base64UrlDecode(const std::string& text);

}  // namespace orch::satoken
