#!/usr/bin/env bash
# Starts or stops a local Kubernetes control plane (etcd, kube-apiserver with TLS and RBAC,
# kube-controller-manager) on free loopback ports. See hack/controlplane.py.
#   hack/controlplane.sh up [--dir DIR] [--no-controller-manager]   # prints the kubeconfig last
#   hack/controlplane.sh down KUBECONFIG_OR_DIR [--keep]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec python3 "$here/controlplane.py" "$@"
