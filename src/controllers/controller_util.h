// What the workload controllers (ReplicaSet, Deployment, Job, DaemonSet, StatefulSet, GC) share:
// owner references, adoption and release, pod predicates, expectations, pods from templates.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "orch/api_client.h"
#include "orch/informer.h"
#include "orch/json_path.h"
#include "orch/labels.h"
#include "orch/status.h"
#include "orch/timestamps.h"
#include "orch/work_queue.h"

namespace orch::ctrl {

using json = nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;
// The wall clock the controllers read (pod readiness, progress deadlines); tests pass a fake.
using NowFunc = std::function<TimePoint()>;
inline TimePoint SystemNow() {
  return std::chrono::system_clock::now();
}

// ---------------------------------------------------------------------------------------------
// Reading objects. All are null-safe: a missing or mistyped field reads as its default.

// The value at `path`, or a null JSON when any step is missing (include/orch/json_path.h).
using json_path::Field;
inline std::string StringField(const json& object, std::initializer_list<std::string_view> path,
                               std::string_view fallback = {}) {
  return json_path::String(object, path, fallback);
}
int64_t IntField(const json& object, std::initializer_list<std::string_view> path,
                 int64_t fallback = 0);
bool BoolField(const json& object, std::initializer_list<std::string_view> path,
               bool fallback = false);

std::string NameOf(const json& object);
std::string NamespaceOf(const json& object);
std::string UidOf(const json& object);
bool IsBeingDeleted(const json& object);  // metadata.deletionTimestamp is set
// Whether a toleration tolerates a taint, both as in the API (upstream's ToleratesTaint).
bool Tolerates(const json& toleration, const json& taint);
const json& LabelsOf(const json& object);

// A copy without nulls and empty objects and arrays (recursively): how Go's omitempty makes a
// field that is absent and one that is empty the same, for comparing templates and statuses.
json DropEmpty(const json& value);

// A condition of status.conditions by type, or null.
const json* FindCondition(const json& status, std::string_view type);

// ---------------------------------------------------------------------------------------------
// Owner references.

// The reference a controller puts on what it creates: controller and blockOwnerDeletion true.
json NewControllerRef(const json& owner, std::string_view api_version, std::string_view kind);
// What an event about `object` needs (kind, apiVersion, namespace, name, uid, resourceVersion),
// with the kind and apiVersion given: objects from lists may come without them.
json EventRef(const json& object, std::string_view api_version, std::string_view kind);
// The ownerReference with controller: true, or null.
const json* GetControllerOf(const json& object);

// The informer index every controller uses for "what does this owner control": the uid of an
// object's controller, or OrphanIndexValue(namespace) for an object without one (candidates
// for adoption). Adding it twice to a shared informer is harmless: the function is the same.
inline constexpr char kControllerIndex[] = "controller";
std::string OrphanIndexValue(const std::string& ns);
void AddControllerIndex(Informer& informer);
// The objects controlled by `owner` plus the orphans of its namespace, from the index above.
std::vector<ObjectPtr> OwnedAndOrphans(const Informer& informer, const json& owner);

// The owner `ref` (an ownerReference) names, from `owners`, if its uid still matches.
ObjectPtr ResolveControllerRef(const Informer& owners, const std::string& ns, const json& ref);
// The owner of kind `kind` in `owners` that `object` names as its controller, or null (no
// controller, another kind, or an owner since replaced by a namesake).
ObjectPtr ControllerOfKind(const Informer& owners, const json& object, std::string_view kind);

// The keys (ObjectKey) of every object in `informer`: what a controller's periodic resync visits.
std::vector<std::string> InformerKeys(const Informer& informer);

// Adoption and release (upstream's ControllerRefManager): an owner claims the orphans its
// selector matches (unless it is being deleted) and releases what it controls that no longer
// matches. Writes are merge patches of metadata.ownerReferences with the object's
// resourceVersion as a precondition, so a concurrent change makes them fail instead of losing it.
class RefManager {
 public:
  // `can_adopt` is called once, before the first adoption: it should re-read the owner from the
  // API and fail when it is gone or being deleted (a stale cache must not adopt for a dead owner).
  RefManager(ApiClient& client, ResourceRef child_resource, const json& owner,
             std::string owner_api_version, std::string owner_kind, LabelSelector selector,
             std::function<Status()> can_adopt);

  // The candidates the owner controls after adopting and releasing (adopted ones as the API
  // returned them). Objects another controller owns are skipped. A failed adoption or release
  // leaves the object out (adoption) or in (release: it is still ours) and is reported as the
  // first error; objects gone meanwhile are not errors.
  std::vector<ObjectPtr> Claim(const std::vector<ObjectPtr>& candidates, Status* first_error);

 private:
  Status Adopt(const json& object, ObjectPtr* adopted);
  Status Release(const json& object);

  ApiClient& client_;
  const ResourceRef child_resource_;
  const json& owner_;
  const std::string owner_api_version_;
  const std::string owner_kind_;
  const LabelSelector selector_;
  std::function<Status()> can_adopt_;
  std::optional<Status> can_adopt_result_;
};

// A can_adopt for RefManager: a fresh GET of `owner` from the API must have the same uid and no
// deletionTimestamp.
std::function<Status()> RecheckOwner(ApiClient& client, const ResourceRef& resource,
                                     const json& owner);

// ---------------------------------------------------------------------------------------------
// Pods.

// Neither Succeeded nor Failed, and not being deleted (upstream's FilterActivePods).
bool IsPodActive(const json& pod);
// The Ready condition is True.
bool IsPodReady(const json& pod);
// When the Ready condition last became True (nullopt when not ready or unknown).
std::optional<TimePoint> PodReadyTime(const json& pod);
// Ready for at least `min_ready_seconds` at `now`.
bool IsPodAvailable(const json& pod, int64_t min_ready_seconds, TimePoint now);
// The highest restartCount among the pod's containers.
int64_t MaxContainerRestarts(const json& pod);
std::string PodPhase(const json& pod);

// A pod to create from `pod_template` (a PodTemplateSpec) for `owner`: the template's labels,
// annotations, finalizers and spec, generateName "<owner name>-", the owner's namespace and
// `controller_ref` (NewControllerRef of the owner).
json PodFromTemplate(const json& pod_template, const json& owner, const json& controller_ref);

// ---------------------------------------------------------------------------------------------
// Expectations (client-go's ControllerExpectations, with uid tracking for deletions): after an
// owner creates or deletes N objects it should not act again until its informer has seen them,
// or a stale cache makes it create or delete twice. An expectation that is never met (a lost
// event) expires after `ttl`. Keys are the owners' ObjectKeys. Thread-safe.
class Expectations {
 public:
  explicit Expectations(NowFunc now = SystemNow,
                        std::chrono::seconds ttl = std::chrono::minutes(5));

  // True when no expectations are pending for `key` (or they expired): the owner may act.
  bool Satisfied(const std::string& key) const;
  // Replaces the expectations of `key` with `adds` creations.
  void ExpectCreations(const std::string& key, int adds);
  // Replaces the expectations of `key` with the deletion of these objects (their ObjectKeys).
  void ExpectDeletions(const std::string& key, const std::vector<std::string>& object_keys);
  // The informer saw a creation (or a creation that will not happen: a failed create).
  void CreationObserved(const std::string& key);
  // The informer saw `object_key` deleted (or being deleted); counts once per object.
  void DeletionObserved(const std::string& key, const std::string& object_key);
  // Forgets `key` (its owner is gone).
  void Delete(const std::string& key);

 private:
  struct Entry {
    int adds = 0;
    std::set<std::string> deletions;
    TimePoint set_at;
  };
  NowFunc now_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// Creating many objects.

// Calls fn(i) for i in [0, count) in batches of 1, 2, 4, ... (upstream's slowStartBatch): each
// batch runs in parallel, and a batch with a failure stops the rest, so a template the API
// rejects costs one call, not hundreds. Returns how many calls succeeded; `first_error` gets the
// first failure.
int SlowStartBatch(int count, int initial_batch, const std::function<Status(int)>& fn,
                   Status* first_error);
// Calls fn(i) for i in [0, count) on up to `max_threads` threads (the caller's included).
void RunParallel(int count, int max_threads, const std::function<void(int)>& fn);

// ---------------------------------------------------------------------------------------------
// The loop of one controller: a work queue of owner keys, workers that wait for the informers to
// sync before the first reconcile, and a periodic resync of every key.
class ControllerLoop {
 public:
  // `keys` lists every owner key (for the resync); `sync` reconciles one.
  ControllerLoop(std::string name, InformerFactory& informers, int workers,
                 std::chrono::milliseconds resync_period,
                 std::function<std::vector<std::string>()> keys,
                 std::function<Status(const std::string& key)> sync);
  ~ControllerLoop();
  ControllerLoop(const ControllerLoop&) = delete;
  ControllerLoop& operator=(const ControllerLoop&) = delete;

  void Start();
  // Stops the workers (a running reconcile finishes first). Later Adds are ignored.
  void Stop();

  void Add(const std::string& key) { queue_.Add(key); }
  void AddAfter(const std::string& key, std::chrono::milliseconds delay) {
    queue_.AddAfter(key, delay);
  }
  void AddRateLimited(const std::string& key) { queue_.AddRateLimited(key); }
  const std::string& name() const { return name_; }

 private:
  Status Run(const std::string& key);
  bool WaitForSync();

  const std::string name_;
  InformerFactory& informers_;
  const int workers_;
  const std::chrono::milliseconds resync_period_;
  std::function<std::vector<std::string>()> keys_;
  std::function<Status(const std::string&)> sync_;
  WorkQueue queue_;
  std::unique_ptr<WorkerPool> pool_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> synced_{false};
};

// ---------------------------------------------------------------------------------------------
// The pod event handlers every pod-owning controller shares (ReplicaSet, ReplicationController,
// DaemonSet, StatefulSet, Job): a pod's event wakes the owner its controller reference names
// (with the creation or deletion it was expecting); an orphan, or a pod whose labels changed,
// wakes the owners whose selector matches it, which may adopt it. A pod being deleted counts as
// deleted at once: it no longer counts, so its owner may replace it now. A pod turning ready
// wakes its owner again spec.minReadySeconds later, when it becomes available.
struct OwnedPodEvents {
  const Informer& owners;   // the owners' informer
  std::string owner_kind;   // the kind a controller reference must name
  ControllerLoop& loop;     // owners' keys are added to it
  Expectations& creations;  // CreationObserved on a pod's arrival
  Expectations& deletions;  // DeletionObserved on its deletion (often the same object)
  // The owner's selector; unset: metav1.LabelSelector at spec.selector. Owners whose selector
  // is invalid or empty adopt nothing.
  std::function<Result<LabelSelector>(const json& owner)> selector;
  // A further condition for an orphan's adoption (a StatefulSet's member name); unset: none.
  std::function<bool(const json& owner, const json& pod)> may_adopt;
};

// The handler set for the pod informer. What `events` refers to must outlive the handlers' use
// (the informers are stopped before the controllers that registered them).
InformerHandler OwnedPodHandlers(OwnedPodEvents events);

}  // namespace orch::ctrl
