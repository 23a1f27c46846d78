#!/usr/bin/env bash
# e2e_agent_pods: orch server's embedded agent registers its node and runs real pods in its own
# containerd: env from a ConfigMap and the downward API, configMap/secret/emptyDir volumes (and
# a ConfigMap update reaching the files), DNS and hosts files, the pod network and a hostPort,
# init containers in order, a failing restartPolicy Never pod, a termination message, a pod the
# scheduler places, a host-network pod; --node-label and --node-taint on the Node; a
# PersistentVolumeClaim of the default local-path class whose data outlives its pod; a DaemonSet's
# pod on the node and a StatefulSet member whose local-path claim outlives a pod delete.
#
#   tests/e2e/agent_pods_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" pods 10.211.0.0/16
agent_start_server server --node-label zone=e2e --node-taint dedicated=e2e:PreferNoSchedule

echo "--- the node registers, gets a pod CIDR and turns Ready"
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
expect_eq "$(jp "node/$NODE" '{.status.conditions[?(@.type=="Ready")].reason}')" KubeletReady "Ready reason"
expect_eq "$(jp "node/$NODE" '{.metadata.labels.node-role\.kubernetes\.io/control-plane}')" true "control-plane label"
expect_eq "$(jp "node/$NODE" '{.metadata.labels.kubernetes\.io/os}')" linux "os label"
expect_eq "$(jp "node/$NODE" '{.metadata.labels.kubernetes\.io/hostname}')" "$NODE" "hostname label"
expect_eq "$(jp "node/$NODE" '{.status.addresses[?(@.type=="InternalIP")].address}')" "$NODE_IP" "InternalIP"
expect_contains "$(jp "node/$NODE" '{.status.nodeInfo.containerRuntimeVersion}')" "containerd://" "runtime version"
expect_eq "$(jp "node/$NODE" '{.status.nodeInfo.kubeletVersion}')" v1.32.0 "kubelet version"
expect_eq "$(jp "node/$NODE" '{.status.capacity.pods}')" 110 "pods capacity"
expect_eq "$(jp "node/$NODE" '{.status.conditions[?(@.type=="MemoryPressure")].status}')" False "MemoryPressure"
expect_eq "$(jp "node/$NODE" '{.metadata.labels.zone}')" e2e "--node-label"
expect_eq "$(jp "node/$NODE" '{.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}')" \
  "dedicated=e2e:PreferNoSchedule" "--node-taint"
pod_cidr=$(jp "node/$NODE" '{.spec.podCIDR}')
expect_contains "$pod_cidr" "10.211." "pod CIDR from --cluster-cidr"
net_prefix=${pod_cidr%.*}.  # 10.211.N.
expect_eq "$(jp "lease/$NODE" '{.spec.holderIdentity}' kube-node-lease)" "$NODE" "node lease holder"
expect_eq "$(jp "lease/$NODE" '{.spec.leaseDurationSeconds}' kube-node-lease)" 40 "node lease duration"
grep -q "\"bridge\": \"orch0\"" "$DATA/agent/etc/cni/net.d/10-orch.conflist" || fail "CNI config"

echo "--- a pod with env, volumes and DNS runs and logs"
cat >"$E2E_TMP/hello.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, file.txt: version-1}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: czNjcmV0}  # s3cret
---
apiVersion: v1
kind: Pod
metadata: {name: hello, labels: {app: hello}}
spec:
  nodeName: $NODE
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c]
    args:
    - |
      echo "\$GREETING from \$(POD_NAME) in \$POD_NS"
      echo "service \$KUBERNETES_SERVICE_HOST:\$KUBERNETES_SERVICE_PORT"
      echo "file \$(cat /etc/cfg/file.txt) secret \$(cat /etc/secret/password)"
      echo scratch > /scratch/x && echo "scratch \$(cat /scratch/x)"
      cat /etc/resolv.conf /etc/hosts
      ip addr show lo | grep -q UP && echo LOOPBACK_UP
      mkdir -p /www && echo "hello from the pod" > /www/index.html
      httpd -p 8080 -h /www
      sleep 3600
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: greeting}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NS
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    ports:
    - {containerPort: 8080, hostPort: 18080}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: secret, mountPath: /etc/secret}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - name: cfg
    configMap: {name: settings}
  - name: secret
    secret: {secretName: creds}
  - name: scratch
    emptyDir: {}
YAML
run_capture k apply -f "$E2E_TMP/hello.yaml"
expect_eq "$RC" 0 "apply hello: $ERR"
wait_jp 60 pod/hello '{.status.phase}' Running
wait_jp 30 pod/hello '{.status.conditions[?(@.type=="Ready")].status}' True
expect_eq "$(jp pod/hello '{.status.containerStatuses[0].ready}')" true "container ready"
expect_eq "$(jp pod/hello '{.status.containerStatuses[0].restartCount}')" 0 "restartCount"
expect_contains "$(jp pod/hello '{.status.containerStatuses[0].containerID}')" "containerd://" "containerID"
expect_eq "$(jp pod/hello '{.status.containerStatuses[0].image}')" "orch.test/busybox:1" "image"
expect_contains "$(jp pod/hello '{.status.containerStatuses[0].imageID}')" "sha256:" "imageID"
expect_eq "$(jp pod/hello '{.status.hostIP}')" "$NODE_IP" "hostIP"
expect_eq "$(jp pod/hello '{.status.qosClass}')" BestEffort "qosClass"
expect_eq "$(jp pod/hello '{.status.conditions[?(@.type=="Initialized")].status}')" True "Initialized"
pod_ip=$(jp pod/hello '{.status.podIP}')
expect_contains "$pod_ip" "$net_prefix" "podIP in the node's pod CIDR"
wait_for 20 "the pod's output" log_contains hello app "LOOPBACK_UP"
log=$(pod_log hello app)
expect_contains "$log" "stdout F hello from hello in default" "env from ConfigMap and fieldRef"
expect_contains "$log" "service 10.43.0.1:443" "KUBERNETES_SERVICE_* variables"
expect_contains "$log" "file version-1 secret s3cret" "configMap and secret volumes"
expect_contains "$log" "scratch scratch" "emptyDir"
expect_contains "$log" "nameserver 10.43.0.10" "cluster DNS"
expect_contains "$log" "search default.svc.cluster.local svc.cluster.local cluster.local" "DNS search"
expect_contains "$log" "options ndots:5" "DNS options"
expect_contains "$log" "$pod_ip	hello" "managed /etc/hosts"
events=$(k get events --field-selector involvedObject.name=hello -o custom-columns=R:.reason,M:.message --no-headers)
expect_contains "$events" "Created container app" "Created event"
expect_contains "$events" "Started container app" "Started event"
expect_contains "$events" "already present on machine" "Pulled event"

echo "--- the pod network: the pod's own IP and its hostPort on the node"
wait_for 20 "httpd on the pod IP" in_ns busybox wget -q -O "$E2E_TMP/direct.html" "http://$pod_ip:8080/"
expect_eq "$(cat "$E2E_TMP/direct.html")" "hello from the pod" "pod IP answer"
wait_for 20 "httpd through the hostPort" in_ns busybox wget -q -O "$E2E_TMP/hostport.html" "http://$NODE_IP:18080/"
expect_eq "$(cat "$E2E_TMP/hostport.html")" "hello from the pod" "hostPort answer"

echo "--- a ConfigMap update reaches the volume"
uid=$(jp pod/hello '{.metadata.uid}')
k patch configmap settings -p '{"data":{"file.txt":"version-2"}}' >/dev/null
cfg_file="$DATA/agent/pods/$uid/volumes/kubernetes.io~configmap/cfg/file.txt"
wait_for 30 "the new ConfigMap content in the volume" grep -qx version-2 "$cfg_file"

echo "--- init containers run one by one, in order, before the containers"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  nodeName: $NODE
  initContainers:
  - {name: first, image: orch.test/busybox:1, command: [sh, -c, "sleep 1; echo first >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: orch.test/busybox:1, command: [sh, -c, "echo second >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: main, image: orch.test/busybox:1, command: [sh, -c, "cat /work/order; echo main >> /work/order; sleep 3600"], volumeMounts: [{name: work, mountPath: /work}]}
  volumes: [{name: work, emptyDir: {}}]
YAML
wait_jp 60 pod/inits '{.status.phase}' Running
expect_eq "$(jp pod/inits '{.status.initContainerStatuses[*].state.terminated.reason}')" "Completed Completed" "init containers completed"
wait_for 20 "main's output" log_contains inits main "second"
log=$(pod_log inits main)
expect_contains "$log" "stdout F first" "first init ran"
[[ "$log" == *"first"*"second"* ]] || fail "init containers out of order: $log"

echo "--- restartPolicy Never: exit 3 fails the pod, with its termination message"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: fails}
spec:
  nodeName: $NODE
  restartPolicy: Never
  containers:
  - {name: job, image: orch.test/busybox:1, command: [sh, -c, "echo the end > /dev/termination-log; exit 3"]}
YAML
wait_jp 60 pod/fails '{.status.phase}' Failed
expect_eq "$(jp pod/fails '{.status.containerStatuses[0].state.terminated.exitCode}')" 3 "exit code"
expect_eq "$(jp pod/fails '{.status.containerStatuses[0].state.terminated.reason}')" Error "reason"
expect_eq "$(jp pod/fails '{.status.containerStatuses[0].state.terminated.message}')" "the end" "termination message"
expect_eq "$(jp pod/fails '{.status.containerStatuses[0].restartCount}')" 0 "no restart"
expect_eq "$(jp pod/fails '{.status.conditions[?(@.type=="Ready")].reason}')" PodCompleted "Ready reason"

echo "--- restartPolicy OnFailure: exit 0 completes the pod"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: completes}
spec:
  nodeName: $NODE
  restartPolicy: OnFailure
  containers:
  - {name: job, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, "echo done"]}
YAML
wait_jp 60 pod/completes '{.status.phase}' Succeeded
expect_eq "$(jp pod/completes '{.status.containerStatuses[0].state.terminated.reason}')" Completed "Completed"

echo "--- a pod without nodeName is scheduled here and runs"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: scheduled}
spec:
  containers:
  - {name: app, image: orch.test/busybox:1, command: [sleep, "3600"]}
YAML
wait_jp 60 pod/scheduled '{.spec.nodeName}' "$NODE"
wait_jp 60 pod/scheduled '{.status.phase}' Running

echo "--- a host-network pod runs on the node's own network"
cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  nodeName: $NODE
  hostNetwork: true
  containers:
  - {name: app, image: orch.test/busybox:1, command: [sh, -c, "ip -o addr show eth0; sleep 3600"]}
YAML
wait_jp 60 pod/hostnet '{.status.phase}' Running
expect_eq "$(jp pod/hostnet '{.status.podIP}')" "$NODE_IP" "host-network pod IP"
wait_for 20 "the node's interface seen from the pod" log_contains hostnet app "inet $NODE_IP/24"

echo "--- local-path storage: a claim without a class, bound on the pod's node, data kept"
wait_jp 30 storageclass/local-path '{.provisioner}' rancher.io/local-path
expect_eq "$(jp storageclass/local-path '{.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}')" true "default class"
expect_eq "$(jp storageclass/local-path '{.volumeBindingMode}')" WaitForFirstConsumer "binding mode"
cat >"$E2E_TMP/writer.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  containers:
  - name: app
    image: orch.test/busybox:1
    command: [sh, -c, "echo run >> /data/runs; echo runs=$(wc -l < /data/runs); sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
YAML
wait_jp 20 pvc/data '{.spec.storageClassName}' local-path
expect_eq "$(jp pvc/data '{.spec.volumeName}')" "" "claim waits for its first consumer"
k apply -f "$E2E_TMP/writer.yaml" >/dev/null
wait_jp 60 pod/writer '{.status.phase}' Running
wait_jp 30 pvc/data '{.status.phase}' Bound
claim_uid=$(jp pvc/data '{.metadata.uid}')
pv="pvc-$claim_uid"
expect_eq "$(jp pvc/data '{.spec.volumeName}')" "$pv" "volume name"
expect_eq "$(jp pvc/data '{.metadata.annotations.volume\.kubernetes\.io/selected-node}')" "$NODE" "selected node"
expect_eq "$(jp pvc/data '{.status.capacity.storage}')" 64Mi "claim capacity"
expect_eq "$(jp "pv/$pv" '{.status.phase}')" Bound "volume phase"
expect_eq "$(jp "pv/$pv" '{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}')" "$NODE" "volume on the node"
expect_eq "$(jp "pv/$pv" '{.spec.persistentVolumeReclaimPolicy}')" Delete "reclaim policy"
volume_dir="$DATA/storage/pvc-${claim_uid}_default_data"
expect_eq "$(jp "pv/$pv" '{.spec.hostPath.path}')" "$volume_dir" "volume folder"
wait_for 20 "the pod's file in the volume folder" grep -qx run "$volume_dir/runs"
wait_for 20 "the writer's output" log_contains writer app "runs=1"
k delete pod writer --grace-period=1 >/dev/null
k apply -f "$E2E_TMP/writer.yaml" >/dev/null
wait_jp 60 pod/writer '{.status.phase}' Running
wait_for 20 "the recreated pod's output" log_contains writer app "runs=2"
expect_eq "$(wc -l <"$volume_dir/runs")" 2 "both runs in the volume"
expect_eq "$(jp pvc/data '{.metadata.finalizers}')" '["kubernetes.io/pvc-protection"]' \
  "pvc-protection finalizer"
expect_eq "$(jp "pv/$pv" '{.metadata.finalizers}')" '["kubernetes.io/pv-protection"]' \
  "pv-protection finalizer"
# A claim in use is not removed until its pod is gone.
k delete pvc data --wait=false >/dev/null
sleep 2
expect_eq "$(jp pvc/data '{.status.phase}')" Bound "the used claim while deleted"
[[ -n "$(jp pvc/data '{.metadata.deletionTimestamp}')" ]] || fail "the claim is not being deleted"
k delete pod writer --grace-period=1 >/dev/null
pvc_gone() { ! k get pvc data >/dev/null 2>&1; }
wait_for 30 "the claim to go once its pod is gone" pvc_gone
pv_gone() { ! k get pv "$1" >/dev/null 2>&1; }
wait_for 30 "the volume to go with its claim (reclaim Delete)" pv_gone "$pv"
[[ ! -e "$volume_dir" ]] || fail "the volume folder stayed: $(ls -la "$volume_dir")"

echo "--- a DaemonSet runs its pod here; a StatefulSet's claim is Bound and outlives its pod"
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: daemon}
spec:
  selector: {matchLabels: {app: daemon}}
  template:
    metadata: {labels: {app: daemon}}
    spec:
      containers:
      - {name: app, image: orch.test/busybox:1, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: orch.test/busybox:1
        command: [sh, -c, "echo run >> /data/runs; echo runs=$(wc -l < /data/runs); sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: local-path
      resources: {requests: {storage: 32Mi}}
YAML
wait_jp 90 ds/daemon '{.status.numberReady}' 1
ds_pod=$(k get pods -l app=daemon -o 'jsonpath={.items[0].metadata.name}')
expect_eq "$(jp "pod/$ds_pod" '{.spec.nodeName}')" "$NODE" "the daemon pod's node"
expect_eq "$(jp "pod/$ds_pod" '{.status.phase}')" Running "the daemon pod runs"
expect_eq "$(jp ds/daemon '{.status.desiredNumberScheduled}/{.status.updatedNumberScheduled}')" 1/1 "daemon status"
wait_jp 90 pod/web-0 '{.status.phase}' Running
wait_jp 30 pvc/data-web-0 '{.status.phase}' Bound
expect_eq "$(jp pod/web-0 '{.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}')" data-web-0 "the member's claim"
expect_eq "$(jp "pv/$(jp pvc/data-web-0 '{.spec.volumeName}')" '{.status.phase}')" Bound "the claim's volume"
wait_for 30 "the member's output" log_contains web-0 app "runs=1"
web0_uid=$(jp pod/web-0 '{.metadata.uid}')
k delete pod web-0 --grace-period=1 >/dev/null
web0_replaced() { local uid; uid=$(jp pod/web-0 '{.metadata.uid}'); [[ -n "$uid" && "$uid" != "$web0_uid" ]]; }
wait_for 60 "web-0 recreated" web0_replaced
wait_jp 90 pod/web-0 '{.status.phase}' Running
expect_eq "$(jp pod/web-0 '{.spec.volumes[?(@.name=="data")].persistentVolumeClaim.claimName}')" data-web-0 "the same claim"
wait_for 30 "the recreated member sees the first run's data" log_contains web-0 app "runs=2"
k delete statefulset web --wait=false >/dev/null
k delete daemonset daemon --wait=false >/dev/null
k delete service web >/dev/null
sts_pods_gone() { [[ -z "$(k get pods -l 'app in (web,daemon)' -o name 2>/dev/null)" ]]; }
wait_for 60 "the set's and the daemon's pods to go" sts_pods_gone
k delete pvc data-web-0 >/dev/null
rm -rf "$DATA/storage"

echo "--- cleanup through the API leaves nothing behind"
agent_finish
[[ -z "$(ls "$DATA/agent/pods")" ]] || fail "pod folders left: $(ls "$DATA/agent/pods")"
