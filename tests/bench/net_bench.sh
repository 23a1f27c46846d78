#!/usr/bin/env bash
# net_bench: service networking speed on one node. `orch server` with its embedded agent runs in
# a network namespace of its own (as the e2e tests do, with its own containerd and the busybox
# test image), so nothing here touches the host's network or ports. Measures, in one run:
#  1. requests/s of one client (ab) to a busybox httpd pod: direct to the pod IP, through the
#     ClusterIP and through the Ingress (host rule), interleaved over several rounds;
#  2. cluster DNS answers/s and latency (dns_load, UDP, through the kube-dns ClusterIP);
#  3. time from an Endpoints change (API write) to a connection through the ClusterIP showing it;
#  4. proxy sync time with N Services x M endpoints (from the agent's debug log), the time of one
#     single-Service change with all of them present, and (3) again with them present.
# Needs root, containerd, ab (apache2-utils), python3-kubernetes, and the dns_load target built.
#
#   tests/bench/net_bench.sh BUILD_DIR [--services N] [--endpoints M] [--changes K]
#       [--requests R] [--concurrency C] [--rounds X] [--dns-seconds S]
#   (NET_BENCH_LOGS=DIR keeps the servers' debug logs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$here/../e2e/lib.sh"
# shellcheck source=tests/e2e/agent_lib.sh
source "$here/../e2e/agent_lib.sh"

build=${1:?usage: $0 BUILD_DIR [--services N] [--endpoints M] [--changes K] [--requests R] [--concurrency C] [--rounds X] [--dns-seconds S]}
shift
services=1000 endpoints=10 changes=20 requests=5000 concurrency=16 rounds=3 dns_seconds=10
while (($#)); do
  case $1 in
    --services) services=$2 ;;
    --endpoints) endpoints=$2 ;;
    --changes) changes=$2 ;;
    --requests) requests=$2 ;;
    --concurrency) concurrency=$2 ;;
    --rounds) rounds=$2 ;;
    --dns-seconds) dns_seconds=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
dns_load="$(cd "$build" && pwd)/dns_load"
[[ -x "$dns_load" ]] || { echo "build the dns_load target first ($dns_load)" >&2; exit 1; }
command -v ab >/dev/null || { echo "ab (apache2-utils) is not installed" >&2; exit 1; }

agent_e2e_init "$build" netbench 10.218.0.0/16
# --debug: the proxy logs the time of every sync at debug level.
agent_start_server server --debug
log=$E2E_TMP/server.log
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average:$(uptime | sed 's/.*load average://')"
wait_jp 90 "node/$NODE" '{.status.conditions[?(@.type=="Ready")].status}' True

echo "--- a busybox httpd pod behind a Service and an Ingress"
{
  web_app web 1 'echo hello from orch > /www/index.html'
  web_service web http 80
  host_ingress web bench.example.com web 80
} >"$E2E_TMP/web.yaml"
k apply -f "$E2E_TMP/web.yaml" >/dev/null
wait_for 120 "the web pod ready" ready_n web 1
pod_ip=$(jp pods '{.items[0].status.podIP}')
cip=$(jp svc/web '{.spec.clusterIP}')
curl_ok() { in_ns curl -sf -m 3 -o /dev/null "$@"; }
wait_for 30 "the pod" curl_ok "http://$pod_ip:8080/"
wait_for 30 "the ClusterIP" curl_ok "http://$cip/"
wait_for 60 "the Ingress" curl_ok -H "Host: bench.example.com" "http://$NODE_IP/"

echo "--- requests/s, one client (ab -n $requests -c $concurrency, a new connection per request), $rounds rounds"
# ab_rps NAME URL [AB ARGS...]: requests/s of one ab run; failed requests end the bench.
ab_rps() {
  local name=$1 url=$2
  shift 2
  local out
  out=$(in_ns ab -q -r -n "$requests" -c "$concurrency" "$@" "$url" 2>&1) || fail "ab $name: $out"
  local failed non2xx
  failed=$(awk '/^Failed requests:/ {print $3}' <<<"$out")
  non2xx=$(awk '/^Non-2xx responses:/ {print $3}' <<<"$out")
  [[ "$failed" == 0 && -z "$non2xx" ]] || fail "ab $name: $failed failed, ${non2xx:-0} non-2xx: $out"
  awk '/^Requests per second:/ {print $4}' <<<"$out"
}
declare -A rps_all=()
for round in $(seq "$rounds"); do
  direct=$(ab_rps direct "http://$pod_ip:8080/")
  cluster=$(ab_rps clusterip "http://$cip/")
  ingress=$(ab_rps ingress "http://$NODE_IP/" -H "Host: bench.example.com")
  printf 'round %d: direct %s req/s, ClusterIP %s req/s (%.2f of direct), Ingress %s req/s (%.2f of direct)\n' \
    "$round" "$direct" "$cluster" "$(bc -l <<<"$cluster / $direct")" "$ingress" "$(bc -l <<<"$ingress / $direct")"
  rps_all[direct]+="$direct "
  rps_all[cluster]+="$cluster "
  rps_all[ingress]+="$ingress "
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_direct=$(median "${rps_all[direct]}")
m_cluster=$(median "${rps_all[cluster]}")
m_ingress=$(median "${rps_all[ingress]}")
printf 'median: direct %s req/s, ClusterIP %s req/s (%.2f), Ingress %s req/s (%.2f)\n' \
  "$m_direct" "$m_cluster" "$(bc -l <<<"$m_cluster / $m_direct")" "$m_ingress" "$(bc -l <<<"$m_ingress / $m_direct")"

echo "--- cluster DNS: A queries for web.default.svc.cluster.local at 10.43.0.10, ${dns_seconds} s"
for in_flight in 1 32; do
  echo -n "$in_flight in flight: "
  in_ns "$dns_load" 10.43.0.10 53 web.default.svc.cluster.local "$dns_seconds" "$in_flight"
done

echo "--- Endpoints change -> ClusterIP, $changes changes each way (few Services)"
in_ns /usr/bin/python3 "$here/net_bench.py" --kubeconfig "$KCFG" latency --endpoint "$pod_ip:8080" \
  --changes "$changes"

echo "--- $services Services x $endpoints endpoints"
# sync_lines: the proxy's "synced N service ports, M endpoints in X ms" lines so far.
sync_lines() { grep -F 'proxy: synced' "$log" || true; }
last_sync() { sync_lines | tail -1 | sed 's/.*proxy: synced //'; }
want_ports=$((services + 1))  # + kubernetes, web, probe (at least)
in_ns /usr/bin/python3 "$here/net_bench.py" --kubeconfig "$KCFG" populate --services "$services" \
  --endpoints "$endpoints"
all_synced() {
  local line ports eps
  line=$(last_sync)
  ports=${line%% service ports*}
  eps=${line#*ports, }
  eps=${eps%% endpoints*}
  [[ -n "$ports" && -n "$eps" ]] && ((ports >= want_ports && eps >= services * endpoints))
}
wait_for 600 "a sync with every Service and endpoint" all_synced
echo "first sync with all of them: $(last_sync)"
before=$(sync_lines | wc -l)
echo "syncs while they were created (service ports/endpoints/ms/chains written):"
sync_lines | sed 's/.*proxy: synced //' | tr -d '(' |
  awk '{printf " %s/%s/%s/%s", $1, $4, $7, $9} END {print ""}' | fold -s -w 100
nat_rules=$(in_ns iptables-save -t nat | grep -c '^-A' || true)
echo "nat rules in the table: $nat_rules"
# synced_endpoints N: the last sync programmed N endpoints.
synced_endpoints() {
  local line
  line=$(last_sync)
  line=${line#*ports, }
  [[ "${line%% endpoints*}" == "$1" ]]
}
eps_now=$(last_sync)
eps_now=${eps_now#*ports, }
eps_now=${eps_now%% endpoints*}
for i in 1 2 3; do
  in_ns /usr/bin/python3 "$here/net_bench.py" --kubeconfig "$KCFG" touch --service "bench-$i"
  eps_now=$((eps_now + 1))
  wait_for 120 "the sync after a one-Service change" synced_endpoints "$eps_now"
  echo "one Service's Endpoints changed, $i: $(last_sync)"
done
echo "--- Endpoints change -> ClusterIP, $changes changes each way, with the $services Services present"
in_ns /usr/bin/python3 "$here/net_bench.py" --kubeconfig "$KCFG" latency --endpoint "$pod_ip:8080" \
  --changes "$changes" --label "with $services Services: "
after=$(sync_lines | wc -l)
echo "syncs during it: $((after - before)); their times (ms):"
sync_lines | tail -n "$((after - before))" | sed 's/.* in \([0-9]*\) ms.*/\1/' | sort -n | tr '\n' ' '
echo

echo "--- the server restarted with the $services Services present: a full read and write"
stop_bg "$AGENT_SERVER" TERM 60
agent_start_server server2 --debug
log=$E2E_TMP/server2.log
wait_for 900 "the first sync after the restart" log_has "$log" "proxy: rules written"
grep -F "proxy: rules written" "$log" | head -1 | sed 's/.*proxy: //'

if [[ -n "${NET_BENCH_LOGS:-}" ]]; then  # keep the servers' logs (debug level)
  mkdir -p "$NET_BENCH_LOGS"
  cp "$E2E_TMP"/server*.log "$NET_BENCH_LOGS"/
fi
echo "--- cleanup"
k delete svc,endpoints -l bench=net --wait=false >/dev/null
k delete deployment web >/dev/null
k delete ingress web >/dev/null
agent_finish
in_ns "$ORCH" agent --cleanup
