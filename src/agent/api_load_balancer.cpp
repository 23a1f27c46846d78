// The agent's client-side load balancer (orch/api_load_balancer.h): a loopback TCP port whose
// connections are spliced to the current API server on one Asio thread, with /readyz probes.
#include "orch/api_load_balancer.h"

// clang-format off
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without it
// clang-format on

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "orch/files.h"
#include "orch/informer.h"
#include "orch/log.h"
#include "server_picker.h"

namespace orch {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::string_view kLog = "loadbalancer";
constexpr size_t kCopyBuffer = 16 * 1024;

// "host:port" or "[v6]:port" -> host (without brackets), port.
std::pair<std::string, std::string> SplitServer(const std::string& server) {
  size_t colon = server.rfind(':');
  if (colon == std::string::npos) return {server, "443"};
  std::string host = server.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, server.substr(colon + 1)};
}

// One forwarded connection: the agent's side and the server's side.
struct Pipe {
  explicit Pipe(net::io_context& ioc) : client(ioc), upstream(ioc) {}
  tcp::socket client;
  tcp::socket upstream;
  std::string server;
  int open_directions = 2;

  void Close() {
    error_code ignored;
    client.shutdown(tcp::socket::shutdown_both, ignored);
    client.close(ignored);
    upstream.shutdown(tcp::socket::shutdown_both, ignored);
    upstream.close(ignored);
  }
};

class LoadBalancer final : public ApiLoadBalancer {
 public:
  LoadBalancer(const ApiLoadBalancerOptions& options, std::string join_server)
      : options_(options),
        picker_(std::move(join_server)),
        probe_tls_(ssl::context::tls_client),
        acceptor_(ioc_),
        probe_timer_(ioc_) {
    probe_tls_.set_verify_mode(ssl::verify_none);  // a liveness probe: it sends no credentials
    if (!options_.data_dir.empty()) list_file_ = options_.data_dir + "/agent/api-servers.json";
  }

  ~LoadBalancer() override { Stop(); }

  Status Bind() {
    auto bind = [this](int port) -> error_code {
      error_code ec;
      tcp::endpoint at(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
      acceptor_.open(at.protocol(), ec);
      if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor_.bind(at, ec);
      if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
      if (ec) {
        error_code ignored;
        acceptor_.close(ignored);
      }
      return ec;
    };
    error_code ec = bind(options_.port);
    if (ec && options_.port != 0) {
      log::Info(kLog, "127.0.0.1:{} is taken ({}); using a free port", options_.port, ec.message());
      ec = bind(0);
    }
    if (ec) return Unavailable(fmt::format("cannot listen on 127.0.0.1: {}", ec.message()));
    port_ = acceptor_.local_endpoint().port();
    return Status::Ok();
  }

  void Run() {
    if (!list_file_.empty()) {
      auto stored = ReadFileToString(list_file_);
      if (stored.ok()) {
        std::lock_guard lock(mu_);
        picker_.SetServers(agent::ParseServerList(*stored));
      }
    }
    log::Info(kLog, "API servers through {}: {}", url(), fmt::join(servers(), ", "));
    net::co_spawn(ioc_, Accept(), net::detached);
    net::co_spawn(ioc_, ProbeLoop(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  std::string url() const override { return fmt::format("https://127.0.0.1:{}", port_); }

  std::vector<std::string> servers() const override {
    std::lock_guard lock(mu_);
    return picker_.DialOrder();
  }

  void Follow(ApiClient& client) override {
    std::lock_guard lock(follow_mu_);
    if (informers_ || stopped_) return;
    informers_ = InformerFactory::Create(client);
    Informer& endpoints =
        informers_->For(resources::kEndpoints, "default", "", "metadata.name=kubernetes");
    auto learn = [this](const ObjectPtr& object) {
      std::vector<std::string> list = agent::ServersOfEndpoints(*object);
      net::post(ioc_, [this, list = std::move(list)] { Learn(list); });
    };
    endpoints.AddHandler({.on_add = learn,
                          .on_update = [learn](const ObjectPtr&, const ObjectPtr& o) { learn(o); },
                          .on_delete = nullptr});
    informers_->Start();
  }

  void Stop() override {
    {
      std::lock_guard lock(follow_mu_);
      if (stopped_) return;
      stopped_ = true;
      if (informers_) informers_->Stop();
    }
    if (thread_.joinable()) {
      net::post(ioc_, [this] {
        stopping_ = true;
        error_code ignored;
        acceptor_.close(ignored);
        probe_timer_.cancel();
        for (const auto& pipe : pipes_) pipe->Close();
        ioc_.stop();
      });
      thread_.join();
    }
    pipes_.clear();
  }

 private:
  // On the I/O thread: the servers the cluster lists now.
  void Learn(const std::vector<std::string>& list) {
    std::vector<std::string> all;
    {
      std::lock_guard lock(mu_);
      if (!picker_.SetServers(list)) return;
      all = picker_.servers();
    }
    log::Info(kLog, "API servers: {}", fmt::join(all, ", "));
    if (list_file_.empty()) return;
    if (Status s = WriteFileAtomic(list_file_, agent::FormatServerList(all), 0600); !s.ok()) {
      log::Warn(kLog, "cannot store the API server list: {}", s.message());
    }
  }

  // On the I/O thread: `server` failed a connect or a probe.
  void Failed(const std::string& server, const std::string& why) {
    bool moved = false;
    bool was_healthy = false;
    std::string current;
    {
      std::lock_guard lock(mu_);
      was_healthy = picker_.healthy(server);
      moved = picker_.ReportFailed(server);
      current = picker_.current();
    }
    if (was_healthy) log::Warn(kLog, "API server {} is unavailable: {}", server, why);
    if (!moved) return;
    log::Warn(kLog, "switching from API server {} to {}", server, current);
    // Their clients reconnect through the balancer, to the new current server.
    for (const auto& pipe : pipes_) {
      if (pipe->server == server) pipe->Close();
    }
  }

  net::awaitable<void> Accept() {
    while (!stopping_) {
      auto pipe = std::make_shared<Pipe>(ioc_);
      error_code ec;
      co_await acceptor_.async_accept(pipe->client, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == net::error::operation_aborted) co_return;
        log::Warn(kLog, "accept: {}", ec.message());
        continue;
      }
      net::co_spawn(ioc_, Forward(std::move(pipe)), net::detached);
    }
  }

  // Connects `socket` to `server` within the dial timeout.
  net::awaitable<error_code> Dial(tcp::socket& socket, const std::string& server) {
    auto [host, port] = SplitServer(server);
    tcp::resolver resolver(ioc_);
    error_code ec;
    auto addresses =
        co_await resolver.async_resolve(host, port, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return ec;
    // The timer's handler may be queued behind the connect's completion: `done` keeps it from
    // cancelling a socket that is already forwarding.
    struct Race {
      bool done = false;
      bool timed_out = false;
    };
    auto race = std::make_shared<Race>();
    net::steady_timer timer(ioc_);
    timer.expires_after(options_.dial_timeout);
    timer.async_wait([&socket, race](error_code e) {
      if (e || race->done) return;
      race->timed_out = true;
      error_code ignored;
      socket.cancel(ignored);
    });
    co_await net::async_connect(socket, addresses, net::redirect_error(net::use_awaitable, ec));
    race->done = true;
    timer.cancel();
    if (race->timed_out) co_return net::error::timed_out;
    if (!ec) socket.set_option(tcp::no_delay(true), ec);
    co_return ec;
  }

  net::awaitable<void> Forward(std::shared_ptr<Pipe> pipe) {
    std::vector<std::string> order;
    {
      std::lock_guard lock(mu_);
      order = picker_.DialOrder();
    }
    for (const std::string& server : order) {
      if (stopping_) co_return;
      error_code ec = co_await Dial(pipe->upstream, server);
      if (!ec) {
        pipe->server = server;
        std::lock_guard lock(mu_);
        picker_.ReportConnected(server);
        break;
      }
      error_code ignored;
      pipe->upstream.close(ignored);
      Failed(server, "connect: " + ec.message());
    }
    if (pipe->server.empty()) {
      pipe->Close();  // nobody answers: the client sees the connection closed and retries
      co_return;
    }
    pipes_.insert(pipe);
    net::co_spawn(ioc_, Copy(pipe, pipe->client, pipe->upstream), net::detached);
    net::co_spawn(ioc_, Copy(pipe, pipe->upstream, pipe->client), net::detached);
  }

  // Copies one direction until it ends; the end of either direction ends both (TLS has no use
  // for a half-closed connection), and the second to finish forgets the pipe.
  // It waits for data without a buffer and holds one only while bytes are in flight, sized to
  // what arrived: most pipes carry watches that sit idle, and a buffer of kCopyBuffer in every
  // direction of every pipe was 0.45 MB of the agent's heap (15 pipes, heaptrack).
  net::awaitable<void> Copy(std::shared_ptr<Pipe> pipe, tcp::socket& from, tcp::socket& to) {
    for (;;) {
      error_code ec;
      co_await from.async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      // 0 at the end of the stream: the read of one byte then reports it.
      size_t size = std::clamp<size_t>(from.available(ec), 1, kCopyBuffer);
      if (ec) break;
      auto buffer = std::make_unique_for_overwrite<char[]>(size);
      size_t n = co_await from.async_read_some(net::buffer(buffer.get(), size),
                                               net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      co_await net::async_write(to, net::buffer(buffer.get(), n),
                                net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
    }
    pipe->Close();
    if (--pipe->open_directions == 0) pipes_.erase(pipe);
  }

  net::awaitable<void> ProbeLoop() {
    while (!stopping_) {
      for (const std::string& server : picker_servers()) {
        net::co_spawn(ioc_, Probe(server), net::detached);
      }
      probe_timer_.expires_after(options_.probe_interval);
      error_code ec;
      co_await probe_timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  std::vector<std::string> picker_servers() {
    std::lock_guard lock(mu_);
    return picker_.servers();
  }

  // GET /readyz over TLS (not verified: nothing secret is sent, and only the answer's code
  // counts); 200 is healthy.
  net::awaitable<void> Probe(std::string server) {
    beast::ssl_stream<beast::tcp_stream> stream(ioc_, probe_tls_);
    error_code ec = co_await Dial(beast::get_lowest_layer(stream).socket(), server);
    std::string why;
    int code = 0;
    if (!ec) {
      auto [host, port] = SplitServer(server);
      beast::get_lowest_layer(stream).expires_after(options_.dial_timeout);
      co_await stream.async_handshake(ssl::stream_base::client,
                                      net::redirect_error(net::use_awaitable, ec));
      if (!ec) {
        bhttp::request<bhttp::empty_body> req(bhttp::verb::get, "/readyz", 11);
        req.set(bhttp::field::host, server);
        req.set(bhttp::field::user_agent, "orch-agent-loadbalancer");
        req.set(bhttp::field::connection, "close");
        co_await bhttp::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
      }
      if (!ec) {
        beast::flat_buffer buffer;
        bhttp::response<bhttp::string_body> res;
        co_await bhttp::async_read(stream, buffer, res,
                                   net::redirect_error(net::use_awaitable, ec));
        if (!ec) code = res.result_int();
      }
      error_code ignored;
      beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(stream).socket().close(ignored);
    }
    if (stopping_) co_return;
    if (code == 200) {
      bool was_healthy;
      {
        std::lock_guard lock(mu_);
        was_healthy = picker_.healthy(server);
        picker_.ReportHealthy(server);
      }
      if (!was_healthy) log::Info(kLog, "API server {} is ready again", server);
      co_return;
    }
    why = ec ? ec.message() : fmt::format("/readyz answered HTTP {}", code);
    Failed(server, why);
  }

  const ApiLoadBalancerOptions options_;
  std::string list_file_;
  mutable std::mutex mu_;
  agent::ServerPicker picker_;  // guarded by mu_ (the I/O thread writes, servers() reads)

  ssl::context probe_tls_;  // before ioc_: probes still pending when it goes use it
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer probe_timer_;
  unsigned short port_ = 0;
  bool stopping_ = false;                  // I/O thread only
  std::set<std::shared_ptr<Pipe>> pipes_;  // I/O thread only (and Stop after the join)
  std::thread thread_;

  std::mutex follow_mu_;
  bool stopped_ = false;  // guarded by follow_mu_
  std::unique_ptr<InformerFactory> informers_;
};

}  // namespace

Result<std::unique_ptr<ApiLoadBalancer>> ApiLoadBalancer::Start(
    const ApiLoadBalancerOptions& options) {
  auto join = agent::ServerOfUrl(options.join_url);
  if (!join.ok()) return InvalidArgument(fmt::format("--server: {}", join.status().message()));
  auto balancer = std::make_unique<LoadBalancer>(options, *join);
  if (Status s = balancer->Bind(); !s.ok()) return s;
  balancer->Run();
  return std::unique_ptr<ApiLoadBalancer>(std::move(balancer));
}

}  // namespace orch
