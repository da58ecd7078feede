#!/bin/bash
# cli_tune.sh BUBBLESIM SOURCE_DIR - `bubblesim tune` as a user runs it: its
# best against an exhaustive search with `bubblesim run` over the same small
# space; pruning against --no-prune; the bounds below every simulated value;
# the same result with any --jobs; the CSV and chart files; a configuration
# that fits nowhere (exit 2); bad tune keys; the two model configs.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

# A small model: 8 layers, h = 64, on 4 devices, global batch 8.
small() { # small MEMORY_LIMIT [EXTRA_TUNE_KEYS]
    cat <<EOF
{
  "schedule": "1f1b",
  "model": {"layers": 8, "hidden": 64, "heads": 4, "sequence": 32, "vocabulary": 1000},
  "hardware": {"peak_flops": 1e12, "efficiency": 0.5, "bandwidth": 1e10, "latency": 0.001,
               "tp_bandwidth": 1e10, "tp_latency": 0.002},
  "tune": {"devices": 4, "global_batch": 8, "memory_limit": $1,
           "tensor_parallel": [1, 2, 4], "virtual_stages": [1, 2, 4],
           "microbatch_sizes": [1, 2, 4, 8]${2:-}}
}
EOF
}

# 1. Everything fits: tune's best time equals the minimum over every
#    schedule x T x D x ZeRO stage x V x b that `bubblesim run` accepts.
small 1e12 >"$tmp/all.json"
checks=$((checks + 1))
if "$bin" tune "$tmp/all.json" --out "$tmp/all" >"$tmp/all.out" 2>&1; then
    tuned=$(awk -F, '$7 == "fits" { if (best == "" || $8 < best) best = $8 } END { print best }' "$tmp/all/tune.csv")
    schedules=$("$bin" --help | sed -n 's/^schedules: //p' | tr -d ',')
    best=""
    runs=0
    dp_runs=0
    for s in $schedules; do
        [ "$s" = custom ] || [ "$s" = forward ] && continue
        for t in 1 2 4; do
            for d in 1 2 4; do
                [ $((t * d)) -le 4 ] || continue
                zeros=0
                [ "$d" -gt 1 ] && zeros="0 1 2 3"
                for z in $zeros; do
                    for v in 1 2 4; do
                        for b in 1 2 4 8; do
                            [ $((d * b)) -le 8 ] || continue
                            time=$("$bin" run "$tmp/all.json" --set schedule="$s" \
                                --set stages=$((4 / t / d)) --set microbatches=$((8 / b / d)) \
                                --set virtual_stages=$v --set tensor_parallel=$t \
                                --set model.microbatch_size=$b --set data_parallel=$d \
                                --set zero_stage=$z --json 2>/dev/null |
                                sed -n 's/^  "iteration_time": \(.*\),$/\1/p') || continue
                            [ -n "$time" ] || continue
                            runs=$((runs + 1))
                            [ "$d" -gt 1 ] && dp_runs=$((dp_runs + 1))
                            best=$(awk -v a="$best" -v b="$time" 'BEGIN { print (a == "" || b < a) ? b : a }')
                        done
                    done
                done
            done
        done
    done
    awk -v a="$tuned" -v b="$best" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-6 && d > -1e-6) }' ||
        fail "tune's best $tuned ms, exhaustive search over $runs runs $best ms"
    [ "$runs" -gt 20 ] || fail "exhaustive search ran only $runs configurations"
    [ "$dp_runs" -gt 20 ] || fail "exhaustive search ran only $dp_runs configurations with D > 1"
    simulated=$(awk -F, '$7 == "fits"' "$tmp/all/tune.csv" | wc -l)
    [ "$simulated" -lt "$runs" ] || fail "pruning simulated $simulated of $runs"
else
    fail "tune all.json failed: $(cat "$tmp/all.out")"
fi

# 2. A memory limit between the smallest and largest need: pruning changes
#    nothing in the best 5 or the front, and --jobs changes nothing at all.
small 4e6 >"$tmp/lim.json"
checks=$((checks + 1))
"$bin" tune "$tmp/lim.json" --top 5 --out "$tmp/p" --jobs 3 >"$tmp/p.out" 2>&1 || fail "tune lim.json"
"$bin" tune "$tmp/lim.json" --top 5 --out "$tmp/n" --no-prune >"$tmp/n.out" 2>&1 || fail "tune --no-prune"
"$bin" tune "$tmp/lim.json" --top 5 --out "$tmp/j1" --jobs 1 >/dev/null 2>&1 || fail "tune --jobs 1"
sed -n '/^best/,/^reproduce/p' "$tmp/p.out" >"$tmp/p.best"
sed -n '/^best/,/^reproduce/p' "$tmp/n.out" >"$tmp/n.best"
[ -s "$tmp/p.best" ] && cmp -s "$tmp/p.best" "$tmp/n.best" ||
    fail "pruned and exhaustive results differ:"$'\n'"$(diff "$tmp/p.best" "$tmp/n.best")"
cmp -s "$tmp/p/tune.csv" "$tmp/j1/tune.csv" || fail "--jobs 3 and --jobs 1 wrote different CSVs"
grep -q ',over_memory,' "$tmp/n/tune.csv" || fail "lim.json: nothing over memory; limit too high for the test"
grep -q ',fits,' "$tmp/n/tune.csv" || fail "lim.json: nothing fits; limit too low for the test"

# 3. The bounds are bounds: every simulated point is at least its bound.
checks=$((checks + 1))
awk -F, 'NR > 1 && ($7 == "fits" || $7 == "over_memory") {
    n++
    if ($8 < $18 - 1e-6) { print "time " $8 " below its bound " $18 ": " $0; bad = 1 }
    if ($10 < $19 - 1) { print "memory " $10 " below its bound " $19 ": " $0; bad = 1 }
} END { if (n < 50) { print "only " n " simulated"; bad = 1 }; exit bad }' "$tmp/n/tune.csv" >"$tmp/bounds" ||
    fail "bounds: $(cat "$tmp/bounds")"

# 4. Files: CSV with a header and one row per candidate; gp and dat beside
#    the png; without gnuplot a clear message, no picture, exit 2 as run and sweep.
checks=$((checks + 1))
head -1 "$tmp/p/tune.csv" | grep -q '^schedule,stages,tensor_parallel,virtual_stages,microbatch_size,microbatches,status,time_per_iteration_ms' ||
    fail "CSV header: $(head -1 "$tmp/p/tune.csv")"
[ -s "$tmp/p/tune.gp" ] && [ -s "$tmp/p/tune.dat" ] || fail "tune.gp or tune.dat missing"
if command -v gnuplot >/dev/null; then
    [ -s "$tmp/p/tune.png" ] || fail "tune.png missing although gnuplot is installed"
fi
# Without gnuplot: exit 2 as run and sweep, the CSV and the chart's data and script kept.
expect 2 "gnuplot not found on PATH" env PATH=/nonexistent "$bin" tune "$tmp/lim.json" --out "$tmp/nognuplot"
[ ! -e "$tmp/nognuplot/tune.png" ] && [ -s "$tmp/nognuplot/tune.csv" ] || fail "without gnuplot: wrong files"
env PATH=/nonexistent "$bin" tune "$tmp/lim.json" --out "$tmp/nognuplot" 2>/dev/null | grep -q "^wrote.*tune\.png" &&
    fail "without gnuplot: tune claims it wrote the chart"
ls -a "$tmp/p" | grep -q '\.tmp' && fail "temporary files left in $tmp/p"

# 5. Nothing fits: exit 2, with the least memory any configuration needs.
small 1e5 >"$tmp/none.json"
expect 2 "no configuration fits in 0.00 GiB per device" "$bin" tune "$tmp/none.json" --out "$tmp/none"
[ ! -e "$tmp/none/tune.csv" ] || fail "a failed tune wrote tune.csv"

# 6. Bad input.
expect 2 "seed-p4-m8.json: model: missing" "$bin" tune "$src/configs/seed-p4-m8.json"
cat >"$tmp/notune.json" <<'EOF'
{"model": {"layers": 8, "hidden": 64, "heads": 4, "sequence": 32},
 "hardware": {"peak_flops": 1e12, "memory_bytes": 1e9}}
EOF
expect 2 "notune.json: tune: missing; expected an object with devices" "$bin" tune "$tmp/notune.json"
small 1e12 ', "devices": 0' | sed 's/"devices": 4, //' >"$tmp/dev0.json"
expect 2 "dev0.json: tune.devices: expected an integer from 1" "$bin" tune "$tmp/dev0.json"
small 1e12 ', "schedules": ["1f1b", "custom"]' >"$tmp/custom.json"
expect 2 "custom.json: tune.schedules[1]: expected the name of a built-in schedule" "$bin" tune "$tmp/custom.json"
small 1e12 ', "speed": 1' >"$tmp/key.json"
expect 2 "key.json: tune.speed: unknown key" "$bin" tune "$tmp/key.json"
small 1e12 | sed 's/"schedule": "1f1b",/"schedule": "1f1b", "layers_per_stage": [4, 4], "stages": 2,/' >"$tmp/lps.json"
expect 2 "lps.json: layers_per_stage: tune chooses P and V" "$bin" tune "$tmp/lps.json"
expect 2 "all.json: tune: nothing to search" "$bin" tune "$tmp/all.json" --set 'tune.microbatch_sizes=[3]'
expect 2 "tune: --top: expected an integer" "$bin" tune "$tmp/all.json" --top 0
expect 2 "unknown option" "$bin" tune "$tmp/all.json" --fast
expect 2 "missing CONFIG" "$bin" tune
expect 2 "cannot open" "$bin" tune "$tmp/nonexistent.json"
# Data parallelism and ZeRO (issue 13): bad values name the key, exit 2.
expect 2 "all.json: tune.data_parallel[1]: D = 3 does not divide tune.devices = 4" \
    "$bin" tune "$tmp/all.json" --set 'tune.data_parallel=[1, 3]'
expect 2 "all.json: tune.zero_stages[0]: expected an integer from 0 to 3, got 4" \
    "$bin" tune "$tmp/all.json" --set 'tune.zero_stages=[4]'
expect 2 "all.json: zero_stage: expected an integer from 0 to 3, got 4" \
    "$bin" run "$tmp/all.json" --set zero_stage=4
expect 2 "all.json: data_parallel: expected an integer from 1 to 65536, got a string" \
    "$bin" run "$tmp/all.json" --set data_parallel=nan
expect 2 "all.json: hardware.gpus_per_node: expected an integer from 0 to 65536" \
    "$bin" run "$tmp/all.json" --set hardware.gpus_per_node=1e300
expect 2 "all.json: overlap_grad_reduce: expected true or false" \
    "$bin" run "$tmp/all.json" --set overlap_grad_reduce=\"yes\"
expect 2 "all.json: network.blocking: expected true or false" \
    "$bin" run "$tmp/all.json" --set network.blocking=1
expect 0 "memory per device (GiB)" "$bin" run "$tmp/all.json" --set data_parallel=2 --set zero_stage=1

# 7. --set reaches the config and the tune keys; the printed command
#    reproduces the best time with `bubblesim run`.
expect 2 "no configuration fits" "$bin" tune "$tmp/all.json" --set tune.memory_limit=1e5
expect 2 "all.json: model.depth: unknown key" "$bin" tune "$tmp/all.json" --set model.depth=3
checks=$((checks + 1))
"$bin" tune "$tmp/all.json" --set model.sequence=64 --top 1 >"$tmp/set.out" 2>&1 || fail "tune --set model.sequence=64"
cmd=$(sed -n 's/^reproduce the best: bubblesim run //p' "$tmp/set.out")
want=$(awk '/^best/ { getline; getline; print $11; exit }' "$tmp/set.out")
case "$cmd" in *"--set 'model.sequence=64'"*) ;; *) fail "reproduce line lacks the --set: $cmd" ;; esac
got=$(eval "\"\$bin\" run $cmd --json" | sed -n 's/^  "iteration_time": \(.*\),$/\1/p')
awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(a != "" && d < 0.0006 && d > -0.0006) }' ||
    fail "reproduced time $got, tune printed $want ($cmd)"

# 8. The shipped model configs run and tune.
expect 0 "schedule 1f1b: P=8 M=128" "$bin" run "$src/configs/model-gpt3-175b-64gpu.json"
expect 0 "schedule forward: P=2 M=16" "$bin" run "$src/configs/model-llama70b-infer-4gpu.json"
expect 0 "time-memory Pareto front" "$bin" tune "$src/configs/model-gpt3-175b-64gpu.json" --top 3

# The schedule column fits the longest name: the rows of both tables line up
# with their heading even with interleaved-zb among them.
checks=$((checks + 1))
"$bin" tune "$tmp/all.json" --set 'tune.schedules=["interleaved-zb","1f1b"]' \
    --set 'tune.tensor_parallel=[1]' >"$tmp/wide.out" 2>&1 || fail "tune with interleaved-zb failed"
grep -q "^   1  interleaved-zb " "$tmp/wide.out" || fail "tune lists no interleaved-zb row"$'\n'"$(cat "$tmp/wide.out")"
awk '/^rank  schedule / { t = 1; w = length($0); next }
     !NF { t = 0 }
     t && length($0) != w { print; bad = 1 } END { exit bad }' "$tmp/wide.out" ||
    fail "tune's table rows are not aligned with their heading"$'\n'"$(cat "$tmp/wide.out")"
expect 0 "time-memory Pareto front" "$bin" tune "$src/configs/model-llama70b-infer-4gpu.json" --top 3

finish cli_tune
