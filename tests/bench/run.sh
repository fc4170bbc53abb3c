#!/usr/bin/env bash
# Benchmark of the local backend: builds the benchmark and the CLI (Release), then prints the figures of
#   dispatch  2,000 no-op indexes at parallelism 2: `batchrunner run` (default settings) vs `xargs -P2`   (target ratio ≤ 1.1×)
#             (the native CLI that ./batchrunner builds, with the JIT build beside it for reference)
#   memory    planning + ledger bookkeeping of a 100,000-index sweep, in a child process (target < 300 MB)
#   first     time to the first index of a sweep of --indexes N (1,000,000: target < 1 s) vs xargs -P2, and the CLI's peak RSS
#             (not part of the default run: `./tests/bench/run.sh first --indexes 1000000 --pairs 3`)
# Not a test: no pass/fail threshold; exits non-zero only when a run was invalid. From the repository root:
#   ./tests/bench/run.sh [dispatch|memory|first] [--pairs N] [--count N] [--indexes N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

project=tests/bench/BatchRunner.Benchmarks/BatchRunner.Benchmarks.csproj
# One build: the project references the CLI (without linking it), so the CLI's Release (JIT) build comes with it;
# ./batchrunner then publishes the native CLI when it is older than its sources.
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
BATCHRUNNER_CLI=native ./batchrunner --version >/dev/null
# Not exec: the benchmark reads its children's peak RSS with getrusage, which an exec'd process would inherit from
# this shell, the build included.
dotnet tests/bench/BatchRunner.Benchmarks/bin/Release/net10.0/BatchRunner.Benchmarks.dll "$@"
