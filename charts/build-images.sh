#!/usr/bin/env bash
# Builds BatchRunner's images (the controller and the sample workloads) with Docker and loads them into minikube,
# or pushes them to a registry (ECR for EKS). Run from anywhere; the build context is the repository root.
#
#   charts/build-images.sh                          build as batchrunner/NAME:dev, then `minikube image load` each
#                                                   (values-minikube.yaml), also as :latest, the examples' tag
#                                                   (BatchRunner's Job pods pull IfNotPresent, so a loaded :latest
#                                                   is used; the chart's controller stays on :dev).
#   charts/build-images.sh --no-load                build only
#   charts/build-images.sh --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com --tag 0.1.0 --push
#                                                   build, tag as REGISTRY/batchrunner/NAME:TAG and push (values-eks.yaml)
#   charts/build-images.sh --platform linux/arm64   build for another architecture (Graviton nodes, Apple silicon)
#   charts/build-images.sh --engine podman          build with podman (the default is docker, or podman when only
#                                                   podman is installed); --nuget-cache DIR (podman only) mounts a
#                                                   NuGet package folder into the builds so restores reuse it
#
# Needs Docker with BuildKit or podman (each Dockerfile has its own allow-list, Dockerfile.dockerignore), and
# minikube for loading. Image names match the chart (image.repository) and the examples (spec.image).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# name and Dockerfile of every image, relative to the repository root
images=(
  "batchrunner/controller controller/BatchRunner.Controller/Dockerfile"
  "batchrunner/mmc-queue workloads/mmc-queue/Dockerfile"
  "batchrunner/pi-monte-carlo workloads/pi-monte-carlo/Dockerfile"
)

tag=dev registry="" load=true push=false platform="" engine="" nuget_cache=""
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --registry) registry=${2:?--registry needs a value}; registry=${registry%/}; shift 2 ;;
    --platform) platform=${2:?--platform needs a value}; shift 2 ;;
    --engine) engine=${2:?--engine needs docker or podman}; shift 2 ;;
    --nuget-cache) nuget_cache=${2:?--nuget-cache needs a folder}; shift 2 ;;
    --push) push=true; load=false; shift ;;
    --no-load) load=false; shift ;;
    -h|--help) usage ;;
    *) echo "build-images: unknown argument $1" >&2; usage ;;
  esac
done
if $push && [[ -z $registry ]]; then
  echo "build-images: --push needs --registry (the images would go to Docker Hub's batchrunner/ otherwise)" >&2
  exit 2
fi
if [[ -z $engine ]]; then
  if command -v docker >/dev/null || ! command -v podman >/dev/null; then engine=docker; else engine=podman; fi
fi
case $engine in
  docker|podman) ;;
  *) echo "build-images: --engine must be docker or podman, not $engine" >&2; exit 2 ;;
esac
command -v "$engine" >/dev/null || { echo "build-images: $engine is not installed" >&2; exit 1; }
build_args=()
if [[ -n $nuget_cache ]]; then
  [[ $engine == podman ]] || { echo "build-images: --nuget-cache needs --engine podman (docker build mounts no volumes)" >&2; exit 2; }
  mkdir -p "$nuget_cache"
  build_args+=(--volume "$(cd "$nuget_cache" && pwd):/root/.nuget/packages")
fi
# podman runs a build's steps in the host's network namespace, as BuildKit's default bridge reaches NuGet.
[[ $engine == podman ]] && build_args+=(--network host)
if $load; then
  command -v minikube >/dev/null || { echo "build-images: minikube is not installed (use --no-load to build only)" >&2; exit 1; }
  minikube status >/dev/null || { echo "build-images: minikube is not running (minikube start)" >&2; exit 1; }
fi

# Into the cluster's own image store: the chart's minikube values never pull (pullPolicy: Never).
load_image() {
  if [[ $engine == docker ]]; then
    minikube image load "$1"
  else
    local archive
    archive=$(mktemp --suffix=.tar)
    podman save -o "$archive" "$1" && minikube image load "$archive"
    rm -f "$archive"
  fi
}

export DOCKER_BUILDKIT=1
for entry in "${images[@]}"; do
  read -r name dockerfile <<<"$entry"
  image="${registry:+$registry/}$name:$tag"
  echo "build-images: building $image from $dockerfile with $engine" >&2
  "$engine" build ${platform:+--platform "$platform"} "${build_args[@]}" -f "$root/$dockerfile" -t "$image" "$root"
  if $push; then
    "$engine" push "$image"
  elif $load; then
    load_image "$image"
    if [[ -z $registry && $tag != latest ]]; then
      # The examples' spec.image names :latest; Job pods (imagePullPolicy IfNotPresent) use the loaded one.
      "$engine" tag "$image" "$name:latest"
      load_image "$name:latest"
    fi
  fi
done
echo "build-images: done (${#images[@]} images, tag $tag)" >&2
