#!/usr/bin/env bash
# The orch command line as a user meets it: version, help, one-line errors, the config file,
# check-config, kubectl pass-through, and a server that starts, serves kubectl, refuses a twin
# and stops cleanly.
# Usage: cli_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$@"

# Host defaults differ between machines; pin them so the test does not depend on the network.
# A random API port on loopback, so the server does not clash with a real one.
PORT=$((20000 + RANDOM % 20000))
# No embedded agent: this test is about the CLI and must not touch containerd or the host network.
NODE=(--node-name e2e-node --node-ip 127.0.0.1 --bind-address 127.0.0.1 --https-listen-port "$PORT"
      --disable-agent)
# The user's own config file must not leak into the test.
export ORCH_CONFIG_FILE="$E2E_TMP/none.yaml"
: >"$ORCH_CONFIG_FILE"

echo "--- version"
run_capture "$ORCH" version
expect_eq "$RC" 0 "orch version exit code"
expect_contains "$OUT" "orch version v" "orch version"
expect_contains "$OUT" "kubernetes v1." "orch version"

echo "--- help lists every command"
run_capture "$ORCH" --help
expect_eq "$RC" 0 "orch --help exit code"
for command in server agent version kubectl check-config datastore; do
  expect_contains "$OUT" "$command" "orch --help"
done
run_capture "$ORCH" server --help
expect_contains "$OUT" "--cluster-cidr" "orch server --help"

echo "--- unknown flag: one line, exit 1"
run_capture "$ORCH" server --no-such-flag
expect_eq "$RC" 1 "unknown flag exit code"
expect_lines "$ERR" 1 "unknown flag stderr"
expect_contains "$ERR" "orch: error: " "unknown flag stderr"
expect_contains "$ERR" "--no-such-flag" "unknown flag stderr"
expect_eq "$OUT" "" "unknown flag stdout"

echo "--- bad CIDR: one line, exit 1"
run_capture "$ORCH" server --cluster-cidr 10.42.0.0/33
expect_eq "$RC" 1 "bad CIDR exit code"
expect_lines "$ERR" 1 "bad CIDR stderr"
expect_contains "$ERR" "orch: error: --cluster-cidr" "bad CIDR stderr"
run_capture "$ORCH" server --service-cidr 10.42.0.0/24
expect_eq "$RC" 1 "overlapping CIDRs exit code"
expect_contains "$ERR" "overlap" "overlapping CIDRs stderr"

echo "--- agent without a token"
run_capture "$ORCH" agent --server https://127.0.0.1:6443
expect_eq "$RC" 1 "agent without token exit code"
expect_lines "$ERR" 1 "agent without token stderr"
expect_contains "$ERR" "--token" "agent without token stderr"

echo "--- config file keys are honoured, flags win"
cat >"$E2E_TMP/config.yaml" <<'YAML'
write-kubeconfig-mode: "0644"
https-listen-port: 7443
cluster-cidr: 10.52.0.0/16
node-label: [tier=edge, zone=a]
tls-san:
  - orch.example.com
YAML
run_capture "$ORCH" server -c "$E2E_TMP/config.yaml" "${NODE[@]}" --https-listen-port 9443 \
  --print-config
expect_eq "$RC" 0 "print-config exit code"
expect_contains "$OUT" "https-listen-port: 9443" "flag over file"
expect_contains "$OUT" 'write-kubeconfig-mode: "0644"' "file key"
expect_contains "$OUT" "cluster-cidr: 10.52.0.0/16" "file key"
expect_contains "$OUT" "node-label: [tier=edge, zone=a]" "file list"
expect_contains "$OUT" "tls-san: [orch.example.com]" "file list"
ORCH_CONFIG_FILE="$E2E_TMP/config.yaml" run_capture "$ORCH" server --node-ip 127.0.0.1 \
  --print-config
expect_contains "$OUT" "https-listen-port: 7443" "ORCH_CONFIG_FILE"
echo "bogus-key: 1" >"$E2E_TMP/bad.yaml"
run_capture "$ORCH" server -c "$E2E_TMP/bad.yaml"
expect_eq "$RC" 1 "unknown config key exit code"
expect_lines "$ERR" 1 "unknown config key stderr"
expect_contains "$ERR" "unknown key 'bogus-key'" "unknown config key stderr"

echo "--- check-config: one line per check"
run_capture "$ORCH" check-config
checks=$(printf '%s\n' "$OUT" | grep -cE '^(PASS|WARN|FAIL)  ' || true)
expect_eq "$checks" 10 "check-config check lines"
expect_contains "$OUT" "check-config: " "check-config summary"
if printf '%s\n' "$OUT" | grep -q '^FAIL'; then
  expect_eq "$RC" 1 "check-config exit code with a failure"
else
  expect_eq "$RC" 0 "check-config exit code"
fi

echo "--- kubectl: arguments pass through, admin kubeconfig only without the user's own"
make_kubeconfig() {  # FILE CONTEXT
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: $2, context: {cluster: c, user: u}}]
current-context: $2
YAML
}
make_kubeconfig "$E2E_TMP/admin.yaml" orch-admin
mkdir -p "$E2E_TMP/home/.kube" "$E2E_TMP/emptyhome"
make_kubeconfig "$E2E_TMP/home/.kube/config" user-own
run_capture env -u KUBECONFIG HOME="$E2E_TMP/emptyhome" ORCH_KUBECONFIG_OUTPUT="$E2E_TMP/admin.yaml" \
  "$ORCH" kubectl config current-context
expect_eq "$RC" 0 "kubectl exit code"
expect_eq "$OUT" "orch-admin" "kubectl uses the admin kubeconfig"
run_capture env -u KUBECONFIG HOME="$E2E_TMP/home" ORCH_KUBECONFIG_OUTPUT="$E2E_TMP/admin.yaml" \
  "$ORCH" kubectl config current-context
expect_eq "$OUT" "user-own" "kubectl keeps ~/.kube/config"
run_capture env -u KUBECONFIG HOME="$E2E_TMP/emptyhome" ORCH_KUBECONFIG_OUTPUT="$E2E_TMP/admin.yaml" \
  "$ORCH" kubectl config view -o jsonpath='{.contexts[0].name}' --minify
expect_eq "$OUT" "orch-admin" "kubectl flags pass through"
run_capture "$ORCH" kubectl --help
expect_eq "$RC" 0 "kubectl --help exit code"
expect_contains "$OUT" "kubectl controls the Kubernetes cluster manager" "kubectl --help"
run_capture env PATH=/nonexistent "$ORCH" kubectl get pods
expect_eq "$RC" 1 "missing kubectl exit code"
expect_lines "$ERR" 1 "missing kubectl stderr"
expect_contains "$ERR" "kubectl is not installed" "missing kubectl stderr"

echo "--- server: starts, opens the datastore, refuses a twin, stops on SIGTERM"
DATA="$E2E_TMP/data"
# Never the host's /etc/orch/orch.yaml: the kubeconfig goes to the temp dir.
KUBECONFIG_FILE="$E2E_TMP/kubeconfig.yaml"
start_bg server "$ORCH" server --data-dir "$DATA" -o "$KUBECONFIG_FILE" "${NODE[@]}" --debug
SERVER=$BG_PID
wait_for 20 "the server to open its datastore" log_has "$E2E_TMP/server.log" "datastore: ready"
wait_for 20 "the server to run" log_has "$E2E_TMP/server.log" "server: running"

echo "--- kubectl reaches the server through the admin kubeconfig"
[[ -f "$KUBECONFIG_FILE" ]] || fail "no kubeconfig at $KUBECONFIG_FILE"
expect_eq "$(stat -c %a "$KUBECONFIG_FILE")" 600 "default kubeconfig mode"
run_capture env -u KUBECONFIG HOME="$E2E_TMP/emptyhome" ORCH_KUBECONFIG_OUTPUT="$KUBECONFIG_FILE" \
  "$ORCH" kubectl get namespace default -o name
expect_eq "$RC" 0 "orch kubectl get namespace exit code: $ERR"
expect_eq "$OUT" "namespace/default" "orch kubectl get namespace"

run_capture "$ORCH" server --data-dir "$DATA" "${NODE[@]}"
expect_eq "$RC" 1 "second server exit code"
errors=$(printf '%s\n' "$ERR" | grep -c ' ERROR ' || true)
expect_eq "$errors" 1 "second server error lines"
expect_contains "$ERR" "datastore" "second server error"
kill -0 "$SERVER" || fail "the first server died when a second one started"

stop_bg "$SERVER" TERM 5
expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
log=$(cat "$E2E_TMP/server.log")
expect_contains "$log" "got SIGTERM, stopping" "server log"
expect_contains "$log" "datastore: stopped" "server log"

echo "--- server: SIGINT stops it too, and the data dir is reusable"
start_bg server2 "$ORCH" server --data-dir "$DATA" -o "$KUBECONFIG_FILE" \
  --write-kubeconfig-mode 0640 "${NODE[@]}"
wait_for 20 "the restarted server to run" log_has "$E2E_TMP/server2.log" "server: running"
expect_eq "$(stat -c %a "$KUBECONFIG_FILE")" 640 "--write-kubeconfig-mode"
stop_bg "$BG_PID" INT 5
expect_eq "$BG_RC" 0 "server exit code after SIGINT"

echo "--- datastore snapshot save and restore"
run_capture "$ORCH" datastore snapshot save "$E2E_TMP/snap.db" --data-dir "$DATA"
expect_eq "$RC" 0 "snapshot save exit code: $ERR"
[[ -s "$E2E_TMP/snap.db" ]] || fail "snapshot file is empty"
run_capture "$ORCH" datastore snapshot restore "$E2E_TMP/snap.db" --data-dir "$DATA"
expect_eq "$RC" 0 "snapshot restore exit code: $ERR"
run_capture "$ORCH" datastore snapshot restore "$E2E_TMP/missing.db" --data-dir "$DATA"
expect_eq "$RC" 1 "restore of a missing file exit code"
expect_lines "$ERR" 1 "restore of a missing file stderr"
