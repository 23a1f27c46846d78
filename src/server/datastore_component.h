// The datastore as a server component: opens the Store chosen by --datastore-endpoint on Start
// and closes it on Stop. Components started after it reach the store through store().
#pragma once

#include <memory>
#include <string>

#include "orch/component.h"
#include "orch/store.h"

namespace orch {

class DatastoreComponent : public Component {
 public:
  explicit DatastoreComponent(StoreOptions options) : options_(std::move(options)) {}

  std::string_view Name() const override { return "datastore"; }
  Status Start() override;
  void Stop() override;

  // The open store, valid between a successful Start and Stop. Thread-safe (see Store).
  Store& store() { return *store_; }

  // Whether other servers may share this datastore (etcd): then they share the cluster's CAs
  // and keys through it (bootstrap.h).
  bool Shared() const {
    return !options_.endpoint.empty() && !options_.endpoint.starts_with("sqlite://");
  }

  // Where the data lives, for logs: "sqlite /var/lib/orch/server/db" or the endpoint.
  std::string Describe() const;

 private:
  StoreOptions options_;
  std::unique_ptr<Store> store_;
};

}  // namespace orch
