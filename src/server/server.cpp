// `orch server`: opens the datastore and runs until asked to stop.
#include "orch/log.h"
#include "orch/roles.h"
#include "orch/store.h"

namespace orch {

int RunServer(const ServerConfig& config) {
  StoreOptions store_options;
  store_options.endpoint = config.datastore_endpoint;
  store_options.data_dir = config.data_dir;
  auto store = OpenStore(store_options);
  if (!store.ok()) {
    log::Error("server", "datastore: {}", store.status().message());
    return 1;
  }
  return 0;
}

int RunAgent(const AgentConfig&) {
  log::Error("agent", "the node agent is not built yet");
  return 1;
}

}  // namespace orch
