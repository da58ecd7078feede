#!/usr/bin/env bash
# gpu/check.sh OUTDIR - the device run: on a machine with an NVIDIA GPU,
# prints the GPU, driver, SM count, green-context granularity and the
# %globaltimer tick, then runs `bubblesim verify` over the seed's
# configurations (P = 2, 4, 8; gpipe, 1f1b, interleaved V=2, pipedream,
# forward) for both workloads (calibrated, mlp), and writes into OUTDIR:
#   probe.txt, probe.json         the device as verify sees it
#   NAME.json, NAME.txt           verify's report (JSON and table) per config
#   NAME.predicted.json           the predicted result (bubblesim JSON)
#   NAME.measured.json            the measured result, same format
#   NAME.{predicted,measured}.trace.json  both timelines as Chrome/Perfetto
#                                 traces (open them together in ui.perfetto.dev)
#   NAME.png (+ .gp, .dat)        predicted and measured rows per device, one
#                                 chart (when gnuplot is installed)
#   summary.txt                   one line per configuration
#   configs/NAME.json             the configurations that were run
# It uses an existing build (no package registry needed): $BUILD, default
# "build" under the source root; LD_LIBRARY_PATH gets the build directory
# first, where a copy of libcjson.so.1 may be carried.
# Exit status: 0 all within tolerance, 4 some outside, 3 no usable GPU,
# 2 usage or a configuration refused.
set -u
if [ $# -ne 1 ]; then
    echo "usage: gpu/check.sh OUTDIR   (BUILD=builddir, default build)" >&2
    exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/cli/bubblesim
if [ ! -x "$bin" ]; then
    echo "gpu/check.sh: no bubblesim in $build (set BUILD to a build directory)" >&2
    exit 2
fi
export LD_LIBRARY_PATH=$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$out/configs" || exit 2
reps=${REPS:-7}
tolerance=${TOLERANCE:-2}

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)" | tee "$out/probe.txt"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv 2>&1 | tee -a "$out/probe.txt"
fi
"$bin" verify --probe 2>&1 | tee -a "$out/probe.txt"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo "gpu/check.sh: verify --probe exited $status; nothing measured" >&2
    exit "$status"
fi
"$bin" verify --probe --json >"$out/probe.json"

# The seed's scenarios: F = 1 ms, B = 2 ms per micro-batch and stage, M = 8;
# real messages of 4 MiB and activations of 16 MiB per micro-batch and stage.
# The mlp workload replaces costs and sizes with its own: hidden 1024,
# 256 tokens per micro-batch (messages of 1 MiB), 2 layers per chunk; its
# costs are timed on the GPU before the prediction. Tolerances: 2 % for
# calibrated, 5 % for mlp (TOLERANCE and MLP_TOLERANCE override them).
mlp_tolerance=${MLP_TOLERANCE:-5}
write_config() { # NAME SCHEDULE P V
    cat >"$out/configs/$1.json" <<EOF
{
  "schedule": "$2",
  "stages": $3,
  "microbatches": 8,
  "virtual_stages": $4,
  "iterations": 1,
  "costs": {"forward": 1.0, "backward": 2.0},
  "memory": {"activation_bytes": 16777216},
  "network": {"message_bytes": 4194304},
  "gpu": {"workload": "calibrated", "reps": $reps, "warmup": 2, "tolerance": $tolerance,
          "mlp": {"hidden": 1024, "batch": 256, "layers_per_chunk": 2, "seed": 1}}
}
EOF
}

chart=()
command -v gnuplot >/dev/null 2>&1 || echo "gpu/check.sh: no gnuplot, so no charts" >&2

worst=0
: >"$out/summary.txt"
for workload in calibrated mlp; do
    for p in 2 4 8; do
        for schedule in gpipe 1f1b interleaved pipedream forward; do
            v=1
            [ "$schedule" = interleaved ] && v=2
            name=$workload-$schedule-p$p
            write_config "$name" "$schedule" "$p" "$v"
            cfg=$out/configs/$name.json
            if command -v gnuplot >/dev/null 2>&1; then
                chart=(--timeline "$out/$name.png")
            fi
            tol=$tolerance
            [ "$workload" = mlp ] && tol=$mlp_tolerance
            "$bin" verify "$cfg" --set gpu.workload=$workload --tolerance "$tol" \
                --predicted "$out/$name.predicted.json" --measured "$out/$name.measured.json" \
                "${chart[@]}" >"$out/$name.txt" 2>&1
            code=$?
            "$bin" verify "$cfg" --set gpu.workload=$workload --tolerance "$tol" \
                --json >"$out/$name.json" \
                --predicted "$out/$name.predicted.trace.json" \
                --measured "$out/$name.measured.trace.json" 2>"$out/$name.err"
            line=$(grep -E '^(PASS|FAIL)' "$out/$name.txt" | tail -1)
            [ -n "$line" ] || line=$(tail -1 "$out/$name.txt")
            printf '%-32s exit %d  %s\n' "$name" "$code" "$line" | tee -a "$out/summary.txt"
            case $code in
            0) ;;
            4) [ "$worst" -eq 0 ] && worst=4 ;;
            *) worst=$code ;;
            esac
        done
    done
done
echo "results in $out (summary.txt); exit $worst"
exit "$worst"
