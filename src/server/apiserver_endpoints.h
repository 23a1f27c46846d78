// The `kubernetes` Service's Endpoints with several servers: each server keeps a lease of its own
// in the datastore and every server rewrites the Endpoints from the live leases (self-healing).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "apiserver_component.h"
#include "datastore_component.h"
#include "orch/api_client.h"
#include "orch/component.h"
#include "orch/config.h"

namespace orch {

// Upstream's "lease" endpoint reconciler, in spirit: the key /orch/apiservers/<ip>:<port> holds
// this server's address with a TTL of kApiServerLeaseTtl, renewed every kApiServerLeaseRenew. A
// watch on the prefix wakes every server when a lease appears or expires, and each then makes
// default/kubernetes list exactly the addresses of the live leases (one subset per port). A
// server that dies leaves the Endpoints when its lease expires; one that stops deletes its lease.
inline constexpr std::chrono::seconds kApiServerLeaseTtl{15};
inline constexpr std::chrono::seconds kApiServerLeaseRenew{5};
inline constexpr const char* kApiServerLeasePrefix = "/orch/apiservers/";

class KubernetesEndpointsComponent : public Component {
 public:
  KubernetesEndpointsComponent(const ServerConfig& config, DatastoreComponent& datastore,
                               ApiServerComponent& api)
      : config_(config), datastore_(datastore), api_(api) {}
  ~KubernetesEndpointsComponent() override { Stop(); }

  std::string_view Name() const override { return "apiserver-endpoints"; }
  // Writes the lease and the Endpoints once, then keeps them on a thread of its own.
  Status Start() override;
  // Deletes this server's lease and takes its address out of the Endpoints.
  void Stop() override;

 private:
  using Address = std::pair<std::string, int>;  // ip, port
  Status Renew();
  Result<std::set<Address>> LiveAddresses();
  Status Reconcile();
  void Run();

  const ServerConfig& config_;
  DatastoreComponent& datastore_;
  ApiServerComponent& api_;
  std::unique_ptr<ApiClient> client_;
  Address self_;
  std::string key_;
  std::unique_ptr<Watcher> watcher_;  // the loop's thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace orch
