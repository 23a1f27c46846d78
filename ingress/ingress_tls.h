// The ingress proxy's certificates: one TLS context per kubernetes.io/tls Secret that an Ingress
// names, chosen by SNI during the handshake, and a self-signed default certificate otherwise.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ingress_routes.h"
#include "orch/status.h"

namespace orch::ingress {

class TlsStore {
 public:
  // Makes the listener's context with a new self-signed default certificate.
  static Result<std::unique_ptr<TlsStore>> Create();
  ~TlsStore();
  TlsStore(const TlsStore&) = delete;
  TlsStore& operator=(const TlsStore&) = delete;

  // The context every TLS connection starts with (its SNI callback switches certificates).
  boost::asio::ssl::context& listener_context() { return listener_; }

  // Takes the hosts' secrets from `routes` and the certificates from `secrets`
  // (kubernetes.io/tls, any namespace); contexts of unchanged Secrets are kept. A Secret that
  // is missing or does not hold a valid certificate and key leaves its hosts on the default
  // certificate (logged once per Secret version). Thread-safe.
  void Update(std::shared_ptr<const RouteTable> routes, const std::vector<ObjectPtr>& secrets);

  // The secret ("ns/name") whose certificate `server_name` gets, "" for the default. For tests.
  std::string SecretFor(const std::string& server_name) const;

 private:
  TlsStore();
  static int OnServerName(SSL* ssl, int* alert, void* arg);

  struct Certificate {
    std::string version;  // uid and resourceVersion of the Secret it came from
    std::shared_ptr<boost::asio::ssl::context> context;  // null: the Secret was unusable
  };

  boost::asio::ssl::context listener_;
  mutable std::mutex mu_;
  std::shared_ptr<const RouteTable> routes_;         // guarded by mu_
  std::map<std::string, Certificate> certificates_;  // guarded by mu_; by "ns/name"
};

// A TLS context serving `cert_pem` (the chain) with `key_pem`; fails on bad PEM or a key that
// does not match.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(const std::string& cert_pem,
                                                                     const std::string& key_pem);

}  // namespace orch::ingress
