// Admission plugins: namespace lifecycle (writes need a live namespace; the system namespaces
// cannot be deleted), DefaultTolerationSeconds (new pods tolerate unreachable nodes 300 s) and
// DefaultIngressClass (new Ingresses without a class get the default one).
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

// Upstream's DefaultIngressClass: a new Ingress (create only) with neither
// spec.ingressClassName nor the old kubernetes.io/ingress.class annotation gets the name of the
// IngressClass annotated ingressclass.kubernetes.io/is-default-class: "true"; when several are,
// the newest (by creationTimestamp, then the first by name), as upstream since 1.28. No default
// class: the Ingress is left alone.
class DefaultIngressClass : public AdmissionPlugin {
 public:
  DefaultIngressClass(Store& store, const ResourceType& classes)
      : store_(store), classes_(classes) {}
  std::optional<ApiError> Admit(AdmissionRequest& request) override;

 private:
  Store& store_;
  const ResourceType& classes_;
};

}  // namespace orch::api
