#!/usr/bin/env bash
# Builds the images a local node runs, with no registry and no Docker engine, into
# docker-archive tarballs that hack/node.sh loads into the node's containerd:
#
#   python-base   Debian (debootstrap --variant=minbase) with python3, venv and pip: the
#                 Dockerfile's PYTHON_IMAGE
#   node-base     the same with Node.js: the Node.js sample handler's NODE_IMAGE
#   pause         the pod sandbox (hack/images/pause)
#   coredns       cluster DNS (hack/images/coredns)
#   kattle        the repository's Dockerfile, as written, on python-base
#   handler-node  samples/handlers/node/Dockerfile on node-base
#   handler-python
#                 samples/handlers/Dockerfile on python-base, from the repository's root:
#                 the Python sample handlers on the slim SDK (kattle-sdk)
#
# Everything is cached under ${KATTLE_CACHE:-~/.cache/kattle}/images: the bases by Debian suite,
# the others by a digest of what goes into them, so a rebuild happens only when they change.
# buildah keeps its storage there too (never in /var/lib/containers). Needs root.
#
# Usage: hack/images.sh [ensure|bases|list|dir]
#   ensure  build what is missing or out of date (default); prints the archive folder last
#   bases   only the Debian bases
#   list    print each image's name and archive
#   dir     print the archive folder
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${KATTLE_CACHE:-$HOME/.cache/kattle}
images="$cache/images"
archives="$images/archives"
# The image names pods use; `localhost/` so no runtime ever tries a registry for them.
prefix=localhost/kattle
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf '[images] %s\n' "$*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || { say "building images needs root (buildah, debootstrap); run as root"; exit 1; }
  local tool
  for tool in buildah debootstrap runc; do
    command -v "$tool" >/dev/null || {
      say "$tool is missing: apt-get install buildah debootstrap runc (hack/node.sh deps does it)"
      exit 1
    }
  done
}

# buildah with its storage in the cache and vfs layers: no overlay mounts are left on the host.
bah() {
  buildah --root "$images/storage" --runroot "$images/run" --storage-driver vfs "$@"
}

# A digest of files (and extra words), to tell whether an archive is out of date.
digest() {
  local words=$1; shift
  { echo "$words"; cat "$@"; } | sha256sum | cut -c1-16
}

archive_of() { echo "$archives/$1.tar"; }
stamp_of() { echo "$archives/$1.digest"; }

fresh() {
  local name=$1 want=$2
  [ -f "$(archive_of "$name")" ] && [ "$(cat "$(stamp_of "$name")" 2>/dev/null)" = "$want" ]
}

# Writes the image `name:tag` from local storage to its archive and records its digest.
save() {
  local name=$1 tag=$2 want=$3
  rm -f "$(archive_of "$name")"
  bah push --quiet "$prefix/$name:$tag" "docker-archive:$(archive_of "$name"):$prefix/$name:$tag" >/dev/null
  echo "$want" >"$(stamp_of "$name")"
  echo "$prefix/$name:$tag" >"$archives/$name.ref"
}

# A Debian root filesystem with the packages given, as an image of its own.
debian_base() {
  local name=$1 packages=$2 want root ctr
  want=$(digest "$DEBIAN_SUITE $mirror $packages" /dev/null)
  fresh "$name" "$want" && return 0
  root="$images/rootfs-$name"
  # A root filesystem debootstrap finished is kept until it is in an archive.
  if [ ! -f "$root.$want" ]; then
    rm -rf "$root"
    say "debootstrap $DEBIAN_SUITE with $packages (about 1.5 minutes)"
    debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$root" "$mirror" \
      >"$images/debootstrap-$name.log" 2>&1 || {
      say "debootstrap failed; last lines of $images/debootstrap-$name.log:"
      tail -n 20 "$images/debootstrap-$name.log" >&2
      exit 1
    }
    touch "$root.$want"
  fi
  # As the official python images: `python` is python3, and pip may install into a venv or
  # the system (PEP 668's marker would refuse the latter).
  if [ -x "$root/usr/bin/python3" ]; then
    ln -sf python3 "$root/usr/bin/python"
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*
  tar -C "$root" -cf "$root.tar" .
  ctr=$(bah from --quiet scratch)
  bah add --quiet "$ctr" "$root.tar" / >/dev/null
  bah config --env LANG=C.UTF-8 --cmd /bin/bash "$ctr"
  bah commit --quiet --rm "$ctr" "$prefix/$name:$DEBIAN_SUITE" >/dev/null
  rm -rf "$root" "$root.tar" "$root.$want"
  save "$name" "$DEBIAN_SUITE" "$want"
}

# One static binary of hack/binaries.sh --node as the whole image.
binary_image() {
  local name=$1 bindir=$2 want
  want=$(digest "$name" "$bindir/$name" "$here/images/$name/Containerfile")
  fresh "$name" "$want" && return 0
  say "building $prefix/$name"
  bah bud --quiet --layers -f "$here/images/$name/Containerfile" -t "$prefix/$name:node" "$bindir" >/dev/null
  save "$name" node "$want"
}

# The host's CA bundle and pip configuration, mounted for RUN steps only: on machines whose
# traffic to PyPI passes a TLS-intercepting proxy, pip needs them; nothing of it is in the image.
build_mounts() {
  local mounts=() file
  for file in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
    [ -f "$file" ] && mounts+=(-v "$file:$file:ro")
  done
  echo "${mounts[@]}"
}

# An image from a Dockerfile as written, with only the base image's name passed in.
dockerfile_image() {
  local name=$1 dockerfile=$2 context=$3 base_arg=$4 base=$5 want files
  # What the build reads: the Dockerfile, its base, and the files of the context that
  # .dockerignore lets in again (`!path` lines; all tracked files where it has none).
  local included=()
  if [ -f "$context/.dockerignore" ]; then
    mapfile -t included < <(sed -n 's#^!\(.*\)$#\1#p' "$context/.dockerignore")
  fi
  files=$(cd "$context" && git ls-files -z -- "${included[@]}" | xargs -0 sha256sum | sha256sum | cut -c1-16)
  want=$(digest "$files $(cat "$(stamp_of "$base")")" "$dockerfile")
  fresh "$name" "$want" && return 0
  say "building $prefix/$name:dev from ${dockerfile#"$repo"/} (about 1.5 minutes cold)"
  # shellcheck disable=SC2046 # the mounts are separate words on purpose
  bah bud --quiet --layers --network host --isolation chroot $(build_mounts) \
    --build-arg "$base_arg=$(cat "$archives/$base.ref")" \
    -f "$dockerfile" -t "$prefix/$name:dev" "$context" >"$images/build-$name.log" 2>&1 || {
    say "building $name failed; last lines of $images/build-$name.log:"
    tail -n 30 "$images/build-$name.log" >&2
    exit 1
  }
  save "$name" dev "$want"
}

names=(python-base node-base pause coredns kattle handler-node handler-python)

bases() {
  need_root
  mkdir -p "$archives"
  debian_base python-base python3,python3-venv,python3-pip,ca-certificates
  debian_base node-base nodejs,ca-certificates
}

ensure() {
  local bindir
  bases
  bindir=$("$here/binaries.sh" ensure --node | tail -n 1)
  binary_image pause "$bindir"
  binary_image coredns "$bindir"
  dockerfile_image kattle "$repo/Dockerfile" "$repo" PYTHON_IMAGE python-base
  dockerfile_image handler-node "$repo/samples/handlers/node/Dockerfile" "$repo/samples/handlers/node" \
    NODE_IMAGE node-base
  dockerfile_image handler-python "$repo/samples/handlers/Dockerfile" "$repo" PYTHON_IMAGE python-base
  echo "$archives"
}

case ${1:-ensure} in
  ensure) ensure ;;
  bases) bases ;;
  dir) echo "$archives" ;;
  list) for name in "${names[@]}"; do
          if [ -f "$(archive_of "$name")" ]; then echo "$(cat "$archives/$name.ref") $(archive_of "$name")"
          else echo "$name MISSING"; fi
        done ;;
  *) echo "usage: $0 [ensure|bases|list|dir]" >&2; exit 2 ;;
esac
