#!/bin/sh
# measure.sh - measured against predicted for the PyTorch runtime on this CPU:
# gpipe, 1f1b, interleaved (V=2), zb-h1, zbv (V=2) on 2 gloo ranks, M=8, with
# the sleep workload and the mlp workload. For each: run the schedule through
# PyTorch pipelining (run_schedule.py), calibrate a config from that trace,
# and compare. Prints one markdown table (docs/validation.md, "PyTorch
# runtime") and keeps every trace, config and comparison in OUTDIR.
#
# usage: tools/pytorch/measure.sh [OUTDIR]     (default: pytorch-measure)
# env:   BUBBLESIM (default build/cli/bubblesim), STEPS (100), WARMUP (2),
#        PYTHON (python3), WORKLOADS ("sleep mlp"), SCHEDULES (all five),
#        NICE (e.g. -10: run the ranks at that nice level, root only, so that
#        other work on a shared machine disturbs the timings less; default:
#        not changed)
# Needs torch 2.15; takes about 20 s per run when the machine is idle.
set -eu
cd "$(dirname "$0")/../.."
out=${1:-pytorch-measure}
bubblesim=${BUBBLESIM:-build/cli/bubblesim}
python=${PYTHON:-python3}
steps=${STEPS:-100}
warmup=${WARMUP:-2}
workloads=${WORKLOADS:-"sleep mlp"}
schedules=${SCHEDULES:-"gpipe 1f1b interleaved zb-h1 zbv"}
nice=
[ -n "${NICE:-}" ] && nice="nice -n $NICE"
mkdir -p "$out"
[ -x "$bubblesim" ] || { echo "measure.sh: no $bubblesim (meson compile -C build)" >&2; exit 2; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
echo "# $($python -c 'import torch; print("torch", torch.__version__)' 2>/dev/null); steps $steps (+$warmup warm-up); nice ${NICE:-unchanged}"
echo
echo "| schedule | workload | measured makespan (ms, median) | predicted (ms) | makespan_error | sampled (ms) | sampled error | sampled 10-90 % (ms) | held-out sampled error | noise (max-min)/median | overhead (ms/op) | latency (ms) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
status=0
for w in $workloads; do
    for s in $schedules; do
        v=1
        case $s in interleaved|zbv) v=2 ;; esac
        # Sleep costs per chunk op (ms): F = 4; a split backward I = W = 4, a full one
        # B = 8. A config's number is a device stage's cost, shared by its V chunks.
        case $s in
            zb-h1|zbv) f=4 b=4 wt=4 ;;
            *) f=4 b=8 wt=0 ;;
        esac
        costs="--set costs.forward=$((f * v)) --set costs.backward=$((b * v)) --set costs.weight=$((wt * v))"
        name=$s-$w
        # shellcheck disable=SC2086
        if ! $nice $python tools/pytorch/run_schedule.py configs/seed-p4-m8.json --out "$out/$name.trace.json" \
            --bubblesim "$bubblesim" --workload "$w" --steps "$steps" --warmup "$warmup" \
            --set schedule="$s" --set stages=2 --set microbatches=8 --set virtual_stages=$v \
            $costs > "$out/$name.run.log" 2>&1; then
            echo "| $s | $w | run failed: see $out/$name.run.log | | | | | | | | | |"
            status=1
            continue
        fi
        "$bubblesim" calibrate "$out/$name.trace.json" -o "$out/$name.config.json" > "$out/$name.calibrate.txt"
        # Held out: calibrated on the even steps, compared with the odd ones.
        $python - "$out/$name.trace.json" "$out/$name" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for part, steps in (("even", t["steps"][0::2]), ("odd", t["steps"][1::2])):
    u = dict(t, steps=steps)
    json.dump(u, open(f"{sys.argv[2]}.{part}.trace.json", "w"))
PY
        "$bubblesim" calibrate "$out/$name.even.trace.json" -o "$out/$name.even.config.json" > /dev/null
        set +e
        # The sampled prediction draws its variation from the trace the
        # config was calibrated from: in-sample the whole run, held out the
        # even steps.
        "$bubblesim" compare "$out/$name.config.json" "$out/$name.trace.json" --json --tolerance 100 \
            --noise "$out/$name.trace.json" > "$out/$name.compare.json"
        "$bubblesim" compare "$out/$name.even.config.json" "$out/$name.odd.trace.json" --json \
            --tolerance 100 --noise "$out/$name.even.trace.json" > "$out/$name.heldout.json"
        set -e
        $python - "$out/$name.compare.json" "$out/$name.calibrate.txt" "$s" "$w" "$out/$name.heldout.json" <<'PY'
import json, re, sys
c = json.load(open(sys.argv[1]))
h = json.load(open(sys.argv[5]))
cal = open(sys.argv[2]).read()
ovh = re.search(r"per-op overhead ([0-9.]+)", cal).group(1)
lat = re.search(r"message latency ([0-9.]+)", cal).group(1)
print(f"| {sys.argv[3]} | {sys.argv[4]} | {c['measured_makespan']:.2f} | {c['predicted_makespan']:.2f} "
      f"| {100*c['makespan_error']:+.2f} % | {c['sampled_makespan']:.2f} | {100*c['sampled_error']:+.2f} % "
      f"| {c['sampled_low']:.1f}-{c['sampled_high']:.1f} | {100*h['sampled_error']:+.2f} % "
      f"| {100*c['noise_spread']:.2f} % | {float(ovh):.3f} | {float(lat):.3f} |")
PY
    done
done
exit $status
