// Pod priority: PriorityClass rules (reserved system- names, the highest user value, one global
// default, immutable value) and upstream's Priority admission, which gives every new pod the
// spec.priority and preemptionPolicy of its class (or of the global default class).
#pragma once

#include "rest.h"

namespace orch::api {

// The classes every cluster has (created by the API server at start).
inline constexpr int32_t kSystemNodeCritical = 2000001000;
inline constexpr int32_t kSystemClusterCritical = 2000000000;
// The highest value a class outside the system- names may have.
inline constexpr int32_t kHighestUserPriority = 1000000000;

// The built-in system-node-critical and system-cluster-critical classes, as stored.
std::vector<json> SystemPriorityClasses();

// Field checks of a PriorityClass (Strategy for scheduling.k8s.io PriorityClass).
class PriorityClassStrategy : public Strategy {
 public:
  void Validate(const json& obj, FieldErrors& errors) const override;
  void ValidateUpdate(const json& obj, const json& old, FieldErrors& errors) const override;
};

class PriorityAdmission : public AdmissionPlugin {
 public:
  PriorityAdmission(Store& store, const ResourceType& classes) : store_(store), classes_(classes) {}
  std::optional<ApiError> Admit(AdmissionRequest& request) override;

 private:
  std::optional<ApiError> AdmitPod(AdmissionRequest& request);
  std::optional<ApiError> AdmitClass(AdmissionRequest& request);
  // Every stored PriorityClass (a handful).
  ApiResult<std::vector<json>> ListClasses();

  Store& store_;
  const ResourceType& classes_;
};

}  // namespace orch::api
