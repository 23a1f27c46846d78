// Admission plugins: namespace lifecycle (writes need a live namespace; the system namespaces
// cannot be deleted) and DefaultTolerationSeconds (new pods tolerate unreachable nodes 300 s).
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

// Upstream's DefaultTolerationSeconds: a new pod without a toleration for the NoExecute taints
// node.kubernetes.io/not-ready and node.kubernetes.io/unreachable gets one (operator Exists,
// tolerationSeconds 300), so the taint manager evicts it 5 minutes after its node fails.
class DefaultTolerationSeconds : public AdmissionPlugin {
 public:
  std::optional<ApiError> Admit(AdmissionRequest& request) override;
};

}  // namespace orch::api
