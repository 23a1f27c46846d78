// The Deployment controller (deployment_controller.h): claims the ReplicaSets its selector
// matches, finds or creates the one of the current template, moves replicas to it by the
// strategy, and reports revisions, counts and the Progressing and Available conditions.
#include "deployment_controller.h"

#include <fmt/format.h>

#include <algorithm>

#include "deployment_util.h"
#include "orch/log.h"

namespace orch {
namespace {

using namespace ctrl;          // NOLINT(google-build-using-namespace): the helpers of this folder
using namespace ctrl::deploy;  // NOLINT(google-build-using-namespace)

constexpr char kApiVersion[] = "apps/v1";

// The latest version of `rs` in `list` (same uid), or `rs` itself.
ObjectPtr Latest(const RsList& list, const ObjectPtr& rs) {
  if (!rs) return rs;
  for (const ObjectPtr& candidate : list) {
    if (UidOf(*candidate) == UidOf(*rs)) return candidate;
  }
  return rs;
}

void Refresh(const RsList& list, RsList& rss) {
  for (ObjectPtr& rs : rss) rs = Latest(list, rs);
}

void Remember(RsList& list, const ObjectPtr& rs) {
  for (ObjectPtr& candidate : list) {
    if (UidOf(*candidate) == UidOf(*rs)) {
      candidate = rs;
      return;
    }
  }
  list.push_back(rs);
}

RsList WithNew(RsList old_rss, const ObjectPtr& new_rs) {
  if (new_rs) old_rss.push_back(new_rs);
  return old_rss;
}

class DeploymentController : public Component {
 public:
  DeploymentController(ControllerContext& context, DeploymentControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        deployments_(context.informers.For(resources::kDeployments)),
        rss_(context.informers.For(resources::kReplicaSets)),
        pods_(context.informers.For(resources::kPods)),
        loop_(
            "deployment", context.informers, context.workers, options_.resync_period,
            [this] { return AllKeys(); }, [this](const std::string& key) { return Sync(key); }) {
    AddControllerIndex(rss_);
    AddControllerIndex(pods_);
  }

  std::string_view Name() const override { return "deployment"; }

  Status Start() override {
    deployments_.AddHandler({
        [this](const ObjectPtr& d) { loop_.Add(ObjectKey(*d)); },
        [this](const ObjectPtr&, const ObjectPtr& d) { loop_.Add(ObjectKey(*d)); },
        [this](const ObjectPtr& d) { loop_.Add(ObjectKey(*d)); },
    });
    rss_.AddHandler({
        [this](const ObjectPtr& rs) { OnReplicaSetAdd(*rs); },
        [this](const ObjectPtr& old_rs, const ObjectPtr& rs) { OnReplicaSetUpdate(*old_rs, *rs); },
        [this](const ObjectPtr& rs) { EnqueueOwner(*rs); },
    });
    pods_.AddHandler({nullptr, nullptr, [this](const ObjectPtr& pod) { OnPodDelete(*pod); }});
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  // ---- Informer handlers: they only enqueue keys.

  std::vector<std::string> AllKeys() const { return InformerKeys(deployments_); }

  ObjectPtr DeploymentOf(const json& rs) const {
    return ControllerOfKind(deployments_, rs, "Deployment");
  }

  void EnqueueOwner(const json& rs) {
    if (ObjectPtr d = DeploymentOf(rs)) loop_.Add(ObjectKey(*d));
  }

  // Deployments whose selector matches an orphaned ReplicaSet: they may adopt it.
  void EnqueueMatching(const json& rs) {
    for (const ObjectPtr& d : deployments_.List(NamespaceOf(rs))) {
      auto selector = LabelSelector::FromJson(Field(*d, {"spec", "selector"}));
      if (selector.ok() && !selector->Empty() && selector->Matches(LabelsOf(rs))) {
        loop_.Add(ObjectKey(*d));
      }
    }
  }

  void OnReplicaSetAdd(const json& rs) {
    if (GetControllerOf(rs) != nullptr) {
      EnqueueOwner(rs);
    } else if (!IsBeingDeleted(rs)) {
      EnqueueMatching(rs);
    }
  }

  void OnReplicaSetUpdate(const json& old_rs, const json& rs) {
    if (StringField(old_rs, {"metadata", "resourceVersion"}) ==
        StringField(rs, {"metadata", "resourceVersion"})) {
      return;
    }
    ObjectPtr old_owner = DeploymentOf(old_rs);
    ObjectPtr owner = DeploymentOf(rs);
    if (old_owner && (!owner || UidOf(*old_owner) != UidOf(*owner))) {
      loop_.Add(ObjectKey(*old_owner));
    }
    if (owner) {
      loop_.Add(ObjectKey(*owner));
      return;
    }
    if (GetControllerOf(rs) == nullptr &&
        (LabelsOf(old_rs) != LabelsOf(rs) || GetControllerOf(old_rs) != nullptr)) {
      EnqueueMatching(rs);
    }
  }

  // Recreate waits for the old pods to be gone: their deletion may unblock it.
  void OnPodDelete(const json& pod) {
    const json* ref = GetControllerOf(pod);
    if (ref == nullptr || StringField(*ref, {"kind"}) != "ReplicaSet") return;
    ObjectPtr rs = ResolveControllerRef(rss_, NamespaceOf(pod), *ref);
    if (!rs) return;
    ObjectPtr d = DeploymentOf(*rs);
    if (d && !IsRollingUpdate(*d)) loop_.Add(ObjectKey(*d));
  }

  // ---- Reconcile.

  Status Sync(const std::string& key) {
    Status s = SyncDeployment(key);
    // A conflict or a vanished object: a newer version is on its way through an informer, and
    // its event syncs the Deployment again.
    if (s.code() == StatusCode::kConflict || s.code() == StatusCode::kNotFound) {
      log::Debug("deployment", "{}: {}; waiting for the newer version", key, s.message());
      return Status::Ok();
    }
    return s;
  }

  Status SyncDeployment(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr cached = deployments_.Get(ns, name);
    if (!cached) return Status::Ok();
    json d = *cached;  // our working copy: writes replace it with what the API returns

    auto selector = LabelSelector::FromJson(Field(d, {"spec", "selector"}));
    if (!selector.ok()) {
      log::Warn("deployment", "{}: invalid selector: {}", key, selector.status().message());
      return Status::Ok();
    }
    if (selector->Empty()) {
      context_.events.Record(EventRef(d, kApiVersion, "Deployment"), "Warning", "SelectingAll",
                             "This deployment is selecting all pods. A non-empty selector is "
                             "required.");
      if (IntField(d, {"status", "observedGeneration"}) < IntField(d, {"metadata", "generation"})) {
        d["status"]["observedGeneration"] = IntField(d, {"metadata", "generation"});
        return UpdateStatus(d);
      }
      return Status::Ok();
    }

    RefManager refs(context_.client, resources::kReplicaSets, d, kApiVersion, "Deployment",
                    *selector, RecheckOwner(context_.client, resources::kDeployments, d));
    Status claim_error;
    RsList rs_list = refs.Claim(OwnedAndOrphans(rss_, d), &claim_error);
    if (!claim_error.ok()) return claim_error;

    if (IsBeingDeleted(d)) return SyncStatusOnly(d, rs_list);
    if (Status s = CheckPausedConditions(d); !s.ok()) return s;
    if (BoolField(d, {"spec", "paused"})) return SyncScale(d, rs_list);

    bool scaling = false;
    if (Status s = IsScalingEvent(d, rs_list, &scaling); !s.ok()) return s;
    if (scaling) return SyncScale(d, rs_list);

    if (StringField(d, {"spec", "strategy", "type"}) == "Recreate") {
      return RolloutRecreate(d, rs_list);
    }
    return RolloutRolling(d, rs_list);
  }

  // ---- Writes.

  Status UpdateStatus(json& d) {
    auto written = context_.client.Update(resources::kDeployments, NamespaceOf(d), d, "status");
    if (!written.ok()) return written.status();
    return TakeWritten(d, std::move(*written));
  }

  // Continues the sync with the Deployment a write returned, unless its spec changed since the
  // sync began: decisions made for one spec must not be carried out with another (a resize
  // would look like rollout progress). The change's own event syncs it again.
  static Status TakeWritten(json& d, json written) {
    if (IntField(written, {"metadata", "generation"}) != IntField(d, {"metadata", "generation"})) {
      return Conflict("the Deployment changed during the sync");
    }
    d = std::move(written);
    return Status::Ok();
  }

  // The Deployment's revision annotation follows its newest ReplicaSet's.
  Status SetDeploymentRevision(json& d, const std::string& revision) {
    if (StringField(d, {"metadata", "annotations", kRevisionAnnotation}) == revision) {
      return Status::Ok();
    }
    json patch = {{"metadata", {{"annotations", {{kRevisionAnnotation, revision}}}}}};
    auto written = context_.client.Patch(resources::kDeployments, NamespaceOf(d), NameOf(d),
                                         PatchType::kMerge, patch.dump());
    if (!written.ok()) return written.status();
    return TakeWritten(d, std::move(*written));
  }

  Status ScaleReplicaSet(const json& d, ObjectPtr& rs, int64_t new_scale,
                         const std::string& operation, RsList& rs_list, bool* scaled) {
    const int64_t desired = Replicas(d);
    const int64_t max_replicas = desired + MaxSurge(d);
    const bool size_changes = Replicas(*rs) != new_scale;
    if (!size_changes && !ReplicasAnnotationsNeedUpdate(*rs, desired, max_replicas)) {
      return Status::Ok();
    }
    const int64_t old_scale = Replicas(*rs);
    json next = *rs;
    next["spec"]["replicas"] = new_scale;
    SetReplicasAnnotations(next, desired, max_replicas);
    auto written = context_.client.Update(resources::kReplicaSets, NamespaceOf(next), next);
    if (!written.ok()) return written.status();
    rs = std::make_shared<const json>(std::move(*written));
    Remember(rs_list, rs);
    if (size_changes) {
      if (scaled != nullptr) *scaled = true;
      context_.events.Record(EventRef(d, kApiVersion, "Deployment"), "Normal", "ScalingReplicaSet",
                             fmt::format("Scaled {} replica set {} from {} to {}", operation,
                                         NameOf(*rs), old_scale, new_scale));
    }
    return Status::Ok();
  }

  Status ScaleAndRecord(const json& d, ObjectPtr& rs, int64_t new_scale, RsList& rs_list,
                        bool* scaled) {
    if (Replicas(*rs) == new_scale) return Status::Ok();
    return ScaleReplicaSet(d, rs, new_scale, Replicas(*rs) < new_scale ? "up" : "down", rs_list,
                           scaled);
  }

  // ---- The new ReplicaSet and revisions.

  Status GetAllReplicaSetsAndSyncRevision(json& d, RsList& rs_list, bool create, ObjectPtr* new_rs,
                                          RsList* old_rss) {
    RsList all_old = FindOldReplicaSets(d, rs_list, FindNewReplicaSet(d, rs_list));
    if (Status s = GetNewReplicaSet(d, rs_list, all_old, create, new_rs); !s.ok()) return s;
    *old_rss = FindOldReplicaSets(d, rs_list, *new_rs);
    return Status::Ok();
  }

  Status GetNewReplicaSet(json& d, RsList& rs_list, const RsList& old_rss, bool create,
                          ObjectPtr* out) {
    *out = nullptr;
    ObjectPtr existing = FindNewReplicaSet(d, rs_list);
    const std::string new_revision = std::to_string(MaxRevision(old_rss) + 1);
    if (existing) {
      json next = *existing;
      bool annotations_changed = SetNewReplicaSetAnnotations(d, next, new_revision, true);
      const int64_t min_ready = IntField(d, {"spec", "minReadySeconds"});
      if (annotations_changed || IntField(next, {"spec", "minReadySeconds"}) != min_ready) {
        next["spec"]["minReadySeconds"] = min_ready;
        auto written = context_.client.Update(resources::kReplicaSets, NamespaceOf(next), next);
        if (!written.ok()) return written.status();
        existing = std::make_shared<const json>(std::move(*written));
        Remember(rs_list, existing);
      }
      if (Status s = SetDeploymentRevision(
              d, StringField(*existing, {"metadata", "annotations", kRevisionAnnotation}));
          !s.ok()) {
        return s;
      }
      // A Deployment that never had a Progressing condition starts the clock now.
      if (HasProgressDeadline(d) && FindCondition(d["status"], "Progressing") == nullptr) {
        SetCondition(d["status"],
                     NewCondition("Progressing", "True", kFoundNewReplicaSet,
                                  fmt::format("Found new replica set \"{}\"", NameOf(*existing)),
                                  options_.now()));
        if (Status s = UpdateStatus(d); !s.ok()) return s;
      }
      *out = existing;
      return Status::Ok();
    }
    if (!create) return Status::Ok();

    // A new ReplicaSet for the current template.
    std::optional<int64_t> collisions;
    if (Field(d, {"status", "collisionCount"}).is_number_integer()) {
      collisions = IntField(d, {"status", "collisionCount"});
    }
    const std::string hash = ComputeHash(Field(d, {"spec", "template"}), collisions);
    json pod_template = Field(d, {"spec", "template"});
    pod_template["metadata"]["labels"][kPodTemplateHashLabel] = hash;
    json selector = Field(d, {"spec", "selector"});
    selector["matchLabels"][kPodTemplateHashLabel] = hash;
    const std::string rs_name = NameOf(d) + "-" + hash;
    json rs = {
        {"apiVersion", kApiVersion},
        {"kind", "ReplicaSet"},
        {"metadata",
         {{"name", rs_name},
          {"namespace", NamespaceOf(d)},
          {"labels", pod_template["metadata"]["labels"]},
          {"ownerReferences", json::array({NewControllerRef(d, kApiVersion, "Deployment")})}}},
        {"spec",
         {{"replicas", 0},
          {"minReadySeconds", IntField(d, {"spec", "minReadySeconds"})},
          {"selector", std::move(selector)},
          {"template", std::move(pod_template)}}}};
    auto new_replicas = NewRSNewReplicas(d, WithNew(old_rss, std::make_shared<const json>(rs)), rs);
    if (!new_replicas.ok()) return new_replicas.status();
    rs["spec"]["replicas"] = *new_replicas;
    SetNewReplicaSetAnnotations(d, rs, new_revision, false);

    ObjectPtr created;
    bool already_exists = false;
    auto written = context_.client.Create(resources::kReplicaSets, NamespaceOf(d), rs);
    if (written.ok()) {
      created = std::make_shared<const json>(std::move(*written));
    } else if (written.status().code() == StatusCode::kAlreadyExists) {
      // Ours, not seen by the cache yet; or another template's: a hash collision.
      ObjectPtr found = rss_.Get(NamespaceOf(d), rs_name);
      if (!found) {
        auto fetched = context_.client.Get(resources::kReplicaSets, NamespaceOf(d), rs_name);
        if (!fetched.ok()) return fetched.status();
        found = std::make_shared<const json>(std::move(*fetched));
      }
      const json* ref = GetControllerOf(*found);
      if (ref != nullptr && StringField(*ref, {"uid"}) == UidOf(d) &&
          EqualIgnoreHash(Field(d, {"spec", "template"}), Field(*found, {"spec", "template"}))) {
        created = found;
        already_exists = true;
      } else {
        d["status"]["collisionCount"] = collisions.value_or(0) + 1;
        if (Status s = UpdateStatus(d); !s.ok()) return s;
        return AlreadyExists(
            fmt::format("hash collision for replica set {}; retrying with "
                        "collisionCount {}",
                        rs_name, collisions.value_or(0) + 1));
      }
    } else {
      std::string message = fmt::format("Failed to create new replica set \"{}\": {}", rs_name,
                                        written.status().message());
      if (HasProgressDeadline(d)) {
        SetCondition(d["status"], NewCondition("Progressing", "False", kFailedRSCreate, message,
                                               options_.now()));
        (void)UpdateStatus(d);  // best effort: the create error is what counts
      }
      context_.events.Record(EventRef(d, kApiVersion, "Deployment"), "Warning", "FailedCreate",
                             message);
      return written.status();
    }
    if (!already_exists && *new_replicas > 0) {
      context_.events.Record(
          EventRef(d, kApiVersion, "Deployment"), "Normal", "ScalingReplicaSet",
          fmt::format("Scaled up replica set {} from 0 to {}", rs_name, *new_replicas));
    }
    Remember(rs_list, created);
    if (Status s = SetDeploymentRevision(d, new_revision); !s.ok()) return s;
    if (!already_exists && HasProgressDeadline(d)) {
      SetCondition(d["status"], NewCondition("Progressing", "True", kNewReplicaSetCreated,
                                             fmt::format("Created new replica set \"{}\"", rs_name),
                                             options_.now()));
      if (Status s = UpdateStatus(d); !s.ok()) return s;
    }
    *out = created;
    return Status::Ok();
  }

  // ---- Pause and scaling.

  Status CheckPausedConditions(json& d) {
    if (!HasProgressDeadline(d)) return Status::Ok();
    const json* cond = FindCondition(Field(d, {"status"}), "Progressing");
    // A reported timeout stays: pausing must not hide it.
    if (cond != nullptr && StringField(*cond, {"reason"}) == kProgressDeadlineExceeded) {
      return Status::Ok();
    }
    const bool paused_reported =
        cond != nullptr && StringField(*cond, {"reason"}) == kDeploymentPaused;
    const bool paused = BoolField(d, {"spec", "paused"});
    if (paused && !paused_reported) {
      SetCondition(d["status"], NewCondition("Progressing", "Unknown", kDeploymentPaused,
                                             "Deployment is paused", options_.now()));
    } else if (!paused && paused_reported) {
      // A fresh lastUpdateTime: the time spent paused does not count against the deadline.
      SetCondition(d["status"], NewCondition("Progressing", "Unknown", kDeploymentResumed,
                                             "Deployment is resumed", options_.now()));
    } else {
      return Status::Ok();
    }
    return UpdateStatus(d);
  }

  Status IsScalingEvent(json& d, RsList& rs_list, bool* scaling) {
    ObjectPtr new_rs;
    RsList old_rss;
    if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, false, &new_rs, &old_rss);
        !s.ok()) {
      return s;
    }
    for (const ObjectPtr& rs : FilterActive(WithNew(old_rss, new_rs))) {
      auto desired = IntAnnotation(*rs, kDesiredReplicasAnnotation);
      if (desired && *desired != Replicas(d)) {
        *scaling = true;
        return Status::Ok();
      }
    }
    *scaling = false;
    return Status::Ok();
  }

  // A paused Deployment or a resize: no rollout progress, only the sizes change.
  Status SyncScale(json& d, RsList& rs_list) {
    ObjectPtr new_rs;
    RsList old_rss;
    if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, false, &new_rs, &old_rss);
        !s.ok()) {
      return s;
    }
    if (Status s = Scale(d, new_rs, old_rss, rs_list); !s.ok()) return s;
    new_rs = Latest(rs_list, new_rs);
    Refresh(rs_list, old_rss);
    if (BoolField(d, {"spec", "paused"})) {
      if (Status s = CleanupDeployment(d, old_rss); !s.ok()) return s;
    }
    return SyncDeploymentStatus(d, WithNew(old_rss, new_rs), new_rs);
  }

  Status SyncStatusOnly(json& d, RsList& rs_list) {
    ObjectPtr new_rs;
    RsList old_rss;
    if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, false, &new_rs, &old_rss);
        !s.ok()) {
      return s;
    }
    return SyncDeploymentStatus(d, WithNew(old_rss, new_rs), new_rs);
  }

  Status Scale(const json& d, const ObjectPtr& new_rs, const RsList& old_rss, RsList& rs_list) {
    const int64_t replicas = Replicas(d);
    if (ObjectPtr only = FindActiveOrLatest(new_rs, old_rss)) {
      // One ReplicaSet has everything (or none has anything): it takes the new size.
      if (Replicas(*only) == replicas) return Status::Ok();
      return ScaleAndRecord(d, only, replicas, rs_list, nullptr);
    }
    if (IsSaturated(d, new_rs)) {
      for (ObjectPtr rs : FilterActive(old_rss)) {
        if (Status s = ScaleAndRecord(d, rs, 0, rs_list, nullptr); !s.ok()) return s;
      }
      return Status::Ok();
    }
    if (!IsRollingUpdate(d)) return Status::Ok();
    // Mid-rollout resize: spread the difference over the active ReplicaSets by their size.
    RsList all = FilterActive(WithNew(old_rss, new_rs));
    const int64_t allowed = replicas > 0 ? replicas + MaxSurge(d) : 0;
    const int64_t to_add = allowed - SpecReplicaSum(all);
    std::string operation;
    if (to_add > 0) {
      SortBySizeNewer(all);
      operation = "up";
    } else if (to_add < 0) {
      SortBySizeOlder(all);
      operation = "down";
    }
    std::vector<int64_t> sizes;
    int64_t added = 0;
    for (const ObjectPtr& rs : all) {
      int64_t proportion = to_add != 0 ? GetProportion(*rs, d, to_add, added) : 0;
      sizes.push_back(Replicas(*rs) + proportion);
      added += proportion;
    }
    for (size_t i = 0; i < all.size(); ++i) {
      if (i == 0 && to_add != 0) {
        // What rounding left over goes to the largest.
        sizes[0] = std::max<int64_t>(sizes[0] + to_add - added, 0);
      }
      if (Status s = ScaleReplicaSet(d, all[i], sizes[i], operation, rs_list, nullptr); !s.ok()) {
        return s;
      }
    }
    return Status::Ok();
  }

  // ---- Strategies.

  Status RolloutRolling(json& d, RsList& rs_list) {
    ObjectPtr new_rs;
    RsList old_rss;
    if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, true, &new_rs, &old_rss); !s.ok()) {
      return s;
    }
    bool scaled_up = false;
    if (Status s = ReconcileNewReplicaSet(d, new_rs, old_rss, rs_list, &scaled_up); !s.ok()) {
      return s;
    }
    new_rs = Latest(rs_list, new_rs);
    if (scaled_up) return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);

    bool scaled_down = false;
    if (Status s = ReconcileOldReplicaSets(d, new_rs, old_rss, rs_list, &scaled_down); !s.ok()) {
      return s;
    }
    Refresh(rs_list, old_rss);
    if (scaled_down) return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);

    if (DeploymentComplete(d, Field(d, {"status"}))) {
      if (Status s = CleanupDeployment(d, old_rss); !s.ok()) return s;
    }
    return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);
  }

  Status ReconcileNewReplicaSet(const json& d, ObjectPtr new_rs, const RsList& old_rss,
                                RsList& rs_list, bool* scaled) {
    const int64_t replicas = Replicas(d);
    if (!new_rs || Replicas(*new_rs) == replicas) return Status::Ok();
    if (Replicas(*new_rs) > replicas) return ScaleAndRecord(d, new_rs, replicas, rs_list, scaled);
    auto count = NewRSNewReplicas(d, WithNew(old_rss, new_rs), *new_rs);
    if (!count.ok()) return count.status();
    return ScaleAndRecord(d, new_rs, *count, rs_list, scaled);
  }

  Status ReconcileOldReplicaSets(const json& d, const ObjectPtr& new_rs, const RsList& all_old,
                                 RsList& rs_list, bool* scaled) {
    RsList old_rss = FilterActive(all_old);
    if (SpecReplicaSum(old_rss) == 0) return Status::Ok();  // nothing left to scale down
    const int64_t all_pods = SpecReplicaSum(WithNew(old_rss, new_rs));
    const int64_t min_available = Replicas(d) - MaxUnavailable(d);
    const int64_t new_unavailable =
        Replicas(*new_rs) - IntField(*new_rs, {"status", "availableReplicas"});
    // Scaling down more would take availability below the minimum, counting the new pods
    // that are not available yet as missing.
    const int64_t max_scaled_down = all_pods - min_available - new_unavailable;
    if (max_scaled_down <= 0) return Status::Ok();

    // First the old replicas that are not available anyway: removing them costs nothing.
    int64_t cleaned = 0;
    SortByCreation(old_rss);
    for (ObjectPtr& rs : old_rss) {
      if (cleaned >= max_scaled_down) break;
      const int64_t size = Replicas(*rs);
      const int64_t available = IntField(*rs, {"status", "availableReplicas"});
      if (size == 0 || size == available) continue;
      const int64_t n = std::min(max_scaled_down - cleaned, size - available);
      if (n <= 0) continue;
      if (Status s = ScaleAndRecord(d, rs, size - n, rs_list, nullptr); !s.ok()) return s;
      cleaned += n;
    }

    // Then available ones, as far as maxUnavailable allows.
    int64_t scaled_down = 0;
    const int64_t available = AvailableReplicaSum(WithNew(old_rss, new_rs));
    if (available > min_available) {
      const int64_t total = available - min_available;
      for (ObjectPtr& rs : old_rss) {
        if (scaled_down >= total) break;
        if (Replicas(*rs) == 0) continue;
        const int64_t n = std::min(Replicas(*rs), total - scaled_down);
        if (Status s = ScaleAndRecord(d, rs, Replicas(*rs) - n, rs_list, nullptr); !s.ok()) {
          return s;
        }
        scaled_down += n;
      }
    }
    *scaled = cleaned + scaled_down > 0;
    return Status::Ok();
  }

  Status RolloutRecreate(json& d, RsList& rs_list) {
    ObjectPtr new_rs;
    RsList old_rss;
    if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, false, &new_rs, &old_rss);
        !s.ok()) {
      return s;
    }
    // Every old pod goes first.
    bool scaled_down = false;
    for (ObjectPtr rs : FilterActive(old_rss)) {
      if (Status s = ScaleAndRecord(d, rs, 0, rs_list, &scaled_down); !s.ok()) return s;
    }
    Refresh(rs_list, old_rss);
    if (scaled_down) return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);
    if (OldPodsRunning(new_rs, old_rss)) {
      return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);
    }
    // Then the new ReplicaSet gets everything.
    if (!new_rs) {
      if (Status s = GetAllReplicaSetsAndSyncRevision(d, rs_list, true, &new_rs, &old_rss);
          !s.ok()) {
        return s;
      }
    }
    if (Status s = ScaleAndRecord(d, new_rs, Replicas(d), rs_list, nullptr); !s.ok()) return s;
    new_rs = Latest(rs_list, new_rs);
    if (DeploymentComplete(d, Field(d, {"status"}))) {
      if (Status s = CleanupDeployment(d, old_rss); !s.ok()) return s;
    }
    return SyncRolloutStatus(d, WithNew(old_rss, new_rs), new_rs);
  }

  // Whether a pod of an old ReplicaSet may still run (anything not Succeeded or Failed,
  // including pods still terminating).
  bool OldPodsRunning(const ObjectPtr& new_rs, const RsList& old_rss) const {
    if (StatusReplicaSum(old_rss) > 0) return true;
    for (const ObjectPtr& rs : old_rss) {
      if (new_rs && UidOf(*rs) == UidOf(*new_rs)) continue;
      for (const ObjectPtr& pod : pods_.ByIndex(kControllerIndex, UidOf(*rs))) {
        std::string phase = PodPhase(*pod);
        if (phase != "Succeeded" && phase != "Failed") return true;
      }
    }
    return false;
  }

  // Deletes the oldest unused ReplicaSets beyond spec.revisionHistoryLimit.
  Status CleanupDeployment(const json& d, const RsList& old_rss) {
    if (!HasRevisionHistoryLimit(d)) return Status::Ok();
    RsList cleanable;
    for (const ObjectPtr& rs : old_rss) {
      if (!IsBeingDeleted(*rs)) cleanable.push_back(rs);
    }
    const int64_t diff =
        static_cast<int64_t>(cleanable.size()) - IntField(d, {"spec", "revisionHistoryLimit"});
    if (diff <= 0) return Status::Ok();
    SortByRevision(cleanable);
    for (int64_t i = 0; i < diff; ++i) {
      const json& rs = *cleanable[i];
      // Only ReplicaSets with nothing left, whose last change their controller has seen.
      if (IntField(rs, {"status", "replicas"}) != 0 || Replicas(rs) != 0 ||
          IntField(rs, {"metadata", "generation"}) >
              IntField(rs, {"status", "observedGeneration"})) {
        continue;
      }
      auto deleted = context_.client.Delete(resources::kReplicaSets, NamespaceOf(rs), NameOf(rs));
      if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
        return deleted.status();
      }
    }
    return Status::Ok();
  }

  // ---- Status.

  Status SyncDeploymentStatus(json& d, const RsList& all_rss, const ObjectPtr& new_rs) {
    json status = CalculateStatus(all_rss, new_rs, d, options_.now());
    if (DropEmpty(Field(d, {"status"})) == DropEmpty(status)) return Status::Ok();
    d["status"] = std::move(status);
    return UpdateStatus(d);
  }

  // The first ReplicaFailure of the new ReplicaSet, else of any other, as a Deployment condition.
  static std::optional<json> ReplicaFailure(const RsList& all_rss, const ObjectPtr& new_rs) {
    RsList order = new_rs ? RsList{new_rs} : RsList{};
    order.insert(order.end(), all_rss.begin(), all_rss.end());
    for (const ObjectPtr& rs : order) {
      if (!rs) continue;
      const json* c = FindCondition(Field(*rs, {"status"}), "ReplicaFailure");
      if (c == nullptr) continue;
      return json{{"type", "ReplicaFailure"},
                  {"status", StringField(*c, {"status"})},
                  {"lastUpdateTime", Field(*c, {"lastTransitionTime"})},
                  {"lastTransitionTime", Field(*c, {"lastTransitionTime"})},
                  {"reason", StringField(*c, {"reason"})},
                  {"message", StringField(*c, {"message"})}};
    }
    return std::nullopt;
  }

  Status SyncRolloutStatus(json& d, const RsList& all_rss, const ObjectPtr& new_rs) {
    const auto now = options_.now();
    json status = CalculateStatus(all_rss, new_rs, d, now);
    const bool deadline = HasProgressDeadline(d);
    if (!deadline) RemoveCondition(status, "Progressing");
    const json* current = FindCondition(Field(d, {"status"}), "Progressing");
    const bool complete = IntField(status, {"replicas"}) == IntField(status, {"updatedReplicas"}) &&
                          current != nullptr &&
                          StringField(*current, {"reason"}) == kNewReplicaSetAvailable;
    if (deadline && !complete) {
      const std::string what = new_rs ? fmt::format("ReplicaSet \"{}\"", NameOf(*new_rs))
                                      : fmt::format("Deployment \"{}\"", NameOf(d));
      if (DeploymentComplete(d, status)) {
        SetCondition(status,
                     NewCondition("Progressing", "True", kNewReplicaSetAvailable,
                                  fmt::format("{} has successfully progressed.", what), now));
      } else if (DeploymentProgressing(d, status)) {
        // Progress moves lastUpdateTime (the deadline's clock) even with the same reason.
        json condition = NewCondition("Progressing", "True", kReplicaSetUpdated,
                                      fmt::format("{} is progressing.", what), now);
        if (current != nullptr) {
          if (StringField(*current, {"status"}) == "True") {
            condition["lastTransitionTime"] = (*current)["lastTransitionTime"];
          }
          RemoveCondition(status, "Progressing");
        }
        SetCondition(status, std::move(condition));
      } else if (DeploymentTimedOut(d, status, now)) {
        SetCondition(status, NewCondition("Progressing", "False", kProgressDeadlineExceeded,
                                          fmt::format("{} has timed out progressing.", what), now));
      }
    }
    if (auto failure = ReplicaFailure(all_rss, new_rs)) {
      SetCondition(status, std::move(*failure));
    } else {
      RemoveCondition(status, "ReplicaFailure");
    }
    if (DropEmpty(Field(d, {"status"})) == DropEmpty(status)) {
      RequeueStuck(d, status, now);
      return Status::Ok();
    }
    d["status"] = std::move(status);
    return UpdateStatus(d);
  }

  // A rollout that makes no progress produces no events: look again when its deadline passes.
  void RequeueStuck(const json& d, const json& status, TimePoint now) {
    const json* cond = FindCondition(status, "Progressing");
    if (!HasProgressDeadline(d) || cond == nullptr) return;
    const std::string reason = StringField(*cond, {"reason"});
    if (DeploymentComplete(d, status) || reason == kProgressDeadlineExceeded) return;
    auto from = ParseTime(StringField(*cond, {"lastUpdateTime"}));
    if (!from) return;
    auto due = *from + std::chrono::seconds(IntField(d, {"spec", "progressDeadlineSeconds"}));
    auto after = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
    loop_.AddAfter(ObjectKey(d),
                   std::max(after, std::chrono::milliseconds(0)) + std::chrono::seconds(1));
  }

  ControllerContext& context_;
  const DeploymentControllerOptions options_;
  Informer& deployments_;
  Informer& rss_;
  Informer& pods_;
  ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewDeploymentController(ControllerContext& context,
                                                   DeploymentControllerOptions options) {
  return std::make_unique<DeploymentController>(context, std::move(options));
}

std::unique_ptr<Component> NewDeploymentController(ControllerContext& context) {
  return NewDeploymentController(context, {});
}

}  // namespace orch
