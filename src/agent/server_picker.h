// Which API server the agent's load balancer (orch/api_load_balancer.h) sends a new connection
// to: the list of servers, their health, the current one, and the list's form on disk.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orch/status.h"

namespace orch::agent {

// Not thread-safe: the load balancer calls it from its one I/O thread. Servers are "host:port".
// A new connection goes to the current server while it is healthy; when it fails, the first
// healthy server after it in the list becomes current, and the balancer moves there. The current
// server does not change back when an earlier one recovers (no flapping of every connection).
class ServerPicker {
 public:
  // `join_server`: the server the agent joined, kept at the end of the list as a last resort.
  explicit ServerPicker(std::string join_server);

  // Replaces the servers learned from the cluster (duplicates and empty entries dropped; the
  // order is kept). An empty list changes nothing: an Endpoints object between two writes says
  // nothing about which servers live. Health of servers still listed is kept; the current one
  // stays current if still listed. Returns whether the list changed.
  bool SetServers(const std::vector<std::string>& servers);

  // Every server: the learned ones in order, then the join server if not among them.
  std::vector<std::string> servers() const;

  // The order to try for a new connection: the current server if healthy, then the other
  // healthy ones in list order after it, then the unhealthy ones (a server thought dead may be
  // back: trying it beats refusing the connection).
  std::vector<std::string> DialOrder() const;

  // A connection to `server` was established: it is healthy, and current if the current one is
  // not healthy (the dial went past it).
  void ReportConnected(const std::string& server);

  // A connect to, or a probe of, `server` failed: it is unhealthy. If it was current, the next
  // healthy server becomes current. Returns true if `server` was current and another healthy
  // server took over: its connections should then be closed so their clients move too.
  bool ReportFailed(const std::string& server);

  // A probe of `server` passed.
  void ReportHealthy(const std::string& server);

  std::string current() const;
  bool healthy(const std::string& server) const;

 private:
  struct Entry {
    std::string server;
    bool healthy = true;  // until a connect or probe says otherwise
  };
  Entry* Find(const std::string& server);
  const Entry* Find(const std::string& server) const;
  void Rebuild(const std::vector<std::string>& learned);

  std::string join_server_;
  std::vector<std::string> learned_;
  std::vector<Entry> entries_;  // learned_ then the join server
  std::string current_;
};

// The stored list: {"servers": ["10.0.0.1:6443", ...]}. Parse returns an empty list for text
// that is not such a document.
std::string FormatServerList(const std::vector<std::string>& servers);
std::vector<std::string> ParseServerList(const std::string& text);

// "host:port" of an https://HOST[:PORT] URL (port 6443 if none; IPv6 hosts in brackets).
// kInvalidArgument for other URLs.
Result<std::string> ServerOfUrl(const std::string& url);

// The servers an Endpoints object lists: every address of every subset with the subset's port
// named "https" (or its only port), as "ip:port" ("[ip]:port" for IPv6), in order.
std::vector<std::string> ServersOfEndpoints(const nlohmann::json& endpoints);

}  // namespace orch::agent
