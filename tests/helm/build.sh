#!/usr/bin/env bash
# Builds tests/helm/render (helm-render: renders a Helm chart as `helm template` does; no registry here ships
# Helm) with Debian's Go and Go libraries, installing them with apt when missing (as root, or with sudo), and
# caches the binary outside the work tree, keyed by a hash of its sources. Prints the binary's path on standard
# output; everything else goes to standard error. Later runs with the same sources return at once.
#
#   tests/helm/build.sh     -> ~/.cache/batchrunner/helm-render-<hash>/helm-render
#
# BATCHRUNNER_CACHE moves the cache (default ~/.cache/batchrunner).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gopath=/usr/share/gocode
hash=$(cat "$here"/render/*.go "$here/build.sh" | sha256sum | cut -c1-16)
cache="${BATCHRUNNER_CACHE:-$HOME/.cache/batchrunner}"
out="$cache/helm-render-$hash/helm-render"

log() { echo "helm/build: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

models=/usr/lib/python3/dist-packages/botocore/data/sqs/2012-11-05/service-2.json
if [[ -x $out && -e $models ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
# Test assemblies start in parallel: one builds while the others wait here.
exec 9>"$cache/.helm-render.lock"
flock 9

# The Go toolchain and, from Debian's Go library packages, what Helm's template engine is made of.
declare -A package_of=(
  [/usr/lib/go/bin/go]=golang-go
  [$gopath/src/github.com/Masterminds/sprig/functions.go]=golang-github-masterminds-sprig-dev
  [$gopath/src/sigs.k8s.io/yaml/yaml.go]=golang-k8s-sigs-yaml-dev
  [$gopath/src/github.com/xeipuuv/gojsonschema/validation.go]=golang-github-xeipuuv-gojsonschema-dev
  # Not for the build: the AWS API models the chart's IAM policy test reads (tests/BatchRunner.Charts.Tests).
  [$models]=python3-botocore
)
missing=()
for file in "${!package_of[@]}"; do
  [[ -e $file ]] || missing+=("${package_of[$file]}")
done
if ((${#missing[@]})); then
  log "installing with apt: ${missing[*]}"
  as_root apt-get update -qq >"$cache/helm-apt.log" 2>&1 || { tail -n 20 "$cache/helm-apt.log" >&2; exit 1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$cache/helm-apt.log" 2>&1 || { tail -n 20 "$cache/helm-apt.log" >&2; exit 1; }
fi

if [[ -x $out ]]; then
  echo "$out"
  exit 0
fi

# GOPATH mode against Debian's source tree: offline, no module proxy, no vendoring.
partial="$cache/helm-render-$hash.partial"
rm -rf "$partial"
mkdir -p "$partial"
log "building helm-render"
(cd "$here/render" && env -u GOFLAGS -u GOROOT GO111MODULE=off GOPATH="$gopath" GOPROXY=off \
  GOCACHE="$cache/go-build" CGO_ENABLED=0 /usr/lib/go/bin/go build -o "$partial/helm-render" .)
rm -rf "$(dirname "$out")"
mv "$partial" "$(dirname "$out")"
echo "$out"
