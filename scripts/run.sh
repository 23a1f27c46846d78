#!/usr/bin/env bash
# Builds orch if needed, then runs `orch server` in the foreground with the defaults (arguments are
# passed to it, e.g. --debug). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Ask orch itself, so flags, ORCH_* variables and /etc/orch/config.yaml are all taken into account.
kubeconfig=$(build/orch server "$@" --print-config 2>/dev/null | sed -n 's/^write-kubeconfig: //p' ||
  true)
echo "orch: starting the server; admin kubeconfig: ${kubeconfig:-/etc/orch/orch.yaml}" \
  "(then, in another terminal: build/orch kubectl get namespaces)"
exec build/orch server "$@"
