#!/usr/bin/env bash
# A local single-node cluster on top of the local control plane: kube-scheduler, containerd,
# kubelet, a bridge pod network, kube-proxy and CoreDNS, running the images hack/images.sh
# builds (see hack/node.py). Needs root.
#   hack/node.sh deps                 # the Debian packages it needs (apt-get)
#   hack/node.sh up [--dir DIR]       # checks it can run, builds what is missing; prints the kubeconfig last
#   hack/node.sh down [DIR]           # stops it and undoes every change it made to the host
#   hack/node.sh check [--up] | packages | snapshot | restart-kubelet DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# One list, in node.py, which also names them when a node cannot run.
mapfile -t packages < <(python3 "$here/node.py" packages)

case ${1:-} in
  deps)
    missing=()
    for package in "${packages[@]}"; do
      dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && exit 0
    [ "$(id -u)" = 0 ] || { echo "node: installing ${missing[*]} needs root" >&2; exit 1; }
    command -v apt-get >/dev/null || { echo "node: needs Debian's ${missing[*]} (no apt-get here)" >&2; exit 1; }
    echo "[node] apt-get install ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
    ;;
  up)
    # Whether a node can start here (root, its tools, none up already), before minutes of builds.
    reason=$(python3 "$here/node.py" check --up) || { echo "node: $reason" >&2; exit 1; }
    "$here/binaries.sh" ensure >/dev/null
    "$here/binaries.sh" ensure --node >/dev/null
    "$here/images.sh" ensure >/dev/null
    exec python3 "$here/node.py" "$@"
    ;;
  *) exec python3 "$here/node.py" "$@" ;;
esac
