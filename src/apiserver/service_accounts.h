// Service accounts in the API server: the TokenRequest subresource (serviceaccounts/NAME/token)
// that issues bound JWTs, the authenticator that accepts them (and legacy Secret tokens), and
// the ServiceAccount admission plugin that gives pods an account and its kube-api-access volume.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth.h"
#include "orch/sa_token.h"
#include "rest.h"

namespace orch::api {

struct ServiceAccountTokenOptions {
  std::string issuer = satoken::kDefaultIssuer;
  // What tokens must be meant for (kube-apiserver's --api-audiences); default audiences of
  // TokenRequests that name none.
  std::vector<std::string> audiences = {satoken::kDefaultIssuer};
  // Unix seconds now; tests pass their own clock.
  std::function<int64_t()> now;
};

// Thread-safe. `rest` and `resources` (the built-in resource set) must outlive it.
class ServiceAccountTokens : public TokenAuthenticator {
 public:
  ServiceAccountTokens(Rest& rest, std::shared_ptr<const ResourceSet> resources,
                       satoken::SigningKey key, ServiceAccountTokenOptions options);

  // POST .../namespaces/NS/serviceaccounts/NAME/token with the TokenRequest `request`: the
  // request with status.token and status.expirationTimestamp (201), or upstream's errors: 422
  // for a lifetime under 10 minutes, 404 for a missing account or bound object, 400 for a bound
  // pod of another account or an unsupported kind, 409 for a bound object's uid mismatch.
  ApiResult<json> CreateToken(const std::string& ns, const std::string& name, json request);

  // The user of a token this server signed, when the token is still valid: issuer, expiry and
  // audience, and that its service account and bound pod or secret still exist with the uids it
  // names (deleted for over 60 s counts as gone). Legacy tokens must still be in their Secret.
  // Successes are remembered for 10 s (never past the token's expiry), as upstream caches.
  std::optional<UserInfo> AuthenticateToken(const std::string& token) const override;

  // The token of a kubernetes.io/service-account-token Secret for account `ns`/`name` (uid).
  Result<std::string> LegacyToken(const std::string& ns, const std::string& name,
                                  const std::string& uid, const std::string& secret_name) const;

  // /.well-known/openid-configuration and /openid/v1/jwks (OIDC discovery of the issuer).
  json OpenIdConfiguration(const std::string& external_url) const;
  json Jwks() const;

 private:
  std::optional<UserInfo> Validate(const std::string& token, int64_t now,
                                   int64_t* valid_until) const;
  // The object when it exists with `uid` and is not deleted for more than 60 s.
  std::optional<json> Live(const char* plural, const std::string& ns, const std::string& name,
                           const std::string& uid, int64_t now) const;
  int64_t Now() const;

  Rest& rest_;
  std::shared_ptr<const ResourceSet> resources_;
  const satoken::SigningKey key_;
  const ServiceAccountTokenOptions options_;

  struct CacheEntry {
    UserInfo user;
    int64_t valid_until;  // unix seconds
  };
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, CacheEntry> cache_;  // by token hash; guarded by mu_
};

// Upstream's ServiceAccount admission plugin, on pod creation: spec.serviceAccountName defaults
// to "default" and must exist (403 otherwise); unless automountServiceAccountToken is false on
// the pod (or, when the pod does not say, on the account) the pod gets the projected volume
// kube-api-access-XXXXX (a bound token, the kube-root-ca.crt ConfigMap's ca.crt and the
// namespace) mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every
// container that has nothing there; imagePullSecrets come from the account when the pod has none.
class ServiceAccountAdmission : public AdmissionPlugin {
 public:
  ServiceAccountAdmission(Store& store, const ResourceType& service_accounts)
      : store_(store), service_accounts_(service_accounts) {}
  std::optional<ApiError> Admit(AdmissionRequest& request) override;

 private:
  Store& store_;
  const ResourceType& service_accounts_;
};

// A TokenRequest sent as Kubernetes protobuf (kubectl does): spec's audiences,
// expirationSeconds and boundObjectRef as JSON.
ApiResult<json> DecodeTokenRequestProtobuf(std::string_view body);

// What the admission plugin adds, exposed for tests: mutates `pod` given its account `sa`.
void AddServiceAccountVolume(json& pod, const json& service_account);

inline constexpr char kServiceAccountMountPath[] = "/var/run/secrets/kubernetes.io/serviceaccount";
inline constexpr char kRootCaConfigMap[] = "kube-root-ca.crt";

}  // namespace orch::api
