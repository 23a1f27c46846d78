// Chooses the store implementation from the --datastore-endpoint.
#include "orch/store.h"

#include "etcd/etcd_store.h"

namespace orch {

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  if (IsEtcdEndpoint(options.endpoint)) return OpenEtcdStore(options);
  return Unavailable("no datastore implementation for '" + options.endpoint + "' yet");
}

}  // namespace orch
