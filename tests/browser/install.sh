#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright for .NET (its driver comes with the NuGet package; no
# browser is ever downloaded: the tests point Playwright at this executable). Installs chromium when missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
