// One sync pass of a pod (pod_worker.h): from the spec and the runtime's state to containers,
// status and events; termination and cleanup.
#include "pod_worker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "container_config.h"
#include "lifecycle.h"
#include "orch/files.h"
#include "orch/log.h"
#include "runtime_labels.h"

namespace orch::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kLog = "agent";
// The kubelet never gives a container less than this to stop, even on a forced delete.
constexpr seconds kMinimumGrace(2);
// A running pod is looked at again this often even when nothing signals a change.
constexpr milliseconds kResync = std::chrono::minutes(1);
// Retry of a container whose config or creation failed (a missing ConfigMap wakes it sooner).
constexpr milliseconds kConfigRetry = seconds(10);
constexpr size_t kMaxTerminationMessage = 4096;
constexpr size_t kFallbackLogBytes = 2048;
constexpr size_t kFallbackLogLines = 80;

bool ShouldRestart(const std::string& policy, int32_t exit_code) {
  return policy == "Always" || (policy == "OnFailure" && exit_code != 0);
}

// "name_namespace(uid)", how the kubelet names a pod in messages.
std::string PodDesc(const json& pod) {
  return fmt::format("{}_{}({})", Str(pod, {"metadata", "name"}),
                     Str(pod, {"metadata", "namespace"}), Str(pod, {"metadata", "uid"}));
}

uint32_t RestartCountOf(const cri::Container& c) {
  auto it = c.annotations.find(kRestartCountAnnotation);
  if (it != c.annotations.end()) {
    try {
      return static_cast<uint32_t>(std::stoul(it->second));
    } catch (const std::exception&) {
    }
  }
  return c.attempt;
}

cri::Labels PodSelector(const std::string& node, const std::string& uid) {
  return {{kPodUidLabel, uid}, {kNodeLabel, node}};
}

// The last lines of a CRI log file, without the "<time> <stream> <tag> " prefixes.
std::string LogTail(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t from = std::max<off_t>(0, size - 64 * 1024);
  std::string text(static_cast<size_t>(size - from), '\0');
  ssize_t n = ::pread(fd, text.data(), text.size(), from);
  ::close(fd);
  if (n <= 0) return "";
  text.resize(static_cast<size_t>(n));
  std::vector<std::string> lines;
  std::string partial;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t a = line.find(' ');
    size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    size_t c = b == std::string::npos ? b : line.find(' ', b + 1);
    if (c == std::string::npos) continue;
    std::string tag = line.substr(b + 1, c - b - 1);
    partial += line.substr(c + 1);
    if (tag == "P") continue;
    lines.push_back(std::move(partial));
    partial.clear();
  }
  size_t first = lines.size() > kFallbackLogLines ? lines.size() - kFallbackLogLines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) out += lines[i] + "\n";
  if (out.size() > kFallbackLogBytes) out = out.substr(out.size() - kFallbackLogBytes);
  return out;
}

// What a finished container left at terminationMessagePath, or (FallbackToLogsOnError) the end
// of its log when it failed without one.
std::string TerminationMessage(const cri::ContainerStatus& s) {
  std::string message;
  if (auto it = s.container.annotations.find(kTerminationMessageFileAnnotation);
      it != s.container.annotations.end()) {
    auto text = ReadFileToString(it->second);
    if (text.ok()) message = text->substr(0, kMaxTerminationMessage);
  }
  auto policy = s.container.annotations.find(kTerminationMessagePolicyAnnotation);
  if (message.empty() && s.exit_code != 0 && policy != s.container.annotations.end() &&
      policy->second == "FallbackToLogsOnError" && !s.log_path.empty()) {
    message = LogTail(s.log_path);
  }
  return message;
}

std::string RandomHex() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

json PodRef(const json& pod) {
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata",
           {{"name", Str(pod, {"metadata", "name"})},
            {"namespace", Str(pod, {"metadata", "namespace"})},
            {"uid", Str(pod, {"metadata", "uid"})},
            {"resourceVersion", Str(pod, {"metadata", "resourceVersion"})}}}};
}

const json* FindContainerSpec(const json& pod, const std::string& name) {
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      if (Str(c, {"name"}) == name) return &c;
    }
  }
  return nullptr;
}

struct PodWorker::Pass {
  Pass(const json& p, PodState& s, std::string u)
      : pod(p), state(s), uid(std::move(u)), pod_ref(PodRef(p)) {}

  const json& pod;
  PodState& state;
  std::string uid;
  json pod_ref;
  std::string sandbox_id;
  cri::PodSandboxConfig sandbox;
  VolumeMap volumes;
  std::map<std::string, std::pair<std::string, std::string>> waiting;  // name -> reason, message
  std::optional<milliseconds> requeue_after;
  bool changed = false;  // containers were started, stopped or removed

  void WakeAfter(milliseconds d) {
    d = std::max(d, milliseconds(100));
    if (!requeue_after || d < *requeue_after) requeue_after = d;
  }
};

PodWorker::PodWorker(PodWorkerContext& ctx)
    : ctx_(ctx),
      own_probes_(ctx.probes != nullptr
                      ? nullptr
                      : std::make_unique<ProbeManager>(ctx.runtime, ctx.events,
                                                       [&ctx](const std::string& uid) {
                                                         if (ctx.requeue) ctx.requeue(uid);
                                                       })),
      probes_(ctx.probes != nullptr ? *ctx.probes : *own_probes_) {}

EnvContext PodWorker::EnvContextFor(const PodState& state) const {
  EnvContext env;
  env.node_name = ctx_.node_name;
  env.pod_ips = state.pod_ips;
  env.pod_ip = state.pod_ips.empty() ? "" : state.pod_ips.front();
  env.host_ip = ctx_.node_ip;
  env.node_cpu_milli = ctx_.node_cpu_milli;
  env.node_memory_bytes = ctx_.node_memory_bytes;
  env.node_ephemeral_bytes = ctx_.node_ephemeral_bytes;
  return env;
}

PodWorker::~PodWorker() {
  std::map<std::string, std::unique_ptr<KillJob>> kills;
  {
    std::lock_guard lock(mu_);
    kills.swap(kills_);
  }
  for (auto& [uid, job] : kills) job->thread.join();
}

bool PodWorker::KillingInBackground(const std::string& uid, const json* pod,
                                    std::chrono::seconds grace) {
  std::unique_ptr<KillJob> finished;
  {
    std::lock_guard lock(mu_);
    auto it = kills_.find(uid);
    if (it != kills_.end()) {
      if (!it->second->done) return true;
      finished = std::move(it->second);
      kills_.erase(it);
    } else if (pod != nullptr) {
      auto job = std::make_unique<KillJob>();
      KillJob* raw = job.get();
      raw->thread = std::thread([this, raw, uid, copy = *pod, grace] {
        KillAll(&copy, uid, grace);
        raw->done = true;
        if (ctx_.requeue) ctx_.requeue(uid);
      });
      kills_[uid] = std::move(job);
      return true;
    }
  }
  if (finished) finished->thread.join();
  return false;
}

PodWorker::PodState& PodWorker::StateFor(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto& slot = states_[uid];
  if (!slot) slot = std::make_unique<PodState>();
  return *slot;
}

void PodWorker::ForgetState(const std::string& uid) {
  std::lock_guard lock(mu_);
  states_.erase(uid);
}

SyncOutcome PodWorker::Sync(const std::string& uid, const ObjectPtr& pod) {
  if (!pod || Str(*pod, {"metadata", "uid"}) != uid) return Cleanup(uid);
  PodState& state = StateFor(uid);
  if (At(*pod, {"metadata", "deletionTimestamp"}).is_string()) return Terminate(uid, *pod, state);
  std::string phase = Str(*pod, {"status", "phase"});
  if (state.terminal || phase == "Succeeded" || phase == "Failed") {
    return StopTerminal(uid, *pod, state);
  }
  return SyncActive(uid, *pod, state);
}

Result<std::map<std::string, std::vector<ContainerInstance>>> PodWorker::Instances(
    const std::string& uid) {
  cri::ContainerFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  auto containers = ctx_.runtime.ListContainers(filter);
  if (!containers.ok()) return containers.status();
  std::map<std::string, std::vector<ContainerInstance>> out;
  for (const cri::Container& c : *containers) {
    auto status = ctx_.runtime.GetContainerStatus(c.id);
    if (!status.ok()) {
      if (status.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
      return status.status();
    }
    ContainerInstance instance;
    instance.status = std::move(*status);
    // CRI's ContainerStatus does not name the sandbox; the list entry does.
    instance.status.container.sandbox_id = c.sandbox_id;
    instance.restart_count = RestartCountOf(instance.status.container);
    if (instance.status.container.state == cri::ContainerState::kExited) {
      instance.termination_message = TerminationMessage(instance.status);
    }
    auto name_it = c.labels.find(kContainerNameLabel);
    out[name_it != c.labels.end() ? name_it->second : c.name].push_back(std::move(instance));
  }
  for (auto& [name, list] : out) {
    std::sort(list.begin(), list.end(), [](const ContainerInstance& a, const ContainerInstance& b) {
      if (a.restart_count != b.restart_count) return a.restart_count > b.restart_count;
      return a.status.container.created_at > b.status.container.created_at;
    });
  }
  return out;
}

Result<std::pair<std::string, cri::PodSandboxConfig>> PodWorker::EnsureSandbox(const json& pod,
                                                                               PodState& state) {
  const std::string uid = Str(pod, {"metadata", "uid"});
  cri::SandboxFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  auto sandboxes = ctx_.runtime.ListPodSandboxes(filter);
  if (!sandboxes.ok()) return sandboxes.status();
  std::sort(sandboxes->begin(), sandboxes->end(),
            [](const cri::PodSandbox& a, const cri::PodSandbox& b) {
              return a.created_at > b.created_at;
            });
  const bool host_network = IsHostNetwork(pod);
  auto learn_addresses = [&](const std::string& id) -> Status {
    if (state.sandbox_id == id) return Status::Ok();
    if (host_network) {
      state.pod_ips = {ctx_.node_ip};
    } else {
      auto status = ctx_.runtime.GetPodSandboxStatus(id);
      if (!status.ok()) return status.status();
      state.pod_ips.clear();
      if (!status->ip.empty()) state.pod_ips.push_back(status->ip);
      for (const auto& ip : status->additional_ips) state.pod_ips.push_back(ip);
    }
    state.sandbox_id = id;
    return Status::Ok();
  };
  if (!sandboxes->empty() && sandboxes->front().state == cri::SandboxState::kReady) {
    const cri::PodSandbox& current = sandboxes->front();
    if (Status s = learn_addresses(current.id); !s.ok()) return s;
    return std::pair{current.id, BuildSandboxConfig(pod, ctx_.sandbox, current.attempt)};
  }

  uint32_t attempt = 0;
  if (!sandboxes->empty()) {
    attempt = sandboxes->front().attempt + 1;
    ctx_.events.Record(PodRef(pod), "Normal", "SandboxChanged",
                       "Pod sandbox changed, it will be killed and re-created.");
    for (size_t i = 0; i < sandboxes->size(); ++i) {
      const std::string& id = (*sandboxes)[i].id;
      if (Status s = ctx_.runtime.StopPodSandbox(id); !s.ok()) return s;
      // The newest old sandbox keeps its containers for `kubectl logs --previous`.
      if (i > 0) (void)ctx_.runtime.RemovePodSandbox(id);
    }
  }
  cri::PodSandboxConfig config = BuildSandboxConfig(pod, ctx_.sandbox, attempt);
  if (Status s = MakeDirectories(config.log_directory, 0755); !s.ok()) return s;
  if (Status s = MakeDirectories(ctx_.paths.PodDir(uid), 0750); !s.ok()) return s;
  if (ctx_.cgroups != nullptr) {
    if (Status s = ctx_.cgroups->Ensure(pod); !s.ok()) return s;
  }
  auto id = ctx_.runtime.RunPodSandbox(config);
  if (!id.ok()) return id.status();
  state.sandbox_id.clear();
  if (Status s = learn_addresses(*id); !s.ok()) return s;
  if (!host_network) {
    Status s =
        WriteFileAtomic(ctx_.paths.PodDir(uid) + "/etc-hosts",
                        HostsFileContent(pod, state.pod_ips, ctx_.sandbox.cluster_domain), 0644);
    if (!s.ok()) return s;
  }
  log::Info(kLog, "pod {}/{}: sandbox {} (attempt {}) at {}", config.namespace_, config.name,
            id->substr(0, 12), attempt, state.pod_ips.empty() ? "-" : state.pod_ips.front());
  return std::pair{*id, std::move(config)};
}

void PodWorker::StartContainer(Pass& pass, const json& container, uint32_t restart_count) {
  const json& pod = pass.pod;
  const std::string name = Str(container, {"name"});
  auto fail = [&](const std::string& reason, const std::string& message) {
    pass.waiting[name] = {reason, message};
    ctx_.events.Record(pass.pod_ref, "Warning", "Failed", "Error: " + message);
    pass.WakeAfter(kConfigRetry);
  };

  ImageOutcome image = ctx_.images.Ensure(pod, container, pass.pod_ref, pass.sandbox);
  if (!image.ok()) {
    pass.waiting[name] = {image.reason, image.message};
    pass.WakeAfter(image.retry_after.count() > 0 ? image.retry_after : kConfigRetry);
    return;
  }
  if (EffectiveRunAsNonRoot(pod, container)) {
    std::optional<int64_t> user = EffectiveRunAsUser(pod, container);
    if (!user) {
      auto status = ctx_.runtime.GetImageStatus(image.image_ref);
      if (status.ok() && status->uid) user = *status->uid;
      if (status.ok() && !status->uid && !status->username.empty()) {
        return fail("CreateContainerConfigError",
                    fmt::format("container has runAsNonRoot and image has non-numeric user ({}), "
                                "cannot verify user is non-root (pod: \"{}\", container: {})",
                                status->username, PodDesc(pod), name));
      }
    }
    if (!user || *user == 0) {
      return fail("CreateContainerConfigError",
                  fmt::format("container has runAsNonRoot and image will run as root (pod: "
                              "\"{}\", container: {})",
                              PodDesc(pod), name));
    }
  }

  EnvContext env_context = EnvContextFor(pass.state);
  auto env = BuildEnvironment(pod, container, env_context, ctx_.objects);
  if (!env.ok()) return fail("CreateContainerConfigError", env.status().message());
  for (const auto& warning : env->warnings) {
    ctx_.events.Record(pass.pod_ref, "Warning", "InvalidEnvironmentVariableNames", warning);
  }

  auto mounts = ctx_.volumes.MountsFor(container, pass.volumes, env->env);
  if (!mounts.ok()) return fail("CreateContainerConfigError", mounts.status().message());
  auto mounted_at = [&](const std::string& path) {
    return std::any_of(mounts->begin(), mounts->end(),
                       [&](const cri::Mount& m) { return m.container_path == path; });
  };
  const std::string pod_dir = ctx_.paths.PodDir(pass.uid);
  if (!IsHostNetwork(pod) && !mounted_at("/etc/hosts")) {
    mounts->push_back({pod_dir + "/etc-hosts", "/etc/hosts", false});
  }
  ContainerInputs in;
  std::string message_path = Str(container, {"terminationMessagePath"}, "/dev/termination-log");
  if (!message_path.empty() && !mounted_at(message_path)) {
    std::string dir = pod_dir + "/containers/" + name;
    std::string file = dir + "/" + RandomHex();
    Status s = MakeDirectories(dir, 0755);
    if (s.ok()) s = WriteFileAtomic(file, "", 0666);
    if (!s.ok()) return fail("CreateContainerConfigError", s.message());
    mounts->push_back({file, message_path, false});
    in.termination_message_file = file;
  }
  if (Status s = MakeDirectories(pass.sandbox.log_directory + "/" + name, 0755); !s.ok()) {
    return fail("CreateContainerConfigError", s.message());
  }

  in.node_name = ctx_.node_name;
  in.node_memory_bytes = ctx_.node_memory_bytes;
  in.restart_count = restart_count;
  in.image_ref = image.image_ref;
  in.env = std::move(env->env);
  in.mounts = std::move(*mounts);
  cri::ContainerConfig config = BuildContainerConfig(pod, container, in);
  auto id = ctx_.runtime.CreateContainer(pass.sandbox_id, config, pass.sandbox);
  if (!id.ok()) return fail("CreateContainerError", id.status().message());
  pass.changed = true;
  ctx_.events.Record(pass.pod_ref, "Normal", "Created", "Created container " + name);
  if (Status s = ctx_.runtime.StartContainer(*id); !s.ok()) {
    return fail("RunContainerError", s.message());
  }
  ctx_.events.Record(pass.pod_ref, "Normal", "Started", "Started container " + name);
  // postStart runs before the pod goes on, as upstream's does; a failed hook kills the container,
  // which then restarts (or not) by the restart policy.
  if (const json& hook = At(container, {"lifecycle", "postStart"}); hook.is_object()) {
    Status s =
        RunLifecycleHook(ctx_.runtime, pod, container, hook, *id, env_context.pod_ip, seconds(0));
    if (!s.ok()) {
      ctx_.events.Record(pass.pod_ref, "Warning", "FailedPostStartHook", s.message());
      KillContainer(pod, *id, name,
                    seconds(Int(pod, {"spec", "terminationGracePeriodSeconds"}, 30)),
                    "FailedPostStartHook");
      pass.WakeAfter(milliseconds(0));
    }
  }
}

void PodWorker::RestartWithBackoff(Pass& pass, const json& container,
                                   const ContainerInstance& last) {
  const std::string name = Str(container, {"name"});
  const std::string key = pass.uid + "/" + name;
  auto now = Backoff::Clock::now();
  auto finished =
      last.status.finished_at > 0
          ? Backoff::Clock::time_point(std::chrono::duration_cast<Backoff::Clock::duration>(
                std::chrono::nanoseconds(last.status.finished_at)))
          : now;
  if (crash_backoff_.InBackoff(key, finished, now)) {
    std::string delay = GoDuration(crash_backoff_.Delay(key, now));
    pass.waiting[name] = {"CrashLoopBackOff",
                          fmt::format("back-off {} restarting failed container={} pod={}", delay,
                                      name, PodDesc(pass.pod))};
    ctx_.events.Record(
        pass.pod_ref, "Warning", "BackOff",
        fmt::format("Back-off restarting failed container {} in pod {}", name, PodDesc(pass.pod)));
    pass.WakeAfter(
        std::chrono::ceil<milliseconds>(crash_backoff_.ReadyAt(key, finished, now) - now));
    return;
  }
  crash_backoff_.Next(key, now);
  StartContainer(pass, container, last.restart_count + 1);
}

void PodWorker::KillContainer(const json& pod, const std::string& container_id,
                              const std::string& name, seconds grace, const std::string& message) {
  if (!pod.is_null()) {
    ctx_.events.Record(PodRef(pod), "Normal", "Killing",
                       message.empty() ? "Stopping container " + name : message);
    // preStop first, within the grace period; the TERM gets what is left of it.
    static const json kNone;
    const json* spec = FindContainerSpec(pod, name);
    const json& hook = spec != nullptr ? At(*spec, {"lifecycle", "preStop"}) : kNone;
    if (hook.is_object() && grace.count() > 0) {
      auto start = std::chrono::steady_clock::now();
      Status s = RunLifecycleHook(ctx_.runtime, pod, *spec, hook, container_id,
                                  Str(pod, {"status", "podIP"}), grace);
      if (!s.ok()) ctx_.events.Record(PodRef(pod), "Warning", "FailedPreStopHook", s.message());
      grace -= std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - start);
    }
  }
  if (Status s = ctx_.runtime.StopContainer(container_id, std::max(grace, kMinimumGrace));
      !s.ok()) {
    log::Warn(kLog, "stopping container {} ({}): {}", name, container_id.substr(0, 12),
              s.message());
  }
}

void PodWorker::KillAll(const json* pod, const std::string& uid, seconds grace) {
  cri::ContainerFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  filter.state = cri::ContainerState::kRunning;
  auto running = ctx_.runtime.ListContainers(filter);
  if (!running.ok()) return;
  // Every container gets the whole grace period: they stop side by side, as upstream does.
  std::vector<std::thread> stops;
  static const json kNoPod;
  for (const cri::Container& c : *running) {
    auto name_it = c.labels.find(kContainerNameLabel);
    std::string name = name_it != c.labels.end() ? name_it->second : c.name;
    stops.emplace_back([this, pod, id = c.id, name, grace] {
      KillContainer(pod != nullptr ? *pod : kNoPod, id, name, grace, "");
    });
  }
  for (auto& t : stops) t.join();
}

bool PodWorker::ApplyProbes(
    Pass& pass, const std::map<std::string, std::vector<ContainerInstance>>& instances) {
  std::map<std::string, ProbeManager::Running> running;
  for (const json& c : Array(pass.pod, {"spec", "containers"})) {
    auto it = instances.find(Str(c, {"name"}));
    if (it == instances.end() || it->second.empty()) continue;
    const cri::ContainerStatus& current = it->second.front().status;
    if (current.container.state != cri::ContainerState::kRunning ||
        current.container.sandbox_id != pass.sandbox_id) {
      continue;
    }
    running[it->first] = {current.container.id, current.started_at};
  }
  std::string pod_ip = pass.state.pod_ips.empty() ? ctx_.node_ip : pass.state.pod_ips.front();
  probes_.SyncPod(pass.pod, running, pod_ip);
  bool killed = false;
  for (const auto& [name, r] : running) {
    ContainerProbeState probed =
        probes_.StateOf(pass.uid, *FindContainerSpec(pass.pod, name), r.id);
    if (!probed.failed) continue;
    int64_t grace = probed.kill_grace_seconds.value_or(
        Int(pass.pod, {"spec", "terminationGracePeriodSeconds"}, 30));
    KillContainer(pass.pod, r.id, name, seconds(std::max<int64_t>(grace, 0)),
                  fmt::format("Container {} failed {} probe, will be restarted", name,
                              *probed.failed == ProbeType::kLiveness ? "liveness" : "startup"));
    killed = true;
  }
  return killed;
}

PodView PodWorker::ViewOf(
    const json& pod, const PodState& state, bool sandbox_ready,
    const std::map<std::string, std::vector<ContainerInstance>>& instances,
    const std::map<std::string, std::pair<std::string, std::string>>& waiting) {
  PodView view;
  view.host_ip = ctx_.node_ip;
  view.pod_ips = state.pod_ips;
  view.sandbox_ready = sandbox_ready;
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      std::string name = Str(c, {"name"});
      ContainerView& cv = view.containers[name];
      if (auto it = instances.find(name); it != instances.end()) {
        if (!it->second.empty()) cv.current = it->second[0];
        if (it->second.size() > 1) cv.previous = it->second[1];
      }
      if (cv.current && cv.current->status.container.state == cri::ContainerState::kRunning &&
          !view.terminating) {
        ContainerProbeState probed =
            probes_.StateOf(Str(pod, {"metadata", "uid"}), c, cv.current->status.container.id);
        cv.started = probed.started;
        cv.ready = probed.ready;
      }
      if (auto it = waiting.find(name); it != waiting.end()) {
        cv.waiting_reason = it->second.first;
        cv.waiting_message = it->second.second;
      }
    }
  }
  return view;
}

Status PodWorker::WriteStatus(const json& pod, PodState& state, const json& status) {
  // What the API shows needs no copy here (4 KB of JSON per pod, kept for every running pod);
  // a written status is remembered only until the informer shows it.
  if (status == At(pod, {"status"})) {
    state.last_status = nullptr;
    return Status::Ok();
  }
  if (status == state.last_status) return Status::Ok();
  const std::string ns = Str(pod, {"metadata", "namespace"});
  const std::string name = Str(pod, {"metadata", "name"});
  json object = pod;
  object["status"] = status;
  auto written = ctx_.client.Update(resources::kPods, ns, object, "status");
  if (!written.ok() && written.status().code() == StatusCode::kConflict) {
    auto fresh = ctx_.client.Get(resources::kPods, ns, name);
    if (!fresh.ok()) return fresh.status();
    if (Str(*fresh, {"metadata", "uid"}) != Str(pod, {"metadata", "uid"})) return Status::Ok();
    (*fresh)["status"] = status;
    written = ctx_.client.Update(resources::kPods, ns, *fresh, "status");
  }
  if (!written.ok()) {
    if (written.status().code() == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }
  state.last_status = status;
  return Status::Ok();
}

SyncOutcome PodWorker::SyncActive(const std::string& uid, const json& pod, PodState& state) {
  Pass pass(pod, state, uid);
  const std::string policy = Str(pod, {"spec", "restartPolicy"}, "Always");
  std::map<std::string, std::vector<ContainerInstance>> instances;
  // Status while the pod cannot go further yet: whatever the runtime has, waiting otherwise.
  auto write_waiting = [&](const std::string& reason, const std::string& message) {
    auto current = Instances(uid);
    if (current.ok()) instances = std::move(*current);
    for (const char* list : {"initContainers", "containers"}) {
      for (const json& c : Array(pod, {"spec", list})) {
        if (!reason.empty()) pass.waiting[Str(c, {"name"})] = {reason, message};
      }
    }
    PodView view = ViewOf(pod, state, false, instances, pass.waiting);
    return WriteStatus(pod, state, ComputePodStatus(pod, view, std::chrono::system_clock::now()));
  };

  if (!IsHostNetwork(pod) && !ctx_.network_ready()) {
    ctx_.events.Record(pass.pod_ref, "Warning", "NetworkNotReady",
                       "network is not ready: container runtime network not ready: the node has "
                       "no pod CIDR yet");
    Status s = write_waiting("", "");
    return {s, seconds(5)};
  }

  std::vector<std::string> volume_warnings;
  auto volumes = ctx_.volumes.SetUp(pod, EnvContextFor(state), &volume_warnings);
  for (const auto& warning : volume_warnings) {
    ctx_.events.Record(pass.pod_ref, "Warning", "VolumeSourceSkipped", warning);
  }
  if (!volumes.ok()) {
    ctx_.events.Record(pass.pod_ref, "Warning", "FailedMount", volumes.status().message());
    (void)write_waiting("", "");
    return {volumes.status(), std::nullopt};
  }
  pass.volumes = std::move(*volumes);

  auto sandbox = EnsureSandbox(pod, state);
  if (!sandbox.ok()) {
    ctx_.events.Record(pass.pod_ref, "Warning", "FailedCreatePodSandBox",
                       "Failed to create pod sandbox: " + sandbox.status().message());
    (void)write_waiting("", "");
    return {sandbox.status(), std::nullopt};
  }
  pass.sandbox_id = sandbox->first;
  pass.sandbox = std::move(sandbox->second);

  auto listed = Instances(uid);
  if (!listed.ok()) return {listed.status(), std::nullopt};
  instances = std::move(*listed);
  auto newest = [&](const std::string& name) -> const ContainerInstance* {
    auto it = instances.find(name);
    return it == instances.end() || it->second.empty() ? nullptr : &it->second.front();
  };
  auto remove = [&](const ContainerInstance& instance) {
    pass.changed = true;
    (void)ctx_.runtime.RemoveContainer(instance.status.container.id);
  };

  // Init containers, one at a time, each to success, unless the containers already started in
  // this sandbox (then initialization happened before, e.g. before an agent restart).
  bool initialized = true;
  bool app_started = false;
  for (const json& c : Array(pod, {"spec", "containers"})) {
    const ContainerInstance* last = newest(Str(c, {"name"}));
    if (last != nullptr && last->status.container.sandbox_id == pass.sandbox_id) app_started = true;
  }
  if (!app_started) {
    for (const json& c : Array(pod, {"spec", "initContainers"})) {
      const ContainerInstance* last = newest(Str(c, {"name"}));
      if (last == nullptr) {
        StartContainer(pass, c, 0);
        initialized = false;
        break;
      }
      cri::ContainerState st = last->status.container.state;
      if (st == cri::ContainerState::kExited && last->status.exit_code == 0) continue;
      initialized = false;
      if (st == cri::ContainerState::kRunning) break;
      if (st == cri::ContainerState::kExited) {
        if (policy != "Never") RestartWithBackoff(pass, c, *last);
        break;
      }
      remove(*last);  // created but never started: try again
      StartContainer(pass, c, last->restart_count);
      break;
    }
  }

  if (initialized) {
    const std::string_view kChanged = "definition changed";
    for (const json& c : Array(pod, {"spec", "containers"})) {
      const std::string name = Str(c, {"name"});
      const ContainerInstance* last = newest(name);
      if (last == nullptr) {
        StartContainer(pass, c, 0);
        continue;
      }
      const cri::Container& rc = last->status.container;
      bool in_sandbox = rc.sandbox_id == pass.sandbox_id;
      switch (rc.state) {
        case cri::ContainerState::kRunning: {
          auto hash = rc.annotations.find(kSpecHashAnnotation);
          bool same = hash != rc.annotations.end() && hash->second == ContainerSpecHash(c);
          if (in_sandbox && same) break;
          KillContainer(pod, rc.id, name,
                        seconds(Int(pod, {"spec", "terminationGracePeriodSeconds"}, 30)),
                        fmt::format("Container {} {}, will be restarted", name, kChanged));
          pass.changed = true;
          StartContainer(pass, c, last->restart_count + 1);
          break;
        }
        case cri::ContainerState::kExited:
          if (!ShouldRestart(policy, last->status.exit_code)) break;
          if (!in_sandbox) {
            StartContainer(pass, c, last->restart_count + 1);
          } else {
            RestartWithBackoff(pass, c, *last);
          }
          break;
        default:
          remove(*last);
          StartContainer(pass, c, last->restart_count);
      }
    }
  }

  // Old runs: the newest two of each container stay (state and lastState, logs --previous).
  for (auto& [name, list] : instances) {
    for (size_t i = 2; i < list.size(); ++i) {
      if (list[i].status.container.state != cri::ContainerState::kRunning) remove(list[i]);
    }
  }

  if (pass.changed) {
    auto relisted = Instances(uid);
    if (!relisted.ok()) return {relisted.status(), std::nullopt};
    instances = std::move(*relisted);
  }
  if (ApplyProbes(pass, instances)) {
    // Killed by a probe: the next pass restarts it by the restart policy (and its back-off).
    auto relisted = Instances(uid);
    if (!relisted.ok()) return {relisted.status(), std::nullopt};
    instances = std::move(*relisted);
    (void)ApplyProbes(pass, instances);
    pass.WakeAfter(milliseconds(0));
  }
  PodView view = ViewOf(pod, state, true, instances, pass.waiting);
  json status = ComputePodStatus(pod, view, std::chrono::system_clock::now());
  std::string phase = Str(status, {"phase"});
  if (phase == "Succeeded" || phase == "Failed") {
    // Done for good: the sandbox goes (its IP is released), the containers stay for their logs.
    state.terminal = true;
    probes_.RemovePod(uid);
    if (Status s = ctx_.runtime.StopPodSandbox(pass.sandbox_id); !s.ok()) {
      log::Warn(kLog, "pod {}: stopping sandbox: {}", PodDesc(pod), s.message());
    }
    log::Info(kLog, "pod {}/{} finished: {}", Str(pod, {"metadata", "namespace"}),
              Str(pod, {"metadata", "name"}), phase);
  }
  if (Status s = WriteStatus(pod, state, status); !s.ok()) return {s, std::nullopt};
  if (state.terminal) return {};
  return {Status::Ok(), pass.requeue_after.value_or(kResync)};
}

SyncOutcome PodWorker::StopTerminal(const std::string& uid, const json& pod, PodState& state) {
  state.terminal = true;
  probes_.RemovePod(uid);
  cri::SandboxFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  filter.state = cri::SandboxState::kReady;
  auto ready = ctx_.runtime.ListPodSandboxes(filter);
  if (!ready.ok()) return {ready.status(), std::nullopt};
  for (const auto& sandbox : *ready) {
    if (Status s = ctx_.runtime.StopPodSandbox(sandbox.id); !s.ok()) return {s, std::nullopt};
  }
  // The final status may not have reached the API yet (a failed write, a lagging informer).
  std::string phase = Str(pod, {"status", "phase"});
  if (phase != "Succeeded" && phase != "Failed" && !state.last_status.is_null()) {
    json last = state.last_status;
    state.last_status = nullptr;
    if (Status s = WriteStatus(pod, state, last); !s.ok()) return {s, std::nullopt};
  }
  return {};
}

SyncOutcome PodWorker::Terminate(const std::string& uid, const json& pod, PodState& state) {
  int64_t grace = Int(pod, {"metadata", "deletionGracePeriodSeconds"},
                      Int(pod, {"spec", "terminationGracePeriodSeconds"}, 30));
  // Probes stop with the deletion (readiness shows in the final status as not ready).
  probes_.RemovePod(uid);
  // Pass one starts the stop in the background; the pass after it has finished goes on.
  if (KillingInBackground(uid, &pod, seconds(std::max<int64_t>(grace, 0)))) return {};
  cri::SandboxFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  auto sandboxes = ctx_.runtime.ListPodSandboxes(filter);
  if (!sandboxes.ok()) return {sandboxes.status(), std::nullopt};
  for (const auto& sandbox : *sandboxes) {
    if (Status s = ctx_.runtime.StopPodSandbox(sandbox.id); !s.ok()) return {s, std::nullopt};
  }
  auto instances = Instances(uid);
  if (!instances.ok()) return {instances.status(), std::nullopt};
  PodView view = ViewOf(pod, state, false, *instances, {});
  view.terminating = true;
  if (Status s =
          WriteStatus(pod, state, ComputePodStatus(pod, view, std::chrono::system_clock::now()));
      !s.ok()) {
    return {s, std::nullopt};
  }
  DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = uid;
  auto deleted = ctx_.client.Delete(resources::kPods, Str(pod, {"metadata", "namespace"}),
                                    Str(pod, {"metadata", "name"}), options);
  if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound &&
      deleted.status().code() != StatusCode::kConflict) {
    return {deleted.status(), std::nullopt};
  }
  log::Info(kLog, "pod {}/{} terminated and deleted", Str(pod, {"metadata", "namespace"}),
            Str(pod, {"metadata", "name"}));
  return Cleanup(uid);
}

SyncOutcome PodWorker::Cleanup(const std::string& uid) {
  // A background stop still running queues the pod again when it ends.
  if (KillingInBackground(uid, nullptr, kMinimumGrace)) return {};
  cri::SandboxFilter filter;
  filter.label_selector = PodSelector(ctx_.node_name, uid);
  auto sandboxes = ctx_.runtime.ListPodSandboxes(filter);
  if (!sandboxes.ok()) return {sandboxes.status(), std::nullopt};
  KillAll(nullptr, uid, kMinimumGrace);
  for (const auto& sandbox : *sandboxes) {
    if (Status s = ctx_.runtime.StopPodSandbox(sandbox.id); !s.ok()) return {s, std::nullopt};
    if (Status s = ctx_.runtime.RemovePodSandbox(sandbox.id); !s.ok()) return {s, std::nullopt};
  }
  if (!sandboxes->empty()) log::Info(kLog, "pod {}: removed its sandbox and containers", uid);
  if (Status s = ctx_.volumes.TearDown(uid); !s.ok()) return {s, std::nullopt};
  if (ctx_.cgroups != nullptr) {
    // A cgroup that still holds a process is left (logged); it costs nothing once empty.
    if (Status s = ctx_.cgroups->RemovePod(uid); !s.ok()) {
      log::Warn(kLog, "pod {}: {}", uid, s.message());
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ctx_.paths.logs_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > uid.size() && name.compare(name.size() - uid.size(), uid.size(), uid) == 0 &&
        name[name.size() - uid.size() - 1] == '_') {
      fs::remove_all(entry.path(), ec);
    }
  }
  ctx_.images.Forget(uid);
  probes_.RemovePod(uid);
  crash_backoff_.ResetPrefix(uid + "/");
  ForgetState(uid);
  return {};
}

}  // namespace orch::agent
