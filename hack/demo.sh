#!/usr/bin/env bash
# `make demo`: Kattle end to end on a local control plane. Starts etcd, kube-apiserver and
# kube-controller-manager, installs the CRDs and Cattle's instance lifecycle, starts the
# operator and the sample handler service, takes an instance through create, start, stop,
# restart, remove and purge, printing each transition and handler call, then tears it all
# down. KEEP=1 leaves everything running to explore.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
state="${KATTLE_DEMO_STATE:-$repo/.state/demo}"
bin=$(hack/binaries.sh path)
venv="$repo/.venv/bin"
export PATH="$venv:$bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if [ -e "$state/processes.json" ]; then
  hack/controlplane.sh down "$state" >/dev/null 2>&1 || true
fi
pids=()
teardown() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  hack/controlplane.sh down "$state" >/dev/null 2>&1 || true
  echo "Stopped the operator, the handler service and the control plane."
}

step "Starting a local control plane (etcd, kube-apiserver with RBAC, kube-controller-manager)"
KUBECONFIG=$(hack/controlplane.sh up --dir "$state" | tail -n 1)
export KUBECONFIG
[ -n "${KEEP:-}" ] || trap teardown EXIT

step "Installing Kattle's CRDs, Cattle's instance lifecycle and the handler registrations"
kattle crds | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=kattle >/dev/null
show kubectl apply --server-side -f samples/instance.yaml -f samples/volume.yaml -f samples/nic.yaml \
  -f samples/handlers.yaml

step "A signing key for the sample handlers, in a Secret the registrations name"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/signing-key"
kubectl create namespace kattle-system >/dev/null
show kubectl create secret generic kattle-sample-handlers-signing -n kattle-system \
  --from-file=key="$state/signing-key"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "Starting the sample handler service on 127.0.0.1:$port and the operator"
KATTLE_SIGNING_KEY_FILE="$state/signing-key" \
  python samples/handlers/app.py --host 127.0.0.1 --port "$port" >"$state/logs/handlers.log" 2>&1 &
pids+=($!)
# The operator runs outside the cluster here: it reaches the handler Service through an override.
kattle operator --service-override "kattle-system/kattle-sample-handlers=http://127.0.0.1:$port" \
  >"$state/logs/operator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  kubectl get crd instances.resources.kattle.dev >/dev/null 2>&1 && break
  sleep 0.2
done
kubectl wait --for=condition=Ready --timeout=60s rd/instance rd/volume rd/nic >/dev/null
show kubectl get kattle

step "Creating an Instance: its create process runs (allocate an IP, then record it)"
show kubectl apply -f samples/objects/web-1.yaml
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/web-1 >/dev/null
show kubectl get instance web-1 -o custom-columns=NAME:.metadata.name,STATE:.status.state,IP:.status.ip
create_run=$(kubectl get instance web-1 -o jsonpath='{.status.lastRun.name}')
# A create run's record is written as the run ends, just after the object's done state.
kubectl wait --for=create --timeout=30s processinstance/"$create_run" >/dev/null
show kubectl get processinstance "$create_run" -o jsonpath='{range .status.handlerCalls[*]}{.phase} {.handler}: {.outcome} {.message}{"\n"}{end}'

for process in start stop start restart; do
  step "kattle run instance.$process instance/web-1 --wait"
  kattle run "instance.$process" instance/web-1 --wait
done

step "A pre-listener refuses to start a forbidden image; instance.start's onError (stop) takes over"
show kubectl apply -f samples/objects/forbidden-1.yaml
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/forbidden-1 >/dev/null
kattle run instance.start instance/forbidden-1 --wait || true
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/forbidden-1 >/dev/null
show kubectl get instance forbidden-1

step "Relations: db-1's volume (its child, by ownerReference) and nic (named in spec.nic)"
show kubectl apply -f samples/objects/db-1.yaml
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/db-1 >/dev/null
volume() {  # a Volume named $1 of $2 GiB, owned by db-1
  local uid
  uid=$(kubectl get instance db-1 -o jsonpath='{.metadata.uid}')
  kubectl apply -f - >/dev/null <<EOF
apiVersion: resources.kattle.dev/v1
kind: Volume
metadata:
  name: $1
  ownerReferences:
    - {apiVersion: resources.kattle.dev/v1, kind: Instance, name: db-1, uid: $uid}
spec: {sizeGb: $2}
EOF
  kubectl wait --for=jsonpath='{.status.state}'=inactive --timeout=60s "volume/$1" >/dev/null
  echo "volume/$1 ($2 GiB, owned by instance/db-1) created"
}
volume db-1-data 20
step "kattle run instance.start instance/db-1 --wait: the volume and the nic activate first"
kattle run instance.start instance/db-1 --wait
started=$(kubectl get instance db-1 -o jsonpath='{.status.lastRun.name}')
show kubectl get processinstance "$started" -o jsonpath='{range .status.children[*]}{.relation}: {.process} on {.resource}, {.phase} ({.exitReason}){"\n"}{end}'
show kubectl get volumes,nics

step "A volume too big to attach fails db-1's next start; its onError (stop) deactivates the rest"
kattle run instance.stop instance/db-1 --wait >/dev/null
volume db-1-huge 5000
kattle run instance.start instance/db-1 --wait || true
kubectl wait --for=jsonpath='{.status.state}'=stopped --timeout=60s instance/db-1 >/dev/null
show kubectl get volumes,nics

step "Deleting db-1: remove deactivates its volumes; garbage collection then deletes them"
show kubectl delete instance db-1 --wait=true
kubectl wait --for=delete --timeout=60s volume/db-1-data volume/db-1-huge >/dev/null
show kubectl get volumes,nics

step "Deleting web-1: the finalizer holds it while remove, then purge, run"
kattle run instance.stop instance/web-1 --wait >/dev/null
show kubectl delete instance web-1 --wait=true
show kubectl events --for instance/web-1

step "Every run, as Cattle's process log"
show kubectl get processinstances -o wide

if [ -n "${KEEP:-}" ]; then
  cat <<EOF

Everything is still running. To explore:
  export KUBECONFIG=$KUBECONFIG PATH=$venv:$bin:\$PATH
  kubectl get kattle; kubectl get instances; kubectl get processinstances
Logs: $state/logs/ (operator.log, handlers.log). Stop with:
  kill ${pids[*]}; hack/controlplane.sh down $state
EOF
fi
