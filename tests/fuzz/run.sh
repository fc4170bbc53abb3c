#!/usr/bin/env bash
# Fuzzes BatchRunner's two parsers of hostile input with AFL++ through SharpFuzz, each for a bounded time, and prints
# what ran and what was found (a benchmark-like script, not a test: tests/run.sh does not run it):
#   parser   the spec parser (BatchJobParser): any bytes give a job or errors naming fields, never an exception
#   outputs  the output inspector (JSON lines and CSV) and the column naming: counts, never an exception
# From the repository root:   ./tests/fuzz/run.sh [parser|outputs|all] [--seconds N]      (default: all, 120 s each)
# Needs root for apt (afl++ from Debian) on first use; SharpFuzz's instrumenter comes from NuGet as a local tool.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
targets=all seconds=120
while [ $# -gt 0 ]; do
  case "$1" in
    parser|outputs|all) targets=$1 ;;
    --seconds) seconds=$2; shift ;;
    *) echo "usage: $0 [parser|outputs|all] [--seconds N]" >&2; exit 2 ;;
  esac
  shift
done
[ "$targets" = all ] && targets="parser outputs"

command -v afl-fuzz >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null; }
tools="$root/tests/fuzz/.tools"
[ -x "$tools/sharpfuzz" ] || dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dotnet publish tests/fuzz/BatchRunner.Fuzz.csproj -c Release -o "$work/out" --nologo -v quiet >/dev/null
# Only BatchRunner's own code is instrumented: coverage of the parsers, not of the runtime.
"$tools/sharpfuzz" "$work/out/BatchRunner.Core.dll" >/dev/null

export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
status=0
for target in $targets; do
  findings="$root/tests/fuzz/findings/$target"
  rm -rf "$findings" && mkdir -p "$(dirname "$findings")"
  afl-fuzz -i "tests/fuzz/corpus/$target" -o "$findings" -V "$seconds" -t 5000 -m none -- dotnet "$work/out/BatchRunner.Fuzz.dll" "$target" >"$work/$target.log" 2>&1 || true
  stats="$findings/default/fuzzer_stats"
  if [ ! -f "$stats" ]; then
    echo "$target: afl-fuzz did not run; its log:" >&2
    tail -20 "$work/$target.log" >&2
    status=1
    continue
  fi
  value() { sed -n "s/^$1 *: *//p" "$stats"; }
  crashes=$(value saved_crashes) hangs=$(value saved_hangs)
  printf '%-8s %6s s  %10s executions (%s/s)  %5s paths  %s crashes  %s hangs\n' \
    "$target" "$(value run_time)" "$(value execs_done)" "$(value execs_per_sec)" "$(value corpus_count)" "$crashes" "$hangs"
  if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
    echo "  findings: $findings/default/{crashes,hangs} (replay one: dotnet $work/out/BatchRunner.Fuzz.dll $target < FILE)"
    status=1
  fi
done
exit $status
