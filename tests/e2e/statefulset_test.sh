#!/usr/bin/env bash
# StatefulSets driven by the real kubectl against `orch server --disable-agent`: ordered creation,
# stable names, hostnames and claims, scale down from the highest ordinal, Parallel, rolling
# updates in reverse order with a partition, history, undo, restart, failed and deleted pods
# replaced under the same name, the claim retention policy, and deletion keeping claims. With no
# node agent, a loop in this script plays the kubelet: it reports pending pods Running and Ready,
# except those the test holds back (a file named after the pod in $E2E_TMP/hold).
# Usage: statefulset_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"

start_control_plane "$KUBECTL"
k() { "$KUBECTL" "$@"; }

HOLD="$E2E_TMP/hold"
mkdir -p "$HOLD"
cat >"$E2E_TMP/kubelet.sh" <<'EOF'
while true; do
  for pod in $("$KUBECTL" get pods --field-selector=status.phase=Pending -o name 2>/dev/null); do
    [[ -e "$HOLD/${pod#pod/}" ]] && continue
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    "$KUBECTL" patch "$pod" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null 2>&1 || true
  done
  sleep 0.2
done
EOF
start_bg kubelet env KUBECTL="$KUBECTL" KUBECONFIG="$KUBECONFIG" KUBECACHEDIR="$KUBECACHEDIR" \
  HOLD="$HOLD" bash "$E2E_TMP/kubelet.sh"

jp() { k get "$1" "$2" -o jsonpath="$3"; }
has_pod() { k get pod "$1" >/dev/null 2>&1; }
pod_phase_is() { [[ "$(jp pod "$1" '{.status.phase}' 2>/dev/null)" == "$2" ]]; }
pods_of() { k get pods -l "app=$1" -o jsonpath='{.items[*].metadata.name}'; }
pods_are() { [[ "$(pods_of "$1")" == "$2" ]]; }
images_of() { k get pods -l "app=$1" -o jsonpath='{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}'; }
images_are() { [[ "$(images_of "$1")" == "$2" ]]; }
pvcs() { k get pvc -o jsonpath='{.items[*].metadata.name}'; }
pvcs_are() { [[ "$(pvcs)" == "$1" ]]; }
uid_of() { jp pod "$1" '{.metadata.uid}' 2>/dev/null; }
uid_changed() { local now; now=$(uid_of "$1"); [[ -n "$now" && "$now" != "$2" ]]; }
rollout() {
  run_capture k rollout status "sts/$1" --timeout=60s
  expect_eq "$RC" 0 "rollout status of $1: $ERR $OUT"
  expect_contains "$OUT" "${2:-roll out complete}" "rollout status of $1"
}
# event_has REASON TEXT: an event with that reason says TEXT (events are written asynchronously).
event_has() {
  k get events --field-selector "reason=$1" -o jsonpath='{.items[*].message}' | grep -qF -- "$2"
}
# absent_for SECONDS POD: the pod does not appear within that time.
absent_for() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    ! has_pod "$2" || fail "$2 was created before its predecessor was ready"
    sleep 0.2
  done
}

cat >"$E2E_TMP/web.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: nginx
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: busybox
        image: busybox:1
        command: [sleep, "3600"]
        volumeMounts: [{name: www, mountPath: /www}]
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
EOF

# --- OrderedReady: web-1 only once web-0 is Running and Ready, web-2 once web-1 is.
touch "$HOLD/web-0" "$HOLD/web-1"
run_capture k apply -f "$E2E_TMP/web.yaml"
expect_eq "$RC" 0 "apply web: $ERR"
wait_for 30 "web-0 to be created" has_pod web-0
expect_eq "$(pvcs)" "www-web-0" "the claim of web-0 is made with it"
absent_for 2 web-1
rm "$HOLD/web-0"
wait_for 30 "web-1 after web-0 is ready" has_pod web-1
absent_for 2 web-2
rm "$HOLD/web-1"
wait_for 30 "web-2 after web-1 is ready" has_pod web-2
rollout web
run_capture k get sts web
expect_contains "$(tr -s ' ' <<<"$OUT")" "web 3/3" "kubectl get sts READY"

# --- Identity: names, hostnames, subdomain, labels, claims mounted per ordinal.
expect_eq "$(pods_of web)" "web-0 web-1 web-2" "pods are named by ordinal"
expect_eq "$(jp pod web-1 '{.spec.hostname}/{.spec.subdomain}')" "web-1/nginx" "hostname and subdomain"
expect_eq "$(jp pod web-1 '{.metadata.labels.statefulset\.kubernetes\.io/pod-name}/{.metadata.labels.apps\.kubernetes\.io/pod-index}')" \
  "web-1/1" "identity labels"
revision=$(jp sts web '{.status.updateRevision}')
[[ "$revision" == web-* ]] || fail "updateRevision is '$revision'"
expect_eq "$(jp pod web-2 '{.metadata.labels.controller-revision-hash}')" "$revision" \
  "pods carry their revision"
expect_eq "$(jp sts web '{.status.currentRevision}')" "$revision" "current = update revision"
expect_eq "$(jp sts web '{.status.replicas}/{.status.readyReplicas}/{.status.currentReplicas}/{.status.updatedReplicas}/{.status.availableReplicas}')" \
  "3/3/3/3/3" "status counts"
expect_eq "$(jp sts web '{.status.observedGeneration}')" "$(jp sts web '{.metadata.generation}')" \
  "observedGeneration"
expect_eq "$(pvcs)" "www-web-0 www-web-1 www-web-2" "one claim per ordinal"
expect_eq "$(jp pvc www-web-1 '{.metadata.labels.app}')" "web" "claims carry the selector's labels"
expect_eq "$(jp pod web-1 '{.spec.volumes[?(@.name=="www")].persistentVolumeClaim.claimName}')" \
  "www-web-1" "the pod mounts its own claim"
expect_eq "$(jp controllerrevision "$revision" '{.revision}/{.metadata.ownerReferences[0].kind}')" \
  "1/StatefulSet" "the first ControllerRevision"
wait_for 10 "the SuccessfulCreate event of web-0" event_has SuccessfulCreate \
  "create Pod web-0 in StatefulSet web successful"
wait_for 10 "the SuccessfulCreate event of www-web-0" event_has SuccessfulCreate \
  "create Claim www-web-0 Pod web-0 in StatefulSet web success"
run_capture k describe sts web
expect_contains "$OUT" "create Pod web-1 in StatefulSet web successful" "describe shows events"

# --- /scale and kubectl scale: down from the highest ordinal, claims kept; back up reuses them.
run_capture k get --raw /apis/apps/v1/namespaces/default/statefulsets/web/scale
expect_contains "$OUT" '"replicas":3' "GET /scale"
expect_contains "$OUT" '"selector":"app=web"' "the Scale's selector"
k scale sts web --replicas=2 >/dev/null
wait_for 30 "web-2 to go first" pods_are web "web-0 web-1"
k scale sts web --replicas=1 >/dev/null
wait_for 30 "then web-1" pods_are web "web-0"
expect_eq "$(pvcs)" "www-web-0 www-web-1 www-web-2" "claims are kept on scale down"
k scale sts web --replicas=3 >/dev/null
rollout web
expect_eq "$(pods_of web)" "web-0 web-1 web-2" "scaled back up"
expect_eq "$(pvcs)" "www-web-0 www-web-1 www-web-2" "the old claims are reused"

# --- A deleted pod comes back under its name; so does a failed one.
old=$(uid_of web-1)
k delete pod web-1 --wait=false >/dev/null
wait_for 30 "web-1 to be recreated" uid_changed web-1 "$old"
old=$(uid_of web-0)
k patch pod web-0 --subresource=status --type=merge -p '{"status":{"phase":"Failed"}}' >/dev/null
wait_for 30 "failed web-0 to be recreated" uid_changed web-0 "$old"
rollout web
wait_for 10 "the RecreatingFailedPod event" event_has RecreatingFailedPod \
  "recreating failed Pod web-0"

# --- Rolling update: reverse ordinal order, each after the previous one is ready.
touch "$HOLD/web-2"
k set image sts/web busybox=busybox:2 >/dev/null
wait_for 30 "web-2 to be replaced first" images_are web "web-0=busybox:1 web-1=busybox:1 web-2=busybox:2 "
sleep 1.5
expect_eq "$(images_of web)" "web-0=busybox:1 web-1=busybox:1 web-2=busybox:2 " \
  "web-1 waits while the new web-2 is not ready"
rm "$HOLD/web-2"
rollout web
expect_eq "$(images_of web)" "web-0=busybox:2 web-1=busybox:2 web-2=busybox:2 " "all updated"
rev2=$(jp sts web '{.status.updateRevision}')
[[ "$rev2" != "$revision" ]] || fail "no new revision for busybox:2"
expect_eq "$(jp sts web '{.status.currentRevision}')" "$rev2" "the update revision became current"
wait_for 10 "the SuccessfulDelete event" event_has SuccessfulDelete \
  "delete Pod web-2 in StatefulSet web successful"

# --- Partition: only ordinals at or above it are updated.
k patch sts web -p '{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}}}' >/dev/null
k set image sts/web busybox=busybox:3 >/dev/null
rollout web "partitioned roll out complete: 1 new pods have been updated"
expect_eq "$(images_of web)" "web-0=busybox:2 web-1=busybox:2 web-2=busybox:3 " "partition 2"
expect_eq "$(jp sts web '{.status.currentRevision}')" "$rev2" "current revision during a partition"
expect_eq "$(jp sts web '{.status.currentReplicas}/{.status.updatedReplicas}')" "2/1" \
  "current and updated replicas during a partition"
k patch sts web -p '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}' >/dev/null
rollout web
expect_eq "$(images_of web)" "web-0=busybox:3 web-1=busybox:3 web-2=busybox:3 " "partition 0"

# --- History and undo: back to busybox:2, whose revision becomes number 4.
run_capture k rollout history sts/web
expect_eq "$RC" 0 "rollout history: $ERR"
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "1 2 3" "revisions 1 2 3"
run_capture k rollout undo sts/web
expect_eq "$RC" 0 "rollout undo: $ERR"
expect_contains "$OUT" "rolled back" "rollout undo"
rollout web
expect_eq "$(images_of web)" "web-0=busybox:2 web-1=busybox:2 web-2=busybox:2 " "undo"
expect_eq "$(jp controllerrevision "$rev2" '{.revision}')" "4" "the restored revision is number 4"
run_capture k rollout history sts/web
expect_eq "$(awk 'NR>2 && NF {print $1}' <<<"$OUT" | sort -n | xargs)" "1 3 4" "revisions after undo"
run_capture k rollout history sts/web --revision=4
expect_contains "$OUT" "busybox:2" "history shows revision 4's template"

# --- Restart: same image, new pods and a new revision.
before="$(uid_of web-0) $(uid_of web-1) $(uid_of web-2)"
run_capture k rollout restart sts/web
expect_eq "$RC" 0 "rollout restart: $ERR"
rollout web
for p in web-0 web-1 web-2; do
  [[ " $before " != *" $(uid_of "$p") "* ]] || fail "rollout restart kept $p"
done
expect_eq "$(jp pod web-0 '{.metadata.labels.controller-revision-hash}')" \
  "$(jp sts web '{.status.updateRevision}')" "restarted pods are at the new revision"

# --- Parallel: every pod at once, without waiting for readiness; Delete retention policy.
cat >"$E2E_TMP/db.yaml" <<'EOF'
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 3
  serviceName: db
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers: [{name: db, image: busybox:1}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
EOF
touch "$HOLD/db-0"
k apply -f "$E2E_TMP/db.yaml" >/dev/null
wait_for 30 "all db pods at once" pods_are db "db-0 db-1 db-2"
expect_eq "$(jp pod db-0 '{.status.phase}')" "Pending" "db-0 is held back yet the others exist"
rm "$HOLD/db-0"
rollout db
expect_eq "$(jp pvc data-db-0 '{.metadata.ownerReferences[0].kind}')" "StatefulSet" \
  "whenDeleted: Delete makes the set own the claims"
k scale sts db --replicas=2 >/dev/null
wait_for 30 "db-2 to go" pods_are db "db-0 db-1"
wait_for 30 "whenScaled: Delete to remove data-db-2" pvcs_are \
  "data-db-0 data-db-1 www-web-0 www-web-1 www-web-2"

# --- Deleting a set: its pods go, the claims of a Retain set stay, a Delete set's go too.
k delete sts web db >/dev/null
wait_for 30 "the pods of the deleted sets to go" bash -c "[[ -z \$('$KUBECTL' get pods -o name) ]]"
wait_for 30 "the Delete set's claims to go" pvcs_are "www-web-0 www-web-1 www-web-2"
wait_for 30 "the revisions to go with their sets" bash -c \
  "[[ -z \$('$KUBECTL' get controllerrevisions -o name) ]]"
