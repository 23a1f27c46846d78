#!/usr/bin/env bash
# e2e_agent_streams_join: a node that joined with `orch agent --join` serves kubectl logs and
# exec over the link it opens to the server (the server runs with --disable-agent); while the
# agent is down the API answers that the node is not connected, and a restarted agent links
# again by itself.
#
#   tests/e2e/agent_streams_join_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" streamsj 10.213.0.0/16
agent_start_server server --disable-agent
token=$(head -n1 "$DATA/server/token")

# start_agent LOGNAME: the joined node, in the same network namespace, dialing the node IP.
start_agent() {
  start_bg "$1" nsenter --net="/run/netns/$AGENT_NS" "$ORCH" agent --join "https://$NODE_IP:6443" \
    --token "$token" --data-dir "$DATA" --node-name "$NODE" --node-ip "$NODE_IP"
  AGENT=$BG_PID
}
start_agent agent
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
wait_for 30 "the node link" log_has "$E2E_TMP/server.log" "node $NODE connected"

cat >"$E2E_TMP/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: joined}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c, 'echo hello-from-joined; exec sleep 3600']
YAML
k apply -f "$E2E_TMP/pod.yaml" >/dev/null
wait_jp 90 pod/joined '{.status.phase}' Running
wait_for 30 "the pod's log" log_contains joined app hello-from-joined

echo "--- logs and exec through the joined agent's link"
expect_eq "$(k logs joined)" hello-from-joined "logs"
expect_eq "$(k exec joined -- echo exec-ok)" exec-ok "exec"
rc=0
k exec joined -- sh -c 'exit 4' 2>/dev/null || rc=$?
expect_eq "$rc" 4 "exec exit code"

echo "--- the agent stops: the node is not connected; it starts again and links again"
stop_bg "$AGENT" TERM 60
wait_for 30 "the link to close" log_has "$E2E_TMP/server.log" "node $NODE disconnected"
out=$(k exec joined -- true 2>&1 || true)
expect_contains "$out" "node \"$NODE\" is not connected" "exec while the agent is down"
out=$(k logs joined 2>&1 || true)
expect_contains "$out" "node \"$NODE\" is not connected" "logs while the agent is down"
start_agent agent2
wait_for 60 "the agent to link again" log_has "$E2E_TMP/agent2.log" "connected to https://127.0.0.1:"
expect_eq "$(k exec joined -- echo again)" again "exec after the agent restarted"
expect_eq "$(k logs joined)" hello-from-joined "logs after the agent restarted"

k delete pods --all --grace-period=1 --wait=false >/dev/null
wait_for 90 "every pod to be deleted" agent_no_pods
wait_for 60 "the node to remove every container" agent_no_containers
stop_bg "$AGENT" TERM 60
stop_bg "$AGENT_SERVER" TERM 30
AGENT_SERVER=""
wait_for 10 "no process of the node left" agent_nothing_left
echo "PASS: $(basename "$0")"
