#!/usr/bin/env bash
# pod_bench: pod start latency and node agent memory. A server without its own agent and one
# `orch agent` joined to it run in a network namespace of their own (as the e2e tests do); pods
# are bound to the agent's node directly. Prints create-to-Ready p50/p99 for 1 pod (several
# rounds) and 50 pods at once, and the RSS of the agent and of its containerd at rest and with
# the 50 pods running. Needs root, containerd, python3-kubernetes.
#
#   tests/bench/pod_bench.sh BUILD_DIR [--singles N] [--batch N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/../e2e/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/../e2e/agent_lib.sh"

build=${1:?usage: $0 BUILD_DIR [--singles N] [--batch N]}
shift
agent_e2e_init "$build" bench 10.216.0.0/16
port=6443  # inside the namespace: nothing else listens there
start_bg server nsenter --net="/run/netns/$AGENT_NS" "$ORCH" server --disable-agent \
  --data-dir "$E2E_TMP/server" -o "$KCFG" --node-ip "$NODE_IP" --https-listen-port $port \
  --cluster-cidr "$CLUSTER_CIDR"
AGENT_SERVER=$BG_PID
wait_for 60 "the server to run" log_has "$E2E_TMP/server.log" "server: running"
token=$(head -n1 "$E2E_TMP/server/server/token")
start_bg agent nsenter --net="/run/netns/$AGENT_NS" "$ORCH" agent --join "https://$NODE_IP:$port" \
  --token "$token" --data-dir "$DATA" --node-name "$NODE" --node-ip "$NODE_IP"
agent_pid=$BG_PID
wait_jp 120 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
containerd_pid() { pgrep -P "$agent_pid" -x containerd | head -1; }
report_rss() {
  local cpid
  cpid=$(containerd_pid)
  printf '%s: agent RSS %.1f MiB, containerd RSS %.1f MiB\n' "$1" \
    "$(echo "$(rss_kib "$agent_pid") / 1024" | bc -l)" "$(echo "$(rss_kib "$cpid") / 1024" | bc -l)"
}
sleep 10  # settle: informers synced, first heartbeats done
report_rss "at rest"
export -f rss_kib containerd_pid report_rss
export DATA agent_pid
in_ns /usr/bin/python3 "$here/pod_bench.py" --kubeconfig "$KCFG" --node "$NODE" "$@" \
  --rss-hook "report_rss 'with the pods running'"
report_rss "after deleting them"
