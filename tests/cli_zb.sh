#!/bin/bash
# cli_zb.sh BUBBLESIM SOURCE_DIR - the schedules beyond the seed as a user
# runs them: the shipped configs, `export --format pytorch` and reading the
# text back as a custom schedule, and the errors of custom orders (exit 2
# naming device, position and action; exit 3 with the cycle of a deadlock).
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

# The simulated column of the figures that must survive a round trip.
figures() { "$@" 2>&1 | awk '/^(makespan|time per|peak act|weight|messages)/ {print $0}' |
    sed 's/  */ /g' | cut -d' ' -f1-6; }

# Shipped configs and the worked examples of schedules.md.
expect 0 "27.000         27.000" "$bin" run "$src/configs/zb-h1.json"
expect 0 "24.000" "$bin" run "$src/configs/zb-h2.json"
expect 0 "25.500         25.500" "$bin" run "$src/configs/zb-v.json"
expect 0 "schedule dualpipev" "$bin" run "$src/configs/zb-dualpipev.json"
expect 0 "28.500         28.500" "$bin" run "$src/configs/zb-looped-bfs.json"
expect 0 "9.000" "$bin" run "$src/configs/custom-pytorch-2rank.json"
expect 0 "10.500" "$bin" run "$src/configs/custom-inline-v.json"
expect 0 "export   write CONFIG's schedule" "$bin" --help

# Export every built-in schedule and read it back: the same makespan.
for s in gpipe 1f1b pipedream interleaved forward zb-h1 zb-h2 zbv dualpipev looped-bfs zb-auto \
    interleaved-zb v-min v-half; do
    v=1 placement=looped updates=flush
    case $s in
    interleaved | looped-bfs | interleaved-zb) v=2 ;;
    zbv) v=2 placement=v updates=no-flush ;;
    dualpipev | v-min | v-half) v=2 placement=v ;;
    zb-h2) updates=no-flush ;;
    pipedream) updates=per-backward ;;
    esac
    mkdir -p "$tmp/$s"
    format=pytorch
    case $s in zb-h1 | interleaved-zb | v-half | dualpipev | gpipe) format=pytorch-comms ;; esac
    expect 0 "" "$bin" export "$src/configs/zb-h1.json" --format $format --set "schedule=\"$s\"" \
        --set virtual_stages=$v --set costs.backward=2 --set network.latency=0.1 \
        -o "$tmp/$s/order.txt"
    printf '{"schedule": "custom", "stages": 4, "microbatches": 8, "virtual_stages": %d,
  "placement": "%s", "updates": "%s", "order_file": "order.txt",
  "costs": {"forward": 1, "backward": 2, "weight": 1}, "network": {"latency": 0.1}}\n' \
        $v $placement $updates >"$tmp/$s/custom.json"
    want=$(figures "$bin" run "$src/configs/zb-h1.json" --set "schedule=\"$s\"" \
        --set virtual_stages=$v --set costs.backward=2 --set network.latency=0.1)
    got=$(figures "$bin" run "$tmp/$s/custom.json")
    checks=$((checks + 1))
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "$s: export/import gave"$'\n'"$got"$'\n'"want"$'\n'"$want"
done
# The text goes to standard output without -o; pytorch is the default format.
expect 0 "0F0,0F1,0F2,0F3,0I0,0W0" "$bin" export "$src/configs/zb-h1.json" --format pytorch
expect 0 "0F0,0F1,0F2,0F3,0I0,0W0" "$bin" export "$src/configs/zb-h1.json"
expect 0 "0F0,0SEND_F0,0F1,0SEND_F1" "$bin" export "$src/configs/zb-h1.json" --format pytorch-comms
expect 0 "3RECV_F0,3F0,3I0,3SEND_B0" "$bin" export "$src/configs/zb-h1.json" --format=pytorch-comms

# A compute_comms file written by PyTorch 2.15 itself (ScheduleInterleavedZeroBubble, P=2,
# V=2, M=4, lowered by its _prepare_schedule_with_comms, CRLF rows as its csv writer ends
# them) runs as interleaved-zb does.
want=$(figures "$bin" run "$src/configs/zb-h1.json" --set 'schedule="interleaved-zb"' \
    --set stages=2 --set virtual_stages=2 --set microbatches=4)
got=$(figures "$bin" run "$src/configs/custom-pytorch-comms.json")
checks=$((checks + 1))
[ -n "$want" ] && [ "$want" = "$got" ] || fail "custom-pytorch-comms gave"$'\n'"$got"$'\n'"want"$'\n'"$want"
# With a UTF-8 byte-order mark in front it still reads; errors name the file and its line.
cp "$src/configs/custom-pytorch-comms.json" "$tmp/bom.json"
{ printf '\357\273\277# written by PyTorch 2.15\n'; cat "$src/configs/custom-pytorch-comms.txt"; } \
    >"$tmp/custom-pytorch-comms.txt"
got=$(figures "$bin" run "$tmp/bom.json")
checks=$((checks + 1))
[ "$want" = "$got" ] || fail "a byte-order mark changed the result:"$'\n'"$got"
{ printf '\357\273\277# written by PyTorch 2.15\n'; sed 's/2RECV_F0/2WAIT_SEND_Q0/' \
    "$src/configs/custom-pytorch-comms.txt"; } >"$tmp/custom-pytorch-comms.txt"
expect 2 'custom-pytorch-comms.txt:2: device 0, position 4, action "2WAIT_SEND_Q0": unknown action WAIT_SEND_Q' \
    "$bin" run "$tmp/bom.json"
sed 's/,2WAIT_SEND_B3\r*$//' "$src/configs/custom-pytorch-comms.txt" >"$tmp/custom-pytorch-comms.txt"
expect 2 "device 0: 2SEND_B3 has no WAIT_SEND_B after it" "$bin" run "$tmp/bom.json"
# Files of older releases have no WAIT_SEND actions at all: read as they are.
sed 's/,[0-9]*WAIT_SEND_[FB][0-9]*//g' "$src/configs/custom-pytorch-comms.txt" \
    >"$tmp/custom-pytorch-comms.txt"
got=$(figures "$bin" run "$tmp/bom.json")
checks=$((checks + 1))
[ "$want" = "$got" ] || fail "a file without waits gave"$'\n'"$got"

# Export refusals; a failed export leaves no file.
expect 0 'give the custom config "updates": "no-flush"' \
    "$bin" export "$src/configs/zb-h2.json" --format pytorch -o "$tmp/h2.txt"
expect 2 "pipedream runs all iterations as one stream" \
    "$bin" export "$src/configs/zb-h2.json" --format pytorch --set 'schedule="pipedream"' \
    -o "$tmp/none.txt"
checks=$((checks + 1))
[ ! -e "$tmp/none.txt" ] || fail "a refused export left $tmp/none.txt"
expect 2 "--format: expected pytorch or pytorch-comms, got \"csv\"" \
    "$bin" export "$src/configs/zb-h1.json" --format csv
expect 2 "missing CONFIG" "$bin" export --format pytorch
expect 2 "unknown option \"--bogus\"" "$bin" export "$src/configs/zb-h1.json" --bogus

# Custom orders: errors name device, position and action.
printf '{"schedule": "custom", "stages": 2, "microbatches": 2, "order": [["0F0"], ["1F0"]]}\n' \
    >"$tmp/c.json"
expect 2 'c.json: order: device 0, position 1, action "0Q0": unknown action Q;' \
    "$bin" run "$tmp/c.json" --set 'order=[["0F0","0Q0"],["1F0"]]'
# A deadlock: exit 3 with the cycle of waiting ops.
expect 3 "cycle: B(s0,m0) on device 0 -> F(s1,m1) on device 1 -> B(s0,m0) on device 0" \
    "$bin" run "$tmp/c.json" --set 'order=[["0F0","0B0","0F1","0B1"],["1F1","1B1","1F0","1B0"]]'
expect 2 'device 1, position 2, action "1W0": weight gradient before the input gradient' \
    "$bin" run "$tmp/c.json" --set 'order=[["0F0"],["1F0","1B0","1W0"]]'
expect 2 "stage 0, micro-batch 1: no forward op on device 0" "$bin" run "$tmp/c.json"
expect 2 "order_file: give either order or order_file, not both" \
    "$bin" run "$tmp/c.json" --set order_file=x.txt
printf '{"schedule": "custom", "stages": 2, "order_file": "missing.txt"}\n' >"$tmp/m.json"
expect 2 "missing.txt: cannot open" "$bin" run "$tmp/m.json"
printf '0F0,0B0\n1F0,1B0\n1F1\n' >"$tmp/rows.txt"
printf '{"schedule": "custom", "stages": 2, "microbatches": 1, "order_file": "rows.txt"}\n' \
    >"$tmp/rows.json"
expect 2 "rows.txt: has 3 rows of actions; expected one per device, stages = 2" \
    "$bin" run "$tmp/rows.json"
expect 2 'placement: expected "looped", "v" or a non-empty array' \
    "$bin" run "$tmp/c.json" --set placement=w
expect 2 "memory.kept_fraction: expected a number >= 0 and <= 1, got 1.5" \
    "$bin" run "$src/configs/zb-h1.json" --set memory.kept_fraction=1.5
expect 2 "costs.overlap: expected a number > 0 and <= 1, got 0" \
    "$bin" run "$src/configs/zb-dualpipev.json" --set costs.overlap=0
expect 2 "microbatches: dualpipev needs M >= 2P" \
    "$bin" run "$src/configs/zb-dualpipev.json" --set microbatches=7

finish cli_zb
