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
#
# Needs Docker with BuildKit (each Dockerfile has its own allow-list, Dockerfile.dockerignore), and minikube for
# loading. Image names match the chart (image.repository) and the examples (spec.image).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# name and Dockerfile of every image, relative to the repository root
images=(
  "batchrunner/controller controller/BatchRunner.Controller/Dockerfile"
  "batchrunner/mmc-queue workloads/mmc-queue/Dockerfile"
  "batchrunner/pi-monte-carlo workloads/pi-monte-carlo/Dockerfile"
)

tag=dev registry="" load=true push=false platform=""
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --registry) registry=${2:?--registry needs a value}; registry=${registry%/}; shift 2 ;;
    --platform) platform=${2:?--platform needs a value}; shift 2 ;;
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
command -v docker >/dev/null || { echo "build-images: docker is not installed" >&2; exit 1; }
if $load; then
  command -v minikube >/dev/null || { echo "build-images: minikube is not installed (use --no-load to build only)" >&2; exit 1; }
  minikube status >/dev/null || { echo "build-images: minikube is not running (minikube start)" >&2; exit 1; }
fi

export DOCKER_BUILDKIT=1
for entry in "${images[@]}"; do
  read -r name dockerfile <<<"$entry"
  image="${registry:+$registry/}$name:$tag"
  echo "build-images: building $image from $dockerfile" >&2
  docker build ${platform:+--platform "$platform"} -f "$root/$dockerfile" -t "$image" "$root"
  if $push; then
    docker push "$image"
  elif $load; then
    # Into the cluster's own image store: the chart's minikube values never pull (pullPolicy: Never).
    minikube image load "$image"
    if [[ -z $registry && $tag != latest ]]; then
      # The examples' spec.image names :latest; Job pods (imagePullPolicy IfNotPresent) use the loaded one.
      docker tag "$image" "$name:latest"
      minikube image load "$name:latest"
    fi
  fi
done
echo "build-images: done (${#images[@]} images, tag $tag)" >&2
