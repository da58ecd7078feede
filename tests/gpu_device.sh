#!/usr/bin/env bash
# gpu_device.sh BUBBLESIM SRCDIR - the device suite (`meson test --suite gpu`),
# built only with CUDA. Skips (77) when no usable GPU is found. With one, a
# small calibrated run of each seed schedule must execute the exact op order
# and message count (exit 0 or 4 decides nothing here: timing error is the
# business of gpu/device-run.sh; exit 4 with exact counts and orders is accepted,
# anything else fails). The mlp runs must also get the numerics right: the
# sequential reference's weight gradients, or PipeDream's stashed versions.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$bin" verify --probe >"$tmp/probe" 2>&1; then
    echo "no usable GPU, skipping:"
    cat "$tmp/probe"
    exit 77
fi
cat "$tmp/probe"
fails=0
run() { # run NAME ARGS...
    local name=$1
    shift
    cat >"$tmp/c.json" <<'JSON'
{"schedule": "1f1b", "stages": 2, "microbatches": 4,
 "costs": {"forward": 0.5, "backward": 1},
 "network": {"message_bytes": 65536},
 "gpu": {"reps": 3, "warmup": 1}}
JSON
    "$bin" verify "$tmp/c.json" --json "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if { [ $rc -ne 0 ] && [ $rc -ne 4 ]; } ||
        ! grep -q '"messages_match":[[:space:]]*true' "$tmp/out" ||
        ! grep -q '"orders_match":[[:space:]]*true' "$tmp/out" ||
        { grep -q '"workload":[[:space:]]*"mlp"' "$tmp/out" &&
            ! grep -q '"numerics_ok":[[:space:]]*true' "$tmp/out"; }; then
        echo "FAIL: $name (exit $rc)"
        cat "$tmp/out" "$tmp/err"
        fails=$((fails + 1))
    elif ! grep -q '"selftest":[[:space:]]*".*: ok"' "$tmp/out" ||
        ! grep -q '"module_loading":[[:space:]]*"EAGER' "$tmp/out" ||
        grep -q '"kernels_warmed":[[:space:]]*0,' "$tmp/out"; then
        # the pre-flight: every stream operation tried, modules loaded
        # eagerly, every kernel launched once before timing
        echo "FAIL: $name: pre-flight not reported as done"
        cat "$tmp/out"
        fails=$((fails + 1))
    elif grep -q '"workload":[[:space:]]*"mlp"' "$tmp/out" &&
        grep -q '"mode":[[:space:]]*"streams"' "$tmp/out" &&
        ! grep -q '"judged":[[:space:]]*false' "$tmp/out"; then
        echo "FAIL: $name: mlp in streams mode must not be judged"
        fails=$((fails + 1))
    else
        echo "ok: $name (exit $rc)"
    fi
}
run gpipe --set schedule=gpipe
run 1f1b
run pipedream --set schedule=pipedream
run interleaved --set schedule=interleaved --set virtual_stages=2 --set stages=2
run forward --set schedule=forward
run streams-mode --streams
run four-stages --set stages=4 --set microbatches=8
mlp=(--set gpu.workload=mlp --set 'gpu.mlp={"hidden": 256, "batch": 64, "layers_per_chunk": 2}')
run mlp-gpipe --set schedule=gpipe "${mlp[@]}"
run mlp-1f1b "${mlp[@]}"
run mlp-interleaved --set schedule=interleaved --set virtual_stages=2 "${mlp[@]}"
run mlp-pipedream --set schedule=pipedream "${mlp[@]}"
run mlp-forward --set schedule=forward "${mlp[@]}"
run mlp-zb-h1 --set schedule=zb-h1 "${mlp[@]}"
run mlp-streams --streams "${mlp[@]}"
[ "$fails" -eq 0 ] || exit 1
