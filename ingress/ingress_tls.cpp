// The ingress proxy's certificates (ingress_tls.h): contexts made from Secrets, switched by the
// SNI callback under a lock held only for a map lookup.
#include "ingress_tls.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include "orch/base64.h"
#include "orch/log.h"
#include "orch/pki.h"

namespace orch::ingress {
namespace {

namespace ssl = boost::asio::ssl;

constexpr std::string_view kLog = "ingress";

void HardenContext(ssl::context& context) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
}

std::string SecretField(const json& secret, const char* key) {
  auto data = secret.find("data");
  if (data == secret.end() || !data->is_object()) return "";
  auto value = data->find(key);
  if (value == data->end() || !value->is_string()) return "";
  auto decoded = Base64Decode(value->get<std::string>());
  return decoded ? *decoded : "";
}

std::string MetaField(const json& object, const char* key) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  return metadata->value(key, "");
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerContext(const std::string& cert_pem,
                                                        const std::string& key_pem) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  HardenContext(*context);
  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) return InvalidArgument(fmt::format("tls.crt: {}", ec.message()));
  context->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
  if (ec) return InvalidArgument(fmt::format("tls.key: {}", ec.message()));
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return InvalidArgument("tls.key does not match tls.crt");
  }
  return context;
}

TlsStore::TlsStore() : listener_(ssl::context::tls_server) {}
TlsStore::~TlsStore() = default;

Result<std::unique_ptr<TlsStore>> TlsStore::Create() {
  std::unique_ptr<TlsStore> store(new TlsStore());
  // A throw-away CA signs the default certificate, as clients expect a leaf, not a CA.
  auto ca = pki::CreateCA("orch ingress default CA", 3650);
  if (!ca.ok()) return ca.status();
  pki::CertificateRequest request;
  request.common_name = "orch ingress default certificate";
  request.dns_names = {"orch-ingress.invalid"};
  request.server = true;
  request.valid_days = 3650;
  auto leaf = pki::IssueCertificate(*ca, request);
  if (!leaf.ok()) return leaf.status();
  HardenContext(store->listener_);
  boost::system::error_code ec;
  store->listener_.use_certificate_chain(boost::asio::buffer(leaf->cert_pem), ec);
  if (!ec)
    store->listener_.use_private_key(boost::asio::buffer(leaf->key_pem), ssl::context::pem, ec);
  if (ec) return Internal(fmt::format("default ingress certificate: {}", ec.message()));
  SSL_CTX* native = store->listener_.native_handle();
  SSL_CTX_set_tlsext_servername_callback(native, &TlsStore::OnServerName);
  SSL_CTX_set_tlsext_servername_arg(native, store.get());
  return store;
}

void TlsStore::Update(std::shared_ptr<const RouteTable> routes,
                      const std::vector<ObjectPtr>& secrets) {
  std::map<std::string, const json*> by_key;
  for (const ObjectPtr& s : secrets) {
    by_key[MetaField(*s, "namespace") + "/" + MetaField(*s, "name")] = s.get();
  }
  std::set<std::string> wanted;
  for (const auto& [host, key] : routes->tls_exact) wanted.insert(key);
  for (const auto& [host, key] : routes->tls_wildcard) wanted.insert(key);

  std::map<std::string, Certificate> next;
  {
    std::lock_guard lock(mu_);
    for (const std::string& key : wanted) {
      auto secret = by_key.find(key);
      if (secret == by_key.end()) continue;  // not (yet) there: the default certificate
      std::string version =
          MetaField(*secret->second, "uid") + "@" + MetaField(*secret->second, "resourceVersion");
      auto old = certificates_.find(key);
      if (old != certificates_.end() && old->second.version == version) {
        next[key] = old->second;
        continue;
      }
      Certificate cert{version, nullptr};
      auto context = MakeServerContext(SecretField(*secret->second, "tls.crt"),
                                       SecretField(*secret->second, "tls.key"));
      if (context.ok()) {
        cert.context = *context;
      } else {
        log::Warn(kLog, "secret {}: {}; its hosts get the default certificate", key,
                  context.status().message());
      }
      next[key] = std::move(cert);
    }
  }
  std::lock_guard lock(mu_);
  certificates_ = std::move(next);
  routes_ = std::move(routes);
}

std::string TlsStore::SecretFor(const std::string& server_name) const {
  std::lock_guard lock(mu_);
  if (!routes_) return "";
  std::string key = routes_->TlsSecretFor(server_name);
  auto cert = certificates_.find(key);
  return cert != certificates_.end() && cert->second.context ? key : "";
}

int TlsStore::OnServerName(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  auto* store = static_cast<TlsStore*>(arg);
  std::shared_ptr<ssl::context> context;
  {
    std::lock_guard lock(store->mu_);
    if (store->routes_) {
      auto cert = store->certificates_.find(store->routes_->TlsSecretFor(name));
      if (cert != store->certificates_.end()) context = cert->second.context;
    }
  }
  // The connection takes its own reference on the context, so a later Update may drop ours.
  if (context) SSL_set_SSL_CTX(ssl, context->native_handle());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace orch::ingress
