// The HTTP vocabulary between the network front (http_server.cpp) and the API handlers:
// a parsed request, a response, and a writer that also carries streams (watch, logs).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "orch/url_query.h"

namespace orch::api {

using Query = UrlQuery;  // the API handlers' name for it

// Header names are stored lower-case.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // The first value of `name` (any case), or "".
  std::string Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return values_; }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// Identity of the client after TLS: the verified client certificate's subject, if any.
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Request {
  std::string method;  // GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS
  std::string target;  // raw request target, e.g. /api/v1/pods?limit=500
  std::string path;    // percent-decoded path without the query
  Query query;
  Headers headers;
  std::string body;
  std::optional<PeerCertificate> peer;  // set when the client presented a certificate we trust
  std::string remote_address;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A connection the HTTP front handed over to a handler (an upgrade: exec, port-forward, the
// node link): raw bytes both ways, no more HTTP from the front. Thread-safe; callbacks run on
// the connection's I/O thread and must not block. At most one read and one write at a time.
class RawConnection {
 public:
  virtual ~RawConnection() = default;
  // Reads at least one byte into `buffer` (size `size`), then calls `done(ok, n)`; ok is false
  // once the peer closed or the connection failed. `buffer` must stay valid until then.
  virtual void ReadSome(char* buffer, size_t size, std::function<void(bool ok, size_t n)> done) = 0;
  // Writes all of `data`, then `done(ok)`. `data` must stay valid until then.
  virtual void Write(std::string_view data, std::function<void(bool ok)> done) = 0;
  // Closes the connection; pending reads and writes complete with ok = false. Idempotent.
  virtual void Close() = 0;
};

// How a handler answers. Implementations are thread-safe: a handler may answer from any
// thread, later than Serve returns (a watch answers as events arrive).
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends one complete response. Call at most once, and not after StartStream.
  virtual void Send(Response response) = 0;

  // Starts a chunked response; then Write any number of chunks and End.
  virtual void StartStream(int status, std::string content_type,
                           std::vector<std::pair<std::string, std::string>> headers = {}) = 0;

  // Queues one chunk. Never blocks. Returns false when the client is gone or has fallen too
  // far behind (its queue is over the bound): the connection is then closed, and the caller
  // stops writing. A slow client is dropped, never allowed to grow memory without bound.
  virtual bool Write(std::string chunk) = 0;

  // Watch streams: true when the writer takes events as shared decoded objects (WriteEvent)
  // rather than as JSON text; only the in-process client does, its watchers then parse nothing.
  virtual bool TakesObjects() const { return false; }
  // Queues one watch event ("ADDED", "MODIFIED", ...) whose object is shared with every other
  // watcher and never mutated. Only called when TakesObjects(); the same contract as Write.
  virtual bool WriteEvent(const char* type, std::shared_ptr<const nlohmann::json> object) {
    (void)type;
    (void)object;
    return false;
  }

  // Ends the stream (the connection stays open for the next request).
  virtual void End() = 0;

  // `callback` runs once, on any thread, when the client disconnects or the response ends,
  // whichever comes first; at once if that already happened. For releasing watch resources.
  virtual void OnClose(std::function<void()> callback) = 0;

  // Takes the connection over, instead of answering: the front writes nothing more on it and
  // reads nothing more from it (bytes it already read past the request come first from the
  // result). Null when there is no network connection to take (the in-process client), or
  // after Send or StartStream.
  virtual std::shared_ptr<RawConnection> TakeConnection() { return nullptr; }
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Serves one request. Runs on a worker thread that may block briefly (datastore calls).
  virtual void Serve(Request request, std::shared_ptr<ResponseWriter> writer) = 0;
};

}  // namespace orch::api
