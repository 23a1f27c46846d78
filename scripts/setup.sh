#!/usr/bin/env bash
# Prepares a Debian 12 machine to build and test orch (installs only the missing packages), then
# configures and builds build/. Idempotent; prints nothing when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build tools
  g++ cmake ninja-build pkg-config git
  # libraries
  libboost-dev libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libfmt-dev catch2 libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libssl-dev
  # what a node runs, and what the e2e tests drive
  containerd runc containernetworking-plugins iptables iproute2 busybox-static etcd-server
  etcd-client python3-kubernetes curl ca-certificates
  # a local registry for the image pull tests (push with skopeo, htpasswd for credentials)
  docker-registry skopeo apache2-utils
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)
  [[ "$status" == "ii "* ]] || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  if ((EUID != 0)); then
    echo "setup: missing packages (run as root to install them): ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The build is silent unless it fails or warns (the build must stay warning-free); its full
# output is kept in build/setup.log.
mkdir -p build
log=build/setup.log
if [[ ! -x build/orch ]]; then echo "setup: building build/ (first build takes a few minutes)"; fi
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release &&
  cmake --build build -j"$(nproc)"; } >"$log" 2>&1; then
  { grep -E -B1 -A3 "error:|undefined reference|CMake Error|FAILED:" "$log" || tail -30 "$log"; } |
    head -60 >&2
  echo "setup: the build failed, full output in $log" >&2
  exit 1
fi
if grep -q "warning:" "$log"; then
  grep -E "warning:" "$log" >&2
  echo "setup: the build has warnings (full output in $log)" >&2
fi
