#!/usr/bin/env bash
# Runs every BatchRunner test, installing first what the tests need. This is the README's test command and
# all that .ci/run calls. Needs only the .NET SDK on the machine; each later tier installs its own servers here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Kubernetes tests run a real 1.20 control plane on 127.0.0.1, built from Debian's sources once (apt installs
# included; ~10 min cold) and cached in ~/.cache/batchrunner.
tests/k8s/build-control-plane.sh >/dev/null
# SQS tests run fauxqs (an SQS emulator from npm, pinned by its lockfile) on 127.0.0.1; install it when the lock changed.
if ! cmp -s tests/fauxqs/package-lock.json tests/fauxqs/node_modules/.batchrunner-lock; then
  npm ci --prefix tests/fauxqs --no-audit --no-fund --prefer-offline --loglevel=error
  cp tests/fauxqs/package-lock.json tests/fauxqs/node_modules/.batchrunner-lock
fi
# Chart tests render charts/batchrunner with helm-render (Helm's template engine from Debian's Go packages; no
# registry here ships Helm), built once and cached in ~/.cache/batchrunner.
tests/helm/build.sh >/dev/null
# AWS client tests check their requests against botocore's models and SigV4 signer (Debian's python3-botocore).
tests/botocore/install.sh
# The CLI is tested as it is run: Native AOT, linked with Debian's gcc and zlib.
tests/aot/install.sh
# The report (and the dashboard) are tested in a real browser: Debian's chromium, driven by Playwright.
tests/browser/install.sh
# The images are built from their Dockerfiles and run by Debian's podman, FROM stand-ins for Microsoft's base images
# (no registry is reachable here) made from debootstrap and this machine's .NET; cached in ~/.cache/batchrunner.
tests/images/build-base-images.sh >/dev/null
# One image test runs the controller's Job pods on a real kubelet (built from the control plane's Debian source;
# ~6-10 min cold, cached) with Debian's containerd, runc and CNI plugins.
tests/k8s/build-kubelet.sh >/dev/null
export BATCHRUNNER_CLI=native
# End-to-end tests drive ./batchrunner: build the solution, then the native CLI and the workloads, once, up front.
dotnet build BatchRunner.sln -c Release --nologo -v quiet
./batchrunner --version >/dev/null

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
status=0
dotnet test BatchRunner.sln -c Release --no-build --nologo --logger "trx" --results-directory "$results" 2>&1 | tee "$results/console.txt" || status=$?

# One closing line over every test project: "N passed, N failed".
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  s=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$passed" -eq 0 ]; then
  echo "tests: no test ran" >&2
  exit 1
fi
exit "$status"
