// `orch server`: the wiring of the control plane. Components start in order, each once what it
// needs is ready (datastore -> API server -> controllers -> embedded agent), and stop in reverse.
#include <fmt/format.h>

#include <atomic>
#include <stop_token>
#include <thread>

#include "apiserver_component.h"
#include "apiserver_endpoints.h"
#include "control_plane_component.h"
#include "datastore_component.h"
#include "embedded_etcd.h"
#include "orch/agent.h"
#include "orch/api_load_balancer.h"
#include "orch/cluster_settings.h"
#include "orch/component.h"
#include "orch/files.h"
#include "orch/join.h"
#include "orch/log.h"
#include "orch/pki.h"
#include "orch/roles.h"
#include "orch/signals.h"
#include "orch/version.h"

namespace orch {
namespace {

constexpr std::string_view kComponent = "server";

StoreOptions StoreOptionsFor(const ServerConfig& config) {
  if (UsesEmbeddedEtcd(config)) return EmbeddedEtcdStoreOptions(config);
  StoreOptions options;
  options.endpoint = config.datastore_endpoint;
  options.data_dir = config.data_dir;
  options.ca_file = config.datastore_cafile;
  options.cert_file = config.datastore_certfile;
  options.key_file = config.datastore_keyfile;
  return options;
}

// The embedded node agent, on an in-process client with the node's identity.
class EmbeddedAgentComponent : public Component {
 public:
  EmbeddedAgentComponent(const ServerConfig& config, ApiServerComponent& api)
      : config_(config), api_(api) {}
  std::string_view Name() const override { return "agent"; }
  Status Start() override {
    client_ = api_.server().NewClient("system:node:" + config_.agent.node_name, {"system:nodes"},
                                      "orch-agent");
    NodeAgentOptions options;
    options.control_plane = true;
    // The embedded agent opens its node link like any joined agent (one code path), over
    // loopback with a node certificate the server signs for it at each start.
    auto link = LinkCredentials();
    if (!link.ok()) return link.status();
    // Loopback, unless the API listens on one address only.
    std::string host = config_.bind_address;
    if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
    if (host.find(':') != std::string::npos) host = fmt::format("[{}]", host);
    options.link_url = fmt::format("https://{}:{}", host, api_.server().port());
    options.link_ca_pem = api_.credentials().ca_cert_pem;
    options.link_cert_pem = link->cert_pem;
    options.link_key_pem = link->key_pem;
    agent_ = NewNodeAgent(config_.agent, *client_, options);
    Status s = agent_->Start();
    if (!s.ok()) agent_.reset();
    return s;
  }
  void Stop() override {
    if (agent_) agent_->Stop();
    agent_.reset();
    client_.reset();
  }

 private:
  Result<pki::Credential> LinkCredentials() const {
    const ClusterCredentials& creds = api_.credentials();
    auto key = ReadFileToString(creds.ca_key_file);
    if (!key.ok()) return key.status();
    pki::CertificateRequest request;
    request.common_name = "system:node:" + config_.agent.node_name;
    request.organizations = {"system:nodes"};
    request.client = true;
    return pki::IssueCertificate({creds.ca_cert_pem, *key}, request);
  }

  const ServerConfig& config_;
  ApiServerComponent& api_;
  std::unique_ptr<ApiClient> client_;
  std::unique_ptr<Component> agent_;
};

}  // namespace

int RunServer(const ServerConfig& config) {
  log::Info(kComponent, "orch {} ({}) serving Kubernetes {}, data dir {}", kVersion, kGitCommit,
            kKubernetesVersion, config.data_dir);
  log::Debug(kComponent,
             "node {} ({}), cluster-cidr {}, service-cidr {}, cluster-dns {}, api port {}",
             config.agent.node_name, config.agent.node_ip, config.cluster_cidr, config.service_cidr,
             config.cluster_dns, config.https_listen_port);
  // State under the data dir is private: the datastore holds every Secret.
  if (Status s = MakeDirectories(config.data_dir + "/server", 0700); !s.ok()) {
    log::Error(kComponent, "cannot start: {}", s.message());
    return 1;
  }

  // In start order, each needing the ones before it; the embedded agent last, unless
  // --disable-agent.
  ComponentList components;
  if (UsesEmbeddedEtcd(config)) components.Add(std::make_unique<EmbeddedEtcdComponent>(config));
  auto* datastore = components.Add(std::make_unique<DatastoreComponent>(StoreOptionsFor(config)));
  auto* api = components.Add(std::make_unique<ApiServerComponent>(config, *datastore));
  // One server on its own datastore: the API server's bootstrap already wrote its address.
  if (datastore->Shared()) {
    components.Add(std::make_unique<KubernetesEndpointsComponent>(config, *datastore, *api));
  }
  components.Add(std::make_unique<ControlPlaneComponent>(config, *api));
  if (!config.disable_agent) components.Add(std::make_unique<EmbeddedAgentComponent>(config, *api));

  if (Status s = components.StartAll(); !s.ok()) {
    log::Error(kComponent, "cannot start: {}", s.message());
    return 1;
  }
  log::Info(kComponent, "running; stop with SIGTERM or Ctrl-C");

  int signal_number = WaitForStopSignal();
  log::Info(kComponent, "got {}, stopping", SignalName(signal_number));
  ExitOnNextStopSignal();
  components.StopAll();
  log::Info(kComponent, "stopped");
  return 0;
}

// `orch agent`: join the cluster (or reuse the node's stored credentials), take the server's
// cluster-wide settings, then run the node agent over HTTPS with the node's certificate until
// SIGTERM or SIGINT.
int RunAgent(const AgentConfig& config) {
  constexpr std::string_view kAgent = "agent";
  TuneAgentProcessMemory();  // before the first thread
  log::Info(kAgent, "orch {} ({}) node {}, server {}, data dir {}", kVersion, kGitCommit,
            config.node_name, config.server_url, config.data_dir);

  // A thread takes the stop signal, so that a join still waiting for the server ends with it.
  std::stop_source stop;
  std::atomic<int> signal_number{0};
  std::thread signal_waiter([&] {
    signal_number = WaitForStopSignal();
    stop.request_stop();
  });
  // Ends the signal thread (with a signal of our own unless one came) before returning `code`.
  auto finish = [&](int code) {
    if (!stop.stop_requested()) RequestStop();
    signal_waiter.join();
    return code;
  };

  // Every API connection of the node (join, client, node link) goes through the local load
  // balancer, which fails over between the cluster's servers (src/agent/api_load_balancer.cpp).
  auto balancer =
      ApiLoadBalancer::Start({.join_url = config.server_url, .data_dir = config.data_dir});
  if (!balancer.ok()) {
    log::Error(kAgent, "cannot start: {}", balancer.status().message());
    return finish(1);
  }
  AgentConfig through_balancer = config;
  through_balancer.server_url = (*balancer)->url();
  auto credentials = JoinCluster(through_balancer, stop.get_token());
  if (!credentials.ok()) {
    if (credentials.status().code() == StatusCode::kCancelled) {
      signal_waiter.join();
      log::Info(kAgent, "got {} before joining; stopped", SignalName(signal_number));
      return 0;
    }
    log::Error(kAgent, "cannot join {}: {}", config.server_url, credentials.status().message());
    return finish(1);
  }
  // Cluster-wide settings are the server's, at every start (k3s's agents do the same).
  auto settings = FetchClusterSettings(through_balancer, credentials->ca_pem, stop.get_token());
  AgentConfig effective = config;
  if (settings.ok()) {
    std::vector<std::string> notes;
    if (Status s = ApplyClusterSettings(*settings, effective, &notes); !s.ok()) {
      log::Error(kAgent, "cannot start: {}", s.message());
      return finish(1);
    }
    for (const std::string& note : notes) log::Info(kAgent, "using {}", note);
  } else if (settings.status().code() == StatusCode::kCancelled) {
    signal_waiter.join();
    log::Info(kAgent, "got {} before starting; stopped", SignalName(signal_number));
    return 0;
  } else if (settings.status().code() == StatusCode::kNotFound) {
    log::Warn(kAgent, "{}: this node uses its own flags for the cluster-wide settings",
              settings.status().message());
  } else {
    log::Error(kAgent, "cannot start: the server's settings: {}", settings.status().message());
    return finish(1);
  }
  HttpsClientOptions client_options;
  client_options.server_url = (*balancer)->url();
  client_options.ca_pem = credentials->ca_pem;
  client_options.cert_pem = credentials->cert_pem;
  client_options.key_pem = credentials->key_pem;
  client_options.user_agent = fmt::format("orch-agent/{}", kVersion);
  client_options.field_manager = "orch-agent";
  auto client = NewHttpsApiClient(client_options);
  if (!client.ok()) {
    log::Error(kAgent, "cannot start: {}", client.status().message());
    return finish(1);
  }

  (*balancer)->Follow(**client);  // learns every server from the `kubernetes` Endpoints

  // The client outlives the components: the agent uses it until it is stopped.
  ComponentList components;
  NodeAgentOptions agent_options;
  agent_options.server_url = client_options.server_url;
  agent_options.link_url = client_options.server_url;
  agent_options.link_ca_pem = credentials->ca_pem;
  agent_options.link_cert_pem = credentials->cert_pem;
  agent_options.link_key_pem = credentials->key_pem;
  agent_options.manage_process_memory = true;
  components.Add(NewNodeAgent(effective, **client, agent_options));
  if (Status s = components.StartAll(); !s.ok()) {
    log::Error(kAgent, "cannot start: {}", s.message());
    (*balancer)->Stop();  // its watch uses the client
    return finish(1);
  }
  log::Info(kAgent, "running as node {}; stop with SIGTERM or Ctrl-C", config.node_name);

  signal_waiter.join();
  log::Info(kAgent, "got {}, stopping", SignalName(signal_number));
  ExitOnNextStopSignal();
  components.StopAll();
  (*balancer)->Stop();
  log::Info(kAgent, "node {} stopped", config.node_name);
  return 0;
}

}  // namespace orch
