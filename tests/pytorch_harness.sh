#!/bin/bash
# pytorch_harness.sh BUBBLESIM SOURCE_DIR - the PyTorch harness end to end:
# a 2-rank sleep workload (1f1b, M=4, 3 steps; about 10 s on an idle
# machine) through torch.distributed.pipelining on gloo, then calibrate and
# compare. Skips (77) where torch is not installed or is a version the
# harness does not know. Only what does not depend on the machine's load is
# asserted: the run succeeds, the trace has every op, calibration finds each
# op at least as long as its sleep, every step's start is recorded, and
# compare (with the sampled prediction) gives a verdict (0 or 4).
# Not in the default `meson test` run (timings under load); run it with
#   meson test -C build --setup pytorch --suite pytorch
set -u
bin=$1
src=$2
py=${PYTHON:-python3}
. "$(dirname "$0")/cli_lib.sh"

if ! "$py" -c 'import torch' >/dev/null 2>&1; then
    echo "SKIP: torch is not installed for $py"
    exit 77
fi
"$py" "$src/tools/pytorch/run_schedule.py" "$src/configs/seed-p4-m8.json" --out "$tmp/t.json" \
    --bubblesim "$bin" --workload sleep --steps 3 --warmup 1 --timeout 100 \
    --set stages=2 --set microbatches=4 --set costs.forward=2 --set costs.backward=4 \
    >"$tmp/run.log" 2>&1
rc=$?
if [ "$rc" -eq 3 ]; then
    grep run_schedule "$tmp/run.log"
    echo "SKIP: the harness does not know this torch"
    exit 77
fi
checks=$((checks + 1))
[ "$rc" -eq 0 ] || fail "run_schedule.py exit $rc: $(tail -n 20 "$tmp/run.log")"

expect 0 "2 ranks, 2 chunks (V=1), M=4, 3 steps" "$bin" calibrate "$tmp/t.json" -o "$tmp/c.json"
# Every op sleeps its cost: F >= 2 ms, B >= 4 ms on both chunks.
check "calibrated costs at least the sleeps" "$py" -c '
import json, sys
c = json.load(open(sys.argv[1]))["costs"]
ok = all(f >= 2.0 for f in c["forward"]) and all(b >= 4.0 for b in c["backward"])
sys.exit(0 if ok else 1)' "$tmp/c.json"
# Every step records how late each rank reached its common start instant.
check "start_late_ms per step and rank" "$py" -c '
import json, sys
t = json.load(open(sys.argv[1]))
ok = all(len(s["start_late_ms"]) == 2 and all(x >= 0 for x in s["start_late_ms"])
         for s in t["steps"])
sys.exit(0 if ok else 1)' "$tmp/t.json"
checks=$((checks + 1))
"$bin" compare "$tmp/c.json" "$tmp/t.json" --noise "$tmp/t.json" >"$tmp/cmp.txt" 2>&1
rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || fail "compare exit $rc: $(cat "$tmp/cmp.txt")"
grep -q "sampled makespan (ms, median)" "$tmp/cmp.txt" || fail "no sampled prediction: $(cat "$tmp/cmp.txt")"
cat "$tmp/cmp.txt"
# Bad usage of the harness is exit 2 with a message, before torch starts ranks.
expect 2 "--steps must be" "$py" "$src/tools/pytorch/run_schedule.py" \
    "$src/configs/seed-p4-m8.json" --out "$tmp/x.json" --steps 0
expect 2 "no such file" "$py" "$src/tools/pytorch/run_schedule.py" "$tmp/none.json" --out "$tmp/x.json"
finish pytorch_harness
