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

# Not a dry run, on a machine without a usable GPU: the probe stops the run
# (exit 3), said in the summary, still packed.
if ! "$bin" verify --probe >/dev/null 2>&1; then
    BUILD=$build "$src/gpu/device-run.sh" "$tmp/outg" >"$tmp/stdoutg" 2>&1
    rc=$?
    [ "$rc" -eq 3 ] || { fail "no GPU, not a dry run: exit $rc, 3 expected"; cat "$tmp/stdoutg"; }
    grep -q '^no usable GPU: nothing measured' "$tmp/outg/summary.txt" ||
        fail "no GPU: summary does not say so"
    [ -s "$tmp/outg/results.tar.gz" ] || fail "no GPU: no archive"
    [ "$(find "$tmp/outg" -type f | wc -l)" -le 8 ] || fail "no GPU: too many files"
fi

# The path a real device takes, with a stand-in bubblesim (a script that
# answers like verify on a GPU): every scenario once with --json, the
# summary built from its report, exit 4 for a scenario outside tolerance
# (pipedream here), 5 for one past its timeout (forward here, stopped after
# SCENARIO_TIMEOUT), and the GPU tests run directly with the stand-in.
mkdir -p "$tmp/fake/cli"
cat >"$tmp/fake/cli/bubblesim" <<'FAKE'
#!/usr/bin/env bash
[ "$1" = --help ] && exit 0
[ "$1" = verify ] || exit 2
shift
if [ "$1" = --probe ]; then
    echo '{"name": "stand-in"}'
    exit 0
fi
cfg=$1
count=$(cat "$(dirname "$0")/../count" 2>/dev/null || echo 0)
echo $((count + 1)) >"$(dirname "$0")/../count"
grep -q '"schedule": "forward"' "$cfg" 2>/dev/null && exec sleep 30
code=0
pass=true
grep -q '"schedule": "pipedream"' "$cfg" 2>/dev/null && { code=4; pass=false; }
cat <<EOF
{
	"workload":	"calibrated",
	"mode":	"green-contexts",
	"selftest":	"green-context streams: ok",
	"kernels_warmed":	4,
	"makespan_predicted_ms":	27,
	"makespan_measured_ms":	27.27,
	"makespan_error_pct":	1,
	"makespan_error_us":	270,
	"makespan_error_per_hop_us":	135,
	"makespan_noise_pct":	0.5,
	"messages_match":	true,
	"orders_match":	true,
	"judged":	true,
	"pass":	$pass,
	"gpu":	{"module_loading": "EAGER"}
}
EOF
exit $code
FAKE
chmod +x "$tmp/fake/cli/bubblesim"
# and a stand-in nvidia-smi (its answer is made up for this test only)
mkdir -p "$tmp/smi"
printf '#!/bin/sh\necho "Stand-in GPU, 0.0, 1 MHz, 2 MHz"\n' >"$tmp/smi/nvidia-smi"
chmod +x "$tmp/smi/nvidia-smi"
PATH=$tmp/smi:$PATH STAGES=2 SCENARIO_TIMEOUT=1 BUILD=$tmp/fake "$src/gpu/device-run.sh" \
    "$tmp/outf" >"$tmp/stdoutf" 2>&1
rc=$?
sumf=$tmp/outf/summary.txt
[ "$rc" -eq 5 ] || { fail "stand-in run: exit $rc, 5 expected (a timeout)"; cat "$tmp/stdoutf"; }
grep -q '^DRY RUN' "$sumf" && fail "stand-in run says DRY RUN"
grep -qE '^calibrated-1f1b-p2 +exit 0 +makespan predicted 27 ms, measured 27.27 ms, error 1 % \(270 us, 135 us/hop\), spread 0.5 %, mode green-contexts, judged true, pass true$' "$sumf" ||
    { fail "stand-in run: summary line"; cat "$sumf"; }
grep -qE '^mlp-pipedream-p2 +exit 4 .*pass false$' "$sumf" || fail "stand-in run: exit 4 line"
grep -qE '^calibrated-forward-p2 +exit 124 +TIMEOUT after 1 s$' "$sumf" ||
    fail "stand-in run: timeout line"
grep -q '^gpu: Stand-in GPU, 0.0, 1 MHz, 2 MHz' "$sumf" || fail "stand-in run: no gpu line"
grep -q 'Stand-in GPU' "$tmp/outf/log.txt" || fail "stand-in run: facts lack nvidia-smi"
grep -q '^tests: exit 0' "$sumf" || { fail "stand-in run: GPU tests"; cat "$tmp/outf/log.txt"; }
# 1 smoke + 10 scenarios, each run once; then 14 runs of tests/gpu_device.sh
[ "$(cat "$tmp/fake/count")" -eq 25 ] || fail "stand-in run: $(cat "$tmp/fake/count") verify runs, 25 expected"
[ "$(find "$tmp/outf" -type f | wc -l)" -le 8 ] || fail "stand-in run: too many files"

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
