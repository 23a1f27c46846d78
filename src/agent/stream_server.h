// The agent's end of the node link (include/orch/node_link.h): keeps a control link to the API
// server open (reconnecting with back-off) and serves each stream the server asks for: container
// logs from the CRI log files, exec / attach / port-forward by relaying the runtime's streaming
// server byte for byte. One I/O thread for every link and stream; CRI calls on a small pool.
#pragma once

#include <memory>
#include <string>

#include "orch/runtime.h"
#include "orch/status.h"

namespace orch::agent {

struct StreamServerOptions {
  std::string server_url;  // https://host:port of the API server
  std::string ca_pem;      // the cluster CA: the server's certificate must chain to it
  std::string cert_pem;    // the node's client certificate (system:node:<name>) and key
  std::string key_pem;
  std::string node_name;
};

class StreamServer {
 public:
  // `runtime` must outlive the server.
  static Result<std::unique_ptr<StreamServer>> Start(StreamServerOptions options,
                                                     cri::Runtime& runtime);
  virtual ~StreamServer() = default;
  // Closes the link and every stream, joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace orch::agent
