#!/usr/bin/env bash
# Benchmark of the SQS intake: 10,000 requests waiting in fauxqs (on 127.0.0.1) -> seconds until all are recorded
# as local jobs, against a bare receive-and-delete drain loop with the same SDK and server (the ceiling). Prints
# requests per second and the ratio (target >= 0.95 for JSON bodies, 0.7 for YAML). Not a test: no pass/fail threshold. From the repository root:
#   ./tests/bench/intake/run.sh [--requests N] [--receivers N] [--concurrency N] [--rounds N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# fauxqs from its lockfile, as tests/run.sh installs it (again only when the lockfile changed).
if ! cmp -s tests/fauxqs/package-lock.json tests/fauxqs/node_modules/.batchrunner-lock; then
  npm ci --prefix tests/fauxqs --no-audit --no-fund --prefer-offline --loglevel=error
  cp tests/fauxqs/package-lock.json tests/fauxqs/node_modules/.batchrunner-lock
fi
project=tests/bench/intake/BatchRunner.IntakeBenchmark.csproj
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
exec dotnet tests/bench/intake/bin/Release/net10.0/BatchRunner.IntakeBenchmark.dll "$@"
