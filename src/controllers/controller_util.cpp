// The helpers the workload controllers share (controller_util.h): owner references, adoption,
// pod predicates, expectations, pods from templates, slow-start batches and the control loop.
#include "controller_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <thread>

#include "orch/log.h"
#include "orch/node_placement.h"

namespace orch::ctrl {

// ---------------------------------------------------------------------------------------------
// Reading objects.

int64_t IntField(const json& object, std::initializer_list<std::string_view> path,
                 int64_t fallback) {
  const json& value = Field(object, path);
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) return static_cast<int64_t>(value.get<double>());
  return fallback;
}

bool BoolField(const json& object, std::initializer_list<std::string_view> path, bool fallback) {
  const json& value = Field(object, path);
  return value.is_boolean() ? value.get<bool>() : fallback;
}

std::string NameOf(const json& object) {
  return StringField(object, {"metadata", "name"});
}
std::string NamespaceOf(const json& object) {
  return StringField(object, {"metadata", "namespace"});
}
std::string UidOf(const json& object) {
  return StringField(object, {"metadata", "uid"});
}
bool Tolerates(const json& toleration, const json& taint) {
  return placement::Toleration::FromJson(toleration).Tolerates(placement::Taint::FromJson(taint));
}

bool IsBeingDeleted(const json& object) {
  return !Field(object, {"metadata", "deletionTimestamp"}).is_null();
}
const json& LabelsOf(const json& object) {
  return Field(object, {"metadata", "labels"});
}

json DropEmpty(const json& value) {
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      json v = DropEmpty(it.value());
      if (v.is_null() || ((v.is_object() || v.is_array()) && v.empty())) continue;
      out[it.key()] = std::move(v);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& item : value) out.push_back(DropEmpty(item));
    return out;
  }
  return value;
}

const json* FindCondition(const json& status, std::string_view type) {
  const json& conditions = Field(status, {"conditions"});
  if (!conditions.is_array()) return nullptr;
  for (const json& c : conditions) {
    if (c.is_object() && StringField(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Owner references.

json NewControllerRef(const json& owner, std::string_view api_version, std::string_view kind) {
  return {{"apiVersion", api_version}, {"kind", kind},       {"name", NameOf(owner)},
          {"uid", UidOf(owner)},       {"controller", true}, {"blockOwnerDeletion", true}};
}

json EventRef(const json& object, std::string_view api_version, std::string_view kind) {
  json meta = {{"name", NameOf(object)},
               {"uid", UidOf(object)},
               {"resourceVersion", StringField(object, {"metadata", "resourceVersion"})}};
  if (!NamespaceOf(object).empty()) meta["namespace"] = NamespaceOf(object);
  return {{"apiVersion", api_version}, {"kind", kind}, {"metadata", std::move(meta)}};
}

const json* GetControllerOf(const json& object) {
  const json& refs = Field(object, {"metadata", "ownerReferences"});
  if (!refs.is_array()) return nullptr;
  for (const json& ref : refs) {
    if (BoolField(ref, {"controller"})) return &ref;
  }
  return nullptr;
}

std::string OrphanIndexValue(const std::string& ns) {
  return "orphan/" + ns;
}

void AddControllerIndex(Informer& informer) {
  informer.AddIndex(kControllerIndex, [](const json& object) -> std::vector<std::string> {
    const json* ref = GetControllerOf(object);
    if (ref == nullptr) return {OrphanIndexValue(NamespaceOf(object))};
    return {StringField(*ref, {"uid"})};
  });
}

std::vector<ObjectPtr> OwnedAndOrphans(const Informer& informer, const json& owner) {
  std::vector<ObjectPtr> out = informer.ByIndex(kControllerIndex, UidOf(owner));
  std::vector<ObjectPtr> orphans =
      informer.ByIndex(kControllerIndex, OrphanIndexValue(NamespaceOf(owner)));
  out.insert(out.end(), orphans.begin(), orphans.end());
  return out;
}

ObjectPtr ResolveControllerRef(const Informer& owners, const std::string& ns, const json& ref) {
  ObjectPtr owner = owners.Get(ns, StringField(ref, {"name"}));
  if (!owner || UidOf(*owner) != StringField(ref, {"uid"})) return nullptr;
  return owner;
}

ObjectPtr ControllerOfKind(const Informer& owners, const json& object, std::string_view kind) {
  const json* ref = GetControllerOf(object);
  if (ref == nullptr || StringField(*ref, {"kind"}) != kind) return nullptr;
  return ResolveControllerRef(owners, NamespaceOf(object), *ref);
}

std::vector<std::string> InformerKeys(const Informer& informer) {
  std::vector<std::string> keys;
  for (const ObjectPtr& object : informer.List()) keys.push_back(ObjectKey(*object));
  return keys;
}

RefManager::RefManager(ApiClient& client, ResourceRef child_resource, const json& owner,
                       std::string owner_api_version, std::string owner_kind,
                       LabelSelector selector, std::function<Status()> can_adopt)
    : client_(client),
      child_resource_(std::move(child_resource)),
      owner_(owner),
      owner_api_version_(std::move(owner_api_version)),
      owner_kind_(std::move(owner_kind)),
      selector_(std::move(selector)),
      can_adopt_(std::move(can_adopt)) {}

std::vector<ObjectPtr> RefManager::Claim(const std::vector<ObjectPtr>& candidates,
                                         Status* first_error) {
  std::vector<ObjectPtr> claimed;
  const std::string owner_uid = UidOf(owner_);
  const bool owner_deleting = IsBeingDeleted(owner_);
  auto note = [&](Status s) {
    if (!s.ok() && first_error != nullptr && first_error->ok()) *first_error = std::move(s);
  };
  for (const ObjectPtr& object : candidates) {
    const json* ref = GetControllerOf(*object);
    const bool matches = selector_.Matches(LabelsOf(*object));
    if (ref != nullptr) {
      if (StringField(*ref, {"uid"}) != owner_uid) continue;  // another controller's
      if (matches || owner_deleting) {
        // An owner being deleted keeps what it has: the garbage collector deals with it.
        claimed.push_back(object);
        continue;
      }
      Status s = Release(*object);
      if (!s.ok() && s.code() != StatusCode::kNotFound) {
        claimed.push_back(object);  // still ours until the release goes through
        note(std::move(s));
      }
      continue;
    }
    // An orphan.
    if (owner_deleting || !matches || IsBeingDeleted(*object)) continue;
    ObjectPtr adopted;
    Status s = Adopt(*object, &adopted);
    if (s.ok()) {
      claimed.push_back(adopted);
    } else if (s.code() != StatusCode::kNotFound) {
      note(std::move(s));
    }
  }
  return claimed;
}

Status RefManager::Adopt(const json& object, ObjectPtr* adopted) {
  if (!can_adopt_result_) can_adopt_result_ = can_adopt_ ? can_adopt_() : Status::Ok();
  if (!can_adopt_result_->ok()) {
    return Status(can_adopt_result_->code(),
                  fmt::format("cannot adopt {} {}: {}", child_resource_.resource, NameOf(object),
                              can_adopt_result_->message()));
  }
  json refs = Field(object, {"metadata", "ownerReferences"});
  if (!refs.is_array()) refs = json::array();
  refs.push_back(NewControllerRef(owner_, owner_api_version_, owner_kind_));
  json patch = {{"metadata",
                 {{"ownerReferences", std::move(refs)},
                  {"resourceVersion", StringField(object, {"metadata", "resourceVersion"})}}}};
  auto result = client_.Patch(child_resource_, NamespaceOf(object), NameOf(object),
                              PatchType::kMerge, patch.dump());
  if (!result.ok()) return result.status();
  *adopted = std::make_shared<const json>(std::move(*result));
  return Status::Ok();
}

Status RefManager::Release(const json& object) {
  const std::string owner_uid = UidOf(owner_);
  json refs = json::array();
  for (const json& ref : Field(object, {"metadata", "ownerReferences"})) {
    if (StringField(ref, {"uid"}) != owner_uid) refs.push_back(ref);
  }
  json patch = {{"metadata",
                 {{"ownerReferences", refs.empty() ? json() : std::move(refs)},
                  {"resourceVersion", StringField(object, {"metadata", "resourceVersion"})}}}};
  auto result = client_.Patch(child_resource_, NamespaceOf(object), NameOf(object),
                              PatchType::kMerge, patch.dump());
  return result.status();
}

std::function<Status()> RecheckOwner(ApiClient& client, const ResourceRef& resource,
                                     const json& owner) {
  return [&client, resource, ns = NamespaceOf(owner), name = NameOf(owner),
          uid = UidOf(owner)]() -> Status {
    auto fresh = client.Get(resource, ns, name);
    if (!fresh.ok()) return fresh.status();
    if (UidOf(*fresh) != uid) {
      return NotFound(fmt::format("original {}/{} is gone: got uid {}, wanted {}", ns, name,
                                  UidOf(*fresh), uid));
    }
    if (IsBeingDeleted(*fresh)) {
      return Conflict(fmt::format("{}/{} has just been deleted at {}", ns, name,
                                  StringField(*fresh, {"metadata", "deletionTimestamp"})));
    }
    return Status::Ok();
  };
}

// ---------------------------------------------------------------------------------------------
// Pods.

std::string PodPhase(const json& pod) {
  return StringField(pod, {"status", "phase"});
}

bool IsPodActive(const json& pod) {
  std::string phase = PodPhase(pod);
  return phase != "Succeeded" && phase != "Failed" && !IsBeingDeleted(pod);
}

bool IsPodReady(const json& pod) {
  const json* ready = FindCondition(Field(pod, {"status"}), "Ready");
  return ready != nullptr && StringField(*ready, {"status"}) == "True";
}

std::optional<TimePoint> PodReadyTime(const json& pod) {
  const json* ready = FindCondition(Field(pod, {"status"}), "Ready");
  if (ready == nullptr || StringField(*ready, {"status"}) != "True") return std::nullopt;
  return ParseTime(StringField(*ready, {"lastTransitionTime"}));
}

bool IsPodAvailable(const json& pod, int64_t min_ready_seconds, TimePoint now) {
  if (!IsPodReady(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  auto since = PodReadyTime(pod);
  return since && *since + std::chrono::seconds(min_ready_seconds) < now;
}

int64_t MaxContainerRestarts(const json& pod) {
  int64_t most = 0;
  for (const json& c : Field(pod, {"status", "containerStatuses"})) {
    most = std::max(most, IntField(c, {"restartCount"}));
  }
  return most;
}

json PodFromTemplate(const json& pod_template, const json& owner, const json& controller_ref) {
  json meta = json::object();
  const json& tmeta = Field(pod_template, {"metadata"});
  for (const char* f : {"labels", "annotations", "finalizers"}) {
    const json& v = Field(tmeta, {f});
    if (!v.is_null() && !v.empty()) meta[f] = v;
  }
  meta["generateName"] = NameOf(owner) + "-";
  meta["namespace"] = NamespaceOf(owner);
  meta["ownerReferences"] = json::array({controller_ref});
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}};
  const json& spec = Field(pod_template, {"spec"});
  pod["spec"] = spec.is_object() ? spec : json::object();
  return pod;
}

// ---------------------------------------------------------------------------------------------
// Expectations.

Expectations::Expectations(NowFunc now, std::chrono::seconds ttl)
    : now_(std::move(now)), ttl_(ttl) {}

bool Expectations::Satisfied(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return true;
  const Entry& e = it->second;
  if (e.adds <= 0 && e.deletions.empty()) return true;
  return now_() - e.set_at > ttl_;  // a lost event must not stall the owner forever
}

void Expectations::ExpectCreations(const std::string& key, int adds) {
  std::lock_guard lock(mu_);
  entries_[key] = Entry{adds, {}, now_()};
}

void Expectations::ExpectDeletions(const std::string& key,
                                   const std::vector<std::string>& object_keys) {
  std::lock_guard lock(mu_);
  entries_[key] = Entry{0, {object_keys.begin(), object_keys.end()}, now_()};
}

void Expectations::CreationObserved(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.adds > 0) --it->second.adds;
}

void Expectations::DeletionObserved(const std::string& key, const std::string& object_key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.deletions.erase(object_key);
}

void Expectations::Delete(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

// ---------------------------------------------------------------------------------------------
// Creating many objects.

void RunParallel(int count, int max_threads, const std::function<void(int)>& fn) {
  if (count <= 0) return;
  int threads = std::clamp(std::min(count, max_threads), 1, count);
  std::atomic<int> next{0};
  auto work = [&] {
    for (int i = next++; i < count; i = next++) fn(i);
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) helpers.emplace_back(work);
  work();
  for (auto& t : helpers) t.join();
}

int SlowStartBatch(int count, int initial_batch, const std::function<Status(int)>& fn,
                   Status* first_error) {
  // Parallel calls per batch: enough to fill the API server's group commits, few threads.
  constexpr int kMaxParallel = 16;
  int done = 0;
  int successes = 0;
  for (int batch = std::min(count, std::max(initial_batch, 1)); batch > 0;
       batch = std::min(2 * batch, count - done)) {
    std::mutex mu;
    Status error;
    int ok = 0;
    RunParallel(batch, kMaxParallel, [&](int i) {
      Status s = fn(done + i);
      std::lock_guard lock(mu);
      if (s.ok()) {
        ++ok;
      } else if (error.ok()) {
        error = std::move(s);
      }
    });
    successes += ok;
    done += batch;
    if (!error.ok()) {
      if (first_error != nullptr) *first_error = std::move(error);
      return successes;
    }
  }
  return successes;
}

// ---------------------------------------------------------------------------------------------
// The control loop.

namespace {
// A key no object has (ObjectKeys never start with a control character): the resync tick.
const std::string kResyncKey = "\x01resync";
}  // namespace

ControllerLoop::ControllerLoop(std::string name, InformerFactory& informers, int workers,
                               std::chrono::milliseconds resync_period,
                               std::function<std::vector<std::string>()> keys,
                               std::function<Status(const std::string& key)> sync)
    : name_(std::move(name)),
      informers_(informers),
      workers_(std::max(workers, 1)),
      resync_period_(resync_period),
      keys_(std::move(keys)),
      sync_(std::move(sync)) {}

ControllerLoop::~ControllerLoop() {
  Stop();
}

void ControllerLoop::Start() {
  if (resync_period_.count() > 0) queue_.AddAfter(kResyncKey, resync_period_);
  pool_ = std::make_unique<WorkerPool>(name_, queue_, workers_,
                                       [this](const std::string& key) { return Run(key); });
}

void ControllerLoop::Stop() {
  stopping_ = true;
  queue_.ShutDown();
  pool_.reset();  // joins the workers
}

bool ControllerLoop::WaitForSync() {
  while (!synced_) {
    if (stopping_) return false;
    auto started = std::chrono::steady_clock::now();
    if (informers_.WaitForSync(std::chrono::milliseconds(200))) {
      synced_ = true;
      log::Info(name_, "caches synced; reconciling");
    } else if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(100)) {
      // The factory was stopped (it answers at once then): do not spin until we are stopped too.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return true;
}

Status ControllerLoop::Run(const std::string& key) {
  if (!WaitForSync()) return Status::Ok();  // stopping: the queue is shut down anyway
  if (key == kResyncKey) {
    for (const std::string& k : keys_()) queue_.Add(k);
    queue_.AddAfter(kResyncKey, resync_period_);
    return Status::Ok();
  }
  return sync_(key);
}

// ---------------------------------------------------------------------------------------------
// Owned-pod events.

namespace {

class OwnedPodHandler {
 public:
  explicit OwnedPodHandler(OwnedPodEvents events) : e_(std::move(events)) {}

  void OnAdd(const json& pod) const {
    if (IsBeingDeleted(pod)) {
      // Seen for the first time already being deleted (e.g. after a re-list): a deletion.
      OnDelete(pod);
      return;
    }
    if (GetControllerOf(pod) != nullptr) {
      if (ObjectPtr owner = OwnerOf(pod)) {
        const std::string key = ObjectKey(*owner);
        e_.creations.CreationObserved(key);
        e_.loop.Add(key);
      }
      return;
    }
    EnqueueMatchingOwners(pod);
  }

  void OnUpdate(const json& old_pod, const json& pod) const {
    if (StringField(old_pod, {"metadata", "resourceVersion"}) ==
        StringField(pod, {"metadata", "resourceVersion"})) {
      return;  // a resync, not a change
    }
    ObjectPtr old_owner = OwnerOf(old_pod);
    ObjectPtr owner = OwnerOf(pod);
    const bool owner_changed = old_owner && (!owner || UidOf(*old_owner) != UidOf(*owner));
    if (IsBeingDeleted(pod)) {
      OnDelete(pod);
      if (owner_changed) OnDelete(old_pod);
      return;
    }
    if (owner_changed) e_.loop.Add(ObjectKey(*old_owner));
    if (owner) {
      const std::string key = ObjectKey(*owner);
      e_.loop.Add(key);
      const int64_t min_ready = IntField(*owner, {"spec", "minReadySeconds"});
      if (min_ready > 0 && !IsPodReady(old_pod) && IsPodReady(pod)) {
        // Available only minReadySeconds after it became ready: look again then.
        e_.loop.AddAfter(key, std::chrono::seconds(min_ready + 1));
      }
      return;
    }
    if (GetControllerOf(pod) == nullptr &&
        (LabelsOf(old_pod) != LabelsOf(pod) || GetControllerOf(old_pod) != nullptr)) {
      EnqueueMatchingOwners(pod);
    }
  }

  void OnDelete(const json& pod) const {
    ObjectPtr owner = OwnerOf(pod);
    if (!owner) return;
    const std::string key = ObjectKey(*owner);
    e_.deletions.DeletionObserved(key, ObjectKey(pod));
    e_.loop.Add(key);
  }

 private:
  ObjectPtr OwnerOf(const json& pod) const {
    return ControllerOfKind(e_.owners, pod, e_.owner_kind);
  }

  // Owners in the pod's namespace that could adopt it.
  void EnqueueMatchingOwners(const json& pod) const {
    for (const ObjectPtr& owner : e_.owners.List(NamespaceOf(pod))) {
      if (e_.may_adopt && !e_.may_adopt(*owner, pod)) continue;
      Result<LabelSelector> selector =
          e_.selector ? e_.selector(*owner)
                      : LabelSelector::FromJson(Field(*owner, {"spec", "selector"}));
      if (selector.ok() && !selector->Empty() && selector->Matches(LabelsOf(pod))) {
        e_.loop.Add(ObjectKey(*owner));
      }
    }
  }

  const OwnedPodEvents e_;
};

}  // namespace

InformerHandler OwnedPodHandlers(OwnedPodEvents events) {
  auto handler = std::make_shared<const OwnedPodHandler>(std::move(events));
  return {
      [handler](const ObjectPtr& p) { handler->OnAdd(*p); },
      [handler](const ObjectPtr& old_p, const ObjectPtr& p) { handler->OnUpdate(*old_p, *p); },
      [handler](const ObjectPtr& p) { handler->OnDelete(*p); },
  };
}

}  // namespace orch::ctrl
