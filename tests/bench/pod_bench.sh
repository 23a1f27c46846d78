#!/usr/bin/env bash
# pod_bench: pod start latency and node agent memory. A server without its own agent and one
# `orch agent` joined to it run in a network namespace of their own (as the e2e tests do); pods
# are bound to the agent's node directly. Prints create-to-Ready p50/p99 for 1 pod (several
# rounds) and 50 pods at once, and the RSS of the agent and of its containerd at rest and with
# the 50 pods running. Then, side by side in the same run, the runtime's floor (cri_floor: the
# same containerd and CNI config, RunPodSandbox + CreateContainer + StartContainer and nothing
# else) for the same pods, and the CPU the runtime's processes and the agent used per pod.
# Needs root, containerd, python3-kubernetes.
#
#   tests/bench/pod_bench.sh BUILD_DIR [--singles N] [--batch N] [--times FILE]
#
# BUILD_DIR holds `orch` and `cri_floor` (without cri_floor the floor and CPU lines
# are skipped; POD_BENCH_FLOOR=PATH names another one, e.g. to measure an older orch binary).
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
# CPU of containerd (and the CNI plugins it ran), the shims (and runc), the pods' processes and
# the agent, around the batch: cri_floor reads /proc.
floor=${POD_BENCH_FLOOR:-$build/cri_floor}
[[ -x "$floor" ]] || floor=""
socket=$DATA/agent/containerd/containerd.sock
singles=10 batch=50
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --singles) singles=${args[i + 1]} ;;
    --batch) batch=${args[i + 1]} ;;
  esac
done
# The runtime has no task left (pods the agent is still removing would count in the next round).
wait_runtime_idle() {
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)) &&
    [[ -n "$(ls "$DATA/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null)" ]]; do
    sleep 0.2
  done
}
cpu_snapshot() {
  wait_runtime_idle
  [[ -z "$floor" ]] || "$floor" --cpu-snapshot "$E2E_TMP/cpu.before" --endpoint "$socket" \
    --containerd-pid "$(containerd_pid)" --agent-pid "$agent_pid"
}
cpu_report() {
  [[ -z "$floor" ]] || echo "$batch pods: $("$floor" --cpu-since "$E2E_TMP/cpu.before" \
    --endpoint "$socket" --containerd-pid "$(containerd_pid)" --agent-pid "$agent_pid" \
    --pods "$batch")"
}
sleep 10  # settle: informers synced, first heartbeats done
report_rss "at rest"
export -f rss_kib mib containerd_pid report_rss wait_runtime_idle cpu_snapshot cpu_report
export DATA agent_pid floor socket batch E2E_TMP
in_ns /usr/bin/python3 "$here/pod_bench.py" --kubeconfig "$KCFG" --node "$NODE" "$@" \
  --before-batch-hook cpu_snapshot --after-batch-hook cpu_report \
  --rss-hook "report_rss 'with the pods running'" \
  --rss-hook-later "report_rss 'with the pods running, 45 s later'" | tee "$E2E_TMP/orch.out"
report_rss "after deleting them"
wait_runtime_idle  # the agent removes the deleted pods' sandboxes (and their netns)

# The floor: the same pods straight through CRI, on the same containerd, in the same run.
if [[ -n "$floor" ]]; then
  in_ns "$floor" --endpoint "$socket" --singles "$singles" --batch "$batch" \
    --containerd-pid "$(containerd_pid)" --log-root "$E2E_TMP/floor-logs" | tee "$E2E_TMP/floor.out"
  # The same batch started 4 at a time, as the agent's 4 pod workers do.
  in_ns "$floor" --endpoint "$socket" --singles 0 --batch "$batch" --parallel 4 \
    --containerd-pid "$(containerd_pid)" --log-root "$E2E_TMP/floor-logs"
  # orch over the floor, p50 and p99 (the numbers after "p50" and "p99" on the lines).
  ratio() {
    local what=$1 orch_line floor_line
    orch_line=$(grep -m1 "^$what" "$E2E_TMP/orch.out")
    floor_line=$(grep -m1 "^floor, $what" "$E2E_TMP/floor.out")
    [[ -n "$orch_line" && -n "$floor_line" ]] || return 0
    awk -v o="$orch_line" -v f="$floor_line" -v w="$what" 'function num(s, k) {
        match(s, k " [0-9]+"); return substr(s, RSTART + length(k) + 1, RLENGTH - length(k) - 1) }
      BEGIN { printf "orch / floor, %s: p50 %d / %d ms = %.2f, p99 %d / %d ms = %.2f\n", w,
        num(o, "p50"), num(f, "p50"), num(o, "p50") / num(f, "p50"),
        num(o, "p99"), num(f, "p99"), num(o, "p99") / num(f, "p99") }'
  }
  ratio "1 pod"
  ratio "$batch pods at once"
fi
# POD_BENCH_LOGS=DIR keeps the server's and the agent's logs (the temp dir goes at exit).
if [[ -n "${POD_BENCH_LOGS:-}" ]]; then
  mkdir -p "$POD_BENCH_LOGS"
  cp "$E2E_TMP"/*.log "$POD_BENCH_LOGS"/
fi
