// Encryption at rest for Secrets: AES-256-GCM with a key kept under <data-dir>/server/cred/.
// Stored values carry a prefix naming the scheme, so plaintext from older data still reads.
#pragma once

#include <string>

#include "orch/status.h"

namespace orch::api {

class SecretBox {
 public:
  // Loads the key from `key_file`, creating it (32 random bytes, mode 0600) when absent.
  static Result<SecretBox> Open(const std::string& key_file);

  // "k8s:enc:aesgcm:v1:orch:" + nonce + ciphertext + tag.
  std::string Seal(const std::string& plaintext) const;
  // Opens what Seal produced; passes through values without the prefix (not encrypted).
  Result<std::string> Unseal(const std::string& stored) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace orch::api
