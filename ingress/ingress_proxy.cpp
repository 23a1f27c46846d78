// The ingress proxy component (include/orch/ingress.h): Boost.Beast on a few Asio threads, one
// coroutine per connection. Request and response bodies are relayed in bounded chunks as they
// arrive (never buffered whole), upgrades become byte tunnels, idle pod connections are reused.
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on
#include <fmt/format.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "ingress_routes.h"
#include "ingress_tls.h"
#include "orch/ingress.h"
#include "orch/log.h"

namespace orch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using ingress::Backend;
using ingress::Endpoint;
using ingress::RouteTable;

constexpr std::string_view kLog = "ingress";
constexpr size_t kHeaderLimit = 32 * 1024;      // request or response head
constexpr size_t kReadBufferLimit = 64 * 1024;  // per connection and direction
constexpr size_t kChunk = 16 * 1024;            // body bytes in flight per direction
constexpr size_t kDrainLimit = 64 * 1024;  // an unrouted request's body read to keep the connection
constexpr size_t kIdlePerEndpoint = 32;    // idle pod connections kept per thread and endpoint
constexpr std::chrono::seconds kIdleUpstreamTtl(30);
constexpr std::chrono::seconds kBindRetry(10);
constexpr std::chrono::milliseconds kSyncRetry(200);
// Bodies are streamed, so their size is not limited. Not boost::none: Boost 1.74's parser
// compares a Content-Length with the empty optional and reports body_limit.
constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();

auto WithError(error_code& ec) {
  return asio::redirect_error(use_awaitable, ec);
}

// beast::tcp_stream can be moved into place but not move-assigned.
void Replace(std::optional<beast::tcp_stream>& slot, std::optional<beast::tcp_stream> value) {
  slot.reset();
  if (value) slot.emplace(std::move(*value));
}

template <class Stream>
beast::tcp_stream& Lowest(Stream& stream) {
  return beast::get_lowest_layer(stream);
}

// Idle connections to pods, by "ip:port"; belongs to one I/O thread.
class UpstreamPool {
 public:
  std::optional<beast::tcp_stream> Take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return std::nullopt;
    auto now = std::chrono::steady_clock::now();
    while (!it->second.empty()) {
      Idle idle = std::move(it->second.back());
      it->second.pop_back();
      if (now - idle.since < kIdleUpstreamTtl && idle.stream.socket().is_open()) {
        return std::move(idle.stream);
      }
    }
    idle_.erase(it);
    return std::nullopt;
  }

  void Put(const std::string& key, beast::tcp_stream stream) {
    auto& list = idle_[key];
    if (list.size() >= kIdlePerEndpoint) list.pop_front();
    list.push_back({std::move(stream), std::chrono::steady_clock::now()});
  }

  // Drops connections idle for too long (a pod may have closed them).
  void Sweep() {
    auto now = std::chrono::steady_clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      while (!list.empty() && now - list.front().since >= kIdleUpstreamTtl) list.pop_front();
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
  }

 private:
  struct Idle {
    beast::tcp_stream stream;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, std::deque<Idle>> idle_;
};

// One I/O thread and what belongs to it.
struct Worker {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  UpstreamPool pool;  // after io: destroyed before it
  std::unique_ptr<asio::steady_timer> sweep;
  std::thread thread;
};

// A client connection: its stream and read buffer, used by one coroutine at a time (two
// during an upgrade, one per direction).
template <class Stream>
struct Conn {
  template <class... Args>
  Conn(Worker& w, std::atomic<size_t>& active, Args&&... args)
      : stream(std::forward<Args>(args)...), worker(w), active_(active) {}
  ~Conn() { active_.fetch_sub(1); }

  Stream stream;
  beast::flat_buffer buffer{kReadBufferLimit};
  Worker& worker;
  std::string client_ip;
  uint16_t local_port = 0;
  bool tls = false;

 private:
  std::atomic<size_t>& active_;
};

enum class Outcome { kKeepAlive, kClose };

std::string_view View(beast::string_view text) {
  return {text.data(), text.size()};
}

bool IsHttpError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

bool HasToken(std::string_view header, std::string_view token) {
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(pos, end - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (beast::iequals(beast::string_view(item.data(), item.size()),
                       beast::string_view(token.data(), token.size()))) {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

// Removes the headers that describe one hop, not the message (RFC 9110 7.6.1), including those
// the Connection header names. Transfer-Encoding stays: the serializer frames the body by it.
template <class Fields>
void StripHopByHop(Fields& fields) {
  std::string connection(fields[http::field::connection]);
  size_t pos = 0;
  while (pos < connection.size()) {
    size_t end = connection.find(',', pos);
    if (end == std::string::npos) end = connection.size();
    std::string name = connection.substr(pos, end - pos);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (!name.empty() && !beast::iequals(name, "transfer-encoding")) fields.erase(name);
    pos = end + 1;
  }
  for (auto field : {http::field::connection, http::field::keep_alive,
                     http::field::proxy_connection, http::field::proxy_authorization,
                     http::field::proxy_authenticate, http::field::te, http::field::upgrade}) {
    fields.erase(field);
  }
}

class IngressProxyImpl final : public IngressProxy {
 public:
  IngressProxyImpl(IngressProxyOptions options, InformerFactory& informers)
      : options_(std::move(options)),
        informers_(informers),
        ingresses_(informers.For(resources::kIngresses)),
        classes_(informers.For(resources::kIngressClasses)),
        services_(informers.For(resources::kServices)),
        slices_(informers.For(resources::kEndpointSlices)),
        secrets_(informers.For(resources::kSecrets, "", "", "type=kubernetes.io/tls")) {}
  ~IngressProxyImpl() override { Stop(); }

  std::string_view Name() const override { return "ingress"; }
  uint16_t http_port() const override { return http_.port.load(); }
  uint16_t https_port() const override { return https_.port.load(); }

  Status Start() override {
    auto tls = ingress::TlsStore::Create();
    if (!tls.ok()) return tls.status();
    tls_ = std::move(*tls);
    int threads = std::max(1, options_.io_threads);
    for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
    http_.tls = false;
    http_.wanted_port = options_.http_port;
    https_.tls = true;
    https_.wanted_port = options_.https_port;
    retry_ = std::make_unique<asio::steady_timer>(workers_[0]->io);

    auto changed = [this](const ObjectPtr&) { RequestRebuild(); };
    auto updated = [this](const ObjectPtr& old_object, const ObjectPtr& object) {
      if (old_object->value("metadata", nlohmann::json::object()).value("resourceVersion", "") !=
          object->value("metadata", nlohmann::json::object()).value("resourceVersion", "")) {
        RequestRebuild();
      }
    };
    for (Informer* informer : {&ingresses_, &classes_, &secrets_}) {
      informer->AddHandler({changed, updated, changed});
    }
    // A Service or EndpointSlice that no served Ingress names cannot change the routes: with
    // many Services, rebuilding for each of their events would be most of the proxy's work.
    auto backend_handlers = [&](auto service_of) {
      auto changed_backend = [this, service_of](const ObjectPtr& object) {
        if (MayRoute(service_of(*object))) RequestRebuild();
      };
      auto updated_backend = [updated, service_of, this](const ObjectPtr& old_object,
                                                         const ObjectPtr& object) {
        if (MayRoute(service_of(*old_object)) || MayRoute(service_of(*object))) {
          updated(old_object, object);
        }
      };
      return InformerHandler{changed_backend, updated_backend, changed_backend};
    };
    services_.AddHandler(backend_handlers([](const nlohmann::json& service) {
      return fmt::format("{}/{}", ingress::String(service, {"metadata", "namespace"}),
                         ingress::String(service, {"metadata", "name"}));
    }));
    slices_.AddHandler(backend_handlers([](const nlohmann::json& slice) {
      return fmt::format(
          "{}/{}", ingress::String(slice, {"metadata", "namespace"}),
          ingress::String(slice, {"metadata", "labels", "kubernetes.io/service-name"}));
    }));
    for (auto& w : workers_) {
      w->sweep = std::make_unique<asio::steady_timer>(w->io);
      ScheduleSweep(*w);
      w->thread = std::thread([io = &w->io] { io->run(); });
    }
    started_ = true;
    RequestRebuild();
    return Status::Ok();
  }

  void Stop() override {
    if (!started_.exchange(false)) return;
    for (auto& w : workers_) {
      w->work.reset();
      w->io.stop();
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    // The coroutines (and their sockets) go with the io_contexts, in the destructor: informer
    // handlers may still post until the agent stops the informers.
    http_.port = 0;
    https_.port = 0;
  }

 private:
  struct Listener {
    bool tls = false;
    uint16_t wanted_port = 0;
    std::shared_ptr<tcp::acceptor> acceptor;  // on worker 0; null or closed: not listening
    std::atomic<uint16_t> port{0};
    std::string last_error;  // logged once per distinct failure
  };

  // ------------------------------------------------------------------------------------------
  // Configuration, on worker 0.

  void RequestRebuild() {
    if (!rebuild_posted_.exchange(true)) {
      asio::post(workers_[0]->io, [this] { Rebuild(); });
    }
  }

  bool Synced() const {
    return ingresses_.HasSynced() && classes_.HasSynced() && services_.HasSynced() &&
           slices_.HasSynced() && secrets_.HasSynced();
  }

  // Whether a change to Service `key` ("ns/name") can change the routes. Called after the
  // informer's cache holds the change: a rebuild that may have listed the old state is still
  // running (building_), or the published table names the Service.
  bool MayRoute(const std::string& key) {
    if (building_) return true;
    std::lock_guard lock(mu_);
    return !table_ || table_->services.count(key) > 0;
  }

  void Rebuild() {
    rebuild_posted_ = false;
    building_ = true;
    Build();
    building_ = false;
  }

  void Build() {
    if (!Synced()) {
      // Nothing is served before the first complete view: no false 404s.
      retry_->expires_after(kSyncRetry);
      retry_->async_wait([this](error_code ec) {
        if (!ec) RequestRebuild();
      });
      return;
    }
    ingress::RouteInput input{ingresses_.List(), classes_.List(), services_.List(), slices_.List()};
    auto table = std::make_shared<const RouteTable>(ingress::BuildRouteTable(input));
    tls_->Update(table, secrets_.List());
    {
      std::lock_guard lock(mu_);
      table_ = table;
    }
    log::Debug(kLog, "routes: {} ingresses, {} hosts, {} wildcard hosts", table->ingresses,
               table->exact_hosts.size(), table->wildcard_hosts.size());
    if (ingress::AnyClassOfOrch(input.classes)) {
      OpenListener(http_);
      OpenListener(https_);
    } else {
      if (http_.acceptor || https_.acceptor) {
        log::Info(kLog, "no IngressClass of {}: not listening", kIngressControllerName);
      }
      CloseListener(http_);
      CloseListener(https_);
    }
  }

  std::shared_ptr<const RouteTable> Table() {
    std::lock_guard lock(mu_);
    return table_;
  }

  void CloseListener(Listener& l) {
    if (l.acceptor) {
      error_code ec;
      l.acceptor->close(ec);
      l.acceptor.reset();
    }
    l.port = 0;
  }

  Status Bind(tcp::acceptor& acceptor, uint16_t port) {
    error_code ec;
    tcp::endpoint endpoint;
    if (options_.bind_address.empty()) {
      // Dual-stack when the node has IPv6, IPv4 only otherwise.
      acceptor.open(tcp::v6(), ec);
      if (!ec) acceptor.set_option(asio::ip::v6_only(false), ec);
      if (ec) {
        error_code ignored;
        acceptor.close(ignored);
        ec = {};
        acceptor.open(tcp::v4(), ec);
        endpoint = tcp::endpoint(tcp::v4(), port);
      } else {
        endpoint = tcp::endpoint(tcp::v6(), port);
      }
    } else {
      auto address = asio::ip::make_address(options_.bind_address, ec);
      if (ec) return InvalidArgument(fmt::format("ingress bind address: {}", ec.message()));
      endpoint = tcp::endpoint(address, port);
      acceptor.open(endpoint.protocol(), ec);
    }
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Unavailable(fmt::format("port {}: {}", port, ec.message()));
    return Status::Ok();
  }

  void OpenListener(Listener& l) {
    if (l.acceptor) return;
    auto acceptor = std::make_shared<tcp::acceptor>(workers_[0]->io);
    Status s = Bind(*acceptor, l.wanted_port);
    if (!s.ok()) {
      if (s.message() != l.last_error) {
        log::Warn(kLog, "cannot serve {} ingress: {} (retrying every {} s)",
                  l.tls ? "HTTPS" : "HTTP", s.message(), kBindRetry.count());
        l.last_error = s.message();
      }
      retry_->expires_after(kBindRetry);
      retry_->async_wait([this](error_code ec) {
        if (!ec) RequestRebuild();
      });
      return;
    }
    l.last_error.clear();
    l.acceptor = acceptor;
    l.port = acceptor->local_endpoint().port();
    log::Info(kLog, "serving Ingresses over {} on port {}", l.tls ? "HTTPS" : "HTTP",
              l.port.load());
    asio::co_spawn(workers_[0]->io, Accept(acceptor, l.tls), asio::detached);
  }

  void ScheduleSweep(Worker& w) {
    w.sweep->expires_after(kIdleUpstreamTtl);
    w.sweep->async_wait([this, &w](error_code ec) {
      if (ec) return;
      w.pool.Sweep();
      ScheduleSweep(w);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Connections.

  awaitable<void> Accept(std::shared_ptr<tcp::acceptor> acceptor, bool tls) {
    for (;;) {
      Worker& w = *workers_[next_worker_++ % workers_.size()];
      error_code ec;
      tcp::socket socket = co_await acceptor->async_accept(
          asio::any_io_executor(w.io.get_executor()), WithError(ec));
      if (ec) {
        if (!acceptor->is_open() || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors and the like: pause instead of spinning.
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(100));
        co_await pause.async_wait(WithError(ec));
        continue;
      }
      if (active_.load() >= options_.max_connections) {
        socket.close(ec);
        continue;
      }
      active_.fetch_add(1);
      socket.set_option(tcp::no_delay(true), ec);
      std::string client_ip;
      auto remote = socket.remote_endpoint(ec);
      if (!ec) {
        auto address = remote.address();
        if (address.is_v6() && address.to_v6().is_v4_mapped()) {
          address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        }
        client_ip = address.to_string();
      }
      uint16_t local_port = 0;
      auto local = socket.local_endpoint(ec);
      if (!ec) local_port = local.port();
      if (tls) {
        auto conn = std::make_shared<Conn<beast::ssl_stream<beast::tcp_stream>>>(
            w, active_, std::move(socket), tls_->listener_context());
        conn->client_ip = std::move(client_ip);
        conn->local_port = local_port;
        conn->tls = true;
        asio::co_spawn(w.io, ServeTls(std::move(conn)), asio::detached);
      } else {
        auto conn = std::make_shared<Conn<beast::tcp_stream>>(w, active_, std::move(socket));
        conn->client_ip = std::move(client_ip);
        conn->local_port = local_port;
        asio::co_spawn(w.io, Serve(std::move(conn)), asio::detached);
      }
    }
  }

  awaitable<void> ServeTls(std::shared_ptr<Conn<beast::ssl_stream<beast::tcp_stream>>> c) {
    error_code ec;
    Lowest(c->stream).expires_after(options_.request_header_timeout);
    co_await c->stream.async_handshake(asio::ssl::stream_base::server, WithError(ec));
    if (ec) co_return;
    co_await Serve(std::move(c));
  }

  template <class Stream>
  awaitable<void> Serve(std::shared_ptr<Conn<Stream>> c) {
    for (;;) {
      http::request_parser<http::buffer_body> req;
      req.header_limit(kHeaderLimit);
      req.body_limit(kNoBodyLimit);
      error_code ec;
      Lowest(c->stream).expires_after(options_.request_header_timeout);
      co_await http::async_read_header(c->stream, c->buffer, req, WithError(ec));
      if (ec) {
        if (ec == http::error::header_limit) {
          co_await SendSimple(*c, http::status::request_header_fields_too_large, 11,
                              "request header fields too large\n", false);
        } else if (IsHttpError(ec) && ec != http::error::end_of_stream &&
                   ec != http::error::partial_message) {
          co_await SendSimple(*c, http::status::bad_request, 11, "bad request\n", false);
        }
        break;
      }
      Outcome outcome = co_await Handle(c, req);
      if (outcome != Outcome::kKeepAlive) break;
    }
    error_code ignored;
    Lowest(c->stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  template <class Stream>
  awaitable<bool> SendSimple(Conn<Stream>& c, http::status status, unsigned version,
                             std::string text, bool keep) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(text);
    res.keep_alive(keep);
    res.prepare_payload();
    error_code ec;
    Lowest(c.stream).expires_after(options_.body_idle_timeout);
    co_await http::async_write(c.stream, res, WithError(ec));
    co_return !ec;
  }

  // Answers a request the proxy does not forward. A small body is read and dropped so the
  // connection can serve the next request; a larger one closes it.
  template <class Stream>
  awaitable<Outcome> Reply(Conn<Stream>& c, http::request_parser<http::buffer_body>& req,
                           http::status status, std::string text) {
    bool keep = req.keep_alive();
    if (!req.is_done()) {
      auto length = req.content_length();
      if (length && *length <= kDrainLimit) {
        std::vector<char> scratch(kChunk);
        while (!req.is_done()) {
          req.get().body().data = scratch.data();
          req.get().body().size = scratch.size();
          error_code ec;
          Lowest(c.stream).expires_after(options_.body_idle_timeout);
          co_await http::async_read_some(c.stream, c.buffer, req, WithError(ec));
          if (ec == http::error::need_buffer) ec = {};
          if (ec) co_return Outcome::kClose;
        }
      } else {
        keep = false;
      }
    }
    bool sent = co_await SendSimple(c, status, req.get().version(), std::move(text), keep);
    co_return sent&& keep ? Outcome::kKeepAlive : Outcome::kClose;
  }

  // Copies a message body from `in` to `out` as it arrives, kChunk bytes at a time.
  template <bool isRequest, class In, class Out>
  awaitable<error_code> RelayBody(In& in, beast::flat_buffer& in_buffer,
                                  http::parser<isRequest, http::buffer_body>& parser, Out& out,
                                  http::serializer<isRequest, http::buffer_body>& serializer) {
    std::vector<char> chunk(kChunk);
    error_code ec;
    auto& body = parser.get().body();
    while (!parser.is_done()) {
      body.data = chunk.data();
      body.size = chunk.size();
      Lowest(in).expires_after(options_.body_idle_timeout);
      co_await http::async_read_some(in, in_buffer, parser, WithError(ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
      size_t n = chunk.size() - body.size;
      body.data = chunk.data();
      body.size = n;
      body.more = !parser.is_done();
      if (n == 0 && body.more) continue;
      Lowest(out).expires_after(options_.body_idle_timeout);
      co_await http::async_write(out, serializer, WithError(ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
    }
    if (!serializer.is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      Lowest(out).expires_after(options_.body_idle_timeout);
      co_await http::async_write(out, serializer, WithError(ec));
      if (ec == http::error::need_buffer) ec = {};
    }
    co_return ec;
  }

  awaitable<std::optional<beast::tcp_stream>> Connect(const Endpoint& endpoint) {
    error_code ec;
    auto address = asio::ip::make_address(endpoint.ip, ec);
    if (ec) co_return std::nullopt;
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(options_.connect_timeout);
    co_await stream.async_connect(tcp::endpoint(address, endpoint.port), WithError(ec));
    if (ec) {
      log::Debug(kLog, "connect {}:{}: {}", endpoint.ip, endpoint.port, ec.message());
      co_return std::nullopt;
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    co_return std::move(stream);
  }

  template <class Stream>
  awaitable<Outcome> Handle(std::shared_ptr<Conn<Stream>> c,
                            http::request_parser<http::buffer_body>& req) {
    auto& msg = req.get();
    std::string original_host(msg[http::field::host]);
    std::string host = ingress::NormalizeHost(original_host);
    std::string_view target = View(msg.target());
    std::string_view path = target.substr(0, target.find('?'));
    std::shared_ptr<const RouteTable> table = Table();
    std::shared_ptr<const Backend> backend = table ? table->Match(host, path) : nullptr;
    if (!backend)
      co_return co_await Reply(*c, req, http::status::not_found, "404 page not found\n");
    if (backend->endpoints.empty()) {
      co_return co_await Reply(*c, req, http::status::service_unavailable, "no available server\n");
    }

    const bool client_keep = req.keep_alive();
    const bool upgrade = msg.count(http::field::upgrade) > 0 &&
                         HasToken(View(msg[http::field::connection]), "upgrade");
    const std::string upgrade_to(msg[http::field::upgrade]);
    const bool expect_continue = beast::iequals(msg[http::field::expect], "100-continue");
    const bool has_body = !req.is_done();
    const bool is_head = msg.method() == http::verb::head;
    const unsigned client_version = msg.version();

    StripHopByHop(msg);
    if (expect_continue) msg.erase(http::field::expect);  // the proxy answers it itself
    std::string forwarded_for(msg["X-Forwarded-For"]);
    msg.set("X-Forwarded-For",
            forwarded_for.empty() ? c->client_ip : forwarded_for + ", " + c->client_ip);
    msg.set("X-Forwarded-Proto", c->tls ? "https" : "http");
    if (!original_host.empty()) msg.set("X-Forwarded-Host", original_host);
    msg.set("X-Forwarded-Port", std::to_string(c->local_port));
    msg.set("X-Real-Ip", c->client_ip);
    if (upgrade) {
      msg.set(http::field::connection, "Upgrade");
      msg.set(http::field::upgrade, upgrade_to);
    } else {
      msg.keep_alive(true);
    }

    // A pod connection: an idle one for requests without a body (which can be sent again on a
    // fresh connection if the idle one turns out closed), else a new one; other endpoints are
    // tried when a connect fails.
    std::optional<beast::tcp_stream> up;
    std::string up_key;
    bool reused = false;
    const Endpoint* endpoint = backend->Pick();
    size_t tries = std::min<size_t>(backend->endpoints.size(), 3);
    for (size_t i = 0; i < tries && !up; ++i) {
      if (i > 0) endpoint = backend->Pick();
      up_key = fmt::format("{}:{}", endpoint->ip, endpoint->port);
      if (!has_body && !upgrade) {
        Replace(up, c->worker.pool.Take(up_key));
        reused = up.has_value();
      }
      if (!up) Replace(up, co_await Connect(*endpoint));
    }
    if (!up) co_return co_await Reply(*c, req, http::status::bad_gateway, "bad gateway\n");

    beast::flat_buffer up_buffer{kReadBufferLimit};
    std::optional<http::response_parser<http::buffer_body>> res;
    error_code ec;
    for (int attempt = 0;; ++attempt) {
      http::request_serializer<http::buffer_body> sr{msg};
      Lowest(*up).expires_after(options_.connect_timeout);
      co_await http::async_write_header(*up, sr, WithError(ec));
      if (!ec && expect_continue && has_body) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        Lowest(c->stream).expires_after(options_.body_idle_timeout);
        co_await asio::async_write(c->stream, asio::buffer(kContinue), WithError(ec));
        if (ec) co_return Outcome::kClose;
      }
      if (!ec) {
        ec = co_await RelayBody(c->stream, c->buffer, req, *up, sr);
        if (ec && has_body) co_return Outcome::kClose;  // the client or the pod went away
      }
      // The response head, skipping interim 1xx answers other than 101.
      while (!ec) {
        res.emplace();
        res->header_limit(kHeaderLimit);
        res->body_limit(kNoBodyLimit);
        if (is_head) res->skip(true);
        Lowest(*up).expires_after(options_.response_header_timeout);
        co_await http::async_read_header(*up, up_buffer, *res, WithError(ec));
        if (ec) break;
        unsigned status = res->get().result_int();
        if (status >= 200 || status == 101) break;
      }
      if (!ec) break;
      if (reused && attempt == 0 && ec != beast::error::timeout) {
        // The idle connection was closed by the pod meanwhile: once more on a new one.
        Replace(up, co_await Connect(*endpoint));
        reused = false;
        up_buffer.clear();
        if (up) continue;
      }
      log::Debug(kLog, "{} via {}: {}", std::string(target), up_key, ec.message());
      co_return co_await Reply(
          *c, req,
          ec == beast::error::timeout ? http::status::gateway_timeout : http::status::bad_gateway,
          ec == beast::error::timeout ? "gateway timeout\n" : "bad gateway\n");
    }

    auto& rmsg = res->get();
    if (upgrade && rmsg.result() == http::status::switching_protocols) {
      co_await Tunnel(*c, *up, up_buffer, *res);
      co_return Outcome::kClose;
    }
    const unsigned status = rmsg.result_int();
    const bool no_body = is_head || status == 204 || status == 304 || status < 200;
    const bool up_reusable = res->keep_alive() && !res->need_eof() && !upgrade;
    bool keep = client_keep;
    StripHopByHop(rmsg);
    if (!no_body) {
      if (client_version < 11) {
        // HTTP/1.0 has no chunks: the body ends with the connection.
        if (rmsg.chunked()) rmsg.chunked(false);
        if (!rmsg.has_content_length()) keep = false;
      } else if (res->need_eof() && keep) {
        rmsg.chunked(true);  // a body that ends with the pod's connection, framed for ours
      }
    }
    rmsg.version(client_version < 11 ? 10 : 11);
    rmsg.keep_alive(keep);
    http::response_serializer<http::buffer_body> rsr{rmsg};
    Lowest(c->stream).expires_after(options_.body_idle_timeout);
    co_await http::async_write_header(c->stream, rsr, WithError(ec));
    if (ec) co_return Outcome::kClose;
    if (!no_body) {
      ec = co_await RelayBody(*up, up_buffer, *res, c->stream, rsr);
      if (ec) co_return Outcome::kClose;
    }
    if (up_reusable && up_buffer.size() == 0 && res->is_done()) {
      c->worker.pool.Put(up_key, std::move(*up));
    }
    co_return keep ? Outcome::kKeepAlive : Outcome::kClose;
  }

  // After 101 Switching Protocols: the response head to the client, then bytes both ways until
  // either side closes or stays silent for upgraded_idle_timeout.
  template <class Stream>
  awaitable<void> Tunnel(Conn<Stream>& c, beast::tcp_stream& up, beast::flat_buffer& up_buffer,
                         http::response_parser<http::buffer_body>& res) {
    auto& rmsg = res.get();
    std::string upgrade_to(rmsg[http::field::upgrade]);
    StripHopByHop(rmsg);
    rmsg.set(http::field::connection, "Upgrade");
    if (!upgrade_to.empty()) rmsg.set(http::field::upgrade, upgrade_to);
    http::response_serializer<http::buffer_body> rsr{rmsg};
    error_code ec;
    Lowest(c.stream).expires_after(options_.upgraded_idle_timeout);
    co_await http::async_write_header(c.stream, rsr, WithError(ec));
    if (ec) co_return;
    // Bytes that arrived with the heads belong to the new protocol.
    if (up_buffer.size() > 0) {
      co_await asio::async_write(c.stream, up_buffer.data(), WithError(ec));
      if (ec) co_return;
      up_buffer.consume(up_buffer.size());
    }
    if (c.buffer.size() > 0) {
      Lowest(up).expires_after(options_.upgraded_idle_timeout);
      co_await asio::async_write(up, c.buffer.data(), WithError(ec));
      if (ec) co_return;
      c.buffer.consume(c.buffer.size());
    }
    struct Done {
      bool finished = false;
      asio::steady_timer timer;
    };
    auto executor = co_await asio::this_coro::executor;
    auto done = std::make_shared<Done>(Done{false, asio::steady_timer(executor)});
    asio::co_spawn(executor, Pump(up, c.stream), [done](std::exception_ptr) {
      done->finished = true;
      done->timer.cancel();
    });
    co_await Pump(c.stream, up);
    // One direction ended: close both so the other ends too, then wait for it (it uses `up`).
    Lowest(c.stream).close();
    up.close();
    if (!done->finished) {
      done->timer.expires_at(asio::steady_timer::time_point::max());
      co_await done->timer.async_wait(WithError(ec));
    }
  }

  template <class From, class To>
  awaitable<void> Pump(From& from, To& to) {
    std::vector<char> chunk(kChunk);
    for (;;) {
      error_code ec;
      Lowest(from).expires_after(options_.upgraded_idle_timeout);
      size_t n = co_await from.async_read_some(asio::buffer(chunk), WithError(ec));
      if (n > 0) {
        error_code write_ec;
        Lowest(to).expires_after(options_.upgraded_idle_timeout);
        co_await asio::async_write(to, asio::buffer(chunk.data(), n), WithError(write_ec));
        if (write_ec) co_return;
      }
      if (ec) co_return;
    }
  }

  const IngressProxyOptions options_;
  InformerFactory& informers_;
  Informer& ingresses_;
  Informer& classes_;
  Informer& services_;
  Informer& slices_;
  Informer& secrets_;

  std::unique_ptr<ingress::TlsStore> tls_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<asio::steady_timer> retry_;  // worker 0: informer sync and port retries
  Listener http_;                              // worker 0
  Listener https_;                             // worker 0
  std::atomic<bool> rebuild_posted_{false};
  std::atomic<bool> building_{false};  // a rebuild is listing the informers or publishing
  std::atomic<bool> started_{false};
  std::atomic<size_t> active_{0};
  size_t next_worker_ = 0;  // worker 0
  std::mutex mu_;
  std::shared_ptr<const RouteTable> table_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<IngressProxy> NewIngressProxy(IngressProxyOptions options,
                                              InformerFactory& informers) {
  return std::make_unique<IngressProxyImpl>(std::move(options), informers);
}

}  // namespace orch
