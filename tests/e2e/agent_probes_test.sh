#!/usr/bin/env bash
# e2e_agent_probes: probes, lifecycle hooks and downwardAPI volumes on orch's embedded agent with
# real containerd and kubectl: an exec readiness probe turns Ready once the container makes its
# file, a failing liveness probe restarts the container (Unhealthy and Killing events), an
# httpGet readiness probe on a named port against busybox httpd (with a tcpSocket liveness probe),
# a postStart hook writes a file the container sees, preStop runs before the TERM on deletion,
# and a downwardAPI volume holds the pod's labels and follows their changes.
#
#   tests/e2e/agent_probes_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" probes 10.214.0.0/16
agent_start_server server
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
mkdir -p "$E2E_TMP/shared"

cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: ready-later}
spec:
  nodeName: $NODE
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "sleep 4; touch /tmp/ready; sleep 3600"]
    readinessProbe:
      exec: {command: [test, -f, /tmp/ready]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "sleep 3600"]
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: $NODE
  containers:
  - name: httpd
    image: orch.test/busybox:1
    command: [sh, -c, "mkdir -p /www && sleep 3 && echo hello > /www/healthz && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /healthz, port: http, httpHeaders: [{name: X-Check, value: orch}]}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      initialDelaySeconds: 10
      periodSeconds: 2
---
apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  nodeName: $NODE
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "trap 'echo term >> /shared/prestop; exit 0' TERM; while [ ! -f /tmp/poststart ]; do sleep 0.1; done; echo \"seen \$(cat /tmp/poststart)\" > /shared/poststart; while true; do sleep 0.2; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "echo from-hook > /tmp/poststart"]}
      preStop:
        exec: {command: [sh, -c, "echo prestop >> /shared/prestop"]}
  volumes:
  - name: shared
    hostPath: {path: $E2E_TMP/shared, type: Directory}
---
apiVersion: v1
kind: Pod
metadata:
  name: downward
  labels: {app: probes, tier: e2e}
spec:
  nodeName: $NODE
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, "cat /etc/podinfo/labels > /shared/labels; cat /etc/podinfo/name > /shared/name; sleep 3600"]
    resources: {limits: {memory: 32Mi}}
    volumeMounts:
    - {name: podinfo, mountPath: /etc/podinfo}
    - {name: shared, mountPath: /shared}
  volumes:
  - name: podinfo
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
  - name: shared
    hostPath: {path: $E2E_TMP/shared, type: Directory}
YAML

echo "--- exec readiness probe: not ready until the container makes its file"
wait_jp 60 pod/ready-later '{.status.phase}' Running
expect_eq "$(jp pod/ready-later '{.status.containerStatuses[0].ready}')" false "ready before the file"
expect_eq "$(jp pod/ready-later '{.status.conditions[?(@.type=="Ready")].status}')" False \
  "Ready condition before the file"
k wait --for=condition=Ready pod/ready-later --timeout=60s >/dev/null
expect_eq "$(jp pod/ready-later '{.status.containerStatuses[0].ready}')" true "ready after the file"
expect_eq "$(jp pod/ready-later '{.status.conditions[?(@.type=="ContainersReady")].status}')" True \
  "ContainersReady condition"
expect_eq "$(jp pod/ready-later '{.status.containerStatuses[0].restartCount}')" 0 \
  "a readiness probe never restarts"
events=$(k get events --field-selector involvedObject.name=ready-later -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Readiness probe failed" "Unhealthy event while not ready"

echo "--- failing liveness probe: Unhealthy, Killing, restarts"
restarted() { (($(jp pod/unhealthy '{.status.containerStatuses[0].restartCount}') >= 1)); }
wait_for 90 "the unhealthy container to be restarted" restarted
events=$(k get events --field-selector involvedObject.name=unhealthy -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory" \
  "Unhealthy event"
expect_contains "$events" "Container c failed liveness probe, will be restarted" "Killing event"
expect_eq "$(jp pod/unhealthy '{.status.phase}')" Running "phase of the restarted pod"

echo "--- httpGet readiness probe against busybox httpd on a named port"
k wait --for=condition=Ready pod/web --timeout=60s >/dev/null
expect_eq "$(jp pod/web '{.status.containerStatuses[0].ready}')" true "httpd ready"
expect_eq "$(jp pod/web '{.status.containerStatuses[0].restartCount}')" 0 "tcp liveness keeps it"
events=$(k get events --field-selector involvedObject.name=web -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Readiness probe failed: Get \"http://" "httpGet failure while httpd starts"

echo "--- postStart writes a file the container sees"
wait_for 60 "the container to see the postStart file" grep -q "seen from-hook" "$E2E_TMP/shared/poststart"
expect_eq "$(jp pod/hooks '{.status.phase}')" Running "hooks pod phase"

echo "--- downwardAPI volume: the pod's labels and fields"
wait_for 60 "the downward container to copy its files" test -s "$E2E_TMP/shared/name"
expect_eq "$(cat "$E2E_TMP/shared/labels")" $'app="probes"\ntier="e2e"' "labels file"
expect_eq "$(cat "$E2E_TMP/shared/name")" downward "name file"
expect_eq "$(jp pod/downward '{.metadata.labels.app}'),$(jp pod/downward '{.metadata.labels.tier}')" \
  "probes,e2e" "the labels kubectl shows"
uid=$(jp pod/downward '{.metadata.uid}')
vol="$DATA/agent/pods/$uid/volumes/kubernetes.io~downward-api/podinfo"
expect_eq "$(cat "$vol/mem")" 32 "resourceFieldRef with divisor"
k label pod downward extra=yes >/dev/null
labels_follow() { [[ "$(cat "$vol/labels")" == *'extra="yes"'* ]]; }
wait_for 90 "the labels file to follow the new label" labels_follow

echo "--- preStop runs before the TERM on deletion"
k delete pod hooks --wait=false >/dev/null
gone() { [[ -z "$(jp pod/hooks '{.metadata.name}')" ]]; }
wait_for 45 "the hooks pod to be deleted" gone
expect_eq "$(cat "$E2E_TMP/shared/prestop")" $'prestop\nterm' "preStop, then the TERM trap"

agent_finish
