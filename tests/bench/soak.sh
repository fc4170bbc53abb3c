#!/usr/bin/env bash
# The soak (figures, not tests): mixed BatchJobs through kubectl and SQS for a bounded time on the 1.20 control plane
# (built once, see tests/k8s) with fauxqs, two controller replicas behind fault proxies at a low fault rate, the
# leader killed now and then; prints BatchJobs completed, faults injected, invariant violations, the replicas' memory
# at start and end and the p99 reconcile. Exit code 1 on any violation. From the repository root:
#   ./tests/bench/soak.sh [--minutes 20] [--kill-every 5] [--every-seconds 4]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
npm ci --prefix tests/fauxqs --no-audit --no-fund --prefer-offline --loglevel=error
project=tests/bench/soak/BatchRunner.Soak.csproj
if ! output=$(dotnet build "$project" --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
dotnet tests/bench/soak/bin/Debug/net10.0/BatchRunner.Soak.dll "$@"
