// Service-account JWTs (orch/sa_token.h): RS256 signing and verification with OpenSSL's EVP
// interface, upstream's claim layout, and the checks every accepted token must pass.
#include "orch/sa_token.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>

#include "orch/base64.h"
#include "orch/files.h"

namespace orch::satoken {
namespace {

using json = nlohmann::json;

// Clock skew tolerated on exp, nbf and iat.
constexpr int64_t kLeewaySeconds = 60;

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

Status OpenSslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  char buf[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return Internal(what + ": " + buf);
}

std::string PublicDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string Sha256(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

std::string BigNumParam(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return "";
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  std::string out(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string Str(const json& object, const char* field) {
  if (!object.is_object()) return "";
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<int64_t> Int(const json& object, const char* field) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(field);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

std::optional<ObjectRef> RefAt(const json& object, const char* field) {
  if (!object.is_object() || !object.contains(field) || !object[field].is_object()) {
    return std::nullopt;
  }
  return ObjectRef{Str(object[field], "name"), Str(object[field], "uid")};
}

json RefJson(const ObjectRef& ref) {
  return {{"name", ref.name}, {"uid", ref.uid}};
}

std::string NewUuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex.push_back('-');
    hex += fmt::format("{:02x}", b[i]);
  }
  return hex;
}

}  // namespace

std::string Base64UrlEncode(const std::string& data) {
  std::string out = Base64Encode(data);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(const std::string& text) {
  std::string s = text;
  for (char& c : s) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      return std::nullopt;  // not base64url
    }
  }
  if (s.size() % 4 == 1) return std::nullopt;
  while (s.size() % 4 != 0) s.push_back('=');
  return Base64Decode(s);
}

Result<SigningKey> SigningKey::FromPem(const std::string& private_key_pem) {
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (raw == nullptr) return InvalidArgument("not a PEM private key");
  SigningKey key;
  key.key_ = std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_RSA) {
    return InvalidArgument("the service-account key must be an RSA key");
  }
  key.key_id_ = Base64UrlEncode(Sha256(PublicDer(raw)));
  return key;
}

Result<SigningKey> SigningKey::Generate() {
  EVP_PKEY* raw = EVP_RSA_gen(2048);
  if (raw == nullptr) return OpenSslError("generate an RSA key");
  SigningKey key;
  key.key_ = std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free);
  key.key_id_ = Base64UrlEncode(Sha256(PublicDer(raw)));
  return key;
}

Result<SigningKey> SigningKey::LoadOrCreate(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    auto pem = ReadFileToString(path);
    if (!pem.ok()) return pem.status();
    auto key = FromPem(*pem);
    if (!key.ok()) return InvalidArgument(path + ": " + key.status().message());
    return key;
  }
  auto key = Generate();
  if (!key.ok()) return key.status();
  if (Status s = WriteFileAtomic(path, key->PrivateKeyPem(), 0600); !s.ok()) return s;
  return key;
}

std::string SigningKey::PrivateKeyPem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

json SigningKey::PublicJwk() const {
  return {{"use", "sig"},
          {"kty", "RSA"},
          {"kid", key_id_},
          {"alg", "RS256"},
          {"n", Base64UrlEncode(BigNumParam(key_.get(), OSSL_PKEY_PARAM_RSA_N))},
          {"e", Base64UrlEncode(BigNumParam(key_.get(), OSSL_PKEY_PARAM_RSA_E))}};
}

Result<std::string> SigningKey::Sign(const json& claims) const {
  json header = {{"alg", "RS256"}, {"kid", key_id_}};
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return OpenSslError("sign a token");
  }
  size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()) != 1) {
    return OpenSslError("sign a token");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                     input.size()) != 1) {
    return OpenSslError("sign a token");
  }
  signature.resize(length);
  return input + "." + Base64UrlEncode(signature);
}

Result<json> SigningKey::Verify(const std::string& token) const {
  size_t first = token.find('.');
  size_t second = first == std::string::npos ? first : token.find('.', first + 1);
  if (second == std::string::npos || token.find('.', second + 1) != std::string::npos) {
    return InvalidArgument("not a JWT");
  }
  auto header_text = Base64UrlDecode(token.substr(0, first));
  auto payload = Base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = Base64UrlDecode(token.substr(second + 1));
  if (!header_text || !payload || !signature) return InvalidArgument("not a JWT");
  json header = json::parse(*header_text, nullptr, false);
  // Only RS256: a token must never choose a weaker algorithm ("none", HMAC with the public key).
  if (!header.is_object() || Str(header, "alg") != "RS256") {
    return InvalidArgument("unsupported token algorithm");
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return OpenSslError("verify a token");
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                            signature->size(), reinterpret_cast<const unsigned char*>(token.data()),
                            second);
  ERR_clear_error();
  if (ok != 1) return InvalidArgument("invalid token signature");
  json claims = json::parse(*payload, nullptr, false);
  if (!claims.is_object()) return InvalidArgument("token claims are not an object");
  return claims;
}

json ClaimsToJson(const Claims& c) {
  json k8s = {{"namespace", c.ns}, {"serviceaccount", RefJson(c.service_account)}};
  if (c.pod) k8s["pod"] = RefJson(*c.pod);
  if (c.secret) k8s["secret"] = RefJson(*c.secret);
  if (c.node) k8s["node"] = RefJson(*c.node);
  if (c.warn_after != 0) k8s["warnafter"] = c.warn_after;
  json out = {{"aud", c.audiences},
              {"exp", c.expiry},
              {"iat", c.issued_at},
              {"iss", c.issuer},
              {"jti", c.id.empty() ? NewUuid() : c.id},
              {"kubernetes.io", k8s},
              {"nbf", c.not_before},
              {"sub", UserName(c.ns, c.service_account.name)}};
  return out;
}

json LegacyClaims(const std::string& ns, const std::string& service_account,
                  const std::string& service_account_uid, const std::string& secret_name) {
  return {{"iss", kLegacyIssuer},
          {"kubernetes.io/serviceaccount/namespace", ns},
          {"kubernetes.io/serviceaccount/secret.name", secret_name},
          {"kubernetes.io/serviceaccount/service-account.name", service_account},
          {"kubernetes.io/serviceaccount/service-account.uid", service_account_uid},
          {"sub", UserName(ns, service_account)}};
}

std::string UserName(const std::string& ns, const std::string& name) {
  return "system:serviceaccount:" + ns + ":" + name;
}

Result<Validated> ValidateClaims(const json& claims, const std::string& issuer,
                                 const std::vector<std::string>& audiences, int64_t now) {
  Validated out;
  std::string iss = Str(claims, "iss");
  if (iss == kLegacyIssuer) {
    out.legacy = true;
    out.ns = Str(claims, "kubernetes.io/serviceaccount/namespace");
    out.service_account.name = Str(claims, "kubernetes.io/serviceaccount/service-account.name");
    out.service_account.uid = Str(claims, "kubernetes.io/serviceaccount/service-account.uid");
    out.secret_name = Str(claims, "kubernetes.io/serviceaccount/secret.name");
    if (out.ns.empty() || out.service_account.name.empty() || out.secret_name.empty()) {
      return InvalidArgument("token lacks the service account claims");
    }
    if (Str(claims, "sub") != UserName(out.ns, out.service_account.name)) {
      return InvalidArgument("token subject does not match its service account");
    }
    return out;
  }
  if (iss != issuer) return InvalidArgument("token issuer is not this cluster");
  auto exp = Int(claims, "exp");
  if (!exp) return InvalidArgument("token has no expiry");
  if (now > *exp + kLeewaySeconds) return InvalidArgument("token has expired");
  if (auto nbf = Int(claims, "nbf"); nbf && now + kLeewaySeconds < *nbf) {
    return InvalidArgument("token is not valid yet");
  }
  if (auto iat = Int(claims, "iat"); iat && now + kLeewaySeconds < *iat) {
    return InvalidArgument("token was issued in the future");
  }
  std::vector<std::string> aud;
  if (claims.contains("aud") && claims["aud"].is_array()) {
    for (const json& a : claims["aud"]) {
      if (a.is_string()) aud.push_back(a.get<std::string>());
    }
  } else if (std::string one = Str(claims, "aud"); !one.empty()) {
    aud.push_back(one);
  }
  bool accepted = std::any_of(aud.begin(), aud.end(), [&](const std::string& a) {
    return std::find(audiences.begin(), audiences.end(), a) != audiences.end();
  });
  if (!accepted) return InvalidArgument("token audiences are not accepted by this server");
  const json& k8s = claims.value("kubernetes.io", json());
  out.ns = Str(k8s, "namespace");
  auto sa = RefAt(k8s, "serviceaccount");
  if (out.ns.empty() || !sa || sa->name.empty()) {
    return InvalidArgument("token lacks the service account claims");
  }
  out.service_account = *sa;
  if (Str(claims, "sub") != UserName(out.ns, sa->name)) {
    return InvalidArgument("token subject does not match its service account");
  }
  out.pod = RefAt(k8s, "pod");
  out.secret = RefAt(k8s, "secret");
  out.node = RefAt(k8s, "node");
  out.expiry = *exp;
  return out;
}

}  // namespace orch::satoken
