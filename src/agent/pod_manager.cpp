// The node's pods: informer, work queue, workers and runtime relisting (pod_manager.h).
#include "pod_manager.h"

#include <fmt/format.h>

#include "json_util.h"
#include "runtime_labels.h"

namespace orch::agent {
namespace {

constexpr auto kRelistPeriod = std::chrono::seconds(1);
// While informers sync, keys wait this long before trying again.
constexpr auto kNotSyncedRetry = std::chrono::milliseconds(200);

}  // namespace

bool PodUses(const json& pod, const std::string& kind, const std::string& name) {
  if (kind == "persistentvolumeclaim") {
    for (const json& v : Array(pod, {"spec", "volumes"})) {
      if (Str(v, {"persistentVolumeClaim", "claimName"}) == name) return true;
    }
    return false;
  }
  bool secret = kind == "secret";
  for (const json& v : Array(pod, {"spec", "volumes"})) {
    if (!secret && Str(v, {"configMap", "name"}) == name) return true;
    if (secret && Str(v, {"secret", "secretName"}) == name) return true;
    for (const json& source : Array(v, {"projected", "sources"})) {
      if (Str(source, {secret ? "secret" : "configMap", "name"}) == name) return true;
    }
  }
  if (secret) {
    for (const json& ref : Array(pod, {"spec", "imagePullSecrets"})) {
      if (Str(ref, {"name"}) == name) return true;
    }
  }
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      for (const json& e : Array(c, {"env"})) {
        if (Str(e, {"valueFrom", secret ? "secretKeyRef" : "configMapKeyRef", "name"}) == name) {
          return true;
        }
      }
      for (const json& e : Array(c, {"envFrom"})) {
        if (Str(e, {secret ? "secretRef" : "configMapRef", "name"}) == name) return true;
      }
    }
  }
  return false;
}

PodManager::PodManager(PodWorkerContext& ctx, Informer& pods, InformerObjectSource& objects,
                       int workers)
    : ctx_(ctx),
      pods_(pods),
      objects_(objects),
      workers_count_(workers),
      queue_(std::chrono::milliseconds(500), std::chrono::seconds(60)),
      worker_(ctx) {
  ctx_.requeue = [this](const std::string& uid) { queue_.Add(uid); };
  pods_.AddHandler({[this](const ObjectPtr& pod) { Remember(pod); },
                    [this](const ObjectPtr&, const ObjectPtr& pod) { Remember(pod); },
                    [this](const ObjectPtr& pod) {
                      std::string uid = Str(*pod, {"metadata", "uid"});
                      if (!uid.empty()) queue_.Add(uid);
                    }});
}

PodManager::~PodManager() {
  Stop();
}

void PodManager::Remember(const ObjectPtr& pod) {
  std::string uid = Str(*pod, {"metadata", "uid"});
  if (uid.empty()) return;
  {
    std::lock_guard lock(mu_);
    keys_[uid] = ObjectKey(*pod);
  }
  queue_.Add(uid);
}

void PodManager::Start() {
  pool_ = std::make_unique<WorkerPool>("pods", queue_, workers_count_,
                                       [this](const std::string& uid) { return Reconcile(uid); });
  relister_ = std::thread([this] { Relist(); });
}

void PodManager::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (relister_.joinable()) relister_.join();
  queue_.ShutDown();
  pool_.reset();
}

void PodManager::EnqueueAll() {
  for (const ObjectPtr& pod : pods_.List()) {
    std::string uid = Str(*pod, {"metadata", "uid"});
    if (!uid.empty()) queue_.Add(uid);
  }
}

void PodManager::EnqueueUsers(const std::string& kind, const std::string& ns,
                              const std::string& name) {
  for (const ObjectPtr& pod : pods_.List(ns)) {
    if (PodUses(*pod, kind, name)) queue_.Add(Str(*pod, {"metadata", "uid"}));
  }
}

Status PodManager::Reconcile(const std::string& uid) {
  // A partial view would make pods look deleted: wait for the pods (and the Services, for the
  // containers' environment).
  if (!pods_.HasSynced() || !objects_.ServicesSynced()) {
    queue_.AddAfter(uid, kNotSyncedRetry);
    return Status::Ok();
  }
  std::string key;
  {
    std::lock_guard lock(mu_);
    if (auto it = keys_.find(uid); it != keys_.end()) key = it->second;
  }
  ObjectPtr pod;
  if (!key.empty()) {
    auto [ns, name] = SplitObjectKey(key);
    pod = pods_.Get(ns, name);
    if (pod && Str(*pod, {"metadata", "uid"}) != uid) pod = nullptr;
  }
  SyncOutcome outcome = worker_.Sync(uid, pod);
  if (!outcome.status.ok()) {
    // The worker pool logs it (with the uid) and retries with back-off.
    return Status(outcome.status.code(),
                  fmt::format("pod {}: {}", key.empty() ? "-" : key, outcome.status.message()));
  }
  if (!pod) {
    std::lock_guard lock(mu_);
    keys_.erase(uid);
  } else if (outcome.requeue_after) {
    queue_.AddAfter(uid, *outcome.requeue_after);
  }
  return Status::Ok();
}

void PodManager::Relist() {
  cri::Labels mine = {{kNodeLabel, ctx_.node_name}};
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, kRelistPeriod, [this] { return stopping_; })) return;
    }
    cri::ContainerFilter containers_filter;
    containers_filter.label_selector = mine;
    auto containers = ctx_.runtime.ListContainers(containers_filter);
    cri::SandboxFilter sandboxes_filter;
    sandboxes_filter.label_selector = mine;
    auto sandboxes = ctx_.runtime.ListPodSandboxes(sandboxes_filter);
    if (!containers.ok() || !sandboxes.ok()) continue;  // the runtime is restarting

    std::map<std::string, std::pair<std::string, int>> now;
    auto uid_of = [](const cri::Labels& labels) {
      auto it = labels.find(kPodUidLabel);
      return it == labels.end() ? std::string() : it->second;
    };
    for (const auto& c : *containers) now[c.id] = {uid_of(c.labels), static_cast<int>(c.state)};
    for (const auto& s : *sandboxes) {
      now["sandbox/" + s.id] = {uid_of(s.labels), 10 + static_cast<int>(s.state)};
    }
    std::set<std::string> changed;
    for (const auto& [id, entry] : now) {
      auto it = seen_.find(id);
      if (it == seen_.end() || it->second != entry) changed.insert(entry.first);
    }
    for (const auto& [id, entry] : seen_) {
      if (!now.contains(id)) changed.insert(entry.first);
    }
    seen_ = std::move(now);

    // Pods the runtime has but the API does not (deleted while the agent was away): queued once
    // for removal, once the informer knows every pod.
    std::set<std::string> present;
    for (const auto& [id, entry] : seen_) present.insert(entry.first);
    if (pods_.HasSynced()) {
      std::set<std::string> known;
      {
        std::lock_guard lock(mu_);
        for (const auto& [uid, key] : keys_) known.insert(uid);
      }
      for (const auto& uid : present) {
        if (!uid.empty() && !known.contains(uid) && orphans_.insert(uid).second) {
          changed.insert(uid);
        }
      }
    }
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      it = present.contains(*it) ? std::next(it) : orphans_.erase(it);
    }
    for (const auto& uid : changed) {
      if (!uid.empty()) queue_.Add(uid);
    }
  }
}

}  // namespace orch::agent
