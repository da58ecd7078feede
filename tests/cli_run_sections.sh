#!/bin/bash
# cli_run_sections.sh BUBBLESIM SOURCE_DIR - `run` on a config that also
# carries the sections other commands read ("gpu" for verify, "sweep",
# "tune"): it runs the base configuration, the same as without them, and
# still refuses a bad key in any of them (exit 2, naming file and key).
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

base='"schedule": "1f1b", "stages": 4, "microbatches": 8'
cfg plain.json "{$base}"
"$bin" run "$tmp/plain.json" --json >"$tmp/plain.out" 2>&1 || fail "plain run failed"

for section in '"gpu": {"reps": 3, "workload": "mlp", "mlp": {"hidden": 64}}' \
    '"sweep": {"microbatches": [4, 8], "cases": [{"schedule": "gpipe"}]}' \
    '"gpu": {"tolerance": 5}, "sweep": {"stages": [2, 4], "baseline": {"stages": 2}}'; do
    cfg s.json "{$base, $section}"
    checks=$((checks + 1))
    "$bin" run "$tmp/s.json" --json >"$tmp/s.out" 2>&1 || fail "run with $section: exit $?: $(cat "$tmp/s.out")"
    cmp -s "$tmp/plain.out" "$tmp/s.out" || fail "run with $section differs from the plain run"
done

# Bad keys in the sections are still refused.
cfg g1.json "{$base, \"gpu\": {\"repz\": 3}}"
expect 2 "g1.json: gpu.repz: unknown key" "$bin" run "$tmp/g1.json"
cfg g2.json "{$base, \"gpu\": {\"reps\": -1}}"
expect 2 "gpu.reps" "$bin" run "$tmp/g2.json"
cfg g3.json "{$base, \"gpu\": [1]}"
expect 2 "gpu: expected an object" "$bin" run "$tmp/g3.json"
cfg s1.json "{$base, \"sweep\": {\"stagez\": [2]}}"
expect 2 "s1.json: sweep.stagez: not a config key path" "$bin" run "$tmp/s1.json"
cfg s2.json "{$base, \"sweep\": {\"\": [2]}}"
expect 2 'sweep."": an empty key path' "$bin" run "$tmp/s2.json"
cfg s3.json "{$base, \"sweep\": {\"stages\": []}}"
expect 2 "sweep.stages: expected a non-empty list" "$bin" run "$tmp/s3.json"
cfg s4.json "{$base, \"sweep\": 4}"
expect 2 "sweep: expected an object" "$bin" run "$tmp/s4.json"
# The base itself is still checked (not the sweep's error).
cfg s5.json "{$base, \"costz\": 1, \"sweep\": {\"stages\": [2]}}"
expect 2 "costz: unknown key" "$bin" run "$tmp/s5.json"

# tune: a model config with its "tune" section runs; bad tune keys are refused.
m="$src/configs/model-gpt3-175b-64gpu.json"
expect 0 "schedule" "$bin" run "$m" --set stages=8 --set tensor_parallel=8 --set virtual_stages=1 \
    --set microbatches=8
expect 2 "tune.devicez: unknown key" "$bin" run "$m" --set tune.devicez=1
expect 2 "tune.devices: expected an integer" "$bin" run "$m" --set tune.devices=0
expect 2 "tune.schedules[0]" "$bin" run "$m" --set 'tune.schedules=["nope"]'

finish cli_run_sections
