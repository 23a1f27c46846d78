#!/usr/bin/env bash
# DaemonSets driven by the real kubectl against `orch server --disable-agent` with its scheduler:
# one pod per eligible node (taints, tolerations, nodeSelector, node label changes), rollout
# status, set image, history, undo, restart, OnDelete, cascading deletion. Fake Nodes and their
# Leases are made with kubectl; a loop in this script plays their kubelets (lease renewals, pods
# Running and Ready, graceful deletions finished).
# Usage: daemonset_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"
k() { "$KUBECTL" "$@"; }

port=$(free_port)
export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
export KUBECACHEDIR="$E2E_TMP/kube-cache"
start_bg server "$ORCH" server --disable-agent --data-dir "$E2E_TMP/data" \
  --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG"
wait_for 30 "the API server to be ready" k get --raw /readyz

# Three nodes: n1 and n2 plain, n3 tainted dedicated=infra:NoSchedule.
add_node() {  # NAME [TAINTS-YAML]
  local t
  t=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  k create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels: {kubernetes.io/hostname: $1}
spec: {taints: ${2:-[]}}
YAML
  k patch node "$1" --subresource=status --type=merge -p "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"lastHeartbeatTime\":\"$t\",\"lastTransitionTime\":\"$t\"}],\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"},\"capacity\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":\"110\"}}}" >/dev/null
  k create -f - >/dev/null 2>&1 <<YAML || true
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: $1, namespace: kube-node-lease}
spec: {holderIdentity: $1, leaseDurationSeconds: 40, renewTime: "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"}
YAML
}
add_node n1
add_node n2
add_node n3 '[{key: dedicated, value: infra, effect: NoSchedule}]'

# The pretend kubelets: renew the leases, run the bound pods (Running and Ready), finish graceful
# deletions.
cat >"$E2E_TMP/kubelet.sh" <<'LOOP'
k() { "$KUBECTL" "$@"; }
while true; do
  t=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  for n in n1 n2 n3; do
    k patch lease -n kube-node-lease "$n" --type=merge -p "{\"spec\":{\"renewTime\":\"$t\"}}" >/dev/null 2>&1 || true
  done
  k get pods -o jsonpath='{range .items[*]}{.metadata.name}|{.spec.nodeName}|{.status.phase}|{.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null |
    while IFS='|' read -r name node phase deleting; do
      [[ -n "$node" ]] || continue
      if [[ -n "$deleting" ]]; then
        k delete pod "$name" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
      elif [[ "$phase" != Running && "$phase" != Failed && "$phase" != Succeeded ]]; then
        s=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        k patch pod "$name" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$s\"}]}}" >/dev/null 2>&1 || true
      fi
    done
  sleep 0.2
done
LOOP
start_bg kubelet env KUBECTL="$KUBECTL" KUBECONFIG="$KUBECONFIG" KUBECACHEDIR="$KUBECACHEDIR" \
  bash "$E2E_TMP/kubelet.sh"

jp() { k get "$1" "$2" -o jsonpath="$3"; }
# The nodes of the live (not terminating) pods labelled app=$1, sorted, one line.
nodes_of() {
  k get pods -l "app=$1" -o jsonpath='{range .items[*]}{.spec.nodeName}{"|"}{.metadata.deletionTimestamp}{"\n"}{end}' |
    awk -F'|' '$2 == "" {print $1}' | sort | xargs
}
nodes_are() { [[ "$(nodes_of "$1")" == "$2" ]]; }
images_of() {
  k get pods -l "app=$1" -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | sort | xargs
}
images_are() { [[ "$(images_of "$1")" == "$2" ]]; }
rollout() {
  run_capture k rollout status "ds/$1" --timeout=60s
  expect_eq "$RC" 0 "rollout status of $1: $ERR $OUT"
  expect_contains "$OUT" "daemon set \"$1\" successfully rolled out" "rollout status of $1"
}
daemonset() {  # NAME IMAGE [EXTRA-SPEC-YAML (indented 6)] [STRATEGY-YAML]
  local strategy=${4:-}
  [[ -n "$strategy" ]] || strategy='{type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}'
  k apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: $1}
spec:
  selector: {matchLabels: {app: $1}}
  updateStrategy: $strategy
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers: [{name: main, image: $2}]
${3:-}
YAML
}

# --- One pod per node the template fits: not on the tainted n3.
daemonset agent busybox:1
wait_for 30 "agent pods on n1 and n2" nodes_are agent "n1 n2"
rollout agent
expect_eq "$(jp ds agent '{.status.desiredNumberScheduled}/{.status.currentNumberScheduled}/{.status.numberReady}/{.status.numberAvailable}/{.status.updatedNumberScheduled}/{.status.numberMisscheduled}')" \
  "2/2/2/2/2/0" "status counts"
run_capture k get ds agent
expect_contains "$(tr -s ' ' <<<"$OUT")" "agent 2 2 2 2 2 <none>" "kubectl get ds columns"
pod=$(k get pods -l app=agent -o jsonpath='{.items[0].metadata.name}')
hash=$(k get controllerrevisions -l app=agent -o jsonpath='{.items[0].metadata.labels.controller-revision-hash}')
[[ -n "$hash" ]] || fail "no ControllerRevision for agent"
expect_eq "$(jp pod "$pod" '{.metadata.labels.controller-revision-hash}')" "$hash" \
  "pods carry the revision hash"
expect_eq "$(jp pod "$pod" '{.metadata.labels.pod-template-generation}')" "1" \
  "pods carry the template generation"
expect_eq "$(jp pod "$pod" '{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key}')" \
  "metadata.name" "pods are pinned by matchFields"
expect_contains "$(jp pod "$pod" '{.spec.tolerations[*].key}')" "node.kubernetes.io/unreachable" \
  "pods get the daemon tolerations"
expect_eq "$(jp controllerrevision "agent-$hash" '{.revision}/{.metadata.ownerReferences[0].kind}')" \
  "1/DaemonSet" "revision 1, owned by the DaemonSet"
expect_contains "$(k get controllerrevision "agent-$hash" -o json)" '"$patch": "replace"' \
  "revision data is a strategic-merge patch"

# --- A toleration lets a DaemonSet onto the tainted node.
daemonset tolerant busybox:1 '      tolerations: [{key: dedicated, operator: Equal, value: infra, effect: NoSchedule}]'
wait_for 30 "tolerant pods on every node" nodes_are tolerant "n1 n2 n3"

# --- A failed daemon pod is deleted and replaced on its node.
on_n3() { k get pods -l app=tolerant --field-selector spec.nodeName=n3 -o jsonpath='{.items[*].metadata.name}'; }
failed=$(on_n3)
k patch pod "$failed" --subresource=status --type=merge -p '{"status":{"phase":"Failed"}}' >/dev/null
wait_for 30 "a new tolerant pod on n3" bash -c \
  "n=\$('$KUBECTL' get pods -l app=tolerant --field-selector spec.nodeName=n3 -o jsonpath='{.items[*].metadata.name}'); [[ -n \$n && \$n != '$failed' ]]"
run_capture k describe ds tolerant
expect_contains "$OUT" "Found failed daemon pod default/$failed on node n3, will try to kill it" \
  "FailedDaemonPod event"

# --- nodeSelector: pods follow node labels.
k label node n1 tier=edge >/dev/null
daemonset edge busybox:1 '      nodeSelector: {tier: edge}'
wait_for 30 "an edge pod on n1" nodes_are edge "n1"
k label node n2 tier=edge >/dev/null
wait_for 30 "an edge pod on n2 once it is labelled" nodes_are edge "n1 n2"
k label node n1 tier- >/dev/null
wait_for 30 "the edge pod to leave n1 once it is unlabelled" nodes_are edge "n2"

# --- Rolling update, history, undo, restart.
k set image ds/agent main=busybox:2 >/dev/null
rollout agent
wait_for 30 "agent pods to run busybox:2" images_are agent "busybox:2 busybox:2"
expect_eq "$(jp ds agent '{.status.updatedNumberScheduled}/{.status.numberAvailable}')" "2/2" \
  "updated counts after the rollout"
run_capture k rollout history ds/agent
expect_eq "$RC" 0 "rollout history: $ERR"
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "1 2" "revisions 1 and 2"
run_capture k rollout history ds/agent --revision=1
expect_contains "$OUT" "busybox:1" "history shows revision 1's template"
run_capture k rollout undo ds/agent
expect_eq "$RC" 0 "rollout undo: $ERR"
expect_contains "$OUT" "rolled back" "rollout undo"
rollout agent
expect_eq "$(jp ds agent '{.spec.template.spec.containers[0].image}')" "busybox:1" \
  "undo restores the image"
wait_for 30 "agent pods back on busybox:1" images_are agent "busybox:1 busybox:1"
run_capture k rollout history ds/agent
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "2 3" \
  "undo renumbers revision 1 as 3"
before=$(k get pods -l app=agent -o name | sort | xargs)
k rollout restart ds/agent >/dev/null
rollout agent
wait_for 30 "restarted agent pods" bash -c \
  "[[ \$('$KUBECTL' get pods -l app=agent -o name | sort | xargs) != '$before' && \$('$KUBECTL' get pods -l app=agent -o name | wc -l) == 2 ]]"
expect_eq "$(k get controllerrevisions -l app=agent -o name | wc -l)" 3 "one revision per template"

# --- maxSurge: the new pod starts beside the old one, which goes once the new one is available.
daemonset surge busybox:1 '' '{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}'
wait_for 30 "surge pods on n1 and n2" nodes_are surge "n1 n2"
rollout surge
k set image ds/surge main=busybox:2 >/dev/null
rollout surge
wait_for 30 "surge pods to run busybox:2" images_are surge "busybox:2 busybox:2"
expect_contains "$(k describe ds surge)" "SuccessfulDelete" "surge deleted the old pods"

# --- OnDelete: a new template waits for the pods to be deleted.
daemonset ondel busybox:1 '' '{type: OnDelete}'
wait_for 30 "ondel pods on n1 and n2" nodes_are ondel "n1 n2"
k set image ds/ondel main=busybox:2 >/dev/null
gen=$(jp ds ondel '{.metadata.generation}')
wait_for 30 "the new ondel spec to be observed" bash -c \
  "[[ \$('$KUBECTL' get ds ondel -o jsonpath='{.status.observedGeneration}') == $gen ]]"
expect_eq "$(jp ds ondel '{.status.updatedNumberScheduled}')" "0" "OnDelete updates nothing by itself"
expect_eq "$(images_of ondel)" "busybox:1 busybox:1" "OnDelete keeps the old pods"
victim=$(k get pods -l app=ondel --field-selector spec.nodeName=n1 -o jsonpath='{.items[0].metadata.name}')
k delete pod "$victim" --wait=false >/dev/null
wait_for 30 "a busybox:2 ondel pod in place of the deleted one" images_are ondel "busybox:1 busybox:2"
expect_eq "$(k get pods -l app=ondel --field-selector spec.nodeName=n1 -o jsonpath='{.items[*].spec.containers[0].image}')" \
  "busybox:2" "the replacement on n1 runs the new template"

# --- Events and cascading deletion.
run_capture k describe ds agent
expect_contains "$OUT" "SuccessfulCreate" "describe shows the controller's events"
k delete ds agent >/dev/null
wait_for 30 "agent pods to go with their DaemonSet" bash -c \
  "[[ -z \$('$KUBECTL' get pods -l app=agent -o name) ]]"
wait_for 30 "agent revisions to go with their DaemonSet" bash -c \
  "[[ -z \$('$KUBECTL' get controllerrevisions -l app=agent -o name) ]]"
echo "PASS"
