#!/bin/bash
# cli_measure.sh BUBBLESIM SOURCE_DIR - `calibrate` and `compare` as a user
# runs them on the hand-made traces of tests/fixtures/pytorch (no torch), and
# a real PyTorch 2.15 compute_comms dump read back as a custom order.
set -u
bin=$1
src=$2
fx=$src/tests/fixtures/pytorch
. "$(dirname "$0")/cli_lib.sh"

# calibrate: the hand-worked costs (make_fixtures.py) and a config run accepts.
expect 0 "per-op overhead 0.5000 ms" "$bin" calibrate "$fx/1f1b-2rank.json" -o "$tmp/cal.json"
expect 0 "message latency 1.0000 ms" "$bin" calibrate "$fx/1f1b-2rank.json" -o "$tmp/cal.json"
expect 0 "makespan (ms)                          23.000" "$bin" run "$tmp/cal.json"
# compare: exact on the fixture, within any tolerance; --json has the fields.
expect 0 "within: |makespan error| 0.00%" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json"
expect 0 '"makespan_error": 0,' "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --json
expect 0 '"noise_spread": 0.3' "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank-noisy.json" --json
# A prediction 10 % off: outside 5 % is exit 4, inside 20 % is 0.
expect 4 "OUTSIDE" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" \
    --set 'costs.forward=[2.75,2.75]' --set 'costs.backward=[4.95,4.95]'
expect 0 "within" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --tolerance 20 \
    --set 'costs.forward=[2.75,2.75]' --set 'costs.backward=[4.95,4.95]'
# Another schedule with the same ops is compared; one with other ops is refused.
expect 0 "makespan" "$bin" compare "$src/configs/seed-p4-m8.json" "$fx/1f1b-2rank.json" \
    --set stages=2 --set microbatches=2 --tolerance 1000
expect 2 "does not have" "$bin" compare "$src/configs/zb-h1.json" "$fx/1f1b-2rank.json" \
    --set stages=2 --set microbatches=2
expect 2 "P=4" "$bin" compare "$src/configs/seed-p4-m8.json" "$fx/1f1b-2rank.json"
# --noise: the prediction sampled under a trace's variation is judged. On
# the exact fixture every sample is the deterministic run.
expect 0 "within: |sampled makespan error| 0.00%" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json"
expect 0 '"samples": 50, "sampled_makespan": 23,' "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" --samples 50 --seed 7 --json
expect 0 '"samples": 0, "judged": "deterministic"' "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --json
# The 10 % slower config is judged by its sampled error too.
expect 4 "OUTSIDE: |sampled makespan error| 10.00%" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" \
    --set 'costs.forward=[2.75,2.75]' --set 'costs.backward=[4.95,4.95]' \
    --set network.latency=1.1
expect 2 "--samples: expected an integer 1..100000, got 0" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" --samples 0
expect 2 "--samples: expected an integer" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" --samples 1e3
expect 2 "--seed: expected an integer" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" --seed -3
expect 2 "--seed: expected an integer" "$bin" compare "$tmp/cal.json" \
    "$fx/1f1b-2rank.json" --noise "$fx/1f1b-2rank.json" --seed 18446744073709551616
# Bounded work: a GPipe trace of 2 x 2 x 1100 ops per step takes the default
# 2000 samples, but 100000 of them (4.4e8 op runs) are refused.
awk -v m=1100 'BEGIN {
    printf "{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 2, "
    printf "\"stages\": 2, \"microbatches\": %d, \"placement\": [0, 1], ", m
    printf "\"steps\": [{\"step\": 0, \"ranks\": ["
    for (r = 0; r < 2; r++) {
        printf "%s{\"rank\": %d, \"actions\": [", r ? ", " : "", r
        t = r  # rank 1 starts 1 ms late: its first forward waits for rank 0
        for (k = 0; k < 2 * m; k++) {
            kind = k < m ? "F" : "B"
            printf "%s{\"action\": \"%d%s%d\", \"start\": %d, \"end\": %d}", k ? ", " : "", \
                r, kind, k % m, t, t + 1
            t += 2
        }
        printf "]}"
    }
    printf "]}]}\n"
}' >"$tmp/big.json"
expect 0 "2 ranks, 2 chunks (V=1), M=1100, 1 steps" "$bin" calibrate "$tmp/big.json" -o "$tmp/big-cal.json"
expect 0 '"samples": 2000,' "$bin" compare "$tmp/big-cal.json" "$tmp/big.json" \
    --noise "$tmp/big.json" --json --tolerance 1000
expect 2 "exceed 2e+08 op runs; give at most 45454" "$bin" compare "$tmp/big-cal.json" \
    "$tmp/big.json" --noise "$tmp/big.json" --samples 100000
expect 2 "need --noise" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --samples 10
expect 2 "--noise needs a value" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --noise
expect 2 "cannot open" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --noise "$tmp/none.json"

# Bad input: exit 2 naming the file (and key); no output file left behind.
printf '{"format": "bubblesim-pytorch-trace", "version": 1, "ranks": "2"}' >"$tmp/bad.json"
expect 2 "$tmp/bad.json: ranks: expected an integer" "$bin" calibrate "$tmp/bad.json" -o "$tmp/o.json"
check "no config written from a bad trace" test ! -e "$tmp/o.json"
expect 2 "$tmp/bad.json: ranks" "$bin" compare "$tmp/cal.json" "$tmp/bad.json"
expect 2 "$tmp/bad.json: ranks" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" \
    --noise "$tmp/bad.json"
printf 'not json' >"$tmp/bad2.json"
expect 2 "$tmp/bad2.json: not valid JSON" "$bin" calibrate "$tmp/bad2.json" -o "$tmp/o.json"
expect 2 "cannot open" "$bin" calibrate "$tmp/missing.json" -o "$tmp/o.json"
expect 2 "missing -o CONFIG" "$bin" calibrate "$fx/1f1b-2rank.json"
expect 2 "unknown option --frob" "$bin" calibrate "$fx/1f1b-2rank.json" --frob
expect 2 "missing CONFIG or TRACE.json" "$bin" compare "$tmp/cal.json"
expect 2 "--tolerance: expected a percentage" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --tolerance nan
expect 2 "--tolerance: expected a percentage" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --tolerance -1
expect 2 "--tolerance: expected a percentage" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --tolerance 1e999
expect 2 "" "$bin" calibrate "$fx/1f1b-2rank.json" -o "$tmp/no/such/dir/c.json"
expect 2 "" "$bin" calibrate "$fx/1f1b-2rank.json" -o /dev/full
expect 2 "" "$bin" compare "$tmp/cal.json" "$fx/1f1b-2rank.json" --set costs.forward=0

# PyTorch 2.15's own compute_comms dump (WAIT_SEND_F, WAIT_SEND_B and
# WAIT_REDUCE_GRAD are waits, not W ops) runs as the zbv it came from.
cp "$fx/zbv-2rank-m8-comms.csv" "$tmp/comms.csv"
cfg comms.json '{"schedule": "custom", "stages": 2, "microbatches": 8, "virtual_stages": 2,
  "placement": "v", "updates": "no-flush", "order_file": "comms.csv",
  "costs": {"forward": 1.0, "backward": 1.0, "weight": 1.0}}'
want=$("$bin" run "$src/configs/zb-v.json" --set stages=2 | awk '/^makespan/ {print $3}')
expect 0 "makespan (ms)                          $want" "$bin" run "$tmp/comms.json"

finish cli_measure
