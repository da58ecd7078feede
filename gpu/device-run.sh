#!/usr/bin/env bash
# gpu/device-run.sh OUTDIR [--dry-run] - the one command for a device window.
#
# Runs, in this order, each step under its own `timeout` inside one global
# budget (BUDGET seconds, default 360):
#   facts        date, host, driver, GPU, clocks (nvidia-smi; skipped without it)
#   probe        bubblesim verify --probe --json
#   smoke        one small calibrated 1f1b run (P=2, M=4)
#   calibrated   the seed's scenarios: P = 2, 4, 8 x gpipe, 1f1b, interleaved
#                (V=2), pipedream, forward; F = 1 ms, B = 2 ms, M = 8
#   mlp          the same scenarios with real layers (gpu.workload "mlp")
#   tests        the GPU test script tests/gpu_device.sh, run directly (no meson)
# Each scenario runs `bubblesim verify --json` ONCE, writing its report and
# both timelines (predicted, measured) as Chrome/Perfetto traces, op by op.
#
# OUTDIR never holds more than four files, so everything comes back from a
# device call (at most 8 files): after every step the work folder is
# repacked into OUTDIR/results.tar.gz (written aside, then renamed), beside
# OUTDIR/summary.txt (one line per step and per scenario) and OUTDIR/log.txt
# (everything printed). A run killed half way still leaves what finished.
#
# --dry-run takes no GPU: every verify runs with --dry-run (the GPU plan under
# ideal stream semantics: never a measurement), the probe and the GPU tests
# run and say "no GPU" (exit 3 and 77, expected); CI runs it so the script,
# its steps and its packing are tested on any machine.
#
# Environment: BUILD (a build folder, relative to the source root or
# absolute; default build) must hold cli/bubblesim; a libcjson.so.1 copied
# into BUILD is found through LD_LIBRARY_PATH, so the build folder can be
# carried to a machine without cJSON. BUDGET (s, default 360), REPS (default
# 7), TOLERANCE (% for calibrated, default 2), MLP_TOLERANCE (default 5),
# STAGES (default "2 4 8"), SCHEDULES (default "gpipe 1f1b interleaved
# pipedream forward"), SCENARIO_TIMEOUT (s per scenario, default 40).
#
# Exit status: 0 every step ran and every scenario passed; 4 some scenario
# outside tolerance (or a count, order or numerics differ); 3 no usable GPU
# (not in --dry-run); 5 a step or scenario timed out, failed otherwise, or
# was skipped for want of budget; 2 usage.
set -u

usage() {
    echo "usage: gpu/device-run.sh OUTDIR [--dry-run]   (BUILD=builddir BUDGET=seconds)" >&2
    exit 2
}
out=
dry=0
for a in "$@"; do
    case $a in
    --dry-run) dry=1 ;;
    -*) usage ;;
    *) [ -z "$out" ] || usage; out=$a ;;
    esac
done
[ -n "$out" ] || usage
case $out in -*) usage ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/cli/bubblesim
if [ ! -x "$bin" ]; then
    echo "gpu/device-run.sh: no bubblesim in $build (set BUILD to a build folder)" >&2
    exit 2
fi
export LD_LIBRARY_PATH=$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
budget=${BUDGET:-360}
reps=${REPS:-7}
tolerance=${TOLERANCE:-2}
mlp_tolerance=${MLP_TOLERANCE:-5}
stages=${STAGES:-2 4 8}
schedules=${SCHEDULES:-gpipe 1f1b interleaved pipedream forward}
scenario_timeout=${SCENARIO_TIMEOUT:-40}
for v in "$budget" "$reps" "$scenario_timeout"; do
    case $v in '' | *[!0-9]*) echo "gpu/device-run.sh: BUDGET, REPS and SCENARIO_TIMEOUT take whole numbers" >&2; exit 2 ;; esac
done
[ "$reps" -ge 1 ] || { echo "gpu/device-run.sh: REPS: at least 1" >&2; exit 2; }
for p in $stages; do
    case $p in '' | *[!0-9]* | 0 | 1) echo "gpu/device-run.sh: STAGES: whole numbers >= 2 expected, got \"$p\"" >&2; exit 2 ;; esac
done
for s in $schedules; do
    case $s in *[!a-z0-9-]*) echo "gpu/device-run.sh: SCHEDULES: bad name \"$s\"" >&2; exit 2 ;; esac
done

mkdir -p "$out" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/device-run.XXXXXX") || exit 2
res=$work/results
mkdir -p "$res/configs"
trap 'rm -rf "$work"' EXIT
: >"$out/summary.txt"
: >"$out/log.txt"
status=0
dryflag=()
[ "$dry" -eq 1 ] && dryflag=(--dry-run)

log() { printf '%s\n' "$*" | tee -a "$out/log.txt"; }
note() { printf '%s\n' "$*" >>"$out/summary.txt"; log "$*"; }
worse() { # keep the most telling exit status: 3 > 5 > 4 > 0
    case $1 in
    3) status=3 ;;
    5) [ "$status" -ne 3 ] && status=5 ;;
    4) [ "$status" -eq 0 ] && status=4 ;;
    esac
}
left() { echo $((budget - SECONDS)); }
# Repack everything into OUTDIR: the archive is written aside and renamed,
# so a run killed while packing still leaves the previous archive.
pack() {
    cp "$out/summary.txt" "$out/log.txt" "$res/" 2>/dev/null
    if tar -C "$work" -czf "$out/.results.tar.gz.part" results 2>>"$out/log.txt"; then
        mv -f "$out/.results.tar.gz.part" "$out/results.tar.gz"
    else
        rm -f "$out/.results.tar.gz.part"
    fi
}
trap 'log "== stopped by a signal after $SECONDS s"; note "stopped by a signal"; pack; exit 5' TERM INT HUP
# step NAME SECONDS CMD...: runs CMD under timeout min(SECONDS, what is left
# of the budget), output into the log; sets $rc (124: timed out, 125:
# skipped for want of budget).
step() {
    local name=$1 want=$2 t
    shift 2
    t=$(left)
    if [ "$t" -lt 5 ]; then
        rc=125
        log "== $name: skipped, budget spent ($SECONDS of $budget s)"
        return
    fi
    [ "$t" -gt "$want" ] && t=$want
    log "== $name (timeout $t s, $SECONDS of $budget s used): $*"
    timeout -k 5 "$t" "$@" >>"$out/log.txt" 2>&1
    rc=$?
    [ "$rc" -eq 137 ] && rc=124
    log "== $name: exit $rc"
}

log "== gpu/device-run.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname 2>/dev/null || echo '?')"
[ "$dry" -eq 1 ] && note "DRY RUN: no GPU is used; every figure below is the plan under ideal stream semantics, never a measurement"
note "budget $budget s, reps $reps, tolerance $tolerance % (mlp $mlp_tolerance %), stages: $stages"

# -- facts: what the machine is, before anything can go wrong
cat >"$work/facts.sh" <<'EOF'
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host: $(hostname 2>/dev/null)"
echo "kernel: $(uname -srm)"
echo "bubblesim: $1"
ldd "$1" 2>&1 | sed 's/^/  /'
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,persistence_mode,power.draw,power.limit,temperature.gpu --format=csv 2>&1 ||
        nvidia-smi 2>&1
    nvidia-smi -q -d CLOCK,PERFORMANCE 2>&1 | head -80
else
    echo "nvidia-smi: not found"
fi
EOF
step facts 30 bash "$work/facts.sh" "$bin"
facts_rc=$rc
cp "$out/log.txt" "$res/facts.txt"
note "facts: exit $facts_rc"
if command -v nvidia-smi >/dev/null 2>&1; then
    note "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm \
        --format=csv,noheader 2>&1 | head -2 | tr '\n' ' ')(name, driver, SM clock now and at most)"
fi
pack

# -- probe
if ! "$bin" --help >/dev/null 2>&1; then
    note "bubblesim does not start (a missing libcjson.so.1? copy it into $build): see log.txt"
    "$bin" --help >>"$out/log.txt" 2>&1
    pack
    exit 5
fi
step probe 60 sh -c '"$1" verify --probe --json >"$2" 2>"$3"' sh "$bin" "$res/probe.json" "$res/probe.err"
cat "$res/probe.json" "$res/probe.err" >>"$out/log.txt" 2>/dev/null
probe_rc=$rc
note "probe: exit $probe_rc$([ "$probe_rc" -ne 0 ] && printf ' (%s)' "$(head -c 300 "$res/probe.err" | tr '\n' ' ')")"
pack
if [ "$probe_rc" -ne 0 ] && [ "$dry" -eq 0 ]; then
    note "no usable GPU: nothing measured"
    [ "$probe_rc" -eq 3 ] && worse 3 || worse 5
    pack
    exit "$status"
fi

# write_config NAME SCHEDULE P V M WORKLOAD
write_config() {
    cat >"$res/configs/$1.json" <<EOF
{
  "schedule": "$2",
  "stages": $3,
  "microbatches": $5,
  "virtual_stages": $4,
  "iterations": 1,
  "costs": {"forward": 1.0, "backward": 2.0},
  "memory": {"activation_bytes": 16777216},
  "network": {"message_bytes": 4194304},
  "gpu": {"workload": "$6", "reps": $reps, "warmup": 2,
          "mlp": {"hidden": 1024, "batch": 256, "layers_per_chunk": 2, "seed": 1}}
}
EOF
}

# Pulls a number or boolean out of verify's JSON report (cJSON layout:
# one "key": value per line).
field() { sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\\([^,]*\\),\\{0,1\\}\$/\\1/p" "$2" | head -1 | tr -d '"'; }

# scenario NAME SCHEDULE P V M WORKLOAD TOLERANCE SECONDS: one verify --json
# run; its report, both results and its stderr land in the work folder.
scenario() {
    local name=$1 tol=$7 secs=$8 t line j
    write_config "$1" "$2" "$3" "$4" "$5" "$6"
    t=$(left)
    if [ "$t" -lt 5 ]; then
        note "$(printf '%-28s skipped: budget spent' "$name")"
        worse 5
        return
    fi
    [ "$t" -gt "$secs" ] && t=$secs
    log "== $name (timeout $t s, $SECONDS of $budget s used)"
    timeout -k 5 "$t" "$bin" verify "$res/configs/$name.json" --json --tolerance "$tol" \
        --predicted "$res/$name.predicted.trace.json" --measured "$res/$name.measured.trace.json" \
        ${dryflag[@]+"${dryflag[@]}"} >"$res/$name.json" 2>"$res/$name.err"
    rc=$?
    [ "$rc" -eq 137 ] && rc=124
    cat "$res/$name.err" >>"$out/log.txt"
    [ -s "$res/$name.err" ] || rm -f "$res/$name.err"
    case $rc in
    0 | 4)
        j=$res/$name.json
        line="makespan predicted $(field makespan_predicted_ms "$j") ms, measured $(field makespan_measured_ms "$j") ms, error $(field makespan_error_pct "$j") % ($(field makespan_error_us "$j") us, $(field makespan_error_per_hop_us "$j") us/hop), spread $(field makespan_noise_pct "$j") %, mode $(field mode "$j"), judged $(field judged "$j"), pass $(field pass "$j")"
        [ "$rc" -eq 4 ] && worse 4 ;;
    124) line="TIMEOUT after $t s"; worse 5 ;;
    *) line="FAILED: $(head -c 300 "$res/$name.err" 2>/dev/null | tr '\n' ' ')"; worse 5 ;;
    esac
    note "$(printf '%-28s exit %-3d %s' "$name" "$rc" "$line")"
}

# -- smoke: a small run that must work before the long ones (tolerance 50 %:
# it checks that a run goes through; the scenarios judge the error)
scenario smoke-1f1b-p2 1f1b 2 1 4 calibrated 50 $((scenario_timeout + 20))
pack

# -- the seed's scenarios. Budget per scenario: a calibrated run is about
# (warmup + reps) x makespan (M = 8: 24 to 60 ms) plus setup; mlp adds the
# cost timing. 40 s is generous for either; the global budget decides.
for workload in calibrated mlp; do
    tol=$tolerance
    [ "$workload" = mlp ] && tol=$mlp_tolerance
    for p in $stages; do
        for schedule in $schedules; do
            v=1
            [ "$schedule" = interleaved ] && v=2
            scenario "$workload-$schedule-p$p" "$schedule" "$p" "$v" 8 "$workload" "$tol" \
                "$scenario_timeout"
        done
        pack
    done
done

# -- the GPU tests, run directly: no meson on the device machine
step tests 120 bash "$root/tests/gpu_device.sh" "$bin" "$root"
case $rc in
0) note "tests: exit 0" ;;
77) note "tests: skipped (77): no usable GPU"; [ "$dry" -eq 1 ] || worse 3 ;;
124 | 125) note "tests: exit $rc (timed out or no budget left)"; worse 5 ;;
*) note "tests: exit $rc (FAILED; see log.txt)"; worse 5 ;;
esac
log "== done in $SECONDS s; exit $status"
note "exit $status"
pack
exit "$status"
