// Implementation of the datastore component: OpenStore on Start, destroy (close) on Stop.
#include "datastore_component.h"

#include "orch/log.h"

namespace orch {

std::string DatastoreComponent::Describe() const {
  if (options_.endpoint.empty()) return "embedded SQLite in " + options_.data_dir + "/server/db";
  return options_.endpoint;
}

Status DatastoreComponent::Start() {
  auto store = OpenStore(options_);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  auto revision = store_->CurrentRevision();
  log::Info(Name(), "ready: {} at revision {}", Describe(),
            revision.ok() ? std::to_string(*revision) : "?");
  return Status::Ok();
}

void DatastoreComponent::Stop() {
  // The store's destructor flushes and closes it (and releases the data dir's lock).
  store_.reset();
}

}  // namespace orch
