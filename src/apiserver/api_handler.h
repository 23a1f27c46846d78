// The API's request handler: authentication, routing of /api and /apis paths to the REST
// verbs, discovery, OpenAPI, watch streams, health and version. One object serves every
// request; the HTTP front calls it on its worker threads.
#pragma once

#include <memory>
#include <string>

#include "auth.h"
#include "http.h"
#include "metrics.h"
#include "node_join.h"
#include "node_links.h"
#include "orch/apiserver.h"
#include "pod_streams.h"
#include "resources.h"
#include "rest.h"
#include "service_accounts.h"
#include "watch_cache.h"

namespace orch::api {

// Serves /openapi/v2 and /openapi/v3[/...] for the current resources.
class OpenApiService {
 public:
  virtual ~OpenApiService() = default;
  virtual Response Serve(const Request& request) = 0;
};

struct ApiHandlerOptions {
  std::string server_address;  // host:port clients should use (discovery's serverAddress)
  std::string ca_bundle_pem;   // served at /cacerts (joining agents pin its hash)
  // The built-in schemas, for decoding protobuf request bodies; null: they are refused (415).
  const SchemaSet* schemas = nullptr;
  // Serves the node join path (node_join.h); null: that path is not found.
  const NodeCertificateSigner* node_signer = nullptr;
  // The agents' links (GET /v1-orch/connect) and the pod streams over them (logs, exec,
  // attach, port-forward); null: not served.
  NodeLinks* node_links = nullptr;
  PodStreams* pod_streams = nullptr;
  // Answers servers joining this one (GET /v1-orch/server/...); unset: not served.
  ServerJoinHandler server_join;
  // Issues serviceaccounts/NAME/token and serves the issuer's OIDC discovery; null: neither.
  ServiceAccountTokens* service_account_tokens = nullptr;
};

class ApiHandler : public Handler {
 public:
  ApiHandler(ApiHandlerOptions options, ResourceRegistry& registry, Rest& rest, WatchCache& cache,
             const Authenticator& authenticator, const Authorizer& authorizer,
             OpenApiService* openapi, Metrics& metrics);

  void Serve(Request request, std::shared_ptr<ResponseWriter> writer) override;

  // Serves a request already authenticated as `user`: the in-process client's entry point.
  void ServeAs(const UserInfo& user, Request request, std::shared_ptr<ResponseWriter> writer);

  // Readiness: set once the server's components have started.
  void SetReady(bool ready) { ready_ = ready; }

 private:
  struct Route;
  void ServeResource(const UserInfo& user, Request& request, Route& route,
                     std::shared_ptr<ResponseWriter> writer);
  void ServeWatch(Request& request, const ResourceType& type, const std::string& ns,
                  const std::string& name, std::shared_ptr<ResponseWriter> writer);
  Response Encode(const Request& request, const ResourceType& type, json object, int code,
                  const std::vector<std::string>& warnings = {});
  Response EncodeList(const Request& request, const ResourceType& type, ListPage page);
  void ServeScale(Request& request, const ResourceType& type, const std::string& ns,
                  const std::string& name, std::shared_ptr<ResponseWriter> writer);
  void ServeBinding(Request& request, const ResourceType& type, const std::string& ns,
                    const std::string& name, std::shared_ptr<ResponseWriter> writer);
  void ServeEviction(Request& request, const ResourceType& type, const std::string& ns,
                     const std::string& name, std::shared_ptr<ResponseWriter> writer);
  void ServeTokenRequest(Request& request, const std::string& ns, const std::string& name,
                         std::shared_ptr<ResponseWriter> writer);
  // Parses a request body; protobuf bodies (built-in kinds only, as upstream) are decoded as the
  // kind their envelope names, else as the built-in kind group/version/kind.
  ApiResult<json> ParseRequestBody(const Request& request, const std::string& group,
                                   const std::string& version, const std::string& kind,
                                   bool custom_resource = false) const;

  ApiHandlerOptions options_;
  ResourceRegistry& registry_;
  Rest& rest_;
  WatchCache& cache_;
  const Authenticator& authenticator_;
  const Authorizer& authorizer_;
  OpenApiService* openapi_;
  Metrics& metrics_;
  std::atomic<bool> ready_{false};
};

}  // namespace orch::api
