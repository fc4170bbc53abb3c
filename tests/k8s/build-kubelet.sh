#!/usr/bin/env bash
# Builds the kubelet 1.20.2 from Debian bookworm's `kubernetes` source package (the source of the test control
# plane, tests/k8s/build-control-plane.sh) and the pause image's program from the same source (build/pause, with
# gcc), and installs with apt what the kubelet runs pods with: containerd, runc and the CNI plugins. Cached beside
# the control plane; prints the folder holding kubelet and pause on standard output, everything else on standard
# error. The first run takes about 6 minutes on 2 cores; later runs return at once.
#
#   tests/k8s/build-kubelet.sh            -> /root/.cache/batchrunner/kubernetes-1.20.2/kubelet
#
# BATCHRUNNER_CACHE moves the cache (default ~/.cache/batchrunner).
set -euo pipefail

version=1.20.2
cache="${BATCHRUNNER_CACHE:-$HOME/.cache/batchrunner}/kubernetes-$version"
out="$cache/kubelet"
# shellcheck source=tests/k8s/kubernetes-source.sh
source "$(dirname "${BASH_SOURCE[0]}")/kubernetes-source.sh"

log() { echo "build-kubelet: $*" >&2; }

built() { [[ -x $out/kubelet && -x $out/pause ]]; }

missing_packages() {
  command -v containerd >/dev/null || echo containerd
  command -v runc >/dev/null || echo runc
  [[ -x /usr/lib/cni/bridge ]] || echo containernetworking-plugins
  command -v iptables >/dev/null || echo iptables
  built || command -v gcc >/dev/null || echo gcc
  built || [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a ]] || echo libc6-dev
  built || [[ -x /usr/lib/go/bin/go ]] || echo golang-go
  built || [[ -f $reflect2/go_above_118.go ]] || echo golang-github-modern-go-reflect2-dev
  built || command -v dpkg-source >/dev/null || echo dpkg-dev
  built || command -v rsync >/dev/null || echo rsync
  built || command -v make >/dev/null || echo make
}

if built && [[ -z $(missing_packages) ]]; then
  echo "$out"
  exit 0
fi

# The control plane's script adds the deb-src entry and the build's tools; its build is cached, so this is quick.
"$(dirname "${BASH_SOURCE[0]}")/build-control-plane.sh" >/dev/null
mkdir -p "$cache"
exec 9>"$cache/.kubelet-lock"
flock 9
packages=$(missing_packages | sort -u | tr '\n' ' ')
if [[ -n $packages ]]; then
  log "installing with apt: $packages"
  as_root apt-get update -qq >"$cache/kubelet-apt.log" 2>&1 || { tail -n 20 "$cache/kubelet-apt.log" >&2; exit 1; }
  # shellcheck disable=SC2086 # one word per package
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >>"$cache/kubelet-apt.log" 2>&1 \
    || { tail -n 20 "$cache/kubelet-apt.log" >&2; exit 1; }
fi
if built; then
  echo "$out"
  exit 0
fi

started=$SECONDS
src="$cache/kubelet-src"
rm -rf "$out.partial"
log "fetching the kubernetes source package (bookworm)"
tree=$(fetch_kubernetes_source "$src" "$cache/kubelet-source.log")
log "building the kubelet (log: $cache/kubelet-build.log; ~6 min on 2 cores)"
make_kubernetes "$tree" cmd/kubelet "$cache/kubelet-build.log"
mkdir -p "$out.partial"
install -m 0755 "$tree/_output/bin/kubelet" "$out.partial/"
# The pod sandbox's one process: sleeps until told to stop, reaps orphans.
gcc -Os -Wall -Werror -static -DVERSION="v$version-batchrunner" -o "$out.partial/pause" "$tree/build/pause/linux/pause.c"
reported=$("$out.partial/kubelet" --version)
[[ $reported == "Kubernetes v$version" ]] || { log "built '$reported', expected v$version"; exit 1; }
mv "$out.partial" "$out"
rm -rf "$src"
log "built $reported and pause in $((SECONDS - started)) s"
echo "$out"
