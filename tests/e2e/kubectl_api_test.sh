#!/usr/bin/env bash
# The real, unmodified kubectl against `orch server --disable-agent`: discovery, apply (client-
# and server-side), get in every output, label/annotate/patch/scale, explain, diff, wait, watch,
# custom resources, and upstream's error messages. Usage: kubectl_api_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
# kubectl's discovery cache must not leak between tests or versions.
export KUBECACHEDIR="$E2E_TMP/kube-cache"
start_bg server "$ORCH" server --disable-agent --data-dir "$E2E_TMP/data" \
  --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG"
server_pid=$BG_PID
wait_for 30 "the API server to be ready" "$KUBECTL" get --raw /readyz
k() { "$KUBECTL" "$@"; }

# Version and discovery.
run_capture k version -o json
expect_eq "$RC" 0 "kubectl version"
expect_contains "$OUT" '"gitVersion": "v1.32.0+orch"' "server version"
run_capture k api-resources
expect_contains "$OUT" "deployments" "api-resources lists deployments"
expect_contains "$(grep -E '^deployments ' <<<"$OUT")" "deploy" "deployments short name"
expect_contains "$(grep -E '^customresourcedefinitions ' <<<"$OUT")" "crd,crds" "crd short names"
run_capture k get ns
expect_contains "$OUT" "kube-system" "system namespaces exist"
run_capture k get svc kubernetes -o jsonpath='{.spec.clusterIP}'
expect_eq "$OUT" "10.43.0.1" "the kubernetes service takes the first service address"

# Client-side apply, twice: the second is a no-op.
cat >"$E2E_TMP/web.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
EOF
run_capture k apply -f "$E2E_TMP/web.yaml"
expect_eq "$RC" 0 "first apply: $ERR"
expect_contains "$OUT" "deployment.apps/web created" "first apply creates"
run_capture k apply -f "$E2E_TMP/web.yaml"
expect_contains "$OUT" "deployment.apps/web unchanged" "second apply is a no-op"

# get in every output format.
run_capture k get deploy web -o yaml
expect_contains "$OUT" "replicas: 2" "-o yaml"
expect_contains "$OUT" "imagePullPolicy: IfNotPresent" "defaults applied"
expect_contains "$OUT" "progressDeadlineSeconds: 600" "schema defaults applied"
run_capture k get deploy web -o json
expect_contains "$OUT" '"uid":' "-o json"
run_capture k get deploy -o wide
expect_contains "$OUT" "CONTAINERS" "-o wide columns"
expect_contains "$OUT" "nginx:1.25" "-o wide images"
run_capture k get deploy web -o jsonpath='{.spec.template.spec.containers[0].name}'
expect_eq "$OUT" "nginx" "-o jsonpath"
run_capture k get deploy -o custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas --no-headers
expect_eq "$(tr -s ' ' <<<"$OUT")" "web 2" "-o custom-columns"
run_capture k get all
expect_contains "$OUT" "deployment.apps/web" "get all (categories)"

# label, annotate, patch of every type, scale.
k label deploy web tier=front >/dev/null
k annotate deploy web note=hello >/dev/null
k patch deploy web --type merge -p '{"spec":{"paused":true}}' >/dev/null
k patch deploy web --type json -p '[{"op":"replace","path":"/spec/minReadySeconds","value":5}]' >/dev/null
k patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}' >/dev/null
k scale deploy web --replicas=3 >/dev/null
run_capture k get deploy web -o jsonpath='{.metadata.labels.tier} {.metadata.annotations.note} {.spec.paused} {.spec.minReadySeconds} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.spec.replicas}'
expect_eq "$OUT" "front hello true 5 nginx:1.26 80 3" "label/annotate/patch/scale"
run_capture k get deploy web -o jsonpath='{.metadata.generation}'
expect_eq "$OUT" "5" "generation counts spec changes only"
run_capture k wait --for=jsonpath='{.spec.replicas}'=3 deploy/web --timeout=10s
expect_eq "$RC" 0 "kubectl wait: $ERR"

# Server-side apply: a conflict with the manager of the scale, then forced.
run_capture k apply --server-side -f "$E2E_TMP/web.yaml"
expect_eq "$RC" 1 "server-side apply over another manager's fields conflicts"
expect_contains "$ERR" "conflict" "conflict message"
expect_contains "$ERR" ".spec.replicas" "conflicting field"
run_capture k apply --server-side --force-conflicts -f "$E2E_TMP/web.yaml"
expect_eq "$RC" 0 "forced server-side apply: $ERR"
run_capture k get deploy web -o jsonpath='{.spec.replicas}'
expect_eq "$OUT" "2" "forced apply took ownership"
run_capture k apply --server-side -f "$E2E_TMP/web.yaml"
expect_eq "$RC" 0 "re-applying server-side: $ERR"

# explain from the OpenAPI documents; diff against the live object.
run_capture k explain deployment.spec.replicas
expect_contains "$OUT" "replicas" "explain"
expect_contains "$OUT" "integer" "explain type"
sed 's/replicas: 2/replicas: 4/' "$E2E_TMP/web.yaml" >"$E2E_TMP/web4.yaml"
run_capture k diff -f "$E2E_TMP/web4.yaml"
expect_eq "$RC" 1 "diff finds a difference"
expect_contains "$OUT" "+  replicas: 4" "diff shows the change"

# Watch: an event arrives for an object created after the watch started.
start_bg watch "$KUBECTL" get configmaps -w --output-watch-events
watch_pid=$BG_PID
sleep 1
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: watched}
data: {a: "1"}
EOF
wait_for 10 "the watch to see the new configmap" log_has "$E2E_TMP/watch.log" "watched"
kill "$watch_pid" 2>/dev/null || true

# Errors, worded as upstream words them.
run_capture k get pod nope
expect_contains "$ERR" 'Error from server (NotFound): pods "nope" not found' "not found"
run_capture k apply -f - <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: strict}
bogus: field
EOF
expect_contains "$ERR" 'strict decoding error: unknown field "bogus"' "unknown fields refused"
run_capture k apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: Bad_Name}
spec:
  containers: []
EOF
expect_contains "$ERR" "is invalid" "invalid object refused"
expect_contains "$ERR" "metadata.name" "invalid name named"
stale=$(k get cm watched -o jsonpath='{.metadata.resourceVersion}')
k patch cm watched -p '{"data":{"a":"2"}}' >/dev/null
k get cm watched -o json | python3 -c "
import json, sys
o = json.load(sys.stdin); o['metadata']['resourceVersion'] = '$stale'; o['data']['a'] = '3'
print(json.dumps(o))" >"$E2E_TMP/stale.json"
run_capture k replace -f "$E2E_TMP/stale.json"
expect_contains "$ERR" "the object has been modified" "stale update conflicts"

# Custom resources: a CRD, then its objects with discovery, short names and printer columns.
k apply -f - >/dev/null <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1, default: 1}
              color: {type: string}
          status:
            type: object
            properties:
              ready: {type: boolean}
EOF
run_capture k wait --for=condition=Established crd/widgets.example.com --timeout=20s
expect_eq "$RC" 0 "CRD established: $ERR"
run_capture k apply -f - <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {color: blue}
EOF
expect_eq "$RC" 0 "custom resource created: $ERR"
run_capture k get wd w1 -o jsonpath='{.spec.size} {.spec.color}'
expect_eq "$OUT" "1 blue" "custom resource defaults"
run_capture k get widgets
expect_contains "$OUT" "SIZE" "printer columns"
run_capture k apply -f - <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w2}
spec: {size: 0}
EOF
expect_contains "$ERR" "spec.size" "custom resource schema validation"
# The garbage collector follows custom owners: a ConfigMap owned by w1 goes with it.
w1_uid=$(k get widget w1 -o jsonpath='{.metadata.uid}')
run_capture k apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned-by-w1
  ownerReferences: [{apiVersion: example.com/v1, kind: Widget, name: w1, uid: "$w1_uid"}]
EOF
expect_eq "$RC" 0 "configmap owned by a custom resource: $ERR"
k delete widget w1 >/dev/null
configmap_gone() { ! k get configmap owned-by-w1; }
wait_for 30 "the dependent of a deleted custom resource to be collected" configmap_gone
k delete crd widgets.example.com --wait --timeout=30s >/dev/null
run_capture k get widgets
expect_eq "$RC" 1 "custom resources go with their CRD"

# Typed commands (create <kind>, run, expose, autoscale): kubectl 1.32+ sends their bodies as
# protobuf (application/vnd.kubernetes.protobuf), older ones as JSON; the objects are the same.
client_minor=$(k version --client -o json |
  python3 -c 'import json, re, sys; print(re.sub(r"\D", "", json.load(sys.stdin)["clientVersion"]["minor"]))')
run_capture k create configmap typed --from-literal=a=b -v=8
expect_eq "$RC" 0 "create configmap: $ERR"
if [ "$client_minor" -ge 32 ]; then
  expect_contains "$ERR" "Content-Type: application/vnd.kubernetes.protobuf" "typed bodies are protobuf"
fi
run_capture k get cm typed -o jsonpath='{.data.a}'
expect_eq "$OUT" "b" "typed configmap"
run_capture k create deployment typed --image=nginx:1.25 --replicas=0
expect_eq "$RC" 0 "create deployment: $ERR"
run_capture k get deploy typed -o jsonpath='{.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.strategy.rollingUpdate.maxSurge} {.spec.template.spec.containers[0].imagePullPolicy}'
expect_eq "$OUT" "0 nginx:1.25 25% IfNotPresent" "typed deployment: replicas 0 kept, defaults applied"
run_capture k create secret generic typed --from-literal=p=q
expect_eq "$RC" 0 "create secret: $ERR"
run_capture k get secret typed -o jsonpath='{.data.p} {.type}'
expect_eq "$OUT" "cQ== Opaque" "typed secret"
# stringData is write-only: merged into data (its values win), never stored or shown.
run_capture k apply -f - <<'YAML'
apiVersion: v1
kind: Secret
metadata: {name: strdata}
data: {a: b2xk, keep: eA==}
stringData: {a: new, b: two}
YAML
expect_eq "$RC" 0 "apply secret with stringData: $ERR"
run_capture k get secret strdata -o jsonpath='{.data.a} {.data.b} {.data.keep} [{.stringData}]'
expect_eq "$OUT" "bmV3 dHdv eA== []" "stringData merged into data"
# An immutable secret's content cannot change, nor can it become mutable again.
run_capture k patch secret strdata -p '{"immutable":true}'
expect_eq "$RC" 0 "make the secret immutable: $ERR"
run_capture k patch secret strdata -p '{"stringData":{"a":"changed"}}'
expect_eq "$RC" 1 "patch of an immutable secret"
expect_contains "$ERR" 'data: Forbidden: field is immutable when `immutable` is set' "immutable secret"
run_capture k patch secret strdata -p '{"immutable":false}'
expect_eq "$RC" 1 "immutable back to false"
expect_contains "$ERR" 'immutable: Forbidden: field is immutable when `immutable` is set' "immutable flag"
run_capture k create service clusterip typed --tcp=80:8080
expect_eq "$RC" 0 "create service: $ERR"
run_capture k get svc typed -o jsonpath='{.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.ports[0].protocol} {.spec.type}'
expect_eq "$OUT" "80 8080 TCP ClusterIP" "typed service"
run_capture k create namespace typed
expect_eq "$RC" 0 "create namespace: $ERR"
run_capture k create job typed --image=busybox -- echo hi
expect_eq "$RC" 0 "create job: $ERR"
run_capture k get job typed -o jsonpath='{.spec.template.spec.containers[0].command} {.spec.template.spec.restartPolicy}'
expect_eq "$OUT" '["echo","hi"] Never' "typed job"
run_capture k run typed --image=busybox --labels=tier=x
expect_eq "$RC" 0 "kubectl run: $ERR"
run_capture k get pod typed -o jsonpath='{.metadata.labels.tier} {.spec.containers[0].image} {.spec.restartPolicy}'
expect_eq "$OUT" "x busybox Always" "kubectl run"
run_capture k expose deployment typed --port=81 --target-port=8081 --name=typed-exposed
expect_eq "$RC" 0 "kubectl expose: $ERR"
run_capture k get svc typed-exposed -o jsonpath='{.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}'
expect_eq "$OUT" "81 8081 typed" "kubectl expose"
# Before 1.33 autoscale posts autoscaling/v1, served from the stored autoscaling/v2 form.
run_capture k autoscale deployment typed --min=1 --max=3 --cpu-percent=50
expect_eq "$RC" 0 "kubectl autoscale: $ERR"
run_capture k get hpa typed -o jsonpath='{.apiVersion} {.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}'
expect_eq "$OUT" "autoscaling/v2 3 50" "kubectl autoscale, read as autoscaling/v2"
run_capture k get horizontalpodautoscalers.v1.autoscaling typed -o jsonpath='{.apiVersion} {.spec.targetCPUUtilizationPercentage}'
expect_eq "$OUT" "autoscaling/v1 50" "the same autoscaler read as autoscaling/v1"
run_capture k get hpa typed
expect_contains "$OUT" "cpu: <unknown>/50%" "hpa table"
# A v2-only metric survives an update through autoscaling/v1.
run_capture k patch hpa typed --type=json \
  -p '[{"op":"add","path":"/spec/metrics/-","value":{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"64Mi"}}}}]'
expect_eq "$RC" 0 "patch hpa: $ERR"
run_capture k patch horizontalpodautoscalers.v1.autoscaling typed --type=merge -p '{"spec":{"maxReplicas":4}}'
expect_eq "$RC" 0 "patch hpa through v1: $ERR"
run_capture k get hpa typed -o jsonpath='{.spec.maxReplicas} {.spec.metrics[*].resource.name}'
expect_eq "$OUT" "4 cpu memory" "v2 metrics kept across a v1 write"

# events.k8s.io/v1 and core/v1 are two views of the same Events.
cat >"$E2E_TMP/event.yaml" <<'EOF2'
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: typed-event}
eventTime: "2024-05-01T10:00:00.000000Z"
reportingController: example.com/tester
reportingInstance: tester-1
action: Check
reason: Checked
type: Normal
note: seen through both APIs
regarding: {apiVersion: apps/v1, kind: Deployment, name: typed, namespace: typed}
EOF2
run_capture k create -n typed -f "$E2E_TMP/event.yaml"
expect_eq "$RC" 0 "create events.k8s.io Event: $ERR"
run_capture k get events -n typed --field-selector involvedObject.name=typed,reason=Checked \
  -o jsonpath='{.items[*].message} {.items[*].reportingComponent}'
expect_eq "$OUT" "seen through both APIs example.com/tester" "the Event read as core/v1"
run_capture k get --raw "/apis/events.k8s.io/v1/namespaces/typed/events?fieldSelector=regarding.name%3Dtyped"
expect_contains "$OUT" '"note":"seen through both APIs"' "events.k8s.io list with a field selector"

# Pod priority: the built-in classes exist, admission fills spec.priority from the class (or
# the global default), and the class rules hold.
run_capture k get priorityclass system-node-critical -o jsonpath='{.value}'
expect_eq "$OUT" "2000001000" "built-in system-node-critical"
run_capture k create priorityclass typed-high --value=1000
expect_eq "$RC" 0 "create priorityclass: $ERR"
run_capture k create priorityclass typed-default --value=10 --global-default
expect_eq "$RC" 0 "create default priorityclass: $ERR"
run_capture k create priorityclass typed-default2 --value=11 --global-default
expect_contains "$ERR" "PriorityClass typed-default is already marked as default" "one default class"
run_capture k create priorityclass typed-huge --value=2000000000
expect_contains "$ERR" "maximum allowed value of a user defined priority is 1000000000" "value limit"
run_capture k delete priorityclass system-cluster-critical
expect_contains "$ERR" "system priority class and cannot be deleted" "system classes stay"
run_capture k run typed-prio -n typed --image=busybox --overrides='{"spec":{"priorityClassName":"typed-high"}}'
expect_eq "$RC" 0 "pod with a priority class: $ERR"
run_capture k run typed-dflt -n typed --image=busybox
run_capture k get pods -n typed typed-prio typed-dflt -o jsonpath='{.items[*].spec.priority} {.items[*].spec.priorityClassName}'
expect_eq "$OUT" "1000 10 typed-high typed-default" "priorities from the classes"
run_capture k run typed-none -n typed --image=busybox --overrides='{"spec":{"priorityClassName":"missing"}}'
expect_contains "$ERR" "no PriorityClass with name missing was found" "unknown class refused"
k delete priorityclass typed-default typed-high >/dev/null

# Deletion with --wait.
run_capture k delete deploy web --wait --timeout=20s
expect_contains "$OUT" 'deployment.apps "web" deleted' "delete"
run_capture k get deploy web
expect_contains "$ERR" "NotFound" "deleted object is gone"

stop_bg "$server_pid" TERM 15
expect_eq "$BG_RC" 0 "server exits cleanly on SIGTERM"
