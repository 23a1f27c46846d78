#!/usr/bin/env bash
# e2e_agent_failover: two `orch server`s on one etcd and a real node (`orch agent`, its own
# containerd) joined to the first. The agent's local load balancer learns the second server from
# the `kubernetes` Endpoints and stores it; when the first server is killed the node stays Ready
# through the second, a new pod is scheduled to it and starts, logs work over the node link, and
# a restarted agent (whose --join server is dead) comes back from the stored server list.
#
#   tests/e2e/agent_failover_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"
[[ -x /usr/bin/etcd ]] || { echo "SKIP: /usr/bin/etcd is not installed"; exit 77; }

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" lbfail 10.214.0.0/16
S1=172.31.255.3
S2=172.31.255.4
ip -n "$AGENT_NS" addr add "$S1/24" dev eth0
ip -n "$AGENT_NS" addr add "$S2/24" dev eth0
export KUBECACHEDIR="$E2E_TMP/kube-cache"

# etcd on the namespace's own loopback: nothing else on the host can meet it.
start_bg etcd nsenter --net="/run/netns/$AGENT_NS" /usr/bin/etcd --name e2e \
  --data-dir "$E2E_TMP/etcd" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster e2e=http://127.0.0.1:2380
ETCD=$BG_PID
wait_for 30 "etcd to answer" in_ns etcdctl --endpoints http://127.0.0.1:2379 endpoint health

# start_server NAME ADDRESS: an API server (no embedded agent) bound to ADDRESS:6443 on etcd.
start_server() {
  start_bg "$1" nsenter --net="/run/netns/$AGENT_NS" "$ORCH" server --disable-agent \
    --data-dir "$E2E_TMP/$1" -o "$E2E_TMP/$1.yaml" --node-name "$1" --node-ip "$2" \
    --bind-address "$2" --advertise-address "$2" --cluster-cidr "$CLUSTER_CIDR" \
    --datastore-endpoint http://127.0.0.1:2379 --node-monitor-grace-period 12s
}
# use_server ADDRESS: kubectl (k) talks to that server.
use_server() { sed "s#https://127.0.0.1:6443#https://$1:6443#" "$E2E_TMP/server1.yaml" >"$KCFG"; }

start_server server1 "$S1"
SERVER1=$BG_PID
wait_for 60 "server 1's kubeconfig" test -s "$E2E_TMP/server1.yaml"
use_server "$S1"
wait_for 60 "server 1 to be ready" k get --raw /readyz
# The second server shares the cluster's CA, token and encryption key.
mkdir -p "$E2E_TMP/server2/server"
cp -a "$E2E_TMP/server1/server/tls" "$E2E_TMP/server1/server/cred" "$E2E_TMP/server1/server/token" \
  "$E2E_TMP/server2/server/"
start_server server2 "$S2"
SERVER2=$BG_PID
wait_for 60 "server 2 to be ready" in_ns kubectl --kubeconfig "$KCFG" --server "https://$S2:6443" get --raw /readyz
token=$(head -n1 "$E2E_TMP/server1/server/token")

start_agent() {
  start_bg "$1" nsenter --net="/run/netns/$AGENT_NS" "$ORCH" agent --join "https://$S1:6443" \
    --token "$token" --data-dir "$DATA" --node-name "$NODE" --node-ip "$NODE_IP"
  AGENT=$BG_PID
  AGENT_SERVER=$AGENT  # agent_cleanup deletes the pods through it, then stops it
}
start_agent agent
wait_for 30 "the load balancer" log_has "$E2E_TMP/agent.log" "API servers through https://127.0.0.1:6444"
wait_jp 120 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
wait_for 60 "the agent to learn server 2" grep -qF "$S2:6443" "$DATA/agent/api-servers.json"

pod() {
  cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c, 'echo hello-from-$1; exec sleep 3600']
YAML
}
pod before
wait_jp 120 pod/before '{.status.phase}' Running

echo "--- server 1 dies"
kill -KILL "$SERVER1"
use_server "$S2"
wait_for 60 "the agent to switch to server 2" log_has "$E2E_TMP/agent.log" "switching from API server $S1:6443"
renewed=$(jp "lease/$NODE" '{.spec.renewTime}' kube-node-lease)
lease_renewed() { [[ "$(jp "lease/$NODE" '{.spec.renewTime}' kube-node-lease)" != "$renewed" ]]; }
wait_for 60 "the node lease renewed through server 2" lease_renewed
pod after
wait_jp 120 pod/after '{.status.phase}' Running
# Longer than the node monitor grace period (12 s): a node that lost the API would be Unknown.
sleep 15
expect_eq "$(jp "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}')" True \
  "node Ready after server 1 died"
wait_for 60 "logs over the node link through server 2" log_contains after app hello-from-after
wait_for 60 "kubectl logs through server 2" k logs after
expect_eq "$(k logs after)" hello-from-after "kubectl logs after the failover"

echo "--- the agent restarts while its --join server is dead"
stop_bg "$AGENT" TERM 60
start_agent agent2
wait_for 30 "the stored server list" log_has "$E2E_TMP/agent2.log" "$S2:6443"
renewed=$(jp "lease/$NODE" '{.spec.renewTime}' kube-node-lease)
wait_for 60 "the node lease renewed by the restarted agent" lease_renewed
pod again
wait_jp 120 pod/again '{.status.phase}' Running

k delete pods --all --grace-period=1 --wait=false >/dev/null
wait_for 90 "every pod to be deleted" agent_no_pods
wait_for 60 "the node to remove every container" agent_no_containers
stop_bg "$AGENT" TERM 60
AGENT_SERVER=""
stop_bg "$SERVER2" TERM 30
stop_bg "$ETCD" TERM 30
wait_for 10 "no process of the node left" agent_nothing_left
