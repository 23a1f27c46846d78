// The scheduler component: informer handlers feed the cache and the queue, one thread makes the
// decisions (filter, score, assume; preempt on failure), a few workers write the results to the
// API (bindings, PodScheduled conditions, evictions) in per-pod order.
#include "orch/scheduler.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "algorithm.h"
#include "cluster_view.h"
#include "orch/log.h"
#include "scheduler_cache.h"
#include "scheduling_queue.h"

namespace orch {
namespace {

using nlohmann::json;
using sched::PodPtr;

constexpr std::string_view kLog = "scheduler";

// What may have changed for pods waiting on which filters, per kind of cluster event.
constexpr uint32_t kOnPodFreed = sched::kPluginNodePorts | sched::kPluginNodeResourcesFit |
                                 sched::kPluginPodTopologySpread | sched::kPluginInterPodAffinity;
constexpr uint32_t kOnPodPlaced = sched::kPluginPodTopologySpread | sched::kPluginInterPodAffinity;

std::string NowRfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json Involved(const sched::PodView& pod) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"namespace", pod.ns},
            {"name", pod.name},
            {"uid", pod.uid},
            {"resourceVersion", pod.resource_version}}}};
}

std::string StringAt(const json& object, const char* section, const char* field) {
  auto it = object.find(section);
  if (it == object.end() || !it->is_object()) return "";
  auto value = it->find(field);
  return value != it->end() && value->is_string() ? value->get<std::string>() : "";
}

// object[key], or null when absent (const operator[] must not be used on a missing key).
const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

const json& Labels(const json& object) {
  static const json kNull;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return kNull;
  auto labels = meta->find("labels");
  return labels == meta->end() ? kNull : *labels;
}

// Threads running tasks; tasks submitted under one key run one after another in submission
// order (a pod's failure status is written before a later binding of the same pod).
class OrderedWorkers {
 public:
  OrderedWorkers() = default;
  OrderedWorkers(const OrderedWorkers&) = delete;
  OrderedWorkers& operator=(const OrderedWorkers&) = delete;
  ~OrderedWorkers() { Stop(); }

  void Start(int count) {
    for (int i = 0; i < std::max(1, count); ++i) lanes_.push_back(std::make_unique<Lane>());
    for (auto& lane : lanes_) lane->thread = std::thread([l = lane.get()] { Run(*l); });
  }

  void Submit(const std::string& key, std::function<void()> task) {
    if (lanes_.empty()) return;
    Lane& lane = *lanes_[std::hash<std::string>()(key) % lanes_.size()];
    std::lock_guard lock(lane.mu);
    if (lane.closed) return;
    lane.tasks.push_back(std::move(task));
    lane.cv.notify_one();
  }

  // Drops what is queued, waits for running tasks, joins.
  void Stop() {
    for (auto& lane : lanes_) {
      std::lock_guard lock(lane->mu);
      lane->closed = true;
      lane->tasks.clear();
      lane->cv.notify_all();
    }
    for (auto& lane : lanes_) {
      if (lane->thread.joinable()) lane->thread.join();
    }
  }

 private:
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> tasks;  // guarded by mu
    bool closed = false;                      // guarded by mu
    std::thread thread;
  };

  static void Run(Lane& lane) {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(lane.mu);
        lane.cv.wait(lock, [&] { return lane.closed || !lane.tasks.empty(); });
        if (lane.closed) return;
        task = std::move(lane.tasks.front());
        lane.tasks.pop_front();
      }
      task();
    }
  }

  std::vector<std::unique_ptr<Lane>> lanes_;
};

// Everything the scheduler owns. Informer handlers hold a weak_ptr to it: informers cannot drop
// handlers, so after Stop (or destruction) they must find nothing to call.
class SchedulerCore : public std::enable_shared_from_this<SchedulerCore> {
 public:
  SchedulerCore(ApiClient& client, InformerFactory& informers, EventRecorder& events,
                SchedulerOptions options)
      : client_(client),
        informers_(informers),
        events_(events),
        options_(std::move(options)),
        queue_(QueueOptions(options_)),
        rng_(options_.seed != 0 ? options_.seed : std::random_device()()) {}

  Status Start();
  void Stop();

 private:
  static sched::SchedulingQueue::Options QueueOptions(const SchedulerOptions& o) {
    sched::SchedulingQueue::Options q;
    q.initial_backoff = o.initial_backoff;
    q.max_backoff = o.max_backoff;
    q.max_unschedulable = o.max_unschedulable;
    return q;
  }

  bool IsOurs(const sched::PodView& pod) const {
    if (!pod.node_name.empty() || pod.deleting || pod.IsTerminal() || pod.gated) return false;
    const std::string& name = pod.scheduler_name.empty() ? "default-scheduler" : pod.scheduler_name;
    return name == options_.scheduler_name;
  }

  void OnPod(const ObjectPtr& old_object, const ObjectPtr& object);
  void OnPodDelete(const ObjectPtr& last);
  void OnNode(const ObjectPtr& object);
  void OnNodeDelete(const ObjectPtr& last);
  void OnNamespace(const ObjectPtr& old_object, const ObjectPtr& object);
  // A claim, volume or class changed: pods waiting on their volumes may fit now.
  void OnVolumeEvent();
  sched::PodVolumes GatherVolumes(const sched::PodView& pod) const;
  Status SelectNode(const PodPtr& pod, const std::string& node,
                    const std::vector<std::string>& claims);

  bool WaitForSync();
  void Loop();
  void ScheduleOne(const sched::SchedulingQueue::Item& item);

  // API writes, on the workers.
  void Bind(const PodPtr& pod, const std::string& node,
            const std::vector<std::string>& delayed_claims);
  void RecordFailure(const PodPtr& pod, const std::string& message, const std::string& nominate,
                     bool clear_nomination);
  void Evict(const PodPtr& preemptor, const std::string& node, const std::vector<PodPtr>& victims);
  Status PatchPodStatus(const sched::PodView& pod,
                        const std::function<bool(const json&, json*)>& make);

  ApiClient& client_;
  InformerFactory& informers_;
  EventRecorder& events_;
  const SchedulerOptions options_;
  sched::SchedulerCache cache_;
  sched::SchedulingQueue queue_;
  std::mt19937_64 rng_;  // the scheduling thread's only
  Informer* pods_ = nullptr;
  Informer* nodes_ = nullptr;
  Informer* namespaces_ = nullptr;
  Informer* claims_ = nullptr;
  Informer* volumes_ = nullptr;
  Informer* classes_ = nullptr;
  std::atomic<bool> stopped_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread thread_;
  OrderedWorkers workers_;
};

Status SchedulerCore::Start() {
  pods_ = &informers_.For(resources::kPods);
  nodes_ = &informers_.For(resources::kNodes);
  namespaces_ = &informers_.For(resources::kNamespaces);
  claims_ = &informers_.For(resources::kPersistentVolumeClaims);
  volumes_ = &informers_.For(resources::kPersistentVolumes);
  classes_ = &informers_.For(resources::kStorageClasses);
  std::weak_ptr<SchedulerCore> weak = weak_from_this();
  for (Informer* informer : {claims_, volumes_, classes_}) {
    auto changed = [weak](const ObjectPtr&) {
      if (auto self = weak.lock()) self->OnVolumeEvent();
    };
    informer->AddHandler(
        {changed, [changed](const ObjectPtr&, const ObjectPtr& o) { changed(o); }, changed});
  }
  pods_->AddHandler({
      [weak](const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnPod(nullptr, o);
      },
      [weak](const ObjectPtr& old_object, const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnPod(old_object, o);
      },
      [weak](const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnPodDelete(o);
      },
  });
  nodes_->AddHandler({
      [weak](const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnNode(o);
      },
      [weak](const ObjectPtr&, const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnNode(o);
      },
      [weak](const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnNodeDelete(o);
      },
  });
  namespaces_->AddHandler({
      [weak](const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnNamespace(nullptr, o);
      },
      [weak](const ObjectPtr& old_object, const ObjectPtr& o) {
        if (auto self = weak.lock()) self->OnNamespace(old_object, o);
      },
      [weak](const ObjectPtr& o) {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        auto meta = o->find("metadata");
        if (meta != o->end()) self->cache_.RemoveNamespace(meta->value("name", ""));
      },
  });
  workers_.Start(options_.api_workers);
  thread_ = std::thread([this] { Loop(); });
  log::Info(kLog, "started as {}", options_.scheduler_name);
  return Status::Ok();
}

void SchedulerCore::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
  queue_.Close();
  if (thread_.joinable()) thread_.join();
  workers_.Stop();
}

void SchedulerCore::OnPod(const ObjectPtr& old_object, const ObjectPtr& object) {
  if (stopped_) return;
  PodPtr pod = sched::ParsePod(*object);
  if (!pod->node_name.empty()) {
    bool was_bound = false;
    bool was_terminal = false;
    if (old_object) {
      // Two fields of the old version are all that matter: no need to parse it whole.
      was_bound = !StringAt(*old_object, "spec", "nodeName").empty();
      std::string phase = StringAt(*old_object, "status", "phase");
      was_terminal = phase == "Succeeded" || phase == "Failed";
    }
    cache_.UpsertBoundPod(pod);
    queue_.Delete(pod->key);
    if (pod->IsTerminal()) {
      if (!was_terminal) queue_.MoveOnEvent(kOnPodFreed);
    } else if (!was_bound || Labels(*old_object) != Labels(*object)) {
      queue_.MoveOnEvent(kOnPodPlaced);
    }
    return;
  }
  if (IsOurs(*pod)) {
    cache_.UpsertPendingPod(pod);
    queue_.AddOrUpdate(pod);
  } else {
    queue_.Delete(pod->key);
    cache_.RemovePod(pod->CacheKey());
  }
}

void SchedulerCore::OnPodDelete(const ObjectPtr& last) {
  if (stopped_) return;
  PodPtr pod = sched::ParsePod(*last);
  bool held_room = !pod->node_name.empty() || cache_.IsAssumed(pod->CacheKey());
  cache_.RemovePod(pod->CacheKey());
  queue_.Delete(pod->key);
  if (held_room) queue_.MoveOnEvent(kOnPodFreed);
}

void SchedulerCore::OnNode(const ObjectPtr& object) {
  if (stopped_) return;
  // Heartbeats change nothing the filters read: only real changes wake unschedulable pods.
  if (cache_.UpsertNode(sched::ParseNode(*object))) queue_.MoveOnEvent(sched::kAllPlugins);
}

void SchedulerCore::OnNodeDelete(const ObjectPtr& last) {
  if (stopped_) return;
  sched::NodePtr node = sched::ParseNode(*last);
  cache_.RemoveNode(node->name);
  // Fewer domains can lower the skew a spread constraint sees.
  queue_.MoveOnEvent(sched::kPluginPodTopologySpread);
}

void SchedulerCore::OnNamespace(const ObjectPtr& old_object, const ObjectPtr& object) {
  if (stopped_) return;
  auto meta = object->find("metadata");
  if (meta == object->end() || !meta->is_object()) return;
  cache_.SetNamespaceLabels(meta->value("name", ""), sched::Labels::FromJson(Labels(*object)));
  if (old_object && Labels(*old_object) != Labels(*object)) {
    queue_.MoveOnEvent(sched::kPluginInterPodAffinity);
  }
}

void SchedulerCore::OnVolumeEvent() {
  if (stopped_) return;
  queue_.MoveOnEvent(sched::kPluginVolumeBinding);
}

sched::PodVolumes SchedulerCore::GatherVolumes(const sched::PodView& pod) const {
  sched::PodVolumes out;
  for (const std::string& name : pod.claims) {
    ObjectPtr claim = claims_->Get(pod.ns, name);
    if (!claim) {
      out.unresolvable = fmt::format("persistentvolumeclaim \"{}\" not found", name);
      return out;
    }
    if (!Member(Member(*claim, "metadata"), "deletionTimestamp").is_null()) {
      out.unresolvable = fmt::format("persistentvolumeclaim \"{}\" is being deleted", name);
      return out;
    }
    std::string volume_name = StringAt(*claim, "spec", "volumeName");
    if (!volume_name.empty()) {
      ObjectPtr volume = volumes_->Get("", volume_name);
      if (!volume) {
        out.unresolvable = fmt::format(
            "persistentvolumeclaim \"{}\" bound to non-existent persistentvolume \"{}\"", name,
            volume_name);
        return out;
      }
      const json& terms = Member(
          Member(Member(Member(*volume, "spec"), "nodeAffinity"), "required"), "nodeSelectorTerms");
      if (terms.is_array()) {
        sched::NodeSelector selector;
        for (const json& term : terms) {
          selector.terms.push_back(sched::NodeSelectorTerm::FromJson(term));
        }
        out.bound_affinity.push_back(std::move(selector));
      }
      continue;
    }
    std::string class_name = StringAt(*claim, "spec", "storageClassName");
    ObjectPtr storage_class = class_name.empty() ? nullptr : classes_->Get("", class_name);
    const json& mode = storage_class ? Member(*storage_class, "volumeBindingMode") : Member({}, "");
    if (mode.is_string() && mode.get<std::string>() == "WaitForFirstConsumer") {
      out.delayed_claims.push_back(name);
      continue;
    }
    out.unresolvable = sched::kReasonUnboundImmediate;
    return out;
  }
  return out;
}

bool SchedulerCore::WaitForSync() {
  std::unique_lock lock(stop_mu_);
  while (!stopped_) {
    // HasSynced also waits for our handlers' registration and replay (AddHandler is queued on
    // the factory thread): deciding before the nodes reached the cache would find none.
    if (pods_->HasSynced() && nodes_->HasSynced() && namespaces_->HasSynced() &&
        claims_->HasSynced() && volumes_->HasSynced() && classes_->HasSynced()) {
      return true;
    }
    // Informers have no sync notification; this only runs until the first list is in.
    stop_cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  return false;
}

void SchedulerCore::Loop() {
  if (!WaitForSync()) return;
  log::Debug(kLog, "informers synced, scheduling");
  auto next_cleanup = std::chrono::steady_clock::now();
  while (auto item = queue_.Pop()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_cleanup) {
      if (size_t n = cache_.CleanupExpired(now)) {
        log::Info(kLog, "{} assumed pod(s) expired without their binding showing up", n);
        queue_.MoveOnEvent(kOnPodFreed);
      }
      next_cleanup = now + std::chrono::seconds(1);
    }
    ScheduleOne(*item);
  }
}

void SchedulerCore::ScheduleOne(const sched::SchedulingQueue::Item& item) {
  const PodPtr& pod = item.pod;
  sched::ScheduleResult result;
  sched::PreemptionResult preemption;
  bool preempted = false;
  // Read before the cache lock: the informers have their own.
  std::optional<sched::PodVolumes> volumes;
  if (!pod->claims.empty()) volumes = GatherVolumes(*pod);
  {
    auto lock = cache_.Lock();
    if (cache_.IsAssumedLocked(pod->CacheKey())) {
      queue_.Done(pod->key);  // an older copy: its binding is on its way
      return;
    }
    sched::ClusterState state = cache_.StateLocked();
    if (volumes) state.volumes = &*volumes;
    result = sched::SchedulePod(*pod, state, rng_);
    if (!result.node.empty()) {
      cache_.AssumeLocked(pod, result.node);
    } else if (options_.enable_preemption && !result.statuses.empty()) {
      preemption = sched::Preempt(*pod, state, result.statuses);
      preempted = !preemption.node.empty();
      if (preempted) cache_.NominateLocked(pod, preemption.node);
    }
  }
  auto self = shared_from_this();
  if (!result.node.empty()) {
    queue_.Done(pod->key);
    std::vector<std::string> delayed;
    if (volumes) delayed = std::move(volumes->delayed_claims);
    workers_.Submit(pod->key, [self, pod, node = result.node, delayed = std::move(delayed)] {
      self->Bind(pod, node, delayed);
    });
    return;
  }
  std::string message = result.message;
  if (!preemption.message.empty()) message += " " + preemption.message;
  queue_.Unschedulable(pod->key, result.failed_plugins);
  log::Debug(kLog, "{}: {}", pod->key, message);
  bool clear = options_.enable_preemption && !preempted && !result.statuses.empty() &&
               !pod->nominated_node_name.empty() &&
               preemption.message.find("not eligible due to a terminating") == std::string::npos;
  workers_.Submit(pod->key, [self, pod, message, preemption, preempted, clear] {
    if (preempted) self->Evict(pod, preemption.node, preemption.victims);
    self->RecordFailure(pod, message, preempted ? preemption.node : "", clear);
  });
}

// Upstream's VolumeBinding PreBind, minus its wait: the claims learn the node so that the
// provisioner makes their volumes there; the node's agent waits for them to be bound.
Status SchedulerCore::SelectNode(const PodPtr& pod, const std::string& node,
                                 const std::vector<std::string>& claims) {
  for (const std::string& name : claims) {
    ObjectPtr claim = claims_->Get(pod->ns, name);
    if (claim) {
      const json& selected =
          Member(Member(Member(*claim, "metadata"), "annotations"), sched::kSelectedNodeAnnotation);
      if (selected.is_string() && selected.get<std::string>() == node) continue;
    }
    json patch = {{"metadata", {{"annotations", {{sched::kSelectedNodeAnnotation, node}}}}}};
    Result<json> patched = client_.Patch(resources::kPersistentVolumeClaims, pod->ns, name,
                                         PatchType::kMerge, patch.dump());
    if (!patched.ok()) {
      return Status(patched.status().code(), fmt::format("persistentvolumeclaim \"{}\": {}", name,
                                                         patched.status().message()));
    }
  }
  return Status::Ok();
}

void SchedulerCore::Bind(const PodPtr& pod, const std::string& node,
                         const std::vector<std::string>& delayed_claims) {
  if (Status s = SelectNode(pod, node, delayed_claims); !s.ok()) {
    cache_.Forget(pod->CacheKey());
    queue_.MoveOnEvent(kOnPodFreed);
    log::Warn(kLog, "binding {} to {}: {}", pod->key, node, s.ToString());
    events_.Record(Involved(*pod), "Warning", "FailedScheduling",
                   fmt::format("running PreBind plugin \"VolumeBinding\": {}", s.message()));
    if (!stopped_) queue_.Requeue(pod);
    return;
  }
  json body = {{"apiVersion", "v1"},
               {"kind", "Binding"},
               {"metadata", {{"name", pod->name}, {"namespace", pod->ns}}},
               {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
  Result<json> bound = client_.Post(resources::kPods, pod->ns, pod->name, "binding", body);
  if (bound.ok()) {
    cache_.FinishBinding(pod->CacheKey(), std::chrono::steady_clock::now());
    events_.Record(Involved(*pod), "Normal", "Scheduled",
                   fmt::format("Successfully assigned {}/{} to {}", pod->ns, pod->name, node));
    return;
  }
  cache_.Forget(pod->CacheKey());
  queue_.MoveOnEvent(kOnPodFreed);  // the room it was assumed to take is free again
  const Status& status = bound.status();
  if (status.code() == StatusCode::kNotFound) return;  // deleted meanwhile
  if (status.code() == StatusCode::kConflict) {
    // Bound by someone else or being deleted: the informer brings the news.
    log::Info(kLog, "binding {} to {}: {}", pod->key, node, status.message());
    return;
  }
  log::Warn(kLog, "binding {} to {} failed: {}", pod->key, node, status.ToString());
  events_.Record(Involved(*pod), "Warning", "FailedScheduling",
                 fmt::format("Binding rejected: {}", status.message()));
  if (!stopped_) queue_.Requeue(pod);
}

// Writes a pod's status with a merge patch computed by `make` from the pod as stored (its
// conditions list is replaced whole), pinned to the resourceVersion it was computed from, so a
// concurrent writer (the agent, a binding) is never overwritten: on conflict the pod is read
// again and `make` asked again. `make` returns false when there is nothing (more) to write.
Status SchedulerCore::PatchPodStatus(const sched::PodView& pod,
                                     const std::function<bool(const json&, json*)>& make) {
  ObjectPtr cached = pods_->Get(pod.ns, pod.name);
  json current = cached ? *cached : json();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (current.is_null()) {
      Result<json> fresh = client_.Get(resources::kPods, pod.ns, pod.name);
      if (!fresh.ok()) return fresh.status();
      current = std::move(*fresh);
    }
    const json& meta = current["metadata"];
    if (meta.value("uid", "") != pod.uid) return Status::Ok();  // another pod of that name
    json status = json::object();
    if (!make(current, &status) || status.empty()) return Status::Ok();
    json patch = {{"metadata", {{"resourceVersion", meta.value("resourceVersion", "")}}},
                  {"status", std::move(status)}};
    Result<json> r = client_.Patch(resources::kPods, pod.ns, pod.name, PatchType::kMerge,
                                   patch.dump(), "status");
    if (r.ok() || r.status().code() != StatusCode::kConflict) return r.status();
    current = json();  // stale: read it again
  }
  return Conflict("the pod kept changing");
}

// The pod's conditions with `condition` in place of the one of its type; lastTransitionTime is
// kept when the status does not change. False when the list would not change.
bool SetCondition(const json& pod, json condition, json* conditions) {
  *conditions = json::array();
  bool found = false;
  bool changed = true;
  auto status = pod.find("status");
  if (status != pod.end() && status->contains("conditions") && (*status)["conditions"].is_array()) {
    for (const json& c : (*status)["conditions"]) {
      if (c.value("type", "") != condition["type"]) {
        conditions->push_back(c);
        continue;
      }
      found = true;
      if (c.value("status", "") == condition["status"]) {
        if (c.contains("lastTransitionTime")) {
          condition["lastTransitionTime"] = c["lastTransitionTime"];
        }
        changed = c.value("reason", "") != condition.value("reason", "") ||
                  c.value("message", "") != condition.value("message", "");
      }
      conditions->push_back(condition);
    }
  }
  if (!found) conditions->push_back(condition);
  return changed;
}

void SchedulerCore::RecordFailure(const PodPtr& pod, const std::string& message,
                                  const std::string& nominate, bool clear_nomination) {
  events_.Record(Involved(*pod), "Warning", "FailedScheduling", message);
  Status s = PatchPodStatus(*pod, [&](const json& current, json* status) {
    if (!current["spec"].value("nodeName", "").empty()) return false;  // bound meanwhile
    json condition = {{"type", "PodScheduled"},    {"status", "False"},
                      {"lastProbeTime", nullptr},  {"lastTransitionTime", NowRfc3339()},
                      {"reason", "Unschedulable"}, {"message", message}};
    json conditions;
    if (SetCondition(current, std::move(condition), &conditions)) {
      (*status)["conditions"] = std::move(conditions);
    }
    std::string have;
    if (current.contains("status")) have = current["status"].value("nominatedNodeName", "");
    if (!nominate.empty() && nominate != have) {
      (*status)["nominatedNodeName"] = nominate;
    } else if (nominate.empty() && clear_nomination && !have.empty()) {
      (*status)["nominatedNodeName"] = nullptr;
    }
    return true;
  });
  if (!s.ok() && s.code() != StatusCode::kNotFound) {
    log::Warn(kLog, "status of {}: {}", pod->key, s.ToString());
  }
}

void SchedulerCore::Evict(const PodPtr& preemptor, const std::string& node,
                          const std::vector<PodPtr>& victims) {
  log::Info(kLog, "{} preempts {} pod(s) on {}", preemptor->key, victims.size(), node);
  for (const PodPtr& victim : victims) {
    if (victim->deleting) continue;
    // Tell the victim's owner why it goes, as upstream's DisruptionTarget condition does.
    Status marked = PatchPodStatus(*victim, [&](const json& current, json* status) {
      json condition = {
          {"type", "DisruptionTarget"},
          {"status", "True"},
          {"lastTransitionTime", NowRfc3339()},
          {"reason", "PreemptionByScheduler"},
          {"message", fmt::format("{}: preempting to accommodate a higher priority pod",
                                  options_.scheduler_name)}};
      json conditions;
      if (SetCondition(current, std::move(condition), &conditions)) {
        (*status)["conditions"] = std::move(conditions);
      }
      return true;
    });
    if (marked.code() == StatusCode::kNotFound) continue;
    DeleteOptions options;
    options.precondition_uid = victim->uid;
    Result<json> deleted = client_.Delete(resources::kPods, victim->ns, victim->name, options);
    if (!deleted.ok()) {
      if (deleted.status().code() != StatusCode::kNotFound) {
        log::Warn(kLog, "preempting {}: {}", victim->key, deleted.status().ToString());
      }
      continue;
    }
    events_.Record(Involved(*victim), "Normal", "Preempted",
                   fmt::format("Preempted by pod {} on node {}", preemptor->uid, node));
  }
}

class SchedulerComponent : public Component {
 public:
  explicit SchedulerComponent(std::shared_ptr<SchedulerCore> core) : core_(std::move(core)) {}
  ~SchedulerComponent() override {
    if (started_) core_->Stop();
  }

  std::string_view Name() const override { return "scheduler"; }

  Status Start() override {
    Status s = core_->Start();
    started_ = s.ok();
    return s;
  }

  void Stop() override {
    if (!started_) return;
    started_ = false;
    core_->Stop();
  }

 private:
  std::shared_ptr<SchedulerCore> core_;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Component> NewScheduler(ApiClient& client, InformerFactory& informers,
                                        EventRecorder& events, SchedulerOptions options) {
  return std::make_unique<SchedulerComponent>(
      std::make_shared<SchedulerCore>(client, informers, events, std::move(options)));
}

}  // namespace orch
