// The pure logic of StatefulSets (statefulset_util.h): ordinal identity, claims, the next steps
// of a sync under each pod management policy and update strategy, and the status.
#include "statefulset_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "controller_history.h"
#include "deployment_util.h"

namespace orch::ctrl::sts {

// ---------------------------------------------------------------------------------------------
// Identity.

ParsedName ParsePodName(std::string_view name) {
  size_t dash = name.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == name.size()) return {};
  std::string_view digits = name.substr(dash + 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return {};
  }
  int64_t ordinal = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ordinal);
  if (ec != std::errc() || end != digits.data() + digits.size()) return {};
  return {std::string(name.substr(0, dash)), ordinal};
}

int64_t OrdinalOf(const json& pod) {
  return ParsePodName(NameOf(pod)).ordinal;
}

int64_t Replicas(const json& set) {
  return IntField(set, {"spec", "replicas"}, 1);
}

int64_t StartOrdinal(const json& set) {
  return std::max<int64_t>(0, IntField(set, {"spec", "ordinals", "start"}, 0));
}

int64_t EndOrdinal(const json& set) {
  return StartOrdinal(set) + Replicas(set) - 1;
}

bool InOrdinalRange(const json& set, int64_t ordinal) {
  return ordinal >= StartOrdinal(set) && ordinal <= EndOrdinal(set);
}

std::string PodName(const json& set, int64_t ordinal) {
  return fmt::format("{}-{}", NameOf(set), ordinal);
}

bool IsMemberOf(const json& set, const json& pod) {
  ParsedName parsed = ParsePodName(NameOf(pod));
  return parsed.ordinal >= 0 && parsed.parent == NameOf(set);
}

bool IsParallel(const json& set) {
  return StringField(set, {"spec", "podManagementPolicy"}) == "Parallel";
}

bool IsOnDelete(const json& set) {
  return StringField(set, {"spec", "updateStrategy", "type"}) == "OnDelete";
}

int64_t Partition(const json& set) {
  return std::max<int64_t>(
      0, IntField(set, {"spec", "updateStrategy", "rollingUpdate", "partition"}, 0));
}

int64_t MinReadySeconds(const json& set) {
  return IntField(set, {"spec", "minReadySeconds"}, 0);
}

std::string PodRevision(const json& pod) {
  return StringField(pod, {"metadata", "labels", history::kControllerRevisionHashLabel});
}

// ---------------------------------------------------------------------------------------------
// Claims.

namespace {

const json& ClaimTemplates(const json& set) {
  return Field(set, {"spec", "volumeClaimTemplates"});
}

// The pod's ownerReferences-style reference to `owner` with controller set, as upstream's
// retention policy writes them (no blockOwnerDeletion).
json RetentionRef(const json& owner, std::string_view api_version, std::string_view kind) {
  return {{"apiVersion", api_version},
          {"kind", kind},
          {"name", NameOf(owner)},
          {"uid", UidOf(owner)},
          {"controller", true}};
}

}  // namespace

std::string ClaimName(const json& claim_template, const json& set, int64_t ordinal) {
  return fmt::format("{}-{}-{}", NameOf(claim_template), NameOf(set), ordinal);
}

std::vector<json> ClaimsFor(const json& set, int64_t ordinal) {
  std::vector<json> claims;
  const json& templates = ClaimTemplates(set);
  if (!templates.is_array()) return claims;
  const json& match_labels = Field(set, {"spec", "selector", "matchLabels"});
  for (const json& t : templates) {
    if (NameOf(t).empty()) continue;
    json meta = json::object();
    for (const char* f : {"labels", "annotations", "finalizers"}) {
      const json& v = Field(t, {"metadata", f});
      if (!v.is_null() && !v.empty()) meta[f] = v;
    }
    if (match_labels.is_object()) {
      for (const auto& [k, v] : match_labels.items()) meta["labels"][k] = v;
    }
    meta["name"] = ClaimName(t, set, ordinal);
    meta["namespace"] = NamespaceOf(set);
    const json& spec = Field(t, {"spec"});
    claims.push_back({{"apiVersion", "v1"},
                      {"kind", "PersistentVolumeClaim"},
                      {"metadata", std::move(meta)},
                      {"spec", spec.is_object() ? spec : json::object()}});
  }
  return claims;
}

bool DeleteWhenDeleted(const json& set) {
  return StringField(set, {"spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"}) ==
         "Delete";
}

bool DeleteWhenScaled(const json& set) {
  return StringField(set, {"spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"}) ==
         "Delete";
}

std::optional<json> ClaimOwnerReferences(const json& claim, const json& set, const json& pod) {
  const bool scaled_down = !InOrdinalRange(set, OrdinalOf(pod));
  const bool want_set = DeleteWhenDeleted(set) && !(DeleteWhenScaled(set) && scaled_down);
  const bool want_pod = DeleteWhenScaled(set) && scaled_down && !UidOf(pod).empty();
  const std::string set_uid = UidOf(set);
  const std::string pod_uid = UidOf(pod);
  const json& old_refs = Field(claim, {"metadata", "ownerReferences"});
  json refs = json::array();
  bool has_set = false, has_pod = false, other_controller = false;
  if (old_refs.is_array()) {
    for (const json& ref : old_refs) {
      const std::string uid = StringField(ref, {"uid"});
      if (!set_uid.empty() && uid == set_uid) {
        if (!want_set) continue;
        has_set = true;
      } else if (!pod_uid.empty() && uid == pod_uid) {
        if (!want_pod) continue;
        has_pod = true;
      } else if (BoolField(ref, {"controller"})) {
        other_controller = true;
      }
      refs.push_back(ref);
    }
  }
  // Another controller owns the claim: leave it to that one (upstream does not steal it).
  if (want_set && !has_set && !other_controller && !has_pod) {
    refs.push_back(RetentionRef(set, "apps/v1", "StatefulSet"));
  }
  if (want_pod && !has_pod && !other_controller && !has_set) {
    refs.push_back(RetentionRef(pod, "v1", "Pod"));
  }
  json old_array = old_refs.is_array() ? old_refs : json::array();
  if (refs == old_array) return std::nullopt;
  return refs;
}

// ---------------------------------------------------------------------------------------------
// Pods.

json NewPod(const json& set, const json& pod_template, const std::string& revision, int64_t ordinal,
            const json& controller_ref) {
  json pod = PodFromTemplate(pod_template, set, controller_ref);
  const std::string name = PodName(set, ordinal);
  json& meta = pod["metadata"];
  meta.erase("generateName");
  meta["name"] = name;
  json& labels = meta["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kPodNameLabel] = name;
  labels[kPodIndexLabel] = std::to_string(ordinal);
  if (!revision.empty()) labels[history::kControllerRevisionHashLabel] = revision;
  json& spec = pod["spec"];
  spec["hostname"] = name;
  const std::string service = StringField(set, {"spec", "serviceName"});
  if (!service.empty()) spec["subdomain"] = service;
  // The claims come first, then the template's other volumes (a template volume named like a
  // claim template is replaced by the claim, as upstream's updateStorage does).
  const json& templates = ClaimTemplates(set);
  if (templates.is_array() && !templates.empty()) {
    json volumes = json::array();
    std::set<std::string> claim_volumes;
    for (const json& t : templates) {
      if (NameOf(t).empty()) continue;
      claim_volumes.insert(NameOf(t));
      volumes.push_back({{"name", NameOf(t)},
                         {"persistentVolumeClaim", {{"claimName", ClaimName(t, set, ordinal)}}}});
    }
    const json& old_volumes = Field(spec, {"volumes"});
    if (old_volumes.is_array()) {
      for (const json& v : old_volumes) {
        if (claim_volumes.count(StringField(v, {"name"})) == 0) volumes.push_back(v);
      }
    }
    spec["volumes"] = std::move(volumes);
  }
  return pod;
}

bool IdentityMatches(const json& set, const json& pod) {
  const int64_t ordinal = OrdinalOf(pod);
  const std::string name = NameOf(pod);
  return ordinal >= 0 && name == PodName(set, ordinal) && NamespaceOf(pod) == NamespaceOf(set) &&
         StringField(pod, {"metadata", "labels", kPodNameLabel}) == name &&
         StringField(pod, {"metadata", "labels", kPodIndexLabel}) == std::to_string(ordinal);
}

bool StorageMatches(const json& set, const json& pod) {
  const int64_t ordinal = OrdinalOf(pod);
  if (ordinal < 0) return false;
  const json& templates = ClaimTemplates(set);
  if (!templates.is_array()) return true;
  const json& volumes = Field(pod, {"spec", "volumes"});
  for (const json& t : templates) {
    bool found = false;
    if (volumes.is_array()) {
      for (const json& v : volumes) {
        if (StringField(v, {"name"}) != NameOf(t)) continue;
        found =
            StringField(v, {"persistentVolumeClaim", "claimName"}) == ClaimName(t, set, ordinal);
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool IsRunningAndReady(const json& pod) {
  return PodPhase(pod) == "Running" && IsPodReady(pod);
}

bool IsTerminating(const json& pod) {
  return IsBeingDeleted(pod);
}

bool IsFailedOrSucceeded(const json& pod) {
  const std::string phase = PodPhase(pod);
  return phase == "Failed" || phase == "Succeeded";
}

bool IsHealthy(const json& pod, int64_t min_ready_seconds, TimePoint now) {
  return IsRunningAndReady(pod) && !IsTerminating(pod) &&
         IsPodAvailable(pod, min_ready_seconds, now);
}

// ---------------------------------------------------------------------------------------------
// What to do next.

std::string RevisionForOrdinal(const json& set, int64_t ordinal, const std::string& current,
                               const std::string& update) {
  if (!IsOnDelete(set)) {
    const json& rolling = Field(set, {"spec", "updateStrategy", "rollingUpdate"});
    // Without rollingUpdate upstream keeps the pods below status.currentReplicas current.
    const int64_t below =
        rolling.is_object() ? Partition(set) : IntField(set, {"status", "currentReplicas"}, 0);
    if (ordinal < StartOrdinal(set) + below) return current;
  }
  return update;
}

namespace {

int64_t MaxUnavailable(const json& set, int64_t replicas) {
  const json& value = Field(set, {"spec", "updateStrategy", "rollingUpdate", "maxUnavailable"});
  auto scaled = deploy::ScaledValue(value, replicas, false);
  if (!scaled.ok() || *scaled < 1) return 1;
  return *scaled;
}

}  // namespace

Plan PlanSync(const PlanInput& input) {
  const json& set = input.set;
  Plan plan;
  if (IsBeingDeleted(set)) return plan;
  const int64_t start = StartOrdinal(set);
  const int64_t count = std::max<int64_t>(0, Replicas(set));
  const int64_t min_ready = MinReadySeconds(set);
  const bool monotonic = !IsParallel(set);
  auto healthy = [&](const ObjectPtr& pod) { return pod && IsHealthy(*pod, min_ready, input.now); };

  // Members by ordinal: the replicas in range (null where missing), the condemned beyond it,
  // highest first. Pods without an ordinal are not ours to manage.
  std::vector<ObjectPtr> replicas(static_cast<size_t>(count));
  std::vector<ObjectPtr> condemned;
  for (const ObjectPtr& pod : input.pods) {
    const int64_t ordinal = OrdinalOf(*pod);
    if (ordinal < 0) continue;
    if (InOrdinalRange(set, ordinal)) {
      replicas[static_cast<size_t>(ordinal - start)] = pod;
    } else {
      condemned.push_back(pod);
    }
  }
  std::sort(condemned.begin(), condemned.end(),
            [](const ObjectPtr& a, const ObjectPtr& b) { return OrdinalOf(*a) > OrdinalOf(*b); });

  // The first unhealthy pod: of the replicas in order, else of the condemned from the lowest.
  ObjectPtr first_unhealthy;
  bool any_replica_unhealthy = false;
  for (const ObjectPtr& pod : replicas) {
    if (!healthy(pod)) {
      any_replica_unhealthy = true;
      break;
    }
  }
  if (!any_replica_unhealthy) {
    for (auto it = condemned.rbegin(); it != condemned.rend(); ++it) {
      if (!healthy(*it)) {
        first_unhealthy = *it;
        break;
      }
    }
  }

  for (int64_t i = 0; i < count; ++i) {
    const int64_t ordinal = start + i;
    const ObjectPtr& pod = replicas[static_cast<size_t>(i)];
    if (pod && IsFailedOrSucceeded(*pod)) {
      // Recreated with the same name once the API has let go of this one.
      if (!IsTerminating(*pod)) plan.steps.push_back({Step::Type::kDeleteFailed, ordinal, pod, ""});
      if (monotonic) {
        plan.waiting = fmt::format("pod {} failed and is being replaced", NameOf(*pod));
        return plan;
      }
      continue;
    }
    if (!pod) {
      plan.steps.push_back(
          {Step::Type::kCreate, ordinal, nullptr,
           RevisionForOrdinal(set, ordinal, input.current_revision, input.update_revision)});
      if (monotonic) {
        plan.waiting = fmt::format("pod {} is being created", PodName(set, ordinal));
        return plan;
      }
      continue;
    }
    if (monotonic && IsTerminating(*pod)) {
      plan.waiting = fmt::format("pod {} is terminating", NameOf(*pod));
      return plan;
    }
    if (monotonic && !IsRunningAndReady(*pod)) {
      plan.waiting = fmt::format("pod {} is not Running and Ready", NameOf(*pod));
      return plan;
    }
    if (monotonic && !healthy(pod)) {
      plan.waiting = fmt::format("pod {} is not available yet", NameOf(*pod));
      return plan;
    }
    if (!IsTerminating(*pod) && !IdentityMatches(set, *pod)) {
      plan.steps.push_back({Step::Type::kFixIdentity, ordinal, pod, ""});
    }
  }

  // In OrderedReady every replica is healthy by now: scale down from the highest ordinal.
  for (const ObjectPtr& pod : condemned) {
    if (IsTerminating(*pod)) {
      if (monotonic) {
        plan.waiting = fmt::format("pod {} is terminating", NameOf(*pod));
        return plan;
      }
      continue;
    }
    if (monotonic && !healthy(pod) && pod != first_unhealthy) {
      plan.waiting = fmt::format("pod {} is unhealthy", NameOf(*pod));
      return plan;
    }
    plan.steps.push_back({Step::Type::kDeleteCondemned, OrdinalOf(*pod), pod, ""});
    if (monotonic) {
      plan.waiting = fmt::format("pod {} is being deleted", NameOf(*pod));
      return plan;
    }
  }

  if (IsOnDelete(set)) return plan;  // pods change revision when a user deletes them
  const int64_t update_min = std::min(Partition(set), count);
  const json& rolling = Field(set, {"spec", "updateStrategy", "rollingUpdate"});
  if (!Field(rolling, {"maxUnavailable"}).is_null()) {
    // Up to maxUnavailable replicas (all ordinals counted) may be down at once.
    const int64_t max_unavailable = MaxUnavailable(set, count);
    int64_t unavailable = 0;
    for (const ObjectPtr& pod : replicas) unavailable += healthy(pod) ? 0 : 1;
    if (unavailable >= max_unavailable) {
      plan.waiting = fmt::format("{} pods are unavailable", unavailable);
      return plan;
    }
    int64_t budget = max_unavailable - unavailable;
    for (int64_t target = count - 1; target >= update_min && budget > 0; --target) {
      const ObjectPtr& pod = replicas[static_cast<size_t>(target)];
      if (!pod || IsTerminating(*pod) || PodRevision(*pod) == input.update_revision) continue;
      plan.steps.push_back({Step::Type::kDeleteForUpdate, start + target, pod, ""});
      --budget;
    }
    return plan;
  }
  for (int64_t target = count - 1; target >= update_min; --target) {
    const ObjectPtr& pod = replicas[static_cast<size_t>(target)];
    if (pod && PodRevision(*pod) != input.update_revision && !IsTerminating(*pod)) {
      plan.steps.push_back({Step::Type::kDeleteForUpdate, start + target, pod, ""});
      plan.waiting = fmt::format("pod {} is being updated", NameOf(*pod));
      return plan;
    }
    if (!healthy(pod)) {
      plan.waiting = fmt::format("pod {} to be updated and ready", PodName(set, start + target));
      return plan;
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Status.

json ComputeStatus(const json& set, const std::vector<ObjectPtr>& pods,
                   const std::string& current_revision, const std::string& update_revision,
                   int64_t collision_count, TimePoint now) {
  const int64_t min_ready = MinReadySeconds(set);
  int64_t replicas = 0, ready = 0, available = 0, current = 0, updated = 0;
  for (const ObjectPtr& p : pods) {
    const json& pod = *p;
    if (OrdinalOf(pod) < 0) continue;
    ++replicas;
    if (IsRunningAndReady(pod)) {
      ++ready;
      if (IsPodAvailable(pod, min_ready, now)) ++available;
    }
    if (IsTerminating(pod)) continue;
    const std::string revision = PodRevision(pod);
    if (revision == current_revision) ++current;
    if (revision == update_revision) ++updated;
  }
  json status = Field(set, {"status"}).is_object() ? Field(set, {"status"}) : json::object();
  std::string current_name = current_revision;
  if (!IsOnDelete(set) && updated == replicas && ready == replicas) {
    // The rolling update is complete: the update revision becomes the current one.
    current = updated;
    current_name = update_revision;
  }
  status["observedGeneration"] = IntField(set, {"metadata", "generation"});
  status["replicas"] = replicas;
  status["readyReplicas"] = ready;
  status["availableReplicas"] = available;
  status["currentReplicas"] = current;
  status["updatedReplicas"] = updated;
  status["currentRevision"] = current_name;
  status["updateRevision"] = update_revision;
  status["collisionCount"] = collision_count;
  return status;
}

}  // namespace orch::ctrl::sts
