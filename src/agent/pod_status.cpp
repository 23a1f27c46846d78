// Pod status computation (pod_status.h).
#include "pod_status.h"

#include <fmt/format.h>

#include <set>

#include "container_config.h"

namespace orch::agent {
namespace {

const std::set<std::string> kOwnedConditions = {"PodReadyToStartContainers", "Initialized", "Ready",
                                                "ContainersReady"};

json Terminated(const ContainerInstance& c) {
  const cri::ContainerStatus& s = c.status;
  std::string reason = s.reason;
  if (reason.empty()) reason = s.exit_code == 0 ? "Completed" : "Error";
  json t = {{"exitCode", s.exit_code},
            {"reason", reason},
            {"startedAt", s.started_at > 0 ? json(FormatNanos(s.started_at)) : json(nullptr)},
            {"finishedAt", s.finished_at > 0 ? json(FormatNanos(s.finished_at)) : json(nullptr)},
            {"containerID", "containerd://" + s.container.id}};
  std::string message = !c.termination_message.empty() ? c.termination_message : s.message;
  if (!message.empty()) t["message"] = message;
  return {{"terminated", std::move(t)}};
}

json Waiting(const std::string& reason, const std::string& message) {
  json w = {{"reason", reason}};
  if (!message.empty()) w["message"] = message;
  return {{"waiting", std::move(w)}};
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
  return "[" + out + "]";
}

json Condition(const std::string& type, bool status, const std::string& reason = "",
               const std::string& message = "") {
  json c = {{"type", type}, {"status", status ? "True" : "False"}, {"lastProbeTime", nullptr}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

bool IsTerminatedWith(const json& status, const char* key, int64_t* exit_code) {
  const json& t = At(status, {key, "terminated"});
  if (!t.is_object()) return false;
  *exit_code = Int(t, {"exitCode"});
  return true;
}

}  // namespace

std::string NormalizeImageName(const std::string& image) {
  std::string name = image;
  auto slash = name.find('/');
  std::string first = slash == std::string::npos ? "" : name.substr(0, slash);
  bool has_registry =
      !first.empty() && (first.find('.') != std::string::npos ||
                         first.find(':') != std::string::npos || first == "localhost");
  if (!has_registry) {
    name = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + name;
  }
  if (name.find('@') == std::string::npos) {
    auto last_slash = name.rfind('/');
    auto colon = name.rfind(':');
    if (colon == std::string::npos || colon < last_slash) name += ":latest";
  }
  return name;
}

json ContainerStatusJson(const json& spec, const ContainerView& view, bool init, bool initialized) {
  json s = {{"name", Str(spec, {"name"})},
            {"image", NormalizeImageName(Str(spec, {"image"}))},
            {"imageID", ""},
            {"ready", false},
            {"restartCount", 0},
            {"started", false},
            {"lastState", json::object()}};
  std::string default_waiting = !init && !initialized ? "PodInitializing" : "ContainerCreating";
  if (!view.current) {
    s["state"] = Waiting(view.waiting_reason.empty() ? default_waiting : view.waiting_reason,
                         view.waiting_message);
    if (view.previous) s["lastState"] = Terminated(*view.previous);
    return s;
  }
  const ContainerInstance& current = *view.current;
  const cri::ContainerStatus& cs = current.status;
  s["restartCount"] = current.restart_count;
  s["imageID"] = cs.container.image_ref;
  s["containerID"] = "containerd://" + cs.container.id;
  switch (cs.container.state) {
    case cri::ContainerState::kRunning:
      s["state"] = {{"running", {{"startedAt", FormatNanos(cs.started_at)}}}};
      s["ready"] = !init && view.ready;
      s["started"] = view.started;
      if (view.previous) s["lastState"] = Terminated(*view.previous);
      break;
    case cri::ContainerState::kExited:
      if (!view.waiting_reason.empty()) {
        // It will run again: waiting, with the run that ended as the last state.
        s["state"] = Waiting(view.waiting_reason, view.waiting_message);
        s["lastState"] = Terminated(current);
      } else {
        s["state"] = Terminated(current);
        if (view.previous) s["lastState"] = Terminated(*view.previous);
        if (init && cs.exit_code == 0) s["ready"] = true;
      }
      break;
    default:  // created, not started yet (or unknown)
      s["state"] = Waiting(view.waiting_reason.empty() ? "ContainerCreating" : view.waiting_reason,
                           view.waiting_message);
      if (view.previous) s["lastState"] = Terminated(*view.previous);
  }
  return s;
}

std::string PodPhase(const json& pod, const json& init_statuses, const json& statuses,
                     bool terminating) {
  std::string policy = Str(pod, {"spec", "restartPolicy"}, "Always");
  auto find = [](const json& list, const std::string& name) -> const json* {
    for (const json& s : list) {
      if (Str(s, {"name"}) == name) return &s;
    }
    return nullptr;
  };
  int pending_init = 0, failed_init = 0;
  for (const json& c : Array(pod, {"spec", "initContainers"})) {
    const json* s = find(init_statuses, Str(c, {"name"}));
    int64_t code = 0;
    if (s == nullptr) {
      ++pending_init;
    } else if (IsTerminatedWith(*s, "state", &code)) {
      if (code != 0) ++failed_init;
    } else if (At(*s, {"state", "waiting"}).is_object() &&
               IsTerminatedWith(*s, "lastState", &code)) {
      if (code != 0) ++failed_init;
    } else {
      ++pending_init;
    }
  }
  int running = 0, waiting = 0, stopped = 0, succeeded = 0, unknown = 0;
  for (const json& c : Array(pod, {"spec", "containers"})) {
    const json* s = find(statuses, Str(c, {"name"}));
    int64_t code = 0;
    if (s == nullptr) {
      ++unknown;
    } else if (At(*s, {"state", "running"}).is_object()) {
      ++running;
    } else if (IsTerminatedWith(*s, "state", &code)) {
      ++stopped;
      if (code == 0) ++succeeded;
    } else if (At(*s, {"state", "waiting"}).is_object()) {
      if (At(*s, {"lastState", "terminated"}).is_object()) {
        ++stopped;
      } else {
        ++waiting;
      }
    } else {
      ++unknown;
    }
  }
  if (failed_init > 0 && policy == "Never") return "Failed";
  if (terminating && running == 0 && waiting == 0 && unknown == 0) {
    // Deleted and every container stopped: the pod ends in a terminal phase.
    return stopped == succeeded && pending_init == 0 && failed_init == 0 ? "Succeeded" : "Failed";
  }
  if (pending_init > 0 || failed_init > 0) return "Pending";
  if (waiting > 0) return "Pending";
  if (running > 0 && unknown == 0) return "Running";
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";  // OnFailure: the failed ones run again
  }
  return "Pending";
}

json ComputePodStatus(const json& pod, const PodView& view, SystemTime now) {
  const json& old = At(pod, {"status"});
  json status = old.is_object() ? old : json::object();

  json init_statuses = json::array();
  std::vector<std::string> incomplete;
  for (const json& c : Array(pod, {"spec", "initContainers"})) {
    auto it = view.containers.find(Str(c, {"name"}));
    ContainerView empty;
    json s = ContainerStatusJson(c, it == view.containers.end() ? empty : it->second, true, false);
    int64_t code = 0;
    if (!IsTerminatedWith(s, "state", &code) || code != 0) incomplete.push_back(Str(c, {"name"}));
    init_statuses.push_back(std::move(s));
  }
  bool initialized = incomplete.empty();
  json statuses = json::array();
  std::vector<std::string> unready;
  for (const json& c : Array(pod, {"spec", "containers"})) {
    auto it = view.containers.find(Str(c, {"name"}));
    ContainerView empty;
    json s = ContainerStatusJson(c, it == view.containers.end() ? empty : it->second, false,
                                 initialized);
    if (!Bool(s, {"ready"})) unready.push_back(Str(c, {"name"}));
    statuses.push_back(std::move(s));
  }
  std::string phase = PodPhase(pod, init_statuses, statuses, view.terminating);
  bool terminal = phase == "Succeeded" || phase == "Failed";

  std::vector<json> conditions;
  conditions.push_back(Condition("PodReadyToStartContainers", view.sandbox_ready && !terminal));
  if (terminal && initialized) {
    conditions.push_back(Condition("Initialized", true, "PodCompleted"));
  } else if (initialized) {
    conditions.push_back(Condition("Initialized", true));
  } else {
    conditions.push_back(Condition("Initialized", false, "ContainersNotInitialized",
                                   "containers with incomplete status: " + Names(incomplete)));
  }
  for (const char* type : {"Ready", "ContainersReady"}) {
    if (terminal) {
      conditions.push_back(Condition(type, false, "PodCompleted"));
    } else if (unready.empty()) {
      conditions.push_back(Condition(type, true));
    } else {
      conditions.push_back(Condition(type, false, "ContainersNotReady",
                                     "containers with unready status: " + Names(unready)));
    }
  }
  // Merge: the agent's conditions replace theirs by type, keeping the transition time when the
  // status did not change; other components' conditions (PodScheduled, ...) stay as they are.
  std::string now_text = FormatTime(now);
  json merged = json::array();
  std::set<std::string> placed;
  auto fill_time = [&](json& c) {
    for (const json& o : Array(old, {"conditions"})) {
      if (Str(o, {"type"}) == Str(c, {"type"}) && Str(o, {"status"}) == Str(c, {"status"}) &&
          At(o, {"lastTransitionTime"}).is_string()) {
        c["lastTransitionTime"] = o["lastTransitionTime"];
        return;
      }
    }
    c["lastTransitionTime"] = now_text;
  };
  for (const json& o : Array(old, {"conditions"})) {
    std::string type = Str(o, {"type"});
    if (!kOwnedConditions.contains(type)) {
      merged.push_back(o);
      placed.insert(type);
      continue;
    }
    for (json& c : conditions) {
      if (Str(c, {"type"}) == type && !placed.contains(type)) {
        fill_time(c);
        merged.push_back(c);
        placed.insert(type);
      }
    }
  }
  for (json& c : conditions) {
    if (placed.contains(Str(c, {"type"}))) continue;
    fill_time(c);
    merged.push_back(c);
    placed.insert(Str(c, {"type"}));
  }
  if (!placed.contains("PodScheduled")) {
    json scheduled = Condition("PodScheduled", true);
    scheduled["lastTransitionTime"] = now_text;
    merged.push_back(std::move(scheduled));
  }

  status["phase"] = phase;
  status["conditions"] = std::move(merged);
  if (!view.host_ip.empty()) {
    status["hostIP"] = view.host_ip;
    status["hostIPs"] = json::array({{{"ip", view.host_ip}}});
  }
  if (!view.pod_ips.empty()) {
    status["podIP"] = view.pod_ips.front();
    json ips = json::array();
    for (const auto& ip : view.pod_ips) ips.push_back({{"ip", ip}});
    status["podIPs"] = std::move(ips);
  }
  if (!At(status, {"startTime"}).is_string()) status["startTime"] = now_text;
  status["qosClass"] = QosClass(pod);
  status["containerStatuses"] = std::move(statuses);
  if (!init_statuses.empty()) {
    status["initContainerStatuses"] = std::move(init_statuses);
  } else {
    status.erase("initContainerStatuses");
  }
  return status;
}

}  // namespace orch::agent
