// AES-256-GCM sealing of stored Secret values (OpenSSL EVP).
#include "encryption.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace orch::api {
namespace {
constexpr char kPrefix[] = "k8s:enc:aesgcm:v1:orch:";
constexpr size_t kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
}  // namespace

Result<SecretBox> SecretBox::Open(const std::string& key_file) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(key_file).parent_path(), ec);
  std::ifstream in(key_file, std::ios::binary);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string key = ss.str();
    if (key.size() != kKeyBytes) {
      return InvalidArgument("encryption key " + key_file + " is not 32 bytes; refusing to go on");
    }
    return SecretBox(key);
  }
  std::string key(kKeyBytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes);
  std::string tmp = key_file + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return Unavailable("cannot write encryption key " + key_file);
  bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), key_file.c_str()) != 0) {
    return Unavailable("cannot write encryption key " + key_file);
  }
  return SecretBox(key);
}

std::string SecretBox::Seal(const std::string& plaintext) const {
  unsigned char nonce[kNonceBytes];
  RAND_bytes(nonce, kNonceBytes);
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()), nonce);
  std::string out(kPrefix);
  out.append(reinterpret_cast<char*>(nonce), kNonceBytes);
  size_t header = out.size();
  out.resize(header + plaintext.size() + kTagBytes);
  int len = 0;
  EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(&out[header]), &len,
                    reinterpret_cast<const unsigned char*>(plaintext.data()),
                    static_cast<int>(plaintext.size()));
  int final_len = 0;
  EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(&out[header + len]), &final_len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                      &out[header + plaintext.size()]);
  return out;
}

Result<std::string> SecretBox::Unseal(const std::string& stored) const {
  size_t prefix = sizeof(kPrefix) - 1;
  if (stored.compare(0, prefix, kPrefix) != 0) return stored;
  if (stored.size() < prefix + kNonceBytes + kTagBytes) return Internal("sealed value too short");
  const auto* nonce = reinterpret_cast<const unsigned char*>(&stored[prefix]);
  size_t body = prefix + kNonceBytes;
  size_t length = stored.size() - body - kTagBytes;
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()), nonce);
  std::string out(length, '\0');
  int len = 0;
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(&stored[body]),
                    static_cast<int>(length));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                      const_cast<char*>(&stored[body + length]));
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len,
                          &final_len) != 1) {
    return Internal("stored secret does not decrypt with the key under server/cred");
  }
  return out;
}

}  // namespace orch::api
