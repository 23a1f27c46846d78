// The etcd v3 store: the store contract (include/orch/store.h) over a real etcd cluster, spoken to
// with gRPC, for servers that share state (HA). Storage-internal: OpenStore dispatches here.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "orch/store.h"

namespace orch {

// Knobs that users never need and tests do; the defaults are what `orch server` runs with.
struct EtcdTuning {
  // A watcher whose consumer leaves more than this many events unread ends with kCompacted: the
  // caller relists, as after a compaction, instead of the process growing without bound.
  std::size_t watch_buffer_limit = 10000;
  // Bound on every unary call (Range, Txn, ...), so a hung member turns into kUnavailable and
  // an API request into a 503 within seconds instead of hanging while etcd is unreachable.
  std::chrono::milliseconds rpc_timeout = std::chrono::seconds(5);
  // How long OpenEtcdStore waits for some endpoint to answer before it gives up.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
};

// One member's client URL as parsed from the endpoint list.
struct EtcdEndpoint {
  std::string url;     // as given: "https://10.0.0.1:2379"
  std::string target;  // what gRPC dials: "10.0.0.1:2379"
  bool tls = false;
};

// True if `endpoint` names etcd members (k3s style: "http://a:2379,https://b:2379").
bool IsEtcdEndpoint(const std::string& endpoint);

// Parses a comma-separated list of http:// or https:// member URLs (port 2379 if none is given).
// kInvalidArgument, naming the bad entry, if any is not such a URL.
Result<std::vector<EtcdEndpoint>> ParseEtcdEndpoints(const std::string& endpoint);

// Connects to the members named by options.endpoint (TLS with options.ca_file / cert_file /
// key_file for https:// ones) and checks that one answers. kInvalidArgument for a malformed
// endpoint or unreadable TLS files, kUnavailable if no member answered within
// tuning.connect_timeout. Calls go to one member and move to the next when it is unavailable.
//
// Where etcd differs from the embedded store: revisions are etcd's own, so an empty cluster is at
// revision 1, and other clients of the same cluster take revisions too.
Result<std::unique_ptr<Store>> OpenEtcdStore(const StoreOptions& options,
                                             const EtcdTuning& tuning = {});

}  // namespace orch
