// The cluster DNS component (include/orch/cluster_dns.h): one Asio thread serves UDP and TCP
// with coroutines, answers cluster names from a Zone rebuilt after informer changes, and
// forwards the rest to the node's resolvers (connected UDP sockets, per-try timeout, TTL cache).
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <list>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "dns_message.h"
#include "dns_zone.h"
#include "orch/cluster_dns.h"
#include "orch/log.h"

namespace orch {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;
using asio::ip::udp;

constexpr std::string_view kLog = "dns";
const ResourceRef kServicesRef{"", "v1", "services"};
const ResourceRef kSlicesRef{"discovery.k8s.io", "v1", "endpointslices"};
constexpr size_t kMaxForwards = 256;    // queries waiting for an upstream at once
constexpr size_t kMaxTcpClients = 128;  // open TCP connections
constexpr std::chrono::seconds kTcpIdle(10);
constexpr std::chrono::seconds kNegativeCacheTtl(5);
constexpr size_t kMaxMessage = 65535;

using Bytes = std::vector<uint8_t>;

// Forwarded answers by question, least recently used dropped first. Used on the DNS thread only.
class AnswerCache {
 public:
  AnswerCache(size_t capacity, std::chrono::seconds max_ttl)
      : capacity_(capacity), max_ttl_(max_ttl) {}

  std::optional<Bytes> Get(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (std::chrono::steady_clock::now() >= it->second.expiry) {
      order_.erase(it->second.position);
      entries_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second.position);
    return it->second.message;
  }

  void Put(const std::string& key, const Bytes& message) {
    auto info = dns::InspectResponse(message);
    if (!info || info->truncated || capacity_ == 0) return;
    std::chrono::seconds ttl;
    if (info->rcode == dns::kNxDomain) {
      ttl = std::min<std::chrono::seconds>(kNegativeCacheTtl,
                                           std::chrono::seconds(info->ttl.value_or(5)));
    } else if (info->rcode == dns::kNoError && info->ttl) {
      ttl = std::min<std::chrono::seconds>(max_ttl_, std::chrono::seconds(*info->ttl));
    } else {
      return;  // SERVFAIL and friends are not remembered
    }
    if (ttl.count() <= 0) return;
    if (auto it = entries_.find(key); it != entries_.end()) {
      order_.erase(it->second.position);
      entries_.erase(it);
    }
    while (entries_.size() >= capacity_) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(key);
    entries_[key] = {message, std::chrono::steady_clock::now() + ttl, order_.begin()};
  }

 private:
  struct Entry {
    Bytes message;
    std::chrono::steady_clock::time_point expiry;
    std::list<std::string>::iterator position;
  };
  const size_t capacity_;
  const std::chrono::seconds max_ttl_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // most recently used first
};

class ClusterDnsImpl : public ClusterDns {
 public:
  ClusterDnsImpl(ClusterDnsOptions options, InformerFactory& informers)
      : options_(std::move(options)),
        services_(informers.For(kServicesRef)),
        slices_(informers.For(kSlicesRef)),
        udp_(io_),
        acceptor_(io_),
        cache_(options_.cache_entries, options_.max_cache_ttl),
        random_(std::random_device{}()) {
    for (const std::string& u : options_.upstreams) {
      std::string host = u;
      uint16_t port = 53;
      if (auto colon = u.rfind(':'); colon != std::string::npos && u.find(':') == colon) {
        host = u.substr(0, colon);
        port = static_cast<uint16_t>(std::stoi(u.substr(colon + 1)));
      }
      boost::system::error_code ec;
      auto address = asio::ip::make_address(host, ec);
      if (ec) {
        log::Warn(kLog, "ignoring the upstream resolver {}: not an address", u);
        continue;
      }
      upstreams_.emplace_back(address, port);
    }
  }
  ~ClusterDnsImpl() override { Stop(); }

  std::string_view Name() const override { return "dns"; }
  uint16_t port() const override { return port_; }

  Status Start() override {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.listen_address, ec);
    if (ec) return InvalidArgument(fmt::format("dns: bad address {}", options_.listen_address));
    udp::endpoint udp_at(address, options_.port);
    udp_.open(udp_at.protocol(), ec);
    if (!ec) udp_.bind(udp_at, ec);
    if (ec) {
      return Unavailable(fmt::format("dns: cannot listen on UDP {}:{}: {}", options_.listen_address,
                                     options_.port, ec.message()));
    }
    port_ = udp_.local_endpoint().port();
    tcp::endpoint tcp_at(address, port_);
    acceptor_.open(tcp_at.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(tcp_at, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Unavailable(fmt::format("dns: cannot listen on TCP {}:{}: {}", options_.listen_address,
                                     port_, ec.message()));
    }
    auto changed = [this](const ObjectPtr&) { RequestRebuild(); };
    auto updated = [this](const ObjectPtr&, const ObjectPtr&) { RequestRebuild(); };
    services_.AddHandler({changed, updated, changed});
    slices_.AddHandler({changed, updated, changed});
    asio::co_spawn(io_, ServeUdp(), asio::detached);
    asio::co_spawn(io_, ServeTcp(), asio::detached);
    asio::co_spawn(io_, WaitForSync(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
    log::Info(kLog, "cluster DNS for {} on {}:{} (UDP, TCP); {} upstream resolver(s)",
              options_.cluster_domain, options_.listen_address, port_, upstreams_.size());
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    // Handlers may still fire until the informers stop; they only post to a stopped context.
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Informer threads: one rebuild is queued however many changes arrive before it runs.
  void RequestRebuild() {
    if (rebuild_queued_.exchange(true)) return;
    asio::post(io_, [this] {
      rebuild_queued_ = false;
      Rebuild();
    });
  }

  void Rebuild() {
    if (!services_.HasSynced() || !slices_.HasSynced()) return;  // WaitForSync comes back
    zone_ = dns::Zone::Build(services_.List(), slices_.List(), options_.cluster_domain);
  }

  // The informers' first sync may bring no objects and so no change to wake a rebuild.
  asio::awaitable<void> WaitForSync() {
    asio::steady_timer timer(io_);
    while (!zone_) {
      Rebuild();
      if (zone_) break;
      timer.expires_after(std::chrono::milliseconds(200));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // The answer to a message, or nullopt with `query` set when it must be forwarded. max_size 0:
  // as large as the client's UDP buffer.
  std::optional<Bytes> AnswerLocally(std::span<const uint8_t> message, size_t max_size,
                                     std::optional<dns::Query>& query) {
    query = dns::ParseQuery(message);
    if (!query) return dns::FormErrFor(message);
    if (max_size == 0) max_size = query->udp_size;
    if (query->klass != dns::kClassIn && query->klass != 255) {
      return dns::BuildResponse(*query, {dns::kNotImp, false, {}, {}, {}}, max_size);
    }
    const std::string& domain = options_.cluster_domain;
    bool cluster_name =
        query->name == domain || (query->name.size() > domain.size() &&
                                  query->name.compare(query->name.size() - domain.size() - 1,
                                                      domain.size() + 1, "." + domain) == 0);
    if (!zone_) {
      if (cluster_name) {
        return dns::BuildResponse(*query, {dns::kServFail, false, {}, {}, {}}, max_size);
      }
    } else if (auto answer = zone_->Lookup(query->name, query->type)) {
      return dns::BuildResponse(*query, *answer, max_size);
    }
    return std::nullopt;
  }

  asio::awaitable<void> ServeUdp() {
    std::vector<uint8_t> buffer(kMaxMessage);
    udp::endpoint from;
    for (;;) {
      boost::system::error_code ec;
      size_t n = co_await udp_.async_receive_from(asio::buffer(buffer), from,
                                                  asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !udp_.is_open()) co_return;
      if (ec) continue;  // e.g. ECONNREFUSED from an earlier ICMP error
      std::span<const uint8_t> message(buffer.data(), n);
      std::optional<dns::Query> query;
      if (auto reply = AnswerLocally(message, 0, query)) {
        if (!reply->empty()) SendUdp(std::move(*reply), from, query);
        continue;
      }
      if (forwards_ >= kMaxForwards) {
        SendUdp(dns::BuildResponse(*query, {dns::kServFail, false, {}, {}, {}}, 512), from, query);
        continue;
      }
      asio::co_spawn(
          io_,
          [this, msg = Bytes(message.begin(), message.end()), q = *query,
           from]() -> asio::awaitable<void> {
            Bytes reply = co_await Forward(msg, q);
            SendUdp(std::move(reply), from, q);
          },
          asio::detached);
    }
  }

  void SendUdp(Bytes reply, const udp::endpoint& to, const std::optional<dns::Query>& query) {
    // Too long for the client's buffer: an empty truncated answer sends it to TCP.
    if (query && reply.size() > query->udp_size) {
      uint8_t rcode = reply[3] & 0xF;
      reply = dns::BuildResponse(*query, {rcode, false, {}, {}, {}}, query->udp_size);
      reply[2] |= 0x02;  // TC
    }
    auto shared = std::make_shared<Bytes>(std::move(reply));
    udp_.async_send_to(asio::buffer(*shared), to, [shared](boost::system::error_code, size_t) {});
  }

  asio::awaitable<void> ServeTcp() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;
      if (tcp_clients_ >= kMaxTcpClients) continue;  // closed at once
      asio::co_spawn(io_, ServeTcpClient(std::make_shared<tcp::socket>(std::move(socket))),
                     asio::detached);
    }
  }

  asio::awaitable<void> ServeTcpClient(std::shared_ptr<tcp::socket> socket) {
    ++tcp_clients_;
    auto timer = std::make_shared<asio::steady_timer>(io_);
    for (;;) {
      // An idle client is closed: the timer cancels the read.
      timer->expires_after(kTcpIdle);
      timer->async_wait([socket](boost::system::error_code ec) {
        if (!ec) socket->close(ec);
      });
      boost::system::error_code ec;
      uint8_t length_bytes[2];
      co_await asio::async_read(*socket, asio::buffer(length_bytes),
                                asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      Bytes message(static_cast<size_t>((length_bytes[0] << 8) | length_bytes[1]));
      co_await asio::async_read(*socket, asio::buffer(message),
                                asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      timer->cancel();
      std::optional<dns::Query> query;
      Bytes reply;
      if (auto local = AnswerLocally(message, kMaxMessage, query)) {
        reply = std::move(*local);
      } else {
        reply = co_await Forward(message, *query);
      }
      if (reply.empty()) break;
      uint8_t length[2] = {static_cast<uint8_t>(reply.size() >> 8),
                           static_cast<uint8_t>(reply.size())};
      std::array<asio::const_buffer, 2> framed = {asio::buffer(length), asio::buffer(reply)};
      co_await asio::async_write(*socket, framed, asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
    timer->cancel();
    --tcp_clients_;
  }

  // Asks the upstreams in turn; SERVFAIL when none answers. Cached answers get the query's id.
  asio::awaitable<Bytes> Forward(Bytes message, dns::Query query) {
    std::string key = fmt::format("{}/{}/{}", query.name, query.type, query.klass);
    if (auto cached = cache_.Get(key)) {
      dns::SetId(*cached, query.id);
      co_return *cached;
    }
    ++forwards_;
    Bytes reply;
    // Our own id upstream, so a forged answer must guess it as well as the port.
    uint16_t upstream_id = static_cast<uint16_t>(random_());
    dns::SetId(message, upstream_id);
    for (const udp::endpoint& upstream : upstreams_) {
      auto socket = std::make_shared<udp::socket>(io_);
      boost::system::error_code ec;
      socket->open(upstream.protocol(), ec);
      // Connected: ICMP errors (no route, port unreachable) end the try at once.
      if (!ec) socket->connect(upstream, ec);
      if (ec) continue;
      asio::steady_timer timer(io_, options_.upstream_timeout);
      timer.async_wait([socket](boost::system::error_code e) {
        if (!e) socket->close(e);
      });
      co_await socket->async_send(asio::buffer(message), asio::redirect_error(use_awaitable, ec));
      Bytes buffer(kMaxMessage);
      while (!ec) {
        size_t n = co_await socket->async_receive(asio::buffer(buffer),
                                                  asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        auto info = dns::InspectResponse(std::span<const uint8_t>(buffer.data(), n));
        if (!info || info->id != upstream_id) continue;  // not the answer: keep waiting
        if (info->rcode == dns::kServFail || info->rcode == dns::kRefused) break;
        reply.assign(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
        break;
      }
      timer.cancel();
      if (!reply.empty() && dns::InspectResponse(reply)->truncated) {
        // The answer did not fit in the upstream's datagram: ask it again over TCP, as a stub
        // resolver would (RFC 7766), so that clients and the cache get the whole answer. If TCP
        // fails the truncated answer stands; the client may then retry over TCP itself.
        Bytes whole =
            co_await ForwardTcp({upstream.address(), upstream.port()}, message, upstream_id);
        if (!whole.empty()) reply = std::move(whole);
      }
      if (!reply.empty()) break;
    }
    --forwards_;
    if (reply.empty()) {
      co_return dns::BuildResponse(query, {dns::kServFail, false, {}, {}, {}}, kMaxMessage);
    }
    dns::SetId(reply, query.id);
    cache_.Put(key, reply);
    co_return reply;
  }

  // One query over TCP to `upstream` within upstream_timeout; empty when it fails or answers
  // SERVFAIL, REFUSED or with another id.
  asio::awaitable<Bytes> ForwardTcp(tcp::endpoint upstream, const Bytes& message, uint16_t id) {
    auto socket = std::make_shared<tcp::socket>(io_);
    asio::steady_timer timer(io_, options_.upstream_timeout);
    timer.async_wait([socket](boost::system::error_code e) {
      if (!e) socket->close(e);
    });
    boost::system::error_code ec;
    co_await socket->async_connect(upstream, asio::redirect_error(use_awaitable, ec));
    if (!ec) {
      uint8_t length[2] = {static_cast<uint8_t>(message.size() >> 8),
                           static_cast<uint8_t>(message.size())};
      std::array<asio::const_buffer, 2> framed = {asio::buffer(length), asio::buffer(message)};
      co_await asio::async_write(*socket, framed, asio::redirect_error(use_awaitable, ec));
    }
    uint8_t length_bytes[2] = {0, 0};
    if (!ec) {
      co_await asio::async_read(*socket, asio::buffer(length_bytes),
                                asio::redirect_error(use_awaitable, ec));
    }
    Bytes reply;
    if (!ec) {
      reply.resize(static_cast<size_t>((length_bytes[0] << 8) | length_bytes[1]));
      co_await asio::async_read(*socket, asio::buffer(reply),
                                asio::redirect_error(use_awaitable, ec));
    }
    timer.cancel();
    boost::system::error_code ignored;
    socket->close(ignored);
    if (ec) co_return Bytes();
    auto info = dns::InspectResponse(reply);
    if (!info || info->id != id || info->rcode == dns::kServFail || info->rcode == dns::kRefused) {
      co_return Bytes();
    }
    co_return reply;
  }

  const ClusterDnsOptions options_;
  Informer& services_;
  Informer& slices_;
  std::vector<udp::endpoint> upstreams_;
  asio::io_context io_;
  udp::socket udp_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> rebuild_queued_{false};
  // Owned by the DNS thread:
  std::shared_ptr<const dns::Zone> zone_;  // null until the informers have synced
  AnswerCache cache_;
  std::mt19937 random_;
  size_t forwards_ = 0;
  size_t tcp_clients_ = 0;
};

bool IsLoopback(const std::string& server) {
  return server.rfind("127.", 0) == 0 || server == "::1";
}

std::vector<std::string> Nameservers(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (auto hash = line.find_first_of("#;"); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string keyword, server;
    if (words >> keyword >> server && keyword == "nameserver" && !IsLoopback(server)) {
      out.push_back(server);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> NodeResolvers(std::string_view resolv_conf,
                                       std::string_view systemd_resolv_conf) {
  auto servers = Nameservers(resolv_conf);
  if (servers.empty()) servers = Nameservers(systemd_resolv_conf);
  return servers;
}

std::unique_ptr<ClusterDns> NewClusterDns(ClusterDnsOptions options, InformerFactory& informers) {
  return std::make_unique<ClusterDnsImpl>(std::move(options), informers);
}

}  // namespace orch
