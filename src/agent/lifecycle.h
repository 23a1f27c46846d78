// Container lifecycle hooks (postStart, preStop) as the kubelet runs them: exec in the
// container, an HTTP GET to the pod, or a sleep; failures carry upstream's event wording.
// Blocking; thread-safe (no state).
#pragma once

#include <chrono>
#include <string>

#include "json_util.h"
#include "orch/runtime.h"
#include "orch/status.h"

namespace orch::agent {

// Runs `handler` (a container's lifecycle.postStart or lifecycle.preStop) for `container` of
// `pod`, running as `container_id` at `pod_ip`. `timeout` bounds the whole hook (0: exec hooks
// get no timeout of their own, as upstream's postStart). OK when the hook succeeded or the
// handler is empty; otherwise kInternal with the message of the FailedPostStartHook /
// FailedPreStopHook event: `Exec lifecycle hook ([sh -c exit 1]) for Container "c" in Pod
// "p_ns(uid)" failed - error: command 'sh -c exit 1' exited with 1: , message: ""`. An HTTP hook
// fails on transport errors only (upstream ignores the status code).
Status RunLifecycleHook(cri::Runtime& runtime, const json& pod, const json& container,
                        const json& handler, const std::string& container_id,
                        const std::string& pod_ip, std::chrono::seconds timeout);

}  // namespace orch::agent
