// Container CRI configuration (container_config.h).
#include "container_config.h"

#include <fmt/format.h>

#include <algorithm>

#include "orch/quantity.h"
#include "runtime_labels.h"
#include "sandbox_config.h"

namespace orch::agent {
namespace {

constexpr int64_t kMinShares = 2;
constexpr int64_t kMaxShares = 262144;
constexpr int64_t kCpuPeriod = 100000;  // microseconds
constexpr int64_t kMinQuota = 1000;
constexpr int64_t kGuaranteedOomScore = -997;
constexpr int64_t kBestEffortOomScore = 1000;

// A resource quantity of the container in its base unit (milli for cpu), 0 when unset.
int64_t Amount(const json& container, const char* kind, const char* resource) {
  const json& v = At(container, {"resources", kind, resource});
  if (v.is_null()) return 0;
  auto q = Quantity::FromJson(v);
  if (!q.ok()) return 0;
  return std::string_view(resource) == "cpu" ? q->MilliValue() : q->Value();
}

// A request, defaulting to the limit as the API server's defaulting does.
int64_t Request(const json& container, const char* resource) {
  int64_t r = Amount(container, "requests", resource);
  return r != 0 ? r : Amount(container, "limits", resource);
}

}  // namespace

std::string QosClass(const json& pod) {
  bool any = false;
  bool guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : Array(pod, {"spec", list})) {
      for (const char* resource : {"cpu", "memory"}) {
        int64_t request = Request(c, resource);
        int64_t limit = Amount(c, "limits", resource);
        if (request != 0 || limit != 0) any = true;
        if (limit == 0 || request != limit) guaranteed = false;
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

cri::LinuxResources ContainerResources(const json& pod, const json& container,
                                       int64_t node_memory_bytes) {
  cri::LinuxResources r;
  int64_t cpu_request = Request(container, "cpu");
  r.cpu_shares = std::clamp<int64_t>(cpu_request * 1024 / 1000, kMinShares, kMaxShares);
  if (int64_t cpu_limit = Amount(container, "limits", "cpu"); cpu_limit > 0) {
    r.cpu_period = kCpuPeriod;
    r.cpu_quota = std::max(cpu_limit * kCpuPeriod / 1000, kMinQuota);
  }
  r.memory_limit_bytes = Amount(container, "limits", "memory");
  std::string qos = QosClass(pod);
  if (qos == "Guaranteed") {
    r.oom_score_adj = kGuaranteedOomScore;
  } else if (qos == "BestEffort") {
    r.oom_score_adj = kBestEffortOomScore;
  } else {
    // Burstable: the larger the share of the node's memory it asks for, the later it is killed,
    // but always after guaranteed and before best-effort containers.
    int64_t request = Request(container, "memory");
    int64_t score =
        node_memory_bytes > 0
            ? 1000 - static_cast<int64_t>(static_cast<__int128>(request) * 1000 / node_memory_bytes)
            : 999;
    r.oom_score_adj = std::clamp<int64_t>(score, 1000 + kGuaranteedOomScore, 999);
  }
  return r;
}

std::string ContainerSpecHash(const json& container) {
  // A pod's containers can change only their image (resources change in place, without a
  // restart). Hashing just what can change keeps the hash stable across the API's defaulting
  // of other fields (terminationMessagePath, resources: {}, ports' protocol, ...).
  json identity = {{"name", At(container, {"name"})}, {"image", At(container, {"image"})}};
  std::string text = identity.dump();
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::optional<int64_t> EffectiveRunAsUser(const json& pod, const json& container) {
  for (const json* sc :
       {&At(container, {"securityContext"}), &At(pod, {"spec", "securityContext"})}) {
    if (const json& u = At(*sc, {"runAsUser"}); u.is_number_integer()) return u.get<int64_t>();
  }
  return std::nullopt;
}

bool EffectiveRunAsNonRoot(const json& pod, const json& container) {
  for (const json* sc :
       {&At(container, {"securityContext"}), &At(pod, {"spec", "securityContext"})}) {
    if (const json& v = At(*sc, {"runAsNonRoot"}); v.is_boolean()) return v.get<bool>();
  }
  return false;
}

cri::ContainerConfig BuildContainerConfig(const json& pod, const json& container,
                                          const ContainerInputs& in) {
  cri::ContainerConfig c;
  c.name = Str(container, {"name"});
  c.attempt = in.restart_count;
  c.image = in.image_ref;
  auto [command, args] = ExpandCommandAndArgs(container, in.env);
  c.command = std::move(command);
  c.args = std::move(args);
  c.working_dir = Str(container, {"workingDir"});
  c.env = in.env;
  c.mounts = in.mounts;
  c.labels = {{kPodNameLabel, Str(pod, {"metadata", "name"})},
              {kPodNamespaceLabel, Str(pod, {"metadata", "namespace"})},
              {kPodUidLabel, Str(pod, {"metadata", "uid"})},
              {kContainerNameLabel, c.name},
              {kNodeLabel, in.node_name}};
  c.annotations = {
      {kSpecHashAnnotation, ContainerSpecHash(container)},
      {kRestartCountAnnotation, std::to_string(in.restart_count)},
      {kTerminationMessagePathAnnotation,
       Str(container, {"terminationMessagePath"}, "/dev/termination-log")},
      {kTerminationMessagePolicyAnnotation, Str(container, {"terminationMessagePolicy"}, "File")},
      {kGracePeriodAnnotation,
       std::to_string(Int(pod, {"spec", "terminationGracePeriodSeconds"}, 30))},
      {kSpecImageAnnotation, Str(container, {"image"})},
  };
  if (!in.termination_message_file.empty()) {
    c.annotations[kTerminationMessageFileAnnotation] = in.termination_message_file;
  }
  c.log_path = fmt::format("{}/{}.log", c.name, in.restart_count);
  c.open_stdin = Bool(container, {"stdin"});
  c.stdin_once = Bool(container, {"stdinOnce"});
  c.tty = Bool(container, {"tty"});
  c.resources = ContainerResources(pod, container, in.node_memory_bytes);

  cri::ContainerSecurityContext& s = c.security;
  s.namespaces = PodNamespaces(pod);
  s.run_as_user = EffectiveRunAsUser(pod, container);
  const json& csc = At(container, {"securityContext"});
  const json& psc = At(pod, {"spec", "securityContext"});
  for (const json* sc : {&csc, &psc}) {
    if (const json& g = At(*sc, {"runAsGroup"}); g.is_number_integer()) {
      s.run_as_group = g.get<int64_t>();
      break;
    }
  }
  for (const json& g : Array(psc, {"supplementalGroups"})) {
    if (g.is_number_integer()) s.supplemental_groups.push_back(g.get<int64_t>());
  }
  if (const json& fs = At(psc, {"fsGroup"}); fs.is_number_integer()) {
    s.supplemental_groups.push_back(fs.get<int64_t>());
  }
  s.privileged = Bool(csc, {"privileged"});
  s.readonly_rootfs = Bool(csc, {"readOnlyRootFilesystem"});
  if (const json& escalation = At(csc, {"allowPrivilegeEscalation"}); escalation.is_boolean()) {
    s.no_new_privs = !escalation.get<bool>();
  }
  for (const json& cap : Array(csc, {"capabilities", "add"})) {
    if (cap.is_string()) s.capabilities_add.push_back(cap.get<std::string>());
  }
  for (const json& cap : Array(csc, {"capabilities", "drop"})) {
    if (cap.is_string()) s.capabilities_drop.push_back(cap.get<std::string>());
  }
  return c;
}

}  // namespace orch::agent
