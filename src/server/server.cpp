// `orch server`: the wiring of the control plane. Components start in order, each once what it
// needs is ready (datastore -> API server -> controllers -> embedded agent), and stop in reverse.
#include "apiserver_component.h"
#include "datastore_component.h"
#include "orch/component.h"
#include "orch/files.h"
#include "orch/log.h"
#include "orch/roles.h"
#include "orch/signals.h"
#include "orch/version.h"

namespace orch {
namespace {

constexpr std::string_view kComponent = "server";

StoreOptions StoreOptionsFor(const ServerConfig& config) {
  StoreOptions options;
  options.endpoint = config.datastore_endpoint;
  options.data_dir = config.data_dir;
  options.ca_file = config.datastore_cafile;
  options.cert_file = config.datastore_certfile;
  options.key_file = config.datastore_keyfile;
  return options;
}

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

  // In start order, each needing the ones before it. Next to slot in: the scheduler and the
  // controllers (after the API server), then the embedded agent unless --disable-agent.
  ComponentList components;
  auto* datastore = components.Add(std::make_unique<DatastoreComponent>(StoreOptionsFor(config)));
  components.Add(std::make_unique<ApiServerComponent>(config, *datastore));

  if (Status s = components.StartAll(); !s.ok()) {
    log::Error(kComponent, "cannot start: {}", s.message());
    return 1;
  }
  log::Info(kComponent,
            "running (the node agent is not part of orch yet); "
            "stop with SIGTERM or Ctrl-C");

  int signal_number = WaitForStopSignal();
  log::Info(kComponent, "got {}, stopping", SignalName(signal_number));
  ExitOnNextStopSignal();
  components.StopAll();
  log::Info(kComponent, "stopped");
  return 0;
}

// The node agent lands in src/agent/; until then `orch agent` says so plainly.
int RunAgent(const AgentConfig& config) {
  log::Error("agent", "the node agent is not built yet (would join {} as node {})",
             config.server_url, config.node_name);
  return 1;
}

}  // namespace orch
