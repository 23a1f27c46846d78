#!/usr/bin/env bash
# e2e_service_account_tokens: service-account tokens as on a real cluster, on orch server with
# its embedded agent and containerd: `kubectl create token` (kubectl 1.27, 1.32 and 1.33) gives a
# token that `kubectl --token` uses as system:serviceaccount:default:default; garbage, expired
# (signed with the real key) and too-short requests are refused; a token bound to a pod dies
# with the pod; legacy kubernetes.io/service-account-token Secrets get a working token that dies
# with the Secret; every namespace gets kube-root-ca.crt; pods get the kube-api-access volume, and
# a busybox pod runs the host's kubectl (mounted by hostPath) with no kubeconfig: in-cluster
# config through the 10.43.0.1 Service.
#
#   tests/e2e/service_account_tokens_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" sat 10.216.0.0/16
agent_start_server server
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

CA=$DATA/server/tls/server-ca.crt
KEY=$DATA/server/tls/service.key
[[ -s "$KEY" ]] || fail "no service-account key at $KEY"
key_mode=$(stat -c %a "$KEY")
expect_eq "$key_mode" 600 "service.key mode"

# as_token TOKEN ARGS...: kubectl with nothing but the server, the CA and the token.
as_token() {
  local token=$1
  shift
  in_ns kubectl --kubeconfig /dev/null --server "https://127.0.0.1:6443" \
    --certificate-authority "$CA" --token "$token" "$@"
}
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
claims_of() {
  local p
  p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
  while ((${#p} % 4)); do p+="="; done
  base64 -d <<<"$p"
}

echo "--- kubectl create token: 1.27, 1.32 and 1.33"
for kubectl_bin in /usr/lib/google-cloud-sdk/bin/kubectl.1.27 kubectl \
  /usr/lib/google-cloud-sdk/bin/kubectl.1.33; do
  [[ "$kubectl_bin" == kubectl ]] || [[ -x "$kubectl_bin" ]] || continue
  run_capture in_ns "$kubectl_bin" --kubeconfig "$KCFG" create token default
  expect_eq "$RC" 0 "$kubectl_bin create token: $ERR"
  token=$OUT
  claims=$(claims_of "$token")
  expect_contains "$claims" '"sub":"system:serviceaccount:default:default"' "claims ($kubectl_bin)"
  expect_contains "$claims" '"iss":"https://kubernetes.default.svc.cluster.local"' "issuer"
  run_capture as_token "$token" get pods
  expect_eq "$RC" 0 "kubectl --token get pods ($kubectl_bin): $ERR"
done
claims=$(claims_of "$token")
expect_contains "$claims" '"aud":["https://kubernetes.default.svc.cluster.local","k3s"]' "audiences"
expect_contains "$claims" '"kubernetes.io":{"namespace":"default","serviceaccount":{"name":"default","uid":"' "kubernetes.io claim"

echo "--- the token's user is the service account (the server sees its groups)"
run_capture as_token "$token" get --raw /api/v1/namespaces/default/serviceaccounts/default
expect_eq "$RC" 0 "get the service account with its own token: $ERR"
expect_contains "$OUT" '"name":"default"' "service account"

echo "--- duration, audience, errors"
run_capture k create token default --duration 2h --audience https://vault.example
expect_eq "$RC" 0 "create token --duration 2h --audience: $ERR"
claims=$(claims_of "$OUT")
expect_contains "$claims" '"aud":["https://vault.example"]' "custom audience"
exp=$(sed -E 's/.*"exp":([0-9]+).*/\1/' <<<"$claims")
iat=$(sed -E 's/.*"iat":([0-9]+).*/\1/' <<<"$claims")
expect_eq "$((exp - iat))" 7200 "lifetime of --duration 2h"
# A token for another audience is not for the API server.
run_capture as_token "$OUT" get pods
expect_eq "$RC" 1 "a token for another audience"
expect_contains "$ERR" "Unauthorized" "another audience"
run_capture k create token default --duration 5m
expect_eq "$RC" 1 "create token --duration 5m"
expect_contains "$ERR" "may not specify a duration less than 10 minutes" "too short"
run_capture k create token nobody
expect_eq "$RC" 1 "create token for a missing account"
expect_contains "$ERR" 'serviceaccounts "nobody" not found' "missing account"

echo "--- garbage and expired tokens get 401"
run_capture as_token "not-a-token" get pods
expect_eq "$RC" 1 "garbage token"
expect_contains "$ERR" "Unauthorized" "garbage token"
run_capture as_token "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." get pods
expect_eq "$RC" 1 "alg none token"
sa_uid=$(jp serviceaccount/default '{.metadata.uid}')
kid=$(openssl pkey -in "$KEY" -pubout -outform DER | openssl dgst -sha256 -binary | b64url)
# forge EXP_OFFSET: a token signed with the cluster's own key, expiring EXP_OFFSET s from now.
forge() {
  local now header payload sig
  now=$(date +%s)
  header=$(printf '{"alg":"RS256","kid":"%s"}' "$kid" | b64url)
  payload=$(printf '{"aud":["https://kubernetes.default.svc.cluster.local"],"exp":%d,"iat":%d,"iss":"https://kubernetes.default.svc.cluster.local","kubernetes.io":{"namespace":"default","serviceaccount":{"name":"default","uid":"%s"}},"nbf":%d,"sub":"system:serviceaccount:default:default"}' \
    "$((now + $1))" "$((now - 7200))" "$sa_uid" "$((now - 7200))" | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$KEY" -binary | b64url)
  echo "$header.$payload.$sig"
}
run_capture as_token "$(forge 600)" get pods
expect_eq "$RC" 0 "a token made with the key, valid for 10 more minutes: $ERR"
run_capture as_token "$(forge -600)" get pods
expect_eq "$RC" 1 "a token that expired 10 minutes ago"
expect_contains "$ERR" "Unauthorized" "expired token"

echo "--- OIDC discovery of the issuer"
run_capture k get --raw /.well-known/openid-configuration
expect_contains "$OUT" '"issuer":"https://kubernetes.default.svc.cluster.local"' "openid-configuration"
run_capture k get --raw /openid/v1/jwks
expect_contains "$OUT" "\"kid\":\"$kid\"" "jwks names the key"

echo "--- kube-root-ca.crt in every namespace"
has_root_ca() { [[ "$(k get configmap kube-root-ca.crt -n "$1" -o 'jsonpath={.data.ca\.crt}')" == "$(cat "$CA")" ]]; }
wait_for 30 "kube-root-ca.crt in default" has_root_ca default
k create namespace team >/dev/null
wait_for 30 "kube-root-ca.crt in a new namespace" has_root_ca team
k delete configmap kube-root-ca.crt -n team >/dev/null
wait_for 30 "kube-root-ca.crt restored after deletion" has_root_ca team

echo "--- a pod gets its account and the kube-api-access volume"
cat >"$E2E_TMP/sleeper.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: orch.test/busybox:1
    command: [sh, -c, 'cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; ls /var/run/secrets/kubernetes.io/serviceaccount; exec sleep 3600']
YAML
k apply -f "$E2E_TMP/sleeper.yaml" >/dev/null
expect_eq "$(jp pod/sleeper '{.spec.serviceAccountName}')" default "serviceAccountName"
vol=$(jp pod/sleeper '{.spec.volumes[0].name}')
[[ "$vol" == kube-api-access-????? ]] || fail "volume name: $vol"
expect_eq "$(jp pod/sleeper '{.spec.containers[0].volumeMounts[0].mountPath}')" \
  /var/run/secrets/kubernetes.io/serviceaccount "mount path"
expect_eq "$(jp pod/sleeper '{.spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds}')" \
  3607 "token lifetime"
wait_jp 90 pod/sleeper '{.status.phase}' Running
wait_for 20 "the pod's listing of the volume" log_contains sleeper c "token"
expect_contains "$(pod_log sleeper c)" "default" "namespace file"
expect_contains "$(pod_log sleeper c)" "ca.crt" "ca.crt file"
pod_token=$(k exec sleeper -- cat /var/run/secrets/kubernetes.io/serviceaccount/token)
claims=$(claims_of "$pod_token")
expect_contains "$claims" "\"pod\":{\"name\":\"sleeper\",\"uid\":\"$(jp pod/sleeper '{.metadata.uid}')\"}" "pod binding"
expect_contains "$claims" '"warnafter":' "warnafter of a kube-api-access token"
expect_eq "$(k exec sleeper -- cat /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)" \
  "$(cat "$CA")" "ca.crt in the pod"
run_capture as_token "$pod_token" get pods
expect_eq "$RC" 0 "the pod's own token from the host: $ERR"

echo "--- a token bound to a pod dies with the pod"
pod_bound=$(k create token default --bound-object-kind Pod --bound-object-name sleeper)
k delete pod sleeper --grace-period=1 >/dev/null
sleeper_gone() { ! k get pod sleeper >/dev/null 2>&1; }
wait_for 60 "the sleeper pod to go" sleeper_gone
run_capture as_token "$pod_bound" get pods
expect_eq "$RC" 1 "token of a deleted pod"
expect_contains "$ERR" "Unauthorized" "token of a deleted pod"

echo "--- legacy service-account-token Secrets"
cat >"$E2E_TMP/legacy.yaml" <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder}
---
apiVersion: v1
kind: Secret
metadata:
  name: builder-token
  annotations: {kubernetes.io/service-account.name: builder}
type: kubernetes.io/service-account-token
YAML
k apply -f "$E2E_TMP/legacy.yaml" >/dev/null
has_legacy_token() { [[ -n "$(jp secret/builder-token '{.data.token}')" ]]; }
wait_for 30 "the legacy Secret's token" has_legacy_token
legacy=$(jp secret/builder-token '{.data.token}' | base64 -d)
expect_eq "$(jp secret/builder-token '{.data.namespace}' | base64 -d)" default "namespace in the Secret"
expect_eq "$(jp secret/builder-token '{.data.ca\.crt}' | base64 -d)" "$(cat "$CA")" "ca.crt in the Secret"
expect_eq "$(jp secret/builder-token '{.metadata.annotations.kubernetes\.io/service-account\.uid}')" \
  "$(jp serviceaccount/builder '{.metadata.uid}')" "uid annotation"
expect_contains "$(claims_of "$legacy")" '"iss":"kubernetes/serviceaccount"' "legacy issuer"
run_capture as_token "$legacy" get pods
expect_eq "$RC" 0 "the legacy token works: $ERR"
k delete secret builder-token >/dev/null
legacy_refused() { ! as_token "$legacy" get pods; }
# Successful authentications are remembered for 10 s, as upstream's token cache does.
wait_for 30 "the legacy token to stop working with its Secret" legacy_refused

echo "--- a pod uses in-cluster config: the host's kubectl in busybox, no kubeconfig"
kubectl_path=$(readlink -f "$(command -v kubectl)")
cat >"$E2E_TMP/incluster.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: incluster}
spec:
  restartPolicy: Never
  containers:
  - name: kubectl
    image: orch.test/busybox:1
    env: [{name: HOME, value: /tmp}]
    command: [/opt/kubectl, get, pods, -o, name]
    volumeMounts: [{name: kubectl, mountPath: /opt/kubectl, readOnly: true}]
  volumes:
  - name: kubectl
    hostPath: {path: $kubectl_path, type: File}
YAML
k apply -f "$E2E_TMP/incluster.yaml" >/dev/null
incluster_done() {
  local phase
  phase=$(jp pod/incluster '{.status.phase}')
  [[ "$phase" == Succeeded || "$phase" == Failed ]]
}
wait_for 120 "the in-cluster kubectl pod to finish" incluster_done
out=$(pod_log incluster kubectl)
expect_eq "$(jp pod/incluster '{.status.phase}')" Succeeded "in-cluster kubectl: $out"
expect_contains "$out" "pod/incluster" "in-cluster kubectl lists its own pod"

echo "--- automountServiceAccountToken: false"
k run quiet --image orch.test/busybox:1 --restart Never \
  --overrides '{"spec":{"automountServiceAccountToken":false}}' \
  --command -- sh -c 'ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1; true' >/dev/null
expect_eq "$(jp pod/quiet '{.spec.volumes}')" "" "no volume when automount is off"
wait_jp 90 pod/quiet '{.status.phase}' Succeeded
expect_contains "$(pod_log quiet quiet)" "No such file or directory" "no token in the pod"

agent_finish
echo "PASS service_account_tokens_test"
