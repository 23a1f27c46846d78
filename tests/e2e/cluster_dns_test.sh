#!/usr/bin/env bash
# e2e_cluster_dns: orch server's embedded agent serves cluster DNS: the kube-dns Service exists
# at the cluster DNS address, pods get a ClusterFirst resolv.conf, and from inside a busybox pod
# a Service resolves by full name and through the search path to its ClusterIP, a headless
# Service to its pods and their hostnames, an unknown cluster name is NXDOMAIN at once, and
# wget reaches the Service by name (DNS + service proxy). TCP queries and SRV from the node.
#
#   tests/e2e/cluster_dns_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" dns 10.213.0.0/16
agent_start_server server

wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

echo "--- the kube-dns Service holds the cluster DNS address"
kube_dns_ip() { [[ "$(jp svc/kube-dns '{.spec.clusterIP}' kube-system)" == 10.43.0.10 ]]; }
wait_for 30 "the kube-dns Service" kube_dns_ip
expect_eq "$(jp svc/kube-dns '{.spec.ports[*].protocol}' kube-system)" "UDP TCP" "kube-dns ports"

echo "--- web (ClusterIP, httpd pods), db (headless StatefulSet-style pods with hostnames), a client"
{
  web_app web 1 'echo hello-from-web > /www/index.html'
  web_service web http 80
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {name: pg, port: 5432}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: orch.test/busybox:1, command: [sleep, '3600']}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: orch.test/busybox:1, command: [sleep, '3600']}
YAML
} >"$E2E_TMP/dns.yaml"
k apply -f "$E2E_TMP/dns.yaml" >/dev/null
cip=$(jp svc/web '{.spec.clusterIP}')
[[ -n "$cip" ]] || fail "no ClusterIP"
pod_ready() { [[ "$(jp "pod/$1" '{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
for p in client db-0; do wait_for 120 "pod $p ready" pod_ready "$p"; done
web_ready() { [[ -n "$(jp endpoints/web '{.subsets[0].addresses[0].ip}')" ]]; }
wait_for 120 "web endpoints" web_ready
db_ip=$(jp pod/db-0 '{.status.podIP}')

in_pod() { k exec client -- timeout 10 "$@" 2>&1; }

echo "--- the client's resolv.conf is ClusterFirst"
conf=$(in_pod cat /etc/resolv.conf)
expect_contains "$conf" "nameserver 10.43.0.10" "resolv.conf nameserver"
expect_contains "$conf" "search default.svc.cluster.local svc.cluster.local cluster.local" "search"
expect_contains "$conf" "ndots:5" "ndots"

echo "--- names resolve from the pod"
# Debian's busybox nslookup tries every search domain and exits 1 when any is NXDOMAIN, even
# after printing the answer: the output is what counts.
resolves_to() { local out; out=$(in_pod nslookup "$1" || true); [[ "$out" == *"Address: $2"* ]]; }
wait_for 30 "web.default.svc.cluster.local -> $cip" resolves_to web.default.svc.cluster.local "$cip"
out=$(in_pod nslookup web || true)
expect_contains "$out" "Address: $cip" "nslookup web through the search path"
out=$(in_pod nslookup db.default.svc.cluster.local || true)
expect_contains "$out" "Address: $db_ip" "headless Service answers the pod IP"
out=$(in_pod nslookup db-0.db.default.svc.cluster.local || true)
expect_contains "$out" "Address: $db_ip" "hostname.subdomain answers the pod IP"

echo "--- an unknown cluster name is NXDOMAIN"
start=$(date +%s)
run_capture k exec client -- timeout 10 nslookup nope.default.svc.cluster.local
expect_contains "$OUT$ERR" "NXDOMAIN" "unknown name"
(( $(date +%s) - start < 10 )) || fail "the NXDOMAIN took the whole timeout"

echo "--- wget by name goes through DNS and the service proxy"
served() { local out; out=$(in_pod wget -q -O - http://web/) || return 1; [[ "$out" == hello-from-web ]]; }
wait_for 30 "http://web/ from the client" served

echo "--- from the node: the listener on the node IP answers UDP and TCP; SRV and PTR"
# dig is not everywhere; busybox nslookup (UDP) against the node IP and the ClusterIP.
out=$(in_ns timeout 10 busybox nslookup web.default.svc.cluster.local "$NODE_IP" 2>&1 || true)
expect_contains "$out" "$cip" "query to the node IP"
out=$(in_ns timeout 10 busybox nslookup web.default.svc.cluster.local 10.43.0.10 2>&1 || true)
expect_contains "$out" "$cip" "query to the cluster DNS address from the node"
out=$(in_ns timeout 10 busybox nslookup -type=srv _http._tcp.web.default.svc.cluster.local "$NODE_IP" 2>&1 || true)
expect_contains "$out" "80 web.default.svc.cluster.local" "SRV record"
rev=$(awk -F. '{print $4"."$3"."$2"."$1}' <<<"$cip")
out=$(in_ns timeout 10 busybox nslookup -type=ptr "$rev.in-addr.arpa" "$NODE_IP" 2>&1 || true)
expect_contains "$out" "web.default.svc.cluster.local" "PTR record"
if command -v dig >/dev/null; then
  out=$(in_ns timeout 10 dig +tcp +short "@$NODE_IP" web.default.svc.cluster.local)
  expect_eq "$out" "$cip" "query over TCP"
fi

echo "--- the egress and DNS chains are in place"
rules=$(in_ns iptables-save -t nat)
expect_contains "$rules" "-A ORCH-DNS -d 10.43.0.10/32 -p udp" "DNS redirect"
expect_contains "$rules" "pod traffic leaving the cluster" "egress masquerade"

k delete pod client db-0 --wait=false >/dev/null
k delete deployment web >/dev/null
agent_finish
