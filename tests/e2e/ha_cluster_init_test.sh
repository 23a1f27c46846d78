#!/usr/bin/env bash
# e2e_ha_cluster_init: `orch server --cluster-init` runs an embedded etcd member (TLS, data under
# DATA-DIR/server/db/etcd); a second server started with --server URL --token T joins it as a
# second member (fetching the CAs from the first server), and both serve one cluster state.
# Loopback only, free ports. Usage: ha_cluster_init_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$1"

KUBECTL=${KUBECTL:-kubectl}
[[ -x /usr/bin/etcd ]] || { echo "SKIP: /usr/bin/etcd is not installed (Debian etcd-server)"; exit 0; }

declare -A PORT CLIENT PEER PID
for s in a b; do
  PORT[$s]=$(free_port)
  CLIENT[$s]=$(free_port)
  PEER[$s]=$(free_port)
done
k() {
  local s=$1
  shift
  "$KUBECTL" --kubeconfig "$E2E_TMP/$s.yaml" --cache-dir "$E2E_TMP/kube-cache-$s" "$@"
}
start_server() {
  local s=$1
  shift
  start_bg "server-$s" "$ORCH" server --disable-agent --node-name "$s" --node-ip 127.0.0.1 \
    --data-dir "$E2E_TMP/$s" --https-listen-port "${PORT[$s]}" \
    --etcd-client-port "${CLIENT[$s]}" --etcd-peer-port "${PEER[$s]}" \
    --write-kubeconfig "$E2E_TMP/$s.yaml" "$@"
  PID[$s]=$BG_PID
}

start_server a --cluster-init
wait_for 60 "the cluster-init server" k a get --raw /readyz
TOKEN=$(cat "$E2E_TMP/a/server/token")
[[ -d "$E2E_TMP/a/server/db/etcd/member" ]] || fail "no etcd data under DATA-DIR/server/db/etcd"
k a create configmap before-join --from-literal=k=1 >/dev/null

# A wrong token is refused by the first server; the joining server exits non-zero.
run_capture timeout 60 "$ORCH" server --disable-agent --node-name bad --node-ip 127.0.0.1 \
  --data-dir "$E2E_TMP/bad" --https-listen-port "$(free_port)" --etcd-client-port "$(free_port)" \
  --etcd-peer-port "$(free_port)" --write-kubeconfig "$E2E_TMP/bad.yaml" \
  --server "https://127.0.0.1:${PORT[a]}" --token "wrong-secret"
((RC != 0 && RC != 124)) || fail "a server with a wrong token should exit non-zero (rc $RC)"
expect_contains "$ERR$OUT" "refused the token" "the wrong token's error"

start_server b --server "https://127.0.0.1:${PORT[a]}" --token "$TOKEN"
wait_for 90 "the joining server" k b get --raw /readyz
expect_eq "$(cat "$E2E_TMP/b/server/token")" "$TOKEN" "the joined server's token"

# Two etcd members, over TLS with the cluster's etcd CA.
ETCD_TLS=(--cacert "$E2E_TMP/a/server/tls/etcd/server-ca.crt"
  --cert "$E2E_TMP/a/server/tls/etcd/client.crt" --key "$E2E_TMP/a/server/tls/etcd/client.key")
members() {
  ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:${CLIENT[a]}" "${ETCD_TLS[@]}" \
    member list | wc -l
}
members_are() { [[ "$(members)" == "$1" ]]; }
wait_for 30 "two etcd members" members_are 2

# One state: written through either server, read through the other.
expect_eq "$(k b get configmap before-join -o jsonpath='{.data.k}')" "1" "a write made before the join"
k b create configmap after-join --from-literal=k=2 >/dev/null
expect_eq "$(k a get configmap after-join -o jsonpath='{.data.k}')" "2" "a write through b, read via a"
ports() {
  k "$1" get endpoints kubernetes -o jsonpath='{range .subsets[*]}{.ports[0].port}{"\n"}{end}' |
    sort -n | paste -sd, -
}
both=$(printf '%s\n' "${PORT[a]}" "${PORT[b]}" | sort -n | paste -sd, -)
ports_are() { [[ "$(ports "$1")" == "$2" ]]; }
wait_for 30 "default/kubernetes to list both servers" ports_are a "$both"

# A restarted member rejoins from its data dir (no --server needed the second time round).
stop_bg "${PID[b]}" TERM 30
start_server b --server "https://127.0.0.1:${PORT[a]}" --token "$TOKEN"
wait_for 90 "the restarted server" k b get --raw /readyz
expect_eq "$(k b get configmap after-join -o jsonpath='{.data.k}')" "2" "data after the restart"
