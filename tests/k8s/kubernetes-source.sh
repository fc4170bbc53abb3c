# Sourced by the scripts that build Kubernetes 1.20 from Debian bookworm's `kubernetes` source package.

# Runs a command as root (sudo when not root already).
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# reflect2 1.0.2 from Debian (golang-github-modern-go-reflect2-dev), to replace the vendored 1.0.1.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2

# Fetches the source package into $1 (emptied first; its log in $2) and prints the source tree's folder, ready to build.
fetch_kubernetes_source() {
  local src=$1 source_log=$2 tree vendored
  rm -rf "$src"
  mkdir -p "$src"
  (cd "$src" && apt-get source -q kubernetes/bookworm) >"$source_log" 2>&1 || { tail -n 20 "$source_log" >&2; return 1; }
  tree=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
  [[ -n $tree ]] || { echo "apt-get source left no kubernetes-* folder in $src" >&2; return 1; }
  # The vendored reflect2 1.0.1 breaks under Go >= 1.18: json-iterator then panics decoding into maps, and every
  # JSON merge patch (kubectl patch, a status patch) fails with a nil-pointer panic in the API server. 1.0.2 is
  # the upstream fix, API-compatible; vendored sources are not checksummed, so swapping the files is enough.
  vendored="$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$vendored"/*.go "$vendored"/*.s
  cp "$reflect2"/*.go "$reflect2"/*.s "$vendored/"
  echo "$tree"
}

# Builds the Go targets named in $2 in the source tree $1 with Debian's Go, statically (log in $3).
make_kubernetes() {
  local tree=$1 targets=$2 build_log=$3
  # Debian's Go first, static binaries (the Makefile strips them already). The Makefile runs the code generators
  # (deepcopy, openapi, ...) before compiling: the generated OpenAPI code is not in the tarball.
  (cd "$tree" && env -u GOFLAGS -u GOROOT -u GOPATH PATH="/usr/lib/go/bin:$PATH" CGO_ENABLED=0 make WHAT="$targets") >"$build_log" 2>&1 \
    || { tail -n 40 "$build_log" >&2; echo "build failed; the whole log is $build_log" >&2; return 1; }
}
