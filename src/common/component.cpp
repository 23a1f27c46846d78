// Implementation of orch/component.h: ordered start, reverse stop, with a log line per step so
// a slow or failing component is easy to spot.
#include "orch/component.h"

#include <chrono>

#include "orch/log.h"

namespace orch {

ComponentList::~ComponentList() {
  StopAll();
}

Status ComponentList::StartAll() {
  while (started_ < components_.size()) {
    Component& component = *components_[started_];
    auto begin = std::chrono::steady_clock::now();
    log::Debug(component.Name(), "starting");
    Status status = component.Start();
    if (!status.ok()) {
      StopAll();
      return {status.code(), std::string(component.Name()) + ": " + status.message()};
    }
    ++started_;
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - begin);
    log::Debug(component.Name(), "started in {} ms", took.count());
  }
  return Status::Ok();
}

void ComponentList::StopAll() {
  while (started_ > 0) {
    Component& component = *components_[--started_];
    log::Debug(component.Name(), "stopping");
    component.Stop();
    log::Info(component.Name(), "stopped");
  }
}

}  // namespace orch
