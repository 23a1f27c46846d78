#!/usr/bin/env bash
# e2e_service_proxy: a Deployment of busybox httpd pods behind a NodePort Service on orch
# server's embedded agent: Endpoints and EndpointSlices follow the pods, the ClusterIP answers
# from the node and from a pod (hairpin included) with traffic spread over the pods, the NodePort
# answers on 127.0.0.1 and the node IP, sessionAffinity ClientIP sticks, scaling to zero refuses
# connections and scaling back serves again; a LoadBalancer Service gets the node IP in its status
# and answers at its port on the node IP and 127.0.0.1, a second one on the same port is refused
# until the first goes, and one turned ClusterIP loses both; `orch agent --cleanup` removes every
# ORCH chain.
#
#   tests/e2e/service_proxy_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" svc 10.212.0.0/16
agent_start_server server

wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

echo "--- the kubernetes Service has endpoints and a slice pointing at the API server"
wait_jp 30 endpoints/kubernetes '{.subsets[0].addresses[0].ip}' "$NODE_IP"
expect_eq "$(jp endpoints/kubernetes '{.subsets[0].ports[0].port}')" 6443 "kubernetes endpoints port"
kubernetes_slice() {
  [[ "$(k get endpointslices -l kubernetes.io/service-name=kubernetes \
    -o 'jsonpath={.items[0].endpoints[0].addresses[0]}')" == "$NODE_IP" ]]
}
wait_for 30 "the kubernetes EndpointSlice" kubernetes_slice

echo "--- a Deployment behind a NodePort Service"
{
  web_app web 2 'hostname > /www/index.html'
  web_service web web 80 30080
} >"$E2E_TMP/web.yaml"
k apply -f "$E2E_TMP/web.yaml" >/dev/null
cip=$(jp svc/web '{.spec.clusterIP}')
[[ -n "$cip" ]] || fail "no ClusterIP"

endpoint_ips() { jp endpoints/web '{.subsets[*].addresses[*].ip}'; }
slice_ips() {
  k get endpointslices -l kubernetes.io/service-name=web \
    -o 'jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{" "}{end}'
}
count_words() { wc -w <<<"$1" | tr -d ' '; }
has_n_endpoints() { [[ "$(count_words "$(endpoint_ips)")" == "$1" && "$(count_words "$(slice_ips)")" == "$1" ]]; }

wait_for 120 "two web pods ready" ready_n web 2
wait_for 30 "two endpoints in Endpoints and EndpointSlices" has_n_endpoints 2

echo "--- Endpoints and EndpointSlices describe the pods"
pod_ips=$(k get pods -l app=web -o 'jsonpath={.items[*].status.podIP}')
for ip in $pod_ips; do
  expect_contains "$(endpoint_ips)" "$ip" "Endpoints address"
  expect_contains "$(slice_ips)" "$ip" "EndpointSlice endpoint"
done
expect_eq "$(jp endpoints/web '{.subsets[0].ports[0].port}')" 8080 "named targetPort resolved"
expect_eq "$(jp endpoints/web '{.subsets[0].addresses[0].targetRef.kind}')" Pod "targetRef kind"
expect_eq "$(jp endpoints/web '{.subsets[0].addresses[0].nodeName}')" "$NODE" "nodeName"
slice=$(k get endpointslices -l kubernetes.io/service-name=web -o 'jsonpath={.items[0].metadata.name}')
expect_eq "$(jp "endpointslice/$slice" '{.metadata.labels.endpointslice\.kubernetes\.io/managed-by}')" \
  endpointslice-controller.k8s.io "slice managed-by"
expect_eq "$(jp "endpointslice/$slice" '{.addressType}')" IPv4 "slice address type"
expect_eq "$(jp "endpointslice/$slice" '{.ports[0].name}/{.ports[0].port}')" web/8080 "slice port"
expect_eq "$(jp "endpointslice/$slice" '{.metadata.ownerReferences[0].kind}')" Service "slice owner"
expect_contains "$(k get endpoints web)" ":8080" "kubectl get endpoints"

echo "--- the rules are in orch's chains"
rules=$(in_ns iptables-save)
for chain in ORCH-SERVICES ORCH-NODEPORTS ORCH-POSTROUTING ORCH-MARK-MASQ ORCH-FIREWALL; do
  expect_contains "$rules" ":$chain " "chain $chain"
done
expect_contains "$rules" "-A PREROUTING -m comment --comment \"orch service portals\" -j ORCH-SERVICES" "PREROUTING jump"
expect_eq "$(in_ns cat /proc/sys/net/ipv4/conf/all/route_localnet)" 1 "route_localnet"

# get URL [NETNS]: the page, from the node's namespace or the given one (Debian's busybox wget
# crashes with -T, hence timeout).
get() {
  local ns=${2:-$AGENT_NS}
  nsenter --net="/run/netns/$ns" timeout 5 busybox wget -q -O - "$1" 2>&1
}
served_by_a_pod() {
  local page
  page=$(get "$1" "${2:-}") || return 1
  [[ "$page" == web-* ]]
}

echo "--- the ClusterIP answers from the node, spread over both pods"
wait_for 30 "the ClusterIP $cip:80" served_by_a_pod "http://$cip/"
declare -A seen=()
for _ in $(seq 30); do
  page=$(get "http://$cip/") || fail "ClusterIP request failed: $page"
  seen[$page]=1
done
expect_eq "${#seen[@]}" 2 "pods answering through the ClusterIP (30 requests)"

echo "--- the ClusterIP answers from inside a pod, also when the pod reaches itself"
first_ip=${pod_ips%% *}
find_pod_netns "$first_ip"
pod_ns=$POD_NS
declare -A from_pod=()
for _ in $(seq 30); do
  page=$(get "http://$cip/" "$pod_ns") || fail "ClusterIP request from a pod failed: $page"
  from_pod[$page]=1
done
expect_eq "${#from_pod[@]}" 2 "pods answering a pod through the ClusterIP (itself included)"

echo "--- the NodePort answers on 127.0.0.1 and on the node IP"
wait_for 30 "NodePort on 127.0.0.1" served_by_a_pod "http://127.0.0.1:30080/"
wait_for 30 "NodePort on $NODE_IP" served_by_a_pod "http://$NODE_IP:30080/"

echo "--- sessionAffinity ClientIP sends one client to one pod"
k patch svc web -p '{"spec":{"sessionAffinity":"ClientIP"}}' >/dev/null
affinity_rules() { in_ns iptables-save -t nat | grep -q -- '--rcheck'; }
wait_for 30 "affinity rules" affinity_rules
declare -A sticky=()
for _ in $(seq 15); do
  page=$(get "http://$cip/") || fail "ClusterIP request failed: $page"
  sticky[$page]=1
done
expect_eq "${#sticky[@]}" 1 "pods answering one client with ClientIP affinity"
k patch svc web -p '{"spec":{"sessionAffinity":"None"}}' >/dev/null

echo "--- scaled to zero: connections are refused"
k scale deployment web --replicas=0 >/dev/null
wait_for 60 "no endpoints" has_n_endpoints 0
refused() {
  local out
  if out=$(get "$1"); then return 1; fi
  [[ "$out" == *"refused"* ]]
}
wait_for 30 "the ClusterIP to refuse connections" refused "http://$cip/"
wait_for 30 "the NodePort to refuse connections" refused "http://127.0.0.1:30080/"
run_capture get "http://$NODE_IP:30080/"
expect_contains "$OUT$ERR" "refused" "NodePort on the node IP without endpoints"

echo "--- scaled back: served again"
k scale deployment web --replicas=1 >/dev/null
wait_for 120 "one endpoint again" has_n_endpoints 1
wait_for 30 "the ClusterIP to serve again" served_by_a_pod "http://$cip/"
wait_for 30 "the NodePort to serve again" served_by_a_pod "http://127.0.0.1:30080/"

echo "--- a LoadBalancer Service: the node IP in its status, its port on the node's addresses"
k expose deployment web --name=web-lb --type=LoadBalancer --port=8081 --target-port=8080 >/dev/null
wait_jp 60 svc/web-lb '{.status.loadBalancer.ingress[0].ip}' "$NODE_IP"
[[ -n "$(jp svc/web-lb '{.spec.ports[0].nodePort}')" ]] || fail "the LoadBalancer Service has no NodePort"
lb_row=$(k get svc web-lb --no-headers)
expect_contains "$lb_row" "LoadBalancer" "kubectl get svc TYPE"
expect_contains "$lb_row" " $NODE_IP " "kubectl get svc EXTERNAL-IP"
wait_for 30 "the load balancer on $NODE_IP:8081" served_by_a_pod "http://$NODE_IP:8081/"
wait_for 30 "the load balancer on 127.0.0.1:8081" served_by_a_pod "http://127.0.0.1:8081/"
lb_pod_ip=$(k get pods -l app=web -o 'jsonpath={.items[0].status.podIP}')
find_pod_netns "$lb_pod_ip"
lb_pod_ns=$POD_NS
wait_for 30 "the load balancer from a pod" served_by_a_pod "http://$NODE_IP:8081/" "$lb_pod_ns"
lb_events() { k get events --field-selector involvedObject.name=web-lb -o 'jsonpath={.items[*].reason}'; }
ensured() { [[ "$(lb_events)" == *EnsuredLoadBalancer* ]]; }
wait_for 30 "the EnsuredLoadBalancer event" ensured
expect_contains "$(lb_events)" EnsuringLoadBalancer "events of the load balancer"

echo "--- a second LoadBalancer Service on the same port is refused; another class is not"
run_capture k expose deployment web --name=web-lb2 --type=LoadBalancer --port=8081 --target-port=8080
expect_eq "$RC" 1 "creating a second LoadBalancer Service on port 8081 (out: $OUT)"
expect_contains "$ERR" 'spec.ports[0].port: Invalid value: 8081: port 8081/TCP is already used by LoadBalancer Service default/web-lb' "the refusal"
[[ -z "$(jp svc/web-lb2 '{.metadata.name}')" ]] || fail "the refused Service exists"
cat >"$E2E_TMP/other-class.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web-other}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/other
  selector: {app: web}
  ports:
  - {port: 8081, targetPort: 8080}
YAML
k apply -f "$E2E_TMP/other-class.yaml" >/dev/null
expect_contains "$(k get svc web-other --no-headers)" "<pending>" "another class's EXTERNAL-IP"
k delete svc web-other >/dev/null

echo "--- deleting the first frees the port"
k delete svc web-lb >/dev/null
k expose deployment web --name=web-lb2 --type=LoadBalancer --port=8081 --target-port=8080 >/dev/null
wait_jp 60 svc/web-lb2 '{.status.loadBalancer.ingress[0].ip}' "$NODE_IP"
wait_for 30 "the second load balancer on $NODE_IP:8081" served_by_a_pod "http://$NODE_IP:8081/"

echo "--- turned into a ClusterIP Service: the status is cleared and the port closed"
k patch svc web-lb2 -p '{"spec":{"type":"ClusterIP"}}' >/dev/null
wait_jp 30 svc/web-lb2 '{.status.loadBalancer.ingress[0].ip}' ""
wait_for 30 "port 8081 to refuse connections" refused "http://127.0.0.1:8081/"
k delete svc web-lb2 >/dev/null

echo "--- the server stops; --cleanup removes every ORCH chain and jump"
k delete deployment web >/dev/null
agent_finish
expect_contains "$(in_ns iptables-save)" "ORCH-SERVICES" "rules kept after the agent stops"
run_capture in_ns "$ORCH" agent --cleanup
expect_eq "$RC" 0 "orch agent --cleanup exit code: $ERR"
left=$(in_ns iptables-save | grep ORCH || true)
[[ -z "$left" ]] || fail "ORCH rules left after --cleanup: $left"
run_capture in_ns "$ORCH" agent --cleanup
expect_eq "$RC" 0 "a second --cleanup (nothing to do) exit code: $ERR"
