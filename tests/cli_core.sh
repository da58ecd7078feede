#!/bin/bash
# cli_core.sh BUBBLESIM SOURCE_DIR - the command as a user runs it: the demo,
# help and version, `run` with tables, JSON and --set, and every kind of bad
# input with its exit code and a message naming the file and key.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

# Demo, help, version.
# The schedule column is as wide as the longest built-in name (14 since
# interleaved-zb), so every row of both demo tables, heading included, has
# the same length.
expect 0 "interleaved     2     28.50" "$bin"
expect 0 "interleaved-zb  2     25.50" "$bin"
checks=$((checks + 1))
"$bin" | awk '/^schedule / { t = 1; w = length($0); next }
              /^custom / || !NF { t = 0 }
              t && length($0) != w { print; bad = 1 } END { exit bad }' ||
    fail "the demo's table rows are not aligned with their heading"
expect 0 "gpipe" "$bin"
expect 0 "bubblesim run CONFIG" "$bin" --help
expect 0 "bubblesim 0.1.0" "$bin" --version
expect 2 "unknown command \"frobnicate\"" "$bin" frobnicate

# run: table, JSON, overrides.
cfg ok.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8}'
expect 0 "makespan (ms)                          33.000         33.000" "$bin" run "$tmp/ok.json"
expect 0 '"makespan": 33' "$bin" run "$tmp/ok.json" --json
expect 0 '"schedule": "gpipe"' "$bin" run "$tmp/ok.json" --json --set schedule=gpipe
expect 0 '"peak_activations": 8' "$bin" run "$tmp/ok.json" --json --set schedule=gpipe
expect 0 '"stages": 8' "$bin" run --set stages=8 "$tmp/ok.json" --json
expect 0 '"makespan": 44' "$bin" run "$tmp/ok.json" --json --set=costs.forward=2
expect 0 '"formula": null' "$bin" run "$tmp/ok.json" --json --set network.latency=0.1
expect 0 '"bubble_over_ideal": 0.375' "$bin" run "$tmp/ok.json" --json --set schedule=forward
expect 0 '"weight_versions": 4' "$bin" run "$tmp/ok.json" --json --set schedule=pipedream
# Inference never runs a backward, so uneven backward costs keep its closed form.
expect 0 '"makespan": 11' "$bin" run "$tmp/ok.json" --json --set schedule=forward \
    --set 'costs.backward=[1,2,3,4]'
expect 0 '"bubble_ratio": 0.27272727272727271' "$bin" run "$tmp/ok.json" --json \
    --set schedule=forward --set 'costs.backward=[1,2,3,4]'
expect 2 "stages: expected an integer from 1 to 4096, got a string" \
    "$bin" run "$tmp/ok.json" --set stages=4x
if command -v python3 >/dev/null 2>&1; then
    checks=$((checks + 1))
    "$bin" run "$tmp/ok.json" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
keys = ["schedule", "stages", "microbatches", "virtual_stages", "iterations", "makespan",
        "iteration_time", "bubble_ratio", "bubble_over_ideal", "span_bubble_ratio", "formula",
        "messages", "message_bytes", "devices"]
missing = [k for k in keys if k not in r]
dkeys = ["busy", "idle", "bubble_ratio", "peak_activations", "peak_activation_bytes",
         "weight_versions", "max_staleness"]
missing += ["devices[]." + k for k in dkeys if k not in r["devices"][0]]
assert not missing, missing
assert len(r["devices"]) == 4 and r["formula"]["bubble_ratio"] == r["bubble_ratio"]
' || fail "--json output lacks keys of the contract"
fi

# Usage errors: exit 2.
expect 2 "missing CONFIG" "$bin" run
expect 2 "unknown option \"--jsn\"" "$bin" run "$tmp/ok.json" --jsn
expect 2 "--set needs KEY=VALUE" "$bin" run "$tmp/ok.json" --set
expect 2 "expected KEY=VALUE" "$bin" run "$tmp/ok.json" --set stages
expect 2 "one CONFIG expected" "$bin" run "$tmp/ok.json" "$tmp/ok.json"

# Bad input: exit 2, the file, the key path or line, what was expected.
expect 2 "$tmp/none.json: cannot open" "$bin" run "$tmp/none.json"
cfg syntax.json $'{\n  "stages": 4,\n  "microbatches": 8,,\n}'
expect 2 "$tmp/syntax.json: config: JSON syntax error at line 3" "$bin" run "$tmp/syntax.json"
cfg unknown.json '{"stages": 4, "costs": {"fwd": 1}}'
expect 2 "$tmp/unknown.json: costs.fwd: unknown key" "$bin" run "$tmp/unknown.json"
cfg type.json '{"microbatches": "eight"}'
expect 2 "$tmp/type.json: microbatches: expected an integer from 1 to 2147483647 (2^31-1), got a string" \
    "$bin" run "$tmp/type.json"
cfg neg.json '{"network": {"latency": -1}}'
expect 2 "network.latency: expected a finite number >= 0, got -1" "$bin" run "$tmp/neg.json"
cfg inf.json '{"costs": {"backward": 1e400}}'
expect 2 "costs.backward: expected a finite number >= 0, got inf" "$bin" run "$tmp/inf.json"
cfg zero.json '{"costs": {"forward": 0}}'
expect 2 "costs.forward: expected a finite number > 0, got 0" "$bin" run "$tmp/zero.json"
cfg len.json '{"stages": 4, "costs": {"forward": [1, 2]}}'
expect 2 "costs.forward: has 2 values; expected 1, P=4" "$bin" run "$tmp/len.json"
cfg big.json '{"stages": 4096, "virtual_stages": 8, "microbatches": 100000}'
expect 2 "exceeds the limit" "$bin" run "$tmp/big.json"
expect 2 "$tmp/ok.json: virtual_stages: interleaved needs V >= 2" \
    "$bin" run "$tmp/ok.json" --set schedule=interleaved
expect 2 "last group of 2" "$bin" run "$tmp/ok.json" --set schedule=interleaved \
    --set virtual_stages=2 --set microbatches=6
expect 2 "--set costs.fwd: unknown key" "$bin" run "$tmp/ok.json" --set costs.fwd=1
cfg nul.json '{}'
printf '\0' >>"$tmp/nul.json"
expect 2 "NUL byte" "$bin" run "$tmp/nul.json"
# run ignores a "sweep" section (tests/cli_run_sections.sh checks it more).
cfg sweep.json '{"sweep": {"stages": [2, 4]}}'
expect 0 "P=4 M=8" "$bin" run "$tmp/sweep.json"
# A directory is not a config.
expect 2 "$tmp" "$bin" run "$tmp"

# The shipped example configs run.
for f in "$src"/configs/*.json; do
    [ -e "$f" ] || continue
    grep -q '"sweep"' "$f" && continue
    grep -q '"gpu"' "$f" && continue
    checks=$((checks + 1))
    want=0
    case "$f" in *deadlock*) want=3 ;; esac
    "$bin" run "$f" >/dev/null 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq "$want" ] || fail "$f: exit $rc, want $want: $(cat "$tmp/err")"
done

finish cli_core
