#!/usr/bin/env bash
# e2e_ingress: Ingresses served by the node's embedded proxy on ports 80 and 443, with busybox
# httpd pods on orch server's embedded agent and the real kubectl: the default IngressClass
# "orch" (set on Ingresses created without a class), routing by host (exact and wildcard) and path
# (Prefix, Exact, longest wins), 404 when nothing matches, another class ignored, X-Forwarded-*
# headers, a streamed POST body and keep-alive, a WebSocket upgrade to a backend on a Service
# without selector (both directions), TLS by SNI from a Secret made by openssl and the default
# certificate otherwise, a default backend, 503 while the backend's pod is not ready, an Ingress
# update taking effect, status.loadBalancer in `kubectl get ingress`, and `--disable traefik`
# closing the ports.
#
#   tests/e2e/ingress_test.sh BUILD_DIR   (INGRESS_E2E_DEBUG=1: the server logs at debug level,
#   e.g. why the proxy answered 502; ORCH_E2E_LOGS=DIR keeps the logs of a failed run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/agent_lib.sh"

agent_e2e_init "${1:?usage: $0 BUILD_DIR}" ing 10.213.0.0/16
agent_start_server server ${INGRESS_E2E_DEBUG:+--debug}

wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

echo "--- the default IngressClass orch"
wait_jp 30 ingressclass/orch '{.spec.controller}' orch.io/ingress-controller
expect_eq "$(jp ingressclass/orch '{.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}')" \
  true "default class annotation"

echo "--- two web Deployments behind Services (port by number and by name)"
# pages TEXT: the shell lines that write "TEXT <hostname>" at /, /api, /api/v2 and /exact.
pages() {
  cat <<SH
for d in /www /www/api /www/api/v2 /www/exact; do
  mkdir -p \$d && echo "$1 \$(hostname)" > \$d/index.html
done
SH
}
# web-a also has a CGI that prints its environment (the request's headers) and the size of the
# body it got; web-b's readiness follows /ready.html.
cgi_env=$(
  cat <<'SH'
mkdir -p /www/cgi-bin
cat > /www/cgi-bin/env <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
env
echo BODY=$(wc -c)
EOF
chmod +x /www/cgi-bin/env
SH
)
{
  web_app web-a 2 "$(pages a)
$cgi_env"
  web_app web-b 1 "$(pages b)
echo ok > /www/ready.html" ready
  web_service web-a http 80
  web_service web-b web 8080
} >"$E2E_TMP/web.yaml"
k apply -f "$E2E_TMP/web.yaml" >/dev/null

wait_for 120 "two web-a pods ready" ready_n web-a 2
wait_for 120 "one web-b pod ready" ready_n web-b 1

echo "--- an Ingress with hosts, wildcards and paths"
cat >"$E2E_TMP/routes.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: routes}
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web-a, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: web-b, port: {name: web}}}}
      - {path: /api/v2, pathType: Prefix, backend: {service: {name: web-a, port: {number: 80}}}}
      - {path: /exact/, pathType: Exact, backend: {service: {name: web-b, port: {name: web}}}}
  - host: b.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web-b, port: {number: 8080}}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: web-b, port: {name: web}}}}
YAML
k apply -f "$E2E_TMP/routes.yaml" >/dev/null
# DefaultIngressClass admission: created without a class, it got the default one.
expect_eq "$(jp ingress/routes '{.spec.ingressClassName}')" orch "the class admission gave Ingress routes"

# req HOST PATH [CURL ARGS...]: "<code> <body>" of a request to the node's port 80.
req() {
  local host=$1 path=$2
  shift 2
  in_ns curl -s -m 10 -o "$E2E_TMP/body" -w '%{http_code}' -H "Host: $host" "$@" \
    "http://$NODE_IP$path" >"$E2E_TMP/code" 2>/dev/null || true
  echo "$(cat "$E2E_TMP/code") $(cat "$E2E_TMP/body" 2>/dev/null)"
}
answers() {
  local got
  got=$(req "$1" "$2")
  [[ "$got" == "$3"* ]] && return 0
  echo "  $1$2: got '${got:0:80}'" >>"$E2E_TMP/answers.log"
  return 1
}

wait_for 60 "a.example.com served through port 80" answers a.example.com / "200 a web-a-"
expect_contains "$(req a.example.com /index.html)" "200 a web-a-" "a.example.com/index.html"
expect_contains "$(req a.example.com /api/)" "200 b web-b-" "a.example.com/api/ (Prefix)"
expect_contains "$(req a.example.com /api/v2/)" "200 a web-a-" "a.example.com/api/v2/ (longest prefix)"
expect_contains "$(req a.example.com /apix)" "404 " "a.example.com/apix (no file in web-a, routed by /)"
expect_contains "$(req a.example.com /exact/)" "200 b web-b-" "a.example.com/exact/ (Exact)"
expect_contains "$(req A.Example.COM:80 /api/)" "200 b web-b-" "host case and port ignored"
expect_contains "$(req b.example.com /api/)" "200 b web-b-" "b.example.com/api/"
expect_eq "$(req b.example.com /)" "404 404 page not found" "b.example.com/ (no path matches)"
expect_eq "$(req nowhere.example.com /)" "404 404 page not found" "unknown host"
expect_contains "$(req x.wild.example.com /)" "200 b web-b-" "wildcard host"
expect_eq "$(req x.y.wild.example.com /)" "404 404 page not found" "wildcard covers one label"

echo "--- requests are spread over the ready pods"
declare -A seen=()
for _ in $(seq 10); do
  page=$(req a.example.com /)
  seen[$page]=1
done
expect_eq "${#seen[@]}" 2 "web-a pods answering 10 requests"

echo "--- X-Forwarded headers, a streamed POST body, keep-alive"
env_page=$(req a.example.com /cgi-bin/env)
expect_contains "$env_page" "HTTP_X_FORWARDED_FOR=$NODE_IP" "X-Forwarded-For"
expect_contains "$env_page" "HTTP_X_FORWARDED_PROTO=http" "X-Forwarded-Proto"
expect_contains "$env_page" "HTTP_X_FORWARDED_HOST=a.example.com" "X-Forwarded-Host"
head -c 3000000 /dev/urandom >"$E2E_TMP/upload"
post=$(req a.example.com /cgi-bin/env --data-binary "@$E2E_TMP/upload")
expect_contains "$post" "BODY=3000000" "3 MB POST body through the proxy"
run_capture in_ns curl -sv -m 10 -H "Host: a.example.com" "http://$NODE_IP/" "http://$NODE_IP/api/v2/"
expect_contains "$ERR" "Re-using existing connection" "keep-alive between requests"

echo "--- a WebSocket upgrade through the Ingress: bytes flow both ways"
# The backend is a WebSocket echo (tests/e2e/ws_echo.py) on the node's address, behind a Service
# without a selector whose Endpoints name it.
start_bg ws-echo nsenter --net="/run/netns/$AGENT_NS" python3 "$here/ws_echo.py" serve "$NODE_IP" 8765
cat >"$E2E_TMP/ws.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: ws}
spec:
  ports: [{port: 80, targetPort: 8765}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ws}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports: [{port: 8765}]
---
YAML
host_ingress ws ws.example.com ws 80 >>"$E2E_TMP/ws.yaml"
k apply -f "$E2E_TMP/ws.yaml" >/dev/null
ws_chat() {
  in_ns python3 "$here/ws_echo.py" client "$NODE_IP" 80 ws.example.com "ping through the ingress" \
    >"$E2E_TMP/ws.out" 2>&1
}
wait_for 30 "a WebSocket upgrade through ws.example.com" ws_chat
expect_eq "$(cat "$E2E_TMP/ws.out")" "hello from the backend
echo: ping through the ingress" "WebSocket frames backend->client and client->backend->client"
k delete ingress ws >/dev/null
k delete service ws >/dev/null

echo "--- another IngressClass's Ingress is ignored"
cat >"$E2E_TMP/other.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other}
---
YAML
host_ingress other other.example.com web-a 80 other >>"$E2E_TMP/other.yaml"
k apply -f "$E2E_TMP/other.yaml" >/dev/null
sleep 2
expect_eq "$(req other.example.com /)" "404 404 page not found" "Ingress of another class"
expect_eq "$(jp ingress/other '{.spec.ingressClassName}')" other "a class the user chose is kept"

echo "--- status.loadBalancer holds the node IP"
wait_jp 60 ingress/routes '{.status.loadBalancer.ingress[0].ip}' "$NODE_IP"
row=$(k get ingress routes --no-headers)
expect_contains "$row" "$NODE_IP" "kubectl get ingress ADDRESS"
expect_contains "$row" "80" "kubectl get ingress PORTS"
[[ -z "$(jp ingress/other '{.status.loadBalancer.ingress[0].ip}')" ]] || fail "the other class's Ingress got a status"

echo "--- TLS by SNI with a Secret made by openssl, the default certificate otherwise"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=secure.example.com" \
  -addext "subjectAltName=DNS:secure.example.com" \
  -keyout "$E2E_TMP/tls.key" -out "$E2E_TMP/tls.crt" 2>/dev/null
k create secret tls secure-tls --cert "$E2E_TMP/tls.crt" --key "$E2E_TMP/tls.key" >/dev/null
cat >"$E2E_TMP/secure.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: secure}
spec:
  tls:
  - {hosts: [secure.example.com], secretName: secure-tls}
  rules:
  - host: secure.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web-a, port: {name: http}}}}
YAML
k apply -f "$E2E_TMP/secure.yaml" >/dev/null
secure() {
  in_ns curl -s -m 10 --cacert "$E2E_TMP/tls.crt" \
    --resolve "secure.example.com:443:$NODE_IP" https://secure.example.com/ 2>&1
}
secure_ok() { [[ "$(secure)" == "a web-a-"* ]]; }
wait_for 60 "HTTPS for secure.example.com with its Secret's certificate" secure_ok
env_tls=$(in_ns curl -s -m 10 --cacert "$E2E_TMP/tls.crt" --resolve "secure.example.com:443:$NODE_IP" \
  https://secure.example.com/cgi-bin/env)
expect_contains "$env_tls" "HTTP_X_FORWARDED_PROTO=https" "X-Forwarded-Proto over TLS"
run_capture in_ns curl -sv -k -m 10 --resolve "a.example.com:443:$NODE_IP" https://a.example.com/
expect_contains "$ERR" "orch ingress default certificate" "default certificate for a host without TLS"
expect_contains "$OUT" "a web-a-" "HTTPS routed for a host without TLS"
run_capture in_ns curl -s -m 10 --cacert "$E2E_TMP/tls.crt" --resolve "a.example.com:443:$NODE_IP" \
  https://a.example.com/
[[ "$RC" != 0 ]] || fail "the default certificate was trusted as the Secret's"

echo "--- a default backend"
cat >"$E2E_TMP/fallback.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback}
spec:
  defaultBackend: {service: {name: web-b, port: {number: 8080}}}
YAML
k apply -f "$E2E_TMP/fallback.yaml" >/dev/null
wait_for 30 "unmatched requests to the default backend" answers nowhere.example.com / "200 b web-b-"
expect_contains "$(req b.example.com /)" "200 b web-b-" "b.example.com/ now served by the default backend"

echo "--- 503 while the backend's only pod is not ready, served again once it is"
pod_b=$(k get pods -l app=web-b -o 'jsonpath={.items[0].metadata.name}')
k exec "$pod_b" -- rm /www/ready.html
wait_for 60 "web-b not ready" ready_n web-b 0
wait_for 30 "503 from an unready backend" answers b.example.com /api/ "503 no available server"
k exec "$pod_b" -- sh -c 'echo ok > /www/ready.html'
wait_for 60 "web-b ready again" ready_n web-b 1
wait_for 30 "b.example.com served again" answers b.example.com /api/ "200 b web-b-"

echo "--- an Ingress update takes effect"
k patch ingress routes --type=json \
  -p '[{"op":"replace","path":"/spec/rules/0/http/paths/0/backend/service","value":{"name":"web-b","port":{"number":8080}}}]' >/dev/null
wait_for 30 "a.example.com/ now on web-b" answers a.example.com / "200 b web-b-"
k delete ingress routes >/dev/null
wait_for 30 "a.example.com/ after the delete: the default backend" answers a.example.com /api/v2/ "200 b web-b-"

echo "--- --disable traefik: the class goes and the ports close"
stop_bg "$AGENT_SERVER" TERM 30
expect_eq "$BG_RC" 0 "server exit code after SIGTERM"
AGENT_SERVER=""
agent_start_server server2 --disable traefik
wait_jp 60 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True
class_gone() { [[ -z "$(k get ingressclass orch -o name 2>/dev/null)" ]]; }
wait_for 60 "the IngressClass orch deleted" class_gone
port_closed() { ! in_ns curl -s -m 3 -o /dev/null "http://$NODE_IP/" 2>/dev/null; }
wait_for 30 "port 80 closed" port_closed
run_capture in_ns curl -s -m 3 "https://$NODE_IP/"
[[ "$RC" != 0 ]] || fail "port 443 still answers with ingress disabled"

echo "--- cleanup"
k delete ingress --all >/dev/null
k delete deployment web-a web-b >/dev/null
agent_finish
