#!/usr/bin/env bash
# e2e_runtime_cri: runs the runtime_cri_test binary (orch's containerd + CRI client against the
# real containerd) in a temp data dir, with the busybox image and a fake registry for the mirror
# check, then makes sure nothing it started survives: processes, mounts, the test bridge.
#
#   tests/e2e/runtime_cri_test.sh PATH/TO/runtime_cri_test
set -euo pipefail

test_binary=${1:?usage: $0 PATH/TO/runtime_cri_test}
here=$(cd "$(dirname "$0")" && pwd)
if ((EUID != 0)); then
  echo "SKIP: $(basename "$0") needs root (containerd)"
  exit 77
fi

tmp=$(mktemp -d /tmp/orch-e2e-runtime.XXXXXX)
registry_pid=""

stop_registry() {
  if [[ -n "$registry_pid" ]]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=""
  fi
  return 0
}

# The pids of processes whose command line names the temp dir (containerd, its shims); bash
# builtins only, so a scan costs no forks.
pids_naming_tmp() {
  local p args
  for p in /proc/[0-9]*; do
    mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
    [[ "${args[*]}" == *"$tmp"* && "${p#/proc/}" != "$$" ]] && echo "${p#/proc/}"
  done
  return 0
}

# Those processes and everything below them (the containers' processes), killed at once; then
# every mount under the temp dir, the test bridge and the temp dir.
cleanup() {
  local rc=$?
  set +e  # clean up as much as possible, whatever fails
  stop_registry
  local -a all
  mapfile -t all < <(pids_naming_tmp)
  if ((${#all[@]} > 0)); then
    local changed=1 p stat ppid
    while ((changed)); do
      changed=0
      for p in /proc/[0-9]*; do
        read -r stat <"$p/stat" 2>/dev/null || continue
        stat=${stat##*) }  # the fields after "(comm) "
        ppid=${stat#* }
        ppid=${ppid%% *}
        if [[ " ${all[*]} " == *" $ppid "* && " ${all[*]} " != *" ${p#/proc/} "* ]]; then
          all+=("${p#/proc/}")
          changed=1
        fi
      done
    done
    echo "cleanup: killing leftover processes ${all[*]}" >&2
    kill -KILL "${all[@]}" 2>/dev/null
    sleep 0.5
  fi
  local m
  for m in $(awk -v t="$tmp/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  # A sandbox whose containerd died before removing it leaves its network namespace (and veth)
  # behind: ours are the ones with an address on the test's subnet.
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    ip -n "${ns##*/}" -o addr show 2>/dev/null | grep -q "inet 10\.99\.0\." && ip netns del "${ns##*/}"
  done
  ip link del orchtest0 2>/dev/null
  # Cgroups of containers that were killed rather than removed (named after container IDs).
  local task id
  for task in "$tmp"/data/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/*; do
    [[ -e "$task" ]] || continue
    id=${task##*/}
    rmdir /sys/fs/cgroup/*/k8s.io/"$id" /sys/fs/cgroup/k8s.io/"$id" 2>/dev/null
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

data=$tmp/data
mkdir -p "$data/agent/images"
bash "$here/make_busybox_image.sh" "$tmp/busybox.tar"
gzip -c "$tmp/busybox.tar" >"$data/agent/images/busybox.tar.gz"
rm "$tmp/busybox.tar"

# A fake registry: logs each request with its Authorization header, challenges requests without
# one (HTTP Basic), and answers 404 to the rest.
cat >"$tmp/registry.py" <<'PY'
import http.server, sys
log_path, port_path = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        auth = self.headers.get("Authorization") or "-"
        with open(log_path, "a") as f:
            f.write(f"{self.command} {self.path} auth={auth}\n")
        if auth == "-" and self.path != "/v2/":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="orch-test"')
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = answer
    do_HEAD = answer
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_path + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_path + ".tmp", port_path)
server.serve_forever()
PY
python3 "$tmp/registry.py" "$tmp/registry.log" "$tmp/registry.port" &
registry_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/registry.port" ]] && break; sleep 0.05; done
port=$(cat "$tmp/registry.port")
cat >"$data/registries.yaml" <<YAML
mirrors:
  orch.test.mirror:
    endpoint:
      - "http://127.0.0.1:$port"
  "*":
    endpoint:
      - "http://127.0.0.1:$port"
configs:
  "127.0.0.1:$port":
    auth:
      username: orch-user
      password: orch-pass
YAML

ORCH_TEST_DATA_DIR=$data ORCH_TEST_IPAM_DIR=$tmp/ipam ORCH_TEST_REGISTRY_LOG=$tmp/registry.log \
  "$test_binary"

# The test stopped containerd itself: nothing of it may be left.
stop_registry
leftover=$(pids_naming_tmp)
[[ -z "$leftover" ]] || { echo "FAIL: processes left running: $leftover" >&2; exit 1; }
if awk -v t="$tmp/" 'index($5, t) == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
  echo "FAIL: mounts left under $tmp" >&2
  exit 1
fi
echo "PASS: $(basename "$0")"
