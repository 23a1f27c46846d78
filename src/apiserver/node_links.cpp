// The node link registry (node_links.h): control links by node name, pending data streams by id,
// on one timer thread; link I/O runs on the HTTP front's threads through RawConnection.
#include "node_links.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "errors.h"
#include "orch/log.h"
#include "orch/node_link.h"
#include "orch/pki.h"

namespace orch::api {
namespace {

namespace net = boost::asio;
using json = nlohmann::json;

constexpr std::string_view kLog = "node-link";
constexpr auto kStreamDeadline = std::chrono::seconds(15);
constexpr auto kPingInterval = std::chrono::seconds(30);
// A link that has not answered pings for this long is dead (the agent reconnects).
constexpr auto kLinkTimeout = std::chrono::seconds(95);
constexpr const char* kNodeUserPrefix = "system:node:";

constexpr const char* kSwitchHead =
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: orch-link/1\r\n\r\n";

// One control link: frames out through a queue (one write at a time), frames in through a
// decoder. Shared by the registry and its own I/O callbacks.
class ControlLink : public std::enable_shared_from_this<ControlLink> {
 public:
  ControlLink(std::string node, std::shared_ptr<RawConnection> conn)
      : node_(std::move(node)), conn_(std::move(conn)), last_seen_(Now()) {}

  const std::string& node() const { return node_; }
  bool closed() const { return closed_; }

  // `on_close` runs once when the link ends.
  void Start(std::function<void()> on_close) {
    on_close_ = std::move(on_close);
    Read();
  }

  void Send(const json& message) {
    std::string frame = link::EncodeFrame(message.dump());
    std::lock_guard lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(frame));
    if (!writing_) WriteNext();
  }

  void Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    conn_->Close();
    if (on_close_) on_close_();
  }

  std::chrono::steady_clock::duration Silence() const { return Now() - last_seen_.load(); }

 private:
  static std::chrono::steady_clock::time_point Now() { return std::chrono::steady_clock::now(); }

  void WriteNext() {  // mu_ held
    if (queue_.empty()) {
      writing_ = false;
      return;
    }
    writing_ = true;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    conn_->Write(current_, [self = shared_from_this()](bool ok) {
      if (!ok) return self->Close();
      std::lock_guard lock(self->mu_);
      self->WriteNext();
    });
  }

  void Read() {
    conn_->ReadSome(buffer_.data(), buffer_.size(), [self = shared_from_this()](bool ok, size_t n) {
      if (!ok || !self->decoder_.Feed(std::string_view(self->buffer_.data(), n))) {
        return self->Close();
      }
      self->last_seen_ = Now();
      while (self->decoder_.Next()) {
        // Pongs (and anything newer agents send) only prove the link alive.
      }
      self->Read();
    });
  }

  const std::string node_;
  const std::shared_ptr<RawConnection> conn_;
  std::atomic<std::chrono::steady_clock::time_point> last_seen_;
  std::array<char, 4096> buffer_{};
  link::FrameDecoder decoder_;  // used by the read chain only
  std::function<void()> on_close_;

  std::mutex mu_;
  std::deque<std::string> queue_;  // guarded by mu_
  std::string current_;            // the frame being written; guarded by mu_
  bool writing_ = false;           // guarded by mu_
  std::atomic<bool> closed_{false};
};

class NodeLinksImpl : public NodeLinks {
 public:
  NodeLinksImpl() : work_(net::make_work_guard(io_)), ping_timer_(io_) {
    thread_ = std::thread([this] { io_.run(); });
    SchedulePing();
  }
  ~NodeLinksImpl() override { Stop(); }

  void ServeConnect(const Request& request, std::shared_ptr<ResponseWriter> writer) override {
    std::string node = NodeOf(request);
    if (node.empty()) {
      return writer->Send(
          ApiError::Forbidden(
              "the node link is for node agents (a client certificate of system:node:<name> in "
              "system:nodes)")
              .ToResponse());
    }
    if (request.headers.Get("upgrade") != link::kLinkProtocol) {
      return writer->Send(ApiError::BadRequest(fmt::format("the node link needs an upgrade to {}",
                                                           link::kLinkProtocol))
                              .ToResponse());
    }
    std::string stream = request.query.Get("stream");
    if (!stream.empty()) return AcceptStream(node, stream, writer);

    auto conn = writer->TakeConnection();
    if (!conn) return writer->Send(ApiError::BadRequest("no connection to take over").ToResponse());
    auto link = std::make_shared<ControlLink>(node, conn);
    conn->Write(kSwitchHead, [this, link](bool ok) {
      if (!ok) return link->Close();
      Register(link);
    });
  }

  void OpenStream(const std::string& node, StreamCallback done) override {
    std::shared_ptr<ControlLink> link;
    std::string id = pki::RandomHex(16);
    {
      std::lock_guard lock(mu_);
      auto it = links_.find(node);
      if (it != links_.end()) link = it->second;
      if (link && !stopped_) {
        auto& pending = pending_[id];
        pending.node = node;
        pending.done = std::move(done);
        pending.timer = std::make_shared<net::steady_timer>(io_, kStreamDeadline);
        pending.timer->async_wait([this, id](boost::system::error_code ec) {
          if (!ec)
            Fail(id, fmt::format("the agent of node did not open the stream within {} s",
                                 kStreamDeadline.count()));
        });
      }
    }
    if (!link || stopped_) {
      if (done) {
        done(Unavailable(fmt::format(
            "node \"{}\" is not connected: its agent has no link to the API server", node)));
      }
      return;
    }
    link->Send({{"type", "open"}, {"id", id}});
  }

  bool Connected(const std::string& node) const override {
    std::lock_guard lock(mu_);
    return links_.count(node) > 0;
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    std::map<std::string, std::shared_ptr<ControlLink>> links;
    std::map<std::string, Pending> pending;
    {
      std::lock_guard lock(mu_);
      links.swap(links_);
      pending.swap(pending_);
    }
    for (auto& [_, link] : links) link->Close();
    for (auto& [_, p] : pending) {
      if (p.timer) p.timer->cancel();
      if (p.done) p.done(Unavailable("the API server is stopping"));
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Pending {
    std::string node;
    StreamCallback done;
    std::shared_ptr<net::steady_timer> timer;
  };

  static std::string NodeOf(const Request& request) {
    if (!request.peer) return "";
    const std::string& cn = request.peer->common_name;
    if (cn.rfind(kNodeUserPrefix, 0) != 0 ||
        cn.size() == std::string_view(kNodeUserPrefix).size()) {
      return "";
    }
    const auto& orgs = request.peer->organizations;
    if (std::find(orgs.begin(), orgs.end(), "system:nodes") == orgs.end()) return "";
    return cn.substr(std::string_view(kNodeUserPrefix).size());
  }

  void Register(const std::shared_ptr<ControlLink>& link) {
    std::shared_ptr<ControlLink> old;
    {
      std::lock_guard lock(mu_);
      if (stopped_) {
        old = link;
      } else {
        auto& slot = links_[link->node()];
        old = std::move(slot);
        slot = link;
      }
    }
    if (old) old->Close();  // a reconnecting agent replaces its previous link
    if (old == link) return;
    log::Info(kLog, "node {} connected", link->node());
    std::weak_ptr<ControlLink> weak = link;
    link->Start([this, weak] {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard lock(mu_);
      auto it = links_.find(self->node());
      if (it != links_.end() && it->second == self) {
        links_.erase(it);
        log::Info(kLog, "node {} disconnected", self->node());
      }
    });
  }

  void AcceptStream(const std::string& node, const std::string& id,
                    const std::shared_ptr<ResponseWriter>& writer) {
    Pending pending;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(id);
      if (it == pending_.end() || it->second.node != node) {
        return writer->Send(
            ApiError::NotFound("streams", id).ToResponse());  // expired, or another node's
      }
      pending = std::move(it->second);
      pending_.erase(it);
    }
    if (pending.timer) pending.timer->cancel();
    auto conn = writer->TakeConnection();
    if (!conn) {
      if (pending.done) pending.done(Internal("no connection to take over"));
      return writer->Send(ApiError::BadRequest("no connection to take over").ToResponse());
    }
    auto done = std::make_shared<StreamCallback>(std::move(pending.done));
    conn->Write(kSwitchHead, [conn, done](bool ok) {
      if (!*done) return;
      if (!ok) return (*done)(Unavailable("the agent's stream connection failed"));
      (*done)(conn);
    });
  }

  void Fail(const std::string& id, const std::string& why) {
    Pending pending;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      pending = std::move(it->second);
      pending_.erase(it);
    }
    log::Warn(kLog, "stream to node {}: {}", pending.node, why);
    if (pending.done) pending.done(Unavailable(fmt::format("node \"{}\": {}", pending.node, why)));
  }

  void SchedulePing() {
    ping_timer_.expires_after(kPingInterval);
    ping_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      std::vector<std::shared_ptr<ControlLink>> links;
      {
        std::lock_guard lock(mu_);
        for (auto& [_, link] : links_) links.push_back(link);
      }
      for (auto& link : links) {
        if (link->Silence() > kLinkTimeout) {
          log::Warn(kLog, "node {}: link silent for {} s, closed", link->node(),
                    std::chrono::duration_cast<std::chrono::seconds>(link->Silence()).count());
          link->Close();
        } else {
          link->Send({{"type", "ping"}});
        }
      }
      SchedulePing();
    });
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  net::steady_timer ping_timer_;  // used on the timer thread only
  std::thread thread_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ControlLink>> links_;  // guarded by mu_
  std::map<std::string, Pending> pending_;                     // guarded by mu_
};

// Both directions of a splice; the last callback to finish releases it.
struct SpliceState {
  std::shared_ptr<RawConnection> a, b;
  std::array<char, 32 * 1024> ab{}, ba{};
  std::atomic<bool> done{false};
  void Finish() {
    if (done.exchange(true)) return;
    a->Close();
    b->Close();
  }
};

void Pump(std::shared_ptr<SpliceState> state, RawConnection* from, RawConnection* to,
          std::array<char, 32 * 1024>* buffer) {
  from->ReadSome(buffer->data(), buffer->size(), [state, from, to, buffer](bool ok, size_t n) {
    if (!ok) return state->Finish();
    to->Write(std::string_view(buffer->data(), n), [state, from, to, buffer](bool ok) {
      if (!ok) return state->Finish();
      Pump(state, from, to, buffer);
    });
  });
}

}  // namespace

std::unique_ptr<NodeLinks> NodeLinks::Create() {
  return std::make_unique<NodeLinksImpl>();
}

void Splice(std::shared_ptr<RawConnection> a, std::shared_ptr<RawConnection> b) {
  auto state = std::make_shared<SpliceState>();
  state->a = std::move(a);
  state->b = std::move(b);
  Pump(state, state->a.get(), state->b.get(), &state->ab);
  Pump(state, state->b.get(), state->a.get(), &state->ba);
}

}  // namespace orch::api
