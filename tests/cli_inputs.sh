#!/bin/bash
# cli_inputs.sh BUBBLESIM SOURCE_DIR - hostile inputs through the command, a
# class at a time (docs/reliability.md): no hang on a FIFO, directory or
# device given as a config or order_file; exit 2 naming the key for derived
# times that overflow, dropped order rows and NUL characters; messages that
# say what is wrong; "did you mean". Every run that could hang is under
# `timeout`, so a regression fails instead of stalling the suite.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

t() { timeout 20 "$bin" "$@"; } # a hang becomes exit 124, a failure

# --- not regular files: refused at once, named.
mkfifo "$tmp/fifo.json" "$tmp/fifo.txt"
mkdir "$tmp/dir.json"
expect 2 "$tmp/fifo.json: is a FIFO (named pipe); expected a regular file" t run "$tmp/fifo.json"
expect 2 "$tmp/dir.json: is a directory; expected a regular file" t run "$tmp/dir.json"
expect 2 "/dev/zero: is a character device; expected a regular file" t run /dev/zero
expect 2 "/dev/null: is a character device" t export /dev/null --format pytorch
expect 2 "a FIFO" t sweep "$tmp/fifo.json"
expect 2 "a FIFO" t tune "$tmp/fifo.json"
expect 2 "a FIFO" t verify "$tmp/fifo.json" --dry-run
cfg order-fifo.json '{"schedule": "custom", "stages": 1, "order_file": "fifo.txt"}'
expect 2 "$tmp/order-fifo.json: order_file: $tmp/fifo.txt: is a FIFO (named pipe)" \
    t run "$tmp/order-fifo.json"
cfg order-missing.json '{"schedule": "custom", "stages": 1, "order_file": "gone.txt"}'
expect 2 "$tmp/order-missing.json: order_file: $tmp/gone.txt: cannot open: No such file" \
    t run "$tmp/order-missing.json"
cfg order-dir.json '{"schedule": "custom", "stages": 1, "order_file": "."}'
expect 2 "order_file: $tmp/.: is a directory" t run "$tmp/order-dir.json"

# --- derived times that overflow: exit 2 naming the key, not a "deadlock".
cfg ok.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8}'
expect 2 "network.bandwidth: one message takes" \
    t run "$tmp/ok.json" --set network.bandwidth=1e-300 --set network.message_bytes=1e18
expect 2 "= 1e+18 ms" t run "$tmp/ok.json" --set network.bandwidth=1 --set network.message_bytes=1e15
model="$src/configs/model-gpt3-175b-64gpu.json"
expect 2 "hardware.peak_flops: model chunk 0 takes inf ms" \
    t run "$model" --set hardware.peak_flops=1e-300
expect 2 "hardware.peak_flops" t run "$model" --set hardware.efficiency=1e-300
expect 2 "hardware.tp_bandwidth: one tensor-parallel all-reduce takes inf ms" \
    t run "$model" --set hardware.tp_bandwidth=1e-300
expect 2 "hardware.bandwidth" t run "$model" --set hardware.bandwidth=1e-300
expect 2 "network.bandwidth" t verify "$tmp/ok.json" --dry-run \
    --set network.bandwidth=1e-300 --set network.message_bytes=1e18
out=$(t run "$tmp/ok.json" --set network.bandwidth=1e-300 --set network.message_bytes=1e18 2>&1)
case "$out" in *deadlock*) fail "overflowing message time reported as a deadlock: $out" ;; esac

# --- inline order rows are never dropped or shifted: a row of no action
# stays its device's row.
custom='"schedule": "custom", "stages": 2, "microbatches": 1'
for row in '[]' '[null]' '[""]' '["  "]'; do
    cfg rows.json "{$custom, \"order\": [[\"0F0\", \"0B0\"], $row, [\"1F0\", \"1B0\"]]}"
    expect 2 "$tmp/rows.json: order: has 3 rows of actions; expected one per device, stages = 2" \
        t run "$tmp/rows.json"
    cfg rows.json "{$custom, \"order\": [$row, [\"1F0\", \"1B0\"]]}"
    expect 2 "$tmp/rows.json: stage 0, micro-batch 0: no forward op on device 0" t run "$tmp/rows.json"
done
cfg rows.json "{$custom, \"order\": [[\"0F0\", \"0B0\"], [\"# device 1\"], [\"1F0\", \"1B0\"]]}"
expect 2 "order[1][0]: \"# device 1\" is not an action; an inline order has no comments" \
    t run "$tmp/rows.json"
cfg rows.json "{$custom, \"order\": [[]]}"
expect 2 "order: has 1 rows of actions; expected one per device, stages = 2" t run "$tmp/rows.json"
cfg rows.json "{$custom, \"placement\": [0, 0], \"order\": [[\"0F0\", \"1F0\", \"1B0\", \"0B0\"], []]}"
expect 0 "makespan" t run "$tmp/rows.json"

# --- NUL characters in strings and keys.
printf '{"schedule": "gpipe\\u0000junk"}\n' >"$tmp/nul.json"
expect 2 "$tmp/nul.json: line 1, column 20: the string value of \"schedule\" holds \\u0000" \
    t run "$tmp/nul.json"
# Sections that other modules read themselves (sweep, tune) go through the
# same file reader, so they are covered too.
printf '{"stages": 2, "sweep": {"schedule": ["gpipe\\u0000junk", "1f1b"]}}\n' >"$tmp/nulsweep.json"
expect 2 "$tmp/nulsweep.json: line 1, column 44: the string value of \"schedule\" holds \\u0000" \
    t sweep "$tmp/nulsweep.json"
printf '{"stages": 2, "sweep": {"schedule\\u0000x": ["gpipe", "1f1b"]}}\n' >"$tmp/nulsweep.json"
expect 2 "the key \"schedule\\u0000x\" holds \\u0000" t sweep "$tmp/nulsweep.json"
sed 's/"schedules": \["forward"\]/"schedules": ["forward\\u0000"]/' \
    "$src/configs/model-llama70b-infer-4gpu.json" >"$tmp/nultune.json"
expect 2 "the string value of \"schedules\" holds \\u0000" t tune "$tmp/nultune.json"
printf '{"stages\\u0000junk": 2}\n' >"$tmp/nulkey.json"
expect 2 "the key \"stages\\u0000junk\" holds \\u0000" t run "$tmp/nulkey.json"
expect 2 "--set schedule: value: line 1, column 7" t run "$tmp/ok.json" --set 'schedule="gpipe\u0000x"'
printf '{"stages": 2}\0junk' >"$tmp/rawnul.json"
expect 2 "$tmp/rawnul.json: contains a NUL byte at offset 13" t run "$tmp/rawnul.json"

# --- messages that say what is wrong.
expect 2 "microbatches: expected an integer from 1 to 2147483647 (2^31-1), got 3e+09" \
    t run "$tmp/ok.json" --set microbatches=3e9
long=$(printf 'k%.0s' $(seq 200))
expect 2 "the key path has 200 characters; key paths such as costs.forward have at most 127" \
    t run "$tmp/ok.json" --set "$long=1"

# --- did you mean.
cfg typo.json '{"schedule": "1f1b", "stagse": 4}'
expect 2 "stagse: unknown key; did you mean \"stages\"?" t run "$tmp/typo.json"
expect 2 "unknown schedule \"interleave\"; did you mean \"interleaved\"?" \
    t run "$tmp/ok.json" --set schedule=interleave
expect 2 "--set costs.fowrard: unknown key; did you mean \"forward\"?" \
    t run "$tmp/ok.json" --set costs.fowrard=2
expect 2 "unknown section \"netwrk\"; did you mean \"network\"?" \
    t run "$tmp/ok.json" --set netwrk.latency=1
expect 2 "hardware.peakflops: unknown key; did you mean \"peak_flops\"?" \
    t run "$model" --set hardware.peakflops=1
cfg sweeptypo.json '{"stages": 2, "sweep": {"costs.fowrard": [2, 4]}}'
expect 2 "sweep.costs.fowrard: not a config key path: unknown key; did you mean \"forward\"?" \
    t sweep "$tmp/sweeptypo.json"
infer="$src/configs/model-llama70b-infer-4gpu.json"
expect 2 "tune.device: unknown key; did you mean \"devices\"?" t tune "$infer" --set tune.device=4
expect 2 "tune.schedules[0]: did you mean \"forward\"?" t tune "$infer" --set 'tune.schedules=["forwrd"]'
out=$(t run "$tmp/ok.json" --set zzz=1 2>&1)
case "$out" in *"did you mean"*) fail "a guess for a far name: $out" ;; esac

finish cli_inputs
