#!/usr/bin/env bash
# Benchmark of the fair-share scheduler over a simulated clock: Kueue's scheduler baseline shape (15,000 workloads in
# 30 queues over 5 groups) against Kueue's published figures, and fairness between a large and a small sweep. Not a
# test: no threshold. From the repository root:
#   ./tests/bench/scheduler.sh [--trials N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

project=tests/bench/scheduler/BatchRunner.SchedulerBenchmark.csproj
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
exec dotnet tests/bench/scheduler/bin/Release/net10.0/BatchRunner.SchedulerBenchmark.dll "$@"
