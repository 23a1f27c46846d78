// Deployment arithmetic and bookkeeping (deployment_util.h), following the semantics of
// upstream's pkg/controller/deployment/util.
#include "deployment_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace orch::ctrl::deploy {

// ---------------------------------------------------------------------------------------------
// Hashes and templates.

std::string ComputeHash(const json& pod_template, std::optional<int64_t> collision_count) {
  uint32_t hash = 2166136261u;
  auto feed = [&hash](const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      hash ^= static_cast<uint8_t>(data[i]);
      hash *= 16777619u;
    }
  };
  const std::string canonical = DropEmpty(pod_template).dump();
  feed(canonical.data(), canonical.size());
  if (collision_count) {
    char bytes[8] = {};
    uint32_t count = static_cast<uint32_t>(*collision_count);
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((count >> (8 * i)) & 0xff);
    feed(bytes, sizeof(bytes));
  }
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out = std::to_string(hash);
  for (char& c : out) c = kAlphabet[static_cast<uint8_t>(c) % kAlphabet.size()];
  return out;
}

bool EqualIgnoreHash(const json& t1, const json& t2) {
  auto strip = [](const json& t) {
    json copy = DropEmpty(t);
    auto meta = copy.find("metadata");
    if (meta != copy.end() && meta->contains("labels")) {
      json& labels = (*meta)["labels"];
      labels.erase(kPodTemplateHashLabel);
      if (labels.empty()) meta->erase("labels");
      if (meta->empty()) copy.erase("metadata");
    }
    return copy;
  };
  return strip(t1) == strip(t2);
}

// ---------------------------------------------------------------------------------------------
// Rolling-update arithmetic.

Result<int64_t> ScaledValue(const json& int_or_percent, int64_t total, bool round_up) {
  if (int_or_percent.is_null()) return int64_t{0};
  if (int_or_percent.is_number_integer()) return int_or_percent.get<int64_t>();
  if (!int_or_percent.is_string()) return InvalidArgument("invalid type: not an int or a string");
  std::string text = int_or_percent.get<std::string>();
  if (text.empty() || text.back() != '%') {
    return InvalidArgument(
        fmt::format("invalid value for IntOrString: invalid type: string is "
                    "not a percentage"));
  }
  int64_t percent = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, percent);
  if (ec != std::errc() || end != text.data() + text.size() - 1) {
    return InvalidArgument(fmt::format("invalid value for IntOrString: {}", text));
  }
  double value = static_cast<double>(percent) * static_cast<double>(total) / 100.0;
  return static_cast<int64_t>(round_up ? std::ceil(value) : std::floor(value));
}

Result<std::pair<int64_t, int64_t>> ResolveFenceposts(const json& max_surge,
                                                      const json& max_unavailable,
                                                      int64_t desired) {
  auto surge = ScaledValue(max_surge, desired, true);
  if (!surge.ok()) return surge.status();
  auto unavailable = ScaledValue(max_unavailable, desired, false);
  if (!unavailable.ok()) return unavailable.status();
  int64_t s = *surge, u = *unavailable;
  // Both zero would freeze the rollout: validation forbids it, but percentages can round to it.
  if (s == 0 && u == 0) u = 1;
  return std::make_pair(s, u);
}

int64_t Replicas(const json& object) {
  return IntField(object, {"spec", "replicas"}, 1);
}

bool IsRollingUpdate(const json& deployment) {
  return StringField(deployment, {"spec", "strategy", "type"}, "RollingUpdate") == "RollingUpdate";
}

namespace {
std::pair<int64_t, int64_t> Fenceposts(const json& deployment) {
  const json& rolling = Field(deployment, {"spec", "strategy", "rollingUpdate"});
  // The API's defaults, for objects written without them.
  json surge = rolling.is_object() && rolling.contains("maxSurge") ? rolling["maxSurge"] : "25%";
  json unavailable = rolling.is_object() && rolling.contains("maxUnavailable")
                         ? rolling["maxUnavailable"]
                         : json("25%");
  auto resolved = ResolveFenceposts(surge, unavailable, Replicas(deployment));
  return resolved.ok() ? *resolved : std::make_pair(int64_t{0}, int64_t{1});
}
}  // namespace

int64_t MaxSurge(const json& deployment) {
  if (!IsRollingUpdate(deployment)) return 0;
  return Fenceposts(deployment).first;
}

int64_t MaxUnavailable(const json& deployment) {
  if (!IsRollingUpdate(deployment) || Replicas(deployment) == 0) return 0;
  return std::min(Fenceposts(deployment).second, Replicas(deployment));
}

bool HasProgressDeadline(const json& deployment) {
  const json& v = Field(deployment, {"spec", "progressDeadlineSeconds"});
  return v.is_number_integer() && v.get<int64_t>() != std::numeric_limits<int32_t>::max();
}

bool HasRevisionHistoryLimit(const json& deployment) {
  const json& v = Field(deployment, {"spec", "revisionHistoryLimit"});
  return v.is_number_integer() && v.get<int64_t>() != std::numeric_limits<int32_t>::max();
}

// ---------------------------------------------------------------------------------------------
// Revisions and ReplicaSet lists.

std::optional<int64_t> IntAnnotation(const json& object, const char* key) {
  const json& v = Field(object, {"metadata", "annotations", key});
  if (!v.is_string()) return std::nullopt;
  const std::string& text = v.get_ref<const std::string&>();
  int64_t out = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return out;
}

int64_t Revision(const json& replica_set) {
  return IntAnnotation(replica_set, kRevisionAnnotation).value_or(0);
}

int64_t MaxRevision(const RsList& replica_sets) {
  int64_t most = 0;
  for (const ObjectPtr& rs : replica_sets) {
    if (rs) most = std::max(most, Revision(*rs));
  }
  return most;
}

void SortByCreation(RsList& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    auto ta = ParseTime(StringField(*a, {"metadata", "creationTimestamp"}));
    auto tb = ParseTime(StringField(*b, {"metadata", "creationTimestamp"}));
    if (ta != tb) return ta < tb;
    return NameOf(*a) < NameOf(*b);
  });
}

namespace {
bool CreatedBefore(const ObjectPtr& a, const ObjectPtr& b) {
  auto ta = ParseTime(StringField(*a, {"metadata", "creationTimestamp"}));
  auto tb = ParseTime(StringField(*b, {"metadata", "creationTimestamp"}));
  if (ta != tb) return ta < tb;
  return NameOf(*a) < NameOf(*b);
}
}  // namespace

void SortBySizeNewer(RsList& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    if (Replicas(*a) != Replicas(*b)) return Replicas(*a) > Replicas(*b);
    return CreatedBefore(b, a);
  });
}

void SortBySizeOlder(RsList& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    if (Replicas(*a) != Replicas(*b)) return Replicas(*a) > Replicas(*b);
    return CreatedBefore(a, b);
  });
}

void SortByRevision(RsList& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
    if (Revision(*a) != Revision(*b)) return Revision(*a) < Revision(*b);
    return CreatedBefore(a, b);
  });
}

ObjectPtr FindNewReplicaSet(const json& deployment, const RsList& replica_sets) {
  RsList sorted = replica_sets;
  SortByCreation(sorted);
  const json& want = Field(deployment, {"spec", "template"});
  for (const ObjectPtr& rs : sorted) {
    // Several can match after a collision was resolved: the oldest is the one in use.
    if (EqualIgnoreHash(Field(*rs, {"spec", "template"}), want)) return rs;
  }
  return nullptr;
}

RsList FindOldReplicaSets(const json&, const RsList& replica_sets, const ObjectPtr& new_rs) {
  RsList old;
  for (const ObjectPtr& rs : replica_sets) {
    if (!new_rs || UidOf(*rs) != UidOf(*new_rs)) old.push_back(rs);
  }
  return old;
}

RsList FilterActive(const RsList& replica_sets) {
  RsList out;
  for (const ObjectPtr& rs : replica_sets) {
    if (rs && Replicas(*rs) > 0) out.push_back(rs);
  }
  return out;
}

ObjectPtr FindActiveOrLatest(const ObjectPtr& new_rs, RsList old_rss) {
  if (!new_rs && old_rss.empty()) return nullptr;
  SortByCreation(old_rss);
  std::reverse(old_rss.begin(), old_rss.end());
  RsList all = old_rss;
  if (new_rs) all.push_back(new_rs);
  RsList active = FilterActive(all);
  if (active.empty()) return new_rs ? new_rs : old_rss.front();
  if (active.size() == 1) return active.front();
  return nullptr;
}

int64_t SpecReplicaSum(const RsList& rss) {
  int64_t sum = 0;
  for (const ObjectPtr& rs : rss) {
    if (rs) sum += Replicas(*rs);
  }
  return sum;
}

namespace {
int64_t StatusSum(const RsList& rss, std::string_view field) {
  int64_t sum = 0;
  for (const ObjectPtr& rs : rss) {
    if (rs) sum += IntField(*rs, {"status", field});
  }
  return sum;
}
}  // namespace

int64_t StatusReplicaSum(const RsList& rss) {
  return StatusSum(rss, "replicas");
}
int64_t ReadyReplicaSum(const RsList& rss) {
  return StatusSum(rss, "readyReplicas");
}
int64_t AvailableReplicaSum(const RsList& rss) {
  return StatusSum(rss, "availableReplicas");
}

// ---------------------------------------------------------------------------------------------
// Scaling.

bool IsSaturated(const json& deployment, const ObjectPtr& new_rs) {
  if (!new_rs) return false;
  auto desired = IntAnnotation(*new_rs, kDesiredReplicasAnnotation);
  int64_t replicas = Replicas(deployment);
  return desired && *desired == replicas && Replicas(*new_rs) == replicas &&
         IntField(*new_rs, {"status", "availableReplicas"}) == replicas;
}

Result<int64_t> NewRSNewReplicas(const json& deployment, const RsList& all_rss,
                                 const json& new_rs) {
  const int64_t replicas = Replicas(deployment);
  if (!IsRollingUpdate(deployment)) return replicas;  // Recreate
  const int64_t current = SpecReplicaSum(all_rss);
  const int64_t max_total = replicas + MaxSurge(deployment);
  if (current >= max_total) return Replicas(new_rs);  // cannot grow beyond the surge
  int64_t scale_up = std::min(max_total - current, replicas - Replicas(new_rs));
  return Replicas(new_rs) + scale_up;
}

int64_t GetProportion(const json& rs, const json& deployment, int64_t to_add, int64_t added) {
  if (Replicas(rs) == 0 || to_add == 0 || to_add == added) return 0;
  int64_t fraction;
  if (Replicas(deployment) == 0) {
    fraction = -Replicas(rs);
  } else {
    const int64_t deployment_max = Replicas(deployment) + MaxSurge(deployment);
    int64_t annotated = IntAnnotation(rs, kMaxReplicasAnnotation)
                            .value_or(IntField(deployment, {"status", "replicas"}));
    if (annotated <= 0) {
      fraction = 0;
    } else {
      double size = static_cast<double>(Replicas(rs)) * static_cast<double>(deployment_max) /
                    static_cast<double>(annotated);
      fraction = static_cast<int64_t>(std::llround(size)) - Replicas(rs);
    }
  }
  const int64_t allowed = to_add - added;
  return to_add > 0 ? std::min(fraction, allowed) : std::max(fraction, allowed);
}

// ---------------------------------------------------------------------------------------------
// Annotations.

bool SetReplicasAnnotations(json& rs, int64_t desired, int64_t max_replicas) {
  json& annotations = rs["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  bool changed = false;
  for (auto [key, value] : {std::pair{kDesiredReplicasAnnotation, desired},
                            std::pair{kMaxReplicasAnnotation, max_replicas}}) {
    std::string text = std::to_string(value);
    if (annotations.value(key, "") != text) {
      annotations[key] = text;
      changed = true;
    }
  }
  return changed;
}

bool ReplicasAnnotationsNeedUpdate(const json& rs, int64_t desired, int64_t max_replicas) {
  return IntAnnotation(rs, kDesiredReplicasAnnotation) != desired ||
         IntAnnotation(rs, kMaxReplicasAnnotation) != max_replicas;
}

bool SkipCopyAnnotation(const std::string& key) {
  return key == "kubectl.kubernetes.io/last-applied-configuration" || key == kRevisionAnnotation ||
         key == kRevisionHistoryAnnotation || key == kDesiredReplicasAnnotation ||
         key == kMaxReplicasAnnotation || key == "deprecated.deployment.rollback.to";
}

bool SetNewReplicaSetAnnotations(const json& deployment, json& rs, const std::string& new_revision,
                                 bool exists) {
  json& annotations = rs["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  bool changed = false;
  const json& from = Field(deployment, {"metadata", "annotations"});
  if (from.is_object()) {
    for (auto it = from.begin(); it != from.end(); ++it) {
      if (SkipCopyAnnotation(it.key())) continue;
      if (!annotations.contains(it.key()) || annotations[it.key()] != it.value()) {
        annotations[it.key()] = it.value();
        changed = true;
      }
    }
  }
  const std::string old_revision = annotations.value(kRevisionAnnotation, "");
  const int64_t old_number = IntAnnotation(rs, kRevisionAnnotation).value_or(0);
  int64_t new_number = 0;
  std::from_chars(new_revision.data(), new_revision.data() + new_revision.size(), new_number);
  if (old_number < new_number) {
    annotations[kRevisionAnnotation] = new_revision;
    changed = true;
    if (!old_revision.empty()) {
      // A ReplicaSet brought back by an undo remembers the revisions it had before.
      std::string history = annotations.value(kRevisionHistoryAnnotation, "");
      annotations[kRevisionHistoryAnnotation] =
          history.empty() ? old_revision : history + "," + old_revision;
    }
  }
  if (!exists && SetReplicasAnnotations(rs, Replicas(deployment),
                                        Replicas(deployment) + MaxSurge(deployment))) {
    changed = true;
  }
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Conditions and status.

json NewCondition(const std::string& type, const std::string& status, const std::string& reason,
                  const std::string& message, TimePoint now) {
  std::string at = FormatTime(now);
  return {{"type", type},         {"status", status},
          {"lastUpdateTime", at}, {"lastTransitionTime", at},
          {"reason", reason},     {"message", message}};
}

void SetCondition(json& status, json condition) {
  const std::string type = StringField(condition, {"type"});
  const json* current = FindCondition(status, type);
  if (current != nullptr) {
    if (StringField(*current, {"status"}) == StringField(condition, {"status"})) {
      if (StringField(*current, {"reason"}) == StringField(condition, {"reason"})) return;
      condition["lastTransitionTime"] = (*current)["lastTransitionTime"];
    }
  }
  RemoveCondition(status, type);
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  conditions.push_back(std::move(condition));
}

void RemoveCondition(json& status, const std::string& type) {
  auto it = status.find("conditions");
  if (it == status.end() || !it->is_array()) return;
  json kept = json::array();
  for (json& c : *it) {
    if (StringField(c, {"type"}) != type) kept.push_back(std::move(c));
  }
  if (kept.empty()) {
    status.erase(it);
  } else {
    *it = std::move(kept);
  }
}

json CalculateStatus(const RsList& all_rss, const ObjectPtr& new_rs, const json& deployment,
                     TimePoint now) {
  const int64_t available = AvailableReplicaSum(all_rss);
  const int64_t unavailable = std::max<int64_t>(SpecReplicaSum(all_rss) - available, 0);
  json status = {
      {"observedGeneration", IntField(deployment, {"metadata", "generation"})},
      {"replicas", StatusReplicaSum(all_rss)},
      {"updatedReplicas", new_rs ? IntField(*new_rs, {"status", "replicas"}) : 0},
      {"readyReplicas", ReadyReplicaSum(all_rss)},
      {"availableReplicas", available},
      {"unavailableReplicas", unavailable},
  };
  const json& old = Field(deployment, {"status"});
  if (old.contains("collisionCount")) status["collisionCount"] = old["collisionCount"];
  if (old.contains("conditions") && old["conditions"].is_array() && !old["conditions"].empty()) {
    status["conditions"] = old["conditions"];
  }
  if (available >= Replicas(deployment) - MaxUnavailable(deployment)) {
    SetCondition(status, NewCondition("Available", "True", kMinimumReplicasAvailable,
                                      "Deployment has minimum availability.", now));
  } else {
    SetCondition(status, NewCondition("Available", "False", kMinimumReplicasUnavailable,
                                      "Deployment does not have minimum availability.", now));
  }
  return status;
}

bool DeploymentComplete(const json& deployment, const json& status) {
  const int64_t replicas = Replicas(deployment);
  return IntField(status, {"updatedReplicas"}) == replicas &&
         IntField(status, {"replicas"}) == replicas &&
         IntField(status, {"availableReplicas"}) == replicas &&
         IntField(status, {"observedGeneration"}) >=
             IntField(deployment, {"metadata", "generation"});
}

bool DeploymentProgressing(const json& deployment, const json& new_status) {
  const json& old = Field(deployment, {"status"});
  const int64_t old_old = IntField(old, {"replicas"}) - IntField(old, {"updatedReplicas"});
  const int64_t new_old =
      IntField(new_status, {"replicas"}) - IntField(new_status, {"updatedReplicas"});
  return IntField(new_status, {"updatedReplicas"}) > IntField(old, {"updatedReplicas"}) ||
         new_old < old_old ||
         IntField(new_status, {"readyReplicas"}) > IntField(old, {"readyReplicas"}) ||
         IntField(new_status, {"availableReplicas"}) > IntField(old, {"availableReplicas"});
}

bool DeploymentTimedOut(const json& deployment, const json& new_status, TimePoint now) {
  if (!HasProgressDeadline(deployment)) return false;
  const json* cond = FindCondition(new_status, "Progressing");
  if (cond == nullptr) return false;
  const std::string reason = StringField(*cond, {"reason"});
  if (reason == kNewReplicaSetAvailable) return false;
  if (reason == kProgressDeadlineExceeded) return true;
  auto from = ParseTime(StringField(*cond, {"lastUpdateTime"}));
  if (!from) return false;
  auto deadline = std::chrono::seconds(IntField(deployment, {"spec", "progressDeadlineSeconds"}));
  return *from + deadline < now;
}

}  // namespace orch::ctrl::deploy
