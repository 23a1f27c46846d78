// The Kubernetes API server of orch as one object: HTTPS front, REST storage over the
// datastore, watch cache, discovery and OpenAPI. The server role starts it after the datastore.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "orch/api_client.h"
#include "orch/status.h"
#include "orch/store.h"

namespace orch {

// GET /v1-orch/server/... from a server joining this one (`orch server --server URL --token T`),
// answered by the server role (src/server), which checks the bearer token itself.
struct ServerJoinRequest {
  std::string method;
  std::string path;
  std::string bearer_token;  // from "Authorization: Bearer ..."; empty when absent
};
struct ServerJoinResponse {
  int status = 200;
  std::string body;  // JSON
};
using ServerJoinHandler = std::function<ServerJoinResponse(const ServerJoinRequest&)>;

struct ApiServerOptions {
  std::string bind_address = "0.0.0.0";
  int port = 6443;
  std::string advertise_address;  // host clients should use (discovery's serverAddress)
  std::string cert_file;          // serving certificate and key (PEM)
  std::string key_file;
  std::string client_ca_file;       // CA that signs client certificates
  std::string ca_bundle_pem;        // served at /cacerts for joining agents
  std::string encryption_key_file;  // AES key for Secrets at rest
  std::string service_cidr = "10.43.0.0/16";
  // The `kube-dns` Service in kube-system gets this ClusterIP (served by every agent); empty:
  // no such Service (--disable dns).
  std::string cluster_dns;
  std::string manifests_dir;  // auto-deploy folder; empty = none
  // Bearer tokens accepted, with the user each stands for.
  struct Token {
    std::string token;
    std::string user;
    std::vector<std::string> groups;
  };
  std::vector<Token> tokens;
  // Node join (POST /v1-orch/client-node.crt, src/apiserver/node_join.h): callers presenting one
  // of `join_tokens` as bearer token get a node client certificate signed by the CA of
  // client_ca_file with `ca_key_file`, its private key (PEM). Empty ca_key_file: no joins (404).
  std::string ca_key_file;
  std::vector<std::string> join_tokens;
  // The cluster-wide settings (orch/cluster_settings.h, JSON) served to the same callers at
  // GET /v1-orch/config; empty: 404.
  std::string cluster_settings_json;
  // Serves /v1-orch/server/...; unset: those paths are not found.
  ServerJoinHandler server_join;
  // Service-account tokens (src/apiserver/service_accounts.h): the RSA key that signs them (PEM,
  // created when missing; k3s's <data-dir>/server/tls/service.key), the issuer, and the
  // audiences tokens must carry (default: the issuer). Empty key file: no TokenRequest, no
  // service-account authentication, no ServiceAccount admission.
  std::string service_account_key_file;
  std::string service_account_issuer = "https://kubernetes.default.svc.cluster.local";
  std::vector<std::string> api_audiences;
  int worker_threads = 16;
};

class ApiServer {
 public:
  // Loads the schemas, starts the watch cache and the HTTPS listener, and creates the
  // namespaces every cluster has. `store` must outlive the server.
  static Result<std::unique_ptr<ApiServer>> Start(const ApiServerOptions& options, Store& store);
  virtual ~ApiServer() = default;

  // A client that calls the API in-process (no HTTP), as `user` in `groups`, writing with
  // `field_manager` unless told otherwise. Valid until Stop; thread-safe.
  virtual std::unique_ptr<ApiClient> NewClient(const std::string& user,
                                               const std::vector<std::string>& groups,
                                               const std::string& field_manager) = 0;

  // The port actually bound.
  virtual int port() const = 0;
  // Stops listening, ends every watch, joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace orch
