// Starting and stopping the API server inside `orch server`.
#include "apiserver_component.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "bootstrap.h"
#include "cluster_pki.h"
#include "embedded_etcd.h"
#include "orch/cluster_settings.h"
#include "orch/etcd_cluster.h"
#include "orch/log.h"
#include "orch/net.h"
#include "orch/sa_token.h"

namespace orch {

Status ApiServerComponent::Start() {
  // Every name and address a client may dial: loopback, the node, the in-cluster service.
  std::vector<std::string> sans = {"127.0.0.1",
                                   "::1",
                                   "localhost",
                                   "kubernetes",
                                   "kubernetes.default",
                                   "kubernetes.default.svc",
                                   "kubernetes.default.svc." + config_.cluster_domain};
  if (auto cidr = Cidr::Parse(config_.service_cidr); cidr.ok()) {
    if (auto first = cidr->AddressAt(1); first.ok()) sans.push_back(first->ToString());
  }
  for (const std::string& s :
       {config_.agent.node_ip, config_.advertise_address, config_.agent.node_name}) {
    if (!s.empty()) sans.push_back(s);
  }
  sans.insert(sans.end(), config_.tls_san.begin(), config_.tls_san.end());
  // With a shared datastore the cluster's CAs and keys come from (or go to) the datastore.
  ServerConfig effective = config_;
  std::optional<ClusterBootstrap> bootstrap;
  if (datastore_.Shared()) {
    auto prepared = ClusterBootstrap::Prepare(config_, datastore_.store());
    if (!prepared.ok()) return prepared.status();
    bootstrap = std::move(*prepared);
    if (effective.token.empty()) effective.token = bootstrap->secret();
  }
  auto creds = EnsureClusterCredentials(effective, sans);
  if (!creds.ok()) return creds.status();
  // The service-account signing key exists before the bootstrap data is published, so that
  // every server of the cluster signs and verifies tokens with the same key.
  const std::string service_key = config_.data_dir + "/server/tls/service.key";
  if (auto key = satoken::SigningKey::LoadOrCreate(service_key); !key.ok()) return key.status();
  if (bootstrap) {
    auto replaced = bootstrap->Publish();
    if (!replaced.ok()) return replaced.status();
    if (*replaced) creds = EnsureClusterCredentials(effective, sans);
    if (!creds.ok()) return creds.status();
  }

  ApiServerOptions options;
  options.bind_address = config_.bind_address;
  options.port = config_.https_listen_port;
  options.advertise_address =
      !config_.advertise_address.empty() ? config_.advertise_address : config_.agent.node_ip;
  if (options.advertise_address.empty()) options.advertise_address = "127.0.0.1";
  options.cert_file = creds->serving_cert_file;
  options.key_file = creds->serving_key_file;
  options.client_ca_file = creds->ca_cert_file;
  options.ca_bundle_pem = creds->ca_cert_pem;
  options.encryption_key_file = creds->encryption_key_file;
  options.service_cidr = config_.service_cidr;
  if (!IsDisabled(config_, "dns")) options.cluster_dns = config_.cluster_dns;
  options.manifests_dir = config_.data_dir + "/server/manifests";
  options.tokens.push_back({creds->token, "system:orch:server", {"system:masters"}});
  options.tokens.push_back({creds->token_secret, "system:orch:server", {"system:masters"}});
  // Agents joining with the token get node certificates signed by the cluster CA.
  options.ca_key_file = creds->ca_key_file;
  options.join_tokens = {creds->token, creds->token_secret};
  // ... and take the cluster-wide settings from this server's flags at every start.
  options.cluster_settings_json = ClusterSettingsToJson(ClusterSettingsOf(config_));
  // Service-account tokens, signed with k3s's service.key; issuer and audiences as k3s sets them.
  options.service_account_key_file = service_key;
  options.service_account_issuer = "https://kubernetes.default.svc." + config_.cluster_domain;
  options.api_audiences = {options.service_account_issuer, "k3s"};
  if (datastore_.Shared()) {
    options.server_join = [this, token = creds->token,
                           secret = creds->token_secret](const ServerJoinRequest& request) {
      return ServeServerJoin(request, token, secret);
    };
  }
  auto server = ApiServer::Start(options, datastore_.store());
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  credentials_ = *creds;
  if (bootstrap) {
    if (Status s = bootstrap->ShareNewFiles(); !s.ok()) {
      log::Warn("apiserver", "sharing new credentials through the datastore: {}", s.message());
    }
  }
  log::Info("apiserver", "kubeconfig written to {}; try: orch kubectl get nodes",
            creds->kubeconfig_file);
  return Status::Ok();
}

ServerJoinResponse ApiServerComponent::ServeServerJoin(const ServerJoinRequest& request,
                                                       const std::string& token,
                                                       const std::string& secret) {
  auto error = [](int code, const std::string& message) {
    return ServerJoinResponse{code, nlohmann::json{{"message", message}}.dump()};
  };
  if (request.path != "/v1-orch/server/bootstrap") return error(404, "not found");
  if (request.method != "GET") return error(405, "only GET");
  auto same = [](const std::string& a, const std::string& b) {
    return !a.empty() && a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
  };
  if (!same(request.bearer_token, token) && !same(request.bearer_token, secret)) {
    return error(401, "a joining server must present the cluster's token");
  }
  auto kv = datastore_.store().Get(BootstrapKey(secret));
  if (!kv.ok()) return error(503, "reading the bootstrap data: " + kv.status().message());
  nlohmann::json body = {{"bootstrap", kv->value}, {"etcdClientURLs", nlohmann::json::array()}};
  if (UsesEmbeddedEtcd(config_)) {
    auto members = ListEtcdMembers(EmbeddedEtcdStoreOptions(config_));
    if (!members.ok()) return error(503, "listing etcd members: " + members.status().message());
    for (const EtcdMember& m : *members) {
      for (const std::string& url : m.client_urls) body["etcdClientURLs"].push_back(url);
    }
  }
  log::Info("apiserver", "sent the bootstrap data to a joining server");
  return {200, body.dump()};
}

void ApiServerComponent::Stop() {
  if (server_) server_->Stop();
  server_.reset();
}

}  // namespace orch
