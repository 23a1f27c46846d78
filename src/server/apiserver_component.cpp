// Starting and stopping the API server inside `orch server`.
#include "apiserver_component.h"

#include "cluster_pki.h"
#include "orch/log.h"
#include "orch/net.h"
#include "orch/sa_token.h"

namespace orch {

Status ApiServerComponent::Start() {
  // Every name and address a client may dial: loopback, the node, the in-cluster service.
  std::vector<std::string> sans = {"127.0.0.1", "::1", "localhost", "kubernetes",
                                   "kubernetes.default", "kubernetes.default.svc",
                                   "kubernetes.default.svc." + config_.cluster_domain};
  if (auto cidr = Cidr::Parse(config_.service_cidr); cidr.ok()) {
    if (auto first = cidr->AddressAt(1); first.ok()) sans.push_back(first->ToString());
  }
  for (const std::string& s : {config_.agent.node_ip, config_.advertise_address,
                               config_.agent.node_name}) {
    if (!s.empty()) sans.push_back(s);
  }
  sans.insert(sans.end(), config_.tls_san.begin(), config_.tls_san.end());
  auto creds = EnsureClusterCredentials(config_, sans);
  if (!creds.ok()) return creds.status();
  // The service-account signing key exists before the bootstrap data is published, so that
  // every server of the cluster signs and verifies tokens with the same key.
  const std::string service_key = config_.data_dir + "/server/tls/service.key";
  if (auto key = satoken::SigningKey::LoadOrCreate(service_key); !key.ok()) return key.status();

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
  // Service-account tokens, signed with k3s's service.key; issuer and audiences as k3s sets them.
  options.service_account_key_file = service_key;
  options.service_account_issuer = "https://kubernetes.default.svc." + config_.cluster_domain;
  options.api_audiences = {options.service_account_issuer, "k3s"};
  auto server = ApiServer::Start(options, datastore_.store());
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  credentials_ = *creds;
  log::Info("apiserver", "kubeconfig written to {}; try: orch kubectl get nodes",
            creds->kubeconfig_file);
  return Status::Ok();
}

void ApiServerComponent::Stop() {
  if (server_) server_->Stop();
  server_.reset();
}

}  // namespace orch
