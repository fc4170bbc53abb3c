#!/usr/bin/env bash
# The AWS client tests check requests against botocore: its official API models, its request validator and its
# SigV4 signer (Debian's python3-botocore, for Debian's /usr/bin/python3: a python3 earlier on PATH may be another
# interpreter with another botocore). Installs it when missing; fast when present.
set -euo pipefail
if /usr/bin/python3 -c 'import botocore.validate, botocore.auth' >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-botocore >/dev/null
