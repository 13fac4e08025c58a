#!/usr/bin/env bash
# Kattle in a real cluster on a laptop: a kind cluster, the image built and loaded, the Helm
# chart installed with the sample handlers, Cattle's instance lifecycle run and checked.
#
#   hack/kind-e2e.sh            # create, test, delete the cluster
#   KEEP=1 hack/kind-e2e.sh     # leave the cluster running to explore
#
# Needs docker, kind, kubectl and helm on PATH, and Python 3.11+ for `kattle run`.
set -euo pipefail

cluster=${KATTLE_KIND_CLUSTER:-kattle-e2e}
image=${KATTLE_IMAGE:-kattle:e2e}
namespace=kattle-system
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH (see the README's 'In a real cluster')"
done

cleanup() {
  if [ -z "${KEEP:-}" ]; then
    step "Deleting kind cluster $cluster"
    kind delete cluster --name "$cluster"
  else
    printf '\nThe cluster is still running: kubectl --context kind-%s get instances -A\n' "$cluster"
    printf 'Delete it with: kind delete cluster --name %s\n' "$cluster"
  fi
}

step "Creating kind cluster $cluster"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --wait 120s
fi
trap cleanup EXIT
kubectl config use-context "kind-$cluster" >/dev/null

step "Building $image and loading it into the cluster"
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

step "helm install kattle, with the sample handlers and Cattle's instance lifecycle"
helm upgrade --install kattle charts/kattle -n "$namespace" --create-namespace \
  --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
  --set image.pullPolicy=Never --set samples.enabled=true --wait --timeout 180s
kubectl -n "$namespace" rollout status deployment/kattle --timeout=120s
kubectl -n "$namespace" rollout status deployment/kattle-sample-handlers --timeout=120s
kubectl wait --for=condition=Ready --timeout=120s rd/instance rd/volume rd/ipaddress

step "The instance lifecycle: create, start, stop, restart, remove, purge"
venv=$(mktemp -d)
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet .
kattle() { "$venv/bin/kattle" "$@"; }

expect_state() {
  kubectl wait --for=jsonpath="{.status.state}=$2" --timeout=60s "instance/$1" >/dev/null \
    || fail "instance/$1 did not reach state $2 (it is $(kubectl get "instance/$1" -o jsonpath='{.status.state}'))"
  printf '  instance/%s is %s\n' "$1" "$2"
}

kubectl apply -f samples/objects/web-1.yaml
expect_state web-1 stopped
[ -n "$(kubectl get instance web-1 -o jsonpath='{.status.ip}')" ] || fail "instance.create did not allocate an IP"
kattle run instance.start instance/web-1 --wait
expect_state web-1 running
kattle run instance.stop instance/web-1 --wait
expect_state web-1 stopped
kattle run instance.start instance/web-1 --wait
kattle run instance.restart instance/web-1 --wait
expect_state web-1 running
kattle run instance.stop instance/web-1 --wait
kubectl delete instance web-1 --timeout=120s
kubectl get instance web-1 >/dev/null 2>&1 && fail "instance/web-1 was not deleted"
printf '  instance/web-1 was removed and purged\n'

step "A forbidden image is refused by the pre-listener; onError stops it"
kubectl apply -f samples/objects/forbidden-1.yaml
expect_state forbidden-1 stopped
if kattle run instance.start instance/forbidden-1 --wait; then
  fail "instance.start of a forbidden image succeeded"
fi
expect_state forbidden-1 stopped
kubectl delete instance forbidden-1 --timeout=120s

step "Metrics"
kubectl -n "$namespace" port-forward svc/kattle-metrics 18080:8080 >/dev/null 2>&1 &
forward=$!
sleep 2
curl -fsS http://127.0.0.1:18080/metrics | grep -E '^kattle_process_runs_finished_total' \
  || fail "no run counters on /metrics"
kill "$forward"

step "All checks passed"
