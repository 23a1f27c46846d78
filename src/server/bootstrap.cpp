// Bootstrap data of an HA cluster (bootstrap.h): the shared CAs and keys, sealed with the token
// (PBKDF2-HMAC-SHA256 + AES-256-GCM, OpenSSL EVP) and kept in the datastore.
#include "bootstrap.h"

#include <fmt/ranges.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cluster_pki.h"
#include "orch/base64.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/pki.h"

namespace orch {
namespace {

constexpr std::string_view kLog = "bootstrap";
constexpr std::string_view kPrefix = "orch:bootstrap:v1:";
constexpr const char* kKeyPrefix = "/bootstrap/";
// The token may be short and guessable by brute force from a stolen datastore copy; many
// iterations make each guess cost. Run once per server start (~0.1 s).
constexpr int kIterations = 200000;
constexpr size_t kSaltBytes = 16, kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;

using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

std::string DeriveKey(const std::string& secret, const std::string& salt) {
  std::string key(kKeyBytes, '\0');
  PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), kIterations, EVP_sha256(),
                    static_cast<int>(kKeyBytes), reinterpret_cast<unsigned char*>(key.data()));
  return key;
}

bool IsSharedTlsFile(const std::string& name) {
  return name.ends_with("ca.crt") || name.ends_with("ca.key") || name == "service.key" ||
         name == "service.current.key";
}

// Adds the regular files of dir (relative names prefixed with `rel`) that `keep` accepts.
template <typename Keep>
Status AddFiles(const std::string& server_dir, const std::string& rel, Keep keep,
                std::map<std::string, std::string>& out) {
  std::error_code ec;
  std::filesystem::directory_iterator it(server_dir + "/" + rel, ec);
  if (ec) return Status::Ok();  // no such folder: nothing to share from it
  for (const auto& entry : it) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp") || !keep(name)) continue;
    auto content = ReadFileToString(entry.path().string());
    if (!content.ok()) return content.status();
    out[rel + "/" + name] = std::move(*content);
  }
  return Status::Ok();
}

}  // namespace

std::string BootstrapKey(const std::string& token_secret) {
  return kKeyPrefix + pki::Sha256Hex(token_secret).substr(0, 12);
}

std::string SealBootstrap(const std::string& token_secret, const std::string& plaintext) {
  std::string salt = RandomBytes(kSaltBytes);
  std::string key = DeriveKey(token_secret, salt);
  std::string nonce = RandomBytes(kNonceBytes);
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key.data()),
                     reinterpret_cast<const unsigned char*>(nonce.data()));
  std::string sealed = nonce;
  sealed.resize(kNonceBytes + plaintext.size() + kTagBytes);
  auto* out = reinterpret_cast<unsigned char*>(sealed.data()) + kNonceBytes;
  int len = 0, total = 0;
  EVP_EncryptUpdate(ctx.get(), out, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                    static_cast<int>(plaintext.size()));
  total = len;
  EVP_EncryptFinal_ex(ctx.get(), out + total, &len);
  total += len;
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, out + total);
  return fmt::format("{}{}:{}", kPrefix, Base64Encode(salt), Base64Encode(sealed));
}

Result<std::string> OpenBootstrap(const std::string& token_secret, const std::string& sealed) {
  if (!sealed.starts_with(kPrefix))
    return InvalidArgument("the bootstrap data has an unknown form");
  std::string_view rest = std::string_view(sealed).substr(kPrefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return InvalidArgument("the bootstrap data is truncated");
  auto salt = Base64Decode(rest.substr(0, colon));
  auto box = Base64Decode(rest.substr(colon + 1));
  if (!salt || !box || box->size() < kNonceBytes + kTagBytes) {
    return InvalidArgument("the bootstrap data is corrupt");
  }
  std::string key = DeriveKey(token_secret, *salt);
  const auto* data = reinterpret_cast<const unsigned char*>(box->data());
  size_t cipher_len = box->size() - kNonceBytes - kTagBytes;
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key.data()), data);
  std::string plain(cipher_len, '\0');
  int len = 0;
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                    data + kNonceBytes, static_cast<int>(cipher_len));
  std::string tag(box->end() - kTagBytes, box->end());
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data());
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                          &final_len) != 1) {
    return InvalidArgument("the bootstrap data does not open with this token");
  }
  return plain;
}

Result<std::map<std::string, std::string>> ReadBootstrapFiles(const std::string& server_dir) {
  std::map<std::string, std::string> files;
  auto all = [](const std::string&) { return true; };
  if (Status s = AddFiles(server_dir, "cred", all, files); !s.ok()) return s;
  if (Status s = AddFiles(server_dir, "tls", IsSharedTlsFile, files); !s.ok()) return s;
  if (Status s = AddFiles(server_dir, "tls/etcd", IsSharedTlsFile, files); !s.ok()) return s;
  return files;
}

Status WriteBootstrapFiles(const std::string& server_dir,
                           const std::map<std::string, std::string>& files, bool overwrite) {
  for (const auto& [rel, content] : files) {
    if (rel.find("..") != std::string::npos || rel.starts_with("/")) {
      return InvalidArgument("the bootstrap data names a bad path: " + rel);
    }
    std::string path = server_dir + "/" + rel;
    auto existing = ReadFileToString(path);
    if (existing.ok() && *existing == content) continue;
    if (existing.ok() && !overwrite) {
      return InvalidArgument(fmt::format(
          "{} differs from the cluster's copy in the datastore: this data dir belongs to another "
          "cluster",
          path));
    }
    if (Status s = MakeDirectories(path.substr(0, path.find_last_of('/')), 0700); !s.ok()) {
      return s;
    }
    bool is_key = rel.starts_with("cred/") || rel.ends_with(".key");
    if (Status s = WriteFileAtomic(path, content, is_key ? 0600 : 0644); !s.ok()) return s;
  }
  return Status::Ok();
}

std::string EncodeBootstrap(const std::string& secret,
                            const std::map<std::string, std::string>& files) {
  nlohmann::json doc = {{"version", 1}, {"files", nlohmann::json::object()}};
  for (const auto& [rel, content] : files) doc["files"][rel] = Base64Encode(content);
  return SealBootstrap(secret, doc.dump());
}

Result<std::map<std::string, std::string>> DecodeBootstrap(const std::string& secret,
                                                           const std::string& sealed) {
  auto plain = OpenBootstrap(secret, sealed);
  if (!plain.ok()) return plain.status();
  auto doc = nlohmann::json::parse(*plain, nullptr, false);
  if (!doc.is_object() || !doc.contains("files") || !doc["files"].is_object()) {
    return InvalidArgument("the bootstrap data is not an orch bundle");
  }
  std::map<std::string, std::string> files;
  for (const auto& [rel, b64] : doc["files"].items()) {
    auto content = b64.is_string() ? Base64Decode(b64.get<std::string>()) : std::nullopt;
    if (!content) return InvalidArgument("the bootstrap data has a corrupt file " + rel);
    files[rel] = std::move(*content);
  }
  return files;
}

Result<std::map<std::string, std::string>> LoadBootstrap(Store& store, const std::string& secret) {
  auto kv = store.Get(BootstrapKey(secret));
  if (!kv.ok()) return kv.status();
  return DecodeBootstrap(secret, kv->value);
}

Result<ClusterBootstrap> ClusterBootstrap::Prepare(const ServerConfig& config, Store& store) {
  const std::string server_dir = config.data_dir + "/server";
  std::string secret;
  if (!config.token.empty()) {
    auto parsed = ParseToken(config.token);
    if (!parsed.ok()) return InvalidArgument("--token: " + parsed.status().message());
    secret = parsed->secret;
  } else if (auto stored = ReadFileToString(server_dir + "/token"); stored.ok()) {
    std::string text = *stored;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (auto parsed = ParseToken(text); parsed.ok()) secret = parsed->secret;
  }

  RangeOptions range;
  range.prefix = kKeyPrefix;
  auto listed = store.List(range);
  if (!listed.ok()) return Unavailable("reading the bootstrap data: " + listed.status().message());
  bool ours = false;
  for (const KeyValue& kv : listed->kvs) {
    if (!secret.empty() && kv.key == BootstrapKey(secret)) ours = true;
  }
  if (ours) {
    auto files = LoadBootstrap(store, secret);
    if (!files.ok()) {
      return InvalidArgument(
          fmt::format("the cluster's bootstrap data in the datastore does not open with this "
                      "--token ({}): is it the cluster's token?",
                      files.status().message()));
    }
    if (Status s = WriteBootstrapFiles(server_dir, *files, false); !s.ok()) return s;
    log::Info(kLog, "took the cluster's CAs and keys from the datastore ({} files)", files->size());
    return ClusterBootstrap(store, server_dir, secret, false);
  }
  if (!listed->kvs.empty()) {
    return InvalidArgument(
        secret.empty()
            ? "the datastore already holds a cluster: start this server with that cluster's --token"
            : "the --token is not the token of the cluster in the datastore (wrong token)");
  }
  if (!config.server_url.empty()) {
    return InvalidArgument(fmt::format(
        "--server {} was given but the datastore holds no cluster yet: start the first server "
        "without --server",
        config.server_url));
  }
  // The first server of this datastore.
  if (secret.empty()) secret = pki::RandomHex(16);
  const std::string key_file = server_dir + "/cred/encryption-key";
  if (!ReadFileToString(key_file).ok()) {
    if (Status s = MakeDirectories(server_dir + "/cred", 0700); !s.ok()) return s;
    std::string key(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32);
    if (Status s = WriteFileAtomic(key_file, key, 0600); !s.ok()) return s;
  }
  return ClusterBootstrap(store, server_dir, secret, true);
}

Result<bool> ClusterBootstrap::Publish() {
  if (!first_) return false;
  auto files = ReadBootstrapFiles(server_dir_);
  if (!files.ok()) return files.status();
  auto created = store_->Create(BootstrapKey(secret_), EncodeBootstrap(secret_, *files));
  if (created.ok()) {
    log::Info(kLog, "stored the cluster's CAs and keys in the datastore ({} files)", files->size());
    first_ = false;
    return false;
  }
  if (created.status().code() != StatusCode::kAlreadyExists) {
    return Unavailable("storing the bootstrap data: " + created.status().message());
  }
  // Another server started first at the same moment: its CA wins.
  auto theirs = LoadBootstrap(*store_, secret_);
  if (!theirs.ok()) return theirs.status();
  if (Status s = WriteBootstrapFiles(server_dir_, *theirs, true); !s.ok()) return s;
  log::Warn(kLog, "another server bootstrapped the datastore at the same time; using its CAs");
  first_ = false;
  return true;
}

Status ClusterBootstrap::ShareNewFiles() {
  const std::string key = BootstrapKey(secret_);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto kv = store_->Get(key);
    if (!kv.ok()) return kv.status();
    auto stored = DecodeBootstrap(secret_, kv->value);
    if (!stored.ok()) return stored.status();
    auto local = ReadBootstrapFiles(server_dir_);
    if (!local.ok()) return local.status();
    std::vector<std::string> added;
    for (const auto& [rel, content] : *local) {
      auto it = stored->find(rel);
      if (it == stored->end()) {
        (*stored)[rel] = content;
        added.push_back(rel);
      } else if (it->second != content) {
        log::Warn(kLog, "{}/{} differs from the cluster's copy in the datastore", server_dir_, rel);
      }
    }
    if (added.empty()) return Status::Ok();
    auto updated = store_->Update(key, EncodeBootstrap(secret_, *stored), kv->mod_revision);
    if (updated.ok()) {
      log::Info(kLog, "shared {} more file(s) through the datastore: {}", added.size(),
                fmt::join(added, ", "));
      return Status::Ok();
    }
    if (updated.status().code() != StatusCode::kConflict) return updated.status();
  }
  return Unavailable("sharing the bootstrap files: too many concurrent updates");
}

}  // namespace orch
