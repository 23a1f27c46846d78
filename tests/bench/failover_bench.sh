#!/usr/bin/env bash
# Failover time of the control plane: two `orch server`s on one etcd (loopback, free ports); the
# leader is SIGKILLed, a Deployment is scaled through the survivor at once, and the time until the
# survivor's controllers have made the new pods is measured. Repeated ROUNDS times (a new pair of
# servers each round). Usage: failover_bench.sh BUILD_DIR [ROUNDS]
source "$(dirname "$0")/../e2e/lib.sh"
e2e_init "$1"
ROUNDS=${2:-5}
KUBECTL=${KUBECTL:-kubectl}
ETCD=${ETCD:-/usr/bin/etcd}

CLIENT=$(free_port)
PEER=$(free_port)
start_bg etcd "$ETCD" --name e1 --data-dir "$E2E_TMP/etcd" \
  --listen-client-urls "http://127.0.0.1:$CLIENT" --advertise-client-urls "http://127.0.0.1:$CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
  --initial-cluster "e1=http://127.0.0.1:$PEER" --logger zap --log-outputs stderr
wait_for 30 "etcd" curl -sf "http://127.0.0.1:$CLIENT/health"

k() {
  local s=$1
  shift
  "$KUBECTL" --kubeconfig "$E2E_TMP/$s.yaml" --cache-dir "$E2E_TMP/kube-cache-$s" "$@"
}
declare -A PID
TOKEN=""
start_server() {
  local s=$1
  start_bg "server-$s" "$ORCH" server --disable-agent --node-name "$s" --data-dir "$E2E_TMP/$s" \
    --https-listen-port "$(free_port)" --advertise-address 127.0.0.1 \
    --write-kubeconfig "$E2E_TMP/$s.yaml" --datastore-endpoint "http://127.0.0.1:$CLIENT" \
    ${TOKEN:+--token "$TOKEN"}
  PID[$s]=$BG_PID
  wait_for 60 "server $s" k "$s" get --raw /readyz
  [[ -n "$TOKEN" ]] || TOKEN=$(cat "$E2E_TMP/$s/server/token")
}
holder() { k "$1" -n kube-system get lease orch-control-plane -o jsonpath='{.spec.holderIdentity}'; }
pods_are() { [[ "$(k "$1" get pods -l app=web --no-headers 2>/dev/null | wc -l)" == "$2" ]]; }

RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  a="a$round" b="b$round"
  start_server "$a"
  start_server "$b"
  # Wait until one of the two leads (the previous round's servers are gone: their Lease expires).
  until [[ "$(holder "$a")" == "$a"_* || "$(holder "$a")" == "$b"_* ]]; do sleep 0.2; done
  leader=$(holder "$a")
  leader=${leader%%_*}
  survivor=$([[ "$leader" == "$a" ]] && echo "$b" || echo "$a")
  k "$survivor" delete deployment web --ignore-not-found >/dev/null
  wait_for 60 "old pods to go" pods_are "$survivor" 0
  k "$survivor" create deployment web --image=busybox --replicas=1 -- sleep 3600 >/dev/null
  wait_for 60 "the first pod" pods_are "$survivor" 1
  start=$(date +%s.%N)
  kill -KILL "${PID[$leader]}"
  k "$survivor" scale deployment web --replicas=3 >/dev/null
  wait_for 60 "the survivor's controllers" pods_are "$survivor" 3
  end=$(date +%s.%N)
  took=$(echo "$end - $start" | bc)
  RESULTS+=("$took")
  echo "round $round: leader $leader killed, controllers acted on $survivor after ${took} s"
  kill -TERM "${PID[$survivor]}"
  wait "${PID[$survivor]}" 2>/dev/null || true
done
printf '%s\n' "${RESULTS[@]}" | sort -n |
  awk '{v[NR]=$1; s+=$1} END {printf "failover: min %.1f s, median %.1f s, max %.1f s, mean %.1f s over %d rounds\n", v[1], v[int((NR+1)/2)], v[NR], s/NR, NR}'
