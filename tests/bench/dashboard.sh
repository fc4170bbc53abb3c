#!/usr/bin/env bash
# Benchmark of the controller's dashboard: starts a Kubernetes 1.20 control plane on 127.0.0.1 (built once, see
# tests/k8s), applies 5,000 BatchJobs and times the dashboard's pages as a standby controller serves them, against
# kubectl get batchjobs --all-namespaces over the same objects. Prints figures, no pass/fail. From the repository root:
#   ./tests/bench/dashboard.sh [--count N] [--rounds R]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
project=tests/bench/dashboard/BatchRunner.DashboardBenchmark.csproj
# The controller as it ships (Release, ReadyToRun, for this machine's architecture), as operator.sh publishes it.
case $(uname -m) in aarch64|arm64) arch=arm64 ;; *) arch=x64 ;; esac
published="$root/tests/bench/dashboard/bin/controller"
if ! output=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1 &&
              dotnet publish controller/BatchRunner.Controller/BatchRunner.Controller.csproj -c Release -a "$arch" \
                --self-contained false --nologo -v quiet -o "$published" 2>&1); then
  echo "$output" >&2
  exit 1
fi
BENCH_CONTROLLER_DLL="$published/batchrunner-controller.dll" \
  dotnet tests/bench/dashboard/bin/Release/net10.0/BatchRunner.DashboardBenchmark.dll "$@"
