#!/usr/bin/env bash
# pod_bench: pod start latency and node agent memory. A server without its own agent and one
# `orch agent` joined to it run in a network namespace of their own (as the e2e tests do); pods
# are bound to the agent's node directly. Prints create-to-Ready p50/p99 for 1 pod (several
# rounds) and 50 pods at once, and the RSS of the agent and of its containerd at rest and with
# the 50 pods running. Needs root, containerd, python3-kubernetes.
#
#   tests/bench/pod_bench.sh BUILD_DIR [--singles N] [--batch N] [--times FILE]
#
# POD_BENCH_SMAPS=DIR keeps the agent's /proc/PID/smaps at each RSS point, POD_BENCH_LOGS=DIR
# the server's and the agent's logs; --times FILE writes each pod's create and Ready times.
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
mib() { echo "$1 / 1024" | bc -l; }
containerd_pid() { pgrep -P "$agent_pid" -x containerd | head -1; }
# RSS, then what it is made of: anonymous memory (heap, stacks), file pages (the binary and its
# libraries, shared with any other process running them), the proportional share (Pss) and the
# thread count. POD_BENCH_SMAPS=DIR keeps a copy of the agent's smaps at each point.
report_rss() {
  local cpid status pss
  cpid=$(containerd_pid)
  status=$(cat "/proc/$agent_pid/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$agent_pid/smaps_rollup")
  printf '%s: agent RSS %.1f MiB (anon %.1f, file %.1f, Pss %.1f MiB, %d threads), containerd RSS %.1f MiB\n' \
    "$1" "$(mib "$(rss_kib "$agent_pid")")" \
    "$(mib "$(awk '/^RssAnon:/ {print $2}' <<<"$status")")" \
    "$(mib "$(awk '/^RssFile:/ {print $2}' <<<"$status")")" "$(mib "$pss")" \
    "$(awk '/^Threads:/ {print $2}' <<<"$status")" "$(mib "$(rss_kib "$cpid")")"
  if [[ -n "${POD_BENCH_SMAPS:-}" ]]; then
    mkdir -p "$POD_BENCH_SMAPS"
    cp "/proc/$agent_pid/smaps" "$POD_BENCH_SMAPS/agent-${1// /-}.smaps"
  fi
}
sleep 10  # settle: informers synced, first heartbeats done
report_rss "at rest"
export -f rss_kib mib containerd_pid report_rss
export DATA agent_pid
in_ns /usr/bin/python3 "$here/pod_bench.py" --kubeconfig "$KCFG" --node "$NODE" "$@" \
  --rss-hook "report_rss 'with the pods running'"
report_rss "after deleting them"
# POD_BENCH_LOGS=DIR keeps the server's and the agent's logs (the temp dir goes at exit).
if [[ -n "${POD_BENCH_LOGS:-}" ]]; then
  mkdir -p "$POD_BENCH_LOGS"
  cp "$E2E_TMP"/*.log "$POD_BENCH_LOGS"/
fi
