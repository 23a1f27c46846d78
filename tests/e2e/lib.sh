# Shared helpers for orch's bash e2e tests: a temp dir per test, background processes that are
# always killed on exit, and assertions that say what they expected. Source it, then call e2e_init.
# shellcheck shell=bash

set -euo pipefail

E2E_PIDS=()
E2E_TMP=""
E2E_FAILED=0

# e2e_init BUILD_DIR: checks the binary, makes the temp dir, installs the cleanup trap.
e2e_init() {
  local build_dir=${1:?usage: $0 BUILD_DIR}
  ORCH="$(cd "$build_dir" && pwd)/orch"
  [[ -x "$ORCH" ]] || { echo "FAIL: $ORCH is not built" >&2; exit 1; }
  E2E_TMP=$(mktemp -d "/tmp/orch-e2e-$(basename "$0" .sh).XXXXXX")
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Kills every process started with start_bg that is still running (its whole process group, so
# children go too), then removes the temp dir.
e2e_cleanup() {
  local rc=$?
  local pid
  for pid in "${E2E_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$E2E_TMP" ]]; then rm -rf "$E2E_TMP"; fi
  if ((rc == 0 && E2E_FAILED == 0)); then echo "PASS: $(basename "$0")"; fi
  exit "$rc"
}

fail() {
  echo "FAIL: $*" >&2
  E2E_FAILED=1
  exit 1
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
  [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# expect_contains HAYSTACK NEEDLE WHAT
expect_contains() {
  [[ "$1" == *"$2"* ]] || fail "$3: expected to contain '$2', got: $1"
}

# expect_not_contains HAYSTACK NEEDLE WHAT
expect_not_contains() {
  [[ "$1" != *"$2"* ]] || fail "$3: expected not to contain '$2', got: $1"
}

# expect_lines TEXT N WHAT: TEXT has exactly N lines.
expect_lines() {
  local n=0
  if [[ -n "$1" ]]; then n=$(printf '%s\n' "$1" | wc -l); fi
  ((n == $2)) || fail "$3: expected $2 line(s), got $n: $1"
}

# run_capture CMD...: runs CMD, leaving its stdout in OUT, stderr in ERR, exit code in RC, without
# tripping set -e.
run_capture() {
  local out_file="$E2E_TMP/.out" err_file="$E2E_TMP/.err"
  RC=0
  "$@" >"$out_file" 2>"$err_file" || RC=$?
  OUT=$(cat "$out_file")
  ERR=$(cat "$err_file")
}

# start_bg NAME CMD...: starts CMD in the background in its own process group, output in
# $E2E_TMP/NAME.log; sets BG_PID. The process is killed on exit if still running.
start_bg() {
  local name=$1
  shift
  setsid "$@" >"$E2E_TMP/$name.log" 2>&1 &
  BG_PID=$!
  E2E_PIDS+=("$BG_PID")
}

# stop_bg PID SIGNAL TIMEOUT_SECONDS: sends SIGNAL and waits for the exit; sets BG_RC. Fails if
# the process is still running after the timeout.
stop_bg() {
  local pid=$1 signal=$2 timeout=$3
  kill "-$signal" "$pid"
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; do
    ((SECONDS < deadline)) || fail "process $pid still running ${timeout}s after SIG$signal"
    sleep 0.05
  done
  BG_RC=0
  wait "$pid" || BG_RC=$?
}

# wait_for TIMEOUT_SECONDS WHAT CMD...: polls CMD until it succeeds; fails after the timeout.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.1
  done
}

# log_has FILE TEXT: for wait_for.
log_has() { grep -qF -- "$2" "$1"; }

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_control_plane KUBECTL: `orch server` with neither node agent nor scheduler (pods stay
# unbound, so a deleted pod goes at once: no kubelet has to finish a graceful deletion) on a free
# port with its data in the temp dir; exports KUBECONFIG and KUBECACHEDIR for it and waits until
# it is ready. The server's log is $E2E_TMP/server.log.
start_control_plane() {
  local kubectl=$1 port
  port=$(free_port)
  export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
  export KUBECACHEDIR="$E2E_TMP/kube-cache"
  start_bg server "$ORCH" server --disable-agent --disable-scheduler --data-dir "$E2E_TMP/data" \
    --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG"
  wait_for 30 "the API server to be ready" "$kubectl" get --raw /readyz
}
