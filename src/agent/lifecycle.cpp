// Lifecycle hooks (lifecycle.h).
#include "lifecycle.h"

#include <fmt/format.h>

#include <thread>

#include "handlers.h"
#include "orch/go_strconv.h"

namespace orch::agent {
namespace {

// "name_namespace(uid)", how the kubelet names a pod in messages.
std::string PodDesc(const json& pod) {
  return fmt::format("{}_{}({})", Str(pod, {"metadata", "name"}),
                     Str(pod, {"metadata", "namespace"}), Str(pod, {"metadata", "uid"}));
}

// Go's %v of a []string: "[sh -c exit 1]".
std::string GoList(const json& list, const char* sep) {
  std::string out;
  for (const json& part : list) {
    if (!part.is_string()) continue;
    if (!out.empty()) out += sep;
    out += part.get<std::string>();
  }
  return out;
}

}  // namespace

Status RunLifecycleHook(cri::Runtime& runtime, const json& pod, const json& container,
                        const json& handler, const std::string& container_id,
                        const std::string& pod_ip, std::chrono::seconds timeout) {
  const std::string name = Str(container, {"name"});
  if (const json& exec = At(handler, {"exec"}); exec.is_object()) {
    const json& command = Array(exec, {"command"});
    std::vector<std::string> cmd;
    for (const json& part : command) {
      if (part.is_string()) cmd.push_back(part.get<std::string>());
    }
    std::string error, output;
    auto run = runtime.ExecSync(container_id, cmd, timeout);
    if (!run.ok()) {
      error = run.status().message();
    } else if (run->timed_out) {
      error =
          fmt::format("command '{}' timed out after {}s", GoList(command, " "), timeout.count());
    } else if (run->exit_code != 0) {
      error = fmt::format("command '{}' exited with {}: {}", GoList(command, " "), run->exit_code,
                          run->stderr_data);
      output = run->stdout_data + run->stderr_data;
    }
    if (error.empty()) return Status::Ok();
    return Internal(fmt::format(
        "Exec lifecycle hook ([{}]) for Container {} in Pod {} failed - error: {}, message: {}",
        GoList(command, " "), GoQuote(name), GoQuote(PodDesc(pod)), error, GoQuote(output)));
  }
  if (const json& http = At(handler, {"httpGet"}); http.is_object()) {
    HandlerResult r = RunHttpGetAction(
        http, container, pod_ip, timeout.count() > 0 ? timeout : std::chrono::seconds(120), "");
    // A response of any status is a success for hooks; only failing to get one is an error.
    bool transport_error = r.outcome == HandlerOutcome::kError ||
                           (r.outcome == HandlerOutcome::kFailure &&
                            r.output.rfind("HTTP probe failed with statuscode", 0) != 0);
    if (!transport_error) return Status::Ok();
    return Internal(
        fmt::format("HTTP lifecycle hook ({}) for Container {} in Pod {} failed - error: {}",
                    Str(http, {"path"}), GoQuote(name), GoQuote(PodDesc(pod)), r.output));
  }
  if (const json& sleep = At(handler, {"sleep"}); sleep.is_object()) {
    auto d = std::chrono::seconds(std::max<int64_t>(Int(sleep, {"seconds"}), 0));
    if (timeout.count() > 0) d = std::min(d, timeout);
    std::this_thread::sleep_for(d);
    return Status::Ok();
  }
  if (const json& tcp = At(handler, {"tcpSocket"}); tcp.is_object()) {
    // Deprecated and never run by upstream: accepted and ignored.
    return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace orch::agent
