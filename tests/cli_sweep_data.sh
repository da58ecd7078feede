#!/bin/bash
# cli_sweep_data.sh BUBBLESIM SOURCE_DIR - the data side of `bubblesim sweep`
# as a user drives it: --set on the base, the base checked once, "cases"
# (zipped points) beside the cross product, a speed-up against a named
# "baseline", refusals (empty key path, every point refused, limits), the
# stale NAME.partial.csv, and sharded sweeps joined by `bubblesim merge`
# byte for byte, with every bad shard refused.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

# nfiles DIR : how many files DIR holds (0 when it does not exist).
nfiles() { find "$1" -type f 2>/dev/null | wc -l; }

cfg grid.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8,
 "costs": {"forward": 1.0, "backward": 2.0},
 "sweep": {"schedule": ["gpipe", "1f1b", "interleaved"], "virtual_stages": [1, 2],
           "microbatches": [4, 8, 12]}}'

# --- --set on the base ---------------------------------------------------
"$bin" sweep "$tmp/grid.json" --set costs.backward=4 >"$tmp/set.csv" 2>&1
check "--set runs" test $? -eq 0
b4=$(awk -F, '$1 == "gpipe" && $2 == 1 && $3 == 8 { print $5 }' "$tmp/set.csv")
r=$("$bin" run "$src/configs/seed-p4-m8.json" --set schedule=gpipe --set costs.backward=4 \
    --set costs.forward=1 --set stages=4 --set microbatches=8 --set virtual_stages=1 --json |
    sed -n 's/^  "iteration_time": \(.*\),$/\1/p')
check "--set costs.backward=4 reaches the points (sweep $b4, run $r)" test "$b4" = "$r"
expect 2 "the sweep sets this key at every point" "$bin" sweep "$tmp/grid.json" --set stages=2 --set microbatches=3
expect 2 "grid.json: --set costs.fwd: unknown key" "$bin" sweep "$tmp/grid.json" --set costs.fwd=1
expect 2 "--set nokey: expected KEY=VALUE" "$bin" sweep "$tmp/grid.json" --set nokey
expect 2 "--set needs a value" "$bin" sweep "$tmp/grid.json" --set
expect 2 "expected a finite number > 0" "$bin" sweep "$tmp/grid.json" --set costs.forward=-1
expect 2 "expected a finite number" "$bin" sweep "$tmp/grid.json" --set 'costs.forward="x"'

# --- the base, checked once before any point -----------------------------
for bad in '"stagez": 4' '"costs": {"fwd": 1}' '"stages": "four"' '"schedule": "1f1bb"' \
    '"microbatches": 1e300' '"costs": {"forward": 0}'; do
    cfg base.json "{\"schedule\": \"1f1b\", $bad, \"sweep\": {\"virtual_stages\": [1, 2]}}"
    checks=$((checks + 1))
    out=$("$bin" sweep "$tmp/base.json" --out "$tmp/base-out" 2>&1)
    rc=$?
    [ $rc -eq 2 ] || fail "base with $bad: exit $rc, want 2: $out"
    case "$out" in *base.json:*) ;; *) fail "base with $bad: message lacks the file: $out" ;; esac
    [ "$(nfiles "$tmp/base-out")" -eq 0 ] || fail "base with $bad: wrote files"
done
# A base completed by the sweep is fine: its arrays fit the swept P.
cfg complete.json '{"stages": 2, "costs": {"forward": [1, 2, 3, 4]},
 "sweep": {"stages": [4]}}'
expect 0 "stages" "$bin" sweep "$tmp/complete.json"

# --- refusals --------------------------------------------------------------
cfg empty.json '{"sweep": {"": [1, 2]}}'
expect 2 'sweep."": an empty key path' "$bin" sweep "$tmp/empty.json"
cfg empty2.json '{"sweep": {"cases": [{"": 1}]}}'
expect 2 'sweep.cases[0]."": an empty key path' "$bin" sweep "$tmp/empty2.json"
cfg allref.json '{"schedule": "1f1b", "sweep": {"virtual_stages": [2, 3]}}'
expect 2 "all 2 points were refused, so nothing was written" "$bin" sweep "$tmp/allref.json" --out "$tmp/allref"
check "every point refused: no files" test "$(nfiles "$tmp/allref")" -eq 0
expect 2 "all 2 points were refused" "$bin" sweep "$tmp/allref.json"
checks=$((checks + 1))
[ -z "$("$bin" sweep "$tmp/allref.json" 2>/dev/null)" ] || fail "every point refused: CSV on stdout"
# More than 2^64 points: the size stated, not "more than that".
python3 - "$tmp/huge.json" <<'PY' 2>/dev/null || awk 'BEGIN {
    printf "{\"sweep\": {" > ARGV[1]
    split("costs.forward costs.backward costs.weight costs.optimizer network.latency network.bandwidth network.message_bytes", k, " ")
    for (i = 1; i <= 7; i++) { printf "%s\"%s\": [", (i > 1 ? ", " : ""), k[i] > ARGV[1]
        for (j = 1; j <= 1000; j++) printf "%s%d", (j > 1 ? ", " : ""), j > ARGV[1]
        printf "]" > ARGV[1] }
    print "}}" > ARGV[1] }' "$tmp/huge.json"
import json, sys
keys = ["costs.forward", "costs.backward", "costs.weight", "costs.optimizer",
        "network.latency", "network.bandwidth", "network.message_bytes"]
json.dump({"sweep": {k: list(range(1, 1001)) for k in keys}}, open(sys.argv[1], "w"))
PY
expect 2 "about 1e+21 (more than 2^64) points exceed the limit" "$bin" sweep "$tmp/huge.json"
cfg big.json '{"sweep": {"costs.forward": [1,2,3,4,5,6,7,8,9,10], "costs.backward": [1,2,3,4,5,6,7,8,9,10]}}'
expect 2 "100 points exceed the limit of 99" "$bin" sweep "$tmp/big.json" --max-points 99

# --- cases, zipped beside the cross product ------------------------------
cfg cases.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8,
 "sweep": {"cases": [{"schedule": "1f1b", "virtual_stages": 1},
                     {"schedule": "interleaved", "virtual_stages": 2},
                     {"schedule": "interleaved", "virtual_stages": 4}],
           "microbatches": [8, 16],
           "baseline": {"schedule": "1f1b"}}}'
"$bin" sweep "$tmp/cases.json" >"$tmp/cases.csv" 2>"$tmp/cases.err"
rc=$?
check "cases sweep runs: $(cat "$tmp/cases.err")" test "$rc" -eq 0
check "cases: 3 cases x 2 values = 6 rows" test "$(($(wc -l <"$tmp/cases.csv") - 1))" -eq 6
check "cases: no point refused" test "$(awk -F, 'NR > 1 && $NF != ""' "$tmp/cases.csv" | wc -l)" -eq 0
check "cases: the rows in order" test "$(awk -F, 'NR > 1 { printf "%s/%s/%s ", $1, $2, $3 }' "$tmp/cases.csv")" = \
    "1f1b/1/8 1f1b/1/16 interleaved/2/8 interleaved/2/16 interleaved/4/8 interleaved/4/16 "
check "cases: a speedup column" grep -q '^schedule,virtual_stages,microbatches,.*,speedup,reason$' "$tmp/cases.csv"
# speedup = baseline's time / the point's, the baseline being 1f1b at the same M.
while IFS=, read -r s v m _ t rest; do
    checks=$((checks + 1))
    sp=$(echo "$rest" | awk -F, '{ print $(NF - 1) }')
    base=$(awk -F, -v m="$m" '$1 == "1f1b" && $3 == m { print $5 }' "$tmp/cases.csv")
    awk -v sp="$sp" -v b="$base" -v t="$t" 'BEGIN { d = sp - b / t; exit !(d < 1e-12 && d > -1e-12) }' ||
        fail "speedup of $s V=$v M=$m: $sp, want $base / $t"
done < <(tail -n +2 "$tmp/cases.csv")
# Each row is what `run` gives for the same values.
checks=$((checks + 1))
t_run=$("$bin" run "$src/configs/seed-p4-m8.json" --set schedule=interleaved --set virtual_stages=4 \
    --set microbatches=16 --json | sed -n 's/^  "iteration_time": \(.*\),$/\1/p')
t_sw=$(awk -F, '$1 == "interleaved" && $2 == 4 && $3 == 16 { print $5 }' "$tmp/cases.csv")
[ "$t_run" = "$t_sw" ] || fail "interleaved V=4 M=16: sweep $t_sw, run $t_run"
"$bin" sweep "$tmp/cases.json" --out "$tmp/cases-out" 2>/dev/null
check "cases JSON has speedup" grep -q '"speedup": 1,' "$tmp/cases-out/cases.json"
# A baseline over a plain list, and a refused baseline point gives empty cells.
cfg base2.json '{"sweep": {"microbatches": [4, 8, 16], "baseline": {"microbatches": 4}}}'
"$bin" sweep "$tmp/base2.json" >"$tmp/base2.csv" 2>/dev/null
check "baseline on a list: M=4 has speedup 1" test "$(awk -F, '$1 == 4 { print $(NF - 1) }' "$tmp/base2.csv")" = 1
cfg base3.json '{"schedule": "1f1b", "sweep": {"virtual_stages": [2, 1], "baseline": {"virtual_stages": 2}}}'
"$bin" sweep "$tmp/base3.json" >"$tmp/base3.csv" 2>/dev/null
check "refused baseline: empty speedup" test "$(awk -F, '$1 == 1 { print $(NF - 1) }' "$tmp/base3.csv")" = ""
# Bad cases and baselines.
echo '{"sweep": {"cases": []}}' >"$tmp/no-cases.json"
expect 2 "sweep.cases: expected a non-empty list of objects" "$bin" sweep "$tmp/no-cases.json"
cfg c1.json '{"sweep": {"cases": [{"stages": 2}, {"microbatches": 4}]}}'
expect 2 "sweep.cases[1].microbatches: not in sweep.cases[0]" "$bin" sweep "$tmp/c1.json"
cfg c2.json '{"sweep": {"cases": [{"stages": 2, "microbatches": 4}, {"stages": 4}]}}'
expect 2 "sweep.cases[1]: lacks microbatches" "$bin" sweep "$tmp/c2.json"
cfg c3.json '{"sweep": {"cases": [{"stages": 2}, 4]}}'
expect 2 "sweep.cases[1]: expected a non-empty object" "$bin" sweep "$tmp/c3.json"
cfg c4.json '{"sweep": {"cases": [{"stages": 2}], "stages": [4]}}'
expect 2 "sweep.stages: swept twice" "$bin" sweep "$tmp/c4.json"
cfg c5.json '{"sweep": {"cases": [{"stagez": 2}]}}'
expect 2 "sweep.stagez: not a config key path" "$bin" sweep "$tmp/c5.json"
cfg c6.json '{"sweep": {"cases": [{"stages": 2, "stages": 3}]}}'
expect 2 "sweep.cases[0].stages: key appears more than once" "$bin" sweep "$tmp/c6.json"
cfg b1.json '{"sweep": {"stages": [2, 4], "baseline": {"microbatches": 8}}}'
expect 2 "sweep.baseline.microbatches: not a swept key" "$bin" sweep "$tmp/b1.json"
cfg b2.json '{"sweep": {"stages": [2, 4], "baseline": {"stages": 8}}}'
expect 2 "sweep.baseline.stages: not one of the swept values" "$bin" sweep "$tmp/b2.json"
cfg b3.json '{"sweep": {"stages": [2, 4], "baseline": [2]}}'
expect 2 "sweep.baseline: expected an object" "$bin" sweep "$tmp/b3.json"
sed 's/"schedule": "1f1b"}}}/"schedule": "gpipe"}}}/' "$tmp/cases.json" >"$tmp/no-baseline.json"
expect 2 "no case of sweep.cases has the baseline" "$bin" sweep "$tmp/no-baseline.json"

# --- a stale NAME.partial.csv goes with a complete run ---------------------
mkdir -p "$tmp/stale"
echo "old" >"$tmp/stale/grid.partial.csv"
"$bin" sweep "$tmp/grid.json" --out "$tmp/stale" 2>/dev/null
check "complete run without --partial removes NAME.partial.csv" test ! -e "$tmp/stale/grid.partial.csv"
echo "old" >"$tmp/stale/grid.partial.csv"
"$bin" sweep "$tmp/grid.json" --out "$tmp/stale" --partial 2>/dev/null
check "complete run with --partial removes NAME.partial.csv" test ! -e "$tmp/stale/grid.partial.csv"

# An interrupted --partial sweep with a baseline: speedups of finished
# points against finished baselines, never a made-up 0.
cfg part.json '{"sweep": {"microbatches": [4, 8, 12, 16, 20, 24], "baseline": {"microbatches": 4}}}'
env BUBBLESIM_TEST_SIGINT_AFTER=3 "$bin" sweep "$tmp/part.json" --out "$tmp/part" --partial --jobs 1 \
    >/dev/null 2>&1
check "interrupted: exit 130 and a partial file" test -s "$tmp/part/part.partial.csv"
checks=$((checks + 1))
awk -F, 'NR == 2 && $(NF - 1) != 1 { bad = 1 } NR > 1 { if ($(NF - 1) == "" || $(NF - 1) + 0 <= 0) bad = 1; n++ }
         END { exit bad || n < 3 }' \
    "$tmp/part/part.partial.csv" || fail "partial speedups: $(cat "$tmp/part/part.partial.csv")"

# --- shards ------------------------------------------------------------------
"$bin" sweep "$tmp/grid.json" --out "$tmp/full" 2>/dev/null
"$bin" sweep "$tmp/cases.json" --out "$tmp/full" 2>/dev/null
for conf in grid cases; do
    for n in 1 2 3 7 25; do
        dirs=()
        for k in $(seq 1 $n); do
            "$bin" sweep "$tmp/$conf.json" --out "$tmp/sh-$conf-$n-$k" --shard "$k/$n" --jobs 2 2>/dev/null ||
                fail "$conf shard $k/$n failed"
            dirs+=("$tmp/sh-$conf-$n-$k")
        done
        "$bin" merge "${dirs[@]}" --out "$tmp/merged-$conf-$n" 2>/dev/null || fail "merge of $n $conf shards failed"
        for ext in csv json; do
            checks=$((checks + 1))
            cmp -s "$tmp/full/$conf.$ext" "$tmp/merged-$conf-$n/$conf.$ext" ||
                fail "$conf.$ext merged from $n shards differs from the unsharded run"
        done
    done
done
# Every shard in one directory (GNU parallel style), merged in any order.
for k in 3 1 2; do "$bin" sweep "$tmp/grid.json" --out "$tmp/one" --shard "$k/3" 2>/dev/null; done
"$bin" merge "$tmp/one" --out "$tmp/one-merged" 2>/dev/null
check "shards in one directory merge byte for byte" cmp -s "$tmp/full/grid.csv" "$tmp/one-merged/grid.csv"
# --set travels in the shard: merged equals the unsharded run with --set.
"$bin" sweep "$tmp/grid.json" --set costs.backward=3 --out "$tmp/fullset" 2>/dev/null
for k in 1 2; do "$bin" sweep "$tmp/grid.json" --set costs.backward=3 --out "$tmp/set2" --shard "$k/2" 2>/dev/null; done
"$bin" merge "$tmp/set2" --out "$tmp/set2-merged" 2>/dev/null
check "sharded --set merges byte for byte" cmp -s "$tmp/fullset/grid.json" "$tmp/set2-merged/grid.json"
"$bin" merge "$tmp/one" --out "$tmp/plotted" --plot >/dev/null 2>&1
check "merge --plot exits 0" test $? -eq 0

# Bad shards.
for bad in 4/3 0/3 1/0 3 1/ /3 -1/3 1/3x 1/99999999999999999999 a/b 1/1000001; do
    expect 2 "--shard $bad: expected K/N" "$bin" sweep "$tmp/grid.json" --out "$tmp/bad" --shard "$bad"
done
check "bad --shard: nothing written" test "$(nfiles "$tmp/bad")" -eq 0
expect 2 "--shard needs --out DIR" "$bin" sweep "$tmp/grid.json" --shard 1/2
expect 2 "--shard needs --out DIR" "$bin" sweep "$tmp/grid.json" --out "$tmp/bad" --shard 1/2 --plot
expect 2 "1 of 3 shards missing: 2" "$bin" merge "$tmp/sh-grid-3-1" "$tmp/sh-grid-3-3" --out "$tmp/m"
expect 2 "both hold shard 1 of 3 (overlapping shards)" "$bin" merge "$tmp/sh-grid-3-1" "$tmp/one" --out "$tmp/m"
expect 2 "every shard of a merge comes from the same --shard K/N split" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/sh-grid-3-2" --out "$tmp/m"
expect 2 "a shard of another sweep" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/set2" --out "$tmp/m"
expect 2 "a shard of another sweep" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/sh-cases-2-2" --out "$tmp/m"
mkdir -p "$tmp/nothing"
expect 2 "no sweep shard in it" "$bin" merge "$tmp/nothing" --out "$tmp/m"
expect 2 "cannot open the directory" "$bin" merge "$tmp/does-not-exist" --out "$tmp/m"
expect 2 "expected DIR... --out DIR" "$bin" merge "$tmp/one"
expect 2 "expected DIR... --out DIR" "$bin" merge --out "$tmp/m"
expect 2 "unknown option" "$bin" merge "$tmp/one" --out "$tmp/m" --bogus
# Damaged shards: truncated, an extra row, a changed definition, a foreign file.
mkdir -p "$tmp/dmg"
cp "$tmp/sh-grid-2-2"/* "$tmp/dmg/"
f=$(ls "$tmp/dmg"/*)
head -n -1 "$f" >"$tmp/x" && cp "$tmp/x" "$f"
expect 2 "the shard ends after" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/dmg" --out "$tmp/m"
cp "$tmp/sh-grid-2-2"/* "$tmp/dmg/" && tail -n 1 "$f" >>"$f"
expect 2 "more rows than the shard's" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/dmg" --out "$tmp/m"
cp "$tmp/sh-grid-2-2"/* "$tmp/dmg/" && sed -i '$s/ ok / ko /' "$f"
expect 2 "expected the row of point" "$bin" merge "$tmp/sh-grid-2-1" "$tmp/dmg" --out "$tmp/m"
cp "$tmp/sh-grid-2-1"/* "$tmp/dmg/" && rm "$f" && f=$(ls "$tmp/dmg"/*) && sed -i '3s/"stages":4/"stages":5/' "$f"
expect 2 "does not match its fingerprint" "$bin" merge "$tmp/dmg" "$tmp/sh-grid-2-2" --out "$tmp/m"
echo "hello" >"$f"
expect 2 "not a bubblesim sweep shard" "$bin" merge "$tmp/dmg" "$tmp/sh-grid-2-2" --out "$tmp/m"
check "failed merges wrote nothing" test "$(nfiles "$tmp/m")" -eq 0

finish cli_sweep_data
