// The server's end of the node links (include/orch/node_link.h): the registry of node name ->
// control link that each agent keeps open, and the data streams opened through it for logs,
// exec, attach and port-forward. Nothing here holds a thread per link or per stream.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "http.h"
#include "orch/status.h"

namespace orch::api {

class NodeLinks {
 public:
  using StreamCallback = std::function<void(Result<std::shared_ptr<RawConnection>>)>;

  // Starts the one thread that runs the timers (stream deadlines, pings).
  static std::unique_ptr<NodeLinks> Create();
  virtual ~NodeLinks() = default;

  // Serves GET /v1-orch/connect for a caller with a node client certificate
  // (CN system:node:<name>, O system:nodes): a control link, or with ?stream=<id> the data
  // stream the node was asked for. Answers 403 for other callers, 404 for unknown streams,
  // 400 for a request that is not an upgrade.
  virtual void ServeConnect(const Request& request, std::shared_ptr<ResponseWriter> writer) = 0;

  // Asks `node`'s agent for a new data stream. `done` runs once, on any thread: with the
  // connection (already switched, ready for one HTTP request), or Unavailable when the node has
  // no link or did not answer within the deadline. Thread-safe.
  virtual void OpenStream(const std::string& node, StreamCallback done) = 0;

  // Whether `node` has a control link now. Thread-safe.
  virtual bool Connected(const std::string& node) const = 0;

  // Closes every link, fails pending streams, joins the timer thread. Idempotent.
  virtual void Stop() = 0;
};

// Copies bytes both ways between `a` and `b` until either side closes or fails, then closes
// both. Each direction reads the next chunk only once the previous one is written, so a slow
// reader slows its writer (TCP back-pressure end to end) and memory stays bounded.
void Splice(std::shared_ptr<RawConnection> a, std::shared_ptr<RawConnection> b);

}  // namespace orch::api
