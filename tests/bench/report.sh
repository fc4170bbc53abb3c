#!/usr/bin/env bash
# Benchmark of `batchrunner report` over a large sweep (./batchrunner, the native build). Figures, no pass/fail.
# One sweep of --indexes indexes (grid a × b with repeats), each writing --rows result rows, is run twice: compacted
# (the default: the report reads its Parquet) and with --no-compact (the report reads 10,000 raw JSON-lines files).
# Over each, the medians of --rounds rounds of
#   report  batchrunner report NAME (every figure: DuckDB aggregations, then the HTML file)
#   peer    batchrunner query of one GROUP BY over the same rows (a bare DuckDB scan of them, through the same CLI)
# with the ratio report / peer, the report's peak memory (RSS) and its file's size.
# From the repository root:
#   ./tests/bench/report.sh [--rounds N] [--indexes N] [--rows N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds=3 indexes=10000 rows=100
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --indexes) indexes=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

BATCHRUNNER_CLI=native ./batchrunner --version >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BATCHRUNNER_STORE="$work/store"
now() { date +%s%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

# 50 values of a × 20 of b × repeats; each index writes $rows rows of three numbers (awk: one process per index).
repeats=$(( indexes / 1000 )); [ "$repeats" -ge 1 ] || { echo "--indexes: a multiple of 1,000 (50 × 20 points, repeated)" >&2; exit 2; }
indexes=$(( repeats * 1000 ))
sweep() { # name
  cat <<YAML
apiVersion: batchrunner.io/v1alpha1
kind: BatchJob
metadata: {name: $1}
spec:
  command: ["/bin/sh", "-c", "awk -v i=\$BATCHRUNNER_INDEX -v n=$rows 'BEGIN { for (r = 0; r < n; r++) printf \"{\\\\\"t\\\\\": %d, \\\\\"v\\\\\": %.4f, \\\\\"w\\\\\": %d}\\\\n\", r, (i % 50) * 0.1 + r * 0.01, (i + r) % 7 }' > \$BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
  parallelism: 2
  sweep: {grid: {a: [$(seq -s, 1 50)], b: [$(seq -s, 1 20)]}, repeats: $repeats}
YAML
}

echo "Report benchmark (native CLI; $indexes indexes × $rows rows = $((indexes * rows)) result rows; medians of $rounds rounds)"
echo
for kind in compacted raw; do
  name="report-$kind"
  sweep "$name" > "$work/$name.yaml"
  start=$(now)
  if [ "$kind" = raw ]; then ./batchrunner run "$work/$name.yaml" --no-compact >/dev/null 2>&1; else ./batchrunner run "$work/$name.yaml" >/dev/null 2>&1; fi
  echo "$kind: sweep run in $(seconds $(( $(now) - start ))) s"
  peer_sql="SELECT a, b, count(*) AS n, avg(v) AS v, stddev_samp(v) AS sd, avg(w) AS w FROM results WHERE batchjob = '$name' GROUP BY ALL ORDER BY ALL"
  : > "$work/report-ns" ; : > "$work/peer-ns" ; : > "$work/rss"
  for round in $(seq 1 "$rounds"); do
    start=$(now)
    /usr/bin/time -f "%M" -o "$work/time" ./batchrunner report "$name" -o "$work/$name.html" >/dev/null
    echo $(( $(now) - start )) >> "$work/report-ns"
    cat "$work/time" >> "$work/rss"
    start=$(now)
    ./batchrunner query "$peer_sql" --format csv --max-rows 100000 >/dev/null
    echo $(( $(now) - start )) >> "$work/peer-ns"
  done
  report=$(median < "$work/report-ns") peer=$(median < "$work/peer-ns")
  printf '  report %8s s   peer (one GROUP BY) %8s s   report/peer %5s×   peak RSS %s MiB   file %s KiB\n' \
    "$(seconds "$report")" "$(seconds "$peer")" "$(awk -v a="$report" -v b="$peer" 'BEGIN { printf "%.2f", a / b }')" \
    "$(( $(median < "$work/rss") / 1024 ))" "$(( $(stat -c %s "$work/$name.html") / 1024 ))"
done
