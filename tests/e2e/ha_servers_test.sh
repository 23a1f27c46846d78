#!/usr/bin/env bash
# e2e_ha_servers: three `orch server`s on a three-member etcd cluster (loopback, free ports),
# driven with the real kubectl through kubeconfigs naming different servers. Proves: the later
# servers take the CA and keys from the datastore (wrong token refused), every server serves the
# same state, the controllers move when the leader is SIGKILLed (exactly the asked-for pods),
# writes survive an etcd member's crash and restart, a watch on one server sees every write made
# through another without gaps, and default/kubernetes follows the live servers.
# Usage: ha_servers_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$1"

KUBECTL=${KUBECTL:-kubectl}
ETCD=${ETCD:-/usr/bin/etcd}
[[ -x "$ETCD" ]] || { echo "SKIP: $ETCD is not installed (Debian etcd-server)"; exit 0; }

# --- three etcd members ------------------------------------------------------------------------
declare -A CLIENT PEER ETCD_PID
CLUSTER=""
for m in e1 e2 e3; do
  CLIENT[$m]=$(free_port)
  PEER[$m]=$(free_port)
  CLUSTER+="${CLUSTER:+,}$m=http://127.0.0.1:${PEER[$m]}"
done
ENDPOINTS="http://127.0.0.1:${CLIENT[e1]},http://127.0.0.1:${CLIENT[e2]},http://127.0.0.1:${CLIENT[e3]}"

# start_etcd MEMBER STATE
start_etcd() {
  local m=$1 state=$2
  start_bg "etcd-$m" "$ETCD" --name "$m" --data-dir "$E2E_TMP/$m" \
    --listen-client-urls "http://127.0.0.1:${CLIENT[$m]}" \
    --advertise-client-urls "http://127.0.0.1:${CLIENT[$m]}" \
    --listen-peer-urls "http://127.0.0.1:${PEER[$m]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${PEER[$m]}" \
    --initial-cluster "$CLUSTER" --initial-cluster-token "orch-e2e-$$" \
    --initial-cluster-state "$state" --logger zap --log-outputs stderr
  ETCD_PID[$m]=$BG_PID
}
for m in e1 e2 e3; do start_etcd "$m" new; done
etcd_healthy() { curl -sf "http://127.0.0.1:${CLIENT[$1]}/health" | grep -q '"health":"true"'; }
for m in e1 e2 e3; do wait_for 30 "etcd member $m" etcd_healthy "$m"; done

# --- three servers -----------------------------------------------------------------------------
declare -A PORT SERVER_PID
# start_server NAME EXTRA_ARGS...
start_server() {
  local s=$1
  shift
  PORT[$s]=${PORT[$s]:-$(free_port)}
  start_bg "server-$s" "$ORCH" server --disable-agent --node-name "$s" \
    --data-dir "$E2E_TMP/$s" --https-listen-port "${PORT[$s]}" --advertise-address 127.0.0.1 \
    --write-kubeconfig "$E2E_TMP/$s.yaml" --datastore-endpoint "$ENDPOINTS" "$@"
  SERVER_PID[$s]=$BG_PID
}
k() {
  local s=$1
  shift
  "$KUBECTL" --kubeconfig "$E2E_TMP/$s.yaml" --cache-dir "$E2E_TMP/kube-cache-$s" "$@"
}
ready() { k "$1" get --raw /readyz; }

start_server s1
wait_for 60 "the first server" ready s1
TOKEN=$(cat "$E2E_TMP/s1/server/token")
expect_contains "$TOKEN" "::server:" "the first server's token"

# A wrong token is refused with one line and a non-zero exit.
run_capture timeout 60 "$ORCH" server --disable-agent --node-name bad --data-dir "$E2E_TMP/bad" \
  --https-listen-port "$(free_port)" --write-kubeconfig "$E2E_TMP/bad.yaml" \
  --datastore-endpoint "$ENDPOINTS" --token "wrong-secret"
((RC != 0 && RC != 124)) || fail "a server with a wrong token should exit non-zero (rc $RC)"
expect_contains "$ERR$OUT" "wrong token" "the wrong token's error"
[[ ! -e "$E2E_TMP/bad/server/tls/server-ca.key" ]] || fail "a refused server must not make a CA"

start_server s2 --token "$TOKEN" --server "https://127.0.0.1:${PORT[s1]}"
start_server s3 --token "$TOKEN"
wait_for 60 "server s2" ready s2
wait_for 60 "server s3" ready s3

# One cluster: the same CA and token everywhere, each server with its own serving certificate.
for s in s2 s3; do
  expect_eq "$(cat "$E2E_TMP/$s/server/token")" "$TOKEN" "the token of $s"
  cmp -s "$E2E_TMP/s1/server/tls/server-ca.crt" "$E2E_TMP/$s/server/tls/server-ca.crt" ||
    fail "$s has another CA than s1"
  cmp -s "$E2E_TMP/s1/server/cred/encryption-key" "$E2E_TMP/$s/server/cred/encryption-key" ||
    fail "$s has another Secrets encryption key than s1"
  ! cmp -s "$E2E_TMP/s1/server/tls/serving-kube-apiserver.crt" \
    "$E2E_TMP/$s/server/tls/serving-kube-apiserver.crt" || fail "$s reuses s1's serving cert"
done
# A Secret written through one server reads back through another (same encryption key).
k s1 create secret generic shared --from-literal=k=v >/dev/null
expect_eq "$(k s3 get secret shared -o jsonpath='{.data.k}' | base64 -d)" "v" "a Secret via s3"

# default/kubernetes lists every live server.
endpoint_ports() {
  k "$1" get endpoints kubernetes -o jsonpath='{range .subsets[*]}{.ports[0].port}{"\n"}{end}' |
    sort -n | paste -sd, -
}
EXPECTED_PORTS=$(printf '%s\n' "${PORT[s1]}" "${PORT[s2]}" "${PORT[s3]}" | sort -n | paste -sd, -)
endpoints_are() { [[ "$(endpoint_ports "$1")" == "$2" ]]; }
wait_for 30 "default/kubernetes to list the three servers" endpoints_are s2 "$EXPECTED_PORTS"

# --- who leads --------------------------------------------------------------------------------
holder() { k "$1" -n kube-system get lease orch-control-plane -o jsonpath='{.spec.holderIdentity}'; }
has_holder() { [[ -n "$(holder "$1")" ]]; }
wait_for 30 "a leader" has_holder s2
LEADER=$(holder s2)
LEADER=${LEADER%%_*}
OTHERS=()
for s in s1 s2 s3; do [[ "$s" == "$LEADER" ]] || OTHERS+=("$s"); done
W=${OTHERS[0]}  # watches
X=${OTHERS[1]}  # writes
echo "leader $LEADER, watching through $W, writing through $X"

# A watch on W of a ConfigMap written through X: every value must arrive, in order.
k "$X" create configmap seq --from-literal=v=0 >/dev/null
start_bg watch "$KUBECTL" --kubeconfig "$E2E_TMP/$W.yaml" --cache-dir "$E2E_TMP/kube-cache-w" \
  get configmap seq -w -o 'jsonpath={.data.v}{"\n"}'
WATCH_PID=$BG_PID
SEQ=0
watch_has() { grep -qx "$1" "$E2E_TMP/watch.log"; }
wait_for 30 "the watch to start" watch_has 0
# bump N: N more acknowledged updates of seq through X.
bump() {
  local i
  for ((i = 0; i < $1; i++)); do
    SEQ=$((SEQ + 1))
    k "$X" patch configmap seq --type merge -p "{\"data\":{\"v\":\"$SEQ\"}}" >/dev/null ||
      fail "update $SEQ through $X"
  done
}
bump 5

# --- the controllers follow the Lease -----------------------------------------------------------
k "$X" create deployment web --image=busybox --replicas=3 -- sleep 3600 >/dev/null
pod_count() { k "$W" get pods -l app=web --no-headers 2>/dev/null | wc -l; }
pods_are() { [[ "$(pod_count)" == "$1" ]]; }
wait_for 60 "3 pods of the Deployment" pods_are 3

KILLED_AT=$SECONDS
kill -KILL "${SERVER_PID[$LEADER]}"
k "$X" scale deployment web --replicas=5 >/dev/null
wait_for 60 "the new leader's controllers to make 5 pods" pods_are 5
echo "controllers acted $((SECONDS - KILLED_AT)) s after the leader was killed"
NEW_LEADER=$(holder "$X")
NEW_LEADER=${NEW_LEADER%%_*}
[[ "$NEW_LEADER" != "$LEADER" && -n "$NEW_LEADER" ]] || fail "the Lease is still held by $LEADER"
# No controller runs twice: the count stays exact while the new leader settles.
sleep 3
expect_eq "$(pod_count)" "5" "pods after the failover (no duplicates)"
expect_eq "$(k "$W" get rs -l app=web -o jsonpath='{.items[*].status.replicas}')" "5" \
  "the ReplicaSet's status"
bump 5

# --- an etcd member crashes and comes back; nothing acknowledged is lost ---------------------------
kill -KILL "${ETCD_PID[e1]}"
ACKED=()
for i in $(seq 1 10); do
  if k "$X" create configmap "ack-$i" --from-literal=i="$i" >/dev/null 2>&1; then ACKED+=("ack-$i"); fi
done
bump 5
start_etcd e1 existing
wait_for 30 "etcd member e1 to come back" etcd_healthy e1
for i in $(seq 11 20); do
  if k "$X" create configmap "ack-$i" --from-literal=i="$i" >/dev/null 2>&1; then ACKED+=("ack-$i"); fi
done
bump 5
((${#ACKED[@]} >= 10)) || fail "only ${#ACKED[@]} of 20 writes were acknowledged"
for name in "${ACKED[@]}"; do
  k "$W" get configmap "$name" >/dev/null || fail "acknowledged write $name is lost (read via $W)"
done
k "$W" scale deployment web --replicas=2 >/dev/null
wait_for 60 "the Deployment scaled down to 2" pods_are 2

# The watch on W saw every value 0..SEQ, in order, with no gap.
watch_complete() { [[ "$(tail -n 1 "$E2E_TMP/watch.log")" == "$SEQ" ]]; }
wait_for 30 "the watch on $W to see value $SEQ" watch_complete
expect_eq "$(paste -sd, - <"$E2E_TMP/watch.log")" "$(seq -s, 0 "$SEQ")" \
  "values seen by the watch on $W"
kill "$WATCH_PID" 2>/dev/null || true

# The killed server leaves default/kubernetes once its lease expires.
SURVIVORS=$(for s in "${OTHERS[@]}"; do echo "${PORT[$s]}"; done | sort -n | paste -sd, -)
wait_for 40 "default/kubernetes to drop the killed server" endpoints_are "$W" "$SURVIVORS"
