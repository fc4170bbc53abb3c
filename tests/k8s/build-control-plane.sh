#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager 1.20.2 from Debian bookworm's `kubernetes` source package
# (the newest Kubernetes control plane the registries reachable here let us build: no Docker, no kind, no
# release downloads) and caches them outside the work tree. Installs with apt what the build and the control
# plane need (Go 1.19, etcd 3.4, openssl, curl). Prints the folder holding the binaries on standard output;
# everything else goes to standard error. The first run takes about 10 minutes on 2 cores; later runs return
# at once.
#
#   tests/k8s/build-control-plane.sh            -> /root/.cache/batchrunner/kubernetes-1.20.2/bin
#
# BATCHRUNNER_CACHE moves the cache (default ~/.cache/batchrunner).
set -euo pipefail

version=1.20.2
cache="${BATCHRUNNER_CACHE:-$HOME/.cache/batchrunner}/kubernetes-$version"
bin="$cache/bin"
# shellcheck source=tests/k8s/kubernetes-source.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubernetes-source.sh"

log() { echo "build-control-plane: $*" >&2; }

built() { [[ -x $bin/kube-apiserver && -x $bin/kube-controller-manager ]]; }

# The Debian packages still missing: those control-plane.sh runs, and those the build needs if it is to come.
missing_packages() {
  local -A package_of=([etcd]=etcd-server [openssl]=openssl [curl]=curl)
  built || package_of+=([dpkg-source]=dpkg-dev [rsync]=rsync [make]=make)
  local command
  for command in "${!package_of[@]}"; do
    command -v "$command" >/dev/null || echo "${package_of[$command]}"
  done
  # The build is known to work with Debian's Go 1.19, which lives here whatever else is on PATH.
  built || [[ -x /usr/lib/go/bin/go ]] || echo golang-go
  built || [[ -f $reflect2/go_above_118.go ]] || echo golang-github-modern-go-reflect2-dev
}

ready() { built && [[ -z $(missing_packages) ]]; }

# The fast path: everything installed and built already; no lock, no apt.
if ready; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
# Test assemblies start in parallel: the first one installs and builds while the others wait here.
exec 9>"$cache/.lock"
flock 9
if ready; then
  echo "$bin"
  exit 0
fi

packages=$(missing_packages | sort -u | tr '\n' ' ')
deb_src=/etc/apt/sources.list.d/batchrunner-deb-src.sources
needs_source_entry=false
if ! built && [[ ! -f $deb_src ]]; then
  needs_source_entry=true
  # `apt-get source` needs a bookworm deb-src entry; Debian images ship binary entries only. (Should one exist
  # already, apt warns of the duplicate and carries on.)
  log "adding a bookworm deb-src entry to apt ($deb_src)"
  printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
    as_root tee "$deb_src" >/dev/null
fi
if [[ -n $packages ]] || $needs_source_entry; then
  as_root apt-get update -qq >"$cache/apt.log" 2>&1 || { tail -n 20 "$cache/apt.log" >&2; exit 1; }
fi
if [[ -n $packages ]]; then
  log "installing with apt: $packages"
  # shellcheck disable=SC2086 # one word per package
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages \
      >"$cache/apt.log" 2>&1; then
    tail -n 20 "$cache/apt.log" >&2
    exit 1
  fi
fi

if built; then
  echo "$bin"
  exit 0
fi

started=$SECONDS
src="$cache/src"
rm -rf "$bin.partial"
log "fetching the kubernetes source package (bookworm)"
tree=$(fetch_kubernetes_source "$src" "$cache/source.log")
log "building kube-apiserver and kube-controller-manager (log: $cache/build.log; ~10 min on 2 cores)"
make_kubernetes "$tree" "cmd/kube-apiserver cmd/kube-controller-manager" "$cache/build.log"

mkdir -p "$bin.partial"
install -m 0755 "$tree/_output/bin/kube-apiserver" "$tree/_output/bin/kube-controller-manager" "$bin.partial/"
reported=$("$bin.partial/kube-apiserver" --version)
[[ $reported == "Kubernetes v$version" ]] || { log "built '$reported', expected v$version"; exit 1; }
mv "$bin.partial" "$bin"
# The source tree with its Go build cache is about 2 GB; only the two binaries are worth keeping.
rm -rf "$src"
log "built $reported in $((SECONDS - started)) s"
echo "$bin"
