// Boost.Beast implementation of http_server.h. Each connection is a Session whose handlers
// run on its strand; a request is handed to the worker pool and the answer comes back to the
// strand through the Session's ResponseWriter.
#include "http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <mutex>
#include <thread>

#include "orch/log.h"
#include "orch/pki.h"

namespace orch::api {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::minutes(5);
constexpr size_t kMaxHeaderBytes = 64 * 1024;

std::string StatusBody(int code, const char* reason, const std::string& message) {
  // Minimal Kubernetes Status for errors found before a request reaches a handler.
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return fmt::format(
      R"({{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{}","reason":"{}","code":{}}})",
      escaped, reason, code);
}

class ServerImpl;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& tls, ServerImpl& server)
      : stream_(beast::tcp_stream(std::move(socket)), tls), server_(server) {}

  void Run();

  // Called by the writer; each posts to the strand.
  void Send(Response response);
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers);
  bool Write(std::string chunk);
  void End();
  void OnClose(std::function<void()> callback);
  std::shared_ptr<RawConnection> TakeConnection();

  // RawConnection over this session's TLS stream (after TakeConnection).
  void RawRead(char* buffer, size_t size, std::function<void(bool, size_t)> done);
  void RawWrite(std::string_view data, std::function<void(bool)> done);
  void RawClose();

 private:
  void OnHandshake(beast::error_code ec);
  void DoRead();
  void OnRead(beast::error_code ec);
  void WriteResponse(std::shared_ptr<bhttp::response<bhttp::string_body>> response);
  void WriteNextChunk();
  void WatchForDisconnect();
  void Close();
  void FireClose();

  beast::ssl_stream<beast::tcp_stream> stream_;
  ServerImpl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<PeerCertificate> peer_;
  std::string remote_;
  bool keep_alive_ = true;
  unsigned version_ = 11;

  // Streaming state, touched only on the strand except where noted.
  std::unique_ptr<bhttp::response<bhttp::empty_body>> stream_header_;
  std::unique_ptr<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  std::deque<std::string> chunks_;
  bool writing_ = false;
  bool ending_ = false;
  bool closed_ = false;
  char probe_[1];
  std::atomic<size_t> queued_bytes_{0};  // read by Write on any thread
  std::atomic<bool> dead_{false};        // client gone or dropped

  std::atomic<bool> taken_{false};  // handed over as a RawConnection; no more HTTP

  std::mutex close_mu_;
  std::vector<std::function<void()>> close_callbacks_;  // guarded by close_mu_
  bool close_fired_ = false;                            // guarded by close_mu_
};

class Writer : public ResponseWriter {
 public:
  explicit Writer(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  void Send(Response response) override { session_->Send(std::move(response)); }
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers) override {
    session_->StartStream(status, std::move(content_type), std::move(headers));
  }
  bool Write(std::string chunk) override { return session_->Write(std::move(chunk)); }
  void End() override { session_->End(); }
  void OnClose(std::function<void()> callback) override { session_->OnClose(std::move(callback)); }
  std::shared_ptr<RawConnection> TakeConnection() override { return session_->TakeConnection(); }

 private:
  std::shared_ptr<Session> session_;
};

class SessionConnection : public RawConnection {
 public:
  explicit SessionConnection(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  ~SessionConnection() override { session_->RawClose(); }
  void ReadSome(char* buffer, size_t size, std::function<void(bool, size_t)> done) override {
    session_->RawRead(buffer, size, std::move(done));
  }
  void Write(std::string_view data, std::function<void(bool)> done) override {
    session_->RawWrite(data, std::move(done));
  }
  void Close() override { session_->RawClose(); }

 private:
  std::shared_ptr<Session> session_;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const HttpServerOptions& options, Handler& handler)
      : options_(options),
        handler_(handler),
        tls_(ssl::context::tls_server),
        acceptor_(ioc_),
        workers_(options.worker_threads) {}

  ~ServerImpl() override { Stop(); }

  Status Init() {
    try {
      tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
      tls_.use_certificate_chain_file(options_.cert_file);
      tls_.use_private_key_file(options_.key_file, ssl::context::pem);
      if (!options_.client_ca_file.empty()) {
        tls_.load_verify_file(options_.client_ca_file);
        // Ask for a client certificate and verify it if given; clients without one go on to
        // bearer-token authentication.
        tls_.set_verify_mode(ssl::verify_peer);
        SSL_CTX_set_client_CA_list(tls_.native_handle(),
                                   SSL_load_client_CA_file(options_.client_ca_file.c_str()));
      }
      auto address = net::ip::make_address(options_.bind_address);
      tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(net::socket_base::reuse_address(true));
      if (endpoint.address().is_v6()) acceptor_.set_option(net::ip::v6_only(false));
      acceptor_.bind(endpoint);
      acceptor_.listen(net::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      return Unavailable(fmt::format("cannot serve HTTPS on {}:{}: {}", options_.bind_address,
                                     options_.port, e.what()));
    }
    DoAccept();
    for (int i = 0; i < options_.io_threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status::Ok();
  }

  int port() const override { return acceptor_.local_endpoint().port(); }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    net::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    work_guard_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    workers_.join();
  }

  const HttpServerOptions& options() const { return options_; }

  void Dispatch(Request request, std::shared_ptr<Session> session) {
    net::post(workers_, [this, request = std::move(request), session]() mutable {
      auto writer = std::make_shared<Writer>(std::move(session));
      try {
        handler_.Serve(std::move(request), writer);
      } catch (const std::exception& e) {
        // Handlers turn errors into values; reaching here is a bug, but never a crash.
        log::Error("http", "handler threw: {}", e.what());
        writer->Send({500, "application/json", {}, StatusBody(500, "InternalError", e.what())});
      }
    });
  }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        log::Warn("http", "accept: {}", ec.message());
      } else {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        s.set_option(net::socket_base::keep_alive(true), ignored);
        // Find dead peers of idle streams (watches) within about two minutes.
        int idle = 60, interval = 10, count = 6;
        setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
        setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
        std::make_shared<Session>(std::move(s), tls_, *this)->Run();
      }
      if (!stopped_) DoAccept();
    });
  }

  HttpServerOptions options_;
  Handler& handler_;
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_guard_{
      ioc_.get_executor()};
  ssl::context tls_;
  tcp::acceptor acceptor_;
  net::thread_pool workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

void Session::Run() {
  beast::error_code ec;
  auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
  if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
  stream_.async_handshake(
      ssl::stream_base::server,
      [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
}

void Session::OnHandshake(beast::error_code ec) {
  if (ec) {
    log::Debug("http", "TLS handshake with {}: {}", remote_, ec.message());
    return Close();
  }
  SSL* ssl_handle = stream_.native_handle();
  if (X509* cert = SSL_get1_peer_certificate(ssl_handle)) {
    if (SSL_get_verify_result(ssl_handle) == X509_V_OK) {
      BIO* bio = BIO_new(BIO_s_mem());
      PEM_write_bio_X509(bio, cert);
      char* data = nullptr;
      long len = BIO_get_mem_data(bio, &data);
      auto subject = pki::ReadSubject(std::string(data, len));
      BIO_free(bio);
      if (subject.ok()) peer_ = PeerCertificate{subject->common_name, subject->organizations};
    }
    X509_free(cert);
  }
  DoRead();
}

void Session::DoRead() {
  parser_.emplace();
  parser_->body_limit(server_.options().max_body_bytes);
  parser_->header_limit(kMaxHeaderBytes);
  beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

void Session::OnRead(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    keep_alive_ = false;
    version_ = parser_->get().version();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        bhttp::status::payload_too_large, version_);
    res->set(bhttp::field::content_type, "application/json");
    res->body() = StatusBody(413, "RequestEntityTooLarge",
                             fmt::format("the request body exceeds the limit of {} bytes",
                                         server_.options().max_body_bytes));
    return WriteResponse(res);
  }
  if (ec) {
    if (ec != bhttp::error::end_of_stream && ec != net::error::eof &&
        ec != ssl::error::stream_truncated && ec != beast::error::timeout) {
      log::Debug("http", "read from {}: {}", remote_, ec.message());
    }
    return Close();
  }
  beast::get_lowest_layer(stream_).expires_never();
  auto& msg = parser_->get();
  keep_alive_ = msg.keep_alive();
  version_ = msg.version();

  Request request;
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  auto q = request.target.find('?');
  request.path = PercentDecode(std::string_view(request.target).substr(0, q), false);
  if (q != std::string::npos) request.query = Query::Parse(request.target.substr(q + 1));
  for (const auto& field : msg) {
    request.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(msg.body());
  request.peer = peer_;
  request.remote_address = remote_;
  server_.Dispatch(std::move(request), shared_from_this());
}

void Session::Send(Response response) {
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(response.status), version_);
  res->set(bhttp::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res->insert(name, value);
  res->body() = std::move(response.body);
  net::post(stream_.get_executor(), [self = shared_from_this(), res] { self->WriteResponse(res); });
}

void Session::WriteResponse(std::shared_ptr<bhttp::response<bhttp::string_body>> response) {
  response->keep_alive(keep_alive_);
  response->prepare_payload();
  bhttp::async_write(stream_, *response,
                     [self = shared_from_this(), response](beast::error_code ec, size_t) {
                       if (ec || !self->keep_alive_) return self->Close();
                       self->FireClose();  // the exchange is over
                       {
                         std::lock_guard lock(self->close_mu_);
                         self->close_fired_ = false;
                         self->close_callbacks_.clear();
                       }
                       self->DoRead();
                     });
}

void Session::StartStream(int status, std::string content_type,
                          std::vector<std::pair<std::string, std::string>> headers) {
  net::post(stream_.get_executor(), [self = shared_from_this(), status,
                                     content_type = std::move(content_type),
                                     headers = std::move(headers)] {
    self->stream_header_ = std::make_unique<bhttp::response<bhttp::empty_body>>(
        static_cast<bhttp::status>(status), self->version_);
    auto& h = *self->stream_header_;
    h.set(bhttp::field::content_type, content_type);
    for (const auto& [name, value] : headers) h.insert(name, value);
    h.chunked(true);
    // A stream ends with its connection: the client is told, so it never reuses it.
    h.keep_alive(false);
    self->keep_alive_ = false;
    // Nothing more is read as HTTP: the request's parser and buffer are not needed for the
    // stream's lifetime (a watch may stay open for hours).
    self->parser_.reset();
    self->buffer_ = beast::flat_buffer();
    self->stream_serializer_ = std::make_unique<bhttp::response_serializer<bhttp::empty_body>>(h);
    self->writing_ = true;
    bhttp::async_write_header(self->stream_, *self->stream_serializer_,
                              [self](beast::error_code ec, size_t) {
                                self->writing_ = false;
                                if (ec) return self->Close();
                                self->WatchForDisconnect();
                                self->WriteNextChunk();
                              });
  });
}

bool Session::Write(std::string chunk) {
  if (dead_) return false;
  size_t size = chunk.size();
  if (queued_bytes_.fetch_add(size) + size > server_.options().max_stream_queue_bytes) {
    log::Warn("http", "dropping slow client {}: more than {} bytes queued", remote_,
              server_.options().max_stream_queue_bytes);
    dead_ = true;
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
    return false;
  }
  net::post(stream_.get_executor(),
            [self = shared_from_this(), chunk = std::move(chunk)]() mutable {
              if (self->closed_) return;
              self->chunks_.push_back(std::move(chunk));
              self->WriteNextChunk();
            });
  return true;
}

void Session::End() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    self->ending_ = true;
    self->WriteNextChunk();
  });
}

void Session::WriteNextChunk() {
  if (writing_ || closed_ || !stream_serializer_) return;
  if (chunks_.empty()) {
    if (!ending_) return;
    writing_ = true;
    net::async_write(stream_, bhttp::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code, size_t) {
                       self->writing_ = false;
                       self->Close();
                     });
    return;
  }
  writing_ = true;
  auto chunk = std::make_shared<std::string>(std::move(chunks_.front()));
  chunks_.pop_front();
  net::async_write(stream_, bhttp::make_chunk(net::buffer(*chunk)),
                   [self = shared_from_this(), chunk](beast::error_code ec, size_t) {
                     self->writing_ = false;
                     self->queued_bytes_ -= chunk->size();
                     if (ec) return self->Close();
                     self->WriteNextChunk();
                   });
}

void Session::WatchForDisconnect() {
  // Clients send nothing while a stream runs; a read that completes means they went away.
  stream_.async_read_some(net::buffer(probe_, sizeof(probe_)),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->Close();
                            self->WatchForDisconnect();
                          });
}

void Session::OnClose(std::function<void()> callback) {
  {
    std::lock_guard lock(close_mu_);
    if (!close_fired_) {
      close_callbacks_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

std::shared_ptr<RawConnection> Session::TakeConnection() {
  if (stream_header_ || taken_.exchange(true)) return nullptr;
  return std::make_shared<SessionConnection>(shared_from_this());
}

void Session::RawRead(char* buffer, size_t size, std::function<void(bool, size_t)> done) {
  net::post(stream_.get_executor(), [self = shared_from_this(), buffer, size,
                                     done = std::move(done)]() mutable {
    if (self->closed_) return done(false, 0);
    // Bytes read past the request head (a client that did not wait for 101) come first.
    if (self->buffer_.size() > 0) {
      size_t n = net::buffer_copy(net::buffer(buffer, size), self->buffer_.data());
      self->buffer_.consume(n);
      return done(true, n);
    }
    self->stream_.async_read_some(net::buffer(buffer, size),
                                  [self, done = std::move(done)](beast::error_code ec, size_t n) {
                                    if (ec && n == 0) return done(false, 0);
                                    done(true, n);
                                  });
  });
}

void Session::RawWrite(std::string_view data, std::function<void(bool)> done) {
  net::post(stream_.get_executor(), [self = shared_from_this(), data, done = std::move(done)] {
    if (self->closed_) return done(false);
    net::async_write(self->stream_, net::buffer(data.data(), data.size()),
                     [self, done](beast::error_code ec, size_t) { done(!ec); });
  });
}

void Session::RawClose() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

void Session::FireClose() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(close_mu_);
    if (close_fired_) return;
    close_fired_ = true;
    callbacks.swap(close_callbacks_);
  }
  for (auto& cb : callbacks) cb();
}

void Session::Close() {
  dead_ = true;
  if (!closed_) {
    closed_ = true;
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }
  FireClose();
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      Handler& handler) {
  auto server = std::make_unique<ServerImpl>(options, handler);
  Status status = server->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace orch::api
