#!/usr/bin/env bash
# e2e_agent_restart: the agent adopts what it left running. orch server is killed (-9), its
# containerd dies with it but the containers do not; a pod is deleted while no agent runs; the
# server starts again: the running container is the same one (same ID, no restart) and the
# deleted pod's containers are removed.
#
#   tests/e2e/agent_restart_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" restart 10.213.0.0/16
agent_start_server server
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

for name in steady doomed; do
  cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  nodeName: $NODE
  containers:
  - {name: c, image: orch.test/busybox:1, command: [sh, -c, "echo up; sleep 3600"]}
YAML
done
wait_jp 60 pod/steady '{.status.phase}' Running
wait_jp 60 pod/doomed '{.status.phase}' Running
steady_id=$(jp pod/steady '{.status.containerStatuses[0].containerID}')
steady_ip=$(jp pod/steady '{.status.podIP}')
doomed_id=$(jp pod/doomed '{.status.containerStatuses[0].containerID}')
doomed_uid=$(jp pod/doomed '{.metadata.uid}')
doomed_id=${doomed_id#containerd://}

echo "--- the server dies; its containers keep running"
kill -KILL "$AGENT_SERVER"
wait "$AGENT_SERVER" 2>/dev/null || true
socket=$DATA/agent/containerd/containerd.sock
shim_running() { [[ -n "$(agent_leftover_pids)" ]]; }
shim_running || fail "no container survived the server"

echo "--- a pod is deleted while no agent runs"
agent_start_server server-no-agent --disable-agent
k delete pod doomed --grace-period=0 --force >/dev/null 2>&1
stop_bg "$AGENT_SERVER" TERM 30

echo "--- the agent comes back: adopts the running container, removes the deleted pod's"
agent_start_server server-again
wait_jp 60 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
doomed_removed() {
  local ids
  ids=$(ctr --address "$socket" --namespace k8s.io containers ls -q) || return 1
  [[ "$ids" != *"$doomed_id"* && ! -e "$DATA/agent/pods/$doomed_uid" ]]
}
wait_for 60 "the deleted pod's container and folder to be removed" doomed_removed
expect_eq "$(jp pod/steady '{.status.phase}')" Running "adopted pod phase"
expect_eq "$(jp pod/steady '{.status.containerStatuses[0].containerID}')" "$steady_id" "same container"
expect_eq "$(jp pod/steady '{.status.containerStatuses[0].restartCount}')" 0 "no restart"
expect_eq "$(jp pod/steady '{.status.podIP}')" "$steady_ip" "same pod IP"
started=$(k get events --field-selector involvedObject.name=steady,reason=Started \
  -o jsonpath='{range .items[*]}{.count}{"\n"}{end}')
expect_eq "$started" 1 "Started events of the adopted pod"

agent_finish
