// The HTTPS ApiClient of remote agents and tools (api_client.h): unary calls over a small pool of
// keep-alive TLS connections, watches as long-lived chunked streams, all on two I/O threads.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

// clang-format off
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without it
// clang-format on

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "orch/api_client.h"
#include "orch/log.h"
#include "orch/net.h"

namespace orch {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kIoThreads = 2;
constexpr size_t kMaxIdleConnections = 8;
// Idle connections are dropped well before the server's own idle timeout (5 minutes), so a
// reused connection is almost never one the server is closing.
constexpr auto kMaxIdleTime = std::chrono::seconds(60);
constexpr uint64_t kMaxResponseBytes = 512ull << 20;
constexpr size_t kMaxWatchLineBytes = 64u << 20;
constexpr auto kWatchSlack = std::chrono::seconds(30);  // beyond timeoutSeconds before we give up

using Stream = beast::ssl_stream<beast::tcp_stream>;

std::string PercentEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// "?a=b&c=d" from the non-empty pairs, values percent-encoded.
std::string QueryString(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    out += out.empty() ? '?' : '&';
    out += name + "=" + PercentEncode(value);
  }
  return out;
}

// An answer, or the transport failure that prevented one.
struct Reply {
  int code = 0;
  std::string body;
  Status transport;
};

Status StatusFromReply(const Reply& reply) {
  if (!reply.transport.ok()) return reply.transport;
  std::string reason;
  std::string message = fmt::format("the server answered HTTP {}", reply.code);
  json status = json::parse(reply.body, nullptr, false);
  if (status.is_object()) {
    if (status.contains("reason") && status["reason"].is_string()) reason = status["reason"];
    if (status.contains("message") && status["message"].is_string()) message = status["message"];
  } else if (!reply.body.empty() && reply.body.size() < 1024) {
    message = reply.body;
  }
  return StatusFromApiError(reply.code, reason, message);
}

// Everything the calls and watches share: the I/O threads, the TLS settings, the idle pool.
class Core {
 public:
  Core(HttpsUrl url, HttpsClientOptions options)
      : url_(std::move(url)), options_(std::move(options)), tls_(ssl::context::tls_client) {}

  ~Core() {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    // Idle connections go before the io_context they belong to.
    idle_.clear();
  }

  Status Init() {
    try {
      tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      tls_.add_certificate_authority(net::buffer(options_.ca_pem));
      tls_.set_verify_mode(ssl::verify_peer);
      if (!options_.cert_pem.empty() || !options_.key_pem.empty()) {
        tls_.use_certificate_chain(net::buffer(options_.cert_pem));
        tls_.use_private_key(net::buffer(options_.key_pem), ssl::context::pem);
      }
    } catch (const std::exception& e) {
      return InvalidArgument(fmt::format("unusable TLS credentials: {}", e.what()));
    }
    for (int i = 0; i < kIoThreads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return Status::Ok();
  }

  const HttpsUrl& url() const { return url_; }
  const HttpsClientOptions& options() const { return options_; }
  net::io_context& ioc() { return ioc_; }

  // A new stream on its own strand, set up to verify the server's name or address.
  std::unique_ptr<Stream> NewStream() {
    auto stream = std::make_unique<Stream>(net::make_strand(ioc_), tls_);
    SSL* handle = stream->native_handle();
    if (url_.host_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(handle, url_.host.c_str());
      SSL_set1_host(handle, url_.host.c_str());
    }
    return stream;
  }

  std::unique_ptr<Stream> TakeIdle() {
    std::lock_guard lock(pool_mu_);
    while (!idle_.empty()) {
      Idle entry = std::move(idle_.back());
      idle_.pop_back();
      if (Clock::now() - entry.since < kMaxIdleTime) return std::move(entry.stream);
    }
    return nullptr;
  }

  void ReturnIdle(std::unique_ptr<Stream> stream) {
    std::lock_guard lock(pool_mu_);
    if (idle_.size() >= kMaxIdleConnections) return;  // dropped: closes the socket
    idle_.push_back({std::move(stream), Clock::now()});
  }

  void ApplyHeaders(bhttp::request<bhttp::string_body>& req) const {
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    req.set(bhttp::field::host, host + ":" + url_.port);
    req.set(bhttp::field::user_agent, options_.user_agent);
    req.set(bhttp::field::accept, "application/json");
    if (!options_.bearer_token.empty()) {
      req.set(bhttp::field::authorization, "Bearer " + options_.bearer_token);
    }
  }

 private:
  struct Idle {
    std::unique_ptr<Stream> stream;
    Clock::time_point since;
  };

  const HttpsUrl url_;
  const HttpsClientOptions options_;
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      ioc_.get_executor()};
  ssl::context tls_;
  std::vector<std::thread> threads_;
  std::mutex pool_mu_;
  std::vector<Idle> idle_;  // guarded by pool_mu_; most recently used last
};

// Connects a fresh stream: resolve (names only), TCP connect, TLS handshake, each bounded by
// `deadline`. `done(ec)` runs on the stream's strand.
template <typename Done>
void Connect(Core& core, Stream& stream, Clock::time_point deadline, Done done) {
  auto connect = [&stream, deadline, done = std::move(done)](beast::error_code ec,
                                                             const auto& endpoints) mutable {
    if (ec) return done(ec);
    auto& tcp_stream = beast::get_lowest_layer(stream);
    tcp_stream.expires_at(deadline);
    tcp_stream.async_connect(endpoints, [&stream, deadline, done = std::move(done)](
                                            beast::error_code ec, const tcp::endpoint&) mutable {
      if (ec) return done(ec);
      auto& socket = beast::get_lowest_layer(stream).socket();
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      socket.set_option(net::socket_base::keep_alive(true), ignored);
      // Notice a dead server under a quiet watch within about two minutes.
      int idle = 60, interval = 10, count = 6;
      setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
      setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
      setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
      beast::get_lowest_layer(stream).expires_at(deadline);
      stream.async_handshake(ssl::stream_base::client, std::move(done));
    });
  };
  const HttpsUrl& url = core.url();
  if (url.host_is_ip) {
    // No resolver for addresses: Asio resolves on a hidden thread of its own.
    tcp::endpoint endpoint(net::ip::make_address(url.host),
                           static_cast<unsigned short>(std::stoi(url.port)));
    return connect({}, std::array<tcp::endpoint, 1>{endpoint});
  }
  auto resolver = std::make_shared<tcp::resolver>(stream.get_executor());
  resolver->async_resolve(url.host, url.port,
                          [resolver, connect = std::move(connect)](
                              beast::error_code ec, tcp::resolver::results_type results) mutable {
                            connect(ec, results);
                          });
}

std::string TransportMessage(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "the request to the API server timed out";
  return "cannot reach the API server: " + ec.message();
}

// One request and its answer, on a pooled connection or a new one. A reused connection that the
// server closed before answering is retried once on a new connection.
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(Core& core, bhttp::request<bhttp::string_body> request)
      : core_(core),
        request_(std::move(request)),
        deadline_(Clock::now() + core.options().request_timeout) {}

  std::future<Reply> Start() {
    auto future = promise_.get_future();
    stream_ = core_.TakeIdle();
    reused_ = stream_ != nullptr;
    if (!stream_) stream_ = core_.NewStream();
    net::dispatch(stream_->get_executor(), [self = shared_from_this()] {
      if (self->reused_) return self->Write();
      self->ConnectNew();
    });
    return future;
  }

 private:
  void ConnectNew() {
    Connect(core_, *stream_, deadline_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail(ec);
      self->Write();
    });
  }

  void Write() {
    beast::get_lowest_layer(*stream_).expires_at(deadline_);
    bhttp::async_write(*stream_, request_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Retry(ec);
                         self->Read();
                       });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxResponseBytes);
    bhttp::async_read(*stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                        if (ec) return bytes == 0 ? self->Retry(ec) : self->Fail(ec);
                        self->Finish();
                      });
  }

  // The server may have closed a pooled connection just as we picked it: try a new one.
  void Retry(beast::error_code ec) {
    if (!reused_ || ec == beast::error::timeout) return Fail(ec);
    reused_ = false;
    buffer_.clear();
    // We are inside a handler of the old stream: keep it alive until the call ends. The new
    // stream lives on another strand; continue there.
    retired_ = std::move(stream_);
    stream_ = core_.NewStream();
    net::dispatch(stream_->get_executor(), [self = shared_from_this()] { self->ConnectNew(); });
  }

  void Fail(beast::error_code ec) {
    Reply reply;
    reply.transport = Unavailable(TransportMessage(ec));
    promise_.set_value(std::move(reply));
  }

  void Finish() {
    auto& response = parser_->get();
    Reply reply;
    reply.code = response.result_int();
    reply.body = std::move(response.body());
    if (response.keep_alive() && buffer_.size() == 0) {
      beast::get_lowest_layer(*stream_).expires_never();
      core_.ReturnIdle(std::move(stream_));
    }
    promise_.set_value(std::move(reply));
  }

  Core& core_;
  bhttp::request<bhttp::string_body> request_;
  const Clock::time_point deadline_;
  // Streams are destroyed with the call, never inside one of their own handlers.
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<Stream> retired_;
  bool reused_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::promise<Reply> promise_;
};

// One watch stream. Its I/O runs on the stream's strand; callbacks go through Deliver, which
// Stop synchronises with so that no callback runs once Stop has returned.
class WatchStream : public std::enable_shared_from_this<WatchStream> {
 public:
  WatchStream(Core& core, bhttp::request<bhttp::string_body> request, WatchHandler handler,
              int64_t timeout_seconds)
      : core_(core),
        request_(std::move(request)),
        handler_(std::move(handler)),
        timeout_seconds_(timeout_seconds),
        stream_(core.NewStream()) {}

  // Resolves once the response header is in: OK for a running stream, else why it failed.
  std::future<Status> Start() {
    auto future = started_.get_future();
    auto deadline = Clock::now() + core_.options().request_timeout;
    net::dispatch(stream_->get_executor(), [self = shared_from_this(), deadline] {
      Connect(self->core_, *self->stream_, deadline, [self, deadline](beast::error_code ec) {
        if (ec) return self->StartFailed(Unavailable(TransportMessage(ec)));
        beast::get_lowest_layer(*self->stream_).expires_at(deadline);
        bhttp::async_write(*self->stream_, self->request_, [self](beast::error_code ec, size_t) {
          if (ec) {
            return self->StartFailed(Unavailable(TransportMessage(ec)));
          }
          self->ReadHeader();
        });
      });
    });
    return future;
  }

  void Stop() {
    {
      std::unique_lock lock(mu_);
      stopped_ = true;
      // A callback that stops its own watch must not wait for itself.
      if (delivering_ && delivering_thread_ != std::this_thread::get_id()) {
        idle_cv_.wait(lock, [this] { return !delivering_; });
      }
    }
    net::dispatch(stream_->get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      beast::get_lowest_layer(*self->stream_).socket().close(ignored);
    });
  }

 private:
  void ReadHeader() {
    parser_.body_limit(boost::none);  // an endless stream; lines are bounded instead
    bhttp::async_read_header(*stream_, buffer_, parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->StartFailed(Unavailable(TransportMessage(ec)));
                               self->OnHeader();
                             });
  }

  void OnHeader() {
    int code = parser_.get().result_int();
    if (code != 200) {
      // The error's Status is in the body; read it before reporting.
      parser_.body_limit(1 << 20);
      bhttp::async_read(*stream_, buffer_, parser_,
                        [self = shared_from_this(), code](beast::error_code, size_t) {
                          Reply reply;
                          reply.code = code;
                          reply.body = std::move(self->parser_.get().body());
                          self->StartFailed(StatusFromReply(reply));
                        });
      return;
    }
    started_.set_value(Status::Ok());
    ReadMore();
  }

  void StartFailed(Status status) {
    beast::error_code ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    started_.set_value(std::move(status));
  }

  void ReadMore() {
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    if (timeout_seconds_ > 0) {
      tcp_stream.expires_after(std::chrono::seconds(timeout_seconds_) + kWatchSlack);
    } else {
      tcp_stream.expires_never();
    }
    bhttp::async_read_some(
        *stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnData(ec); });
  }

  void OnData(beast::error_code ec) {
    if (IsStopped()) return;
    // The body only ever holds what arrived since the last read: lines are taken out as they
    // complete, so a long watch keeps no history.
    std::string& body = parser_.get().body();
    pending_.append(body);
    body.clear();
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl > start && !HandleLine(std::string_view(pending_).substr(start, nl - start))) return;
    }
    pending_.erase(0, start);
    if (pending_.size() > kMaxWatchLineBytes) {
      return End(TooLarge("a watch event exceeds the client's line limit"));
    }
    if (parser_.is_done() || ec == bhttp::error::end_of_stream) return End(Status::Ok());
    if (ec) {
      return End(Unavailable(ec == beast::error::timeout ? "the watch stream went silent"
                                                         : "watch stream: " + ec.message()));
    }
    ReadMore();
  }

  // False when the stream ended (an ERROR event or Stop).
  bool HandleLine(std::string_view line) {
    json frame = json::parse(line, nullptr, false);
    if (!frame.is_object() || !frame.contains("type") || !frame["type"].is_string()) {
      End(Internal("malformed watch event from the API server"));
      return false;
    }
    const std::string& type = frame["type"].get_ref<const std::string&>();
    WatchEvent event;
    if (type == "ADDED") {
      event.type = WatchEvent::Type::kAdded;
    } else if (type == "MODIFIED") {
      event.type = WatchEvent::Type::kModified;
    } else if (type == "DELETED") {
      event.type = WatchEvent::Type::kDeleted;
    } else if (type == "BOOKMARK") {
      event.type = WatchEvent::Type::kBookmark;
    } else if (type == "ERROR") {
      const json& status = frame["object"];
      int code = status.is_object() ? status.value("code", 500) : 500;
      Reply reply{code, status.dump(), Status::Ok()};
      End(StatusFromReply(reply));
      return false;
    } else {
      return true;  // a type from the future: skip
    }
    event.object = std::move(frame["object"]);
    return Deliver([&] {
      if (handler_.on_event) handler_.on_event(std::move(event));
    });
  }

  void End(Status status) {
    beast::error_code ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    Deliver([&] {
      if (handler_.on_end) handler_.on_end(std::move(status));
    });
    // Nothing more may be delivered after the end.
    std::lock_guard lock(mu_);
    stopped_ = true;
  }

  bool IsStopped() {
    std::lock_guard lock(mu_);
    return stopped_;
  }

  // Runs `callback` unless stopped; false if stopped.
  template <typename F>
  bool Deliver(F&& callback) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return false;
      delivering_ = true;
      delivering_thread_ = std::this_thread::get_id();
    }
    try {
      callback();
    } catch (const std::exception& e) {
      log::Error("client", "watch callback threw: {}", e.what());
    }
    std::lock_guard lock(mu_);
    delivering_ = false;
    idle_cv_.notify_all();
    return !stopped_;
  }

  Core& core_;
  bhttp::request<bhttp::string_body> request_;
  WatchHandler handler_;
  const int64_t timeout_seconds_;
  std::unique_ptr<Stream> stream_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
  std::string pending_;  // a partial line
  std::promise<Status> started_;

  std::mutex mu_;
  std::condition_variable idle_cv_;
  bool stopped_ = false;               // guarded by mu_
  bool delivering_ = false;            // guarded by mu_
  std::thread::id delivering_thread_;  // guarded by mu_
};

class HttpsWatch : public Watch {
 public:
  explicit HttpsWatch(std::shared_ptr<WatchStream> stream) : stream_(std::move(stream)) {}
  ~HttpsWatch() override { Stop(); }
  void Stop() override { stream_->Stop(); }

 private:
  std::shared_ptr<WatchStream> stream_;
};

const char* PatchContentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

class HttpsApiClient : public ApiClient {
 public:
  explicit HttpsApiClient(std::unique_ptr<Core> core) : core_(std::move(core)) {}

  Result<json> Get(const ResourceRef& ref, const std::string& ns,
                   const std::string& name) override {
    return Object(Send(bhttp::verb::get, ref.ObjectPath(ns, name)));
  }

  Result<ObjectList> List(const ResourceRef& ref, const std::string& ns,
                          const ListOptions& options) override {
    std::string query =
        QueryString({{"labelSelector", options.label_selector},
                     {"fieldSelector", options.field_selector},
                     {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                     {"continue", options.continue_token},
                     {"resourceVersion", options.resource_version}});
    auto body = Object(Send(bhttp::verb::get, ref.CollectionPath(ns) + query));
    if (!body.ok()) return body.status();
    ObjectList list;
    const json& meta = (*body)["metadata"];
    if (meta.is_object()) {
      list.resource_version = meta.value("resourceVersion", "");
      list.continue_token = meta.value("continue", "");
    }
    // JSON lists leave kind and apiVersion out of their items; fill them in, so items look like
    // the objects Get and watches return.
    std::string kind = body->value("kind", "");
    if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0)
      kind.resize(kind.size() - 4);
    std::string api_version = body->value("apiVersion", "");
    json& items = (*body)["items"];
    if (items.is_array()) {
      list.items.reserve(items.size());
      for (json& item : items) {
        if (item.is_object()) {
          if (!item.contains("kind") && !kind.empty()) item["kind"] = kind;
          if (!item.contains("apiVersion") && !api_version.empty())
            item["apiVersion"] = api_version;
        }
        list.items.push_back(std::move(item));
      }
    }
    return list;
  }

  Result<json> Create(const ResourceRef& ref, const std::string& ns, const json& object,
                      const WriteOptions& options) override {
    return Object(Send(bhttp::verb::post, ref.CollectionPath(ns) + WriteQuery(options, false),
                       object.dump(), "application/json"));
  }

  Result<json> Update(const ResourceRef& ref, const std::string& ns, const json& object,
                      const std::string& subresource, const WriteOptions& options) override {
    std::string name;
    if (object.contains("metadata") && object["metadata"].is_object()) {
      name = object["metadata"].value("name", "");
    }
    if (name.empty()) return InvalidArgument("Update needs metadata.name");
    std::string object_ns = ns;
    if (object_ns.empty() && ref.namespaced) object_ns = object["metadata"].value("namespace", "");
    return Object(Send(bhttp::verb::put,
                       ref.ObjectPath(object_ns, name, subresource) + WriteQuery(options, false),
                       object.dump(), "application/json"));
  }

  Result<json> Patch(const ResourceRef& ref, const std::string& ns, const std::string& name,
                     PatchType type, const std::string& patch, const std::string& subresource,
                     const WriteOptions& options) override {
    return Object(
        Send(bhttp::verb::patch,
             ref.ObjectPath(ns, name, subresource) + WriteQuery(options, type == PatchType::kApply),
             patch, PatchContentType(type)));
  }

  Result<json> Delete(const ResourceRef& ref, const std::string& ns, const std::string& name,
                      const DeleteOptions& options) override {
    json body = json::object();
    if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
    if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
    if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
    if (!options.precondition_resource_version.empty()) {
      body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
    }
    std::string text;
    std::string content_type;
    if (!body.empty()) {
      body["kind"] = "DeleteOptions";
      body["apiVersion"] = "v1";
      text = body.dump();
      content_type = "application/json";
    }
    auto answer =
        Object(Send(bhttp::verb::delete_, ref.ObjectPath(ns, name), std::move(text), content_type));
    if (!answer.ok()) return answer;
    // A Status means the object is gone; so does the object without a deletionTimestamp (the
    // server answers with its last state). With one, finalizers or a grace period may hold it,
    // or it may be the last state of an object that was already terminating: only a read tells.
    if (answer->value("kind", "") == "Status") return json();
    const json& meta = (*answer)["metadata"];
    if (!meta.is_object() || !meta.contains("deletionTimestamp") ||
        meta["deletionTimestamp"].is_null()) {
      return json();
    }
    auto now = Get(ref, ns, name);
    if (now.ok()) {
      const json& now_meta = (*now)["metadata"];
      bool same = now_meta.is_object() && now_meta.value("uid", "") == meta.value("uid", "");
      if (same) return now;
      return json();
    }
    if (now.status().code() == StatusCode::kNotFound) return json();
    return answer;
  }

  Result<json> Post(const ResourceRef& ref, const std::string& ns, const std::string& name,
                    const std::string& subresource, const json& body) override {
    return Object(Send(bhttp::verb::post, ref.ObjectPath(ns, name, subresource), body.dump(),
                       "application/json"));
  }

  Result<std::unique_ptr<Watch>> StartWatch(const ResourceRef& ref, const std::string& ns,
                                            const WatchOptions& options,
                                            WatchHandler handler) override {
    std::vector<std::pair<std::string, std::string>> params = {
        {"watch", "1"},
        {"labelSelector", options.label_selector},
        {"fieldSelector", options.field_selector},
        {"resourceVersion", options.resource_version},
        {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
        {"timeoutSeconds",
         options.timeout_seconds > 0 ? std::to_string(options.timeout_seconds) : ""},
        // No resourceVersion means "from now" in our contract; the API would otherwise start
        // with the whole collection as ADDED events.
        {"sendInitialEvents", options.resource_version.empty() ? "false" : ""}};
    auto request = MakeRequest(bhttp::verb::get, ref.CollectionPath(ns) + QueryString(params));
    auto stream = std::make_shared<WatchStream>(*core_, std::move(request), std::move(handler),
                                                options.timeout_seconds);
    Status started = stream->Start().get();
    if (!started.ok()) return started;
    return std::unique_ptr<Watch>(std::make_unique<HttpsWatch>(std::move(stream)));
  }

 private:
  bhttp::request<bhttp::string_body> MakeRequest(bhttp::verb verb, const std::string& target,
                                                 std::string body = "",
                                                 const std::string& content_type = "") {
    bhttp::request<bhttp::string_body> req(verb, core_->url().base_path + target, 11);
    core_->ApplyHeaders(req);
    if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
    if (!body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
        verb == bhttp::verb::patch) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    return req;
  }

  std::string WriteQuery(const WriteOptions& options, bool apply) const {
    return QueryString(
        {{"fieldManager",
          options.field_manager.empty() ? core_->options().field_manager : options.field_manager},
         {"dryRun", options.dry_run ? "All" : ""},
         {"force", apply && options.force ? "true" : ""}});
  }

  Reply Send(bhttp::verb verb, const std::string& target, std::string body = "",
             const std::string& content_type = "") {
    auto call =
        std::make_shared<Call>(*core_, MakeRequest(verb, target, std::move(body), content_type));
    try {
      return call->Start().get();
    } catch (const std::future_error&) {
      Reply reply;
      reply.transport = Unavailable("the client is shutting down");
      return reply;
    }
  }

  static Result<json> Object(const Reply& reply) {
    if (!reply.transport.ok() || reply.code < 200 || reply.code >= 300) {
      return StatusFromReply(reply);
    }
    json object = json::parse(reply.body, nullptr, false);
    if (object.is_discarded()) return Internal("the API server sent malformed JSON");
    return object;
  }

  std::unique_ptr<Core> core_;
};

}  // namespace

Result<std::unique_ptr<ApiClient>> NewHttpsApiClient(const HttpsClientOptions& options) {
  auto url = ParseHttpsUrl(options.server_url);
  if (!url.ok()) return InvalidArgument(fmt::format("server URL {}", url.status().message()));
  if (options.ca_pem.empty()) return InvalidArgument("the cluster CA certificate is required");
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return InvalidArgument("a client certificate needs its key, and the other way round");
  }
  auto core = std::make_unique<Core>(std::move(*url), options);
  Status status = core->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<ApiClient>(std::make_unique<HttpsApiClient>(std::move(core)));
}

}  // namespace orch
