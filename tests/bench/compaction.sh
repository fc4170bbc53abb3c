#!/usr/bin/env bash
# Benchmark of compaction: 10,000 index outputs (a ledger row and a JSON-lines file each) are compacted to
# Parquet, timed; then the same queries run over the raw files and over the Parquet with DuckDB, printing the
# time and the bytes read by each and their ratios (raw / compacted). Not a test: no threshold. From the
# repository root:
#   ./tests/bench/compaction.sh [--indexes N] [--rows N] [--repeat N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

project=tests/bench/compaction/BatchRunner.CompactionBenchmark.csproj
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1); then
  echo "$output" >&2
  exit 1
fi
exec dotnet tests/bench/compaction/bin/Release/net10.0/BatchRunner.CompactionBenchmark.dll "$@"
