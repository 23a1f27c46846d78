#!/usr/bin/env bash
# e2e_multinode: three nodes on one machine, each in its own network namespace with its own data
# dir and containerd: `orch server` (with its embedded agent) and two `orch agent --join` nodes,
# joined by veths to a bridge in a fourth namespace (the "switch"; its address plays a machine
# outside the cluster). Proves with busybox pods and kubectl: every pod reaches the pods of the
# other nodes by IP (host-gw routes, or the VXLAN overlay with BACKEND vxlan), a ClusterIP Service
# backed by pods on other nodes answers from every node and from a pod, its NodePort on every
# node's IP from outside, cluster DNS from a pod on an agent node, servicelb's enablelb label
# choosing the serving node, and routes following a node that leaves. The agents get no
# cluster-wide flags: they take the server's backend, cluster DNS address and domain (non-default
# here), and an agent with a conflicting --flannel-backend is refused.
#
#   tests/e2e/multinode_test.sh BUILD_DIR [host-gw|vxlan]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"  # agent_leftover_pids

BACKEND=${2:-host-gw}
if ((EUID != 0)); then
  echo "SKIP: $(basename "$0") needs root (containerd, network namespaces)"
  exit 77
fi
e2e_init "${1:?usage: $0 BUILD_DIR [host-gw|vxlan]}"

# Addresses only ever seen inside the test's namespaces: nothing here meets the host's networks.
SUBNET=172.31.250
CLUSTER_CIDR=10.213.0.0/16
# Not the defaults, so that agents visibly take the server's settings.
CLUSTER_DNS=10.43.0.53
CLUSTER_DOMAIN=example.local
NODES=(s a1 a2)
declare -A IP=([s]=$SUBNET.10 [a1]=$SUBNET.11 [a2]=$SUBNET.12)
declare -A NS=() PID=()
SW="orch-mn$$-sw"
for n in "${NODES[@]}"; do NS[$n]="orch-mn$$-$n"; done
KCFG=$E2E_TMP/kubeconfig.yaml
SERVER_URL="https://${IP[s]}:6443"

node_name() { echo "mn-$1"; }
data_of() { echo "$E2E_TMP/$1"; }
in_node() {
  local n=$1
  shift
  nsenter --net="/run/netns/${NS[$n]}" "$@"
}
in_switch() { nsenter --net="/run/netns/$SW" "$@"; }
k() { in_node s kubectl --kubeconfig "$KCFG" "$@"; }
jp() { k get "$1" -n "${3:-default}" -o "jsonpath=$2" 2>/dev/null || true; }

node_alive() { [[ -n "${PID[$1]:-}" ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

mn_cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)); then
    local f
    for f in "$E2E_TMP"/*.log; do
      [[ -e "$f" ]] || continue
      echo "--- last lines of $(basename "$f")" >&2
      tail -30 "$f" >&2
    done
    if [[ -n "${ORCH_E2E_LOGS:-}" ]]; then
      mkdir -p "$ORCH_E2E_LOGS" && cp "$E2E_TMP"/*.log "$ORCH_E2E_LOGS"/
    fi
  fi
  # The pods go through the API while the nodes run (an agent leaves its pods running when it
  # stops), then the agents and the server stop.
  if node_alive s; then
    k delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1
    local deadline=$((SECONDS + 40))
    while ((SECONDS < deadline)) && [[ -n "$(k get pods -A -o name 2>/dev/null)" ]]; do
      sleep 0.5
    done
  fi
  local n
  for n in a2 a1 s; do
    node_alive "$n" && kill -TERM "${PID[$n]}" 2>/dev/null
  done
  for n in a2 a1 s; do
    for _ in $(seq 150); do node_alive "$n" || break; sleep 0.1; done
  done
  # The safety net: containerd shims and their containers, mounts, pod namespaces, cgroups.
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
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    ip -n "${ns##*/}" -o addr show 2>/dev/null | grep -q "inet 10\.213\." && ip netns del "${ns##*/}"
  done
  # Every iptables rule, route, bridge, veth and vxlan device of the nodes lives in these.
  for n in "${NODES[@]}"; do ip netns del "${NS[$n]}" 2>/dev/null; done
  ip netns del "$SW" 2>/dev/null
  local task
  for n in "${NODES[@]}"; do
    for task in "$(data_of "$n")"/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
      [[ -e "$task" ]] || continue
      rmdir /sys/fs/cgroup/*/k8s.io/"${task##*/}" /sys/fs/cgroup/k8s.io/"${task##*/}" 2>/dev/null
    done
  done
  (exit "$rc")
  e2e_cleanup
}
trap mn_cleanup EXIT

echo "--- the network: a switch namespace with a bridge, one namespace per node ($BACKEND)"
ip netns add "$SW"
ip -n "$SW" link set lo up
ip -n "$SW" link add br0 type bridge
ip -n "$SW" addr add "$SUBNET.1/24" dev br0
ip -n "$SW" link set br0 up
i=0
for n in "${NODES[@]}"; do
  ip netns add "${NS[$n]}"
  ip -n "${NS[$n]}" link set lo up
  ip -n "$SW" link add "port$i" type veth peer name eth0 netns "${NS[$n]}"
  ip -n "$SW" link set "port$i" master br0 up
  ip -n "${NS[$n]}" addr add "${IP[$n]}/24" dev eth0
  ip -n "${NS[$n]}" link set eth0 up
  ip -n "${NS[$n]}" route add default via "$SUBNET.1" dev eth0
  mkdir -p "$(data_of "$n")/agent/images"
  i=$((i + 1))
done
bash "$here/make_busybox_image.sh" "$E2E_TMP/busybox.tar"
for n in "${NODES[@]}"; do cp "$E2E_TMP/busybox.tar" "$(data_of "$n")/agent/images/"; done

echo "--- the server, then two agents join it"
start_bg server nsenter --net="/run/netns/${NS[s]}" "$ORCH" server --data-dir "$(data_of s)" \
  -o "$KCFG" --node-name "$(node_name s)" --node-ip "${IP[s]}" --cluster-cidr "$CLUSTER_CIDR" \
  --flannel-backend "$BACKEND" --cluster-dns "$CLUSTER_DNS" --cluster-domain "$CLUSTER_DOMAIN"
PID[s]=$BG_PID
server_running() {
  node_alive s || fail "the server exited: $(tail -20 "$E2E_TMP/server.log")"
  log_has "$E2E_TMP/server.log" "server: running"
}
wait_for 120 "the server to run" server_running
token=$(head -n1 "$(data_of s)/server/token")
# The agents get no cluster-wide flags: the backend, cluster DNS and domain are the server's.
for n in a1 a2; do
  start_bg "agent-$n" nsenter --net="/run/netns/${NS[$n]}" "$ORCH" agent --join "$SERVER_URL" \
    --token "$token" --data-dir "$(data_of "$n")" --node-name "$(node_name "$n")" \
    --node-ip "${IP[$n]}"
  PID[$n]=$BG_PID
done

ready_nodes() {
  k get nodes -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True
}
three_ready() { [[ "$(ready_nodes)" == 3 ]]; }
wait_for 120 "three Ready nodes" three_ready
declare -A CIDR=()
for n in "${NODES[@]}"; do
  CIDR[$n]=$(jp "node/$(node_name "$n")" '{.spec.podCIDR}')
  [[ "${CIDR[$n]}" == 10.213.*.0/24 ]] || fail "node $n pod CIDR: '${CIDR[$n]}'"
  expect_eq "$(jp "node/$(node_name "$n")" '{.status.addresses[?(@.type=="InternalIP")].address}')" \
    "${IP[$n]}" "node $n InternalIP"
done
[[ "${CIDR[s]}" != "${CIDR[a1]}" && "${CIDR[a1]}" != "${CIDR[a2]}" && "${CIDR[s]}" != "${CIDR[a2]}" ]] ||
  fail "pod CIDRs are not distinct: ${CIDR[*]}"

echo "--- the agents took the server's settings; a conflicting agent flag is refused"
for n in a1 a2; do
  log_has "$E2E_TMP/agent-$n.log" "using cluster-dns $CLUSTER_DNS" ||
    fail "agent $n did not take the server's cluster DNS"
  log_has "$E2E_TMP/agent-$n.log" "using cluster-domain $CLUSTER_DOMAIN" ||
    fail "agent $n did not take the server's cluster domain"
done
other_backend=$([[ "$BACKEND" == vxlan ]] && echo host-gw || echo vxlan)
mkdir -p "$E2E_TMP/refused"
run_capture in_switch timeout 60 "$ORCH" agent --join "$SERVER_URL" --token "$token" \
  --data-dir "$E2E_TMP/refused" --node-name mn-refused --node-ip "$SUBNET.1" \
  --flannel-backend "$other_backend"
expect_eq "$RC" 1 "exit code of an agent with --flannel-backend $other_backend"
expect_contains "$OUT$ERR" "the server runs flannel backend $BACKEND" "the refusal"
[[ -z "$(jp node/mn-refused '{.metadata.name}')" ]] || fail "the refused agent registered a Node"

echo "--- every node has state of its own (containerd socket, IPAM leases, CNI config)"
for n in "${NODES[@]}"; do
  [[ -S "$(data_of "$n")/agent/containerd/containerd.sock" ]] || fail "node $n has no containerd socket"
done

# routes_of NODE: orch's routes in the node's namespace, "CIDR via" per line.
routes_of() { in_node "$1" ip -4 route show proto 199 | awk '{print $1, $3}' | sort; }
# want_routes NODE: the routes it should have to the nodes listed after it.
want_routes() {
  local n=$1 other out=""
  shift
  for other in "$@"; do
    if [[ "$BACKEND" == vxlan ]]; then
      out+="${CIDR[$other]} ${CIDR[$other]%/*}"$'\n'
    else
      out+="${CIDR[$other]} ${IP[$other]}"$'\n'
    fi
  done
  printf '%s' "$out" | sort
}
routes_are() {
  local n=$1
  shift
  [[ "$(routes_of "$n")" == "$(want_routes "$n" "$@")" ]]
}
echo "--- each node routes to the other two nodes' pod CIDRs"
wait_for 30 "routes on s" routes_are s a1 a2
wait_for 30 "routes on a1" routes_are a1 s a2
wait_for 30 "routes on a2" routes_are a2 s a1

if [[ "$BACKEND" == vxlan ]]; then
  echo "--- vxlan: flannel.1 (VNI 1, port 8472) on every node, its MAC announced, pods' MTU lowered"
  for n in "${NODES[@]}"; do
    dev=$(in_node "$n" ip -d link show flannel.1) || fail "node $n has no flannel.1"
    expect_contains "$dev" "vxlan id 1 " "flannel.1 on $n"
    expect_contains "$dev" "dstport 8472" "flannel.1 port on $n"
    expect_contains "$dev" "mtu 1450" "flannel.1 MTU on $n"
    mac=$(in_node "$n" ip -o link show flannel.1 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
    annotations=$(jp "node/$(node_name "$n")" '{.metadata.annotations}')
    expect_contains "$annotations" "\"flannel.alpha.coreos.com/backend-type\":\"vxlan\"" "backend annotation of $n"
    expect_contains "$annotations" "\"flannel.alpha.coreos.com/public-ip\":\"${IP[$n]}\"" "public-ip annotation of $n"
    expect_contains "$annotations" "$mac" "VtepMAC in the backend-data annotation of $n"
  done
  fdb=$(in_node a1 bridge fdb show dev flannel.1)
  expect_contains "$fdb" "dst ${IP[a2]}" "a1's FDB entry for a2"
  expect_contains "$fdb" "dst ${IP[s]}" "a1's FDB entry for s"
fi

echo "--- a busybox httpd pod on each node"
for n in "${NODES[@]}"; do
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: p-$n
  labels: {app: web, node: $n, backend: "$([[ $n == s ]] && echo no || echo yes)"}
spec:
  nodeName: $(node_name "$n")
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: orch.test/busybox:1
    command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -v -p 8080 -h /www']
    ports: [{name: http, containerPort: 8080}]
---
YAML
done >"$E2E_TMP/pods.yaml"
k apply -f "$E2E_TMP/pods.yaml" >/dev/null
pods_ready() {
  [[ "$(k get pods -l app=web -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True)" == 3 ]]
}
wait_for 120 "three pods ready" pods_ready
declare -A POD_IP=()
for n in "${NODES[@]}"; do
  POD_IP[$n]=$(jp "pod/p-$n" '{.status.podIP}')
  [[ "${POD_IP[$n]}" == "${CIDR[$n]%.*}".* ]] || fail "pod p-$n IP ${POD_IP[$n]} is not in ${CIDR[$n]}"
done
if [[ "$BACKEND" == vxlan ]]; then
  expect_contains "$(k exec p-a1 -- ip link show eth0)" "mtu 1450" "a pod's MTU under vxlan"
fi

# pod_get POD URL: the page, fetched from inside the pod (kubectl exec over the node link).
pod_get() { k exec "$1" -- timeout 5 wget -q -O - "$2" 2>&1; }
# node_get NODE URL / switch_get URL: fetched from a node's namespace / from outside the nodes.
node_get() { in_node "$1" timeout 5 busybox wget -q -O - "$2" 2>&1; }
switch_get() { in_switch timeout 5 busybox wget -q -O - "$1" 2>&1; }
answers() {
  local page
  page=$("$@") || return 1
  [[ "$page" == p-* ]]
}

echo "--- every pod reaches the pods on the other nodes by IP"
for from in "${NODES[@]}"; do
  for to in "${NODES[@]}"; do
    [[ "$from" == "$to" ]] && continue
    page=$(pod_get "p-$from" "http://${POD_IP[$to]}:8080/") || fail "p-$from -> p-$to (${POD_IP[$to]}): $page"
    expect_eq "$page" "p-$to" "p-$from -> p-$to"
  done
done
echo "--- the source address is the pod's own (no masquerade between pods)"
# httpd -v logs each client's address.
seen_source() { k logs p-a2 | grep -q "${POD_IP[a1]}"; }
wait_for 10 "p-a2's log to show p-a1's own address" seen_source

echo "--- a ClusterIP Service backed by the pods on a1 and a2"
cat >"$E2E_TMP/svc.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web, backend: "yes"}
  ports:
  - {name: web, port: 80, targetPort: http, nodePort: 30080}
YAML
k apply -f "$E2E_TMP/svc.yaml" >/dev/null
cip=$(jp svc/web '{.spec.clusterIP}')
[[ -n "$cip" ]] || fail "no ClusterIP"
two_endpoints() { [[ "$(jp endpoints/web '{.subsets[*].addresses[*].ip}' | wc -w)" == 2 ]]; }
wait_for 30 "two endpoints" two_endpoints
for n in "${NODES[@]}"; do
  wait_for 30 "the ClusterIP from node $n" answers node_get "$n" "http://$cip/"
done
declare -A seen=()
for _ in $(seq 20); do
  page=$(node_get s "http://$cip/") || fail "ClusterIP from s: $page"
  seen[$page]=1
done
expect_eq "$(printf '%s\n' "${!seen[@]}" | sort | tr '\n' ' ')" "p-a1 p-a2 " \
  "pods answering node s through the ClusterIP (20 requests)"
for n in "${NODES[@]}"; do
  page=$(pod_get "p-$n" "http://$cip/") || fail "ClusterIP from pod p-$n: $page"
  [[ "$page" == p-a1 || "$page" == p-a2 ]] || fail "ClusterIP from pod p-$n answered '$page'"
done

echo "--- the NodePort answers on every node's IP, from outside the nodes"
for n in "${NODES[@]}"; do
  wait_for 30 "NodePort on ${IP[$n]}" answers switch_get "http://${IP[$n]}:30080/"
done

echo "--- cluster DNS (the server's address and domain) from pods on agent nodes"
expect_eq "$(jp svc/kube-dns '{.spec.clusterIP}' kube-system)" "$CLUSTER_DNS" "kube-dns ClusterIP"
dns=$(k exec p-a1 -- nslookup -type=a "web.default.svc.$CLUSTER_DOMAIN" 2>&1) || fail "nslookup from p-a1: $dns"
expect_contains "$dns" "$cip" "web.default.svc.$CLUSTER_DOMAIN from p-a1"
dns=$(k exec p-a2 -- nslookup -type=a "kubernetes.default.svc.$CLUSTER_DOMAIN" 2>&1) || fail "nslookup from p-a2: $dns"
expect_contains "$dns" "10.43.0.1" "kubernetes.default from p-a2"
for n in a1 a2; do
  resolv=$(k exec "p-$n" -- cat /etc/resolv.conf)
  expect_contains "$resolv" "nameserver $CLUSTER_DNS" "p-$n's resolv.conf nameserver"
  expect_contains "$resolv" "search default.svc.$CLUSTER_DOMAIN svc.$CLUSTER_DOMAIN $CLUSTER_DOMAIN" \
    "p-$n's resolv.conf search path"
done

echo "--- servicelb: only the node labelled enablelb serves a LoadBalancer Service"
k label node "$(node_name a1)" svccontroller.k3s.cattle.io/enablelb=true >/dev/null
k expose pod p-a2 --name=lb --type=LoadBalancer --port=8081 --target-port=8080 >/dev/null
lb_ips() { [[ "$(jp svc/lb '{.status.loadBalancer.ingress[*].ip}')" == "${IP[a1]}" ]]; }
wait_for 60 "the LoadBalancer status to list a1 only" lb_ips
wait_for 30 "the load balancer on a1" answers switch_get "http://${IP[a1]}:8081/"
refused() {
  local out
  if out=$("$@"); then return 1; fi
  [[ "$out" == *refused* ]]
}
wait_for 10 "a2 not to serve port 8081" refused switch_get "http://${IP[a2]}:8081/"
k delete svc lb >/dev/null

echo "--- a node leaves: its routes go from the others"
k delete pod p-a2 --grace-period=1 >/dev/null
stop_bg "${PID[a2]}" TERM 30
expect_eq "$BG_RC" 0 "agent a2 exit code"
k delete node "$(node_name a2)" >/dev/null
wait_for 30 "s to drop the route to a2" routes_are s a1
wait_for 30 "a1 to drop the route to a2" routes_are a1 s
if [[ "$BACKEND" == vxlan ]]; then
  expect_not_contains "$(in_node a1 bridge fdb show dev flannel.1)" "dst ${IP[a2]}" "a1's FDB after a2 left"
fi
# The remaining nodes still reach each other.
page=$(pod_get p-a1 "http://${POD_IP[s]}:8080/") || fail "p-a1 -> p-s after a2 left: $page"
expect_eq "$page" "p-s" "p-a1 -> p-s after a2 left"

echo "--- the cluster stops cleanly"
k delete pods --all --grace-period=1 --wait=false >/dev/null
no_pods() { [[ -z "$(k get pods -A -o name 2>/dev/null)" ]]; }
wait_for 60 "every pod to be deleted" no_pods
stop_bg "${PID[a1]}" TERM 30
expect_eq "$BG_RC" 0 "agent a1 exit code"
stop_bg "${PID[s]}" TERM 30
expect_eq "$BG_RC" 0 "server exit code"
wait_for 10 "no process of the nodes left" agent_nothing_left
