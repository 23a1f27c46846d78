// pods/eviction (policy/v1 Eviction): a pod is deleted only if its PodDisruptionBudget allows
// one more disruption, which the eviction takes from the budget's status; upstream's rules.
#pragma once

#include <string>

#include "rest.h"

namespace orch::api {

// Evicts pod `ns`/`name` as the Eviction `eviction` asks (its deleteOptions are honoured).
// Success: the Status to answer (201). Errors as upstream: 404 for a missing pod, 429
// TooManyRequests with a DisruptionBudget cause when the budget has no disruption left (or its
// controller has not caught up), 500 when more than one budget selects the pod. `pdbs` may be
// null (no PodDisruptionBudget resource): every pod is then evicted.
ApiResult<json> EvictPod(Rest& rest, const ResourceType& pods, const ResourceType* pdbs,
                         const std::string& ns, const std::string& name, const json& eviction,
                         bool dry_run);

}  // namespace orch::api
