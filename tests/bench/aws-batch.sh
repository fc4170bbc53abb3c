#!/usr/bin/env bash
# Benchmark of AWS Batch submission: a 10,000-index sweep submitted as BatchRunner does (array jobs of up to 10,000
# children) against one SubmitJob per index, both under AWS's 50-per-second SubmitJob limit, on the stub Batch
# endpoint of the tests (127.0.0.1). Prints API calls and the time until the sweep is fully submitted; no pass/fail.
# From the repository root:
#   ./tests/bench/aws-batch.sh [--indexes N] [--peer-indexes N] [--rate R]
# (--peer-indexes measures the peer on fewer indexes and scales it, when 200 s is too long to wait.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
project=tests/bench/aws-batch/BatchRunner.AwsBatchBenchmark.csproj
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
dotnet tests/bench/aws-batch/bin/Release/net10.0/BatchRunner.AwsBatchBenchmark.dll "$@"
