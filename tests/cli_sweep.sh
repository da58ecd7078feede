#!/usr/bin/env bash
# cli_sweep.sh BUBBLESIM SOURCE_ROOT - `bubblesim sweep` as a user runs it:
# every row equals the single `run --json` of its parameters (refused rows:
# the run is refused with the same reason); --jobs 1 and --jobs 2 write
# byte-identical files; a broken sweep object, an oversized sweep and an
# unwritable --out are refused with exit 2 before any simulation and leave
# no file; an interrupted sweep exits non-zero and leaves no file.
set -u
bin=$1
root=$2
. "$(dirname "$0")/cli_lib.sh"

# expect_refusal NAME CONFIG_TEXT NEEDLE... : exit 2 and stderr naming file and key path
expect_refusal() {
    local name=$1 text=$2
    shift 2
    printf '%s\n' "$text" >"$tmp/$name.json"
    mkdir -p "$tmp/out-$name"
    "$bin" sweep "$tmp/$name.json" --out "$tmp/out-$name" >"$tmp/$name.stdout" 2>"$tmp/$name.err"
    local rc=$?
    check "$name: exit 2 (got $rc)" test "$rc" -eq 2
    for needle in "$tmp/$name.json" "$@"; do
        check "$name: message names '$needle': $(cat "$tmp/$name.err")" \
            grep -qF -- "$needle" "$tmp/$name.err"
    done
    check "$name: nothing written" test -z "$(ls -A "$tmp/out-$name")"
}

if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: skipping"
    exit 77
fi

# --- every row equals its single run ------------------------------------------------
cat >"$tmp/grid.json" <<'EOF'
{
  "schedule": "1f1b", "stages": 4, "microbatches": 8,
  "costs": {"forward": 1.0, "backward": 2.0},
  "memory": {"activation_bytes": 1000},
  "sweep": {
    "schedule": ["gpipe", "1f1b", "pipedream", "interleaved", "forward"],
    "virtual_stages": [1, 2],
    "microbatches": [4, 6],
    "network.latency": [0, 0.25],
    "costs.forward": [1, [1, 2, 1, 1]]
  }
}
EOF
"$bin" sweep "$tmp/grid.json" --out "$tmp/grid" --jobs 2 2>"$tmp/grid.err"
rc=$?
check "grid sweep exits 0: $(cat "$tmp/grid.err")" test "$rc" -eq 0
check "grid CSV written" test -s "$tmp/grid/grid.csv"
check "grid JSON written" test -s "$tmp/grid/grid.json"
python3 - "$bin" "$tmp/grid.json" "$tmp/grid/grid.csv" "$tmp/grid/grid.json" <<'EOF'
import csv, json, subprocess, sys
binary, config, csv_path, json_path = sys.argv[1:]
spec = json.load(open(config))
swept = spec.pop("sweep")
base = config + ".base.json"
json.dump(spec, open(base, "w"))
rows = list(csv.DictReader(open(csv_path)))
doc = json.load(open(json_path))
expected_points = 1
for values in swept.values():
    expected_points *= len(values)
errors = []
if len(rows) != expected_points or len(doc["rows"]) != expected_points:
    errors.append("%d CSV rows, %d JSON rows, expected %d"
                  % (len(rows), len(doc["rows"]), expected_points))
metrics = ["makespan", "iteration_time", "bubble_ratio", "bubble_over_ideal",
           "span_bubble_ratio", "peak_activations", "peak_activation_bytes",
           "weight_versions", "messages", "message_bytes"]
ok_rows = refused_rows = 0
for i, (row, jrow) in enumerate(zip(rows, doc["rows"])):
    args = [binary, "run", base, "--json"]
    for key in swept:
        value = jrow[key]
        args += ["--set", "%s=%s" % (key, json.dumps(value))]
        if row[key] != (value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))):
            errors.append("row %d: CSV %s=%r, JSON %r" % (i, key, row[key], value))
    run = subprocess.run(args, capture_output=True, text=True)
    if row["reason"]:
        refused_rows += 1
        if run.returncode not in (2, 3) or row["reason"] not in run.stderr:
            errors.append("row %d refused (%s) but run gave %d: %s"
                          % (i, row["reason"], run.returncode, run.stderr.strip()))
        if jrow["reason"] != row["reason"] or jrow["makespan"] is not None:
            errors.append("row %d: JSON refused row differs" % i)
        continue
    ok_rows += 1
    if run.returncode != 0:
        errors.append("row %d ok in sweep, run failed: %s" % (i, run.stderr.strip()))
        continue
    single = json.loads(run.stdout)
    for m in metrics:
        if float(row[m]) != single[m] or jrow[m] != single[m]:
            errors.append("row %d %s: sweep %s / %s, run %s" % (i, m, row[m], jrow[m], single[m]))
    formula = single["formula"]["bubble_ratio"] if single["formula"] else None
    if (formula is None) != (row["formula_bubble_ratio"] == "") or \
       (formula is not None and float(row["formula_bubble_ratio"]) != formula) or \
       jrow["formula_bubble_ratio"] != formula:
        errors.append("row %d formula: sweep %r, run %r" % (i, row["formula_bubble_ratio"], formula))
if ok_rows == 0 or refused_rows == 0:
    errors.append("expected both simulated and refused rows, got %d and %d" % (ok_rows, refused_rows))
for e in errors[:20]:
    print("FAIL:", e)
print("rows compared with run --json: %d simulated, %d refused" % (ok_rows, refused_rows))
sys.exit(1 if errors else 0)
EOF
check "sweep rows equal single runs" test $? -eq 0

# --- --jobs does not change a byte ------------------------------------------------------
"$bin" sweep "$root/configs/sweep-bubble-vs-m.json" --jobs 1 >"$tmp/j1.csv" 2>/dev/null
"$bin" sweep "$root/configs/sweep-bubble-vs-m.json" --jobs 2 >"$tmp/j2.csv" 2>/dev/null
check "jobs 1 CSV non-empty" test -s "$tmp/j1.csv"
check "--jobs 1 and --jobs 2 CSV identical" cmp -s "$tmp/j1.csv" "$tmp/j2.csv"
"$bin" sweep "$tmp/grid.json" --out "$tmp/g1" --jobs 1 2>/dev/null
"$bin" sweep "$tmp/grid.json" --out "$tmp/g3" --jobs 3 2>/dev/null
check "--jobs 1 and --jobs 3 CSV identical" cmp -s "$tmp/g1/grid.csv" "$tmp/g3/grid.csv"
check "--jobs 1 and --jobs 3 JSON identical" cmp -s "$tmp/g1/grid.json" "$tmp/g3/grid.json"
check "--jobs 2 and --jobs 3 CSV identical" cmp -s "$tmp/grid/grid.csv" "$tmp/g3/grid.csv"
check "CSV header" grep -qx 'stages,microbatches,makespan,iteration_time,bubble_ratio,bubble_over_ideal,span_bubble_ratio,formula_bubble_ratio,peak_activations,peak_activation_bytes,weight_versions,messages,message_bytes,time_per_output_token,tokens_per_second,reason' <(head -n 1 "$tmp/j1.csv")
check "one row per point (4 x 6)" test "$(wc -l <"$tmp/j1.csv")" -eq 25

# --- a broken sweep object is refused with the file and key path -------------------------
expect_refusal not-object '{"stages": 4, "sweep": [1, 2]}' 'sweep' 'expected an object'
expect_refusal empty-object '{"sweep": {}}' 'sweep' 'empty object'
expect_refusal empty-list '{"sweep": {"stages": []}}' 'sweep.stages' 'non-empty list'
expect_refusal scalar '{"sweep": {"stages": 4}}' 'sweep.stages' 'non-empty list'
expect_refusal unknown-key '{"sweep": {"stages": [2], "costs.forwards": [1]}}' \
    'sweep.costs.forwards' 'not a config key path'
expect_refusal unknown-section '{"sweep": {"cost.forward": [1]}}' 'sweep.cost.forward'
expect_refusal missing '{"stages": 4}' 'sweep: missing'
expect_refusal syntax '{"stages": 4, "sweep": {"stages": [1, 2}}' 'JSON syntax error at line 1'
expect_refusal duplicate '{"sweep": {"stages": [1], "stages": [2]}}' 'sweep.stages' \
    'more than once'

# --- a sweep over the point limit is refused before it starts ----------------------------
printf '%s\n' '{"sweep": {"stages": [1, 2, 3], "microbatches": [1, 2, 3]}}' >"$tmp/nine.json"
mkdir -p "$tmp/out-limit"
"$bin" sweep "$tmp/nine.json" --max-points 8 --out "$tmp/out-limit" 2>"$tmp/limit.err"
check "9 points over --max-points 8: exit 2" test $? -eq 2
check "limit message: $(cat "$tmp/limit.err")" grep -qF "9 points exceed the limit of 8" "$tmp/limit.err"
check "limit: nothing written" test -z "$(ls -A "$tmp/out-limit")"
"$bin" sweep "$tmp/nine.json" --max-points 9 >/dev/null 2>&1
check "9 points within --max-points 9" test $? -eq 0
# The default limit is one million: 2^21 points are refused at once.
python3 -c 'import json; print(json.dumps({"sweep": {"costs.forward": list(range(1, 2049)), "microbatches": list(range(1, 1025))}}))' >"$tmp/huge.json"
timeout 60 "$bin" sweep "$tmp/huge.json" 2>"$tmp/huge.err" >/dev/null
check "2097152 points over the default limit: exit 2" test $? -eq 2
check "default limit message" grep -qF "2097152 points exceed the limit of 1000000" "$tmp/huge.err"

# --- an unwritable --out fails before any simulation and writes nothing -------------------
# A 1,000,000-point sweep would run for minutes; the check must come first.
python3 -c 'import json; print(json.dumps({"stages": 16, "microbatches": 256, "sweep": {"costs.forward": list(range(1, 1001)), "costs.backward": list(range(1, 1001))}}))' >"$tmp/million.json"
echo "a file" >"$tmp/not-a-dir"
timeout 60 "$bin" sweep "$tmp/million.json" --out "$tmp/not-a-dir/sub" 2>"$tmp/unwritable.err"
rc=$?
check "unwritable --out: exit 2 before simulating (got $rc)" test "$rc" -eq 2
check "unwritable message: $(cat "$tmp/unwritable.err")" grep -qF "$tmp/not-a-dir/sub" "$tmp/unwritable.err"
check "unwritable: file untouched" test "$(cat "$tmp/not-a-dir")" = "a file"

# --- bad options ----------------------------------------------------------------------
"$bin" sweep "$tmp/nine.json" --jobs 0 >/dev/null 2>"$tmp/jobs.err"
check "--jobs 0: exit 2" test $? -eq 2
"$bin" sweep "$tmp/nine.json" --plot >/dev/null 2>"$tmp/plot.err"
check "--plot without --out: exit 2" test $? -eq 2
"$bin" sweep "$tmp/absent.json" >/dev/null 2>"$tmp/absent.err"
check "missing file: exit 2" test $? -eq 2
check "missing file named" grep -qF "$tmp/absent.json" "$tmp/absent.err"

# --- SIGINT: non-zero exit, a message, no file -------------------------------------------
mkdir -p "$tmp/out-int"
set -m # a job of its own, so SIGINT is not ignored in the background
"$bin" sweep "$tmp/million.json" --out "$tmp/out-int" --jobs 2 2>"$tmp/int.err" &
pid=$!
set +m
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
check "interrupted sweep exits 130 (got $rc)" test "$rc" -eq 130
check "interrupt message: $(cat "$tmp/int.err")" grep -qF "interrupted" "$tmp/int.err"
check "interrupted: nothing written" test -z "$(ls -A "$tmp/out-int")"

finish cli_sweep
