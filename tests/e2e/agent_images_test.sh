#!/usr/bin/env bash
# e2e_agent_images: pulls from real registries (Debian's docker-registry in the node's network
# namespace, on loopback) through registries.yaml and imagePullSecrets, pull policies, and the
# ErrImagePull / ImagePullBackOff path with the registry's own message in `kubectl describe`.
#
#   tests/e2e/agent_images_test.sh BUILD_DIR
#
# Three registries, each holding the test busybox image pushed with skopeo:
#   :5001 HTTP, no auth        - reached through a registries.yaml mirror of "mirror.orch.test"
#   NODE_IP:5002 HTTPS (self-signed), htpasswd alice - registries.yaml configs: auth +
#        insecure_skip_verify (not on loopback: containerd always speaks plain HTTP to loopback)
#   :5003 HTTP, htpasswd bob   - plain-HTTP mirror entry, credentials only from imagePullSecrets
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

for tool in docker-registry skopeo htpasswd openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is missing (scripts/setup.sh installs docker-registry, skopeo, apache2-utils)"
    exit 77
  fi
done

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" images 10.215.0.0/16
REG=$E2E_TMP/registries
REGISTRY_PIDS=()
mkdir -p "$REG"

# start_registry NAME PORT [htpasswd-user password] [tls]: a registry in the node's namespace,
# on loopback, or with TLS on the node's address (containerd speaks plain HTTP to loopback).
start_registry() {
  local name=$1 port=$2 user=${3:-} password=${4:-} tls=${5:-}
  local host=127.0.0.1
  [[ -n "$tls" ]] && host=$NODE_IP
  local dir=$REG/$name
  mkdir -p "$dir/store"
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $dir/store}}"
    if [[ -n "$tls" ]]; then
      echo "http: {addr: $host:$port, tls: {certificate: $REG/cert.pem, key: $REG/key.pem}}"
    else
      echo "http: {addr: 127.0.0.1:$port}"
    fi
    if [[ -n "$user" ]]; then
      htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
      echo "auth: {htpasswd: {realm: orch-e2e, path: $dir/htpasswd}}"
    fi
  } >"$dir/config.yml"
  start_bg "registry-$name" nsenter --net="/run/netns/$AGENT_NS" docker-registry serve "$dir/config.yml"
  REGISTRY_PIDS+=("$BG_PID")
  local scheme=http
  [[ -n "$tls" ]] && scheme=https
  wait_for 30 "registry $name to answer" in_ns curl -ks -o /dev/null "$scheme://$host:$port/"
}

# push HOST:PORT [user:password]: copies the test image to HOST:PORT/e2e/busybox:1.
push() {
  local -a creds=()
  [[ -n "${2:-}" ]] && creds=(--dest-creds "$2")
  in_ns skopeo copy --quiet --dest-tls-verify=false "${creds[@]}" \
    "oci-archive:$DATA/agent/images/busybox.tar:1" "docker://$1/e2e/busybox:1"
}

openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=$NODE_IP" -addext "subjectAltName=IP:$NODE_IP" \
  -days 1 -keyout "$REG/key.pem" -out "$REG/cert.pem" 2>/dev/null
start_registry open 5001
start_registry auth 5002 alice s3cret tls
start_registry secret 5003 bob hunter2
SECURE=$NODE_IP:5002
push 127.0.0.1:5001
push "$SECURE" alice:s3cret
push 127.0.0.1:5003 bob:hunter2
# The registries really ask for credentials.
expect_eq "$(in_ns curl -ks -o /dev/null -w '%{http_code}' https://$SECURE/v2/e2e/busybox/manifests/1)" \
  401 "anonymous pull from the alice registry"
expect_eq "$(in_ns curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5003/v2/e2e/busybox/manifests/1)" \
  401 "anonymous pull from the bob registry"

cat >"$DATA/registries.yaml" <<YAML
mirrors:
  mirror.orch.test:
    endpoint: ["http://127.0.0.1:5001"]
  "127.0.0.1:5003":
    endpoint: ["http://127.0.0.1:5003"]
configs:
  "$SECURE":
    auth: {username: alice, password: s3cret}
    tls: {insecure_skip_verify: true}
YAML

# Small logs rotate fast (checked every second), so the rotation section sees several rotations.
agent_start_server server --kubelet-arg container-log-max-size=2Ki \
  --kubelet-arg container-log-max-files=3 --kubelet-arg container-log-check-period=1s
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

k create secret docker-registry bobcred --docker-server=127.0.0.1:5003 --docker-username=bob \
  --docker-password=hunter2 >/dev/null
k create secret docker-registry wrongcred --docker-server=127.0.0.1:5003 --docker-username=bob \
  --docker-password=nope >/dev/null

# pod NAME IMAGE POLICY [SECRET]
pod() {
  local secrets=""
  [[ -n "${4:-}" ]] && secrets="imagePullSecrets: [{name: $4}]"
  cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  $secrets
  containers:
  - name: c
    image: $2
    imagePullPolicy: $3
    command: [sh, -c, "echo pulled-ok; sleep 3600"]
YAML
}

# wait_running POD: Running within 90 s, or the failure shows the pod's events.
wait_running() {
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    [[ "$(jp "pod/$1" '{.status.phase}')" == Running ]] && return 0
    sleep 0.2
  done
  fail "pod $1 is not Running: $(k describe pod "$1" | tail -15)"
}

events_of() {
  k get events --field-selector "involvedObject.name=$1" -o custom-columns=R:.reason,M:.message \
    --no-headers
}

echo "--- registries.yaml mirror (HTTP endpoint): mirror.orch.test pulls from :5001"
pod mirror mirror.orch.test/e2e/busybox:1 IfNotPresent
wait_running mirror
expect_contains "$(events_of mirror)" 'Successfully pulled image "mirror.orch.test/e2e/busybox:1"' \
  "Pulled event of the mirror pull"
grep -Eq '"(GET|HEAD) /v2/e2e/busybox/manifests/1' "$E2E_TMP/registry-open.log" ||
  fail "the open registry saw no manifest request: $(tail -5 "$E2E_TMP/registry-open.log")"

echo "--- registries.yaml configs: credentials and insecure_skip_verify (HTTPS on the node address :5002)"
pod creds $SECURE/e2e/busybox:1 IfNotPresent
wait_running creds
expect_contains "$(events_of creds)" "Successfully pulled image \"$SECURE/e2e/busybox:1\"" \
  "Pulled event of the authenticated pull"
grep -q 'auth.user.name=alice' "$E2E_TMP/registry-auth.log" ||
  fail "the alice registry saw no authenticated request"

echo "--- imagePullSecrets (kubernetes.io/dockerconfigjson) for :5003"
pod secret 127.0.0.1:5003/e2e/busybox:1 Always bobcred
wait_running secret
expect_contains "$(events_of secret)" 'Successfully pulled image "127.0.0.1:5003/e2e/busybox:1"' \
  "Pulled event of the pull secret's pull"
grep -q 'auth.user.name=bob' "$E2E_TMP/registry-secret.log" ||
  fail "the bob registry saw no authenticated request"

echo "--- a wrong password: ErrImagePull, then ImagePullBackOff, the registry's words in describe"
# Always: the image is present since the pod above, only a pull can fail. A watch sees every
# state the agent writes (ErrImagePull is soon replaced by ImagePullBackOff).
start_bg badpass-states nsenter --net="/run/netns/$AGENT_NS" kubectl --kubeconfig "$KCFG" get pods \
  --field-selector metadata.name=badpass -w \
  -o 'jsonpath={.status.containerStatuses[0].state.waiting.reason}{"\n"}'
states_pid=$BG_PID
sleep 1  # the watch is open
pod badpass 127.0.0.1:5003/e2e/busybox:1 Always wrongcred
saw_reasons() {
  grep -qx ErrImagePull "$E2E_TMP/badpass-states.log" &&
    grep -qx ImagePullBackOff "$E2E_TMP/badpass-states.log"
}
wait_for 90 "ErrImagePull then ImagePullBackOff" saw_reasons
kill "$states_pid" 2>/dev/null || true
expect_eq "$(jp pod/badpass '{.status.phase}')" Pending "phase of a pod that cannot pull"
described=$(k describe pod badpass)
expect_contains "$described" 'Failed to pull image "127.0.0.1:5003/e2e/busybox:1"' "describe: Failed"
expect_contains "$described" "401 Unauthorized" "describe: the registry's answer"
expect_contains "$described" 'Back-off pulling image "127.0.0.1:5003/e2e/busybox:1"' \
  "describe: BackOff"
expect_contains "$(k get pod badpass --no-headers)" ImagePull "kubectl get's STATUS column"

echo "--- no credentials at all for :5003 fails too (the mirror entry carries no auth)"
pod nocred 127.0.0.1:5003/e2e/other:1 IfNotPresent
anonymous_refused() { [[ "$(events_of nocred)" == *"401 Unauthorized"* ]]; }
wait_for 60 "the anonymous pull to be refused (401 in a Failed event)" anonymous_refused
expect_contains "$(jp pod/nocred '{.status.containerStatuses[0].state.waiting.reason}')" ImagePull \
  "waiting reason of the anonymous pull"

echo "--- imagePullPolicy: IfNotPresent reuses, Never never pulls, Always pulls again"
pod again mirror.orch.test/e2e/busybox:1 IfNotPresent
wait_running again
expect_contains "$(events_of again)" \
  'Container image "mirror.orch.test/e2e/busybox:1" already present on machine' "IfNotPresent"
pod never-ok $SECURE/e2e/busybox:1 Never
wait_running never-ok
pod never-missing mirror.orch.test/e2e/absent:1 Never
wait_jp 60 pod/never-missing '{.status.containerStatuses[0].state.waiting.reason}' ErrImageNeverPull
expect_contains "$(events_of never-missing)" \
  'Container image "mirror.orch.test/e2e/absent:1" is not present with pull policy of Never' \
  "ErrImageNeverPull event"
before=$(grep -Ec '"(GET|HEAD) /v2/e2e/busybox/manifests/1' "$E2E_TMP/registry-open.log")
pod always mirror.orch.test/e2e/busybox:1 Always
wait_running always
expect_contains "$(events_of always)" 'Pulling image "mirror.orch.test/e2e/busybox:1"' "Always pulls"
after=$(grep -Ec '"(GET|HEAD) /v2/e2e/busybox/manifests/1' "$E2E_TMP/registry-open.log")
((after > before)) || fail "imagePullPolicy Always did not ask the registry ($before, $after)"
expect_eq "$(k logs always)" pulled-ok "the pulled image runs"

echo "--- pod cgroups: one per pod under its QoS class, the pod's limits, the containers inside"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "cat /proc/self/cgroup; sleep 3600"]
    resources: {limits: {cpu: 250m, memory: 48Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: burstable}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: orch.test/busybox:1
    command: [sh, -c, "cat /proc/self/cgroup; sleep 3600"]
    resources: {requests: {cpu: 100m}, limits: {memory: 32Mi}}
  - name: b
    image: orch.test/busybox:1
    command: [sleep, "3600"]
    resources: {limits: {memory: 16Mi}}
YAML
wait_running guaranteed
wait_running burstable
guid=$(jp pod/guaranteed '{.metadata.uid}')
buid=$(jp pod/burstable '{.metadata.uid}')
beuid=$(jp pod/mirror '{.metadata.uid}')
cg=/sys/fs/cgroup
expect_eq "$(jp pod/guaranteed '{.status.qosClass}')" Guaranteed "qosClass"
expect_eq "$(cat $cg/memory/kubepods/pod$guid/memory.limit_in_bytes)" $((48 * 1024 * 1024)) \
  "guaranteed pod's memory limit"
expect_eq "$(cat $cg/cpu/kubepods/pod$guid/cpu.cfs_quota_us)" 25000 "guaranteed pod's CPU quota"
expect_eq "$(cat $cg/cpu/kubepods/pod$guid/cpu.shares)" 256 "guaranteed pod's CPU shares"
expect_eq "$(cat $cg/memory/kubepods/burstable/pod$buid/memory.limit_in_bytes)" \
  $((48 * 1024 * 1024)) "burstable pod's summed memory limit"
expect_eq "$(cat $cg/cpu/kubepods/burstable/pod$buid/cpu.shares)" 102 "burstable pod's CPU shares"
expect_eq "$(cat $cg/cpu/kubepods/burstable/pod$buid/cpu.cfs_quota_us)" -1 \
  "no CPU quota when a container has no CPU limit"
expect_eq "$(cat $cg/cpu/kubepods/besteffort/pod$beuid/cpu.shares)" 2 "best-effort pod's shares"
in_cgroup() { k logs "$1" -c "$2" 2>/dev/null | grep ":memory:"; }
wait_for 30 "the guaranteed container's output" in_cgroup guaranteed c
expect_contains "$(in_cgroup guaranteed c)" ":memory:/kubepods/pod$guid/" "container inside its pod's cgroup"
wait_for 30 "the burstable container's output" in_cgroup burstable a
expect_contains "$(in_cgroup burstable a)" ":memory:/kubepods/burstable/pod$buid/" \
  "burstable container inside its pod's cgroup"
k delete pod guaranteed --wait=false >/dev/null
cgroup_gone() { [[ ! -e $cg/memory/kubepods/pod$guid && ! -e $cg/cpu/kubepods/pod$guid ]]; }
wait_for 60 "the deleted pod's cgroup to be removed" cgroup_gone

echo "--- log rotation: past 2Ki the log is rotated, 3 files kept, logs -f follows across"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "i=0; while true; do i=\$((i+1)); echo line \$i; sleep 0.05; done"]
YAML
wait_running chatty
start_bg follow nsenter --net="/run/netns/$AGENT_NS" kubectl --kubeconfig "$KCFG" logs -f chatty
follow_pid=$BG_PID
cuid=$(jp pod/chatty '{.metadata.uid}')
clog="$DATA/agent/pod-logs/default_chatty_$cuid/c/0.log"
rotations() { ls "$clog".* 2>/dev/null | wc -l; }
several_rotations() {
  # Two kept files plus at least one that was removed: the newest kept is not the first.
  (($(rotations) == 2)) && [[ "$(ls "$clog".* | head -1)" != "$first_rotated" ]]
}
rotated() { (($(rotations) >= 1)); }
wait_for 60 "a first rotation" rotated
first_rotated=$(ls "$clog".* | head -1)
wait_for 60 "several rotations" several_rotations
(($(rotations) <= 2)) || fail "more than max-files - 1 rotated files: $(ls "$clog".*)"
sleep 1
last=$(tail -1 "$E2E_TMP/follow.log" | awk '{print $2}')
((last > 100)) || fail "logs -f stopped following: $(tail -3 "$E2E_TMP/follow.log")"
# Every line once, in order, across the rotations.
expected=$(seq 1 "$last" | sed 's/^/line /')
actual=$(head -n "$last" "$E2E_TMP/follow.log")
[[ "$actual" == "$expected" ]] || fail "logs -f lost or repeated lines across rotations:
$(diff <(echo "$expected") <(echo "$actual") | head -10)"
now=$(k logs chatty --tail=1 | awk '{print $2}')
((now >= last)) || fail "kubectl logs after rotation: line $now, followed up to $last"
kill "$follow_pid" 2>/dev/null || true

echo "--- image garbage collection: unused images go, in use and pause stay (agent restarted)"
# A second, different image (its own config digest) nothing uses.
mkdir -p "$E2E_TMP/victim-rootfs"
echo victim >"$E2E_TMP/victim-rootfs/file"
bash "$here/../../runtime/make_oci_image.sh" "$DATA/agent/images/victim.tar" "$E2E_TMP/victim-rootfs" \
  '{"Cmd":["/file"]}' orch.test/gc-victim:1 >/dev/null
k delete pods --wait=false --field-selector metadata.name!=chatty >/dev/null
only_chatty() { [[ "$(k get pods -o name 2>/dev/null)" == pod/chatty ]]; }
wait_for 60 "only chatty left" only_chatty
stop_bg "$AGENT_SERVER" TERM 30
crictl_images() {
  ctr --address "$DATA/agent/containerd/containerd.sock" --namespace k8s.io images ls -q
}
agent_start_server server2 --kubelet-arg image-gc-high-threshold=1 \
  --kubelet-arg image-gc-low-threshold=0 --kubelet-arg image-minimum-gc-age=0s \
  --kubelet-arg image-gc-period=2s
victim_gone() {
  local out
  out=$(crictl_images) || return 1
  [[ "$out" != *gc-victim* ]]
}
log_has "$E2E_TMP/server2.log" "unpacking orch.test/gc-victim:1" ||
  fail "the second image was not imported: $(grep imported "$E2E_TMP/server2.log")"
wait_for 60 "the unused image to be collected" victim_gone
wait_for 10 "the removal in the agent's log" log_has "$E2E_TMP/server2.log" \
  "image garbage collection: removed"
images=$(crictl_images)
expect_contains "$images" "orch.test/busybox:1" "the image chatty runs stays"
expect_contains "$images" "docker.io/orch/pause:3.9" "the pause image stays"
wait_jp 30 pod/chatty '{.status.containerStatuses[0].restartCount}' 0
freed_failed() {
  k get events --field-selector involvedObject.kind=Node,reason=FreeDiskSpaceFailed -o name | grep -q .
}
wait_for 30 "the FreeDiskSpaceFailed event (in-use images cannot go)" freed_failed

# The registries name the temp dir: stopped first, so the node's leftover check sees only its own.
for pid in "${REGISTRY_PIDS[@]}"; do stop_bg "$pid" TERM 10; done
agent_finish
