// Service-account tokens and admission in the API server (service_accounts.h): issuing
// TokenRequests, authenticating bound and legacy tokens against the objects they name, and
// giving new pods their account's credentials.
#include "service_accounts.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <set>

#include "orch/base64.h"
#include "orch/json_path.h"
#include "orch/pki.h"

namespace orch::api {
namespace {

using json_path::Field;
using json_path::String;

// Upstream accepts a token for 60 s after its bound object began deletion (the pod may still be
// terminating and using it).
constexpr int64_t kDeletionGraceSeconds = 60;
constexpr int64_t kCacheSeconds = 10;
constexpr size_t kCacheLimit = 4096;
constexpr char kAuthenticationGroup[] = "authentication.k8s.io";

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool DeletedLongAgo(const json& object, int64_t now) {
  std::string ts = MetaString(object, "deletionTimestamp");
  if (ts.empty()) return false;
  auto t = ParseTime(ts);
  if (!t) return true;
  return UnixSeconds(*t) + kDeletionGraceSeconds < now;
}

ApiError InvalidTokenRequest(const std::string& field, const json& value,
                             const std::string& detail) {
  return ApiError::Invalid(std::string("TokenRequest.") + kAuthenticationGroup, "",
                           {FieldInvalid(field, value, detail)});
}

// Whether every audience asked for is one of the API server's own (upstream extends only such
// tokens).
bool KubeAudiences(const std::vector<std::string>& requested, const std::vector<std::string>& api) {
  if (requested.empty()) return false;
  for (const std::string& a : requested) {
    if (std::find(api.begin(), api.end(), a) == api.end()) return false;
  }
  return true;
}

// Upstream's automount rule: the pod's own setting wins, then the account's, else mount.
bool ShouldAutomount(const json& pod, const json& sa) {
  const json& on_pod = Field(pod, {"spec", "automountServiceAccountToken"});
  if (on_pod.is_boolean()) return on_pod.get<bool>();
  const json& on_sa = Field(sa, {"automountServiceAccountToken"});
  if (on_sa.is_boolean()) return on_sa.get<bool>();
  return true;
}

// Protobuf wire reading for TokenRequest bodies (kubectl sends them so; the built-in schemas do
// not cover the authentication group). Field numbers from authentication/v1's generated.proto.
struct Wire {
  std::string_view data;
  bool Varint(uint64_t* out) {
    *out = 0;
    for (int shift = 0; shift < 64 && !data.empty(); shift += 7) {
      auto b = static_cast<uint8_t>(data.front());
      data.remove_prefix(1);
      *out |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // Calls `field(number, bytes)` for length-delimited fields, `number, varint` for varints.
  bool Each(const std::function<void(uint64_t, std::string_view)>& bytes,
            const std::function<void(uint64_t, uint64_t)>& varint) {
    while (!data.empty()) {
      uint64_t key = 0, v = 0;
      if (!Varint(&key)) return false;
      switch (key & 7) {
        case 0:
          if (!Varint(&v)) return false;
          varint(key >> 3, v);
          break;
        case 2:
          if (!Varint(&v) || v > data.size()) return false;
          bytes(key >> 3, data.substr(0, v));
          data.remove_prefix(v);
          break;
        case 1:
          if (data.size() < 8) return false;
          data.remove_prefix(8);
          break;
        case 5:
          if (data.size() < 4) return false;
          data.remove_prefix(4);
          break;
        default:
          return false;
      }
    }
    return true;
  }
};

}  // namespace

ApiResult<json> DecodeTokenRequestProtobuf(std::string_view body) {
  constexpr std::string_view kMagic{"k8s\0", 4};
  if (body.substr(0, 4) != kMagic) return ApiError::BadRequest("invalid protobuf body");
  std::string_view raw;
  Wire envelope{body.substr(4)};
  bool ok = envelope.Each(
      [&](uint64_t n, std::string_view b) {
        if (n == 2) raw = b;
      },
      [](uint64_t, uint64_t) {});
  json spec = json::object();
  Wire message{raw};
  ok = ok && message.Each(
                 [&](uint64_t n, std::string_view b) {
                   if (n != 2) return;
                   Wire sw{b};
                   sw.Each(
                       [&](uint64_t f, std::string_view v) {
                         if (f == 1) spec["audiences"].push_back(std::string(v));
                         if (f != 3) return;
                         json ref = json::object();
                         Wire rw{v};
                         const char* names[] = {"", "kind", "apiVersion", "name", "uid"};
                         rw.Each(
                             [&](uint64_t g, std::string_view x) {
                               if (g >= 1 && g <= 4) ref[names[g]] = std::string(x);
                             },
                             [](uint64_t, uint64_t) {});
                         spec["boundObjectRef"] = ref;
                       },
                       [&](uint64_t f, uint64_t v) {
                         if (f == 4) spec["expirationSeconds"] = static_cast<int64_t>(v);
                       });
                 },
                 [](uint64_t, uint64_t) {});
  if (!ok) return ApiError::BadRequest("invalid protobuf body for a TokenRequest");
  return json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
}

ServiceAccountTokens::ServiceAccountTokens(Rest& rest, std::shared_ptr<const ResourceSet> resources,
                                           satoken::SigningKey key,
                                           ServiceAccountTokenOptions options)
    : rest_(rest),
      resources_(std::move(resources)),
      key_(std::move(key)),
      options_(std::move(options)) {}

int64_t ServiceAccountTokens::Now() const {
  return options_.now ? options_.now() : UnixSeconds(std::chrono::system_clock::now());
}

ApiResult<json> ServiceAccountTokens::CreateToken(const std::string& ns, const std::string& name,
                                                  json request) {
  if (!request.is_object()) return ApiError::BadRequest("the body must be a TokenRequest");
  json& spec = request["spec"];
  if (spec.is_null()) spec = json::object();
  if (!spec.is_object()) return ApiError::BadRequest("spec must be an object");
  json& expiration = spec["expirationSeconds"];
  if (expiration.is_null()) expiration = satoken::kDefaultExpirationSeconds;
  if (!expiration.is_number_integer()) {
    return ApiError::BadRequest("spec.expirationSeconds must be an integer");
  }
  int64_t seconds = expiration.get<int64_t>();
  if (seconds < satoken::kMinExpirationSeconds) {
    return InvalidTokenRequest("spec.expirationSeconds", seconds,
                               "may not specify a duration less than 10 minutes");
  }
  if (seconds > satoken::kMaxExpirationSeconds) {
    return InvalidTokenRequest("spec.expirationSeconds", seconds,
                               "may not specify a duration larger than 2^32 seconds");
  }
  std::vector<std::string> audiences;
  if (const json& a = spec.value("audiences", json()); a.is_array()) {
    for (const json& v : a) {
      if (!v.is_string()) return ApiError::BadRequest("spec.audiences must be strings");
      audiences.push_back(v.get<std::string>());
    }
  }
  if (audiences.empty()) audiences = options_.audiences;
  spec["audiences"] = audiences;

  const ResourceType* sa_type = resources_->Find("", "v1", "serviceaccounts");
  auto sa = rest_.Get(*sa_type, ns, name);
  if (!sa.ok()) return sa.error();

  satoken::Claims claims;
  claims.issuer = options_.issuer;
  claims.audiences = audiences;
  claims.ns = ns;
  claims.service_account = {name, Uid(*sa)};
  if (const json& ref = spec.value("boundObjectRef", json()); ref.is_object()) {
    std::string api_version = String(ref, {"apiVersion"});
    std::string kind = String(ref, {"kind"});
    std::string bound = String(ref, {"name"});
    std::string group = api_version.find('/') == std::string::npos
                            ? ""
                            : api_version.substr(0, api_version.find('/'));
    std::string uid;
    if (group.empty() && (kind == "Pod" || kind == "Secret")) {
      const ResourceType* type = resources_->Find("", "v1", kind == "Pod" ? "pods" : "secrets");
      auto object = rest_.Get(*type, ns, bound);
      if (!object.ok()) return object.error();
      uid = Uid(*object);
      if (kind == "Pod") {
        std::string pod_sa = String(*object, {"spec", "serviceAccountName"});
        if (pod_sa != name) {
          return ApiError::BadRequest(fmt::format(
              "cannot bind token for serviceaccount \"{}\" to pod running with different "
              "serviceaccount name.",
              name));
        }
        claims.pod = satoken::ObjectRef{bound, uid};
        // Upstream names the pod's node too (informational, for audits and node-bound checks).
        if (std::string node = String(*object, {"spec", "nodeName"}); !node.empty()) {
          auto node_object = rest_.Get(*resources_->Find("", "v1", "nodes"), "", node);
          if (node_object.ok()) claims.node = satoken::ObjectRef{node, Uid(*node_object)};
        }
      } else {
        claims.secret = satoken::ObjectRef{bound, uid};
      }
    } else {
      std::string gvk = group.empty() ? fmt::format("/{}, Kind={}", api_version, kind)
                                      : fmt::format("{}, Kind={}", api_version, kind);
      return ApiError::BadRequest("cannot bind token to object of type " + gvk);
    }
    if (std::string want = String(ref, {"uid"}); !want.empty() && want != uid) {
      return ApiError::Conflict(
          kind, bound,
          fmt::format("the UID in the bound object reference ({}) does not match the UID in "
                      "record. The object might have been deleted and then recreated",
                      want));
    }
  }

  int64_t now = Now();
  int64_t lifetime = seconds;
  // Tokens of kube-api-access volumes outlive their nominal hour (flagged by warnafter), so that
  // clients that never reread the file keep working; the status still says an hour, so the
  // agent refreshes on time.
  if (claims.pod && seconds == satoken::kWarnOnlyExpirationSeconds &&
      KubeAudiences(audiences, options_.audiences)) {
    claims.warn_after = now + seconds;
    lifetime = satoken::kExtendedExpirationSeconds;
  }
  claims.issued_at = claims.not_before = now;
  claims.expiry = now + lifetime;
  auto token = key_.Sign(satoken::ClaimsToJson(claims));
  if (!token.ok())
    return ApiError::Internal("failed to generate token: " + token.status().message());

  json out = std::move(request);
  out["apiVersion"] = std::string(kAuthenticationGroup) + "/v1";
  out["kind"] = "TokenRequest";
  json& meta = out["metadata"];
  if (!meta.is_object()) meta = json::object();
  meta["name"] = name;
  meta["namespace"] = ns;
  meta["creationTimestamp"] = nullptr;
  auto expires = std::chrono::system_clock::time_point(std::chrono::seconds(now + seconds));
  out["status"] = {{"token", *token}, {"expirationTimestamp", FormatTime(expires)}};
  return out;
}

std::optional<json> ServiceAccountTokens::Live(const char* plural, const std::string& ns,
                                               const std::string& name, const std::string& uid,
                                               int64_t now) const {
  const ResourceType* type = resources_->Find("", "v1", plural);
  if (type == nullptr || name.empty()) return std::nullopt;
  auto object = rest_.Get(*type, ns, name);
  if (!object.ok()) return std::nullopt;
  if (!uid.empty() && Uid(*object) != uid) return std::nullopt;
  if (DeletedLongAgo(*object, now)) return std::nullopt;
  return std::move(*object);
}

std::optional<UserInfo> ServiceAccountTokens::Validate(const std::string& token, int64_t now,
                                                       int64_t* valid_until) const {
  auto claims = key_.Verify(token);
  if (!claims.ok()) return std::nullopt;
  auto v = satoken::ValidateClaims(*claims, options_.issuer, options_.audiences, now);
  if (!v.ok()) return std::nullopt;
  const std::string& ns = v->ns;
  auto sa = Live("serviceaccounts", ns, v->service_account.name, v->service_account.uid, now);
  if (!sa) return std::nullopt;
  UserInfo user;
  user.name = satoken::UserName(ns, v->service_account.name);
  user.uid = Uid(*sa);
  user.groups = {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
  if (v->legacy) {
    // A legacy token lives as long as its Secret holds it for this very account.
    auto secret = Live("secrets", ns, v->secret_name, "", now);
    if (!secret || String(*secret, {"type"}) != satoken::kSecretType) return std::nullopt;
    const json& annotations = Field(*secret, {"metadata", "annotations"});
    if (String(annotations, {satoken::kNameAnnotation}) != v->service_account.name ||
        String(annotations, {satoken::kUidAnnotation}) != Uid(*sa)) {
      return std::nullopt;
    }
    auto stored = Base64Decode(String(*secret, {"data", "token"}));
    if (!stored || stored->size() != token.size() ||
        CRYPTO_memcmp(stored->data(), token.data(), token.size()) != 0) {
      return std::nullopt;
    }
    *valid_until = now + kCacheSeconds;
    return user;
  }
  if (v->pod) {
    if (!Live("pods", ns, v->pod->name, v->pod->uid, now)) return std::nullopt;
    user.extra["authentication.kubernetes.io/pod-name"] = {v->pod->name};
    user.extra["authentication.kubernetes.io/pod-uid"] = {v->pod->uid};
  }
  if (v->secret && !Live("secrets", ns, v->secret->name, v->secret->uid, now)) {
    return std::nullopt;
  }
  if (v->node) user.extra["authentication.kubernetes.io/node-name"] = {v->node->name};
  if (std::string jti = String(*claims, {"jti"}); !jti.empty()) {
    user.extra["authentication.kubernetes.io/credential-id"] = {"JTI=" + jti};
  }
  *valid_until = std::min(now + kCacheSeconds, v->expiry);
  return user;
}

std::optional<UserInfo> ServiceAccountTokens::AuthenticateToken(const std::string& token) const {
  // Only JWTs (three dot-separated parts) are ours to judge.
  if (std::count(token.begin(), token.end(), '.') != 2) return std::nullopt;
  int64_t now = Now();
  std::string key = pki::Sha256Hex(token);
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (it->second.valid_until > now) return it->second.user;
      cache_.erase(it);
    }
  }
  int64_t valid_until = 0;
  auto user = Validate(token, now, &valid_until);
  if (!user) return std::nullopt;
  std::lock_guard lock(mu_);
  if (cache_.size() >= kCacheLimit) {
    std::erase_if(cache_, [&](const auto& e) { return e.second.valid_until <= now; });
    if (cache_.size() >= kCacheLimit) cache_.clear();
  }
  cache_[key] = CacheEntry{*user, valid_until};
  return user;
}

Result<std::string> ServiceAccountTokens::LegacyToken(const std::string& ns,
                                                      const std::string& name,
                                                      const std::string& uid,
                                                      const std::string& secret_name) const {
  return key_.Sign(satoken::LegacyClaims(ns, name, uid, secret_name));
}

json ServiceAccountTokens::OpenIdConfiguration(const std::string& external_url) const {
  return {{"issuer", options_.issuer},
          {"jwks_uri", external_url + "/openid/v1/jwks"},
          {"response_types_supported", {"id_token"}},
          {"subject_types_supported", {"public"}},
          {"id_token_signing_alg_values_supported", {"RS256"}}};
}

json ServiceAccountTokens::Jwks() const {
  return {{"keys", {key_.PublicJwk()}}};
}

void AddServiceAccountVolume(json& pod, const json& service_account) {
  json& spec = pod["spec"];
  if (!ShouldAutomount(pod, service_account)) return;
  json& volumes = spec["volumes"];
  if (!volumes.is_array()) volumes = json::array();
  std::set<std::string> taken;
  for (const json& v : volumes) taken.insert(String(v, {"name"}));
  std::string name;
  do {
    name = "kube-api-access-" + RandomSuffix();
  } while (taken.contains(name));

  bool mounted = false;
  for (const char* list : {"initContainers", "containers"}) {
    json& containers = spec[list];
    if (!containers.is_array()) {
      if (containers.is_null()) spec.erase(list);
      continue;
    }
    for (json& c : containers) {
      if (!c.is_object()) continue;
      json& mounts = c["volumeMounts"];
      if (!mounts.is_array()) mounts = json::array();
      bool has = false;
      for (const json& m : mounts) {
        if (String(m, {"mountPath"}) == kServiceAccountMountPath) has = true;
      }
      if (has) continue;
      mounts.push_back(
          {{"name", name}, {"readOnly", true}, {"mountPath", kServiceAccountMountPath}});
      mounted = true;
    }
  }
  if (!mounted) return;
  json sources = json::array();
  sources.push_back(
      {{"serviceAccountToken",
        {{"expirationSeconds", satoken::kWarnOnlyExpirationSeconds}, {"path", "token"}}}});
  sources.push_back(
      {{"configMap",
        {{"name", kRootCaConfigMap}, {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}});
  sources.push_back(
      {{"downwardAPI",
        {{"items",
          {{{"path", "namespace"},
            {"fieldRef", {{"apiVersion", "v1"}, {"fieldPath", "metadata.namespace"}}}}}}}}});
  volumes.push_back({{"name", name}, {"projected", {{"sources", sources}, {"defaultMode", 420}}}});
}

std::optional<ApiError> ServiceAccountAdmission::Admit(AdmissionRequest& request) {
  const ResourceType& type = *request.type;
  if (!type.group.empty() || type.kind != "Pod" || !request.subresource.empty() ||
      request.operation != AdmissionRequest::Operation::kCreate || request.object == nullptr) {
    return std::nullopt;
  }
  json& pod = *request.object;
  if (!pod.contains("spec") || !pod["spec"].is_object()) return std::nullopt;
  // Mirror pods (static pods) must not reference API objects; leave them as they are.
  if (!String(pod, {"metadata", "annotations", "kubernetes.io/config.mirror"}).empty()) {
    return std::nullopt;
  }
  json& spec = pod["spec"];
  std::string name = String(spec, {"serviceAccountName"});
  if (name.empty()) name = String(spec, {"serviceAccount"});
  if (name.empty()) name = "default";
  spec["serviceAccountName"] = name;
  spec["serviceAccount"] = name;  // the deprecated alias, as upstream's conversion fills it
  std::string ns = Namespace(pod);
  auto kv = store_.Get(service_accounts_.StoreKey(ns, name));
  if (!kv.ok()) {
    if (kv.status().code() != StatusCode::kNotFound) return ApiError::FromStatus(kv.status());
    return ApiError::Forbidden(fmt::format(
        "pods \"{}\" is forbidden: error looking up service account {}/{}: serviceaccount \"{}\" "
        "not found",
        Name(pod), ns, name, name));
  }
  json sa = json::parse(kv->value, nullptr, false);
  if (!sa.is_object()) sa = json::object();
  AddServiceAccountVolume(pod, sa);
  const json& pull = Field(spec, {"imagePullSecrets"});
  const json& sa_pull = Field(sa, {"imagePullSecrets"});
  if ((!pull.is_array() || pull.empty()) && sa_pull.is_array() && !sa_pull.empty()) {
    spec["imagePullSecrets"] = sa_pull;
  }
  return std::nullopt;
}

}  // namespace orch::api
