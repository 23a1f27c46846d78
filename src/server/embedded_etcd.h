// `orch server --cluster-init`: an embedded etcd member (Debian's /usr/bin/etcd as a supervised
// child process) as the datastore, which servers started with --server join as further members.
#pragma once

#include <memory>
#include <string>

#include "orch/component.h"
#include "orch/config.h"
#include "orch/store.h"

namespace orch::cri {
class ProcessSupervisor;
}

namespace orch {

// Whether `config` runs an embedded etcd member: --cluster-init, or --server without
// --datastore-endpoint (joining a cluster-init server, as with k3s).
bool UsesEmbeddedEtcd(const ServerConfig& config);

// How the server's store reaches its own member: https://127.0.0.1:<client port> with the
// client certificate under <data-dir>/server/tls/etcd/.
StoreOptions EmbeddedEtcdStoreOptions(const ServerConfig& config);

// What a joining server learns from the server it joins (GET /v1-orch/server/bootstrap).
struct ServerJoinInfo {
  std::string bootstrap;                      // sealed bootstrap data (bootstrap.h)
  std::vector<std::string> etcd_client_urls;  // empty when that server runs no embedded etcd
};

// Fetches ServerJoinInfo from config.server_url with config.token: the CA is taken from
// /cacerts and must match the token's hash (a bare-secret token trusts it on first use), then
// the request is made over TLS verified against it. One-line errors for a refused token.
Result<ServerJoinInfo> FetchServerJoinInfo(const ServerConfig& config);

// The etcd member. Start: certificates from the etcd CA (tls/etcd/server-ca.*, created by the
// first server and shared through the bootstrap data), the member added to the cluster when
// joining, etcd started and supervised (restart with back-off), ready when its client port
// answers. Client on 127.0.0.1 and the node IP, peers on the node IP (ports from the config).
class EmbeddedEtcdComponent : public Component {
 public:
  explicit EmbeddedEtcdComponent(const ServerConfig& config);
  ~EmbeddedEtcdComponent() override;

  std::string_view Name() const override { return "etcd"; }
  Status Start() override;
  void Stop() override;

 private:
  Status JoinCluster(const std::string& name, const std::string& peer_url,
                     std::string& initial_cluster);

  const ServerConfig& config_;
  std::unique_ptr<cri::ProcessSupervisor> supervisor_;
};

}  // namespace orch
