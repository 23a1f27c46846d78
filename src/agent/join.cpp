// Joining a cluster (orch/join.h, join.h): the token and CA checks, the HTTPS calls of the join
// (GET /cacerts, POST /v1-orch/client-node.crt, GET /v1-orch/config) and the stored credentials.
#include "join.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// clang-format off
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without it
// clang-format on

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "orch/files.h"
#include "orch/log.h"
#include "orch/net.h"
#include "orch/pki.h"

namespace orch::agent {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using json = nlohmann::json;

constexpr std::string_view kComponent = "agent";
constexpr const char* kCaPath = "/cacerts";
constexpr const char* kNodeCertificatePath = "/v1-orch/client-node.crt";
constexpr const char* kSettingsPath = "/v1-orch/config";
constexpr uint64_t kMaxAnswerBytes = 1u << 20;

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

struct OpenSslFree {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslFree>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Whether `cert_pem` is signed by one of the certificates of `ca_bundle_pem` and valid now.
bool ChainsTo(const std::string& cert_pem, const std::string& ca_bundle_pem) {
  BioPtr cert_bio = MemoryBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  StorePtr store(X509_STORE_new());
  if (!cert || !store) return false;
  BioPtr ca_bio = MemoryBio(ca_bundle_pem);
  int cas = 0;
  while (X509Ptr ca{PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store.get(), ca.get()) == 1) ++cas;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (cas == 0) return false;
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) return false;
  bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

bool KeyMatches(const std::string& cert_pem, const std::string& key_pem) {
  BioPtr cert_bio = MemoryBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  BioPtr key_bio = MemoryBio(key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  return ok;
}

// The server of a join URL: https://host[:port][/].
struct Endpoint {
  std::string url;
  std::string host;  // without brackets
  std::string port;
  bool host_is_ip = false;
};

Result<Endpoint> ParseEndpoint(const std::string& url) {
  auto parsed = ParseHttpsUrl(url);
  if (!parsed.ok()) return InvalidArgument(fmt::format("--server: {}", parsed.status().message()));
  if (!parsed->base_path.empty()) {
    return InvalidArgument(fmt::format("--server: '{}' must not have a path", url));
  }
  const bool v6 = parsed->host.find(':') != std::string::npos;
  return Endpoint{.url = v6 ? fmt::format("https://[{}]:{}", parsed->host, parsed->port)
                            : fmt::format("https://{}:{}", parsed->host, parsed->port),
                  .host = parsed->host,
                  .port = parsed->port,
                  .host_is_ip = parsed->host_is_ip};
}

struct Answer {
  int code = 0;
  std::string body;
};

struct Exchange {
  const Endpoint& endpoint;
  bhttp::verb method;
  std::string target;
  std::string body;          // JSON when not empty
  std::string bearer_token;  // "" = none
  std::string ca_pem;        // "" = do NOT verify the server (only for /cacerts)
};

net::awaitable<void> RunExchange(beast::ssl_stream<beast::tcp_stream>& stream,
                                 tcp::resolver& resolver, const Exchange& exchange,
                                 Answer& answer) {
  auto addresses = co_await resolver.async_resolve(exchange.endpoint.host, exchange.endpoint.port,
                                                   net::use_awaitable);
  co_await beast::get_lowest_layer(stream).async_connect(addresses, net::use_awaitable);
  co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
  bhttp::request<bhttp::string_body> request(exchange.method, exchange.target, 11);
  const std::string& host = exchange.endpoint.host;
  request.set(bhttp::field::host, (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                      ":" + exchange.endpoint.port);
  request.set(bhttp::field::user_agent, "orch-agent");
  request.set(bhttp::field::accept, "application/json, */*");
  if (!exchange.bearer_token.empty()) {
    request.set(bhttp::field::authorization, "Bearer " + exchange.bearer_token);
  }
  if (!exchange.body.empty()) {
    request.set(bhttp::field::content_type, "application/json");
    request.body() = exchange.body;
  }
  request.prepare_payload();
  co_await bhttp::async_write(stream, request, net::use_awaitable);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  co_await bhttp::async_read(stream, buffer, parser, net::use_awaitable);
  answer.code = parser.get().result_int();
  answer.body = std::move(parser.get().body());
}

// One HTTPS request on a private io_context, bounded by `timeout` and ended early by `stop`.
// Transport failures are kUnavailable, a stop kCancelled.
Result<Answer> Send(const Exchange& exchange, std::chrono::milliseconds timeout,
                    std::stop_token stop) {
  ssl::context tls(ssl::context::tls_client);
  try {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (exchange.ca_pem.empty()) {
      tls.set_verify_mode(ssl::verify_none);
    } else {
      tls.add_certificate_authority(net::buffer(exchange.ca_pem));
      tls.set_verify_mode(ssl::verify_peer);
    }
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("unusable CA bundle: {}", e.what()));
  }
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
  SSL* handle = stream.native_handle();
  const Endpoint& endpoint = exchange.endpoint;
  if (!endpoint.host_is_ip) SSL_set_tlsext_host_name(handle, endpoint.host.c_str());
  if (!exchange.ca_pem.empty()) {
    if (endpoint.host_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), endpoint.host.c_str());
    } else {
      SSL_set1_host(handle, endpoint.host.c_str());
    }
  }

  Answer answer;
  bool done = false;
  std::string failure;
  net::co_spawn(ioc, RunExchange(stream, resolver, exchange, answer),
                [&](std::exception_ptr error) {
                  done = true;
                  if (!error) return;
                  try {
                    std::rethrow_exception(error);
                  } catch (const boost::system::system_error& e) {
                    failure = e.code().message();
                    // A certificate the CA did not sign reads better than "certificate verify
                    // failed (SSL routines)".
                    if (e.code().category() == net::error::get_ssl_category()) {
                      failure = "TLS: " + e.code().message();
                    }
                  } catch (const std::exception& e) {
                    failure = e.what();
                  }
                });
  {
    std::stop_callback cancel(stop, [&ioc] { ioc.stop(); });
    ioc.run_for(timeout);
  }
  if (!done) {
    // Timed out or stopped: end the exchange so that its coroutine finishes before the objects
    // it uses go away.
    resolver.cancel();
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).socket().close(ignored);
    ioc.restart();
    ioc.run();
    if (stop.stop_requested()) return Cancelled("stopped");
    return Unavailable(
        fmt::format("no answer from {} within {} s", endpoint.url,
                    std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  }
  if (!failure.empty())
    return Unavailable(fmt::format("cannot reach {}: {}", endpoint.url, failure));
  return answer;
}

Status WaitBeforeRetry(std::chrono::milliseconds delay, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, delay, [] { return false; });
  if (stop.stop_requested()) return Cancelled("stopped");
  return Status::Ok();
}

// The CA bundle from /cacerts, checked against the token (and, for a bare secret, against the CA
// stored by an earlier join).
Result<std::string> FetchCa(const Endpoint& endpoint, const JoinToken& token,
                            const std::string& stored_ca, const std::string& stored_ca_file,
                            const JoinOptions& options, std::stop_token stop) {
  auto answer =
      Send({endpoint, bhttp::verb::get, kCaPath, "", "", ""}, options.request_timeout, stop);
  if (!answer.ok()) return answer.status();
  if (answer->code != 200) {
    if (answer->code >= 500) {
      return Unavailable(fmt::format("{}{} answered HTTP {}", endpoint.url, kCaPath, answer->code));
    }
    return InvalidArgument(fmt::format("{}{} answered HTTP {}: is this an orch server?",
                                       endpoint.url, kCaPath, answer->code));
  }
  const std::string& bundle = answer->body;
  if (bundle.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgument(
        fmt::format("{}{} did not answer with a CA bundle", endpoint.url, kCaPath));
  }
  if (Status s = CheckCaBundle(token, bundle); !s.ok()) return s;
  if (token.ca_hash.empty()) {
    if (!stored_ca.empty() && stored_ca != bundle) {
      return InvalidArgument(fmt::format(
          "the server's CA differs from the one trusted at the first join ({}); use a token with "
          "the CA hash (K10...) or remove that file to trust the new CA",
          stored_ca_file));
    }
    if (stored_ca.empty()) {
      log::Warn(kComponent,
                "the token has no CA hash: trusting the CA that {} presents now (sha256 {}); use "
                "the full K10... token to pin it",
                endpoint.url, pki::Sha256Hex(bundle));
    }
  }
  return bundle;
}

// A new key, and a certificate for it from the server.
Result<pki::Credential> RequestCertificate(const Endpoint& endpoint, const JoinToken& token,
                                           const std::string& node_name, const std::string& ca,
                                           const JoinOptions& options, std::stop_token stop) {
  auto csr = pki::CreateSigningRequest("system:node:" + node_name);
  if (!csr.ok()) return csr.status();
  json body = {{"nodeName", node_name}, {"csr", csr->cert_pem}};
  auto answer =
      Send({endpoint, bhttp::verb::post, kNodeCertificatePath, body.dump(), token.text, ca},
           options.request_timeout, stop);
  if (!answer.ok()) return answer.status();
  if (answer->code != 200) return JoinRefusal(answer->code, answer->body);
  json reply = json::parse(answer->body, nullptr, false);
  if (!reply.is_object() || !reply.contains("certificate") || !reply["certificate"].is_string()) {
    return Unavailable(
        fmt::format("{}{} answered without a certificate", endpoint.url, kNodeCertificatePath));
  }
  return pki::Credential{reply["certificate"].get<std::string>(), csr->key_pem};
}

// One GET of the server's settings; kUnavailable (retry) while it cannot answer.
Result<ClusterSettings> RequestSettings(const Endpoint& endpoint, const JoinToken& token,
                                        const std::string& ca, const JoinOptions& options,
                                        std::stop_token stop) {
  auto answer = Send({endpoint, bhttp::verb::get, kSettingsPath, "", token.text, ca},
                     options.request_timeout, stop);
  if (!answer.ok()) return answer.status();
  if (answer->code == 404) {
    return NotFound(
        fmt::format("{}{} is not served (an older orch server?)", endpoint.url, kSettingsPath));
  }
  if (answer->code == 429 || answer->code >= 500) {
    return Unavailable(
        fmt::format("{}{} answered HTTP {}", endpoint.url, kSettingsPath, answer->code));
  }
  if (answer->code != 200) return JoinRefusal(answer->code, answer->body);
  return ParseClusterSettings(answer->body);
}

}  // namespace

Result<JoinToken> ParseJoinToken(const std::string& text) {
  JoinToken token;
  token.text = text;
  if (text.empty()) return InvalidArgument("the join token is empty");
  if (text.find_first_of(" \t\r\n") != std::string::npos) {
    return InvalidArgument("the join token must not contain white space");
  }
  if (text.rfind("K10", 0) != 0) {
    if (text.find(':') != std::string::npos) {
      return InvalidArgument(
          "the join token must be K10<ca-hash>::<user>:<secret> (from the server's "
          "<data-dir>/server/token) or a bare secret");
    }
    token.secret = text;
    return token;
  }
  size_t sep = text.find("::");
  size_t colon = sep == std::string::npos ? std::string::npos : text.find(':', sep + 2);
  if (sep == std::string::npos || colon == std::string::npos) {
    return InvalidArgument("the join token is not in the form K10<ca-hash>::<user>:<secret>");
  }
  std::string hash = text.substr(3, sep - 3);
  if (hash.size() != 64 || !IsHex(hash)) {
    return InvalidArgument("the join token's CA hash must be 64 hex digits (a SHA-256)");
  }
  std::transform(hash.begin(), hash.end(), hash.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  token.ca_hash = hash;
  token.user = text.substr(sep + 2, colon - sep - 2);
  token.secret = text.substr(colon + 1);
  if (token.user.empty()) return InvalidArgument("the join token has an empty user");
  if (token.secret.empty()) return InvalidArgument("the join token has an empty secret");
  return token;
}

Status CheckCaBundle(const JoinToken& token, const std::string& ca_bundle_pem) {
  if (token.ca_hash.empty() || pki::Sha256Hex(ca_bundle_pem) == token.ca_hash) return Status::Ok();
  return InvalidArgument("the server's CA does not match the token's hash");
}

Status CheckCredentials(const NodeCredentials& credentials, const std::string& node_name,
                        const JoinToken& token, int renew_within_days) {
  if (credentials.cert_pem.empty() || credentials.key_pem.empty() || credentials.ca_pem.empty()) {
    return NotFound("no stored node certificate");
  }
  if (Status s = CheckCaBundle(token, credentials.ca_pem); !s.ok()) {
    return InvalidArgument("the stored CA does not match the token's hash");
  }
  auto subject = pki::ReadSubject(credentials.cert_pem);
  if (!subject.ok()) return InvalidArgument("the stored certificate is unreadable");
  const std::string user = "system:node:" + node_name;
  if (subject->common_name != user ||
      std::find(subject->organizations.begin(), subject->organizations.end(), "system:nodes") ==
          subject->organizations.end()) {
    return InvalidArgument(
        fmt::format("the stored certificate is for {}, not {}", subject->common_name, user));
  }
  if (!KeyMatches(credentials.cert_pem, credentials.key_pem)) {
    return InvalidArgument("the stored key does not belong to the stored certificate");
  }
  if (!ChainsTo(credentials.cert_pem, credentials.ca_pem)) {
    return InvalidArgument("the stored certificate is not valid under the stored CA");
  }
  auto days = pki::DaysUntilExpiry(credentials.cert_pem);
  if (!days.ok()) return days.status();
  if (*days <= renew_within_days) {
    return Unavailable(fmt::format("the stored certificate expires in {} days", *days));
  }
  return Status::Ok();
}

Status JoinRefusal(int http_code, const std::string& body) {
  std::string message;
  json status = json::parse(body, nullptr, false);
  if (status.is_object() && status.contains("message") && status["message"].is_string()) {
    message = status["message"];
  } else if (status.is_discarded() && body.size() < 200 && body.find('\n') == std::string::npos) {
    message = body;
  }
  std::string detail = message.empty() ? fmt::format("HTTP {}", http_code)
                                       : fmt::format("HTTP {}: {}", http_code, message);
  if (http_code == 401 || http_code == 403) {
    return InvalidArgument(fmt::format("the server refused the token ({})", detail));
  }
  if (http_code == 404 || http_code == 405) {
    return InvalidArgument(
        fmt::format("the server does not offer node join ({}): is it an orch server?", detail));
  }
  if (http_code == 429 || http_code >= 500) {
    return Unavailable(fmt::format("the server could not sign the node certificate ({})", detail));
  }
  return InvalidArgument(fmt::format("the server refused the join ({})", detail));
}

std::chrono::milliseconds JoinBackoff(int attempt, std::chrono::milliseconds initial,
                                      std::chrono::milliseconds max) {
  std::chrono::milliseconds delay = initial;
  for (int i = 1; i < attempt && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

}  // namespace orch::agent

namespace orch {

Result<NodeCredentials> JoinCluster(const AgentConfig& config, std::stop_token stop,
                                    const JoinOptions& options) {
  auto token = agent::ParseJoinToken(config.token);
  if (!token.ok()) return token.status();
  auto endpoint = agent::ParseEndpoint(config.server_url);
  if (!endpoint.ok()) return endpoint.status();
  if (config.node_name.empty()) return InvalidArgument("the node has no name (--node-name)");

  const std::string dir = config.data_dir + "/agent";
  NodeCredentials stored;
  stored.ca_file = dir + "/server-ca.crt";
  stored.cert_file = dir + "/client-node.crt";
  stored.key_file = dir + "/client-node.key";
  for (auto [file, pem] :
       {std::pair{&stored.ca_file, &stored.ca_pem}, std::pair{&stored.cert_file, &stored.cert_pem},
        std::pair{&stored.key_file, &stored.key_pem}}) {
    auto content = ReadFileToString(*file);
    if (content.ok()) {
      *pem = std::move(*content);
    } else if (content.status().code() != StatusCode::kNotFound) {
      return content.status();
    }
  }
  Status reuse =
      agent::CheckCredentials(stored, config.node_name, *token, options.renew_within_days);
  if (reuse.ok()) {
    log::Info(agent::kComponent, "using the node certificate in {}", stored.cert_file);
    return stored;
  }
  if (reuse.code() == StatusCode::kNotFound) {
    log::Info(agent::kComponent, "joining {} as node {}", endpoint->url, config.node_name);
  } else {
    log::Info(agent::kComponent, "joining {} as node {} again: {}", endpoint->url, config.node_name,
              reuse.message());
  }

  for (int attempt = 1;; ++attempt) {
    Status failure;
    auto ca = agent::FetchCa(*endpoint, *token, stored.ca_pem, stored.ca_file, options, stop);
    if (ca.ok()) {
      auto issued =
          agent::RequestCertificate(*endpoint, *token, config.node_name, *ca, options, stop);
      if (issued.ok()) {
        NodeCredentials joined = stored;
        joined.ca_pem = *ca;
        joined.cert_pem = issued->cert_pem;
        joined.key_pem = issued->key_pem;
        // What the server sent must be usable as it is, or the next start would join again.
        if (Status s = agent::CheckCredentials(joined, config.node_name, *token, 0); !s.ok()) {
          return Internal("the server's node certificate is unusable: " + s.message());
        }
        if (Status s = MakeDirectories(dir, 0700); !s.ok()) return s;
        // Key first: a crash between the writes leaves a pair that does not match, which the
        // next start notices and joins again.
        for (auto [file, pem] : {std::pair{&joined.key_file, &joined.key_pem},
                                 std::pair{&joined.cert_file, &joined.cert_pem},
                                 std::pair{&joined.ca_file, &joined.ca_pem}}) {
          if (Status s = WriteFileAtomic(*file, *pem, 0600); !s.ok()) return s;
        }
        log::Info(agent::kComponent, "joined {} as node {}; certificate in {}", endpoint->url,
                  config.node_name, joined.cert_file);
        return joined;
      }
      failure = issued.status();
    } else {
      failure = ca.status();
    }
    if (failure.code() != StatusCode::kUnavailable) return failure;
    auto delay = agent::JoinBackoff(attempt, options.initial_backoff, options.max_backoff);
    log::Info(agent::kComponent, "waiting for the server {} (attempt {}; retry in {} ms): {}",
              endpoint->url, attempt, delay.count(), failure.message());
    if (Status s = agent::WaitBeforeRetry(delay, stop); !s.ok()) return s;
  }
}

}  // namespace orch

namespace orch {

Result<ClusterSettings> FetchClusterSettings(const AgentConfig& config, const std::string& ca_pem,
                                             std::stop_token stop, const JoinOptions& options) {
  auto token = agent::ParseJoinToken(config.token);
  if (!token.ok()) return token.status();
  auto endpoint = agent::ParseEndpoint(config.server_url);
  if (!endpoint.ok()) return endpoint.status();
  for (int attempt = 1;; ++attempt) {
    auto settings = agent::RequestSettings(*endpoint, *token, ca_pem, options, stop);
    if (settings.ok() || settings.status().code() != StatusCode::kUnavailable) return settings;
    auto delay = agent::JoinBackoff(attempt, options.initial_backoff, options.max_backoff);
    log::Info(agent::kComponent,
              "waiting for the server {} to give its settings (attempt {}; retry in {} ms): {}",
              endpoint->url, attempt, delay.count(), settings.status().message());
    if (Status s = agent::WaitBeforeRetry(delay, stop); !s.ok()) return s;
  }
}

}  // namespace orch
