// The ReplicaSet and ReplicationController controllers: keep spec.replicas active pods matching
// the selector (adopting orphans, releasing strays), deleting the least valuable first, and
// report replicas, ready and available counts in the status.
#include "replicaset_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "orch/log.h"

namespace orch {

ReplicaKind ReplicaKind::ReplicaSet() {
  return {"replicaset", resources::kReplicaSets, "apps/v1", "ReplicaSet", false};
}

ReplicaKind ReplicaKind::ReplicationController() {
  return {"replicationcontroller", resources::kReplicationControllers, "v1",
          "ReplicationController", true};
}

namespace ctrl {
namespace {

constexpr char kDeletionCostAnnotation[] = "controller.kubernetes.io/pod-deletion-cost";

int PhaseOrdinal(const json& pod) {
  std::string phase = PodPhase(pod);
  if (phase == "Running") return 2;
  if (phase == "Unknown") return 1;
  return 0;  // Pending (or not reported yet)
}

int64_t DeletionCost(const json& pod) {
  std::string text = StringField(pod, {"metadata", "annotations", kDeletionCostAnnotation});
  int64_t cost = 0;
  if (text.empty()) return 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cost);
  if (ec != std::errc() || end != text.data() + text.size()) return 0;
  return cost;
}

std::optional<TimePoint> CreationTime(const json& object) {
  return ParseTime(StringField(object, {"metadata", "creationTimestamp"}));
}

// "t1 goes first": unknown times first, then the later one (upstream's afterOrZero).
bool AfterOrZero(const std::optional<TimePoint>& t1, const std::optional<TimePoint>& t2) {
  if (!t1 || !t2) return !t1;
  return *t1 > *t2;
}

}  // namespace

void SortPodsForDeletion(std::vector<ObjectPtr>& pods, std::vector<int>& ranks) {
  struct Entry {
    ObjectPtr pod;
    int rank;
    bool assigned;
    int phase;
    bool ready;
    int64_t cost;
    std::optional<TimePoint> ready_time;
    int64_t restarts;
    std::optional<TimePoint> created;
  };
  std::vector<Entry> entries;
  entries.reserve(pods.size());
  for (size_t i = 0; i < pods.size(); ++i) {
    const json& p = *pods[i];
    entries.push_back({pods[i], i < ranks.size() ? ranks[i] : 0,
                       !StringField(p, {"spec", "nodeName"}).empty(), PhaseOrdinal(p),
                       IsPodReady(p), DeletionCost(p), PodReadyTime(p), MaxContainerRestarts(p),
                       CreationTime(p)});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.assigned != b.assigned) return !a.assigned;
    if (a.phase != b.phase) return a.phase < b.phase;
    if (a.ready != b.ready) return !a.ready;
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.rank != b.rank) return a.rank > b.rank;
    if (a.ready && b.ready && a.ready_time != b.ready_time) {
      return AfterOrZero(a.ready_time, b.ready_time);
    }
    if (a.restarts != b.restarts) return a.restarts > b.restarts;
    if (a.created != b.created) return AfterOrZero(a.created, b.created);
    return false;
  });
  for (size_t i = 0; i < entries.size(); ++i) {
    pods[i] = std::move(entries[i].pod);
    if (i < ranks.size()) ranks[i] = entries[i].rank;
  }
}

std::vector<ObjectPtr> PodsToDelete(std::vector<ObjectPtr> pods,
                                    const std::vector<ObjectPtr>& related, size_t count) {
  std::vector<int> ranks(pods.size(), 0);
  if (count < pods.size()) {
    // Pods that share a node with many pods of the same owner go first: spreads what remains.
    std::map<std::string, int> per_node;
    for (const ObjectPtr& p : related) {
      std::string node = StringField(*p, {"spec", "nodeName"});
      if (!node.empty() && IsPodActive(*p)) ++per_node[node];
    }
    for (size_t i = 0; i < pods.size(); ++i) {
      std::string node = StringField(*pods[i], {"spec", "nodeName"});
      auto it = per_node.find(node);
      ranks[i] = it == per_node.end() ? 0 : it->second;
    }
  }
  SortPodsForDeletion(pods, ranks);
  if (pods.size() > count) pods.resize(count);
  return pods;
}

json CalculateReplicaStatus(const json& owner, const std::vector<ObjectPtr>& pods,
                            const Status& manage_error, int diff, TimePoint now) {
  const int64_t min_ready = IntField(owner, {"spec", "minReadySeconds"});
  const LabelSelector template_labels =
      LabelSelector::FromMap(Field(owner, {"spec", "template", "metadata", "labels"}));
  int64_t fully_labeled = 0, ready = 0, available = 0;
  for (const ObjectPtr& p : pods) {
    if (template_labels.Matches(LabelsOf(*p))) ++fully_labeled;
    if (IsPodReady(*p)) {
      ++ready;
      if (IsPodAvailable(*p, min_ready, now)) ++available;
    }
  }
  json status = {{"replicas", static_cast<int64_t>(pods.size())},
                 {"fullyLabeledReplicas", fully_labeled},
                 {"readyReplicas", ready},
                 {"availableReplicas", available},
                 {"observedGeneration", IntField(owner, {"metadata", "generation"})}};
  json conditions = json::array();
  const json& old_conditions = Field(owner, {"status", "conditions"});
  bool has_failure = false;
  if (old_conditions.is_array()) {
    for (const json& c : old_conditions) {
      bool failure = StringField(c, {"type"}) == "ReplicaFailure";
      has_failure = has_failure || failure;
      if (failure && manage_error.ok()) continue;  // managing works again
      conditions.push_back(c);
    }
  }
  if (!manage_error.ok() && !has_failure) {
    conditions.push_back({{"type", "ReplicaFailure"},
                          {"status", "True"},
                          {"lastTransitionTime", FormatTime(now)},
                          {"reason", diff < 0 ? "FailedCreate" : "FailedDelete"},
                          {"message", manage_error.message()}});
  }
  if (!conditions.empty()) status["conditions"] = std::move(conditions);
  return status;
}

}  // namespace ctrl

namespace {

using ctrl::Field;
using ctrl::IntField;
using ctrl::json;
using ctrl::StringField;

class ReplicaController : public Component {
 public:
  ReplicaController(ControllerContext& context, ReplicaKind kind,
                    ReplicaSetControllerOptions options)
      : context_(context),
        kind_(std::move(kind)),
        options_(std::move(options)),
        pods_(context.informers.For(resources::kPods)),
        owners_(context.informers.For(kind_.resource)),
        expectations_(options_.now),
        loop_(
            kind_.component, context.informers, context.workers, options_.resync_period,
            [this] { return AllKeys(); }, [this](const std::string& key) { return Sync(key); }) {
    ctrl::AddControllerIndex(pods_);
    ctrl::AddControllerIndex(owners_);
  }

  std::string_view Name() const override { return kind_.component; }

  Status Start() override {
    owners_.AddHandler({
        [this](const ObjectPtr& o) { loop_.Add(ObjectKey(*o)); },
        [this](const ObjectPtr& old_o, const ObjectPtr& o) {
          if (ctrl::UidOf(*old_o) != ctrl::UidOf(*o)) expectations_.Delete(ObjectKey(*old_o));
          loop_.Add(ObjectKey(*o));
        },
        [this](const ObjectPtr& o) {
          expectations_.Delete(ObjectKey(*o));
          loop_.Add(ObjectKey(*o));
        },
    });
    pods_.AddHandler(
        ctrl::OwnedPodHandlers({owners_, kind_.kind, loop_, expectations_, expectations_,
                                [this](const json& owner) { return SelectorOf(owner); }, nullptr}));
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override { loop_.Stop(); }

 private:
  std::vector<std::string> AllKeys() const { return ctrl::InformerKeys(owners_); }

  Result<LabelSelector> SelectorOf(const json& owner) const {
    const json& selector = Field(owner, {"spec", "selector"});
    if (kind_.map_selector) return LabelSelector::FromMap(selector);
    return LabelSelector::FromJson(selector);
  }

  Status Sync(const std::string& key) {
    auto [ns, name] = SplitObjectKey(key);
    ObjectPtr owner = owners_.Get(ns, name);
    if (!owner) {
      expectations_.Delete(key);
      return Status::Ok();
    }
    const bool needs_sync = expectations_.Satisfied(key);
    auto selector = SelectorOf(*owner);
    if (!selector.ok()) {
      // Retrying cannot fix a selector the API accepted but we cannot read.
      log::Warn(kind_.component, "{}: invalid selector: {}", key, selector.status().message());
      return Status::Ok();
    }
    std::vector<ObjectPtr> candidates;
    for (ObjectPtr& p : ctrl::OwnedAndOrphans(pods_, *owner)) {
      if (ctrl::IsPodActive(*p)) candidates.push_back(std::move(p));
    }
    ctrl::RefManager refs(context_.client, resources::kPods, *owner, kind_.api_version, kind_.kind,
                          *selector, ctrl::RecheckOwner(context_.client, kind_.resource, *owner));
    Status claim_error;
    std::vector<ObjectPtr> pods = refs.Claim(candidates, &claim_error);
    if (!claim_error.ok()) return claim_error;

    Status manage_error;
    int diff = 0;
    if (needs_sync && !ctrl::IsBeingDeleted(*owner)) {
      manage_error = ManageReplicas(pods, *owner, key, &diff);
    }
    const auto now = options_.now();
    json status = ctrl::CalculateReplicaStatus(*owner, pods, manage_error, diff, now);
    if (Status s = UpdateStatus(*owner, status); !s.ok()) return s;
    if (manage_error.ok() && IntField(*owner, {"spec", "minReadySeconds"}) > 0 &&
        status.value("readyReplicas", 0) > status.value("availableReplicas", 0)) {
      loop_.AddAfter(key, std::chrono::seconds(IntField(*owner, {"spec", "minReadySeconds"})));
    }
    return manage_error;
  }

  Status UpdateStatus(const json& owner, const json& status) {
    if (ctrl::DropEmpty(Field(owner, {"status"})) == ctrl::DropEmpty(status)) return Status::Ok();
    json next = owner;
    next["status"] = status;
    auto written = context_.client.Update(kind_.resource, ctrl::NamespaceOf(owner), next, "status");
    if (written.ok()) return Status::Ok();
    // A conflict or a vanished owner means a newer version is on its way through the informer,
    // whose event syncs the owner again.
    StatusCode code = written.status().code();
    if (code == StatusCode::kConflict || code == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }

  Status ManageReplicas(const std::vector<ObjectPtr>& pods, const json& owner,
                        const std::string& key, int* diff_out) {
    const int64_t replicas = IntField(owner, {"spec", "replicas"}, 1);
    int diff = static_cast<int>(static_cast<int64_t>(pods.size()) - replicas);
    *diff_out = diff;
    if (diff < 0) return CreatePods(owner, key, std::min(-diff, options_.burst_replicas));
    if (diff > 0) return DeletePods(pods, owner, key, std::min(diff, options_.burst_replicas));
    return Status::Ok();
  }

  Status CreatePods(const json& owner, const std::string& key, int count) {
    // Expect them before creating: the informer may report them before Create returns.
    expectations_.ExpectCreations(key, count);
    const json ref = ctrl::NewControllerRef(owner, kind_.api_version, kind_.kind);
    const json pod = ctrl::PodFromTemplate(Field(owner, {"spec", "template"}), owner, ref);
    const std::string ns = ctrl::NamespaceOf(owner);
    Status error;
    int created = ctrl::SlowStartBatch(
        count, 1,
        [&](int) -> Status {
          auto result = context_.client.Create(resources::kPods, ns, pod);
          if (!result.ok()) {
            context_.events.Record(ctrl::EventRef(owner, kind_.api_version, kind_.kind), "Warning",
                                   "FailedCreate",
                                   fmt::format("Error creating: {}", result.status().message()));
            return result.status();
          }
          context_.events.Record(ctrl::EventRef(owner, kind_.api_version, kind_.kind), "Normal",
                                 "SuccessfulCreate",
                                 fmt::format("Created pod: {}", ctrl::NameOf(*result)));
          return Status::Ok();
        },
        &error);
    // The ones that failed or were never tried will not be observed.
    for (int i = created; i < count; ++i) expectations_.CreationObserved(key);
    if (created < count) {
      log::Warn(kind_.component, "{}: created {} of {} pods: {}", key, created, count,
                error.message());
    }
    return error;
  }

  Status DeletePods(const std::vector<ObjectPtr>& pods, const json& owner, const std::string& key,
                    int count) {
    std::vector<ObjectPtr> victims = ctrl::PodsToDelete(pods, RelatedPods(owner, pods), count);
    std::vector<std::string> victim_keys;
    for (const ObjectPtr& p : victims) victim_keys.push_back(ObjectKey(*p));
    expectations_.ExpectDeletions(key, victim_keys);
    std::mutex mu;
    Status error;
    ctrl::RunParallel(static_cast<int>(victims.size()), 16, [&](int i) {
      const json& pod = *victims[i];
      auto result =
          context_.client.Delete(resources::kPods, ctrl::NamespaceOf(pod), ctrl::NameOf(pod));
      if (result.ok()) {
        context_.events.Record(ctrl::EventRef(owner, kind_.api_version, kind_.kind), "Normal",
                               "SuccessfulDelete",
                               fmt::format("Deleted pod: {}", ctrl::NameOf(pod)));
        return;
      }
      // Not deleted by us: do not wait to observe it.
      expectations_.DeletionObserved(key, victim_keys[i]);
      if (result.status().code() == StatusCode::kNotFound) return;
      context_.events.Record(ctrl::EventRef(owner, kind_.api_version, kind_.kind), "Warning",
                             "FailedDelete",
                             fmt::format("Error deleting: {}", result.status().message()));
      std::lock_guard lock(mu);
      if (error.ok()) error = result.status();
    });
    return error;
  }

  // The active pods of this owner and of its siblings (owners with the same controller, e.g.
  // the ReplicaSets of one Deployment), for spreading what remains after a scale-down.
  std::vector<ObjectPtr> RelatedPods(const json& owner, const std::vector<ObjectPtr>& own) const {
    const json* ref = ctrl::GetControllerOf(owner);
    if (ref == nullptr) return own;
    std::vector<ObjectPtr> related;
    for (const ObjectPtr& sibling :
         owners_.ByIndex(ctrl::kControllerIndex, StringField(*ref, {"uid"}))) {
      for (ObjectPtr& p : pods_.ByIndex(ctrl::kControllerIndex, ctrl::UidOf(*sibling))) {
        if (ctrl::IsPodActive(*p)) related.push_back(std::move(p));
      }
    }
    return related;
  }

  ControllerContext& context_;
  const ReplicaKind kind_;
  const ReplicaSetControllerOptions options_;
  Informer& pods_;
  Informer& owners_;
  ctrl::Expectations expectations_;
  ctrl::ControllerLoop loop_;  // last: its workers use everything above
};

}  // namespace

std::unique_ptr<Component> NewReplicaController(ControllerContext& context, ReplicaKind kind,
                                                ReplicaSetControllerOptions options) {
  return std::make_unique<ReplicaController>(context, std::move(kind), std::move(options));
}

std::unique_ptr<Component> NewReplicaSetController(ControllerContext& context) {
  return NewReplicaController(context, ReplicaKind::ReplicaSet(), {});
}

std::unique_ptr<Component> NewReplicationController(ControllerContext& context) {
  return NewReplicaController(context, ReplicaKind::ReplicationController(), {});
}

}  // namespace orch
