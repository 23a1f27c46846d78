// The agent's node link (stream_server.h) on Asio coroutines: one I/O thread runs the control
// link, every stream and every log follow (inotify, no polling); CRI calls, which block, run on
// a pool of two threads so they never stall a stream.
#include "stream_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/tcp.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "container_logs.h"
#include "orch/log.h"
#include "orch/node_link.h"
#include "runtime_labels.h"
#include "stream_request.h"

namespace orch::agent {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using TlsStream = ssl::stream<tcp::socket>;
using json = nlohmann::json;
using net::use_awaitable;

constexpr std::string_view kLog = "node-link";
constexpr auto kMinBackoff = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr size_t kCopyBuffer = 32 * 1024;

struct HostPort {
  std::string host, port;
};

// "https://host:port/..." or "http://[::1]:port/path" -> host, port and the path.
bool SplitUrl(const std::string& url, HostPort* hp, std::string* path) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  std::string rest = url.substr(scheme + 3);
  size_t slash = rest.find('/');
  if (path != nullptr) *path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string authority = rest.substr(0, slash);
  std::string default_port = url.compare(0, scheme, "https") == 0 ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    hp->host = authority.substr(1, close - 1);
    hp->port = close + 2 <= authority.size() && authority[close + 1] == ':'
                   ? authority.substr(close + 2)
                   : default_port;
  } else {
    size_t colon = authority.rfind(':');
    hp->host = authority.substr(0, colon);
    hp->port = colon == std::string::npos ? default_port : authority.substr(colon + 1);
  }
  return !hp->host.empty() && !hp->port.empty();
}

void SetKeepAlive(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(net::socket_base::keep_alive(true), ignored);
  int idle = 30, interval = 10, count = 3;
  setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

// Reads until `buffer` holds a whole HTTP head; returns it and leaves what follows in `buffer`.
template <typename Stream>
net::awaitable<std::string> ReadHead(Stream& stream, std::string& buffer) {
  std::array<char, 4096> chunk;
  while (true) {
    size_t length = link::HeadLength(buffer);
    if (length > 0) {
      std::string head = buffer.substr(0, length);
      buffer.erase(0, length);
      co_return head;
    }
    if (buffer.size() > link::kMaxHeadBytes) throw std::runtime_error("HTTP head too large");
    size_t n = co_await stream.async_read_some(net::buffer(chunk), use_awaitable);
    buffer.append(chunk.data(), n);
  }
}

std::string HttpReason(int code) {
  switch (code) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// A Kubernetes Status answer that ends the stream.
std::string ErrorResponse(int code, const std::string& reason, const std::string& message) {
  json status = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
                 {"status", "Failure"}, {"message", message}, {"reason", reason},
                 {"code", code}};
  std::string body = status.dump();
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: "
      "close\r\n\r\n{}",
      code, HttpReason(code), body.size(), body);
}

std::string Chunk(std::string_view data) {
  return fmt::format("{:x}\r\n", data.size()) + std::string(data) + "\r\n";
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Closes both ends of a relay once either direction ends.
struct RelayEnds {
  std::shared_ptr<TlsStream> tls;
  std::shared_ptr<tcp::socket> plain;
  void Close() {
    boost::system::error_code ignored;
    tls->next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    tls->next_layer().close(ignored);
    plain->shutdown(tcp::socket::shutdown_both, ignored);
    plain->close(ignored);
  }
};

template <typename From, typename To>
net::awaitable<void> Pump(From& from, To& to, std::shared_ptr<RelayEnds> ends) {
  std::vector<char> buffer(kCopyBuffer);
  try {
    while (true) {
      size_t n = co_await from.async_read_some(net::buffer(buffer), use_awaitable);
      co_await net::async_write(to, net::buffer(buffer.data(), n), use_awaitable);
    }
  } catch (const std::exception&) {
    // One side closed: the relay is over.
  }
  ends->Close();
}

struct Dialed {
  std::shared_ptr<TlsStream> stream;
  std::string leftover;  // bytes read past the 101 head
};

class StreamServerImpl : public StreamServer {
 public:
  StreamServerImpl(StreamServerOptions options, cri::Runtime& runtime)
      : options_(std::move(options)), runtime_(runtime), tls_(ssl::context::tls_client) {}
  ~StreamServerImpl() override { Stop(); }

  Status Init() {
    if (!SplitUrl(options_.server_url, &server_, nullptr)) {
      return InvalidArgument("node link: bad server URL " + options_.server_url);
    }
    try {
      tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      tls_.add_certificate_authority(net::buffer(options_.ca_pem));
      tls_.use_certificate_chain(net::buffer(options_.cert_pem));
      tls_.use_private_key(net::buffer(options_.key_pem), ssl::context::pem);
      tls_.set_verify_mode(ssl::verify_peer);
    } catch (const std::exception& e) {
      return InvalidArgument(fmt::format("node link credentials: {}", e.what()));
    }
    net::co_spawn(io_, RunLink(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    io_.stop();
    if (thread_.joinable()) thread_.join();
    pool_.stop();
    pool_.join();
  }

 private:
  // Runs `f` (a blocking CRI call) on the pool; the caller resumes on the I/O thread.
  template <typename F>
  net::awaitable<void> Blocking(F f) {
    co_await net::co_spawn(
        pool_,
        [f = std::move(f)]() mutable -> net::awaitable<void> {
          f();
          co_return;
        },
        use_awaitable);
  }

  net::awaitable<Dialed> Dial(std::string target) {
    auto executor = co_await net::this_coro::executor;
    tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(server_.host, server_.port, use_awaitable);
    auto stream = std::make_shared<TlsStream>(executor, tls_);
    co_await net::async_connect(stream->next_layer(), endpoints, use_awaitable);
    SetKeepAlive(stream->next_layer());
    boost::system::error_code ec;
    net::ip::make_address(server_.host, ec);
    if (ec) SSL_set_tlsext_host_name(stream->native_handle(), server_.host.c_str());
    stream->set_verify_callback(ssl::host_name_verification(server_.host));
    co_await stream->async_handshake(ssl::stream_base::client, use_awaitable);
    std::string request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: Upgrade\r\nUpgrade: {}\r\nUser-Agent: "
        "orch-agent\r\n\r\n",
        target, server_.host, server_.port, link::kLinkProtocol);
    co_await net::async_write(*stream, net::buffer(request), use_awaitable);
    Dialed out{stream, ""};
    std::string head = co_await ReadHead(*stream, out.leftover);
    auto parsed = link::ParseHead(head);
    if (!parsed || parsed->StatusCode() != 101) {
      std::string first = parsed ? parsed->first_line : "a malformed answer";
      throw std::runtime_error(
          fmt::format("{}: {} {}", target, first, out.leftover.substr(0, 300)));
    }
    co_return out;
  }

  net::awaitable<void> RunLink() {
    auto backoff = std::chrono::steady_clock::duration(kMinBackoff);
    bool warned = false;
    while (!stopped_) {
      std::string failure;
      try {
        Dialed link = co_await Dial(link::kConnectPath);
        log::Info(kLog, "connected to {} as node {}", options_.server_url, options_.node_name);
        warned = false;
        backoff = kMinBackoff;
        link::FrameDecoder decoder;
        decoder.Feed(link.leftover);
        std::array<char, 4096> buffer;
        while (true) {
          while (auto frame = decoder.Next()) co_await OnFrame(*link.stream, *frame);
          size_t n = co_await link.stream->async_read_some(net::buffer(buffer), use_awaitable);
          if (!decoder.Feed(std::string_view(buffer.data(), n))) {
            throw std::runtime_error("frame over the size limit");
          }
        }
      } catch (const std::exception& e) {
        failure = e.what();
      }
      if (stopped_) co_return;
      // The first failure of a run is news; the retries after it are not.
      if (!warned) {
        log::Warn(kLog, "link to {}: {}; reconnecting", options_.server_url, failure);
        warned = true;
      } else {
        log::Debug(kLog, "link to {}: {}", options_.server_url, failure);
      }
      net::steady_timer timer(co_await net::this_coro::executor, backoff);
      co_await timer.async_wait(use_awaitable);
      backoff = std::min<std::chrono::steady_clock::duration>(backoff * 2, kMaxBackoff);
    }
  }

  net::awaitable<void> OnFrame(TlsStream& link, const std::string& frame) {
    json message = json::parse(frame, nullptr, false);
    if (!message.is_object()) co_return;
    std::string type = message.value("type", "");
    if (type == "open") {
      net::co_spawn(io_, ServeStream(message.value("id", "")), net::detached);
    } else if (type == "ping") {
      std::string pong = link::EncodeFrame(R"({"type":"pong"})");
      co_await net::async_write(link, net::buffer(pong), use_awaitable);
    }
  }

  net::awaitable<void> ServeStream(std::string id) {
    try {
      Dialed conn = co_await Dial(fmt::format("{}?stream={}", link::kConnectPath, id));
      std::string head = co_await ReadHead(*conn.stream, conn.leftover);
      auto request = ParseStreamRequest(head);
      if (!request) {
        std::string answer =
            ErrorResponse(400, "BadRequest", "the agent does not serve this request");
        co_await net::async_write(*conn.stream, net::buffer(answer), use_awaitable);
      } else if (request->kind == "containerLogs") {
        co_await ServeLogs(conn.stream, std::move(*request));
      } else {
        co_await ServeRuntimeStream(conn.stream, std::move(*request), std::move(conn.leftover));
        co_return;  // the relay owns the connection now
      }
      boost::system::error_code ignored;
      conn.stream->next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      conn.stream->next_layer().close(ignored);
    } catch (const std::exception& e) {
      log::Debug(kLog, "stream {}: {}", id, e.what());
    }
  }

  // exec, attach and port-forward: the runtime's single-use URL for the request, then the
  // client's own request head sent there, and bytes relayed both ways.
  net::awaitable<void> ServeRuntimeStream(std::shared_ptr<TlsStream> stream, StreamRequest request,
                                          std::string leftover) {
    std::string url;
    int code = 0;
    std::string message;
    co_await Blocking([&] {
      Result<std::string> got = Internal("unset");
      if (request.kind == "portForward") {
        cri::SandboxFilter filter;
        filter.state = cri::SandboxState::kReady;
        filter.label_selector = {{kPodUidLabel, request.uid}};
        auto sandboxes = runtime_.ListPodSandboxes(filter);
        if (!sandboxes.ok()) {
          got = sandboxes.status();
        } else if (sandboxes->empty()) {
          got = NotFound(fmt::format("pod \"{}\" has no running sandbox", request.pod));
        } else {
          std::vector<int32_t> ports;
          std::string bad;
          for (const std::string& p : request.query.GetAll("port")) {
            try {
              ports.push_back(std::stoi(p));
            } catch (const std::exception&) {
              bad = p;
            }
          }
          got = bad.empty()
                    ? runtime_.PortForward(sandboxes->front().id, ports)
                    : Result<std::string>(InvalidArgument(fmt::format("invalid port \"{}\"", bad)));
        }
      } else {
        cri::ContainerFilter filter;
        filter.state = cri::ContainerState::kRunning;
        filter.label_selector = {{kPodUidLabel, request.uid},
                                 {kContainerNameLabel, request.container}};
        auto containers = runtime_.ListContainers(filter);
        if (!containers.ok()) {
          got = containers.status();
        } else if (containers->empty()) {
          got = NotFound(fmt::format("container not found (\"{}\")", request.container));
        } else {
          const cri::Container* newest = &containers->front();
          for (const auto& c : *containers) {
            if (c.created_at > newest->created_at) newest = &c;
          }
          cri::StreamOptions options;
          options.attach_stdin = request.query.IsTrue("stdin");
          options.attach_stdout = request.query.IsTrue("stdout");
          options.tty = request.query.IsTrue("tty");
          // With a tty the runtime merges stderr into stdout; it refuses both at once.
          options.attach_stderr = request.query.IsTrue("stderr") && !options.tty;
          if (request.kind == "exec") {
            auto command = request.query.GetAll("command");
            if (command.empty()) {
              got = InvalidArgument("you must specify at least 1 command");
            } else {
              got = runtime_.Exec(newest->id, command, options);
            }
          } else {
            got = runtime_.Attach(newest->id, options);
          }
        }
      }
      if (got.ok()) {
        url = *got;
      } else {
        code = got.status().code() == StatusCode::kNotFound          ? 404
               : got.status().code() == StatusCode::kInvalidArgument ? 400
                                                                     : 500;
        message = got.status().message();
      }
    });
    if (code != 0) {
      std::string answer = ErrorResponse(code,
                                         code == 404   ? "NotFound"
                                         : code == 400 ? "BadRequest"
                                                       : "InternalError",
                                         message);
      co_await net::async_write(*stream, net::buffer(answer), use_awaitable);
      boost::system::error_code ignored;
      stream->next_layer().close(ignored);
      co_return;
    }
    HostPort target;
    std::string path;
    if (!SplitUrl(url, &target, &path)) throw std::runtime_error("runtime gave a bad URL: " + url);
    auto executor = co_await net::this_coro::executor;
    auto plain = std::make_shared<tcp::socket>(executor);
    tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(target.host, target.port, use_awaitable);
    co_await net::async_connect(*plain, endpoints, use_awaitable);
    boost::system::error_code ignored;
    plain->set_option(tcp::no_delay(true), ignored);

    link::Head head = request.head;
    head.first_line = fmt::format("{} {} HTTP/1.1", request.method, path);
    head.Remove("Host");
    head.headers.emplace_back("Host", target.host + ":" + target.port);
    std::string out = head.Serialize() + leftover;
    co_await net::async_write(*plain, net::buffer(out), use_awaitable);

    auto ends = std::make_shared<RelayEnds>(RelayEnds{stream, plain});
    net::co_spawn(executor, Pump(*stream, *plain, ends), net::detached);
    net::co_spawn(executor, Pump(*plain, *stream, ends), net::detached);
  }

  // Container logs from the CRI log file: what is there (from the tail or since a time), then,
  // with follow, what the runtime appends until the container stops or the client goes away.
  net::awaitable<void> ServeLogs(std::shared_ptr<TlsStream> stream, StreamRequest request) {
    auto options = ParseLogOptions(request.query, NowNanos());
    if (!options.ok()) {
      std::string answer = ErrorResponse(400, "BadRequest", options.status().message());
      co_await net::async_write(*stream, net::buffer(answer), use_awaitable);
      co_return;
    }
    std::string id = request.query.Get("containerID");
    Result<cri::ContainerStatus> status = NotFound("unset");
    co_await Blocking([&] { status = runtime_.GetContainerStatus(id); });
    if (!status.ok() || status->container.labels[kPodUidLabel] != request.uid) {
      std::string answer =
          ErrorResponse(404, "NotFound",
                        fmt::format("container \"{}\" in pod \"{}\" not found on node {}{}",
                                    request.container, request.pod, options_.node_name,
                                    status.ok() ? "" : ": " + status.status().message()));
      co_await net::async_write(*stream, net::buffer(answer), use_awaitable);
      co_return;
    }
    int fd = open(status->log_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::string answer = ErrorResponse(404, "NotFound",
                                         fmt::format("cannot open the log of container \"{}\": {}",
                                                     request.container, strerror(errno)));
      co_await net::async_write(*stream, net::buffer(answer), use_awaitable);
      co_return;
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { close(fd); }
    } closer{fd};

    auto executor = co_await net::this_coro::executor;
    bool follow = options->follow && status->container.state == cri::ContainerState::kRunning;
    std::shared_ptr<net::posix::stream_descriptor> events;
    const std::string path = status->log_path;
    constexpr uint32_t kWatchMask = IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;
    int ifd = -1;
    int wd = -1;
    if (follow) {
      // The watch first, then the state check: an exit between them is not missed.
      ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (ifd >= 0 && (wd = inotify_add_watch(ifd, path.c_str(), kWatchMask)) >= 0) {
        events = std::make_shared<net::posix::stream_descriptor>(executor, ifd);
        co_await Blocking([&] { status = runtime_.GetContainerStatus(id); });
        follow = status.ok() && status->container.state == cri::ContainerState::kRunning;
      } else {
        if (ifd >= 0) close(ifd);
        log::Warn(kLog, "inotify on {}: {}; logs are not followed", status->log_path,
                  strerror(errno));
        follow = false;
      }
    }

    struct stat st {};
    fstat(fd, &st);
    int64_t offset = 0;
    if (options->tail_lines) {
      auto tail = TailOffset(fd, st.st_size, *options->tail_lines);
      if (tail.ok()) offset = *tail;
    }
    std::string response_head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
    co_await net::async_write(*stream, net::buffer(response_head), use_awaitable);

    // The client sends nothing more: a read that completes means it went away.
    auto gone = std::make_shared<std::atomic<bool>>(false);
    if (follow) {
      net::co_spawn(executor, WatchClient(stream, events, gone), net::detached);
    }

    LogFormatter formatter(*options);
    std::vector<char> buffer(64 * 1024);
    std::string pending;  // a line not yet ended by '\n'
    bool exited = !follow;
    bool closed = false;         // the file was closed or moved: the output ended or was rotated
    bool writer_closed = false;  // the runtime closed its end of the current file
    while (!*gone) {
      ssize_t n = pread(fd, buffer.data(), buffer.size(), offset);
      if (n < 0) break;
      if (n > 0) {
        offset += n;
        pending.append(buffer.data(), static_cast<size_t>(n));
        std::string out;
        size_t start = 0;
        while (true) {
          size_t nl = pending.find('\n', start);
          if (nl == std::string::npos) break;
          bool more = formatter.Add(std::string_view(pending).substr(start, nl - start), out);
          start = nl + 1;
          if (!more) break;
        }
        pending.erase(0, start);
        if (!out.empty()) {
          std::string chunk = Chunk(out);
          co_await net::async_write(*stream, net::buffer(chunk), use_awaitable);
        }
        if (formatter.done()) break;
        continue;
      }
      // At the end of the file.
      if (exited) break;
      if (closed) {
        closed = false;
        struct stat now_st {};
        struct stat fd_st {};
        bool renamed = stat(path.c_str(), &now_st) != 0;
        if (!renamed && fstat(fd, &fd_st) == 0 &&
            (now_st.st_ino != fd_st.st_ino || now_st.st_dev != fd_st.st_dev)) {
          // Log rotation: this file was renamed aside and the runtime reopened a new one at
          // the path. The runtime makes the new file before it closes the old one: once it
          // has closed it and what is left of it has been read, follow the new file.
          if (!writer_closed) {
            renamed = true;
          } else if (int next = open(path.c_str(), O_RDONLY | O_CLOEXEC); next >= 0) {
            writer_closed = false;
            inotify_rm_watch(ifd, wd);
            wd = inotify_add_watch(ifd, path.c_str(), kWatchMask);
            close(fd);
            fd = closer.fd = next;
            offset = 0;
            continue;
          }
        }
        if (renamed) {
          // Moved away and the runtime not done with it yet: its reopen closes this file
          // (another event), unless the container has ended.
          co_await Blocking([&] { status = runtime_.GetContainerStatus(id); });
          exited = !status.ok() || status->container.state != cri::ContainerState::kRunning;
        } else {
          // The runtime closed the file: the container's output is over. containerd records
          // the exit only after it closed the file, so its state may say running for a
          // moment; one that still runs after a few seconds had its log reopened (a runtime
          // restart): keep following it.
          writer_closed = false;
          for (int i = 0; i < 25 && !exited; ++i) {
            co_await Blocking([&] { status = runtime_.GetContainerStatus(id); });
            exited = !status.ok() || status->container.state != cri::ContainerState::kRunning;
            if (!exited) {
              net::steady_timer pause(executor, std::chrono::milliseconds(200));
              co_await pause.async_wait(use_awaitable);
            }
          }
        }
        if (exited) continue;  // read what the last moments wrote, then end
      }
      std::array<char, 4096> raw;
      size_t got = 0;
      try {
        got = co_await events->async_read_some(net::buffer(raw), use_awaitable);
      } catch (const std::exception&) {
        break;  // cancelled: the client left
      }
      for (size_t at = 0; at + sizeof(inotify_event) <= got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(raw.data() + at);
        // Events of a watch replaced after a rotation are stale.
        if (event->wd == wd && (event->mask & (IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF))) {
          closed = true;
          if (event->mask & IN_CLOSE_WRITE) writer_closed = true;
        }
        at += sizeof(inotify_event) + event->len;
      }
    }
    if (events) {
      boost::system::error_code ignored;
      events->close(ignored);
    }
    if (*gone) co_return;
    std::string last = "0\r\n\r\n";
    co_await net::async_write(*stream, net::buffer(last), use_awaitable);
  }

  static net::awaitable<void> WatchClient(std::shared_ptr<TlsStream> stream,
                                          std::shared_ptr<net::posix::stream_descriptor> events,
                                          std::shared_ptr<std::atomic<bool>> gone) {
    std::array<char, 64> sink;
    try {
      co_await stream->async_read_some(net::buffer(sink), use_awaitable);
    } catch (const std::exception&) {
    }
    *gone = true;
    boost::system::error_code ignored;
    events->cancel(ignored);
  }

  const StreamServerOptions options_;
  cri::Runtime& runtime_;
  HostPort server_;
  ssl::context tls_;
  net::io_context io_;
  net::thread_pool pool_{2};
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<StreamServer>> StreamServer::Start(StreamServerOptions options,
                                                          cri::Runtime& runtime) {
  auto server = std::make_unique<StreamServerImpl>(std::move(options), runtime);
  if (Status s = server->Init(); !s.ok()) return s;
  return std::unique_ptr<StreamServer>(std::move(server));
}

}  // namespace orch::agent
