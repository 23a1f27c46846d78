// Chooses the store implementation from the --datastore-endpoint.
#include "orch/store.h"

namespace orch {

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  return Unavailable("no datastore implementation for '" + options.endpoint + "' yet");
}

}  // namespace orch
