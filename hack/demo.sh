#!/usr/bin/env bash
# `make demo`: a local control plane with Kattle's API and Cattle's samples, shown step by step.
# The control plane keeps running afterwards so you can explore; the last lines say how to
# use and stop it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
state="$repo/.state/demo"
bin=$(hack/binaries.sh path)
kattle="$repo/.venv/bin/kattle"
export PATH="$bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if [ -e "$state/processes.json" ]; then
  step "Stopping the previous demo control plane"
  hack/controlplane.sh down "$state"
fi

step "Starting a local control plane (etcd, kube-apiserver with RBAC, kube-controller-manager)"
KUBECONFIG=$(hack/controlplane.sh up --dir "$state" | tail -n 1)
export KUBECONFIG

step "Installing Kattle's CRDs (generated from the API models)"
"$kattle" crds | kubectl apply --server-side -f -
kubectl wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=kattle

step "Applying Cattle's instance lifecycle, a volume and an ipaddress type, and handler registrations"
show kubectl apply --server-side --validate=strict -f samples/

step "Everything Kattle knows, in one list (category 'kattle')"
show kubectl get kattle

step "The instance lifecycle, process by process"
show kubectl get processdefinitions -o wide --sort-by=.metadata.name

step "The API documents itself"
show kubectl explain processdefinition.spec.transitioning

step "Bad definitions are refused at apply, with the field and the rule"
cat <<'YAML' | tee /dev/stderr | kubectl apply --server-side -f - || true
apiVersion: kattle.dev/v1alpha1
kind: ProcessDefinition
metadata:
  name: instance.reboot
spec:
  resourceType: instance
  start: [running, rebooting]
  transitioning: rebooting
  done: running
YAML

cat <<EOF2

The demo control plane is still running. To explore it:
  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH
  kubectl get kattle
Stop it with:
  hack/controlplane.sh down $state
EOF2
