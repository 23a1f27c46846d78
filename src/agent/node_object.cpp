// Node object and status (node_object.h).
#include "node_object.h"

#include <fmt/format.h>

#include <algorithm>

namespace orch::agent {
namespace {

json Condition(const std::string& type, bool status, const std::string& reason,
               const std::string& message) {
  return {{"type", type},
          {"status", status ? "True" : "False"},
          {"reason", reason},
          {"message", message}};
}

std::string Ki(uint64_t bytes) {
  return fmt::format("{}Ki", bytes / 1024);
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseNodeLabel(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(fmt::format("node label {:?} is not KEY=VALUE", text));
  }
  return std::pair{text.substr(0, eq), text.substr(eq + 1)};
}

Result<json> ParseNodeTaint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument(fmt::format("node taint {:?} is not KEY[=VALUE]:EFFECT", text));
  }
  std::string effect = text.substr(colon + 1);
  if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
    return InvalidArgument(fmt::format("node taint {:?}: unknown effect {:?}", text, effect));
  }
  std::string kv = text.substr(0, colon);
  auto eq = kv.find('=');
  json taint = {{"key", kv.substr(0, eq)}, {"effect", effect}};
  if (eq != std::string::npos) taint["value"] = kv.substr(eq + 1);
  return taint;
}

std::map<std::string, std::string> NodeLabels(const NodeIdentity& id, const MachineInfo& machine) {
  std::map<std::string, std::string> labels = {
      {"kubernetes.io/hostname", id.name},
      {"kubernetes.io/os", "linux"},
      {"kubernetes.io/arch", machine.architecture},
      {"beta.kubernetes.io/os", "linux"},
      {"beta.kubernetes.io/arch", machine.architecture},
  };
  if (id.control_plane) {
    labels["node-role.kubernetes.io/control-plane"] = "true";
    labels["node-role.kubernetes.io/master"] = "true";  // what k3s also sets, for old tooling
  }
  for (const auto& text : id.labels) {
    auto kv = ParseNodeLabel(text);
    if (kv.ok()) labels[kv->first] = kv->second;
  }
  return labels;
}

Result<json> NewNodeObject(const NodeIdentity& id, const MachineInfo& machine, const json& status) {
  json taints = json::array();
  for (const auto& text : id.taints) {
    auto taint = ParseNodeTaint(text);
    if (!taint.ok()) return taint.status();
    taints.push_back(std::move(*taint));
  }
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", id.name},
                 {"labels", NodeLabels(id, machine)},
                 {"annotations",
                  {{"node.alpha.kubernetes.io/ttl", "0"},
                   {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
               {"spec", json::object()},
               {"status", status}};
  if (!taints.empty()) node["spec"]["taints"] = std::move(taints);
  return node;
}

Result<bool> MergeRegistration(json& node, const NodeIdentity& id, const MachineInfo& machine) {
  bool changed = false;
  json& labels = node["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  for (const auto& [k, v] : NodeLabels(id, machine)) {
    if (Str(labels, {k.c_str()}) != v || !labels.contains(k)) {
      labels[k] = v;
      changed = true;
    }
  }
  for (const auto& text : id.taints) {
    auto taint = ParseNodeTaint(text);
    if (!taint.ok()) return taint.status();
    json& taints = node["spec"]["taints"];
    if (!taints.is_array()) taints = json::array();
    bool present = std::any_of(taints.begin(), taints.end(), [&](const json& t) {
      return Str(t, {"key"}) == Str(*taint, {"key"}) &&
             Str(t, {"effect"}) == Str(*taint, {"effect"});
    });
    if (!present) {
      taints.push_back(*taint);
      changed = true;
    }
  }
  return changed;
}

json NodeStatusJson(const NodeFacts& f, const json& old_status, SystemTime now) {
  const MachineInfo& m = f.machine;
  // Allocatable: capacity less the hard eviction thresholds (no reservations yet).
  uint64_t memory = static_cast<uint64_t>(std::max<int64_t>(m.memory_bytes, 0));
  uint64_t memory_allocatable =
      memory > kMemoryAvailableThreshold ? memory - kMemoryAvailableThreshold : 0;
  uint64_t storage = f.nodefs.capacity_bytes;
  auto storage_allocatable = static_cast<uint64_t>(storage * (1.0 - kNodefsAvailableRatio));
  json capacity = {{"cpu", std::to_string(m.cpu_cores)},
                   {"memory", Ki(memory)},
                   {"ephemeral-storage", Ki(storage)},
                   {"hugepages-1Gi", "0"},
                   {"hugepages-2Mi", "0"},
                   {"pods", std::to_string(kMaxPods)}};
  json allocatable = capacity;
  allocatable["memory"] = Ki(memory_allocatable);
  allocatable["ephemeral-storage"] = std::to_string(storage_allocatable);

  bool memory_pressure = f.memory && f.memory->available_bytes < kMemoryAvailableThreshold;
  bool disk_pressure =
      f.nodefs.capacity_bytes > 0 &&
      (f.nodefs.available_bytes < f.nodefs.capacity_bytes * kNodefsAvailableRatio ||
       (f.nodefs.inodes > 0 && f.nodefs.inodes_free < f.nodefs.inodes * kNodefsInodesFreeRatio));
  bool pid_pressure = f.pids && f.pids->max > 0 &&
                      f.pids->max - std::min(f.pids->running, f.pids->max) <
                          static_cast<uint64_t>(f.pids->max * kPidAvailableRatio);
  bool ready = f.runtime_ready && f.network_ready;

  std::vector<json> conditions = {
      memory_pressure ? Condition("MemoryPressure", true, "KubeletHasInsufficientMemory",
                                  "kubelet has insufficient memory available")
                      : Condition("MemoryPressure", false, "KubeletHasSufficientMemory",
                                  "kubelet has sufficient memory available"),
      disk_pressure
          ? Condition("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure")
          : Condition("DiskPressure", false, "KubeletHasNoDiskPressure",
                      "kubelet has no disk pressure"),
      pid_pressure ? Condition("PIDPressure", true, "KubeletHasInsufficientPID",
                               "kubelet has insufficient PID available")
                   : Condition("PIDPressure", false, "KubeletHasSufficientPID",
                               "kubelet has sufficient PID available"),
      ready ? Condition("Ready", true, "KubeletReady", "kubelet is posting ready status")
            : Condition("Ready", false, "KubeletNotReady", f.runtime_message),
  };
  std::string now_text = FormatTime(now);
  for (json& c : conditions) {
    c["lastHeartbeatTime"] = now_text;
    c["lastTransitionTime"] = now_text;
    for (const json& o : Array(old_status, {"conditions"})) {
      if (Str(o, {"type"}) == Str(c, {"type"}) && Str(o, {"status"}) == Str(c, {"status"}) &&
          At(o, {"lastTransitionTime"}).is_string()) {
        c["lastTransitionTime"] = o["lastTransitionTime"];
      }
    }
  }

  json images = json::array();
  std::vector<const cri::Image*> sorted;
  for (const auto& image : f.images) sorted.push_back(&image);
  std::sort(sorted.begin(), sorted.end(),
            [](const cri::Image* a, const cri::Image* b) { return a->size > b->size; });
  for (const cri::Image* image : sorted) {
    if (images.size() >= kMaxImagesInStatus) break;
    json names = json::array();
    for (const auto& d : image->repo_digests) names.push_back(d);
    for (const auto& t : image->repo_tags) names.push_back(t);
    if (names.empty()) continue;
    images.push_back({{"names", std::move(names)}, {"sizeBytes", image->size}});
  }

  json status = old_status.is_object() ? old_status : json::object();
  status["capacity"] = std::move(capacity);
  status["allocatable"] = std::move(allocatable);
  status["conditions"] = std::move(conditions);
  status["addresses"] = json::array({{{"type", "InternalIP"}, {"address", f.id.ip}},
                                     {{"type", "Hostname"}, {"address", f.id.name}}});
  status["nodeInfo"] = {{"machineID", m.machine_id},
                        {"systemUUID", m.system_uuid},
                        {"bootID", m.boot_id},
                        {"kernelVersion", m.kernel_version},
                        {"osImage", m.os_image},
                        {"containerRuntimeVersion", f.runtime_version},
                        {"kubeletVersion", f.kubelet_version},
                        {"kubeProxyVersion", f.kubelet_version},
                        {"operatingSystem", "linux"},
                        {"architecture", m.architecture}};
  status["images"] = std::move(images);
  return status;
}

bool NodeStatusChanged(const json& old_status, const json& new_status) {
  auto strip = [](json s) {
    if (s.is_object() && s.contains("conditions") && s["conditions"].is_array()) {
      for (json& c : s["conditions"]) {
        if (c.is_object()) c.erase("lastHeartbeatTime");
      }
    }
    return s;
  };
  return strip(old_status) != strip(new_status);
}

}  // namespace orch::agent
