// The node's heartbeat: a coordination.k8s.io Lease named after the node in kube-node-lease,
// renewed every 10 s, which the node lifecycle controller watches instead of the node status.
#pragma once

#include <string>

#include "json_util.h"
#include "orch/api_client.h"
#include "orch/status.h"

namespace orch::agent {

inline constexpr const char* kNodeLeaseNamespace = "kube-node-lease";
inline constexpr int kNodeLeaseDurationSeconds = 40;

// Not thread-safe: driven by the node status thread.
class NodeLease {
 public:
  NodeLease(ApiClient& client, std::string node_name)
      : client_(client), node_name_(std::move(node_name)) {}

  // Creates or renews the Lease (renewTime now); `node_uid` makes the Node its owner so the
  // Lease goes with the Node.
  Status Renew(const std::string& node_uid);

 private:
  ApiClient& client_;
  const std::string node_name_;
  json lease_;  // the last Lease written (its resourceVersion makes the next renewal cheap)
};

}  // namespace orch::agent
