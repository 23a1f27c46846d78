# Helpers of the node agent's e2e tests (source after lib.sh): `orch server` with its embedded
# agent in a network namespace of the test's own (its bridge, veths, iptables rules and ports
# never meet the host's or a real cluster's), the busybox image imported at start, kubectl in
# that namespace, and a cleanup that deletes the pods, stops the server and then removes
# whatever is left (containerd shims, mounts, network namespaces, cgroups).
# shellcheck shell=bash

AGENT_NS=""
AGENT_SERVER=""
# A command that runs the server, its arguments following (e.g. a mount namespace of its own).
AGENT_SERVER_WRAPPER=()

# agent_e2e_init BUILD_DIR NAME CLUSTER_CIDR: skips without root (exit 77), makes the temp dir,
# the network namespace and the image archive. Sets DATA, KCFG, NODE, NODE_IP, CLUSTER_CIDR.
agent_e2e_init() {
  if ((EUID != 0)); then
    echo "SKIP: $(basename "$0") needs root (containerd, network namespaces)"
    exit 77
  fi
  e2e_init "$1"
  trap agent_cleanup EXIT
  CLUSTER_CIDR=$3
  NODE="orch-e2e-$2"
  NODE_IP=172.31.255.2
  DATA=$E2E_TMP/data
  KCFG=$E2E_TMP/kubeconfig.yaml
  AGENT_NS="orch-e2e-$2-$$"
  ip netns add "$AGENT_NS"
  ip -n "$AGENT_NS" link set lo up
  # The node's own interface (a veth pair inside the namespace: this kernel may lack "dummy"),
  # with a default route so the node has an address as on a real machine.
  ip -n "$AGENT_NS" link add eth0 type veth peer name eth0-peer
  ip -n "$AGENT_NS" addr add "$NODE_IP/24" dev eth0
  ip -n "$AGENT_NS" link set eth0-peer up
  ip -n "$AGENT_NS" link set eth0 up
  ip -n "$AGENT_NS" route add default via 172.31.255.1 dev eth0
  mkdir -p "$DATA/agent/images"
  bash "$(dirname "${BASH_SOURCE[0]}")/make_busybox_image.sh" "$DATA/agent/images/busybox.tar"
}

# in_ns CMD...: runs CMD in the test's network namespace.
in_ns() { nsenter --net="/run/netns/$AGENT_NS" "$@"; }

k() { in_ns kubectl --kubeconfig "$KCFG" "$@"; }

# agent_start_server LOGNAME [FLAGS...]: starts orch server in the namespace; sets AGENT_SERVER.
agent_start_server() {
  local name=$1
  shift
  start_bg "$name" "${AGENT_SERVER_WRAPPER[@]}" nsenter --net="/run/netns/$AGENT_NS" "$ORCH" server --data-dir "$DATA" \
    -o "$KCFG" --node-name "$NODE" --node-ip "$NODE_IP" --cluster-cidr "$CLUSTER_CIDR" "$@"
  AGENT_SERVER=$BG_PID
  wait_for 120 "the server to run ($E2E_TMP/$name.log)" agent_server_running "$name"
}

agent_server_running() {
  kill -0 "$AGENT_SERVER" 2>/dev/null || fail "the server exited: $(tail -20 "$E2E_TMP/$1.log")"
  log_has "$E2E_TMP/$1.log" "server: running"
}

# jp OBJECT JSONPATH [NAMESPACE]: a field by kubectl's jsonpath, "" when absent.
jp() { k get "$1" -n "${3:-default}" -o "jsonpath=$2" 2>/dev/null || true; }

# wait_jp TIMEOUT OBJECT JSONPATH EXPECTED: waits until the field has the value.
wait_jp() {
  local timeout=$1 object=$2 path=$3 expected=$4
  local deadline=$((SECONDS + timeout)) value=""
  while ((SECONDS < deadline)); do
    value=$(jp "$object" "$path")
    [[ "$value" == "$expected" ]] && return 0
    sleep 0.2
  done
  fail "$object $path: expected '$expected' within ${timeout}s, got '$value'
$(k get "$object" -o yaml 2>&1 | tail -40)"
}

# pod_log POD CONTAINER: the CRI log file of the container's latest run (kubectl logs needs the
# streams work; the file is what it will read).
pod_log() {
  local uid restarts
  uid=$(jp "pod/$1" '{.metadata.uid}')
  restarts=$(jp "pod/$1" "{.status.containerStatuses[?(@.name==\"$2\")].restartCount}")
  [[ -n "$restarts" ]] || restarts=$(jp "pod/$1" "{.status.initContainerStatuses[?(@.name==\"$2\")].restartCount}")
  cat "$DATA/agent/pod-logs/default_$1_$uid/$2/${restarts:-0}.log" 2>/dev/null || true
}

log_contains() { [[ "$(pod_log "$1" "$2")" == *"$3"* ]]; }

# Processes whose command line names the temp dir (containerd, its shims), and their children.
agent_leftover_pids() {
  local p args
  local -a all=()
  for p in /proc/[0-9]*; do
    mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
    [[ "${args[*]}" == *"$E2E_TMP/"* && "${p#/proc/}" != "$$" ]] && all+=("${p#/proc/}")
  done
  ((${#all[@]} > 0)) || return 0
  local changed=1 stat ppid
  while ((changed)); do
    changed=0
    for p in /proc/[0-9]*; do
      read -r stat <"$p/stat" 2>/dev/null || continue
      stat=${stat##*) }
      ppid=${stat#* }
      ppid=${ppid%% *}
      if [[ " ${all[*]} " == *" $ppid "* && " ${all[*]} " != *" ${p#/proc/} "* ]]; then
        all+=("${p#/proc/}")
        changed=1
      fi
    done
  done
  echo "${all[@]}"
}

agent_cleanup() {
  local rc=$?
  set +e
  # A failed run shows what the node said (and keeps every log with ORCH_E2E_LOGS=DIR).
  if ((rc != 0)) && [[ -n "$E2E_TMP" ]]; then
    local f
    for f in "$E2E_TMP"/server*.log; do
      [[ -e "$f" ]] || continue
      echo "--- last lines of $(basename "$f")" >&2
      tail -40 "$f" >&2
    done
    if [[ -n "${ORCH_E2E_LOGS:-}" ]]; then
      mkdir -p "$ORCH_E2E_LOGS"
      cp "$E2E_TMP"/*.log "$ORCH_E2E_LOGS"/ 2>/dev/null
      cp -r "$DATA/agent/pod-logs" "$ORCH_E2E_LOGS"/ 2>/dev/null
    fi
  fi
  # The normal way: the agent stops and removes the pods, then the server stops (the agent
  # leaves running pods alone when it stops, by design).
  if [[ -n "$AGENT_SERVER" ]] && kill -0 "$AGENT_SERVER" 2>/dev/null; then
    k delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1
    local deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)) && [[ -n "$(k get pods -A -o name 2>/dev/null)" ]]; do
      sleep 0.5
    done
    kill -TERM "$AGENT_SERVER" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$AGENT_SERVER" 2>/dev/null || break; sleep 0.1; done
  fi
  # The safety net.
  local left
  left=$(agent_leftover_pids)
  if [[ -n "$left" ]]; then
    echo "cleanup: killing leftover processes $left" >&2
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
    sleep 0.5
  fi
  local m
  for m in $(awk -v t="$E2E_TMP/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  local ns net=${CLUSTER_CIDR%.*.*}
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    ip -n "${ns##*/}" -o addr show 2>/dev/null | grep -q "inet ${net//./\\.}\." && ip netns del "${ns##*/}"
  done
  [[ -n "$AGENT_NS" ]] && ip netns del "$AGENT_NS" 2>/dev/null
  local task id
  for task in "$DATA"/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
    [[ -e "$task" ]] || continue
    id=${task##*/}
    rmdir /sys/fs/cgroup/*/k8s.io/"$id" /sys/fs/cgroup/k8s.io/"$id" 2>/dev/null
  done
  # Pod cgroups (kubepods/[QOS/]pod<uid>) of this test's pods: only empty ones go (rmdir).
  local p uid dir
  for p in "$DATA"/agent/pods/* "$DATA"/agent/pod-logs/*; do
    [[ -e "$p" ]] || continue
    uid=${p##*/}
    uid=${uid##*_}
    for dir in /sys/fs/cgroup/*/kubepods/pod"$uid" /sys/fs/cgroup/*/kubepods/*/pod"$uid" \
      /sys/fs/cgroup/kubepods/pod"$uid" /sys/fs/cgroup/kubepods/*/pod"$uid"; do
      [[ -d "$dir" ]] || continue
      rmdir "$dir"/*/ "$dir" 2>/dev/null
    done
  done
  (exit "$rc")
  e2e_cleanup
}

# agent_finish: the end of a passing test: every pod deleted through the API and gone from the
# node, the server stopped with SIGTERM, and nothing of the node left running.
agent_finish() {
  k delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null
  wait_for 90 "every pod to be deleted" agent_no_pods
  wait_for 60 "the node to remove every container" agent_no_containers
  stop_bg "$AGENT_SERVER" TERM 30
  expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
  AGENT_SERVER=""
  # A shim exits moments after its last container is removed.
  wait_for 10 "no process of the node left" agent_nothing_left
  local mounts
  mounts=$(awk -v t="$E2E_TMP/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo)
  [[ -z "$mounts" ]] || fail "mounts left under the data dir: $mounts"
}

# pod_netns IP: prints the name of the pod network namespace (/run/netns/cni-*) holding IP.
# nsenter rather than `ip -n`, which also remounts /sys in a private mount namespace.
pod_netns() {
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    if nsenter --net="$ns" ip -o -4 addr show 2>/dev/null | grep -q "inet ${1//./\\.}/"; then
      echo "${ns##*/}"
      return 0
    fi
  done
  return 1
}

# find_pod_netns IP: sets POD_NS to the pod network namespace holding IP, waiting up to 30 s;
# fails listing every pod namespace's addresses.
find_pod_netns() {
  local deadline=$((SECONDS + 30)) ns
  until POD_NS=$(pod_netns "$1"); do
    if ((SECONDS >= deadline)); then
      for ns in /run/netns/cni-*; do
        echo "$ns: $(nsenter --net="$ns" ip -o -4 addr show 2>&1 | awk '{print $4}' | tr '\n' ' ')"
      done >&2
      fail "no network namespace holds pod IP $1"
    fi
    sleep 0.2
  done
}

# web_app NAME REPLICAS SETUP [PROBE]: the YAML of a Deployment of busybox httpd pods (label
# app=NAME) serving /www on port 8080 (named http) once the shell lines SETUP, run in the pod, have
# written the pages; PROBE=ready adds a readiness probe on /ready.html.
web_app() {
  local name=$1 replicas=$2 setup=$3 probe=${4:-}
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: orch.test/busybox:1
        command: [sh, -c]
        args:
        - |
          mkdir -p /www
$(sed 's/^/          /' <<<"$setup")
          exec httpd -f -p 8080 -h /www
        ports: [{name: http, containerPort: 8080}]
YAML
  if [[ "$probe" == ready ]]; then
    cat <<'YAML'
        readinessProbe:
          httpGet: {path: /ready.html, port: http}
          periodSeconds: 1
          failureThreshold: 1
YAML
  fi
  echo ---
}

# web_service NAME PORT_NAME PORT [NODE_PORT]: the YAML of a Service in front of web_app NAME's
# pods; a NodePort Service on NODE_PORT if given, else a ClusterIP one.
web_service() {
  local type=ClusterIP
  [[ -z "${4:-}" ]] || type=NodePort
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  type: $type
  selector: {app: $1}
  ports: [{name: $2, port: $3, targetPort: http${4:+, nodePort: $4}}]
---
YAML
}

# host_ingress NAME HOST SERVICE PORT [CLASS]: the YAML of an Ingress sending every path of HOST
# to SERVICE:PORT, of IngressClass CLASS if given (else the admission gives the default one).
host_ingress() {
  cat <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: $1}
spec:
  ${5:+ingressClassName: $5}
  rules:
  - host: "$2"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: $3, port: {number: $4}}}}
---
YAML
}

# ready_count APP: how many pods labelled app=APP are Ready.
ready_count() {
  k get pods -l "app=$1" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true
}

# ready_n APP N: whether exactly N pods labelled app=APP are Ready (for wait_for).
ready_n() { [[ "$(ready_count "$1")" == "$2" ]]; }

agent_no_pods() { [[ -z "$(k get pods -A -o name 2>/dev/null)" ]]; }

agent_no_containers() {
  local out
  out=$(ctr --address "$DATA/agent/containerd/containerd.sock" --namespace k8s.io containers ls -q) || return 1
  [[ -z "$out" ]]
}

agent_nothing_left() { [[ -z "$(agent_leftover_pids)" ]]; }
