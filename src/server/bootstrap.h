// Sharing one cluster's secrets between the servers of one datastore (HA), as k3s does: the first
// server stores its CAs and keys in the datastore, sealed with a key derived from the token.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "orch/config.h"
#include "orch/status.h"
#include "orch/store.h"

namespace orch {

// The datastore key of a cluster's bootstrap data: "/bootstrap/" + the first 12 hex digits of the
// SHA-256 of the token secret. Outside /registry/, so no API reads or watches it.
std::string BootstrapKey(const std::string& token_secret);

// Seals `plaintext` with AES-256-GCM under a key derived from `token_secret` by
// PBKDF2-HMAC-SHA256 with a random salt: "orch:bootstrap:v1:<salt b64>:<nonce+ciphertext+tag b64>".
std::string SealBootstrap(const std::string& token_secret, const std::string& plaintext);

// Opens what SealBootstrap made. kInvalidArgument when `sealed` is not in that form or does not
// open with this secret (a wrong token).
Result<std::string> OpenBootstrap(const std::string& token_secret, const std::string& sealed);

// The shared files, by path relative to <data-dir>/server: every file of cred/, the CAs of tls/
// (tls/*ca.crt, tls/*ca.key, the same in tls/etcd/) and the service-account keys
// (tls/service.key, tls/service.current.key) when present. Serving and client certificates are
// not shared: each server issues its own from the shared CAs.
Result<std::map<std::string, std::string>> ReadBootstrapFiles(const std::string& server_dir);

// Writes `files` under server_dir (keys 0600, the rest 0644). A file that exists with other
// contents is refused (kInvalidArgument: this data dir belongs to another cluster) unless
// `overwrite`.
Status WriteBootstrapFiles(const std::string& server_dir,
                           const std::map<std::string, std::string>& files, bool overwrite);

// The bootstrap of one server start, in two steps around EnsureClusterCredentials:
//   Prepare: if the datastore holds this cluster's bootstrap data (found by the token), write its
//     files under the data dir; if it holds another cluster's, refuse; if none, this server is the
//     first: make sure there is a token secret and a Secrets encryption key.
//   Publish: the first server stores its files; if another server stored first (two first
//     starts at once), that one's files replace ours and Publish says so, so the caller issues
//     its certificates again.
class ClusterBootstrap {
 public:
  // `store` must outlive the object. Failures are one-line messages for the user.
  static Result<ClusterBootstrap> Prepare(const ServerConfig& config, Store& store);

  // The token secret this server uses (given, stored, or new for a first server).
  const std::string& secret() const { return secret_; }
  bool first() const { return first_; }

  // Returns true when the files were replaced by another server's (see above).
  Result<bool> Publish();

  // After the API server started: adds shared files that appeared since Publish (the
  // service-account key is made by the API server itself) to the stored data, so that servers
  // joining later take them too. Files the stored data already has are left as they are.
  Status ShareNewFiles();

 private:
  ClusterBootstrap(Store& store, std::string server_dir, std::string secret, bool first)
      : store_(&store),
        server_dir_(std::move(server_dir)),
        secret_(std::move(secret)),
        first_(first) {}

  Store* store_;
  std::string server_dir_;
  std::string secret_;
  bool first_;
};

// Reads and opens the bootstrap data at BootstrapKey(secret); kNotFound when there is none.
Result<std::map<std::string, std::string>> LoadBootstrap(Store& store, const std::string& secret);

// The sealed form of `files` (what is stored at BootstrapKey), and the reverse.
std::string EncodeBootstrap(const std::string& secret,
                            const std::map<std::string, std::string>& files);
Result<std::map<std::string, std::string>> DecodeBootstrap(const std::string& secret,
                                                           const std::string& sealed);

}  // namespace orch
