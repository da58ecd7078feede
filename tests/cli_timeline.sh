#!/usr/bin/env bash
# cli_timeline.sh BUBBLESIM SOURCE_ROOT - pictures and traces as a user
# makes them: `run --timeline` writes FILE.dat, FILE.gp (a copy of
# plots/timeline.gp) and FILE.sh beside a non-empty PNG or SVG; `sh FILE.sh`
# redraws them headless (timeline and sweep charts); without gnuplot the
# command says so (exit 2) and still leaves the data, program and script;
# `run --trace` writes JSON with one complete event per op, one track per
# directed link and a memory counter per device. The gnuplot parts skip
# (77) where gnuplot is absent. Hostile names and output sets: cli_charts.sh.
set -u
bin=$1
root=$2
seed=$root/configs/seed-p4-m8.json
. "$(dirname "$0")/cli_lib.sh"

is_png() { [ -s "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = "PNG" ]; }
is_svg() { [ -s "$1" ] && grep -q '<svg' "$1"; }

# --- without gnuplot: a clear message, exit 2, the script and data are kept -------------
mkdir -p "$tmp/nognuplot"
PATH=/nonexistent "$bin" run "$seed" --timeline "$tmp/nognuplot/t.png" >/dev/null \
    2>"$tmp/nognuplot.err"
check "no gnuplot: exit 2" test $? -eq 2
check "no gnuplot: message: $(cat "$tmp/nognuplot.err")" grep -qF "gnuplot not found" \
    "$tmp/nognuplot.err"
check "no gnuplot: script kept" test -s "$tmp/nognuplot/t.gp"
check "no gnuplot: data kept" test -s "$tmp/nognuplot/t.dat"
check "no gnuplot: no image" test ! -e "$tmp/nognuplot/t.png"
check "no gnuplot: redraw script kept" test -s "$tmp/nognuplot/t.sh"
check "no gnuplot: no temporary file" test "$(ls -A "$tmp/nognuplot" | wc -l)" -eq 3

# --- bad picture names fail before anything is written -----------------------------------
"$bin" run "$seed" --timeline "$tmp/t.jpg" >/dev/null 2>"$tmp/ext.err"
check "--timeline .jpg: exit 2" test $? -eq 2
check "--timeline .jpg: message" grep -qF ".png or .svg" "$tmp/ext.err"
echo "a file" >"$tmp/plain"
"$bin" run "$seed" --trace "$tmp/plain/trace.json" >/dev/null 2>"$tmp/trace-dir.err"
check "--trace into a file's path: exit 2" test $? -eq 2
check "nothing beside it" test "$(ls -A "$tmp" | grep -c '^\.')" -eq 0

# --- trace: JSON, one complete event per op, flows paired --------------------------------
"$bin" run "$seed" --set 'schedule="interleaved"' --set virtual_stages=2 \
    --set network.latency=0.1 --trace "$tmp/trace.json" >/dev/null
check "--trace exits 0" test $? -eq 0
if command -v python3 >/dev/null 2>&1; then
    python3 - "$tmp/trace.json" <<'EOF'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
ops = [e for e in events if e["ph"] == "X" and e["tid"] == 0]
# interleaved, P=4, M=8, V=2: one forward and one backward per chunk and micro-batch
expected = 4 * 2 * 8 * 2
errors = []
if len(ops) != expected:
    errors.append("%d compute events, expected %d" % (len(ops), expected))
for e in ops:
    for key in ("name", "cat", "ts", "dur", "pid", "tid", "args"):
        if key not in e:
            errors.append("event without %s: %r" % (key, e))
    for key in ("stage", "microbatch", "kind"):
        if key not in e.get("args", {}):
            errors.append("event args without %s: %r" % (key, e))
starts = sorted(e["id"] for e in events if e["ph"] == "s")
finishes = sorted(e["id"] for e in events if e["ph"] == "f")
if not starts or starts != finishes:
    errors.append("flow starts and finishes do not pair")
names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
         if e["ph"] == "M" and e["name"] == "thread_name"}
# interleaved P=4 V=2: links 0->1, 1->2, 2->3, 3->0 and back: 8 directed
# links, each a send track and a receive track, plus 4 compute tracks
if len(names) != 4 + 2 * 8:
    errors.append("%d named threads, expected 20" % len(names))
for e in events:
    if e["ph"] == "X" and e["cat"] == "message":
        to = e["args"].get("to", e["args"].get("from"))
        want = ("send to device %d" if "to" in e["args"] else "receive from device %d") % to
        if not names.get((e["pid"], e["tid"]), "").startswith(want):
            errors.append("message slice on track %r" % names.get((e["pid"], e["tid"])))
counters = [e for e in events if e["ph"] == "C" and e["name"] == "live activations"]
if {e["pid"] for e in counters} != {0, 1, 2, 3}:
    errors.append("no live-activation counter on every device")
for e in errors[:10]:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
EOF
    check "trace content" test $? -eq 0
fi

if ! command -v gnuplot >/dev/null 2>&1; then
    echo "cli_timeline: $checks checks, $fails failed; gnuplot not found: skipping the pictures"
    [ "$fails" -eq 0 ] || exit 1
    exit 77
fi

# --- timelines: PNG and SVG, each with its script and data --------------------------------
"$bin" run "$seed" --timeline "$tmp/tl/seed.png" >/dev/null 2>"$tmp/tl.err"
check "--timeline png exits 0: $(cat "$tmp/tl.err")" test $? -eq 0
check "png is a PNG" is_png "$tmp/tl/seed.png"
check "png script" test -s "$tmp/tl/seed.gp"
check "png data" test -s "$tmp/tl/seed.dat"
check "one data line per op (64)" test "$(grep '^[0-9]' <(sed '/^# index 2/q' "$tmp/tl/seed.dat") | grep -vc NaN)" -eq 64
"$bin" run "$seed" --set 'schedule="interleaved"' --set virtual_stages=2 \
    --set network.latency=0.1 --messages --timeline "$tmp/tl/il.svg" >/dev/null 2>"$tmp/svg.err"
check "--timeline svg --messages exits 0: $(cat "$tmp/svg.err")" test $? -eq 0
check "svg is an SVG" is_svg "$tmp/tl/il.svg"
check "svg program draws messages" grep -q "with vectors" "$tmp/tl/il.gp"
check "svg has messages" test "$(awk '/^# index 2/{b=1;next} /^# index 3/{b=0} b && /^[0-9]/' "$tmp/tl/il.dat" | wc -l)" -gt 0
check "svg names both chunks" grep -q "chunk 1" "$tmp/tl/il.svg"
"$bin" run "$seed" --set stages=16 --set microbatches=64 --timeline "$tmp/tl/big.png" \
    >/dev/null 2>&1
check "P=16 M=64 timeline" is_png "$tmp/tl/big.png"

# The scripts redraw with plain gnuplot, headless, from any directory.
rm -f "$tmp/tl/seed.png" "$tmp/tl/il.svg"
sh "$tmp/tl/seed.sh" && sh "$tmp/tl/il.sh" 2>"$tmp/redraw.err"
check "scripts rerun by gnuplot: $(cat "$tmp/redraw.err")" test $? -eq 0
check "redrawn png" is_png "$tmp/tl/seed.png"
check "redrawn svg" is_svg "$tmp/tl/il.svg"

# --- sweep charts --------------------------------------------------------------------------
"$bin" sweep "$root/configs/sweep-p4-m8-schedules.json" --out "$tmp/charts" --plot \
    2>"$tmp/charts.err"
check "sweep --plot (schedules) exits 0: $(cat "$tmp/charts.err")" test $? -eq 0
check "schedules chart" is_png "$tmp/charts/sweep-p4-m8-schedules-schedules.png"
cat >"$tmp/grid.json" <<'EOF'
{"schedule": "interleaved", "stages": 4, "microbatches": 8, "virtual_stages": 2,
 "sweep": {"stages": [2, 4], "microbatches": [8, 16, 32], "virtual_stages": [2, 4]}}
EOF
"$bin" sweep "$tmp/grid.json" --out "$tmp/charts" --plot 2>"$tmp/grid.err"
check "sweep --plot (grid) exits 0: $(cat "$tmp/grid.err")" test $? -eq 0
check "bubble chart" is_png "$tmp/charts/grid-bubble.png"
check "makespan against V chart" is_png "$tmp/charts/grid-makespan-v.png"
check "bubble chart draws the closed form" \
    test "$(awk '$3 != "NaN" && /^[0-9]/' "$tmp/charts/grid-bubble.dat" | wc -l)" -gt 0
rm -f "$tmp/charts/"*.png
(for s in "$tmp/charts/"*.sh; do sh "$s" || exit 1; done) 2>"$tmp/redraw2.err"
check "chart scripts rerun by gnuplot: $(cat "$tmp/redraw2.err")" test $? -eq 0
# forward runs V = 2 too (interleaved inference), so the schedules sweep also
# gets a makespan-against-V chart.
check "charts redrawn" test "$(ls "$tmp/charts/"*.png | wc -l)" -eq 4
check "no temporary files left" test "$(ls -A "$tmp/charts" | grep -c '^\.')" -eq 0

finish cli_timeline
