#!/usr/bin/env bash
# e2e_agent_lifecycle: what happens to containers over time on orch's embedded agent: a crashing
# container restarts with back-off (CrashLoopBackOff), a deleted pod gets SIGTERM and its grace
# period, a container over its memory limit is OOMKilled, an absent image fails the pull
# (ErrImagePull / ImagePullBackOff), and a pod waiting for a missing ConfigMap starts once it
# exists.
#
#   tests/e2e/agent_lifecycle_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" lifecycle 10.212.0.0/16
agent_start_server server
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
mkdir -p "$E2E_TMP/shared"

cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: $NODE
  containers:
  - {name: c, image: orch.test/busybox:1, command: [sh, -c, "echo crashing; exit 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 60
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "trap 'echo got TERM >> /shared/graceful; exit 0' TERM; echo started >> /shared/graceful; while true; do sleep 0.2; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    hostPath: {path: $E2E_TMP/shared, type: Directory}
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "tail /dev/zero"]
    resources: {limits: {memory: 20Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  nodeName: $NODE
  containers:
  - {name: c, image: orch.test/absent:1, command: ["true"]}
---
apiVersion: v1
kind: Pod
metadata: {name: waits}
spec:
  nodeName: $NODE
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "echo \$LATE; sleep 3600"]
    env:
    - name: LATE
      valueFrom: {configMapKeyRef: {name: late, key: value}}
YAML

echo "--- a crashing container: restarts, then CrashLoopBackOff"
wait_jp 60 pod/crasher '{.status.containerStatuses[0].state.waiting.reason}' CrashLoopBackOff
expect_eq "$(jp pod/crasher '{.status.phase}')" Running "crash-looping pod phase"
expect_eq "$(jp pod/crasher '{.status.containerStatuses[0].lastState.terminated.exitCode}')" 1 "last exit code"
expect_contains "$(jp pod/crasher '{.status.containerStatuses[0].state.waiting.message}')" \
  "restarting failed container=c pod=crasher_default(" "back-off message"
restarts_grow() { (($(jp pod/crasher '{.status.containerStatuses[0].restartCount}') >= 2)); }
wait_for 60 "the crashing container to restart again after its back-off" restarts_grow
events=$(k get events --field-selector involvedObject.name=crasher -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Back-off restarting failed container c in pod crasher_default(" "BackOff event"

echo "--- memory limit: OOMKilled"
wait_jp 60 pod/oom '{.status.phase}' Failed
expect_eq "$(jp pod/oom '{.status.containerStatuses[0].state.terminated.reason}')" OOMKilled "OOMKilled"
expect_eq "$(jp pod/oom '{.status.containerStatuses[0].state.terminated.exitCode}')" 137 "OOM exit code"

echo "--- an absent image: ErrImagePull, then ImagePullBackOff"
image_failed() {
  local r
  r=$(jp pod/noimage '{.status.containerStatuses[0].state.waiting.reason}')
  [[ "$r" == ErrImagePull || "$r" == ImagePullBackOff ]]
}
wait_for 60 "the pull to fail" image_failed
expect_eq "$(jp pod/noimage '{.status.phase}')" Pending "phase while the image is missing"
wait_jp 60 pod/noimage '{.status.containerStatuses[0].state.waiting.reason}' ImagePullBackOff
events=$(k get events --field-selector involvedObject.name=noimage -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" 'Failed to pull image "orch.test/absent:1"' "pull failure event"
expect_contains "$events" 'Back-off pulling image "orch.test/absent:1"' "pull back-off event"

echo "--- a missing ConfigMap holds the container until it exists"
wait_jp 60 pod/waits '{.status.containerStatuses[0].state.waiting.reason}' CreateContainerConfigError
expect_eq "$(jp pod/waits '{.status.containerStatuses[0].state.waiting.message}')" \
  'configmap "late" not found' "config error message"
k create configmap late --from-literal=value=arrived >/dev/null
wait_jp 30 pod/waits '{.status.phase}' Running
wait_for 20 "the late value in the log" log_contains waits c "arrived"

echo "--- graceful deletion: SIGTERM, the trap runs, the pod goes"
wait_jp 60 pod/graceful '{.status.phase}' Running
wait_for 20 "the graceful pod to start" grep -q started "$E2E_TMP/shared/graceful"
k delete pod graceful --wait=false >/dev/null
# The agent removes the pod once the container has exited: long before the 60 s grace period.
gone() { [[ -z "$(jp pod/graceful '{.metadata.name}')" ]]; }
wait_for 45 "the pod to be deleted after its container stopped" gone
expect_contains "$(cat "$E2E_TMP/shared/graceful")" "got TERM" "the TERM trap ran"
events=$(k get events --field-selector involvedObject.name=graceful -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Stopping container c" "Killing event"

agent_finish
