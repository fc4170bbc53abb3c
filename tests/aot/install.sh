#!/usr/bin/env bash
# The CLI is tested as users run it: published as Native AOT (./batchrunner does that), which links with a C
# compiler driver and zlib. Installs Debian's gcc and zlib1g-dev when missing; fast when present.
set -euo pipefail
if { command -v gcc || command -v clang; } >/dev/null 2>&1 && [ -e /usr/include/zlib.h ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcc libc6-dev zlib1g-dev >/dev/null
