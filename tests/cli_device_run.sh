#!/usr/bin/env bash
# cli_device_run.sh BUBBLESIM SRCDIR - gpu/device-run.sh --dry-run on any
# machine: the whole device script (facts, probe, smoke, calibrated and mlp
# scenarios, GPU tests) runs without a GPU, exits 0, and leaves at most 8
# files in OUTDIR (a device call returns no more), among them summary.txt,
# log.txt and one archive holding every scenario's report and results. A
# spent budget skips steps, still packs, and says so (exit 5).
set -u
bin=$1
src=$2
build=$(cd "$(dirname "$bin")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

BUILD=$build "$src/gpu/device-run.sh" "$tmp/out" --dry-run >"$tmp/stdout" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { fail "dry run exited $rc"; cat "$tmp/stdout"; }
files=$(find "$tmp/out" -type f | wc -l)
[ "$files" -le 8 ] || fail "$files files in OUTDIR (8 at most come back)"
[ -z "$(find "$tmp/out" -mindepth 1 -type d)" ] || fail "OUTDIR has folders"
for f in summary.txt log.txt results.tar.gz; do
    [ -s "$tmp/out/$f" ] || fail "no $f"
done
sum=$tmp/out/summary.txt
grep -q '^DRY RUN' "$sum" || fail "summary does not say DRY RUN"
grep -q '^facts: exit 0' "$sum" || fail "no facts step"
grep -q '^probe: exit 3' "$sum" || fail "probe without a GPU should exit 3"
grep -q '^tests: skipped (77)' "$sum" || fail "GPU tests should skip without a GPU"
# 1 smoke + 2 workloads x 3 stage counts x 5 schedules, each exit 0
n=$(grep -cE '^(smoke|calibrated|mlp)-[a-z0-9-]+-p[0-9]+ +exit 0 +makespan predicted' "$sum")
[ "$n" -eq 31 ] || fail "$n scenarios passed, 31 expected"
grep -q '^exit 0$' "$sum" || fail "summary does not end with exit 0"
mkdir "$tmp/x"
tar -C "$tmp/x" -xzf "$tmp/out/results.tar.gz" || fail "archive does not unpack"
for name in smoke-1f1b-p2 calibrated-interleaved-p8 mlp-pipedream-p4; do
    for f in configs/$name.json $name.json $name.predicted.trace.json $name.measured.trace.json; do
        [ -s "$tmp/x/results/$f" ] || fail "archive lacks results/$f"
    done
    grep -q '"dry_run":[[:space:]]*true' "$tmp/x/results/$name.json" ||
        fail "$name.json does not say dry_run"
done
grep -q '"traceEvents"' "$tmp/x/results/mlp-pipedream-p4.measured.trace.json" ||
    fail "measured trace has no events"
[ -s "$tmp/x/results/probe.err" ] || fail "archive lacks the probe's message"

# The carried layout: a build folder holding only cli/bubblesim and a copy
# of libcjson.so.1, which the script finds through LD_LIBRARY_PATH (the
# facts record where ldd found it).
lib=/usr/lib/x86_64-linux-gnu/libcjson.so.1
mkdir -p "$tmp/kit/cli"
cp "$bin" "$tmp/kit/cli/bubblesim"
[ -r "$lib" ] && cp "$lib" "$tmp/kit/"
STAGES=2 SCHEDULES=1f1b BUILD=$tmp/kit "$src/gpu/device-run.sh" "$tmp/outk" --dry-run \
    >"$tmp/stdoutk" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { fail "carried kit exited $rc"; cat "$tmp/stdoutk"; }
n=$(grep -cE '^(smoke|calibrated|mlp)-[a-z0-9-]+-p[0-9]+ +exit 0 ' "$tmp/outk/summary.txt")
[ "$n" -eq 3 ] || fail "carried kit: $n scenarios passed, 3 expected"
if [ -r "$lib" ]; then
    grep -q "libcjson.so.1 => $tmp/kit/libcjson.so.1" "$tmp/outk/log.txt" ||
        fail "the carried libcjson.so.1 is not the one found"
fi
[ -s "$tmp/x/results/summary.txt" ] || fail "archive lacks summary.txt"

# A spent budget: every step skipped, still packed, exit 5.
BUDGET=0 BUILD=$build "$src/gpu/device-run.sh" "$tmp/out0" --dry-run >"$tmp/stdout0" 2>&1
rc=$?
[ "$rc" -eq 5 ] || fail "BUDGET=0 exited $rc, 5 expected"
[ -s "$tmp/out0/results.tar.gz" ] && [ -s "$tmp/out0/summary.txt" ] || fail "BUDGET=0 left no archive"
grep -q 'skipped: budget spent' "$tmp/out0/summary.txt" || fail "BUDGET=0 does not say skipped"

# Usage errors: exit 2, nothing run.
"$src/gpu/device-run.sh" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no OUTDIR should exit 2"
BUILD=$tmp/nowhere "$src/gpu/device-run.sh" "$tmp/o2" --dry-run >/dev/null 2>&1
[ $? -eq 2 ] || fail "a BUILD without bubblesim should exit 2"
for bad in "STAGES=1" "STAGES=x" "BUDGET=-1" "REPS=0" "SCHEDULES=a;b"; do
    env "$bad" BUILD=$build "$src/gpu/device-run.sh" "$tmp/o3" --dry-run >/dev/null 2>&1
    [ $? -eq 2 ] || fail "$bad should exit 2"
done
"$src/gpu/device-run.sh" "$tmp/o4" --wrong >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown option should exit 2"

[ "$fails" -eq 0 ] || exit 1
echo "ok: device-run.sh --dry-run"
