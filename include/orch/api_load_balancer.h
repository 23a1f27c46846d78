// The agent's client-side load balancer (k3s's agent load balancer): a local TCP port that
// forwards each connection to a live API server of the cluster, so a node keeps working when
// the server it joined dies. TLS stays end to end: the agent verifies the server behind it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "orch/api_client.h"
#include "orch/status.h"

namespace orch {

struct ApiLoadBalancerOptions {
  // The --join URL (https://HOST:PORT): always a server of last resort.
  std::string join_url;
  // The server list is kept in <data_dir>/agent/api-servers.json, so a restarted agent knows
  // every server even if the one it joined is gone. "" keeps nothing (tests).
  std::string data_dir;
  // The local port: k3s's 6444 by default; when that is taken (another agent on this host), a
  // free port the kernel picks. 0 = always a free port.
  int port = 6444;
  // How often every server's /readyz is probed; a server that fails the probe or a connect is
  // avoided until it passes again.
  std::chrono::milliseconds probe_interval = std::chrono::seconds(5);
  std::chrono::milliseconds dial_timeout = std::chrono::seconds(3);
};

// Thread-safe. Connections are forwarded byte for byte on one I/O thread (no thread per
// connection). A new connection goes to the current server; when that one fails (connect error
// or failed probe) the next live server of the list becomes current and the connections to the
// failed one are closed, so clients reconnect through the balancer to the new one.
class ApiLoadBalancer {
 public:
  virtual ~ApiLoadBalancer() = default;

  // "https://127.0.0.1:PORT": the URL the agent's clients use instead of the server's.
  virtual std::string url() const = 0;

  // The servers ("host:port") in the order they are tried, current first.
  virtual std::vector<std::string> servers() const = 0;

  // Learns the servers from the `kubernetes` Endpoints in `default` (every API server of the
  // cluster lists itself there) through `client`, which must outlive the balancer or Stop.
  virtual void Follow(ApiClient& client) = 0;

  // Closes the port and every forwarded connection. Idempotent.
  virtual void Stop() = 0;

  // Binds the port, reads the stored server list and starts probing. kInvalidArgument for a bad
  // join URL, kUnavailable when no local port can be bound.
  static Result<std::unique_ptr<ApiLoadBalancer>> Start(const ApiLoadBalancerOptions& options);
};

}  // namespace orch
