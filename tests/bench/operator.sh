#!/usr/bin/env bash
# Benchmark of the operator: starts a Kubernetes 1.20 control plane on 127.0.0.1 (built once, see tests/k8s),
# applies 500 BatchJobs at once and times until all 500 Jobs exist, against kubectl apply of the 500 equivalent
# Jobs, each step on a quiet cluster (after the Job controller counted the last step's Jobs: ~3.5 min a round).
# Prints figures, no pass/fail. From the repository root:
#   ./tests/bench/operator.sh [--count N] [--qps Q] [--burst B] [--workers W]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
project=tests/bench/BatchRunner.OperatorBenchmark/BatchRunner.OperatorBenchmark.csproj
# The controller as it ships: published for this machine's architecture as the image publishes it (Release,
# ReadyToRun), here so the figures are never a stale or Debug build's.
case $(uname -m) in aarch64|arm64) arch=arm64 ;; *) arch=x64 ;; esac
published="$root/tests/bench/BatchRunner.OperatorBenchmark/bin/controller"
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1 &&
              dotnet publish controller/BatchRunner.Controller/BatchRunner.Controller.csproj -c Release -a "$arch" \
                --self-contained false --nologo -v quiet -o "$published" 2>&1); then
  echo "$output" >&2
  exit 1
fi
BENCH_CONTROLLER_DLL="$published/batchrunner-controller.dll" \
  dotnet tests/bench/BatchRunner.OperatorBenchmark/bin/Release/net10.0/BatchRunner.OperatorBenchmark.dll "$@"
