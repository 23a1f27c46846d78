#!/usr/bin/env bash
# Node lifecycle, PodDisruptionBudgets and default ServiceAccounts, driven by the real kubectl
# against `orch server --disable-agent` with a short --node-monitor-grace-period. Fake Nodes and
# their Leases are made with kubectl; a loop in this script plays their kubelets (lease renewals,
# Ready status, pods Running, graceful deletions finished). A node whose "kubelet" stops becomes
# Unknown with the unreachable taints and its pods are evicted after their tolerationSeconds and
# replaced elsewhere; cordon/uncordon taint; drain honours a PodDisruptionBudget.
# Usage: node_lifecycle_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"
k() { "$KUBECTL" "$@"; }

GRACE=12  # seconds without a heartbeat before a node is unreachable
port=$(free_port)
export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
export KUBECACHEDIR="$E2E_TMP/kube-cache"
start_bg server "$ORCH" server --disable-agent --data-dir "$E2E_TMP/data" \
  --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG" \
  --node-monitor-grace-period "${GRACE}s"
wait_for 30 "the API server to be ready" k get --raw /readyz

now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
ready_patch() {  # the status a live kubelet posts
  local t
  t=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  echo "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"kubelet is posting ready status\",\"lastHeartbeatTime\":\"$t\",\"lastTransitionTime\":\"$t\"}],\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"},\"capacity\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"}}}"
}
add_node() {
  k create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {kubernetes.io/hostname: $1}
YAML
  k patch node "$1" --subresource=status --type=merge -p "$(ready_patch)" >/dev/null
  k create -f - >/dev/null <<YAML
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: $1, namespace: kube-node-lease}
spec: {holderIdentity: $1, leaseDurationSeconds: 40, renewTime: "$(now)"}
YAML
  echo "$1" >>"$E2E_TMP/alive"
}
: >"$E2E_TMP/alive"
for n in n1 n2 n3; do add_node "$n"; done

# The pretend kubelets of the nodes listed in $E2E_TMP/alive: renew their leases, report them
# Ready when they are not, run their pods and finish their pods' graceful deletions.
cat >"$E2E_TMP/kubelet.sh" <<'LOOP'
k() { "$KUBECTL" "$@"; }
while true; do
  alive=" $(xargs <"$ALIVE") "
  t=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  for n in $alive; do
    k patch lease -n kube-node-lease "$n" --type=merge -p "{\"spec\":{\"renewTime\":\"$t\"}}" >/dev/null 2>&1 || true
  done
  k get nodes -o jsonpath='{range .items[*]}{.metadata.name}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
    while IFS='|' read -r n ready; do
      [[ "$alive" == *" $n "* && "$ready" != True ]] || continue
      s=$(date -u +%Y-%m-%dT%H:%M:%SZ)
      k patch node "$n" --subresource=status --type=merge -p "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"kubelet is posting ready status\",\"lastHeartbeatTime\":\"$s\",\"lastTransitionTime\":\"$s\"}]}}" >/dev/null 2>&1 || true
    done
  k get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}|{.metadata.name}|{.spec.nodeName}|{.status.phase}|{.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null |
    while IFS='|' read -r ns name node phase deleting; do
      [[ -n "$node" && "$alive" == *" $node "* ]] || continue
      if [[ -n "$deleting" ]]; then
        k delete pod -n "$ns" "$name" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
      elif [[ "$phase" != Running ]]; then
        s=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        k patch pod -n "$ns" "$name" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$s\"}]}}" >/dev/null 2>&1 || true
      fi
    done
  sleep 0.3
done
LOOP
start_bg kubelet env KUBECTL="$KUBECTL" KUBECONFIG="$KUBECONFIG" KUBECACHEDIR="$KUBECACHEDIR" \
  ALIVE="$E2E_TMP/alive" bash "$E2E_TMP/kubelet.sh"

jp() { k get "$1" "$2" -o jsonpath="$3"; }
taints_of() { jp node "$1" '{range .spec.taints[*]}{.key}:{.effect} {end}'; }
has_taint() { [[ "$(taints_of "$1")" == *"$2"* ]]; }
lacks_taint() { [[ "$(taints_of "$1")" != *"$2"* ]]; }
ready_of() { jp node "$1" '{.status.conditions[?(@.type=="Ready")].status}'; }
ready_is() { [[ "$(ready_of "$1")" == "$2" ]]; }
# Running, not terminating pods of app=web, as "node node ...".
web_nodes() {
  k get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}|{.status.phase}|{.metadata.deletionTimestamp}{"\n"}{end}' |
    awk -F'|' '$2 == "Running" && $3 == "" {print $1}' | sort | xargs
}
web_nodes_match() { [[ "$(web_nodes)" =~ ^$1$ ]]; }
# Two web pods running, none on node $1.
web_off() { local n; n=$(web_nodes); [[ $(wc -w <<<"$n") == 2 && "$n" != *"$1"* ]]; }

echo "--- default ServiceAccounts"
wait_for 30 "the default ServiceAccount of default" k get serviceaccount default -n default
k create namespace team >/dev/null
wait_for 30 "the default ServiceAccount of a new namespace" k get serviceaccount default -n team
k delete serviceaccount default -n team >/dev/null
wait_for 30 "the default ServiceAccount to come back" k get serviceaccount default -n team

echo "--- cordon and uncordon taint the node"
run_capture k cordon n2
expect_eq "$RC" 0 "cordon: $ERR"
expect_contains "$OUT" "node/n2 cordoned" "cordon output"
wait_for 30 "the unschedulable taint" has_taint n2 node.kubernetes.io/unschedulable:NoSchedule
run_capture k uncordon n2
expect_eq "$RC" 0 "uncordon: $ERR"
wait_for 30 "the unschedulable taint to go" lacks_taint n2 node.kubernetes.io/unschedulable
expect_eq "$(ready_of n1)/$(ready_of n2)/$(ready_of n3)" "True/True/True" "live nodes stay Ready"
expect_eq "$(taints_of n1)" "" "a live node has no taints"

echo "--- pods get the default NoExecute tolerations"
k run solo --image=busybox:1 >/dev/null
tolerations=$(jp pod solo '{range .spec.tolerations[*]}{.key}:{.effect}:{.tolerationSeconds} {end}')
expect_contains "$tolerations" "node.kubernetes.io/not-ready:NoExecute:300" "not-ready toleration"
expect_contains "$tolerations" "node.kubernetes.io/unreachable:NoExecute:300" "unreachable toleration"
k delete pod solo --wait=false >/dev/null

echo "--- a silent node: Unknown, unreachable taints, pods evicted and replaced"
k cordon n2 >/dev/null
k cordon n3 >/dev/null
cat >"$E2E_TMP/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: web, image: "busybox:1"}]
      tolerations:
        - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
        - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
YAML
k apply -f "$E2E_TMP/web.yaml" >/dev/null
wait_for 60 "two web pods running on n1" web_nodes_match "n1 n1"
k uncordon n2 >/dev/null
k uncordon n3 >/dev/null
# n1's kubelet stops.
grep -vx n1 "$E2E_TMP/alive" >"$E2E_TMP/alive.new" && mv "$E2E_TMP/alive.new" "$E2E_TMP/alive"
wait_for 60 "n1 to become Unknown" ready_is n1 Unknown
expect_eq "$(jp node n1 '{.status.conditions[?(@.type=="Ready")].reason}')" "NodeStatusUnknown" \
  "Ready reason"
expect_eq "$(jp node n1 '{.status.conditions[?(@.type=="Ready")].message}')" \
  "Kubelet stopped posting node status." "Ready message"
wait_for 30 "the unreachable NoExecute taint" has_taint n1 node.kubernetes.io/unreachable:NoExecute
has_taint n1 node.kubernetes.io/unreachable:NoSchedule || fail "no unreachable NoSchedule taint: $(taints_of n1)"
[[ -n "$(jp node n1 '{.spec.taints[?(@.effect=="NoExecute")].timeAdded}')" ]] ||
  fail "the NoExecute taint has no timeAdded"
run_capture k get nodes
expect_contains "$(tr -s ' ' <<<"$OUT")" "n1 NotReady" "kubectl get nodes shows NotReady"
wait_for 60 "web to be replaced on n2/n3" web_nodes_match "n[23] n[23]"
run_capture k get events --field-selector reason=TaintManagerEviction -o jsonpath='{.items[*].message}'
expect_contains "$OUT" "Marking for deletion Pod default/web-" "TaintManagerEviction events"
run_capture k get events --field-selector reason=NodeNotReady,involvedObject.kind=Node -o jsonpath='{.items[*].message}'
expect_contains "$OUT" "Node n1 status is now: NodeNotReady" "NodeNotReady event"
old=$(k get pods -l app=web --field-selector spec.nodeName=n1 -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}|{.status.conditions[?(@.type=="Ready")].status} {end}')
for p in $old; do
  [[ "$p" == ?*"|False" ]] || fail "n1's pods should be terminating and not ready: $old"
done

echo "--- the kubelet is back: Ready, taints gone"
echo n1 >>"$E2E_TMP/alive"
wait_for 30 "n1 to be Ready again" ready_is n1 True
no_taints() { [[ -z "$(jp node "$1" '{.spec.taints}')" ]]; }
wait_for 30 "n1's taints to go" no_taints n1

echo "--- drain honours a PodDisruptionBudget"
cat >"$E2E_TMP/pdb.yaml" <<'YAML'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: web}
YAML
k apply -f "$E2E_TMP/pdb.yaml" >/dev/null
pdb_is() { [[ "$(jp pdb web '{.status.expectedPods}/{.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}')" == "$1" ]]; }
wait_for 30 "the budget's status" pdb_is 2/2/2/0
expect_eq "$(jp pdb web '{.status.conditions[?(@.type=="DisruptionAllowed")].reason}')" \
  "InsufficientPods" "DisruptionAllowed reason"
run_capture k get pdb web
expect_contains "$(tr -s ' ' <<<"$OUT")" "web 2 N/A 0" "kubectl get pdb MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS"

victim=$(k get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
victim_node=$(jp pod "$victim" '{.spec.nodeName}')
cat >"$E2E_TMP/eviction.json" <<JSON
{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"$victim","namespace":"default"}}
JSON
run_capture k create --raw "/api/v1/namespaces/default/pods/$victim/eviction" -f "$E2E_TMP/eviction.json" -v=8
[[ "$RC" != 0 ]] || fail "an eviction the budget forbids succeeded"
expect_contains "$ERR" "Cannot evict pod as it would violate the pod's disruption budget." "429 message"
expect_contains "$ERR" "The disruption budget web needs 2 healthy pods and has 2 currently" "429 cause"
expect_contains "$ERR" "429" "429 code"

run_capture k drain "$victim_node" --ignore-daemonsets --delete-emptydir-data --timeout=12s
[[ "$RC" != 0 ]] || fail "drain should time out on the budget: $OUT"
expect_contains "$OUT$ERR" "Cannot evict pod as it would violate the pod's disruption budget" \
  "drain reports the budget"
expect_eq "$(jp node "$victim_node" '{.spec.unschedulable}')" "true" "drain cordons"
k get pod "$victim" >/dev/null || fail "the budget did not protect $victim"

k patch pdb web --type=merge -p '{"spec":{"minAvailable":1}}' >/dev/null
wait_for 30 "the relaxed budget" pdb_is 2/2/1/1
run_capture k drain "$victim_node" --ignore-daemonsets --delete-emptydir-data --timeout=60s
expect_eq "$RC" 0 "drain with a relaxed budget: $OUT $ERR"
expect_contains "$OUT" "evicted" "drain evicts"
expect_contains "$OUT" "node/$victim_node drained" "drain output"
wait_for 60 "web to be running twice off $victim_node" web_off "$victim_node"
wait_for 30 "the budget to recover" pdb_is 2/2/1/1
k uncordon "$victim_node" >/dev/null
wait_for 30 "the drained node's unschedulable taint to go" lacks_taint "$victim_node" unschedulable
