#!/usr/bin/env bash
# e2e_agent_streams: kubectl logs, exec, attach, port-forward and cp with the real kubectl 1.27,
# 1.32 and 1.33 against orch server, whose embedded agent serves them over its node link from
# real containerd: logs (container choice, tail, timestamps, limit, since, follow while the
# container writes and to its end, previous after a restart, a waiting container), exec (stdout,
# stderr, stdin, tty, exit codes), attach, port-forward to busybox httpd, cp in and out, and a
# pod on a node without a link.
#
#   tests/e2e/agent_streams_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" streams 10.212.0.0/16
agent_start_server server

KUBECTLS=(/usr/lib/google-cloud-sdk/bin/kubectl.1.27 kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.33)
kv() { local bin=$1; shift; in_ns "$bin" --kubeconfig "$KCFG" "$@"; }

wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
wait_for 30 "the node link" log_has "$E2E_TMP/server.log" "node $NODE connected"

# containerd copies stdout and stderr from two pipes, so only writes some time apart have a fixed
# order in the log: talker pauses before and after its stderr line.
cat >"$E2E_TMP/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c]
    args:
    - |
      echo line-1; echo line-2; sleep 0.3; echo err-1 >&2; sleep 0.5; echo line-3
      mkdir -p /www && echo served-by-httpd > /www/index.html && httpd -p 8080 -h /www
      while true; do
        if [ -f /tmp/go ]; then rm /tmp/go; for i in 1 2 3 4 5; do echo tick-\$i; sleep 0.3; done; fi
        sleep 0.2
      done
  - name: side
    image: orch.test/busybox:1
    command: [sh, -c, 'echo side-up; exec sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: app
    image: orch.test/busybox:1
    volumeMounts: [{name: state, mountPath: /state}]
    command: [sh, -c]
    args:
    - |
      n=\$(cat /state/n 2>/dev/null || echo 0); n=\$((n+1)); echo \$n > /state/n
      echo run-\$n
      [ \$n -ge 2 ] && exec sleep 3600
      exit 3
---
apiVersion: v1
kind: Pod
metadata: {name: listener}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - name: app
    image: orch.test/busybox:1
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read line; do echo got-\$line; done; echo stdin-closed']
---
apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  nodeName: $NODE
  containers:
  - name: app
    image: orch.test/missing:1
    imagePullPolicy: Never
---
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  nodeName: ghost-node
  containers:
  - {name: app, image: orch.test/busybox:1}
YAML
k apply -f "$E2E_TMP/pods.yaml" >/dev/null
wait_jp 90 pod/talker '{.status.phase}' Running
wait_for 30 "talker's third line" log_contains talker app line-3

echo "--- logs: container choice, plain, tail, timestamps, limit, since"
out=$(k get --raw /api/v1/namespaces/default/pods/talker/log 2>&1 || true)
expect_contains "$out" "a container name must be specified for pod talker, choose one of: [app side]" "no container named"
out=$(k logs talker -c nope 2>&1 || true)
expect_contains "$out" "container nope is not valid for pod talker" "unknown container"
for bin in "${KUBECTLS[@]}"; do
  out=$(kv "$bin" logs talker -c app)
  expect_eq "$(grep -v tick <<<"$out")" "line-1
line-2
err-1
line-3" "logs ($bin)"
done
expect_eq "$(k logs talker -c side)" "side-up" "logs of the second container"
expect_eq "$(k logs talker -c app --tail=1)" "line-3" "logs --tail=1"
expect_eq "$(k logs talker -c app --tail=2)" "err-1
line-3" "logs --tail=2"
expect_eq "$(k logs talker -c app --tail=0)" "" "logs --tail=0"
out=$(k logs talker -c app --timestamps --tail=1)
[[ "$out" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z\ line-3$ ]] ||
  fail "logs --timestamps: $out"
expect_eq "$(k logs talker -c app --limit-bytes=9)" "line-1
li" "logs --limit-bytes"
expect_contains "$(k logs talker -c app --since=1h)" "line-2" "logs --since=1h"
expect_eq "$(k logs talker -c app --since-time=2099-01-01T00:00:00Z)" "" "logs --since-time in the future"

echo "--- logs -f follows while the container writes"
start_bg follow nsenter --net="/run/netns/$AGENT_NS" kubectl --kubeconfig "$KCFG" logs -f talker -c app --tail=1
follow=$BG_PID
wait_for 20 "the follow to print the tail" log_has "$E2E_TMP/follow.log" line-3
k exec talker -c app -- touch /tmp/go
wait_for 20 "followed lines" log_has "$E2E_TMP/follow.log" tick-5
kill -0 "$follow" || fail "logs -f ended while the container runs"
stop_bg "$follow" TERM 10
expect_eq "$(grep -c tick "$E2E_TMP/follow.log")" 5 "followed lines once each"

echo "--- logs -f ends with the container"
cat >"$E2E_TMP/short.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: short}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c, 'echo short-start; sleep 8; echo short-end']
YAML
k apply -f "$E2E_TMP/short.yaml" >/dev/null
wait_jp 60 pod/short '{.status.phase}' Running
out=$(timeout 60 nsenter --net="/run/netns/$AGENT_NS" kubectl --kubeconfig "$KCFG" logs -f short)
expect_eq "$out" "short-start
short-end" "logs -f to the container's end"

echo "--- logs --previous after a restart; a waiting container"
wait_jp 90 pod/crasher '{.status.containerStatuses[0].restartCount}' 1
wait_jp 60 pod/crasher '{.status.phase}' Running
wait_for 20 "the second run's log" log_contains crasher app run-2
expect_eq "$(k logs crasher)" "run-2" "logs of the current run"
expect_eq "$(k logs crasher --previous)" "run-1" "logs --previous"
out=$(k logs talker -c side --previous 2>&1 || true)
expect_contains "$out" 'previous terminated container "side" in pod "talker" not found' "no previous run"
out=$(k logs never 2>&1 || true)
expect_contains "$out" 'container "app" in pod "never" is waiting to start' "waiting container"
expect_contains "$out" "BadRequest" "waiting container is a bad request"

echo "--- exec: stdout, stderr, stdin, exit codes, tty with each kubectl"
for bin in "${KUBECTLS[@]}"; do
  expect_eq "$(kv "$bin" exec talker -c app -- echo hello)" hello "exec stdout ($bin)"
  kv "$bin" exec talker -c app -- sh -c 'echo to-out; echo to-err >&2' \
    >"$E2E_TMP/exec.out" 2>"$E2E_TMP/exec.err"
  expect_eq "$(cat "$E2E_TMP/exec.out")" to-out "exec stdout apart ($bin)"
  expect_eq "$(cat "$E2E_TMP/exec.err")" to-err "exec stderr apart ($bin)"
  expect_eq "$(printf 'piped\nlines\n' | kv "$bin" exec -i talker -c app -- cat)" "piped
lines" "exec -i ($bin)"
  rc=0
  kv "$bin" exec talker -c app -- sh -c 'exit 7' 2>"$E2E_TMP/exec.err" || rc=$?
  expect_eq "$rc" 7 "exec exit code ($bin)"
  expect_contains "$(cat "$E2E_TMP/exec.err")" "command terminated with exit code 7" "exit code message ($bin)"
  rc=0
  kv "$bin" exec talker -c app -- /no/such/binary 2>"$E2E_TMP/exec.err" || rc=$?
  [[ $rc -ne 0 ]] || fail "exec of a missing binary succeeded ($bin)"
  out=$(script -qec "nsenter --net=/run/netns/$AGENT_NS $bin --kubeconfig $KCFG exec -it talker -c app -- sh -c 'tty; echo tty-ok'" /dev/null)
  expect_contains "$out" "/dev/pts/" "exec -it has a terminal ($bin)"
  expect_contains "$out" "tty-ok" "exec -it output ($bin)"
done
out=$(k exec talker -c nope -- true 2>&1 || true)
expect_contains "$out" "container nope is not valid for pod talker" "exec in an unknown container"

echo "--- attach"
wait_jp 60 pod/listener '{.status.phase}' Running
out=$(printf 'a\nb\n' | timeout 60 nsenter --net="/run/netns/$AGENT_NS" kubectl --kubeconfig "$KCFG" attach -i listener 2>/dev/null)
expect_contains "$out" "got-a" "attach -i first line"
expect_contains "$out" "got-b" "attach -i second line"
wait_jp 30 pod/listener '{.status.phase}' Succeeded
expect_contains "$(k logs listener)" "stdin-closed" "stdinOnce closed the container's stdin"

echo "--- port-forward to busybox httpd with each kubectl"
port=18090
for bin in "${KUBECTLS[@]}"; do
  port=$((port + 1))
  start_bg "pf-${bin##*.}" nsenter --net="/run/netns/$AGENT_NS" "$bin" --kubeconfig "$KCFG" port-forward pod/talker "$port:8080"
  pf=$BG_PID
  wait_for 20 "port-forward to listen ($bin)" log_has "$E2E_TMP/pf-${bin##*.}.log" "Forwarding from 127.0.0.1:$port"
  expect_eq "$(in_ns curl -sS --max-time 10 "http://127.0.0.1:$port/")" served-by-httpd "port-forward ($bin)"
  expect_eq "$(in_ns curl -sS --max-time 10 "http://127.0.0.1:$port/")" served-by-httpd "port-forward again ($bin)"
  stop_bg "$pf" TERM 10
done

echo "--- cp in and out"
head -c 300000 /dev/urandom >"$E2E_TMP/blob"
echo "a small file" >"$E2E_TMP/note.txt"
for bin in "${KUBECTLS[@]}"; do
  kv "$bin" cp "$E2E_TMP/note.txt" talker:/tmp/note.txt -c app
  expect_eq "$(k exec talker -c app -- cat /tmp/note.txt)" "a small file" "cp in ($bin)"
done
k cp "$E2E_TMP/blob" talker:/tmp/blob -c app
expect_eq "$(k exec talker -c app -- md5sum /tmp/blob | cut -d' ' -f1)" "$(md5sum <"$E2E_TMP/blob" | cut -d' ' -f1)" "cp of a binary file"
(cd "$E2E_TMP" && in_ns kubectl --kubeconfig "$KCFG" cp talker:/tmp/blob blob.back -c app >/dev/null 2>&1)
cmp -s "$E2E_TMP/blob" "$E2E_TMP/blob.back" || fail "cp out differs"

echo "--- a pod on a node without a link"
out=$(k exec ghost -- true 2>&1 || true)
expect_contains "$out" 'node "ghost-node" is not connected' "exec on an unlinked node"
k delete pod ghost --grace-period=0 --force >/dev/null 2>&1 || true

agent_finish
echo "PASS: $(basename "$0")"
