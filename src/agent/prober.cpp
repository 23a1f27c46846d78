// The probe manager (prober.h): a scheduler thread that sleeps until the earliest due probe and
// hands due probes to a bounded pool; per probe, upstream's result rules.
#include "prober.h"

#include <fmt/format.h>

#include <algorithm>

#include "grpc_probe.h"
#include "orch/log.h"

namespace orch::agent {
namespace {

using std::chrono::seconds;

constexpr std::string_view kLog = "prober";

enum class Published { kUnknown, kSuccess, kFailure };

const char* SpecKey(ProbeType type) {
  switch (type) {
    case ProbeType::kStartup:
      return "startupProbe";
    case ProbeType::kLiveness:
      return "livenessProbe";
    case ProbeType::kReadiness:
      return "readinessProbe";
  }
  return "";
}

// The involved object of a container's events, as the kubelet refers to it.
json ContainerRef(const json& pod, const std::string& container) {
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"fieldPath", fmt::format("spec.containers{{{}}}", container)},
          {"metadata",
           {{"name", Str(pod, {"metadata", "name"})},
            {"namespace", Str(pod, {"metadata", "namespace"})},
            {"uid", Str(pod, {"metadata", "uid"})},
            {"resourceVersion", Str(pod, {"metadata", "resourceVersion"})}}}};
}

int64_t AtLeast(const json& probe, const char* key, int64_t fallback, int64_t minimum) {
  int64_t v = Int(probe, {key}, fallback);
  return v < minimum ? fallback : v;
}

}  // namespace

const char* ProbeTypeName(ProbeType type) {
  switch (type) {
    case ProbeType::kStartup:
      return "Startup";
    case ProbeType::kLiveness:
      return "Liveness";
    case ProbeType::kReadiness:
      return "Readiness";
  }
  return "";
}

ProbeSettings ProbeSettingsOf(const json& probe, ProbeType type) {
  ProbeSettings s;
  s.initial_delay_seconds = std::max<int64_t>(Int(probe, {"initialDelaySeconds"}, 0), 0);
  s.period_seconds = AtLeast(probe, "periodSeconds", 10, 1);
  s.timeout_seconds = AtLeast(probe, "timeoutSeconds", 1, 1);
  s.success_threshold = AtLeast(probe, "successThreshold", 1, 1);
  s.failure_threshold = AtLeast(probe, "failureThreshold", 3, 1);
  // Liveness and startup must succeed once only (the API server insists on it too).
  if (type != ProbeType::kReadiness) s.success_threshold = 1;
  if (const json& g = At(probe, {"terminationGracePeriodSeconds"}); g.is_number_integer()) {
    s.termination_grace_seconds = g.get<int64_t>();
  }
  return s;
}

struct ProbeManager::Worker {
  std::string uid;
  std::string name;
  ProbeType type = ProbeType::kReadiness;
  ProbeSettings settings;
  json probe;
  json container;
  json ref;  // involved object of its events
  std::string pod_ip;
  std::string container_id;
  Clock::time_point next;
  bool busy = false;
  bool removed = false;
  bool on_hold = false;  // failed for good (liveness/startup) or done (startup): no more probes
  Published published = Published::kUnknown;
  HandlerOutcome last = HandlerOutcome::kError;
  int64_t run = 0;

  Published Initial() const {
    switch (type) {
      case ProbeType::kReadiness:
        return Published::kFailure;
      case ProbeType::kLiveness:
        return Published::kSuccess;
      case ProbeType::kStartup:
        return Published::kUnknown;
    }
    return Published::kUnknown;
  }
};

ProbeManager::ProbeManager(cri::Runtime& runtime, EventRecorder& events,
                           std::function<void(const std::string&)> on_change, Options options)
    : runtime_(runtime),
      events_(events),
      on_change_(std::move(on_change)),
      options_(std::move(options)) {
  options_.workers = std::max(options_.workers, 1);
}

ProbeManager::~ProbeManager() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  work_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& t : pool_) t.join();
}

void ProbeManager::StartThreadsLocked() {
  if (started_ || !options_.threads) return;
  started_ = true;
  scheduler_ = std::thread([this] { Scheduler(); });
  for (int i = 0; i < options_.workers; ++i) pool_.emplace_back([this] { PoolThread(); });
}

void ProbeManager::SyncPod(const json& pod, const std::map<std::string, Running>& running,
                           const std::string& pod_ip) {
  const std::string uid = Str(pod, {"metadata", "uid"});
  const auto steady_now = Clock::now();
  const auto system_now = std::chrono::system_clock::now();
  std::lock_guard lock(mu_);
  auto& workers = pods_[uid];
  std::map<std::string, WorkerPtr> kept;
  for (const char* list : {"containers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      const std::string name = Str(c, {"name"});
      auto it = running.find(name);
      if (it == running.end()) continue;
      for (ProbeType type : {ProbeType::kStartup, ProbeType::kLiveness, ProbeType::kReadiness}) {
        const json& probe = At(c, {SpecKey(type)});
        if (!probe.is_object()) continue;
        const std::string key = fmt::format("{}/{}", name, SpecKey(type));
        auto old = workers.find(key);
        if (old != workers.end() && old->second->container_id == it->second.id &&
            old->second->probe == probe) {
          old->second->pod_ip = pod_ip;
          kept[key] = old->second;
          continue;
        }
        // A new container (or a changed probe): start over from the initial result.
        auto w = std::make_shared<Worker>();
        w->uid = uid;
        w->name = name;
        w->type = type;
        w->settings = ProbeSettingsOf(probe, type);
        w->probe = probe;
        w->container = c;
        w->ref = ContainerRef(pod, name);
        w->pod_ip = pod_ip;
        w->container_id = it->second.id;
        w->published = w->Initial();
        // The first probe waits for initialDelaySeconds after the container started.
        auto started = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(it->second.started_at)));
        auto delay = started + seconds(w->settings.initial_delay_seconds) - system_now;
        w->next = steady_now + std::max(std::chrono::duration_cast<Clock::duration>(delay),
                                        Clock::duration::zero());
        kept[key] = std::move(w);
      }
    }
  }
  for (auto& [key, w] : workers) {
    if (!kept.contains(key) || kept[key] != w) w->removed = true;
  }
  if (kept.empty()) {
    pods_.erase(uid);
  } else {
    workers = std::move(kept);
    StartThreadsLocked();
  }
  wake_.notify_all();
}

void ProbeManager::RemovePod(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  for (auto& [key, w] : it->second) w->removed = true;
  pods_.erase(it);
  wake_.notify_all();
}

ContainerProbeState ProbeManager::StateOf(const std::string& uid, const json& container,
                                          const std::string& container_id) const {
  const std::string name = Str(container, {"name"});
  ContainerProbeState state;
  state.started = !At(container, {SpecKey(ProbeType::kStartup)}).is_object();
  bool readiness = At(container, {SpecKey(ProbeType::kReadiness)}).is_object();
  std::lock_guard lock(mu_);
  auto pod = pods_.find(uid);
  auto find = [&](ProbeType type) -> const Worker* {
    if (pod == pods_.end()) return nullptr;
    auto it = pod->second.find(fmt::format("{}/{}", name, SpecKey(type)));
    if (it == pod->second.end() || it->second->container_id != container_id) return nullptr;
    return it->second.get();
  };
  if (const Worker* startup = find(ProbeType::kStartup)) {
    state.started = startup->published == Published::kSuccess;
    if (startup->published == Published::kFailure) {
      state.failed = ProbeType::kStartup;
      state.kill_grace_seconds = startup->settings.termination_grace_seconds;
    }
  }
  if (const Worker* liveness = find(ProbeType::kLiveness)) {
    if (liveness->published == Published::kFailure && !state.failed) {
      state.failed = ProbeType::kLiveness;
      state.kill_grace_seconds = liveness->settings.termination_grace_seconds;
    }
  }
  state.ready = state.started && !readiness;
  if (const Worker* r = find(ProbeType::kReadiness)) {
    state.ready = state.started && r->published == Published::kSuccess;
  }
  return state;
}

size_t ProbeManager::size() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [uid, workers] : pods_) n += workers.size();
  return n;
}

HandlerResult ProbeManager::RunAttempt(const ProbeAttempt& a) {
  if (options_.run) return options_.run(a);
  seconds timeout(ProbeSettingsOf(a.probe, a.type).timeout_seconds);
  if (const json& exec = At(a.probe, {"exec"}); exec.is_object()) {
    return RunExecAction(runtime_, a.container_id, exec, timeout);
  }
  if (const json& http = At(a.probe, {"httpGet"}); http.is_object()) {
    return RunHttpGetAction(http, a.container, a.pod_ip, timeout, ProbeUserAgent());
  }
  if (const json& tcp = At(a.probe, {"tcpSocket"}); tcp.is_object()) {
    return RunTcpSocketAction(tcp, a.container, a.pod_ip, timeout);
  }
  if (const json& grpc = At(a.probe, {"grpc"}); grpc.is_object()) {
    return RunGrpcAction(grpc, a.pod_ip, timeout, ProbeUserAgent());
  }
  return {HandlerOutcome::kError, "probe has no handler (exec, httpGet, tcpSocket, grpc)"};
}

bool ProbeManager::Finish(const WorkerPtr& w, const std::string& container_id,
                          const HandlerResult& result, Clock::time_point now) {
  std::string event_message;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    w->busy = false;
    if (w->removed || w->container_id != container_id) return false;
    w->next = now + seconds(w->settings.period_seconds);
    wake_.notify_all();
    const char* type = ProbeTypeName(w->type);
    if (result.outcome == HandlerOutcome::kError) {
      // Upstream throws an errored attempt away (no threshold counting), but says so.
      event_message = fmt::format("{} probe errored: {}", type, result.output);
    } else {
      if (result.outcome == HandlerOutcome::kFailure) {
        event_message = fmt::format("{} probe failed: {}", type, result.output);
      }
      if (w->last == result.outcome) {
        ++w->run;
      } else {
        w->last = result.outcome;
        w->run = 1;
      }
      bool success = result.outcome == HandlerOutcome::kSuccess;
      int64_t threshold = success ? w->settings.success_threshold : w->settings.failure_threshold;
      if (w->run >= threshold) {
        Published next = success ? Published::kSuccess : Published::kFailure;
        changed = w->published != next;
        w->published = next;
        if (w->type == ProbeType::kStartup || (w->type == ProbeType::kLiveness && !success)) {
          // Startup answered its only question; a failed liveness probe waits for the kill.
          // Either way this container is not probed by it again.
          w->on_hold = true;
          w->run = 0;
          w->next = Clock::time_point::max();
        }
      }
    }
  }
  if (!event_message.empty()) {
    events_.Record(w->ref, "Warning", "Unhealthy", event_message);
    log::Debug(kLog, "pod {} container {}: {}", w->uid, w->name, event_message);
  }
  return changed;
}

void ProbeManager::CollectDueLocked(Clock::time_point now, std::vector<WorkerPtr>* due,
                                    Clock::time_point* earliest) {
  for (auto& [uid, workers] : pods_) {
    for (auto& [key, w] : workers) {
      if (w->busy || w->on_hold) continue;
      if (w->next <= now && w->type != ProbeType::kStartup) {
        // Liveness and readiness wait for the startup probe's success.
        auto s = workers.find(fmt::format("{}/{}", w->name, SpecKey(ProbeType::kStartup)));
        if (s != workers.end() && s->second->container_id == w->container_id &&
            s->second->published != Published::kSuccess) {
          w->next = now + seconds(w->settings.period_seconds);
        }
      }
      if (w->next <= now) {
        w->busy = true;
        due->push_back(w);
      } else {
        *earliest = std::min(*earliest, w->next);
      }
    }
  }
}

void ProbeManager::RunDue(Clock::time_point now) {
  std::vector<WorkerPtr> due;
  std::vector<ProbeAttempt> attempts;
  {
    std::lock_guard lock(mu_);
    auto earliest = Clock::time_point::max();
    CollectDueLocked(now, &due, &earliest);
    for (const auto& w : due) {
      attempts.push_back({w->type, w->probe, w->container, w->container_id, w->pod_ip});
    }
  }
  for (size_t i = 0; i < due.size(); ++i) {
    HandlerResult result = RunAttempt(attempts[i]);
    if (Finish(due[i], attempts[i].container_id, result, now) && on_change_) {
      on_change_(due[i]->uid);
    }
  }
}

void ProbeManager::Scheduler() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto earliest = Clock::time_point::max();
    std::vector<WorkerPtr> due;
    CollectDueLocked(Clock::now(), &due, &earliest);
    for (auto& w : due) tasks_.push_back(std::move(w));
    if (!due.empty()) work_.notify_all();
    if (earliest == Clock::time_point::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, earliest);
    }
  }
}

void ProbeManager::PoolThread() {
  std::unique_lock lock(mu_);
  while (true) {
    work_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (stopping_) return;
    WorkerPtr w = std::move(tasks_.front());
    tasks_.pop_front();
    if (w->removed) continue;
    ProbeAttempt attempt{w->type, w->probe, w->container, w->container_id, w->pod_ip};
    lock.unlock();
    HandlerResult result = RunAttempt(attempt);
    bool changed = Finish(w, attempt.container_id, result, Clock::now());
    if (changed && on_change_) on_change_(w->uid);
    lock.lock();
  }
}

}  // namespace orch::agent
