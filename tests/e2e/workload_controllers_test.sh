#!/usr/bin/env bash
# Deployments, ReplicaSets and ReplicationControllers driven by the real kubectl against
# `orch server --disable-agent`: create, scale, set image with `rollout status`, history, undo,
# pause/resume, restart, describe's events. With no node agent, a loop in this script plays the
# kubelet: it reports every pod Running and Ready through the status subresource.
# Usage: workload_controllers_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"

start_control_plane "$KUBECTL"
k() { "$KUBECTL" "$@"; }

# The pretend kubelet: every pod that is not Running becomes Running and Ready.
cat >"$E2E_TMP/kubelet.sh" <<'EOF'
while true; do
  for pod in $("$KUBECTL" get pods --field-selector=status.phase!=Running -o name 2>/dev/null); do
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    "$KUBECTL" patch "$pod" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null 2>&1 || true
  done
  sleep 0.2
done
EOF
start_bg kubelet env KUBECTL="$KUBECTL" KUBECONFIG="$KUBECONFIG" KUBECACHEDIR="$KUBECACHEDIR" \
  bash "$E2E_TMP/kubelet.sh"

jp() { k get "$1" "$2" -o jsonpath="$3"; }
pods_with() { k get pods -l "$1" -o name | wc -l; }
count_is() { [[ "$(pods_with "$1")" == "$2" ]]; }
rollout() {
  run_capture k rollout status "deployment/$1" --timeout=60s
  expect_eq "$RC" 0 "rollout status of $1: $ERR $OUT"
  expect_contains "$OUT" "deployment \"$1\" successfully rolled out" "rollout status of $1"
}
rs_of_image() {
  k get rs -l app=web -o jsonpath="{range .items[?(@.spec.template.spec.containers[0].image==\"$1\")]}{.metadata.name}{end}"
}

# --- A Deployment: one ReplicaSet named by its template hash, pods labelled with it.
run_capture k create deployment web --image=busybox:1 --replicas=3
expect_eq "$RC" 0 "create deployment: $ERR"
wait_for 30 "three pods of web" count_is app=web 3
hash=$(k get rs -l app=web -o jsonpath='{.items[0].metadata.labels.pod-template-hash}')
[[ -n "$hash" ]] || fail "the ReplicaSet has no pod-template-hash label"
expect_eq "$(k get rs -l app=web -o jsonpath='{.items[*].metadata.name}')" "web-$hash" "ReplicaSet name"
expect_eq "$(pods_with "app=web,pod-template-hash=$hash")" 3 "pods carry the hash label"
expect_eq "$(jp rs "web-$hash" '{.spec.selector.matchLabels.pod-template-hash}')" "$hash" \
  "the ReplicaSet selects its hash"
expect_eq "$(jp rs "web-$hash" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}')" \
  "Deployment/true" "the ReplicaSet's controller is the Deployment"
rollout web
expect_eq "$(jp deploy web '{.status.readyReplicas}/{.status.availableReplicas}/{.status.updatedReplicas}')" \
  "3/3/3" "status counts"
expect_eq "$(jp deploy web '{.metadata.annotations.deployment\.kubernetes\.io/revision}')" "1" \
  "revision annotation"
expect_eq "$(jp deploy web '{.status.conditions[?(@.type=="Available")].status}')" "True" \
  "Available condition"
expect_eq "$(jp deploy web '{.status.conditions[?(@.type=="Progressing")].reason}')" \
  "NewReplicaSetAvailable" "Progressing condition"
run_capture k get deploy web
expect_contains "$(tr -s ' ' <<<"$OUT")" "web 3/3 3 3" "kubectl get deploy READY UP-TO-DATE AVAILABLE"

# --- Scale.
k scale deployment web --replicas=5 >/dev/null
rollout web
expect_eq "$(pods_with app=web)" 5 "scaled up to 5"
k scale deployment web --replicas=2 >/dev/null
wait_for 30 "web to scale down to 2" count_is app=web 2
rollout web

# --- Rolling update to a new image.
k set image deployment/web busybox=busybox:2 >/dev/null
rollout web
new_rs=$(rs_of_image busybox:2)
old_rs=$(rs_of_image busybox:1)
[[ -n "$new_rs" && "$new_rs" != "$old_rs" ]] || fail "no new ReplicaSet for busybox:2"
expect_eq "$(jp rs "$new_rs" '{.spec.replicas}')" 2 "the new ReplicaSet has every replica"
expect_eq "$(jp rs "$old_rs" '{.spec.replicas}')" 0 "the old ReplicaSet has none"
expect_eq "$(k get pods -l app=web -o jsonpath='{.items[*].spec.containers[0].image}')" \
  "busybox:2 busybox:2" "pods run the new image"
run_capture k rollout history deployment/web
expect_eq "$RC" 0 "rollout history: $ERR"
expect_contains "$OUT" "REVISION" "history header"
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "1 2" "revisions 1 and 2"

# --- Undo: back to revision 1's template, which becomes revision 3.
run_capture k rollout undo deployment/web
expect_eq "$RC" 0 "rollout undo: $ERR"
expect_contains "$OUT" "rolled back" "rollout undo"
rollout web
expect_eq "$(jp deploy web '{.spec.template.spec.containers[0].image}')" "busybox:1" "undo restores the image"
expect_eq "$(k get rs -l app=web -o name | wc -l)" 2 "undo reuses the old ReplicaSet"
expect_eq "$(jp rs "$old_rs" '{.metadata.annotations.deployment\.kubernetes\.io/revision}')" 3 \
  "the restored ReplicaSet gets revision 3"
expect_eq "$(jp rs "$old_rs" '{.spec.replicas}')" 2 "the restored ReplicaSet runs everything"
run_capture k rollout history deployment/web
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "2 3" "revisions after undo"
run_capture k rollout history deployment/web --revision=3
expect_contains "$OUT" "busybox:1" "history shows revision 3's template"

# --- Pause: template changes wait; resume rolls them out.
k rollout pause deployment/web >/dev/null
wait_for 30 "the paused condition" bash -c \
  "[[ \$('$KUBECTL' get deploy web -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}') == DeploymentPaused ]]"
k set image deployment/web busybox=busybox:3 >/dev/null
gen=$(jp deploy web '{.metadata.generation}')
wait_for 30 "the paused spec to be observed" bash -c \
  "[[ \$('$KUBECTL' get deploy web -o jsonpath='{.status.observedGeneration}') == $gen ]]"
expect_eq "$(rs_of_image busybox:3)" "" "no rollout while paused"
run_capture k rollout undo deployment/web
[[ "$RC" != 0 ]] || fail "undo of a paused deployment should be refused"
k rollout resume deployment/web >/dev/null
rollout web
[[ -n "$(rs_of_image busybox:3)" ]] || fail "resume rolled nothing out"
expect_eq "$(k get pods -l app=web -o jsonpath='{.items[*].spec.containers[0].image}')" \
  "busybox:3 busybox:3" "resumed rollout"

# --- Restart: same image, new pods.
before=$(k get pods -l app=web -o name | sort | xargs)
run_capture k rollout restart deployment/web
expect_eq "$RC" 0 "rollout restart: $ERR"
rollout web
after=$(k get pods -l app=web -o name | sort | xargs)
[[ "$before" != "$after" ]] || fail "rollout restart kept the same pods"
expect_eq "$(jp deploy web '{.metadata.annotations.deployment\.kubernetes\.io/revision}')" "5" \
  "restart is revision 5"

# --- What `kubectl describe` shows.
run_capture k describe deployment web
expect_contains "$OUT" "ScalingReplicaSet" "describe shows scaling events"
expect_contains "$OUT" "NewReplicaSet:" "describe names the new ReplicaSet"
run_capture k describe rs -l app=web
expect_contains "$OUT" "SuccessfulCreate" "describe rs shows pod creations"
expect_contains "$OUT" "Created pod: " "SuccessfulCreate message"

# --- A bare ReplicaSet: adopts a matching orphan, replaces a deleted pod, scales.
k run orphan --image=busybox:1 --labels=app=cache,tier=db >/dev/null
cat >"$E2E_TMP/rs.yaml" <<'EOF'
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: cache
spec:
  replicas: 2
  selector:
    matchLabels: {app: cache}
  template:
    metadata:
      labels: {app: cache, tier: db}
    spec:
      containers:
      - {name: c, image: busybox:1}
EOF
k apply -f "$E2E_TMP/rs.yaml" >/dev/null
wait_for 30 "two cache pods" count_is app=cache 2
wait_for 30 "the orphan to be adopted" bash -c \
  "[[ \$('$KUBECTL' get pod orphan -o jsonpath='{.metadata.ownerReferences[0].name}') == cache ]]"
victim=$(k get pods -l app=cache -o jsonpath='{.items[0].metadata.name}')
k delete pod "$victim" --wait=false >/dev/null
wait_for 30 "a replacement pod" bash -c \
  "[[ \$('$KUBECTL' get pods -l app=cache -o name | grep -vc \"/$victim\$\") == 2 ]]"
k scale rs cache --replicas=4 >/dev/null
wait_for 30 "four cache pods" count_is app=cache 4
wait_for 30 "the ReplicaSet's ready count" bash -c \
  "[[ \$('$KUBECTL' get rs cache -o jsonpath='{.status.readyReplicas}') == 4 ]]"

# --- A ReplicationController, the same loop with a plain map selector.
cat >"$E2E_TMP/rc.yaml" <<'EOF'
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers:
      - {name: c, image: busybox:1}
EOF
k apply -f "$E2E_TMP/rc.yaml" >/dev/null
wait_for 30 "two legacy pods" count_is app=legacy 2
k scale rc legacy --replicas=1 >/dev/null
wait_for 30 "one legacy pod" count_is app=legacy 1
wait_for 30 "the controller's status" bash -c \
  "[[ \$('$KUBECTL' get rc legacy -o jsonpath='{.status.replicas}/{.status.readyReplicas}') == 1/1 ]]"

# --- Deleting the Deployment: its ReplicaSets and pods go once the garbage collector runs.
k delete deployment web >/dev/null
if grep -q '"garbagecollector"' "$(dirname "$0")/../../src/controllers/controllers.cpp"; then
  wait_for 60 "web's ReplicaSets to be collected" bash -c \
    "[[ -z \$('$KUBECTL' get rs -l app=web -o name) ]]"
  wait_for 60 "web's pods to be collected" count_is app=web 0
else
  echo "note: no garbage collector yet; cascading deletion not checked"
fi
