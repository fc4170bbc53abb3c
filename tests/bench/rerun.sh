#!/usr/bin/env bash
# Benchmark of running only what is needed, on the local backend (./batchrunner, the native build). Figures, no
# pass/fail; each figure is the median of --rounds rounds, each round on fresh stores, the two sides alternating:
#   rerun   a 10,000-index no-op sweep of which 37 indexes failed (index % 271 == 7): `batchrunner rerun NAME --failed` against running
#           the whole sweep again (`run --no-reuse`): time from the command to the first new attempt, total time,
#           indexes run
#   reuse   a sweep of 400 points (25 ms each, parallelism 2) overlapping an earlier one by half: its time against a
#           full run of the same sweep with --no-reuse (target ≤ 52 %)
# From the repository root:
#   ./tests/bench/rerun.sh [--rounds N] [--indexes N] [--points N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds=3 indexes=10000 points=400
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --indexes) indexes=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

BATCHRUNNER_CLI=native ./batchrunner --version >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

# Every index stamps its start; those with index % 271 == 7 (37 of 10,000) fail while $SCRATCH/broken exists.
sweep() { # name count work
  cat <<EOF
apiVersion: batchrunner.io/v1alpha1
kind: BatchJob
metadata: {name: $1}
spec:
  command: ["/bin/sh", "-c", "date +%s%N >> \$SCRATCH/started; [ -e \$SCRATCH/broken ] && [ \$((BATCHRUNNER_INDEX % 271)) = 7 ] && exit 1; $3 echo '{\"ok\": 1}' > \$BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
  sweep: {grid: {n: [$(seq -s, 1 "$2")]}}
  parallelism: 2
EOF
}

# Runs a command, printing "first-attempt-ns total-ns indexes-run" (the first stamp after it started).
measure() {
  : > "$SCRATCH/started"
  local start end
  start=$(now)
  "$@" >/dev/null 2>&1 || true
  end=$(now)
  local first
  first=$(awk -v s="$start" '$1 >= s && (m == "" || $1 < m) { m = $1 } END { print m }' "$SCRATCH/started")
  echo "$(( ${first:-$end} - start )) $(( end - start )) $(wc -l < "$SCRATCH/started")"
}

expected=$(( (indexes - 8) / 271 + 1 ))
echo "Rerun and reuse benchmark (local backend, native CLI; medians of $rounds rounds)"
echo
for round in $(seq 1 "$rounds"); do
  export BATCHRUNNER_STORE="$work/rerun-$round" SCRATCH="$work/scratch-$round"
  mkdir -p "$SCRATCH"
  sweep sweep "$indexes" "" > "$work/sweep.yaml"
  touch "$SCRATCH/broken"
  ./batchrunner run --no-compact "$work/sweep.yaml" >/dev/null 2>&1 || true
  rm "$SCRATCH/broken"
  failed=$(./batchrunner query "SELECT count(DISTINCT \"index\") FROM indexes WHERE status = 'failed'" --format csv | tail -1)
  [ "$failed" = "$expected" ] || { echo "expected $expected failed indexes, got $failed" >&2; exit 1; }
  if [ $((round % 2)) = 1 ]; then
    measure ./batchrunner rerun sweep --failed --no-compact >> "$work/rerun.txt"
    sweep whole "$indexes" "" > "$work/whole.yaml"
    measure ./batchrunner run --no-reuse --no-compact "$work/whole.yaml" >> "$work/whole.txt"
  else
    sweep whole "$indexes" "" > "$work/whole.yaml"
    measure ./batchrunner run --no-reuse --no-compact "$work/whole.yaml" >> "$work/whole.txt"
    measure ./batchrunner rerun sweep --failed --no-compact >> "$work/rerun.txt"
  fi
  rm -rf "$BATCHRUNNER_STORE"
done

row() { # label file
  local first total runs
  first=$(cut -d' ' -f1 "$2" | median); total=$(cut -d' ' -f2 "$2" | median); runs=$(cut -d' ' -f3 "$2" | median)
  printf '%-34s first new attempt after %8s s   done in %8s s   %6s indexes run\n' "$1" "$(seconds "$first")" "$(seconds "$total")" "$runs"
}
echo "rerun: $indexes indexes, $expected failed"
row "batchrunner rerun --failed" "$work/rerun.txt"
row "the whole sweep again" "$work/whole.txt"
awk -v a="$(cut -d' ' -f2 "$work/rerun.txt" | median)" -v b="$(cut -d' ' -f2 "$work/whole.txt" | median)" \
  -v c="$(cut -d' ' -f1 "$work/rerun.txt" | median)" -v d="$(cut -d' ' -f1 "$work/whole.txt" | median)" \
  'BEGIN { printf "ratio: done in %.1f%% of the time; first new attempt %.2fx the whole sweep'"'"'s\n\n", 100 * a / b, c / d }'

for round in $(seq 1 "$rounds"); do
  export BATCHRUNNER_STORE="$work/reuse-$round" SCRATCH="$work/scratch-$round"
  sweep earlier $((points / 2)) "sleep 0.025;" > "$work/earlier.yaml"
  sweep overlap "$points" "sleep 0.025;" > "$work/overlap.yaml"
  sweep full "$points" "sleep 0.025;" > "$work/full.yaml"
  ./batchrunner run --no-compact "$work/earlier.yaml" >/dev/null 2>&1
  # The full run in a store of its own: its points must not feed the overlapping sweep.
  full() { BATCHRUNNER_STORE="$work/full-$round" measure ./batchrunner run --no-reuse --no-compact "$work/full.yaml" >> "$work/full.txt"; }
  if [ $((round % 2)) = 1 ]; then
    measure ./batchrunner run --no-compact "$work/overlap.yaml" >> "$work/overlap.txt"
    full
  else
    full
    measure ./batchrunner run --no-compact "$work/overlap.yaml" >> "$work/overlap.txt"
  fi
  reused=$(./batchrunner query "SELECT count(reused_from) FROM indexes WHERE batchjob = 'overlap'" --format csv | tail -1)
  [ "$reused" = $((points / 2)) ] || { echo "expected $((points / 2)) reused indexes, got $reused" >&2; exit 1; }
  rm -rf "$BATCHRUNNER_STORE" "$work/full-$round"
done

echo "reuse: $points points of 25 ms at parallelism 2, half of them computed by an earlier run"
row "overlapping sweep (reuse on)" "$work/overlap.txt"
row "full run (--no-reuse)" "$work/full.txt"
awk -v a="$(cut -d' ' -f2 "$work/overlap.txt" | median)" -v b="$(cut -d' ' -f2 "$work/full.txt" | median)" \
  'BEGIN { printf "ratio: %.1f%% of a full run'"'"'s time (target <= 52%%)\n", 100 * a / b }'
