#!/usr/bin/env bash
# e2e_datastore_migrate: objects made on a SQLite server move to etcd with `orch datastore
# migrate` (uids, ownerReferences, finalizers, encrypted Secrets kept; a non-empty target refused),
# the server runs on etcd and its controllers keep working; then etcd stops answering (SIGSTOP)
# for about 30 s: every request gets a 503 naming the datastore within its bound, /readyz says not
# ready, the server stays up, and when etcd returns everything recovers by itself (an open watch
# included).
#
#   tests/e2e/datastore_migrate_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
[[ -x /usr/bin/etcd ]] || { echo "SKIP: /usr/bin/etcd is not installed"; exit 77; }
e2e_init "${1:?usage: $0 BUILD_DIR}"

export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
export KUBECACHEDIR="$E2E_TMP/kube-cache"
data="$E2E_TMP/data"
port=$(free_port)
k() { kubectl --request-timeout=20s "$@"; }

start_server() {
  start_bg "$1" "$ORCH" server --disable-agent --disable-scheduler --data-dir "$data" \
    --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG" --node-name e2e-migrate "${@:2}"
  SERVER=$BG_PID
  wait_for 60 "the API server to be ready ($1)" kubectl get --raw /readyz
}

pod_count() { [[ "$(k -n mig get pods -l app=web -o name | wc -l)" == "$1" ]]; }
uids() {
  local fmt='jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.uid}{"\n"}{end}'
  { k -n mig get configmap/cm secret/s deployment/web -o "$fmt"; k -n mig get replicasets -o "$fmt"; } | sort
}
# create_after_outage: creates the ConfigMap, or finds it made by an earlier attempt whose answer
# was lost.
create_after_outage() {
  k -n mig create configmap after-outage >/dev/null 2>&1 || k -n mig get configmap after-outage
}

echo "--- objects on SQLite"
start_server server-sqlite
k create namespace mig >/dev/null
k -n mig create configmap cm --from-literal=k=v >/dev/null
k -n mig patch configmap cm --type=merge -p '{"metadata":{"finalizers":["e2e.orch/keep"]}}' >/dev/null
k -n mig create secret generic s --from-literal=password=hunter2 >/dev/null
k -n mig create deployment web --image=orch.test/busybox:1 --replicas=2 >/dev/null
wait_for 60 "two pods of the deployment" pod_count 2
before_uids=$(uids)
before_owner=$(k -n mig get pods -l app=web -o 'jsonpath={.items[0].metadata.ownerReferences[0].uid}')
rs_uid=$(k -n mig get replicaset -o 'jsonpath={.items[0].metadata.uid}')
expect_eq "$before_owner" "$rs_uid" "pod owner before the migration"
stop_bg "$SERVER" TERM 30

echo "--- etcd, and the migration"
cport=$(free_port)
pport=$(free_port)
etcd_url="http://127.0.0.1:$cport"
start_bg etcd /usr/bin/etcd --name e2e --data-dir "$E2E_TMP/etcd" \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "e2e=http://127.0.0.1:$pport"
ETCD=$BG_PID
wait_for 30 "etcd to answer" etcdctl --endpoints "$etcd_url" endpoint health

run_capture "$ORCH" datastore migrate --from "sqlite://$data/server/db/state.db" --to "$etcd_url"
expect_eq "$RC" 0 "migrate exit code ($ERR)"
expect_contains "$OUT" "migrated " "migrate report"
expect_contains "$OUT" "core/secrets" "migrate report by resource"
# What etcd holds for the Secret is the ciphertext the SQLite store held, not the password.
raw=$(etcdctl --endpoints "$etcd_url" get /registry/core/secrets/mig/s --print-value-only | tr -d '\0')
expect_contains "$raw" "k8s:enc:" "the Secret is stored encrypted in etcd"
expect_not_contains "$raw" "hunter2" "the Secret in etcd"
expect_not_contains "$raw" "aHVudGVyMg" "the Secret in etcd"

run_capture "$ORCH" datastore migrate --from "sqlite://$data/server/db/state.db" --to "$etcd_url"
((RC != 0)) || fail "a second migration into the now non-empty etcd succeeded"
expect_contains "$ERR" "already holds" "non-empty target refused"
run_capture "$ORCH" datastore migrate --from "sqlite://$E2E_TMP/none.db" --to "$etcd_url"
((RC != 0)) || fail "a migration from a missing database succeeded"
expect_contains "$ERR" "there is no datastore at" "missing source"

echo "--- the server on etcd sees the same objects and its controllers work"
start_server server-etcd --datastore-endpoint "$etcd_url"
expect_eq "$(uids)" "$before_uids" "uids after the migration"
expect_eq "$(k -n mig get pods -l app=web -o 'jsonpath={.items[0].metadata.ownerReferences[0].uid}')" \
  "$rs_uid" "pod owner after the migration"
expect_eq "$(k -n mig get configmap cm -o 'jsonpath={.metadata.finalizers[0]}')" e2e.orch/keep "finalizer"
expect_eq "$(k -n mig get secret s -o 'jsonpath={.data.password}' | base64 -d)" hunter2 "secret"
k -n mig scale deployment web --replicas=3 >/dev/null
wait_for 60 "the ReplicaSet controller to make a third pod" pod_count 3

echo "--- etcd stops answering"
kubectl -n mig get configmaps --watch-only -o name >"$E2E_TMP/watch.out" 2>"$E2E_TMP/watch.err" &
watcher=$!
E2E_PIDS+=("$watcher")
sleep 1
kill -STOP "$ETCD"
stopped_at=$SECONDS
# Each request gets a 503 (kubectl's request timeout is 20 s: a hang would show as a timeout).
for what in "get configmap cm" "create configmap during-outage" "get pods"; do
  run_capture kubectl --request-timeout=20s -n mig $what
  ((RC != 0)) || fail "'kubectl $what' succeeded while etcd was stopped"
  # kubectl create prints only the Status's message; get shows the reason too.
  [[ "$what" == create* ]] || expect_contains "$ERR" "(ServiceUnavailable)" "kubectl $what during the outage"
  expect_contains "$ERR" "the datastore is unavailable" "kubectl $what during the outage"
done
run_capture kubectl --request-timeout=20s get --raw /api/v1/namespaces/mig/configmaps/cm -v=6
((RC != 0)) || fail "a raw GET succeeded while etcd was stopped"
expect_contains "$ERR" " 503 Service Unavailable" "HTTP code during the outage"
run_capture kubectl --request-timeout=20s get --raw /readyz
((RC != 0)) || fail "/readyz answered ok while etcd was stopped"
expect_contains "$ERR$OUT" "etcd failed" "/readyz during the outage"
while ((SECONDS - stopped_at < 30)); do
  kill -0 "$SERVER" 2>/dev/null || fail "the server exited during the outage"
  sleep 1
done
kill -0 "$SERVER" 2>/dev/null || fail "the server exited during the outage"

echo "--- etcd answers again: everything recovers by itself"
kill -CONT "$ETCD"
wait_for 60 "/readyz after the outage" kubectl get --raw /readyz
wait_for 30 "a write after the outage" create_after_outage
wait_for 30 "the open watch to see the write" log_has "$E2E_TMP/watch.out" "configmap/after-outage"
k -n mig scale deployment web --replicas=1 >/dev/null
wait_for 60 "the ReplicaSet controller to scale down after the outage" pod_count 1
kill "$watcher" 2>/dev/null || true

k -n mig patch configmap cm --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
stop_bg "$SERVER" TERM 30
expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
stop_bg "$ETCD" TERM 30
