// Chooses the store implementation from the --datastore-endpoint.
#include "etcd/etcd_store.h"
#include "orch/store.h"
#include "sqlite_store.h"

namespace orch {

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  if (IsEtcdEndpoint(options.endpoint)) return OpenEtcdStore(options);
  if (IsSqliteEndpoint(options.endpoint)) {
    auto path = SqliteDbPath(options);
    if (!path.ok()) return path.status();
    return OpenSqliteStore(*path, options);
  }
  return InvalidArgument("unsupported datastore endpoint '" + options.endpoint +
                         "': use sqlite://<path> (the default) or http(s)://<etcd member>");
}

}  // namespace orch
