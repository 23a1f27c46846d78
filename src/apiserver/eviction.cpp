// The eviction subresource (eviction.h): pick the pod's PodDisruptionBudget, take one disruption
// from its status with a compare-and-swap write (recording the pod in disruptedPods for the
// disruption controller), then delete the pod. A conflicting write starts over.
#include "eviction.h"

#include <fmt/format.h>

#include <chrono>

#include "orch/labels.h"
#include "orch/timestamps.h"

namespace orch::api {
namespace {

constexpr int kAttempts = 5;
// Upstream refuses to grow status.disruptedPods beyond this: evictions the controller has not
// confirmed yet.
constexpr size_t kMaxDisruptedPods = 2000;
constexpr char kViolation[] = "Cannot evict pod as it would violate the pod's disruption budget.";

// A string member of `object`, "" when absent or of another type (request bodies are untrusted).
std::string Str(const json& object, const char* field) {
  if (!object.is_object()) return "";
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t IntAt(const json& object, const char* section, const char* field) {
  if (!object.contains(section) || !object[section].is_object()) return 0;
  const json& v = object[section].value(field, json());
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

std::string StringAt(const json& object, const char* section, const char* field) {
  if (!object.contains(section) || !object[section].is_object()) return "";
  const json& v = object[section].value(field, json());
  return v.is_string() ? v.get<std::string>() : "";
}

bool IsPodReady(const json& pod) {
  if (!pod.contains("status") || !pod["status"].is_object()) return false;
  const json& conditions = pod["status"].value("conditions", json());
  if (!conditions.is_array()) return false;
  for (const json& c : conditions) {
    if (Str(c, "type") == "Ready") return Str(c, "status") == "True";
  }
  return false;
}

// Pods whose eviction disrupts nothing: terminal, not started yet, or already going.
bool CanIgnoreBudget(const json& pod) {
  std::string phase = StringAt(pod, "status", "phase");
  return phase == "Succeeded" || phase == "Failed" || phase == "Pending" || IsDeleting(pod);
}

ApiError TooMany(const std::string& cause, int retry_after) {
  ApiError e = ApiError::TooManyRequests(kViolation, retry_after);
  if (retry_after == 0) e.details = json::object();
  e.details["causes"] = json::array({{{"reason", "DisruptionBudget"}, {"message", cause}}});
  return e;
}

DeleteOptions DeleteOptionsOf(const json& eviction, bool dry_run) {
  DeleteOptions del;
  del.dry_run = dry_run;
  const json& o = eviction.value("deleteOptions", json());
  if (!o.is_object()) return del;
  if (o.contains("gracePeriodSeconds") && o["gracePeriodSeconds"].is_number_integer()) {
    del.grace_period_seconds = o["gracePeriodSeconds"].get<int64_t>();
  }
  if (o.contains("propagationPolicy") && o["propagationPolicy"].is_string()) {
    del.propagation_policy = o["propagationPolicy"].get<std::string>();
  }
  if (o.contains("preconditions") && o["preconditions"].is_object()) {
    del.precondition_uid = Str(o["preconditions"], "uid");
    del.precondition_resource_version = Str(o["preconditions"], "resourceVersion");
  }
  if (o.contains("dryRun") && o["dryRun"].is_array()) {
    for (const json& d : o["dryRun"]) del.dry_run = del.dry_run || d == "All";
  }
  return del;
}

// The budgets of `ns` whose selector matches the pod. A budget with an empty or unreadable
// selector matches nothing here, as upstream.
ApiResult<std::vector<json>> BudgetsOf(Rest& rest, const ResourceType& pdbs, const json& pod) {
  auto list = rest.List(pdbs, Namespace(pod), ListQuery{});
  if (!list.ok()) return list.error();
  const json& meta = pod.value("metadata", json::object());
  const json labels = meta.is_object() ? meta.value("labels", json()) : json();
  std::vector<json> out;
  for (json& pdb : list->items) {
    const json& selector = pdb.contains("spec") && pdb["spec"].is_object()
                               ? pdb["spec"].value("selector", json())
                               : json();
    auto parsed = LabelSelector::FromJson(selector);
    if (!parsed.ok() || parsed->Empty() || parsed->IsNothing()) continue;
    if (parsed->Matches(labels)) out.push_back(std::move(pdb));
  }
  return out;
}

json Condition(bool allowed, const std::string& now) {
  return {{"type", "DisruptionAllowed"},
          {"status", allowed ? "True" : "False"},
          {"reason", allowed ? "SufficientPods" : "InsufficientPods"},
          {"message", ""},
          {"lastTransitionTime", now}};
}

// Takes one disruption from `pdb` (upstream's checkAndDecrement); the error answers the eviction.
ApiResult<bool> Decrement(Rest& rest, const ResourceType& pdbs, json pdb, const std::string& pod,
                          bool dry_run) {
  const std::string name = Name(pdb);
  if (IntAt(pdb, "status", "observedGeneration") < IntAt(pdb, "metadata", "generation")) {
    return TooMany(
        fmt::format("The disruption budget {} is still being processed by the server.", name), 10);
  }
  const int64_t allowed = IntAt(pdb, "status", "disruptionsAllowed");
  if (allowed < 0) {
    return ApiError::Forbidden(fmt::format(
        "poddisruptionbudgets.policy \"{}\" is forbidden: pdb disruptions allowed is negative",
        name));
  }
  json& status = pdb["status"];
  if (!status.contains("disruptedPods") || !status["disruptedPods"].is_object()) {
    status["disruptedPods"] = json::object();
  }
  if (status["disruptedPods"].size() > kMaxDisruptedPods) {
    return ApiError::Forbidden(fmt::format(
        "poddisruptionbudgets.policy \"{}\" is forbidden: DisruptedPods map too big - too many "
        "evictions not confirmed by PDB controller",
        name));
  }
  if (allowed == 0) {
    return TooMany(
        fmt::format("The disruption budget {} needs {} healthy pods and has {} currently", name,
                    IntAt(pdb, "status", "desiredHealthy"), IntAt(pdb, "status", "currentHealthy")),
        0);
  }
  if (dry_run) return true;
  const std::string now = FormatTime(std::chrono::system_clock::now());
  status["disruptionsAllowed"] = allowed - 1;
  status["disruptedPods"][pod] = now;
  if (allowed - 1 == 0) {
    json conditions = json::array();
    if (status.contains("conditions") && status["conditions"].is_array()) {
      for (const json& c : status["conditions"]) {
        if (Str(c, "type") != "DisruptionAllowed") conditions.push_back(c);
      }
    }
    conditions.push_back(Condition(false, now));
    status["conditions"] = std::move(conditions);
  }
  WriteOptions write;
  write.field_manager = "orch-eviction";
  const std::string ns = Namespace(pdb);  // before the move below
  auto written = rest.Update(pdbs, ns, name, std::move(pdb), "status", write);
  if (!written.ok()) return written.error();
  return true;
}

}  // namespace

ApiResult<json> EvictPod(Rest& rest, const ResourceType& pods, const ResourceType* pdbs,
                         const std::string& ns, const std::string& name, const json& eviction,
                         bool dry_run) {
  if (!eviction.is_object()) return ApiError::BadRequest("the Eviction must be an object");
  if (!Name(eviction).empty() && Name(eviction) != name) {
    return ApiError::BadRequest("name in URL does not match name in Eviction object");
  }
  const DeleteOptions requested = DeleteOptionsOf(eviction, dry_run);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto pod = rest.Get(pods, ns, name);
    if (!pod.ok()) return pod.error();
    DeleteOptions del = requested;
    bool pinned = false;  // we made the deletion depend on the pod staying unhealthy
    bool decided = pdbs == nullptr || CanIgnoreBudget(*pod);
    if (!decided) {
      auto budgets = BudgetsOf(rest, *pdbs, *pod);
      if (!budgets.ok()) return budgets.error();
      if (budgets->size() > 1) {
        return ApiError::Internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
            "not support.");
      }
      decided = budgets->empty();
      if (!decided && !IsPodReady(*pod)) {
        // An unhealthy pod counts toward no budget: it may go when the budget is met anyway
        // (IfHealthyBudget, the default) or always (AlwaysAllow), as long as it is still
        // unhealthy when deleted.
        const json& pdb = budgets->front();
        std::string policy = StringAt(pdb, "spec", "unhealthyPodEvictionPolicy");
        int64_t desired = IntAt(pdb, "status", "desiredHealthy");
        if (policy == "AlwaysAllow" ||
            (IntAt(pdb, "status", "currentHealthy") >= desired && desired > 0)) {
          if (del.precondition_resource_version.empty()) {
            del.precondition_resource_version = std::to_string(ResourceVersion(*pod));
            pinned = true;
          }
          decided = true;
        }
      }
      if (!decided) {
        auto taken = Decrement(rest, *pdbs, budgets->front(), name, del.dry_run);
        if (!taken.ok()) {
          if (taken.error().code == 409) continue;  // the budget changed: decide again
          return taken.error();
        }
      }
    }
    auto deleted = rest.Delete(pods, ns, name, del);
    if (!deleted.ok()) {
      if (pinned && deleted.error().code == 409) continue;  // it changed: maybe ready now
      return deleted.error();
    }
    return SuccessStatus("pods", name, "");
  }
  return TooMany("The disruption budget kept changing; try again.", 1);
}

}  // namespace orch::api
