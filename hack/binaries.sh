#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl, etcd and helm from Go modules at the
# versions pinned in hack/versions.env, and caches them under ${KATTLE_CACHE:-~/.cache/kattle}
# so every clone of the repo reuses them. Binaries of the pinned version already found in
# $KUBEBUILDER_ASSETS or on PATH are linked instead of built.
#
# The node's binaries (kubelet, kube-proxy, kube-scheduler, CoreDNS, crictl and the pod
# sandbox's pause program, for hack/node.sh) are a second set with a folder of their own:
# pass --node to any command.
#
# Usage: hack/binaries.sh [ensure|path|list] [--node]
#   ensure  build what is missing (default); the last line printed is the bin directory
#   path    print the bin directory without building (exit 1 if anything is missing)
#   list    print each binary and whether it is present
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${KATTLE_CACHE:-$HOME/.cache/kattle}
tag="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
bindir="$cache/$tag/bin"
workdir="$cache/$tag/work"
k8s_minor=${KUBERNETES_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
staging_version="v0.${KUBERNETES_VERSION#v1.}"

binaries=(kube-apiserver kube-controller-manager kubectl etcd helm)
node_binaries=(kubelet kube-proxy kube-scheduler coredns crictl pause)
if [ "${2:-}" = --node ] || [ "${1:-}" = --node ]; then
  tag="node-k8s-${KUBERNETES_VERSION}_coredns-${COREDNS_VERSION}_crictl-${CRI_TOOLS_VERSION}"
  bindir="$cache/$tag/bin"
  binaries=("${node_binaries[@]}")
  [ "${1:-}" != --node ] || set -- ensure
fi

say() { printf '[binaries] %s\n' "$*" >&2; }

# Prints the version a binary reports, normalised to vX.Y.Z, or nothing.
reported_version() {
  local name=$1 file=$2 out=""
  case $name in
    kube-apiserver|kube-controller-manager|kubelet|kube-proxy|kube-scheduler)
      out=$("$file" --version 2>/dev/null || true) ;;
    coredns) out=$("$file" -version 2>/dev/null | head -n 1 || true) ;;
    crictl) out=$("$file" --version 2>/dev/null || true) ;;
    pause) [ -x "$file" ] && out=v0.0.0 ;;
    kubectl) out=$("$file" version --client 2>/dev/null | head -n 1 || true) ;;
    etcd) out=$("$file" --version 2>/dev/null | head -n 1 || true) ;;
    helm) out=$("$file" version --short 2>/dev/null || true) ;;
  esac
  grep -oE 'v?[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | head -n 1 | sed 's/^v*/v/'
}

pinned_version() {
  case $1 in
    kube-*|kubectl|kubelet) echo "$KUBERNETES_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    crictl) echo "$CRI_TOOLS_VERSION" ;;
    pause) echo v0.0.0 ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
  esac
}

# Links a binary of the pinned version from KUBEBUILDER_ASSETS or PATH, if there is one.
adopt_existing() {
  local name=$1 want candidate
  want=$(pinned_version "$name")
  for candidate in ${KUBEBUILDER_ASSETS:+"$KUBEBUILDER_ASSETS/$name"} $(type -ap "$name" 2>/dev/null || true); do
    [ -x "$candidate" ] || continue
    [ "$(reported_version "$name" "$candidate")" = "$want" ] || continue
    ln -sf "$(readlink -f "$candidate")" "$bindir/$name"
    say "using $candidate ($want)"
    return 0
  done
  return 1
}

go_build() {
  # -trimpath and stripped symbols as Kubernetes' own release builds; CGO off for static binaries.
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath "$@"
}

build_kubernetes() {
  # One wrapper module for both sets: the control plane's and the node's.
  local dir="$cache/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}/work/kubernetes" gomod name
  mkdir -p "$dir"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [ -n "$gomod" ] || { say "cannot fetch k8s.io/kubernetes@$KUBERNETES_VERSION from the Go module proxy"; exit 1; }
  {
    echo "module kattle.dev/hack/kubernetes-build"
    echo
    grep -E '^go ' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "tool ("
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
    echo "	k8s.io/kubernetes/cmd/kubectl"
    echo "	k8s.io/kubernetes/cmd/kubelet"
    echo "	k8s.io/kubernetes/cmd/kube-proxy"
    echo "	k8s.io/kubernetes/cmd/kube-scheduler"
    echo ")"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # folders; a wrapper module must replace each with the published v0.X.Y of the same release.
    echo "replace ("
    sed -nE 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+$#	\1 => \1 '"$staging_version"'#p' "$gomod"
    echo ")"
  } >"$dir/go.mod"
  say "resolving k8s.io/kubernetes $KUBERNETES_VERSION with $(grep -c ' => ' "$dir/go.mod") staging modules at $staging_version"
  (cd "$dir" && go mod tidy)
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$k8s_minor"
  for name in "$@"; do
    say "building $name $KUBERNETES_VERSION (a first build takes 5-15 minutes on 2 cores)"
    (cd "$dir" && go_build -ldflags "$ldflags" -o "$bindir/$name.tmp" "k8s.io/kubernetes/cmd/$name")
    mv "$bindir/$name.tmp" "$bindir/$name"
  done
}

build_etcd() {
  local dir="$workdir/etcd" gomod
  mkdir -p "$dir"
  gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module kattle.dev/hack/etcd-build"
    echo
    grep -E '^go ' "$gomod"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo
    echo "tool go.etcd.io/etcd/server/v3"
  } >"$dir/go.mod"
  say "building etcd $ETCD_VERSION (about 2 minutes)"
  (cd "$dir" && go mod tidy && go_build -ldflags "-s -w" -o "$bindir/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bindir/etcd.tmp" "$bindir/etcd"
}

build_helm() {
  local dir="$workdir/helm"
  mkdir -p "$dir"
  say "building helm $HELM_VERSION (about 3 minutes)"
  (cd "$dir" && GOBIN="$dir/bin" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mv "$dir/bin/helm" "$bindir/helm"
}

# CoreDNS from its module, with only the plugins hack/images/coredns/main.go names.
build_coredns() {
  local dir="$cache/$tag/work/coredns" gomod
  mkdir -p "$dir"
  cp "$here/images/coredns/main.go" "$dir/main.go"
  gomod=$(go mod download -json "github.com/coredns/coredns@$COREDNS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module kattle.dev/hack/coredns-build"
    echo
    grep -E '^go ' "$gomod"
    echo
    echo "require github.com/coredns/coredns $COREDNS_VERSION"
  } >"$dir/go.mod"
  say "building coredns $COREDNS_VERSION (about 2 minutes)"
  (cd "$dir" && go mod tidy && go_build -ldflags "-s -w" -o "$bindir/coredns.tmp" .)
  mv "$bindir/coredns.tmp" "$bindir/coredns"
}

build_crictl() {
  local dir="$cache/$tag/work/crictl"
  mkdir -p "$dir"
  say "building crictl $CRI_TOOLS_VERSION"
  (cd "$dir" && GOBIN="$dir/bin" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION")
  mv "$dir/bin/crictl" "$bindir/crictl"
}

build_pause() {
  say "building pause"
  (cd "$here/images/pause" && go_build -ldflags "-s -w" -o "$bindir/pause.tmp" .)
  mv "$bindir/pause.tmp" "$bindir/pause"
}

missing() {
  local name
  for name in "${binaries[@]}"; do
    [ -x "$bindir/$name" ] || echo "$name"
  done
}

ensure() {
  mkdir -p "$bindir"
  local todo=() name k8s=()
  for name in $(missing); do
    # pause is ours: a binary of that name elsewhere is something else.
    { [ "$name" != pause ] && adopt_existing "$name"; } || todo+=("$name")
  done
  if [ ${#todo[@]} -gt 0 ]; then
    command -v go >/dev/null || { say "Go is needed to build: ${todo[*]}"; exit 1; }
    say "building ${todo[*]} into $bindir (first time only; cached for every clone)"
    for name in "${todo[@]}"; do
      case $name in kube-*|kubectl|kubelet) k8s+=("$name") ;; esac
    done
    [ ${#k8s[@]} -eq 0 ] || build_kubernetes "${k8s[@]}"
    [[ " ${todo[*]} " != *" etcd "* ]] || build_etcd
    [[ " ${todo[*]} " != *" helm "* ]] || build_helm
    [[ " ${todo[*]} " != *" coredns "* ]] || build_coredns
    [[ " ${todo[*]} " != *" crictl "* ]] || build_crictl
    [[ " ${todo[*]} " != *" pause "* ]] || build_pause
  fi
  for name in "${binaries[@]}"; do
    local got
    got=$(reported_version "$name" "$bindir/$name")
    [ "$got" = "$(pinned_version "$name")" ] || { say "$name reports '$got', want $(pinned_version "$name")"; exit 1; }
  done
  echo "$bindir"
}

case ${1:-ensure} in
  ensure) ensure ;;
  path) [ -z "$(missing)" ] || { say "missing: $(missing | tr '\n' ' ')- run: hack/binaries.sh"; exit 1; }; echo "$bindir" ;;
  list) for name in "${binaries[@]}"; do
          if [ -x "$bindir/$name" ]; then echo "$name $bindir/$name"; else echo "$name MISSING"; fi
        done ;;
  *) echo "usage: $0 [ensure|path|list] [--node]" >&2; exit 2 ;;
esac
