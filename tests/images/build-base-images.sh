#!/usr/bin/env bash
# Stand-ins for the base images BatchRunner's Dockerfiles build FROM, made on this machine from registries only: no
# container registry is reachable here, so the tests cannot pull mcr.microsoft.com's images. Each stand-in is a
# Debian bookworm root filesystem from debootstrap (the Debian archive) plus the .NET SDK or runtimes already on
# this machine, tagged with the exact name the Dockerfiles use, so `podman build` takes it instead of pulling:
#
#   mcr.microsoft.com/dotnet/sdk:10.0                    the machine's SDK (and its CA certificates, so that a
#                                                        restore inside a build trusts what the host trusts)
#   mcr.microsoft.com/dotnet/runtime:10.0                the .NET runtime on bookworm, user app (1654), APP_UID
#   mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled  the runtimes with no shell and no package manager
#                                                        (every program but dotnet removed), running as 1654
#
# They only stand in for the tests: users build against the real images. Installs podman (with runc) and
# debootstrap from Debian when missing, and writes the podman settings this machine needs (runc, since crun
# refuses its cgroup layout; ulimits within the machine's own). Cached in ~/.cache/batchrunner/images and in
# podman's image store: a later run returns at once unless the machine's .NET changed. Prints the containers.conf
# to use (CONTAINERS_CONF) on standard output; everything else goes to standard error.
#
# BATCHRUNNER_CACHE moves the cache (default ~/.cache/batchrunner).
set -euo pipefail

cache="${BATCHRUNNER_CACHE:-$HOME/.cache/batchrunner}/images"
conf="$cache/containers.conf"
rootfs="$cache/bookworm-minbase"
mirror=http://deb.debian.org/debian
# What the runtimes need beyond minbase: TLS (the API server, S3), time zones and ICU (the runtime image has them).
include=ca-certificates,libssl3,libicu72,tzdata,zlib1g
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime_version=$(dotnet --list-runtimes | sed -n 's/^Microsoft.NETCore.App \([0-9.]*\) .*/\1/p' | sort -V | tail -n 1)
aspnet_version=$(dotnet --list-runtimes | sed -n 's/^Microsoft.AspNetCore.App \([0-9.]*\) .*/\1/p' | sort -V | tail -n 1)
sdk_version=$(dotnet --version)
# A stand-in is remade when the machine's .NET moves on (the label records what it was made from).
made_from="sdk $sdk_version, runtime $runtime_version, aspnet $aspnet_version"
images=(mcr.microsoft.com/dotnet/sdk:10.0 mcr.microsoft.com/dotnet/runtime:10.0 mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled)

log() { echo "build-base-images: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

current() {
  [[ -f $conf ]] && command -v podman >/dev/null || return 1
  local image
  for image in "${images[@]}"; do
    [[ $(CONTAINERS_CONF=$conf podman image inspect --format '{{ index .Labels "io.batchrunner.stand-in" }}' "$image" 2>/dev/null) == "$made_from" ]] || return 1
  done
}

if current; then
  echo "$conf"
  exit 0
fi

mkdir -p "$cache"
# Test assemblies start in parallel: the first one builds while the others wait here.
exec 9>"$cache/.lock"
flock 9
if current; then
  echo "$conf"
  exit 0
fi

missing=()
for pair in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  as_root apt-get update -qq >"$cache/apt.log" 2>&1 || { tail -n 20 "$cache/apt.log" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$cache/apt.log" 2>&1 \
    || { tail -n 20 "$cache/apt.log" >&2; exit 1; }
fi

# podman's defaults ask containers for more open files and processes than this machine allows, and runc is refused
# even the machine's own hard limits here: half of them is what containers get.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nofile == unlimited ]] && nofile=2097152
[[ $nproc == unlimited ]] && nproc=131072
nofile=$((nofile / 2)) nproc=$(( (nproc < 32768 ? nproc : 32768) / 2 ))
cat >"$conf.new" <<CONF
# Written by tests/images/build-base-images.sh for this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
mv "$conf.new" "$conf"
export CONTAINERS_CONF=$conf

if [[ ! -f $rootfs/.complete ]]; then
  log "debootstrap --variant=minbase bookworm from $mirror (once; a minute or two)"
  rm -rf "$rootfs"
  as_root debootstrap --variant=minbase --include="$include" bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  # The images' non-root user, as Microsoft's images have it.
  as_root chroot "$rootfs" /usr/sbin/groupadd --gid 1654 app
  as_root chroot "$rootfs" /usr/sbin/useradd --uid 1654 --gid 1654 --create-home --shell /bin/sh app
  as_root rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/*
  touch "$rootfs/.complete"
fi

stage="$cache/stage"
trap 'as_root rm -rf "$stage"' EXIT

# One image from the root filesystem plus the parts of the machine's .NET named, with the given settings.
make_image() {
  local image=$1 chisel=$2; shift 2
  local -a parts=() changes=()
  while (($#)); do
    case $1 in
      --part) parts+=("$2"); shift 2 ;;
      --change) changes+=(--change "$2"); shift 2 ;;
    esac
  done
  log "making $image"
  as_root rm -rf "$stage"
  mkdir -p "$stage"
  as_root cp -a "$rootfs/." "$stage/"
  as_root rm -f "$stage/.complete"
  mkdir -p "$stage/usr/share/dotnet"
  local part
  for part in "${parts[@]}"; do
    mkdir -p "$stage/usr/share/dotnet/$(dirname "$part")"
    cp -a "$dotnet_root/$part" "$stage/usr/share/dotnet/$part"
  done
  ln -sf /usr/share/dotnet/dotnet "$stage/usr/bin/dotnet"
  # Certificates the machine added locally (a proxy's own CA) make a restore inside a build work as on the host.
  cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/ca-certificates.crt"
  if $chisel; then
    # As a chiseled image: no shell, no package manager, no program but dotnet.
    find "$stage/usr/bin" "$stage/usr/sbin" -mindepth 1 ! -name dotnet -exec rm -rf {} +
    as_root rm -rf "$stage/var/lib/dpkg" "$stage/var/lib/apt" "$stage/var/cache" "$stage/usr/share/doc" "$stage/usr/share/man" "$stage/usr/lib/apt"
  fi
  as_root tar -C "$stage" -c . | podman import --quiet "${changes[@]}" \
    --change "LABEL io.batchrunner.stand-in=\"$made_from\"" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV DOTNET_RUNNING_IN_CONTAINER=true" \
    --change "ENV APP_UID=1654" \
    - "$image" >/dev/null
}

runtime_parts=(--part dotnet --part host --part LICENSE.txt --part ThirdPartyNotices.txt --part "shared/Microsoft.NETCore.App/$runtime_version")
make_image mcr.microsoft.com/dotnet/sdk:10.0 false --part . \
  --change "ENV DOTNET_VERSION=$runtime_version" --change "ENV DOTNET_SDK_VERSION=$sdk_version" --change "ENV DOTNET_NOLOGO=true"
make_image mcr.microsoft.com/dotnet/runtime:10.0 false "${runtime_parts[@]}" \
  --change "ENV DOTNET_VERSION=$runtime_version" --change "ENV ASPNETCORE_HTTP_PORTS=8080"
make_image mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled true "${runtime_parts[@]}" --part "shared/Microsoft.AspNetCore.App/$aspnet_version" \
  --change "ENV DOTNET_VERSION=$runtime_version" --change "ENV ASPNET_VERSION=$aspnet_version" --change "ENV ASPNETCORE_HTTP_PORTS=8080" \
  --change "USER 1654"
log "stand-ins ready ($made_from)"
echo "$conf"
