#!/usr/bin/env bash
# cli_charts.sh BUBBLESIM SOURCE_ROOT - the guarantees of the chart and
# output-file writers (docs/reliability.md, "Output files and charts"):
#   1. no file name, title or config text is ever run: hostile names for
#      --timeline, sweep configs, tune and verify outputs, and the NAME.sh
#      that redraws each chart, leave no PWNED file and work (or fail
#      cleanly with exit 2);
#   2. output sets are committed together: when a later file fails (a fake
#      gnuplot writing a truncated image or failing, /dev/full, an
#      unwritable directory) every earlier output stays byte-identical and
#      no temporary file is left;
#   3. a refused run creates nothing (no directory for --trace/--timeline,
#      sweep --out, tune --out);
#   4. timelines at scale: 857 devices draw, too many devices exit 2 with a
#      hint; thin boxes lose their border and get a utilisation strip;
#      --window and --memory; sweep --plot with every point refused draws
#      nothing without a gnuplot error.
# The parts that need gnuplot skip (77 at the end) where it is absent.
set -u
bin=$1
root=$2
seed=$root/configs/seed-p4-m8.json
. "$(dirname "$0")/cli_lib.sh"

is_png() { [ -s "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = "PNG" ]; }
pwned() { [ -n "$(find "$tmp" -name PWNED -print -quit)" ] || [ -e /tmp/PWNED ]; }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r md5sum); }
no_temp() { [ "$(ls -A "$1" | grep -c '\.tmp\.')" -eq 0 ]; }

mkdir -p "$tmp/work" "$tmp/fake-truncated" "$tmp/fake-fails"
cd "$tmp/work" || exit 1
# A gnuplot that writes a truncated PNG (as on a full disk) and exits 0, and
# one that fails: ARG1, the image, is the 4th argument (gnuplot -c PROG IMAGE).
cat >"$tmp/fake-truncated/gnuplot" <<'EOS'
#!/bin/sh
printf '\211PNG\r\n\032\n\0\0\0\rIHDR' >"$3"
printf '<svg' >>"$3"
exit 0
EOS
printf '#!/bin/sh\necho "fake gnuplot: failing" >&2\nexit 1\n' >"$tmp/fake-fails/gnuplot"
chmod +x "$tmp/fake-truncated/gnuplot" "$tmp/fake-fails/gnuplot"

# --- 3. a refused run touches nothing ---------------------------------------------------
cfg bad.json '{"schedule": "1f1b", "stages": 4, "microbatches": "eight"}'
expect 2 "microbatches" "$bin" run "$tmp/bad.json" --trace "$tmp/new/a/b/t.json"
check "refused run: no directory for --trace" test ! -e "$tmp/new"
expect 2 "microbatches" "$bin" run "$tmp/bad.json" --timeline "$tmp/new2/a/t.png"
check "refused run: no directory for --timeline" test ! -e "$tmp/new2"
expect 2 "--window" "$bin" run "$seed" --timeline "$tmp/new3/t.png" --window 5:1
check "bad --window: no directory" test ! -e "$tmp/new3"
expect 2 "add --timeline" "$bin" run "$seed" --memory
expect 2 "starts after the run ends" "$bin" run "$seed" --timeline "$tmp/new4/t.png" \
    --window 1000:2000
check "window after the end: no directory" test ! -e "$tmp/new4"
expect 2 "do not fit one picture" "$bin" run "$seed" --set stages=3000 --set microbatches=4 \
    --timeline "$tmp/new5/t.png"
check "too many devices: no directory" test ! -e "$tmp/new5"
cfg badsweep.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8, "sweep": {"stages": 3}}'
"$bin" sweep "$tmp/badsweep.json" --out "$tmp/new6/x" >/dev/null 2>&1
check "refused sweep: exit 2" test $? -eq 2
check "refused sweep: no --out directory" test ! -e "$tmp/new6"

# --- where the programs come from: BUBBLESIM_PLOTS first (cli/gnuplot.h) ----------------
mkdir -p "$tmp/plots-copy" "$tmp/plots-out"
cp "$root/plots/"*.gp "$tmp/plots-copy/"
echo "# copied for cli_charts" >>"$tmp/plots-copy/timeline.gp"
BUBBLESIM_PLOTS="$tmp/plots-copy" PATH=/nonexistent "$bin" run "$seed" \
    --timeline "$tmp/plots-out/a.png" >/dev/null 2>&1
check "BUBBLESIM_PLOTS: its program is the one copied" grep -q "copied for cli_charts" \
    "$tmp/plots-out/a.gp"
expect 2 "no gnuplot programs there" env BUBBLESIM_PLOTS="$tmp/none" "$bin" run "$seed" \
    --timeline "$tmp/plots-out/b.png"
check "no programs: no file written" test ! -e "$tmp/plots-out/b.dat" -a ! -e "$tmp/plots-out/b.gp"

# --- without gnuplot: exit 2 for run, sweep and tune alike -------------------------------
PATH=/nonexistent "$bin" run "$seed" --timeline "$tmp/nognu/t.png" >/dev/null 2>"$tmp/nognu.err"
check "no gnuplot: run exits 2" test $? -eq 2
check "no gnuplot: says how to draw it" grep -qF "sh " "$tmp/nognu.err"
check "no gnuplot: data, program and script, no image" \
    test -s "$tmp/nognu/t.dat" -a -s "$tmp/nognu/t.gp" -a -s "$tmp/nognu/t.sh" -a ! -e "$tmp/nognu/t.png"
check "no gnuplot: no temporary file" no_temp "$tmp/nognu"

cat >"$tmp/nognu.json" <<'EOS'
{"schedule": "1f1b", "stages": 4, "microbatches": 8, "sweep": {"microbatches": [8, 16]}}
EOS
PATH=/nonexistent "$bin" sweep "$tmp/nognu.json" --out "$tmp/nognu-sweep" --plot >/dev/null \
    2>"$tmp/nognu-sweep.err"
check "no gnuplot: sweep exits 2" test $? -eq 2
check "no gnuplot: sweep says so" grep -q "gnuplot not found" "$tmp/nognu-sweep.err"
check "no gnuplot: sweep keeps CSV, JSON, chart data and script, no image" \
    test -s "$tmp/nognu-sweep/nognu.csv" -a -s "$tmp/nognu-sweep/nognu.json" \
    -a -s "$tmp/nognu-sweep/nognu-bubble.sh" -a ! -e "$tmp/nognu-sweep/nognu-bubble.png"

if ! command -v gnuplot >/dev/null 2>&1; then
    echo "cli_charts: $checks checks, $fails failed; gnuplot not found: skipping the pictures"
    [ "$fails" -eq 0 ] || exit 1
    exit 77
fi

# --- 1. hostile names: nothing runs, legal names work -----------------------------------
names=(
    "x';system('touch PWNED');'"
    "bob's"
    '$(touch PWNED)'
    '`touch PWNED`'
    $'nl\nsystem("touch PWNED")\n'
    'dq";system("touch PWNED");"'
    'back\slash\'"'"
    '<touch PWNED'
    '|touch PWNED'
    '@ARG1'
    '-'
    '~'
    $'\xff\xfe latin\xe9'
    '{touch,PWNED}*?[x]'
)
i=0
for name in "${names[@]}"; do
    i=$((i + 1))
    d="$tmp/names/$i"
    mkdir -p "$d"
    "$bin" run "$seed" --timeline "$d/$name.png" >/dev/null 2>"$tmp/name.err"
    rc=$?
    check "name $i: exit 0: $(cat "$tmp/name.err")" test $rc -eq 0
    check "name $i: image drawn" is_png "$d/$name.png"
    check "name $i: nothing ran" eval '! pwned'
    # The script beside it redraws with the same bytes, and runs nothing.
    rm -f "$d/$name.png"
    sh "$d/$name.sh" 2>"$tmp/redraw.err"
    check "name $i: NAME.sh redraws: $(cat "$tmp/redraw.err")" is_png "$d/$name.png"
    check "name $i: NAME.sh ran nothing" eval '! pwned'
    check "name $i: no temporary file" no_temp "$d"
done
# A hostile directory name, an SVG, and --messages --memory.
hd="$tmp/names/dir \$(touch PWNED) 'q' \`x\`"
mkdir -p "$hd"
"$bin" run "$seed" --messages --memory --timeline "$hd/t.svg" >/dev/null 2>"$tmp/name.err"
check "hostile directory: exit 0: $(cat "$tmp/name.err")" test $? -eq 0
check "hostile directory: SVG complete" grep -q '</svg>' "$hd/t.svg"
sh "$hd/t.sh" 2>/dev/null
check "hostile directory: nothing ran" eval '! pwned'

# Sweep charts: the config's file name makes the chart names; sweep
# values and keys make the series titles.
sweepname="$tmp/sw/q'uote;system('touch PWNED');\$(touch PWNED).json"
mkdir -p "$tmp/sw"
cat >"$sweepname" <<'EOS'
{"schedule": "interleaved", "stages": 4, "microbatches": 8, "virtual_stages": 2,
 "sweep": {"stages": [2, 4], "microbatches": [8, 16], "virtual_stages": [2, 4]}}
EOS
"$bin" sweep "$sweepname" --out "$tmp/sw/out" --plot >/dev/null 2>"$tmp/sw.err"
check "hostile sweep name: exit 0: $(cat "$tmp/sw.err")" test $? -eq 0
check "hostile sweep name: charts drawn" test "$(ls "$tmp/sw/out/"*.png | wc -l)" -eq 2
for sh_script in "$tmp/sw/out/"*.sh; do sh "$sh_script" 2>/dev/null; done
check "hostile sweep name: nothing ran" eval '! pwned'

# verify's comparison chart under a hostile name (a dry run needs no GPU).
cat >"$tmp/verify.json" <<'EOS'
{"schedule": "1f1b", "stages": 2, "microbatches": 4, "costs": {"forward": 1, "backward": 2},
 "network": {"message_bytes": 4096},
 "gpu": {"workload": "calibrated", "reps": 3, "warmup": 1, "tolerance": 2}}
EOS
vname="$tmp/names/v \$(touch PWNED) x';system('touch PWNED');'.svg"
"$bin" verify "$tmp/verify.json" --dry-run --timeline "$vname" >/dev/null 2>"$tmp/verify.err"
check "verify chart, hostile name: exit 0: $(cat "$tmp/verify.err")" test $? -eq 0
check "verify chart: SVG complete" grep -q '</svg>' "$vname"
check "verify chart: rows named" grep -q 'device 1 measured' "$vname"
sh "${vname%.svg}.sh" 2>/dev/null
check "verify chart: nothing ran" eval '! pwned'

# tune into a hostile directory.
cat >"$tmp/tune.json" <<'EOS'
{"schedule": "1f1b",
 "model": {"layers": 8, "hidden": 64, "heads": 4, "sequence": 32, "vocabulary": 1000},
 "hardware": {"peak_flops": 1e12, "efficiency": 0.5, "bandwidth": 1e10, "latency": 0.001,
              "tp_bandwidth": 1e10, "tp_latency": 0.002},
 "tune": {"devices": 4, "global_batch": 8, "memory_limit": 1e9,
          "tensor_parallel": [1, 2], "virtual_stages": [1, 2], "microbatch_sizes": [1, 2]}}
EOS
td="$tmp/tune 'q' \$(touch PWNED)"
if "$bin" tune "$tmp/tune.json" --out "$td" >/dev/null 2>"$tmp/tune.err"; then
    check "tune: chart drawn" is_png "$td/tune.png"
    check "tune: Pareto points labelled" grep -q 'with labels' "$td/tune.gp"
    check "tune: seconds on the time axis" grep -q "time per iteration (s)" "$td/tune.gp"
    sh "$td/tune.sh" 2>/dev/null
    check "tune: nothing ran" eval '! pwned'
    # 2. tune's CSV and chart are one set: a truncated image keeps the old CSV.
    before=$(sums "$td")
    PATH="$tmp/fake-truncated:$PATH" "$bin" tune "$tmp/tune.json" --set tune.memory_limit=9e8 \
        --out "$td" >/dev/null 2>"$tmp/tune2.err"
    check "tune: truncated chart: exit 2" test $? -eq 2
    check "tune: truncated chart: message" grep -q "incomplete PNG" "$tmp/tune2.err"
    check "tune: truncated chart: every file as before" test "$(sums "$td")" = "$before"
else
    fail "tune exits non-zero: $(cat "$tmp/tune.err")"
fi

# --- 2. output sets: a later failure leaves every earlier output byte-identical ----------
out="$tmp/set"
mkdir -p "$out/tl"
"$bin" run "$seed" --trace "$out/t.json" --timeline "$out/tl/t.png" >/dev/null
before=$(sums "$out")
# The image comes last; a truncated one (full disk) must not replace anything.
PATH="$tmp/fake-truncated:$PATH" "$bin" run "$seed" --set microbatches=12 \
    --trace "$out/t.json" --timeline "$out/tl/t.png" >/dev/null 2>"$tmp/set.err"
check "run: truncated PNG: exit 2" test $? -eq 2
check "run: truncated PNG: named: $(cat "$tmp/set.err")" grep -q "t.png: gnuplot wrote an incomplete PNG" "$tmp/set.err"
check "run: truncated PNG: trace and timeline files unchanged" test "$(sums "$out")" = "$before"
check "run: no temporary file" no_temp "$out/tl"
"$bin" run "$seed" --timeline "$out/tl/s.svg" >/dev/null
before=$(sums "$out")
PATH="$tmp/fake-truncated:$PATH" "$bin" run "$seed" --set microbatches=12 \
    --timeline "$out/tl/s.svg" >/dev/null 2>"$tmp/set.err"
check "run: truncated SVG: exit 2" test $? -eq 2
check "run: truncated SVG: message" grep -q "incomplete SVG" "$tmp/set.err"
check "run: truncated SVG: unchanged" test "$(sums "$out")" = "$before"
PATH="$tmp/fake-fails:$PATH" "$bin" run "$seed" --set microbatches=12 \
    --trace "$out/t.json" --timeline "$out/tl/t.png" >/dev/null 2>"$tmp/set.err"
check "run: gnuplot fails: exit 1" test $? -eq 1
check "run: gnuplot fails: unchanged" test "$(sums "$out")" = "$before"
# The trace fails (a directory of that name): the timeline files stay as they were.
mkdir -p "$out/tracedir.json"
"$bin" run "$seed" --set microbatches=12 --trace "$out/tracedir.json" \
    --timeline "$out/tl/t.png" >/dev/null 2>&1
check "run: trace is a directory: exit 2" test $? -eq 2
check "run: trace is a directory: unchanged" test "$(sums "$out")" = "$before"

# A real full disk with the real gnuplot: a 600 KiB tmpfs, filled so that the
# data fits but the new image does not. gnuplot exits 0 with a truncated PNG;
# nothing may be replaced. Needs mount rights (root); skipped otherwise.
full="$tmp/tmpfs"
mkdir -p "$full"
if mount -t tmpfs -o size=600k tmpfs "$full" 2>/dev/null; then
    "$bin" run "$seed" --timeline "$full/a.png" >/dev/null 2>&1
    before_full=$(sums "$full")
    dd if=/dev/zero of="$full/filler" bs=1k count=520 2>/dev/null
    before_full=$(sums "$full")
    "$bin" run "$seed" --set microbatches=12 --timeline "$full/a.png" >/dev/null 2>"$tmp/full.err"
    rc=$?
    check "full tmpfs: exit 2 ($rc): $(cat "$tmp/full.err")" test $rc -eq 2
    check "full tmpfs: the incomplete image is named" grep -q "incomplete PNG" "$tmp/full.err"
    check "full tmpfs: every earlier file unchanged" test "$(sums "$full")" = "$before_full"
    check "full tmpfs: no temporary file" no_temp "$full"
    umount "$full"
fi

# One name twice in a set: refused, nothing replaced.
"$bin" run "$seed" --set microbatches=12 --trace "$out/tl/t.dat" --timeline "$out/tl/t.png" \
    >/dev/null 2>"$tmp/twice.err"
check "one name twice: exit 2" test $? -eq 2
check "one name twice: message" grep -q "named twice" "$tmp/twice.err"
check "one name twice: unchanged" test "$(sums "$out")" = "$before"

# sweep: CSV + JSON + charts.
sw="$tmp/swset"
cat >"$tmp/grid.json" <<'EOS'
{"schedule": "interleaved", "stages": 4, "microbatches": 8, "virtual_stages": 2,
 "sweep": {"stages": [2, 4], "microbatches": [8, 16, 32], "virtual_stages": [2, 4]}}
EOS
"$bin" sweep "$tmp/grid.json" --out "$sw" --plot >/dev/null 2>&1
check "sweep set: first run" test -s "$sw/grid.csv" -a -s "$sw/grid-bubble.png"
before=$(sums "$sw")
sed -i 's/"microbatches": 8,/"microbatches": 8, "network": {"latency": 0.5},/' "$tmp/grid.json"
for fake in fake-truncated fake-fails; do
    PATH="$tmp/$fake:$PATH" "$bin" sweep "$tmp/grid.json" --out "$sw" --plot >/dev/null 2>&1
    check "sweep set: $fake: exit non-zero" test $? -ne 0
    check "sweep set: $fake: CSV, JSON and charts unchanged" test "$(sums "$sw")" = "$before"
    check "sweep set: $fake: no temporary file" no_temp "$sw"
done
# The second file of the set (the JSON) cannot be written: the CSV stays.
if [ -c /dev/full ]; then
    cp -a "$sw" "$tmp/swfull"
    rm "$tmp/swfull/grid.json"
    ln -s /dev/full "$tmp/swfull/grid.json"
    before=$(sums "$tmp/swfull")
    "$bin" sweep "$tmp/grid.json" --out "$tmp/swfull" --plot >/dev/null 2>"$tmp/full.err"
    check "sweep set: JSON to /dev/full: exit 2" test $? -eq 2
    check "sweep set: JSON to /dev/full: named" grep -q "grid.json: write failed" "$tmp/full.err"
    check "sweep set: JSON to /dev/full: the rest unchanged" test "$(sums "$tmp/swfull")" = "$before"
fi
# An unwritable chart name (a directory where the image goes): nothing replaced.
rm -f "$sw/grid-makespan-v.png"
mkdir "$sw/grid-makespan-v.png"
before=$(sums "$sw")
"$bin" sweep "$tmp/grid.json" --out "$sw" --plot >/dev/null 2>&1
check "sweep set: image path is a directory: exit non-zero" test $? -ne 0
check "sweep set: image path is a directory: unchanged" test "$(sums "$sw")" = "$before"
check "sweep set: no temporary file" no_temp "$sw"
rmdir "$sw/grid-makespan-v.png"

# --- 4. timelines at scale --------------------------------------------------------------
"$bin" run "$seed" --set stages=857 --set microbatches=857 --timeline "$tmp/scale/p857.png" \
    >/dev/null 2>"$tmp/scale.err"
check "857 devices: exit 0: $(cat "$tmp/scale.err")" test $? -eq 0
check "857 devices: a PNG" is_png "$tmp/scale/p857.png"
h=$(od -An -tu1 -j20 -N4 "$tmp/scale/p857.png" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
check "857 devices: height $h within cairo's 32767" test "$h" -le 10000
"$bin" run "$seed" --set 'schedule="interleaved"' --set stages=16 --set microbatches=1024 \
    --set virtual_stages=2 --timeline "$tmp/scale/il.png" >/dev/null 2>&1
check "P=16 M=1024 V=2: exit 0" test $? -eq 0
thin=$(awk '/^# index 1/{b=1;next} /^# index 2/{b=0} b && /^[0-9]/' "$tmp/scale/il.dat" | wc -l)
check "P=16 M=1024 V=2: thin ops drawn without border ($thin)" test "$thin" -gt 60000
strip=$(awk '/^# index 3/{b=1;next} /^# index 4/{b=0} b && /^[0-9]/' "$tmp/scale/il.dat" | wc -l)
check "P=16 M=1024 V=2: a utilisation strip ($strip bins)" test "$strip" -gt 1000
check "P=16 M=1024 V=2: the picture says so" grep -q "have no border" "$tmp/scale/il.sh"
# The strip is true: its busy share, weighted by bin width, is 1 - bubble.
share=$(awk '/^# index 3/{b=1;next} /^# index 4/{b=0} b && /^[0-9]/ {s += $4 * ($3 - $2); t += $3 - $2} END {printf "%.4f", s / t}' "$tmp/scale/il.dat")
bubble=$("$bin" run "$seed" --set 'schedule="interleaved"' --set stages=16 \
    --set microbatches=1024 --set virtual_stages=2 --json |
    sed -n 's/.*"bubble_ratio": *\([0-9.e-]*\).*/\1/p' | head -n 1)
check "strip busy share $share = 1 - bubble $bubble" \
    awk -v s="$share" -v b="$bubble" 'BEGIN {d = s - (1 - b); exit !(d < 1e-3 && d > -1e-3)}'
"$bin" run "$seed" --set stages=16 --set microbatches=1024 --window 100:300 --memory \
    --timeline "$tmp/scale/w.png" >/dev/null 2>&1
check "--window --memory: exit 0" test $? -eq 0
check "--window: said on the picture" grep -q "window 100 to 300 ms" "$tmp/scale/w.sh"
mem=$(awk '/^# index 4/{b=1;next} b && /^[0-9]/' "$tmp/scale/w.dat" | wc -l)
check "--memory: a live-activation line ($mem points)" test "$mem" -gt 1000
for bad in 5 1:1 -1:3 a:b 3: :3 nan:1 0:inf; do
    expect 2 "--window" "$bin" run "$seed" --timeline "$tmp/scale/x.png" --window "$bad"
done

# sweep --plot with every point refused: no gnuplot error, a clear message.
cat >"$tmp/refused.json" <<'EOS'
{"schedule": "interleaved", "stages": 4, "microbatches": 6, "virtual_stages": 2,
 "sweep": {"microbatches": [5, 7], "virtual_stages": [2, 3]}}
EOS
"$bin" sweep "$tmp/refused.json" --out "$tmp/refused" --plot >/dev/null 2>"$tmp/refused.err"
rc=$?
check "all refused: defined exit code ($rc)" test $rc -eq 0 -o $rc -eq 2
# (sweep.c refuses such a sweep as a whole, exit 2, before any chart; where
# it did not, sweep_plot says "no chart drawn: every one of the 4 points was refused")
check "all refused: says why no chart: $(cat "$tmp/refused.err")" \
    grep -Eq "all 4 points were refused|every one of the 4 points was refused" "$tmp/refused.err"
check "all refused: no gnuplot error" eval '! grep -qi "gnuplot" "$tmp/refused.err"'

# --- sweep charts stay readable ----------------------------------------------------------
# The last tick of a log axis: the swept values travel as ticks, the last included.
"$bin" sweep "$root/configs/sweep-bubble-vs-m.json" --out "$tmp/read" --plot >/dev/null 2>&1
check "log axis: ticks at every swept M, 128 included" \
    grep -q "'4 8 16 32 64 128'" "$tmp/read/sweep-bubble-vs-m-bubble.sh"
# Ten series: split into two line charts of at most eight.
cat >"$tmp/many.json" <<'EOS'
{"schedule": "1f1b", "stages": 4, "microbatches": 8,
 "sweep": {"stages": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "microbatches": [16, 32]}}
EOS
"$bin" sweep "$tmp/many.json" --out "$tmp/read" --plot >/dev/null 2>"$tmp/many.err"
check "10 series: split: $(cat "$tmp/many.err")" \
    test -s "$tmp/read/many-bubble-1.png" -a -s "$tmp/read/many-bubble-2.png"
check "10 series: the split is said" grep -q "split: too many series" "$tmp/many.err"
check "10 series: 8 in the first chart" test "$(grep -c '^"' "$tmp/read/many-bubble-1.dat")" -eq 8
# 40 series would take 5 pictures: that chart is left out with a hint, the rest is written.
cat >"$tmp/toomany.json" <<'EOS'
{"schedule": "1f1b", "stages": 4, "microbatches": 8,
 "sweep": {"stages": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                      22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41],
           "microbatches": [64, 128]}}
EOS
"$bin" sweep "$tmp/toomany.json" --out "$tmp/read" --plot >/dev/null 2>"$tmp/toomany.err"
check "40 series: exit 0" test $? -eq 0
check "40 series: the hint" grep -q "no bubble chart: 40 series would take 5 pictures" \
    "$tmp/toomany.err"
check "40 series: CSV written, no bubble chart" \
    test -s "$tmp/read/toomany.csv" -a ! -e "$tmp/read/toomany-bubble-1.png"

# 24 bars: two comparisons of 12; peak activation memory in GiB.
cat >"$tmp/bars.json" <<'EOS'
{"schedule": "1f1b", "stages": 4, "microbatches": 8, "memory": {"activation_bytes": 3221225472},
 "sweep": {"schedule": ["gpipe", "1f1b", "pipedream", "zb-h1", "zb-h2", "looped-bfs"],
           "microbatches": [8, 12, 16, 20]}}
EOS
"$bin" sweep "$tmp/bars.json" --out "$tmp/read" --plot >/dev/null 2>"$tmp/bars.err"
check "24 bars: split in two: $(cat "$tmp/bars.err")" \
    test -s "$tmp/read/bars-schedules-1.png" -a -s "$tmp/read/bars-schedules-2.png"
check "24 bars: 12 in each" test "$(grep -c '^"' "$tmp/read/bars-schedules-2.dat")" -eq 12
check "bytes in GiB" grep -q "peak activation memory (GiB)" "$tmp/read/bars-schedules-1.sh"
# 1f1b/interleaved x V=1,2,4: the V=1 baseline joins the interleaved line.
cat >"$tmp/base.json" <<'EOS'
{"schedule": "1f1b", "stages": 4, "microbatches": 8,
 "sweep": {"schedule": ["1f1b", "interleaved"], "virtual_stages": [1, 2, 4]}}
EOS
"$bin" sweep "$tmp/base.json" --out "$tmp/read" --plot >/dev/null 2>&1
check "baseline joined: the interleaved line starts at 1f1b's V=1 point" \
    grep -q '"interleaved (from 1f1b at V=1)"' "$tmp/read/base-makespan-v.dat"
check "baseline joined: three points on the line" \
    test "$(awk '/^"interleaved/{b=1;next} b && /^[0-9]/' "$tmp/read/base-makespan-v.dat" | wc -l)" -eq 3

check "nothing ran anywhere" eval '! pwned'
finish cli_charts
