// The StatefulSet controller: claims member pods and revisions, keeps the update revision in
// the ControllerRevision history, carries out the steps statefulset_util's PlanSync chooses
// (claims before pods, upstream's events), applies the claim retention policy and writes status.
#include "statefulset_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "controller_history.h"
#include "orch/log.h"
#include "statefulset_util.h"

namespace orch {
namespace {

using ctrl::Field;
using ctrl::IntField;
using ctrl::json;
using ctrl::StringField;
namespace sts = ctrl::sts;
namespace history = ctrl::history;

constexpr char kComponent[] = "statefulset";
constexpr char kApiVersion[] = "apps/v1";
constexpr char kKind[] = "StatefulSet";

class StatefulSetController : public Component {
 public:
  StatefulSetController(ControllerContext& context, StatefulSetControllerOptions options)
      : context_(context),
        options_(std::move(options)),
        pods_(context.informers.For(resources::kPods)),
        sets_(context.informers.For(resources::kStatefulSets)),
        revisions_(context.informers.For(resources::kControllerRevisions)),
        claims_(context.informers.For(resources::kPersistentVolumeClaims)),
        expectations_(options_.now),
        loop_(
            kComponent, context.informers, context.workers, options_.resync_period,
            [this] { return ctrl::InformerKeys(sets_); },
            [this](const std::string& key) { return Sync(key); }) {
    ctrl::AddControllerIndex(pods_);
    ctrl::AddControllerIndex(sets_);
    ctrl::AddControllerIndex(revisions_);
  }

  std::string_view Name() const override { return kComponent; }

  Status Start() override {
    sets_.AddHandler({
        [this](const ObjectPtr& s) { loop_.Add(ObjectKey(*s)); },
        [this](const ObjectPtr& old_s, const ObjectPtr& s) {
          if (ctrl::UidOf(*old_s) != ctrl::UidOf(*s)) expectations_.Delete(ObjectKey(*old_s));
          loop_.Add(ObjectKey(*s));
        },
        [this](const ObjectPtr& s) {
          expectations_.Delete(ObjectKey(*s));
          loop_.Add(ObjectKey(*s));
        },
    });
    // An orphan is adopted only by the set its name makes it a member of.
    pods_.AddHandler(ctrl::OwnedPodHandlers(
        {sets_, kKind, loop_, expectations_, expectations_, nullptr,
         [](const json& set, const json& pod) { return sts::IsMemberOf(set, pod); }}));
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  json SetRef(const json& set) const { return ctrl::EventRef(set, kApiVersion, kKind); }

  // What one sync of a set works with.
  struct SetState {
    const json& set;
    std::string key;
    std::vector<ObjectPtr> pods;  // claimed members
    std::string current_revision;
    std::string update_revision;
    json current_template;  // the pod template of the current revision
  };

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr owner = sets_.Get(ns, name);
    if (!owner) {
      expectations_.Delete(key);
      return Status::Ok();
    }
    const json& set = *owner;
    auto selector = LabelSelector::FromJson(Field(set, {"spec", "selector"}));
    if (!selector.ok()) {
      // Retrying cannot fix a selector the API accepted but we cannot read.
      log::Warn(kComponent, "{}: invalid selector: {}", key, selector.status().message());
      return Status::Ok();
    }

    // Pods: those we control, and orphans whose names make them members.
    std::vector<ObjectPtr> candidates;
    for (ObjectPtr& p : ctrl::OwnedAndOrphans(pods_, set)) {
      if (ctrl::GetControllerOf(*p) != nullptr || sts::IsMemberOf(set, *p)) {
        candidates.push_back(std::move(p));
      }
    }
    ctrl::RefManager refs(context_.client, resources::kPods, set, kApiVersion, kKind, *selector,
                          ctrl::RecheckOwner(context_.client, resources::kStatefulSets, set));
    Status claim_error;
    std::vector<ObjectPtr> claimed = refs.Claim(candidates, &claim_error);
    if (!claim_error.ok()) return claim_error;
    SetState state{set, key, {}, "", "", json()};
    for (ObjectPtr& p : claimed) {
      if (sts::IsMemberOf(set, *p)) state.pods.push_back(std::move(p));
    }

    // Revisions: the update revision is the one of the set's template, made if new.
    const history::Owner history_owner{set, kApiVersion, kKind};
    Status revision_error;
    history::RevisionList revisions =
        history::ClaimRevisions(context_.client, revisions_, history_owner,
                                resources::kStatefulSets, *selector, &revision_error);
    if (!revision_error.ok()) return revision_error;
    const int64_t old_collisions = IntField(set, {"status", "collisionCount"}, 0);
    int64_t collisions = old_collisions;
    auto ensured = history::EnsureCurrentRevision(
        context_.client, history_owner, Field(set, {"spec", "template", "metadata", "labels"}),
        Field(set, {"metadata", "annotations"}), history::TemplateRevisionData(set), revisions,
        &collisions);
    if (!ensured.ok()) {
      if (collisions != old_collisions) {
        // The next sync must hash with the new count, or it meets the same collision.
        json status = Field(set, {"status"}).is_object() ? Field(set, {"status"}) : json::object();
        status["collisionCount"] = collisions;
        (void)UpdateStatus(set, status);
      }
      return ensured.status();
    }
    ObjectPtr update = ensured->revision;
    ObjectPtr current = update;
    const std::string status_current = StringField(set, {"status", "currentRevision"});
    for (const ObjectPtr& r : ensured->revisions) {
      if (!status_current.empty() && ctrl::NameOf(*r) == status_current) current = r;
    }
    state.update_revision = ctrl::NameOf(*update);
    state.current_revision = ctrl::NameOf(*current);
    state.current_template = history::TemplateFromRevision(*current);
    if (state.current_template.is_null()) state.current_template = Field(set, {"spec", "template"});

    Status manage_error;
    if (expectations_.Satisfied(key)) {
      manage_error = ApplyRetentionPolicy(state);
      if (manage_error.ok()) manage_error = Manage(state);
    }

    const auto now = options_.now();
    json status = sts::ComputeStatus(set, state.pods, state.current_revision, state.update_revision,
                                     collisions, now);
    if (Status s = UpdateStatus(set, status); !s.ok()) return s;
    if (sts::MinReadySeconds(set) > 0 &&
        status.value("readyReplicas", 0) > status.value("availableReplicas", 0)) {
      loop_.AddAfter(key, std::chrono::seconds(sts::MinReadySeconds(set)));
    }

    std::set<std::string> in_use = {state.current_revision, state.update_revision,
                                    StringField(status, {"currentRevision"})};
    for (const ObjectPtr& p : state.pods) in_use.insert(sts::PodRevision(*p));
    Status truncate = history::TruncateHistory(context_.client, ensured->revisions, in_use,
                                               history::RevisionHistoryLimit(set));
    if (!truncate.ok())
      log::Warn(kComponent, "{}: truncating history: {}", key, truncate.message());
    return manage_error;
  }

  Status UpdateStatus(const json& set, const json& status) {
    if (ctrl::DropEmpty(Field(set, {"status"})) == ctrl::DropEmpty(status)) return Status::Ok();
    json next = set;
    next["status"] = status;
    auto written =
        context_.client.Update(resources::kStatefulSets, ctrl::NamespaceOf(set), next, "status");
    if (written.ok()) return Status::Ok();
    // A conflict or a vanished set means a newer version is on its way through the informer,
    // whose event syncs the set again.
    StatusCode code = written.status().code();
    if (code == StatusCode::kConflict || code == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }

  // Carries out PlanSync's steps. Creations are expected before they are made, so a cache that
  // has not seen them yet does not create twice; deletions carry the pod's uid as a
  // precondition, so a stale cache can never delete a successor of the same name.
  Status Manage(const SetState& state) {
    sts::Plan plan = sts::PlanSync(
        {state.set, state.pods, state.current_revision, state.update_revision, options_.now()});
    if (!plan.waiting.empty()) log::Debug(kComponent, "{}: waiting: {}", state.key, plan.waiting);
    std::vector<const sts::Step*> creates, deletes;
    Status first_error;
    for (const sts::Step& step : plan.steps) {
      switch (step.type) {
        case sts::Step::Type::kCreate:
          creates.push_back(&step);
          break;
        case sts::Step::Type::kFixIdentity:
          if (Status s = FixIdentity(state.set, *step.pod); !s.ok() && first_error.ok()) {
            first_error = s;
          }
          break;
        default:
          deletes.push_back(&step);
          break;
      }
    }
    if (!creates.empty()) {
      expectations_.ExpectCreations(state.key, static_cast<int>(creates.size()));
    } else if (!deletes.empty()) {
      std::vector<std::string> keys;
      for (const sts::Step* d : deletes) keys.push_back(ObjectKey(*d->pod));
      expectations_.ExpectDeletions(state.key, keys);
    }
    std::mutex mu;
    auto keep_error = [&](const Status& s) {
      std::lock_guard lock(mu);
      if (first_error.ok()) first_error = s;
    };
    ctrl::RunParallel(static_cast<int>(creates.size()), 16, [&](int i) {
      if (Status s = CreatePod(state, *creates[static_cast<size_t>(i)]); !s.ok()) keep_error(s);
    });
    ctrl::RunParallel(static_cast<int>(deletes.size()), 16, [&](int i) {
      const sts::Step& step = *deletes[static_cast<size_t>(i)];
      if (Status s = DeletePod(state, step); !s.ok()) keep_error(s);
    });
    return first_error;
  }

  // The claims of the pod at `ordinal`, created where missing. kUnavailable while a claim of a
  // previous pod at this ordinal is on its way out (being deleted, or owned by that pod under
  // whenScaled: Delete): the new pod must not mount a claim about to vanish.
  Status CreateClaims(const json& set, int64_t ordinal) {
    const std::string pod_name = sts::PodName(set, ordinal);
    for (const json& claim : sts::ClaimsFor(set, ordinal)) {
      const std::string claim_name = ctrl::NameOf(claim);
      if (ObjectPtr existing = claims_.Get(ctrl::NamespaceOf(set), claim_name)) {
        bool stale = ctrl::IsBeingDeleted(*existing);
        const json* controller = ctrl::GetControllerOf(*existing);
        if (controller != nullptr && StringField(*controller, {"kind"}) == "Pod") stale = true;
        if (stale) {
          return Unavailable(
              fmt::format("pvc {} of pod {} is being deleted", claim_name, pod_name));
        }
        continue;
      }
      auto created =
          context_.client.Create(resources::kPersistentVolumeClaims, ctrl::NamespaceOf(set), claim);
      if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
        context_.events.Record(
            SetRef(set), "Warning", "FailedCreate",
            fmt::format("create Claim {} for Pod {} in StatefulSet {} failed "
                        "error: {}",
                        claim_name, pod_name, ctrl::NameOf(set), created.status().message()));
        return created.status();
      }
      if (created.ok()) {
        context_.events.Record(SetRef(set), "Normal", "SuccessfulCreate",
                               fmt::format("create Claim {} Pod {} in StatefulSet {} success",
                                           claim_name, pod_name, ctrl::NameOf(set)));
      }
    }
    return Status::Ok();
  }

  // Creates the claims and the pod of a kCreate step. Every path that creates no pod marks the
  // expected creation observed, since no informer event will.
  Status CreatePod(const SetState& state, const sts::Step& step) {
    const json& set = state.set;
    if (Status s = CreateClaims(set, step.ordinal); !s.ok()) {
      expectations_.CreationObserved(state.key);
      if (s.code() != StatusCode::kUnavailable) return s;
      // Not an error of ours: the garbage collector removes the claim soon.
      log::Info(kComponent, "{}: {}", state.key, s.message());
      loop_.AddAfter(state.key, std::chrono::seconds(1));
      return Status::Ok();
    }
    const json& pod_template = step.revision == state.update_revision
                                   ? Field(set, {"spec", "template"})
                                   : state.current_template;
    const json pod = sts::NewPod(set, pod_template, step.revision, step.ordinal,
                                 ctrl::NewControllerRef(set, kApiVersion, kKind));
    auto created = context_.client.Create(resources::kPods, ctrl::NamespaceOf(set), pod);
    const std::string pod_name = ctrl::NameOf(pod);
    if (created.ok()) {
      context_.events.Record(
          SetRef(set), "Normal", "SuccessfulCreate",
          fmt::format("create Pod {} in StatefulSet {} successful", pod_name, ctrl::NameOf(set)));
      return Status::Ok();
    }
    expectations_.CreationObserved(state.key);
    // Our cache has not seen it yet: nothing to do.
    if (created.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
    context_.events.Record(SetRef(set), "Warning", "FailedCreate",
                           fmt::format("create Pod {} in StatefulSet {} failed error: {}", pod_name,
                                       ctrl::NameOf(set), created.status().message()));
    return created.status();
  }

  Status DeletePod(const SetState& state, const sts::Step& step) {
    const json& set = state.set;
    const json& pod = *step.pod;
    const std::string pod_key = ObjectKey(pod);
    if (step.type == sts::Step::Type::kDeleteFailed) {
      context_.events.Record(
          SetRef(set), "Warning", "RecreatingFailedPod",
          fmt::format("StatefulSet {} is recreating failed Pod {}", state.key, ctrl::NameOf(pod)));
    }
    DeleteOptions options;
    options.precondition_uid = ctrl::UidOf(pod);
    auto deleted = context_.client.Delete(resources::kPods, ctrl::NamespaceOf(pod),
                                          ctrl::NameOf(pod), options);
    if (deleted.ok()) {
      context_.events.Record(SetRef(set), "Normal", "SuccessfulDelete",
                             fmt::format("delete Pod {} in StatefulSet {} successful",
                                         ctrl::NameOf(pod), ctrl::NameOf(set)));
      return Status::Ok();
    }
    expectations_.DeletionObserved(state.key, pod_key);
    // Gone already, or replaced by a successor of the same name: the cache was behind.
    const StatusCode code = deleted.status().code();
    if (code == StatusCode::kNotFound || code == StatusCode::kConflict) return Status::Ok();
    context_.events.Record(
        SetRef(set), "Warning", "FailedDelete",
        fmt::format("delete Pod {} in StatefulSet {} failed error: {}", ctrl::NameOf(pod),
                    ctrl::NameOf(set), deleted.status().message()));
    return deleted.status();
  }

  // Puts back the pod-name and pod-index labels a user removed (Services select by them).
  Status FixIdentity(const json& set, const json& pod) {
    const int64_t ordinal = sts::OrdinalOf(pod);
    json patch = {{"metadata",
                   {{"resourceVersion", StringField(pod, {"metadata", "resourceVersion"})},
                    {"labels",
                     {{sts::kPodNameLabel, ctrl::NameOf(pod)},
                      {sts::kPodIndexLabel, std::to_string(ordinal)}}}}}};
    auto patched = context_.client.Patch(resources::kPods, ctrl::NamespaceOf(pod),
                                         ctrl::NameOf(pod), PatchType::kMerge, patch.dump());
    if (patched.ok()) {
      context_.events.Record(SetRef(set), "Normal", "SuccessfulUpdate",
                             fmt::format("update Pod {} in StatefulSet {} successful",
                                         ctrl::NameOf(pod), ctrl::NameOf(set)));
      return Status::Ok();
    }
    const StatusCode code = patched.status().code();
    if (code == StatusCode::kNotFound || code == StatusCode::kConflict) return Status::Ok();
    return patched.status();
  }

  // Owner references on the claims of live pods as persistentVolumeClaimRetentionPolicy wants
  // them, before any pod is deleted: a claim owned by a scaled-away pod goes with it.
  Status ApplyRetentionPolicy(const SetState& state) {
    const json& set = state.set;
    const json& templates = Field(set, {"spec", "volumeClaimTemplates"});
    if (!templates.is_array() || templates.empty()) return Status::Ok();
    Status first_error;
    for (const ObjectPtr& p : state.pods) {
      if (sts::IsTerminating(*p)) continue;
      const int64_t ordinal = sts::OrdinalOf(*p);
      for (const json& t : templates) {
        ObjectPtr claim = claims_.Get(ctrl::NamespaceOf(set), sts::ClaimName(t, set, ordinal));
        if (!claim) continue;
        std::optional<json> owner_refs = sts::ClaimOwnerReferences(*claim, set, *p);
        if (!owner_refs) continue;
        json patch = {{"metadata",
                       {{"resourceVersion", StringField(*claim, {"metadata", "resourceVersion"})},
                        {"ownerReferences", std::move(*owner_refs)}}}};
        auto patched =
            context_.client.Patch(resources::kPersistentVolumeClaims, ctrl::NamespaceOf(set),
                                  ctrl::NameOf(*claim), PatchType::kMerge, patch.dump());
        if (!patched.ok() && patched.status().code() != StatusCode::kNotFound && first_error.ok()) {
          first_error = patched.status();
        }
      }
    }
    return first_error;
  }

  ControllerContext& context_;
  const StatefulSetControllerOptions options_;
  Informer& pods_;
  Informer& sets_;
  Informer& revisions_;
  Informer& claims_;
  ctrl::Expectations expectations_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewStatefulSetController(ControllerContext& context,
                                                    StatefulSetControllerOptions options) {
  return std::make_unique<StatefulSetController>(context, std::move(options));
}

std::unique_ptr<Component> NewStatefulSetController(ControllerContext& context) {
  return NewStatefulSetController(context, {});
}

}  // namespace orch
