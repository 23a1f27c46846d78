// The actions a probe or a lifecycle hook performs on a container: a command run in it through
// CRI (ExecSync), an HTTP GET or a TCP connect to the pod's address, a sleep. Blocking, with
// deadlines; thread-safe (no state).
#pragma once

#include <chrono>
#include <string>

#include "json_util.h"
#include "orch/runtime.h"
#include "orch/status.h"

namespace orch::agent {

enum class HandlerOutcome {
  kSuccess,
  kFailure,  // the check ran and said no (exit code, HTTP status, refused connection)
  kError,    // it could not be run at all (runtime error, bad spec)
};

struct HandlerResult {
  HandlerOutcome outcome = HandlerOutcome::kError;
  // What upstream shows after "Liveness probe failed: ": the command's output, "HTTP probe failed
  // with statuscode: 500", "dial tcp 10.42.0.5:80: connect: connection refused", ...
  std::string output;
};

// A port given by number or by the name of one of the container's ports (an all-digit string is
// a number too). kInvalidArgument when the name is unknown or the number out of range.
Result<int> ResolvePort(const json& port, const json& container);

// `exec.command` in the container; success on exit code 0, the combined stdout and stderr as
// output. A command still running after `timeout` is a failure (`command "..." timed out`).
HandlerResult RunExecAction(cri::Runtime& runtime, const std::string& container_id,
                            const json& exec, std::chrono::seconds timeout);

// `httpGet` (scheme HTTP or HTTPS without certificate checks, host defaulting to `pod_ip`, port,
// path, httpHeaders); success for statuses 200-399. `user_agent` is sent unless the headers name
// one. Redirects are not followed (a 3xx already counts as success).
HandlerResult RunHttpGetAction(const json& http_get, const json& container,
                               const std::string& pod_ip, std::chrono::seconds timeout,
                               const std::string& user_agent);

// `tcpSocket`: success when a connection to host (default `pod_ip`) and port opens in time.
HandlerResult RunTcpSocketAction(const json& tcp, const json& container, const std::string& pod_ip,
                                 std::chrono::seconds timeout);

// "kube-probe/1.32": the User-Agent upstream probes send (servers sometimes key on it).
std::string ProbeUserAgent();

}  // namespace orch::agent
