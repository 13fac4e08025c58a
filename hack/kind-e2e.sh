#!/usr/bin/env bash
# Kattle in a real cluster on a laptop: a kind cluster, the images built with Docker and
# loaded, then the same end-to-end tests `make e2e` runs on the local node (tests/cluster:
# helm install with the samples, the instance lifecycle through handler pods, metrics, pod
# faults, helm upgrade, a standby taking over, helm uninstall), so the two paths cannot drift.
#
#   hack/kind-e2e.sh            # create, test, delete the cluster
#   KEEP=1 hack/kind-e2e.sh     # leave the cluster running to explore
#
# Needs docker, kind, kubectl and helm on PATH, and Python 3.11+ (for the tests' venv).
set -euo pipefail

cluster=${KATTLE_KIND_CLUSTER:-kattle-e2e}
image=${KATTLE_IMAGE:-kattle:e2e}
handler_image=${KATTLE_HANDLER_NODE_IMAGE:-kattle-handler-node:e2e}
handler_python_image=${KATTLE_HANDLER_PYTHON_IMAGE:-kattle-handler-python:e2e}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH (see the README's 'In a real cluster')"
done

kubeconfig=$(mktemp)
cleanup() {
  rm -f "$kubeconfig"
  if [ -z "${KEEP:-}" ]; then
    step "Deleting kind cluster $cluster"
    kind delete cluster --name "$cluster"
  else
    printf '\nThe cluster is still running: kubectl --context kind-%s get pods -A\n' "$cluster"
    printf 'Delete it with: kind delete cluster --name %s\n' "$cluster"
  fi
}

step "Creating kind cluster $cluster"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
trap cleanup EXIT
kind get kubeconfig --name "$cluster" >"$kubeconfig"

step "Building $image, $handler_image and $handler_python_image and loading them into the cluster"
docker build -t "$image" .
docker build -t "$handler_image" samples/handlers/node
docker build -t "$handler_python_image" -f samples/handlers/Dockerfile .
kind load docker-image "$image" "$handler_image" "$handler_python_image" --name "$cluster"

step "The end-to-end tests (tests/cluster)"
make venv
KATTLE_E2E_KUBECONFIG=$kubeconfig KATTLE_E2E_IMAGE=$image KATTLE_E2E_HANDLER_NODE_IMAGE=$handler_image \
  KATTLE_E2E_HANDLER_PYTHON_IMAGE=$handler_python_image .venv/bin/pytest tests/cluster "$@"
step "All checks passed"
