#!/usr/bin/env bash
# A second node joins a running server with the join token: a wrong token and a token pinning
# another CA are refused with one line, the right token yields a node certificate signed by the
# cluster CA (stored 0600, reused at the next start, re-issued when the stored pair is broken and
# for the same name from a fresh data dir), the node registers, and an agent whose server is down
# waits for it until stopped.
# Usage: agent_join_test.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
e2e_init "$1"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
url="https://127.0.0.1:$port"
server_data="$E2E_TMP/server"
export KUBECONFIG="$E2E_TMP/admin.yaml"
export KUBECACHEDIR="$E2E_TMP/kube-cache"

start_bg server "$ORCH" server --disable-agent --data-dir "$server_data" --https-listen-port "$port" \
  -o "$KUBECONFIG" --node-name e2e-join-server --node-ip 127.0.0.1
server_pid=$BG_PID
wait_for 60 "the server to run" log_has "$E2E_TMP/server.log" "server: running"
token=$(head -n1 "$server_data/server/token")
[[ "$token" == K10*::server:* ]] || fail "token in k3s form: $token"
secret=${token##*:}

# agent NAME DATA-DIR TOKEN [extra flags]: runs `orch agent` in the foreground (bounded).
agent() {
  local name=$1 data=$2 tok=$3
  shift 3
  run_capture timeout 60 "$ORCH" agent --join "$url" --token "$tok" --data-dir "$data" \
    --node-name "$name" --node-ip 127.0.0.1 "$@"
}

error_lines() { printf '%s\n' "$1" | grep -c ' ERROR ' || true; }

# (a) A wrong token, bare or in full form with the right CA hash, is refused by the server.
agent e2e-bad "$E2E_TMP/bad" WRONG
((RC != 0)) || fail "an agent with a wrong token exited 0"
expect_contains "$ERR" "the server refused the token" "wrong bare token"
expect_eq "$(error_lines "$ERR")" 1 "error lines for a wrong token"
[[ ! -e "$E2E_TMP/bad/agent/client-node.crt" ]] || fail "a refused join stored a certificate"

agent e2e-bad "$E2E_TMP/bad" "${token%:*}:not-the-secret"
((RC != 0)) || fail "an agent with a wrong secret exited 0"
expect_contains "$ERR" "the server refused the token (HTTP 401" "wrong secret in a full token"

# (b) A token pinning another CA is refused before anything is sent.
other_hash=$(printf 'another CA' | sha256sum | cut -d' ' -f1)
agent e2e-bad "$E2E_TMP/bad" "K10${other_hash}::server:${secret}"
((RC != 0)) || fail "an agent with a token for another CA exited 0"
expect_contains "$ERR" "the server's CA does not match the token's hash" "CA mismatch"
expect_eq "$(error_lines "$ERR")" 1 "error lines for a CA mismatch"
expect_not_contains "$(cat "$E2E_TMP/server.log")" "client certificate for node e2e-bad" "server log"

# (c) The right token: the node's certificate, signed by the cluster CA, stored 0600.
node_data="$E2E_TMP/node1"
start_bg agent1 "$ORCH" agent --join "$url" --token "$token" --data-dir "$node_data" \
  --node-name e2e-join-node --node-ip 127.0.0.1
agent1_pid=$BG_PID
wait_for 60 "the agent to join" log_has "$E2E_TMP/agent1.log" "as node e2e-join-node; certificate in"
for f in client-node.crt client-node.key server-ca.crt; do
  expect_eq "$(stat -c %a "$node_data/agent/$f")" 600 "mode of $f"
done
cmp -s "$node_data/agent/server-ca.crt" "$server_data/server/tls/server-ca.crt" ||
  fail "the stored CA is not the cluster CA"
subject=$(openssl x509 -noout -subject -nameopt RFC2253 -in "$node_data/agent/client-node.crt")
expect_eq "$subject" "subject=CN=system:node:e2e-join-node,O=system:nodes" "node certificate subject"
openssl verify -CAfile "$node_data/agent/server-ca.crt" "$node_data/agent/client-node.crt" >/dev/null ||
  fail "the node certificate does not verify against the cluster CA"
expect_contains "$(cat "$E2E_TMP/server.log")" "issued a client certificate for node e2e-join-node" \
  "server log"
# The certificate is an identity the API server accepts.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$node_data/agent/server-ca.crt" \
  --cert "$node_data/agent/client-node.crt" --key "$node_data/agent/client-node.key" \
  "$url/api/v1/namespaces/default")
expect_eq "$code" 200 "an API call with the node certificate"
# The signer takes nothing from the CSR's subject and refuses bearer-less callers.
code=$(curl -s -o "$E2E_TMP/refused.json" -w '%{http_code}' --cacert "$node_data/agent/server-ca.crt" \
  -X POST -H 'Content-Type: application/json' -d '{"nodeName":"x","csr":"x"}' \
  "$url/v1-orch/client-node.crt")
expect_eq "$code" 401 "a join request without a token"
expect_contains "$(cat "$E2E_TMP/refused.json")" '"kind":"Status"' "the 401 body"

# The Node registers (the node agent runs on the joined HTTPS client).
wait_for 120 "node e2e-join-node to register" kubectl get node e2e-join-node
stop_bg "$agent1_pid" TERM 60
expect_eq "$BG_RC" 0 "exit code of the agent after SIGTERM"

# (d) A restart reuses the stored certificate without joining again.
cert_before=$(sha256sum <"$node_data/agent/client-node.crt")
start_bg agent1b "$ORCH" agent --join "$url" --token "$token" --data-dir "$node_data" \
  --node-name e2e-join-node --node-ip 127.0.0.1
agent1b_pid=$BG_PID
wait_for 60 "the restarted agent to load its certificate" \
  log_has "$E2E_TMP/agent1b.log" "using the node certificate in $node_data/agent/client-node.crt"
stop_bg "$agent1b_pid" TERM 60
expect_eq "$(sha256sum <"$node_data/agent/client-node.crt")" "$cert_before" "certificate after a restart"

# A stored key that does not fit the certificate (a crash between the writes) means a new join.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$node_data/agent/client-node.key" 2>/dev/null
start_bg agent1c "$ORCH" agent --join "$url" --token "$token" --data-dir "$node_data" \
  --node-name e2e-join-node --node-ip 127.0.0.1
agent1c_pid=$BG_PID
wait_for 60 "the agent to join again" log_has "$E2E_TMP/agent1c.log" "as node e2e-join-node; certificate in"
expect_contains "$(cat "$E2E_TMP/agent1c.log")" "the stored key does not belong to the stored certificate" \
  "why the agent joined again"
stop_bg "$agent1c_pid" TERM 60
[[ "$(sha256sum <"$node_data/agent/client-node.crt")" != "$cert_before" ]] || fail "no new certificate"

# (e) Re-joining under the same node name with the same token, from a fresh data dir, works.
start_bg agent2 "$ORCH" agent --join "$url" --token "$token" --data-dir "$E2E_TMP/node1-again" \
  --node-name e2e-join-node --node-ip 127.0.0.1
agent2_pid=$BG_PID
wait_for 60 "the re-join" log_has "$E2E_TMP/agent2.log" "as node e2e-join-node; certificate in"
stop_bg "$agent2_pid" TERM 60

# (f) With the server down the agent waits for it, one log line per attempt, until stopped.
stop_bg "$server_pid" TERM 60
start_bg agent3 "$ORCH" agent --join "$url" --token "$token" --data-dir "$E2E_TMP/node3" \
  --node-name e2e-join-late --node-ip 127.0.0.1
agent3_pid=$BG_PID
wait_for 30 "two attempts" bash -c "[[ \$(grep -c 'waiting for the server' '$E2E_TMP/agent3.log') -ge 2 ]]"
kill -0 "$agent3_pid" || fail "the agent gave up on an unreachable server"
stop_bg "$agent3_pid" TERM 20
expect_eq "$BG_RC" 0 "exit code of a waiting agent after SIGTERM"
