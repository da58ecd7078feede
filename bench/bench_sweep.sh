#!/usr/bin/env bash
# bench_sweep.sh BUBBLESIM CONFIG [JOBS] - times `bubblesim sweep CONFIG` (CSV
# to a temporary directory) and prints the wall time and the cost per point.
# Target (issue 7, docs/performance.md): 10,000 points, P up to 16, M up to
# 256, within 5 s on 2 cores. A benchmark, not a test: it reports, it does
# not judge.
set -u
bin=$1
config=$2
jobs=${3:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s.%N)
"$bin" sweep "$config" --jobs "$jobs" --out "$tmp" 2>/dev/null || exit 1
end=$(date +%s.%N)
points=$(($(wc -l <"$tmp"/*.csv) - 1))
awk -v s="$start" -v e="$end" -v n="$points" -v j="$jobs" -v c="$(nproc)" 'BEGIN {
    t = e - s
    printf "sweep: %d points, --jobs %d on %d online CPUs: %.3f s wall, %.1f us per point\n",
        n, j, c, t, 1e6 * t / n
}'
