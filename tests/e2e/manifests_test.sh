#!/usr/bin/env bash
# k3s-style auto-deploy: manifests in <data-dir>/server/manifests are applied at start and when
# they change; `<file>.skip` turns a file off; a custom resource waits for its CRD; a broken file
# is reported and does not stop the others. Usage: manifests_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$1"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KUBECONFIG="$E2E_TMP/kubeconfig.yaml"
export KUBECACHEDIR="$E2E_TMP/kube-cache"
manifests="$E2E_TMP/data/server/manifests"
mkdir -p "$manifests"

# Present before the first start: a namespace and a config map in one file, a CRD and one of
# its objects in the same file (the object must wait for the CRD), a skipped file, a broken one.
cat >"$manifests/10-app.yaml" <<'EOF'
# comment-only documents and blank ones are fine
---
apiVersion: v1
kind: Namespace
metadata:
  name: addons
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: addons
data:
  level: "1"
EOF
cat >"$manifests/20-crd.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: first
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
EOF
cat >"$manifests/30-skipped.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
EOF
touch "$manifests/30-skipped.yaml.skip"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n' >"$manifests/40-broken.yaml"
echo "not a manifest" >"$manifests/README.txt"

start_bg server "$ORCH" server --disable-agent --data-dir "$E2E_TMP/data" \
  --https-listen-port "$port" --write-kubeconfig "$KUBECONFIG"
server_pid=$BG_PID
wait_for 30 "the API server to be ready" kubectl get --raw /readyz

wait_for 20 "the config map from 10-app.yaml" kubectl -n addons get configmap settings
run_capture kubectl -n addons get configmap settings -o jsonpath='{.data.level}'
expect_eq "$OUT" "1" "applied at start"
wait_for 30 "the custom resource once its CRD is established" kubectl get gadget first
run_capture kubectl get gadget first -o jsonpath='{.spec.size}'
expect_eq "$OUT" "3" "custom resource applied after its CRD"
run_capture kubectl get configmap skipped
expect_eq "$RC" 1 "a file with a .skip twin is not applied"
wait_for 10 "a warning about the broken file" log_has "$E2E_TMP/server.log" "40-broken.yaml"

# Changes are applied while running: an edit, a new file, and the removal of a .skip.
cat >"$manifests/10-app.yaml.tmp" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: addons
data:
  level: "2"
EOF
mv "$manifests/10-app.yaml.tmp" "$manifests/10-app.yaml"
wait_for 20 "the edited config map" \
  bash -c '[ "$(kubectl -n addons get configmap settings -o jsonpath={.data.level})" = 2 ]'
cat >"$manifests/50-new.json" <<'EOF'
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "from-json", "namespace": "addons"},
   "stringData": {"k": "v"}}]}
EOF
wait_for 20 "the secret from a new JSON file" kubectl -n addons get secret from-json
rm "$manifests/30-skipped.yaml.skip"
wait_for 20 "the file whose .skip was removed" kubectl get configmap skipped

# A user's change to a field the manifest sets is put back when the file changes again
# (the manifest owns its fields, as in k3s); deleting the file leaves the objects.
kubectl -n addons patch configmap settings --type merge -p '{"data":{"level":"9"}}' >/dev/null
sed -i 's/"2"/"3"/' "$manifests/10-app.yaml"
wait_for 20 "the manifest to win again" \
  bash -c '[ "$(kubectl -n addons get configmap settings -o jsonpath={.data.level})" = 3 ]'
rm "$manifests/10-app.yaml"
sleep 1
run_capture kubectl -n addons get configmap settings
expect_eq "$RC" 0 "deleting a manifest file keeps its objects"
expect_contains "$(cat "$E2E_TMP/server.log")" "manifests" "the deployer logs what it applies"
run_capture kubectl get --raw /readyz
expect_eq "$OUT" "ok" "the server is still healthy after a broken manifest"
stop_bg "$server_pid" TERM 15
expect_eq "$BG_RC" 0 "server exits cleanly on SIGTERM"
