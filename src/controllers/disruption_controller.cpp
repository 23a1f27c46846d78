// The disruption controller (disruption_controller.h). Keys are budgets; pods, their
// controllers' scale changes and the budgets themselves enqueue the budgets they concern.
#include "disruption_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "orch/labels.h"
#include "orch/log.h"

namespace orch {
namespace ctrl::disruption {
namespace {

json AllowedCondition(const json& old_status, const std::string& condition_status,
                      const std::string& reason, const std::string& message, int64_t generation,
                      TimePoint now) {
  json condition = {{"type", "DisruptionAllowed"},
                    {"status", condition_status},
                    {"reason", reason},
                    {"message", message},
                    {"observedGeneration", generation},
                    {"lastTransitionTime", FormatTime(now)}};
  // The transition time stays while the status does.
  if (const json* old = FindCondition(old_status, "DisruptionAllowed")) {
    if (StringField(*old, {"status"}) == condition_status &&
        !StringField(*old, {"lastTransitionTime"}).empty()) {
      condition["lastTransitionTime"] = StringField(*old, {"lastTransitionTime"});
    }
  }
  return condition;
}

// Other conditions of the old status, kept as they are.
json OtherConditions(const json& old_status) {
  json out = json::array();
  const json& conditions = Field(old_status, {"conditions"});
  if (conditions.is_array()) {
    for (const json& c : conditions) {
      if (StringField(c, {"type"}) != "DisruptionAllowed") out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Result<int64_t> ScaledValue(const json& int_or_percent, int64_t total, bool round_up) {
  if (int_or_percent.is_number_integer()) return int_or_percent.get<int64_t>();
  if (!int_or_percent.is_string()) return InvalidArgument("invalid value for IntOrString");
  std::string text = int_or_percent.get<std::string>();
  if (text.empty() || text.back() != '%') {
    return InvalidArgument(
        fmt::format("invalid value for IntOrString: invalid type: string is not "
                    "a percentage"));
  }
  text.pop_back();
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument(fmt::format("invalid value \"{}%\": not a percentage", text));
  }
  const int64_t percent = std::stoll(text);
  const int64_t product = percent * total;
  return round_up ? (product + 99) / 100 : product / 100;
}

std::vector<ObjectPtr> SelectedPods(const json& pdb, const std::vector<ObjectPtr>& pods) {
  auto selector = LabelSelector::FromJson(Field(pdb, {"spec", "selector"}));
  std::vector<ObjectPtr> out;
  if (!selector.ok() || selector->Empty() || selector->IsNothing()) return out;
  for (const ObjectPtr& p : pods) {
    if (selector->Matches(LabelsOf(*p))) out.push_back(p);
  }
  return out;
}

BudgetStatus CalculateStatus(const json& pdb, const std::vector<ObjectPtr>& pods,
                             const ControllerScale& controller_scale, TimePoint now) {
  BudgetStatus out;
  const json& old_status = Field(pdb, {"status"});
  const int64_t generation = IntField(pdb, {"metadata", "generation"});
  const json& min_available = Field(pdb, {"spec", "minAvailable"});
  const json& max_unavailable = Field(pdb, {"spec", "maxUnavailable"});

  // The scale of the pods' controllers, each counted once.
  auto expected_scale = [&]() -> Result<int64_t> {
    std::map<std::string, int64_t> scales;
    for (const ObjectPtr& p : pods) {
      auto scale = controller_scale(*p);
      if (!scale.ok()) return scale.status();
      if (scale->first.empty()) {
        ++out.unmanaged;
        continue;
      }
      scales[scale->first] = scale->second;
    }
    int64_t sum = 0;
    for (const auto& [uid, n] : scales) sum += n;
    return sum;
  };

  int64_t expected = 0, desired = 0;
  Status error;
  if (!max_unavailable.is_null()) {
    auto scale = expected_scale();
    if (scale.ok()) {
      expected = *scale;
      auto unavailable = ScaledValue(max_unavailable, expected, true);
      if (unavailable.ok()) {
        desired = std::max<int64_t>(0, expected - *unavailable);
      } else {
        error = unavailable.status();
      }
    } else {
      error = scale.status();
    }
  } else if (min_available.is_number_integer()) {
    desired = min_available.get<int64_t>();
    expected = static_cast<int64_t>(pods.size());
  } else if (!min_available.is_null()) {
    auto scale = expected_scale();
    if (scale.ok()) {
      expected = *scale;
      auto minimum = ScaledValue(min_available, expected, true);
      if (minimum.ok()) {
        desired = *minimum;
      } else {
        error = minimum.status();
      }
    } else {
      error = scale.status();
    }
  }

  // Recorded evictions the pods' deletion has not confirmed yet; they count as unhealthy.
  json disrupted = json::object();
  const json& recorded = Field(old_status, {"disruptedPods"});
  int64_t healthy = 0;
  for (const ObjectPtr& p : pods) {
    if (IsBeingDeleted(*p)) continue;
    const std::string name = NameOf(*p);
    bool being_disrupted = false;
    if (recorded.is_object() && recorded.contains(name)) {
      auto at = ParseTime(recorded[name].is_string() ? recorded[name].get<std::string>() : "");
      if (at && *at + kDeletionTimeout >= now) {
        disrupted[name] = recorded[name];
        being_disrupted = true;
        TimePoint expiry = *at + kDeletionTimeout;
        if (!out.recheck || expiry < *out.recheck) out.recheck = expiry;
      } else {
        out.expired.push_back(name);
      }
    }
    if (!being_disrupted && IsPodReady(*p)) ++healthy;
  }

  json status = old_status.is_object() ? old_status : json::object();
  status["observedGeneration"] = generation;
  status["currentHealthy"] = healthy;
  status["desiredHealthy"] = desired;
  status["expectedPods"] = expected;
  if (disrupted.empty()) {
    status.erase("disruptedPods");
  } else {
    status["disruptedPods"] = std::move(disrupted);
  }
  json conditions = OtherConditions(old_status);
  if (!error.ok()) {
    out.error = error;
    status["disruptionsAllowed"] = 0;
    conditions.push_back(
        AllowedCondition(old_status, "False", "SyncFailed", error.message(), generation, now));
  } else {
    int64_t allowed = healthy - desired;
    if (expected <= 0 || allowed <= 0) allowed = 0;
    status["disruptionsAllowed"] = allowed;
    conditions.push_back(
        allowed > 0
            ? AllowedCondition(old_status, "True", "SufficientPods", "", generation, now)
            : AllowedCondition(old_status, "False", "InsufficientPods", "", generation, now));
  }
  status["conditions"] = std::move(conditions);
  out.status = std::move(status);
  return out;
}

}  // namespace ctrl::disruption

namespace {

using ctrl::Field;
using ctrl::IntField;
using ctrl::json;
using ctrl::StringField;
using ctrl::TimePoint;
namespace dc = ctrl::disruption;

constexpr char kComponent[] = "disruption";

class DisruptionController : public Component {
 public:
  DisruptionController(ControllerContext& context, DisruptionControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        pdbs_(context.informers.For(resources::kPodDisruptionBudgets)),
        pods_(context.informers.For(resources::kPods)),
        replica_sets_(context.informers.For(resources::kReplicaSets)),
        deployments_(context.informers.For(resources::kDeployments)),
        stateful_sets_(context.informers.For(resources::kStatefulSets)),
        replication_controllers_(context.informers.For(resources::kReplicationControllers)),
        loop_(
            kComponent, context.informers, context.workers, options_.resync_period,
            [this] { return ctrl::InformerKeys(pdbs_); },
            [this](const std::string& key) { return Sync(key); }) {}

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    pdbs_.AddHandler({
        [this](const ObjectPtr& p) { loop_.Add(ObjectKey(*p)); },
        [this](const ObjectPtr&, const ObjectPtr& p) { loop_.Add(ObjectKey(*p)); },
        nullptr,
    });
    pods_.AddHandler({
        [this](const ObjectPtr& p) { EnqueueBudgetsOf(*p); },
        [this](const ObjectPtr& old_p, const ObjectPtr& p) {
          EnqueueBudgetsOf(*p);
          if (ctrl::LabelsOf(*old_p) != ctrl::LabelsOf(*p)) EnqueueBudgetsOf(*old_p);
        },
        [this](const ObjectPtr& p) { EnqueueBudgetsOf(*p); },
    });
    // A controller's scale is a budget's expected pod count.
    InformerHandler scale_changes{
        nullptr,
        [this](const ObjectPtr& old_o, const ObjectPtr& o) {
          if (IntField(*old_o, {"spec", "replicas"}, 1) != IntField(*o, {"spec", "replicas"}, 1)) {
            EnqueueNamespace(ctrl::NamespaceOf(*o));
          }
        },
        nullptr,
    };
    for (Informer* owners :
         {&replica_sets_, &deployments_, &stateful_sets_, &replication_controllers_}) {
      owners->AddHandler(scale_changes);
    }
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  void EnqueueBudgetsOf(const json& pod) {
    std::vector<ObjectPtr> one{std::make_shared<const json>(pod)};
    for (const ObjectPtr& pdb : pdbs_.List(ctrl::NamespaceOf(pod))) {
      if (!dc::SelectedPods(*pdb, one).empty()) loop_.Add(ObjectKey(*pdb));
    }
  }

  void EnqueueNamespace(const std::string& ns) {
    for (const ObjectPtr& pdb : pdbs_.List(ns)) loop_.Add(ObjectKey(*pdb));
  }

  // The controller of `pod` and its scale, as upstream's finders read it: a ReplicaSet owned by
  // a Deployment counts as the Deployment.
  Result<std::pair<std::string, int64_t>> ControllerScale(const json& pod) const {
    const json* ref = ctrl::GetControllerOf(pod);
    if (ref == nullptr) return std::make_pair(std::string(), int64_t{0});
    const std::string ns = ctrl::NamespaceOf(pod);
    const std::string kind = StringField(*ref, {"kind"});
    auto not_found = [&] {
      return NotFound(fmt::format("found no controllers for pod \"{}\"", ctrl::NameOf(pod)));
    };
    auto scale_of = [](const json& owner) {
      return std::make_pair(ctrl::UidOf(owner), IntField(owner, {"spec", "replicas"}, 1));
    };
    if (kind == "ReplicaSet") {
      ObjectPtr rs = ctrl::ResolveControllerRef(replica_sets_, ns, *ref);
      if (!rs) return not_found();
      if (const json* rs_ref = ctrl::GetControllerOf(*rs);
          rs_ref != nullptr && StringField(*rs_ref, {"kind"}) == "Deployment") {
        ObjectPtr deployment = ctrl::ResolveControllerRef(deployments_, ns, *rs_ref);
        if (!deployment) return not_found();
        return scale_of(*deployment);
      }
      return scale_of(*rs);
    }
    const Informer* owners = nullptr;
    if (kind == "ReplicationController") owners = &replication_controllers_;
    if (kind == "StatefulSet") owners = &stateful_sets_;
    if (owners == nullptr) return not_found();
    ObjectPtr owner = ctrl::ResolveControllerRef(*owners, ns, *ref);
    if (!owner) return not_found();
    return scale_of(*owner);
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr pdb = pdbs_.Get(ns, name);
    if (!pdb) return Status::Ok();
    const TimePoint now = options_.now();
    std::vector<ObjectPtr> pods = dc::SelectedPods(*pdb, pods_.List(ns));
    const json ref = ctrl::EventRef(*pdb, "policy/v1", "PodDisruptionBudget");
    if (pods.empty()) context_.events.Record(ref, "Normal", "NoPods", "No matching pods found");
    dc::BudgetStatus result = dc::CalculateStatus(
        *pdb, pods, [this](const json& pod) { return ControllerScale(pod); }, now);
    if (!result.error.ok()) {
      context_.events.Record(ref, "Warning", "CalculateExpectedPodCountFailed",
                             fmt::format("Failed to calculate the number of expected pods: {}",
                                         result.error.message()));
    } else if (result.unmanaged > 0) {
      context_.events.Record(
          ref, "Warning", "UnmanagedPods",
          fmt::format("Pods selected by this PodDisruptionBudget (selector: {}) were found to be "
                      "unmanaged. As a result, the status of the PDB cannot be calculated "
                      "correctly, which may result in undefined behavior. To account for these "
                      "pods please set \".spec.minAvailable\" field of the PDB to an integer "
                      "value.",
                      Field(*pdb, {"spec", "selector"}).dump()));
    }
    for (const std::string& pod : result.expired) {
      context_.events.Record(ref, "Warning", "NotDeleted",
                             fmt::format("Pod {}/{} was expected to be deleted", ns, pod));
    }
    if (result.recheck) {
      loop_.AddAfter(key,
                     std::chrono::duration_cast<std::chrono::milliseconds>(*result.recheck - now) +
                         std::chrono::milliseconds(100));
    }
    return WriteStatus(*pdb, std::move(result.status));
  }

  Status WriteStatus(const json& pdb, json status) {
    // Conditions differ only in their transition time when nothing else changed.
    if (ctrl::DropEmpty(Field(pdb, {"status"})) == ctrl::DropEmpty(status)) return Status::Ok();
    json next = pdb;
    next["status"] = std::move(status);
    auto written = context_.client.Update(resources::kPodDisruptionBudgets, ctrl::NamespaceOf(pdb),
                                          next, "status");
    if (written.ok() || written.status().code() == StatusCode::kNotFound) return Status::Ok();
    // A conflict (an eviction took a disruption meanwhile): the informer brings the new version
    // and its event syncs again, but retry in case it is already here.
    return written.status();
  }

  ControllerContext& context_;
  const DisruptionControllerOptions options_;
  Informer& pdbs_;
  Informer& pods_;
  Informer& replica_sets_;
  Informer& deployments_;
  Informer& stateful_sets_;
  Informer& replication_controllers_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewDisruptionController(ControllerContext& context,
                                                   DisruptionControllerOptions options) {
  return std::make_unique<DisruptionController>(context, std::move(options));
}

std::unique_ptr<Component> NewDisruptionController(ControllerContext& context) {
  return NewDisruptionController(context, {});
}

}  // namespace orch
