// The HTTPS front of the API server: Boost.Beast on Asio with TLS, keep-alive and chunked
// streams. No thread per connection: a few I/O threads run every connection; handlers run on
// a small worker pool because they may block on the datastore.
#pragma once

#include <memory>
#include <string>

#include "http.h"
#include "orch/status.h"

namespace orch::api {

struct HttpServerOptions {
  std::string bind_address = "0.0.0.0";
  int port = 6443;
  std::string cert_file;     // serving certificate (PEM, may hold the chain)
  std::string key_file;      // its key
  std::string client_ca_file;  // CA for optional client certificates; empty = none asked
  int io_threads = 2;
  int worker_threads = 16;  // handlers blocked on datastore writes wait here (group commit)
  size_t max_body_bytes = 3 * 1024 * 1024;
  size_t max_stream_queue_bytes = 16 * 1024 * 1024;  // per streaming response
};

class HttpServer {
 public:
  // Binds and listens; requests go to `handler`, which must outlive the server.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   Handler& handler);
  virtual ~HttpServer() = default;

  // The port actually bound (useful with port 0 in tests).
  virtual int port() const = 0;

  // Stops accepting, closes every connection, joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace orch::api
