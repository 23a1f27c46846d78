// The API server as a server component: credentials first (CA, certificates, token,
// kubeconfig), then the API server on the datastore. Ready when it answers HTTPS.
#pragma once

#include <memory>

#include "cluster_pki.h"
#include "datastore_component.h"
#include "orch/apiserver.h"
#include "orch/component.h"
#include "orch/config.h"

namespace orch {

class ApiServerComponent : public Component {
 public:
  ApiServerComponent(const ServerConfig& config, DatastoreComponent& datastore)
      : config_(config), datastore_(datastore) {}

  std::string_view Name() const override { return "apiserver"; }
  Status Start() override;
  void Stop() override;

  // The running server; only between Start and Stop.
  ApiServer& server() { return *server_; }
  // The cluster's credentials (files and token); only after Start.
  const ClusterCredentials& credentials() const { return credentials_; }

 private:
  // GET /v1-orch/server/bootstrap for a joining server holding the token: the sealed bootstrap
  // data and, with an embedded etcd, the members' client URLs.
  ServerJoinResponse ServeServerJoin(const ServerJoinRequest& request, const std::string& token,
                                     const std::string& secret);

  const ServerConfig& config_;
  DatastoreComponent& datastore_;
  std::unique_ptr<ApiServer> server_;
  ClusterCredentials credentials_;
};

}  // namespace orch
