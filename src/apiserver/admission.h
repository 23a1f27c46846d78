// Admission plugins that need cluster state: namespace lifecycle (writes need a live
// namespace; the system namespaces cannot be deleted).
#pragma once

#include "rest.h"

namespace orch::api {

class NamespaceLifecycle : public AdmissionPlugin {
 public:
  explicit NamespaceLifecycle(Store& store, const ResourceType& namespaces)
      : store_(store), namespaces_(namespaces) {}
  std::optional<ApiError> Admit(AdmissionRequest& request) override;

 private:
  Store& store_;
  const ResourceType& namespaces_;
};

}  // namespace orch::api
