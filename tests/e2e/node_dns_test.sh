#!/usr/bin/env bash
# e2e_node_dns: the node's cluster DNS and `orch server --disable dns`. Disabled, nothing listens
# on the node's DNS port, there is no kube-dns Service and the cluster DNS address gets no answer.
# Started again without the flag, the listener, the Service and the redirect are there, and a name
# whose answer the node's upstream truncates over UDP (tests/e2e/dns_truncating_upstream.py as
# the node's only nameserver) comes back whole: the forwarder asked again over TCP. Disabled
# again after that, the kube-dns Service orch made is removed.
#
#   tests/e2e/node_dns_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" ndns 10.219.0.0/16

# dns_sockets: the UDP and TCP sockets listening on port 53 in the node's namespace.
dns_sockets() { in_ns ss -Hlnut 'sport = :53'; }
dns_listening() { [[ -n "$(dns_sockets)" ]]; }
# ask SERVER NAME udp|tcp [EDNS_BUFFER]: "rcode=R tc=T a=N" of one query from the node.
ask() {
  in_ns timeout 15 python3 "$here/dns_truncating_upstream.py" query "$1" 53 "$2" "$3" "${4:-0}" 2>&1 || true
}
answers() { [[ "$(ask "$1" "$2" udp)" == "rcode=0 tc=0 a=$3" ]]; }
proxy_synced() { [[ "$(in_ns iptables-save -t nat)" == *"orch service portals"* ]]; }
kube_dns() { k get svc kube-dns -n kube-system -o 'jsonpath={.spec.clusterIP}' 2>&1 || true; }
kube_dns_is() { [[ "$(kube_dns)" == "$1" ]]; }

echo "--- orch server --disable dns: no listener, no kube-dns Service, no answer"
agent_start_server server --disable dns
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
# The node's network is set up (the DNS listener would have started before the proxy's rules).
wait_for 60 "the service proxy's rules" proxy_synced
expect_eq "$(dns_sockets)" "" "sockets on port 53 with --disable dns"
expect_contains "$(kube_dns)" "NotFound" "the kube-dns Service with --disable dns"
expect_not_contains "$(in_ns iptables-save -t nat)" "-A ORCH-DNS" "DNS redirect with --disable dns"
expect_not_contains "$(ask 10.43.0.10 kubernetes.default.svc.cluster.local udp)" "rcode=" \
  "an answer at the cluster DNS address with --disable dns"
stop_bg "$AGENT_SERVER" TERM 30
expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
AGENT_SERVER=""

echo "--- without the flag, the node's only upstream truncating every answer over UDP"
upstream_ip=172.31.255.3
ip -n "$AGENT_NS" addr add "$upstream_ip/24" dev eth0
start_bg upstream nsenter --net="/run/netns/$AGENT_NS" \
  python3 "$here/dns_truncating_upstream.py" serve "$upstream_ip" 53 "$E2E_TMP/upstream.queries"
upstream=$BG_PID
echo "nameserver $upstream_ip" >"$E2E_TMP/resolv.conf"
# The node reads its upstreams from /etc/resolv.conf: the server gets a mount namespace of its
# own in which that file is the one above (slave: nothing mounted in it reaches the host).
# shellcheck disable=SC2016
AGENT_SERVER_WRAPPER=(unshare --mount --propagation slave
  sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$E2E_TMP/resolv.conf")
agent_start_server server2
AGENT_SERVER_WRAPPER=()
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
wait_for 60 "the node's DNS listener" dns_listening
expect_contains "$(dns_sockets)" "$NODE_IP:53" "DNS listener on the node IP"
wait_for 30 "the kube-dns Service" kube_dns_is 10.43.0.10
wait_for 30 "a cluster name at the node IP" answers "$NODE_IP" kubernetes.default.svc.cluster.local 1
wait_for 30 "a cluster name at the cluster DNS address" answers 10.43.0.10 kubernetes.default.svc.cluster.local 1

echo "--- a truncated UDP answer is fetched again over TCP, whole"
expect_eq "$(ask "$NODE_IP" big.example.org udp 4096)" "rcode=0 tc=0 a=40" "UDP query with a 4096-byte buffer"
expect_eq "$(grep -c '^udp big.example.org$' "$E2E_TMP/upstream.queries")" 1 "UDP queries upstream"
expect_eq "$(grep -c '^tcp big.example.org$' "$E2E_TMP/upstream.queries")" 1 "TCP queries upstream"
# From the cache: whole over TCP, truncated for a 512-byte UDP client (which then asks over TCP).
expect_eq "$(ask "$NODE_IP" big.example.org tcp)" "rcode=0 tc=0 a=40" "TCP query"
expect_contains "$(ask "$NODE_IP" big.example.org udp)" "tc=1" "UDP query without EDNS"
expect_eq "$(grep -c 'big.example.org' "$E2E_TMP/upstream.queries")" 2 "queries upstream in all"

stop_bg "$upstream" TERM 10

echo "--- restarted with --disable dns again: the kube-dns Service orch made is removed"
stop_bg "$AGENT_SERVER" TERM 30
expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
agent_start_server server3 --disable dns
kube_dns_gone() { [[ "$(kube_dns)" == *NotFound* ]]; }
wait_for 30 "the kube-dns Service to be removed" kube_dns_gone
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
wait_for 60 "the service proxy's rules" proxy_synced
expect_eq "$(dns_sockets)" "" "sockets on port 53 after restarting with --disable dns"
expect_not_contains "$(in_ns iptables-save -t nat)" "-A ORCH-DNS" "DNS redirect after restarting with --disable dns"
agent_finish
