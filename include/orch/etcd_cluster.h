// Membership of an etcd cluster, for `orch server --cluster-init` and the servers that join it:
// list the members and add one before it starts (etcd's Cluster API, storage/etcd).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "orch/status.h"
#include "orch/store.h"

namespace orch {

struct EtcdMember {
  uint64_t id = 0;
  std::string name;  // empty for a member added but not yet started
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
};

// The members of the cluster reached through options.endpoint (with options' TLS files).
// kUnavailable when no member answers, kInvalidArgument for a bad endpoint or TLS files.
Result<std::vector<EtcdMember>> ListEtcdMembers(const StoreOptions& options);

// Adds a voting member with `peer_url` and returns the members afterwards (the new one without
// a name). A peer URL that is already a member's is no error: the list is returned unchanged,
// so a server that failed between adding itself and starting can try again.
Result<std::vector<EtcdMember>> AddEtcdMember(const StoreOptions& options,
                                              const std::string& peer_url);

}  // namespace orch
