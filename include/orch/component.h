// The lifecycle contract of the parts of a role (datastore, API server, controllers, agent):
// each starts when what it needs is ready and stops in reverse order, driven by a ComponentList.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "orch/status.h"

namespace orch {

// One long-lived part of a role. The role's main thread calls Start once, then Stop once if Start
// succeeded; never concurrently. Work a component does in between runs on its own threads.
class Component {
 public:
  virtual ~Component() = default;

  // A short lowercase name for logs ("datastore", "apiserver").
  virtual std::string_view Name() const = 0;

  // Returns once the component is ready to serve the components started after it (e.g. the
  // datastore is open), or with the reason it cannot start. A failed Start leaves nothing
  // running: Stop will not be called.
  virtual Status Start() = 0;

  // Stops the component's work and releases what it holds; blocks until done. Only called after a
  // successful Start. Must not fail: problems are logged.
  virtual void Stop() = 0;
};

// Components in start order. Owns them; not thread-safe (the role's main thread drives it).
class ComponentList {
 public:
  ComponentList() = default;
  ComponentList(const ComponentList&) = delete;
  ComponentList& operator=(const ComponentList&) = delete;
  ~ComponentList();  // stops whatever is still running

  // Appends a component (started after the ones before it) and returns it for wiring.
  template <typename T>
  T* Add(std::unique_ptr<T> component) {
    T* raw = component.get();
    components_.push_back(std::move(component));
    return raw;
  }

  // Starts the components in order. If one fails, stops the ones already started, in reverse
  // order, and returns "<name>: <reason>".
  Status StartAll();

  // Stops the started components in reverse start order. Idempotent.
  void StopAll();

  size_t size() const { return components_.size(); }

 private:
  std::vector<std::unique_ptr<Component>> components_;
  size_t started_ = 0;  // components_[0, started_) are running
};

}  // namespace orch
