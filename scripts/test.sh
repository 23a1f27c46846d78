#!/usr/bin/env bash
# Builds orch and runs every test: the unit tests in parallel, then the e2e tests (they start real
# servers), two at a time unless they share host state. Exits non-zero on any failure and leaves
# no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Every process a test starts inherits this marker, even one that detaches (setsid); anything
# still carrying it after the tests is a leak: it is killed and the run fails.
export ORCH_TEST_RUN="$$-$RANDOM$RANDOM"

stray_processes() {
  # env -u: grep's own environment must not match. No other program may run in this pipeline
  # (it would carry the marker): the paths are cut in bash.
  local file
  while read -r file; do
    file=${file#/proc/}
    echo "${file%/environ}"
  done < <(env -u ORCH_TEST_RUN grep -lzx "ORCH_TEST_RUN=$ORCH_TEST_RUN" /proc/[0-9]*/environ \
    2>/dev/null || true)
}

kill_strays() {
  local pids
  pids=$(stray_processes)
  [[ -z "$pids" ]] && return 0
  for pid in $pids; do
    echo "test.sh: killing stray process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  return 1
}
trap 'kill_strays || true' EXIT

status=0
ctest --test-dir build --output-on-failure -j2 -E '^e2e_' || status=1
# Two e2e tests at a time: most of their time is waiting on servers and containers. Tests that
# share host state (containerd, iptables, netns, fixed ports) hold a ctest RESOURCE_LOCK.
ctest --test-dir build --output-on-failure -j2 -R '^e2e_' || status=1
# Our own ctest runs are over: whatever carries the marker now is a leak.
sleep 0.2
kill_strays || { echo "test.sh: tests left processes running" >&2; status=1; }

if ((status == 0)); then echo "test.sh: all tests passed"; else echo "test.sh: FAILED" >&2; fi
exit "$status"
