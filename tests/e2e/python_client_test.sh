#!/usr/bin/env bash
# The Kubernetes Python client (Debian's python3-kubernetes) against orch server: typed
# list-then-watch from the list's resourceVersion, paging, typed objects of several groups, and
# errors as ApiException with the right status. Usage: python_client_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
PYTHON=/usr/bin/python3  # Debian's, which has python3-kubernetes
"$PYTHON" -c 'import kubernetes' 2>/dev/null || fail "python3-kubernetes is not installed"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
start_bg server "$ORCH" server --disable-agent --data-dir "$E2E_TMP/data" \
  --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG"
server_pid=$BG_PID
wait_for 30 "the API server to be ready" kubectl get --raw /readyz

cat >"$E2E_TMP/client.py" <<'EOF'
import sys, threading, time
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config()
core = client.CoreV1Api()
apps = client.AppsV1Api()
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)

ns = client.V1Namespace(metadata=client.V1ObjectMeta(name="py"))
core.create_namespace(ns)
for i in range(5):
    core.create_namespaced_config_map("py", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"cm{i}", labels={"set": "a"}), data={"i": str(i)}))

# Paging: limit and continue.
names, token = [], None
while True:
    page = core.list_namespaced_config_map("py", limit=2, _continue=token, label_selector="set=a")
    names += [cm.metadata.name for cm in page.items]
    token = page.metadata._continue
    if not token:
        break
check(names == [f"cm{i}" for i in range(5)], f"paged list: {names}")

# Every namespace gets the cluster CA as ConfigMap kube-root-ca.crt, as upstream's publisher does.
deadline = time.time() + 20
while True:
    try:
        root_ca = core.read_namespaced_config_map("kube-root-ca.crt", "py")
        break
    except ApiException as e:
        if e.status != 404 or time.time() > deadline:
            raise
        time.sleep(0.1)
check("BEGIN CERTIFICATE" in (root_ca.data or {}).get("ca.crt", ""), "kube-root-ca.crt holds the CA")

# List, then watch from the list's resourceVersion while another thread changes things.
listed = core.list_namespaced_config_map("py")
rv = listed.metadata.resource_version
check(sorted(cm.metadata.name for cm in listed.items) ==
      [f"cm{i}" for i in range(5)] + ["kube-root-ca.crt"],
      "list returns the five config maps and kube-root-ca.crt")

def mutate():
    time.sleep(0.5)
    core.create_namespaced_config_map("py", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="late"), data={"v": "1"}))
    core.patch_namespaced_config_map("late", "py", {"data": {"v": "2"}})
    core.delete_namespaced_config_map("cm0", "py")

threading.Thread(target=mutate).start()
seen = []
w = watch.Watch()
for event in w.stream(core.list_namespaced_config_map, "py", resource_version=rv,
                      timeout_seconds=10):
    obj = event["object"]
    seen.append((event["type"], obj.metadata.name, (obj.data or {}).get("v")))
    if len(seen) == 3:
        w.stop()
check(seen == [("ADDED", "late", "1"), ("MODIFIED", "late", "2"), ("DELETED", "cm0", None)],
      f"watch events after the list: {seen}")

# Typed objects of another group, read back through a typed list.
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=0,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))))
apps.create_namespaced_deployment("py", dep)
got = apps.list_namespaced_deployment("py").items
check([d.metadata.name for d in got] == ["web"], "typed deployment list")
check(got[0].spec.strategy.type == "RollingUpdate", "deployment defaults visible to the client")

# Errors come back as ApiException with the HTTP status.
try:
    core.read_namespaced_config_map("missing", "py")
    check(False, "reading a missing object must fail")
except ApiException as e:
    check(e.status == 404, f"missing object: status {e.status}")
try:
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
    check(False, "a duplicate create must fail")
except ApiException as e:
    check(e.status == 409 and "AlreadyExists" in e.body, f"duplicate: {e.status} {e.body}")

sys.exit(1 if failures else 0)
EOF
run_capture "$PYTHON" "$E2E_TMP/client.py"
expect_eq "$RC" 0 "python client: $ERR"

stop_bg "$server_pid" TERM 15
expect_eq "$BG_RC" 0 "server exits cleanly on SIGTERM"
