// The garbage collector (garbage_collector.h). Instead of upstream's separate dependency graph it
// indexes every watched informer by owner uid, so "the dependents of X" is an index lookup and
// the informers' own caches are the graph. Decisions that delete are confirmed with live reads.
#include "garbage_collector.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <shared_mutex>

#include "orch/log.h"

namespace orch {

const std::vector<CollectedKind>& DefaultCollectedKinds() {
  static const std::vector<CollectedKind> kKinds = {
      {resources::kPods, "v1", "Pod"},
      {resources::kReplicationControllers, "v1", "ReplicationController"},
      {resources::kReplicaSets, "apps/v1", "ReplicaSet"},
      {resources::kDeployments, "apps/v1", "Deployment"},
      {resources::kDaemonSets, "apps/v1", "DaemonSet"},
      {resources::kStatefulSets, "apps/v1", "StatefulSet"},
      {resources::kControllerRevisions, "apps/v1", "ControllerRevision"},
      {resources::kJobs, "batch/v1", "Job"},
      {resources::kCronJobs, "batch/v1", "CronJob"},
      {resources::kConfigMaps, "v1", "ConfigMap"},
      {resources::kSecrets, "v1", "Secret"},
      {resources::kServices, "v1", "Service"},
      {resources::kEndpoints, "v1", "Endpoints"},
      {resources::kEndpointSlices, "discovery.k8s.io/v1", "EndpointSlice"},
      {resources::kPersistentVolumeClaims, "v1", "PersistentVolumeClaim"},
      {resources::kServiceAccounts, "v1", "ServiceAccount"},
      {resources::kLeases, "coordination.k8s.io/v1", "Lease"},
      {resources::kNodes, "v1", "Node"},
      // Kinds that charts and operators commonly give owners (a Deployment's PDB or HPA, an
      // app's Ingress and RBAC objects): without them such children would outlive their owners.
      {resources::kIngresses, "networking.k8s.io/v1", "Ingress"},
      {{"networking.k8s.io", "v1", "networkpolicies"}, "networking.k8s.io/v1", "NetworkPolicy"},
      {resources::kPodDisruptionBudgets, "policy/v1", "PodDisruptionBudget"},
      {{"autoscaling", "v2", "horizontalpodautoscalers"},
       "autoscaling/v2",
       "HorizontalPodAutoscaler"},
      {{"rbac.authorization.k8s.io", "v1", "roles"}, "rbac.authorization.k8s.io/v1", "Role"},
      {{"rbac.authorization.k8s.io", "v1", "rolebindings"},
       "rbac.authorization.k8s.io/v1",
       "RoleBinding"},
      {{"rbac.authorization.k8s.io", "v1", "clusterroles", false},
       "rbac.authorization.k8s.io/v1",
       "ClusterRole"},
      {{"rbac.authorization.k8s.io", "v1", "clusterrolebindings", false},
       "rbac.authorization.k8s.io/v1",
       "ClusterRoleBinding"},
      {{"", "v1", "persistentvolumes", false}, "v1", "PersistentVolume"},
  };
  return kKinds;
}

namespace ctrl {

bool HasFinalizer(const json& object, std::string_view finalizer) {
  const json& finalizers = Field(object, {"metadata", "finalizers"});
  if (!finalizers.is_array()) return false;
  return std::any_of(finalizers.begin(), finalizers.end(), [&](const json& f) {
    return f.is_string() && f.get<std::string>() == finalizer;
  });
}

std::string GroupOf(std::string_view api_version) {
  size_t slash = api_version.find('/');
  return slash == std::string_view::npos ? "" : std::string(api_version.substr(0, slash));
}

}  // namespace ctrl

namespace {

using namespace ctrl;  // NOLINT(google-build-using-namespace): the helpers of this folder

constexpr char kOwnerUidIndex[] = "ownerUid";
constexpr int kPatchAttempts = 5;
const ResourceRef kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions", false};

const json& OwnerRefsOf(const json& object) {
  return Field(object, {"metadata", "ownerReferences"});
}

bool HasOwners(const json& object) {
  const json& refs = OwnerRefsOf(object);
  return refs.is_array() && !refs.empty();
}

// Deletion the collector has to finish: the object carries one of its finalizers.
bool NeedsCollectorFinalizing(const json& object) {
  return IsBeingDeleted(object) &&
         (HasFinalizer(object, kOrphanFinalizer) || HasFinalizer(object, kForegroundFinalizer));
}

bool IsWaitingForDependents(const json& object) {
  return IsBeingDeleted(object) && HasFinalizer(object, kForegroundFinalizer);
}

class GarbageCollector : public Component {
 public:
  GarbageCollector(ControllerContext& context, GarbageCollectorOptions options)
      : client_(context.client),
        loop_(
            "garbagecollector", context.informers, context.workers, options.resync_period,
            [this] { return AllKeys(); }, [this](const std::string& key) { return Sync(key); }) {
    // Ownership is all the collector reads: metadata-only informers keep its memory small.
    for (CollectedKind& kind : options.kinds) {
      Informer& informer = context.informers.ForMetadata(kind.resource);
      AddKind(std::move(kind), informer);
    }
    if (options.custom_resources) {
      crds_ = &context.informers.For(kCrds);
      // Custom kinds come and go with their definitions, after the controllers have synced:
      // their informers live in a factory of their own, which nothing waits on.
      custom_informers_ = InformerFactory::Create(client_);
    }
  }

  std::string_view Name() const override { return "garbagecollector"; }

  Status Start() override {
    for (size_t i = 0; i < KindCount(); ++i) AddHandler(i);
    if (crds_) {
      crds_->AddHandler({
          [this](const ObjectPtr& crd) { OnCrd(*crd); },
          [this](const ObjectPtr&, const ObjectPtr& crd) { OnCrd(*crd); },
          nullptr,
      });
      custom_informers_->Start();
    }
    loop_.Start();
    return Status::Ok();
  }

  void Stop() override {
    if (custom_informers_) custom_informers_->Stop();
    loop_.Stop();
  }

 private:
  // A watched kind and its informer. Kinds are only ever appended (custom ones while running),
  // so an index stays valid; entries_ is a deque, so a reference to an entry does too.
  struct Entry {
    CollectedKind kind;
    Informer* informer;
  };

  size_t KindCount() const {
    std::shared_lock lock(entries_mu_);
    return entries_.size();
  }

  const Entry& EntryAt(size_t i) const {
    std::shared_lock lock(entries_mu_);
    return entries_[i];
  }
  const ResourceRef& ResourceOf(size_t i) const { return EntryAt(i).kind.resource; }
  Informer& InformerOf(size_t i) const { return *EntryAt(i).informer; }

  size_t AddKind(CollectedKind kind, Informer& informer) {
    informer.AddIndex(kOwnerUidIndex, [](const json& object) {
      std::vector<std::string> uids;
      const json& refs = OwnerRefsOf(object);
      if (refs.is_array()) {
        for (const json& ref : refs) uids.push_back(StringField(ref, {"uid"}));
      }
      return uids;
    });
    std::unique_lock lock(entries_mu_);
    entries_.push_back({std::move(kind), &informer});
    return entries_.size() - 1;
  }

  void AddHandler(size_t i) {
    InformerOf(i).AddHandler({
        [this, i](const ObjectPtr& o) { OnAdd(i, *o); },
        [this, i](const ObjectPtr& old_o, const ObjectPtr& o) { OnUpdate(i, *old_o, *o); },
        [this](const ObjectPtr& o) { OnDelete(*o); },
    });
  }

  // A CustomResourceDefinition: its kind is watched from now on (through its storage version,
  // or the first served one). A deleted definition's informer stays, idle, in case it returns.
  void OnCrd(const json& crd) {
    const std::string group = StringField(crd, {"spec", "group"});
    const std::string kind = StringField(crd, {"spec", "names", "kind"});
    const std::string plural = StringField(crd, {"spec", "names", "plural"});
    std::string version;
    for (const json& v : Field(crd, {"spec", "versions"})) {
      if (!BoolField(v, {"served"})) continue;
      if (version.empty() || BoolField(v, {"storage"})) version = StringField(v, {"name"});
    }
    if (group.empty() || kind.empty() || plural.empty() || version.empty()) return;
    if (KindOf(group, kind)) return;
    ResourceRef resource{group, version, plural, StringField(crd, {"spec", "scope"}) != "Cluster"};
    Informer& informer = custom_informers_->ForMetadata(resource);
    size_t i = AddKind({resource, group + "/" + version, kind}, informer);
    AddHandler(i);
    log::Info("garbagecollector", "watching custom resource {}.{}", plural, group);
    // Dependents judged while this kind was unknown were taken to have a living owner: judge
    // them again, now that their owner can be looked up (it may be gone already).
    EnqueueDependentsOfKind(group, kind);
  }

  void EnqueueDependentsOfKind(const std::string& group, const std::string& kind) {
    for (size_t i = 0; i < KindCount(); ++i) {
      for (const ObjectPtr& o : InformerOf(i).List()) {
        const json& refs = OwnerRefsOf(*o);
        if (!refs.is_array()) continue;
        for (const json& ref : refs) {
          if (StringField(ref, {"kind"}) == kind &&
              GroupOf(StringField(ref, {"apiVersion"})) == group) {
            loop_.Add(KeyOf(i, *o));
            break;
          }
        }
      }
    }
  }
  // A dependent found through the owner index: which kind it is, and the object.
  struct Dependent {
    size_t kind;
    ObjectPtr object;
  };

  // ---- Keys: "<kind index>|<ObjectKey>".

  static std::string KeyOf(size_t kind, const json& object) {
    return fmt::format("{}|{}", kind, ObjectKey(object));
  }

  std::vector<std::string> AllKeys() const {
    std::vector<std::string> keys;
    for (size_t i = 0; i < KindCount(); ++i) {
      for (const ObjectPtr& o : InformerOf(i).List()) {
        if (HasOwners(*o) || NeedsCollectorFinalizing(*o)) keys.push_back(KeyOf(i, *o));
      }
    }
    return keys;
  }

  // ---- Informer handlers: they only enqueue keys.

  void OnAdd(size_t kind, const json& object) {
    if (HasOwners(object) || NeedsCollectorFinalizing(object)) loop_.Add(KeyOf(kind, object));
  }

  void OnUpdate(size_t kind, const json& old_object, const json& object) {
    bool refs_changed = OwnerRefsOf(old_object) != OwnerRefsOf(object);
    if (NeedsCollectorFinalizing(object) || (HasOwners(object) && refs_changed)) {
      loop_.Add(KeyOf(kind, object));
    }
    // A dependent that lets go of an owner, or starts to go itself, may unblock the owner's
    // foreground deletion.
    if (refs_changed || IsBeingDeleted(object)) EnqueueWaitingOwners(old_object);
  }

  void OnDelete(const json& object) {
    for (const Dependent& d : DependentsOf(UidOf(object))) loop_.Add(KeyOf(d.kind, *d.object));
    EnqueueWaitingOwners(object);
  }

  void EnqueueWaitingOwners(const json& object) {
    const json& refs = OwnerRefsOf(object);
    if (!refs.is_array()) return;
    for (const json& ref : refs) {
      auto kind = KindOf(ref);
      if (!kind) continue;
      ObjectPtr owner = CachedOwner(*kind, NamespaceOf(object), ref);
      if (owner && IsWaitingForDependents(*owner)) loop_.Add(KeyOf(*kind, *owner));
    }
  }

  // ---- Lookups.

  std::optional<size_t> KindOf(const json& ref) const {
    return KindOf(GroupOf(StringField(ref, {"apiVersion"})), StringField(ref, {"kind"}));
  }

  std::optional<size_t> KindOf(const std::string& group, const std::string& kind) const {
    std::shared_lock lock(entries_mu_);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].kind.kind == kind && entries_[i].kind.resource.group == group) return i;
    }
    return std::nullopt;
  }

  std::string OwnerNamespace(size_t kind, const std::string& dependent_ns) const {
    return ResourceOf(kind).namespaced ? dependent_ns : "";
  }

  ObjectPtr CachedOwner(size_t kind, const std::string& dependent_ns, const json& ref) const {
    ObjectPtr owner =
        InformerOf(kind).Get(OwnerNamespace(kind, dependent_ns), StringField(ref, {"name"}));
    if (!owner || UidOf(*owner) != StringField(ref, {"uid"})) return nullptr;
    return owner;
  }

  std::vector<Dependent> DependentsOf(const std::string& uid) const {
    std::vector<Dependent> out;
    if (uid.empty()) return out;
    for (size_t i = 0; i < KindCount(); ++i) {
      for (ObjectPtr& o : InformerOf(i).ByIndex(kOwnerUidIndex, uid)) {
        out.push_back({i, std::move(o)});
      }
    }
    return out;
  }

  enum class OwnerState { kSolid, kDangling, kWaiting };

  // Whether the owner `ref` names exists. The cache answers "exists"; "gone" is confirmed with
  // a live read, since the owner may simply not have reached this informer yet.
  Result<OwnerState> LookUpOwner(const json& ref, const std::string& dependent_ns) {
    auto kind = KindOf(ref);
    if (!kind) return OwnerState::kSolid;  // a kind we cannot see: assume it is there
    // A new custom kind's informer has not listed yet: an owner deleted before that list would
    // never be reported deleted, so decide only once it has (the key is retried with back-off).
    if (!InformerOf(*kind).HasSynced()) {
      return Unavailable(
          fmt::format("the informer of {} has not synced yet", ResourceOf(*kind).resource));
    }
    if (ObjectPtr cached = CachedOwner(*kind, dependent_ns, ref)) {
      return IsWaitingForDependents(*cached) ? OwnerState::kWaiting : OwnerState::kSolid;
    }
    auto live = client_.Get(ResourceOf(*kind), OwnerNamespace(*kind, dependent_ns),
                            StringField(ref, {"name"}));
    if (!live.ok()) {
      if (live.status().code() == StatusCode::kNotFound) return OwnerState::kDangling;
      return live.status();
    }
    if (UidOf(*live) != StringField(ref, {"uid"})) return OwnerState::kDangling;
    return IsWaitingForDependents(*live) ? OwnerState::kWaiting : OwnerState::kSolid;
  }

  // ---- Reconcile.

  Status Sync(const std::string& key) {
    size_t bar = key.find('|');
    if (bar == std::string::npos) return Status::Ok();
    size_t kind = std::stoul(key.substr(0, bar));
    if (kind >= KindCount()) return Status::Ok();
    auto [ns, name] = SplitObjectKey(key.substr(bar + 1));
    ObjectPtr object = InformerOf(kind).Get(ns, name);
    if (!object) return Status::Ok();  // gone: its dependents were enqueued by OnDelete
    if (IsBeingDeleted(*object)) {
      if (HasFinalizer(*object, kOrphanFinalizer)) return OrphanDependents(kind, *object);
      if (HasFinalizer(*object, kForegroundFinalizer)) return DeleteDependents(kind, *object);
      return Status::Ok();
    }
    if (!HasOwners(*object)) return Status::Ok();
    return AttemptToDelete(kind, *object);
  }

  // An object with owners: deleted when every owner is gone (or is waiting for its dependents),
  // rid of the references to gone owners when some remain.
  // `fresh`: `object` was just read from the API rather than the cache.
  Status AttemptToDelete(size_t kind, const json& object, bool fresh = false) {
    const std::string ns = NamespaceOf(object);
    std::set<std::string> dangling, waiting;
    bool solid = false;
    for (const json& ref : OwnerRefsOf(object)) {
      auto state = LookUpOwner(ref, ns);
      if (!state.ok()) return state.status();
      switch (*state) {
        case OwnerState::kSolid:
          solid = true;
          break;
        case OwnerState::kDangling:
          dangling.insert(StringField(ref, {"uid"}));
          break;
        case OwnerState::kWaiting:
          waiting.insert(StringField(ref, {"uid"}));
          break;
      }
    }
    if (dangling.empty() && waiting.empty()) return Status::Ok();

    const ResourceRef& resource = ResourceOf(kind);
    if (solid) {
      std::set<std::string> drop = dangling;
      drop.insert(waiting.begin(), waiting.end());
      log::Info("garbagecollector", "{} {}: removing references to {} gone owner(s)",
                resource.resource, ObjectKey(object), drop.size());
      return RemoveOwnerRefs(kind, object, drop);
    }

    // The cache may be behind the API (an orphaning may just have stripped the references):
    // decide on the object as it is now, and delete only that version of it.
    if (!fresh) {
      auto latest = client_.Get(resource, ns, NameOf(object));
      if (!latest.ok()) {
        return latest.status().code() == StatusCode::kNotFound ? Status::Ok() : latest.status();
      }
      if (UidOf(*latest) != UidOf(object)) return Status::Ok();  // a new object, same name
      return AttemptToDelete(kind, *latest, /*fresh=*/true);
    }
    DeleteOptions options;
    options.precondition_uid = UidOf(object);
    options.precondition_resource_version = StringField(object, {"metadata", "resourceVersion"});
    bool has_dependents = false;
    if (!waiting.empty()) {
      has_dependents = !DependentsOf(UidOf(object)).empty();
      if (!has_dependents) {
        auto live = LiveDependents(kind, object);
        if (!live.ok()) return live.status();
        has_dependents = !live->empty();
      }
    }
    if (has_dependents) {
      // An owner waits for its dependents: this one's own dependents must go first as well.
      options.propagation_policy = "Foreground";
    } else if (HasFinalizer(object, kOrphanFinalizer)) {
      options.propagation_policy = "Orphan";
    } else if (HasFinalizer(object, kForegroundFinalizer)) {
      options.propagation_policy = "Foreground";
    } else {
      options.propagation_policy = "Background";
    }
    log::Info("garbagecollector", "deleting {} {} (owners gone), propagation {}", resource.resource,
              ObjectKey(object), options.propagation_policy);
    auto deleted = client_.Delete(resource, ns, NameOf(object), options);
    if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound &&
        deleted.status().code() != StatusCode::kConflict) {  // conflict: a new object, same name
      return deleted.status();
    }
    return Status::Ok();
  }

  // The dependents of `owner` read from the API, not the caches: one created just before the
  // owner's deletion may not have reached its informer yet, and missing it would get it collected
  // instead of orphaned, or let a foreground deletion finish early. Orphan and foreground
  // deletions are rare (a user's choice), so the lists are affordable.
  Result<std::vector<Dependent>> LiveDependents(size_t kind, const json& owner) {
    const std::string uid = UidOf(owner);
    std::vector<Dependent> dependents;
    const std::string ns = ResourceOf(kind).namespaced ? NamespaceOf(owner) : "";
    for (size_t i = 0; i < KindCount(); ++i) {
      const ResourceRef& resource = ResourceOf(i);
      auto list = client_.List(resource, resource.namespaced ? ns : "");
      if (!list.ok()) {
        if (list.status().code() == StatusCode::kNotFound) continue;
        return list.status();
      }
      for (json& item : list->items) {
        const json& refs = OwnerRefsOf(item);
        if (!refs.is_array()) continue;
        bool owned = std::any_of(refs.begin(), refs.end(),
                                 [&](const json& ref) { return StringField(ref, {"uid"}) == uid; });
        if (owned) dependents.push_back({i, std::make_shared<const json>(std::move(item))});
      }
    }
    return dependents;
  }

  // Orphan propagation: every dependent loses its reference to `owner`, then the owner its
  // orphan finalizer (which lets its deletion complete).
  Status OrphanDependents(size_t kind, const json& owner) {
    const std::string uid = UidOf(owner);
    auto dependents = LiveDependents(kind, owner);
    if (!dependents.ok()) return dependents.status();
    Status first = Status::Ok();
    for (const Dependent& d : *dependents) {
      Status s = RemoveOwnerRefs(d.kind, *d.object, {uid});
      if (!s.ok() && first.ok()) first = s;
    }
    if (!first.ok()) return first;
    return RemoveFinalizer(kind, owner, kOrphanFinalizer);
  }

  // Foreground propagation: every dependent is deleted (through AttemptToDelete, which sees the
  // owner waiting); the owner's finalizer goes once no dependent with blockOwnerDeletion is left.
  Status DeleteDependents(size_t kind, const json& owner) {
    const std::string uid = UidOf(owner);
    auto blocking = [&](const std::vector<Dependent>& dependents) {
      bool blocked = false;
      for (const Dependent& d : dependents) {
        for (const json& ref : OwnerRefsOf(*d.object)) {
          if (StringField(ref, {"uid"}) == uid && BoolField(ref, {"blockOwnerDeletion"})) {
            blocked = true;
          }
        }
        if (!IsBeingDeleted(*d.object)) loop_.Add(KeyOf(d.kind, *d.object));
      }
      return blocked;
    };
    // The dependents' deletions enqueue the owner again.
    if (blocking(DependentsOf(uid))) return Status::Ok();
    auto live = LiveDependents(kind, owner);
    if (!live.ok()) return live.status();
    if (blocking(*live)) return Status::Ok();
    return RemoveFinalizer(kind, owner, kForegroundFinalizer);
  }

  // ---- Writes: merge patches of metadata with the resourceVersion read as a precondition,
  // retried on conflicts with a fresh read.

  Status PatchMetadata(size_t kind, const json& object,
                       const std::function<std::optional<json>(const json& latest)>& change) {
    const ResourceRef& resource = ResourceOf(kind);
    const std::string ns = NamespaceOf(object), name = NameOf(object);
    Status last = Status::Ok();
    for (int attempt = 0; attempt < kPatchAttempts; ++attempt) {
      auto latest = client_.Get(resource, ns, name);
      if (!latest.ok()) {
        return latest.status().code() == StatusCode::kNotFound ? Status::Ok() : latest.status();
      }
      if (UidOf(*latest) != UidOf(object)) return Status::Ok();  // replaced by a namesake
      std::optional<json> metadata = change(*latest);
      if (!metadata) return Status::Ok();
      (*metadata)["resourceVersion"] = StringField(*latest, {"metadata", "resourceVersion"});
      json patch = {{"metadata", std::move(*metadata)}};
      auto patched = client_.Patch(resource, ns, name, PatchType::kMerge, patch.dump());
      if (patched.ok() || patched.status().code() == StatusCode::kNotFound) return Status::Ok();
      last = patched.status();
      if (last.code() != StatusCode::kConflict) return last;
    }
    return last;
  }

  Status RemoveOwnerRefs(size_t kind, const json& object, const std::set<std::string>& uids) {
    return PatchMetadata(kind, object, [&](const json& latest) -> std::optional<json> {
      const json& refs = OwnerRefsOf(latest);
      if (!refs.is_array()) return std::nullopt;
      json kept = json::array();
      for (const json& ref : refs) {
        if (uids.count(StringField(ref, {"uid"})) == 0) kept.push_back(ref);
      }
      if (kept.size() == refs.size()) return std::nullopt;
      // null removes the field (RFC 7386), as upstream leaves an orphan: no empty list behind.
      if (kept.empty()) return json{{"ownerReferences", nullptr}};
      return json{{"ownerReferences", std::move(kept)}};
    });
  }

  Status RemoveFinalizer(size_t kind, const json& object, std::string_view finalizer) {
    log::Info("garbagecollector", "{} {}: dependents done, removing finalizer {}",
              ResourceOf(kind).resource, ObjectKey(object), finalizer);
    return PatchMetadata(kind, object, [&](const json& latest) -> std::optional<json> {
      if (!HasFinalizer(latest, finalizer)) return std::nullopt;
      json kept = json::array();
      for (const json& f : Field(latest, {"metadata", "finalizers"})) {
        if (!(f.is_string() && f.get<std::string>() == finalizer)) kept.push_back(f);
      }
      return json{{"finalizers", std::move(kept)}};
    });
  }

  ApiClient& client_;
  mutable std::shared_mutex entries_mu_;
  std::deque<Entry> entries_;  // guarded by entries_mu_; appended only
  Informer* crds_ = nullptr;
  ControllerLoop loop_;
  // Declared after loop_, so destroyed before it: its handlers add to the loop.
  std::unique_ptr<InformerFactory> custom_informers_;
};

}  // namespace

std::unique_ptr<Component> NewGarbageCollector(ControllerContext& context) {
  return NewGarbageCollector(context, GarbageCollectorOptions{});
}

std::unique_ptr<Component> NewGarbageCollector(ControllerContext& context,
                                               GarbageCollectorOptions options) {
  return std::make_unique<GarbageCollector>(context, std::move(options));
}

}  // namespace orch
