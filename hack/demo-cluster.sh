#!/usr/bin/env bash
# `make demo-cluster`: Kattle as a user runs it, on a local single-node cluster (root only).
# Builds the images from the Dockerfiles (cached), brings up the node (hack/node.sh), installs
# the chart with the sample handlers, deploys the Node.js handler behind a Service, and takes
# an instance through its life with `kubectl` and `kubectl kattle`, every handler call going
# to a pod through cluster DNS. Then it tears everything down (KEEP=1 leaves it running).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

reason=$(python3 hack/node.py check) || { echo "demo-cluster: $reason" >&2; exit 1; }

step "Building the images (the Dockerfile on a debootstrap base, the sample handlers; cached)"
time hack/images.sh ensure >/dev/null
hack/images.sh list

step "Bringing up a node: kube-scheduler, containerd, kubelet, pod network, kube-proxy, CoreDNS"
KUBECONFIG=$(hack/node.sh up | tail -n 1)
export KUBECONFIG
PATH="$(hack/binaries.sh path):$PATH"
if [ -z "${KEEP:-}" ]; then
  trap 'step "Tearing down the node"; hack/node.sh down' EXIT
fi
show kubectl get nodes -o wide

step "helm install, with the image built here and Cattle's samples"
show helm install kattle charts/kattle -n kattle-system --create-namespace \
  --set image.repository=localhost/kattle/kattle --set image.tag=dev \
  --set image.pullPolicy=Never --set samples.enabled=true \
  --set samples.handlers.image.repository=localhost/kattle/handler-python \
  --set samples.handlers.image.tag=dev --set samples.handlers.image.pullPolicy=Never \
  --wait --timeout 180s
sed -e 's#image: kattle-handler-node:dev#image: localhost/kattle/handler-node:dev#' \
  samples/handlers/node/kubernetes.yaml | kubectl apply -n kattle-system -f -
kubectl -n kattle-system rollout status deployment/kattle-handler-node --timeout=120s >/dev/null
kubectl wait --for=condition=Ready --timeout=120s rd/instance >/dev/null
show kubectl get pods -n kattle-system -o wide
show kubectl get processhandlers

step "An instance's life: every handler call goes to a pod behind a Service"
show kubectl apply -f samples/objects/web-1.yaml
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/web-1 >/dev/null
show kubectl get instance web-1
show kubectl kattle run instance.start instance/web-1 --wait
show kubectl kattle run instance.restart instance/web-1 --wait
show kubectl get instance web-1 -o jsonpath='{.status.ip}  {.status.greeting}{"\n"}'
show kubectl kattle run instance.stop instance/web-1 --wait
show kubectl delete instance web-1
show kubectl events --for instance/web-1
show kubectl logs -n kattle-system deployment/kattle-handler-node

if [ -n "${KEEP:-}" ]; then
  printf '\nThe node is still up: export KUBECONFIG=%s\nStop it with: hack/node.sh down\n' "$KUBECONFIG"
fi
