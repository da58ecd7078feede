#!/bin/bash
# cli_reliability.sh BUBBLESIM SOURCE_DIR - faults and limits: settable op
# and memory limits refused with their numbers; out of memory under a small
# `ulimit -v`; full and unwritable outputs (/dev/full, a directory below a
# plain file) leave no partial file and do not replace a device; an
# interrupted sweep exits 130 with no output, or with --partial keeps the
# finished rows in NAME.partial.csv. Interrupts are raised by the sweep
# itself after a fixed number of points (BUBBLESIM_TEST_SIGINT_AFTER), so
# every run is the same.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"

check() { # check WHAT CMD... : CMD must succeed
    local what=$1
    shift
    checks=$((checks + 1))
    "$@" >/dev/null 2>&1 || fail "$what"
}

# The scratch folder holds only what a test put there: no temporary or
# partial files left behind.
no_leftovers() { # no_leftovers DIR WHAT
    checks=$((checks + 1))
    local extra
    extra=$(find "$1" -name '.*tmp*' -o -name '*.partial.*' | head -n 3)
    [ -z "$extra" ] || fail "$2: left $extra"
}

cfg ok.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8}'

# --- limits: settable, refused before allocating, with the numbers.
expect 2 "= 64 ops exceeds the limit of 63 ops (limits.max_ops)" \
    "$bin" run "$tmp/ok.json" --set limits.max_ops=63
expect 0 "makespan (ms)" "$bin" run "$tmp/ok.json" --set limits.max_ops=64
expect 2 "64 ops and 32 stage/micro-batch pairs need about 2208 bytes (24 per op, 21 per pair), which exceeds the limit of 2000 bytes (limits.max_memory)" \
    "$bin" run "$tmp/ok.json" --set limits.max_memory=2000
expect 0 "makespan (ms)" "$bin" run "$tmp/ok.json" --set limits.max_memory=2208
cfg limits.json '{"schedule": "gpipe", "stages": 4, "microbatches": 8, "limits": {"max_ops": 10}}'
expect 2 "limits.json: microbatches: P*V*M*iterations*2 = 64 ops exceeds the limit of 10 ops" \
    "$bin" run "$tmp/limits.json"
expect 2 "limits.max_ops: expected a finite number >= 0, got -1" \
    "$bin" run "$tmp/ok.json" --set limits.max_ops=-1
expect 2 "limits.max_op: unknown key; did you mean \"max_ops\"? expected one of max_ops, max_memory" \
    "$bin" run "$tmp/ok.json" --set limits.max_op=1
# The default: 10^8 ops, refused at once (no allocation of 4 GB first).
expect 2 "= 200000000 ops exceeds the limit of 100000000 ops" \
    "$bin" run "$tmp/ok.json" --set stages=1000 --set microbatches=100000
# Raising the op limit lets the memory limit speak: 8 GiB by default.
expect 2 "which exceeds the limit of 8589934592 bytes (limits.max_memory)" \
    "$bin" run "$tmp/ok.json" --set stages=1000 --set microbatches=200000 \
    --set limits.max_ops=1e9
# A sweep point over a limit is a refused row, not a failed sweep.
cfg sw.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8, "limits": {"max_ops": 100},
  "sweep": {"microbatches": [8, 16]}}'
expect 0 "exceeds the limit of 100 ops" "$bin" sweep "$tmp/sw.json"

# --- out of memory: a clear error and a non-zero exit, no crash. Skipped
# where the binary cannot start under the limit (AddressSanitizer reserves
# terabytes of address space).
if bash -c 'ulimit -v 200000 && "$0" --version; exit $?' "$bin" >/dev/null 2>&1; then
    checks=$((checks + 1))
    out=$(ulimit -v 200000 && "$bin" run "$tmp/ok.json" --set stages=64 \
        --set microbatches=100000 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
        fail "out of memory: exit $rc, want a failure exit without a signal"$'\n'"$out"
    fi
    case "$out" in
    *"out of memory"*) ;;
    *) fail "out of memory: message lacks \"out of memory\": $out" ;;
    esac
else
    echo "out-of-memory check skipped: the binary does not start under ulimit -v"
fi

# --- full and unwritable outputs.
if [ -c /dev/full ]; then
    expect 1 "cannot write to standard output" sh -c '"$1" >/dev/full' _ "$bin"
    expect 1 "cannot write to standard output" sh -c '"$1" run "$2" --json >/dev/full' _ \
        "$bin" "$tmp/ok.json"
    expect 1 "cannot write to standard output" sh -c '"$1" sweep "$2" >/dev/full' _ \
        "$bin" "$tmp/sw.json"
    expect 2 "/dev/full: cannot write the trace" \
        "$bin" run "$tmp/ok.json" --trace /dev/full
    expect 2 "/dev/full: write failed: No space left on device" \
        "$bin" export "$tmp/ok.json" --format pytorch -o /dev/full
    expect 2 "/dev/full: write failed: No space left on device" \
        "$bin" verify "$tmp/ok.json" --dry-run --measured /dev/full
    # Written directly, never renamed over: the device is still a device.
    check "/dev/full is still a character device" test -c /dev/full
    check "/dev has no temporary file of ours" sh -c '! ls -a /dev | grep -q "^\.full\.tmp"'
fi
: >"$tmp/plain"
expect 2 "$tmp/plain/out: cannot create the output directory" \
    "$bin" sweep "$tmp/sw.json" --out "$tmp/plain/out"
expect 2 "$tmp/plain: not a directory" \
    "$bin" run "$tmp/ok.json" --trace "$tmp/plain/t.json"
expect 2 "$tmp/plain: not a directory" \
    "$bin" run "$tmp/ok.json" --timeline "$tmp/plain/t.png"
expect 2 "/dev/full: not a directory" "$bin" sweep "$tmp/sw.json" --out /dev/full
no_leftovers "$tmp" "unwritable outputs"

# --- interrupted sweeps.
cfg big.json '{"schedule": "1f1b", "stages": 4, "microbatches": 8,
  "sweep": {"stages": [2, 4, 8, 16], "microbatches": [4, 8, 16, 32, 64, 128]}}'
expect 130 "interrupted; unfinished output files were removed" \
    env BUBBLESIM_TEST_SIGINT_AFTER=5 "$bin" sweep "$tmp/big.json" --out "$tmp/int" --jobs 2
checks=$((checks + 1))
[ -z "$(ls -A "$tmp/int" 2>/dev/null)" ] || fail "interrupted sweep left: $(ls -A "$tmp/int")"

expect 130 "sweep interrupted after" \
    env BUBBLESIM_TEST_SIGINT_AFTER=5 "$bin" sweep "$tmp/big.json" --out "$tmp/part" \
    --jobs 2 --partial
checks=$((checks + 1))
if [ -e "$tmp/part/big.csv" ] || [ -e "$tmp/part/big.json" ]; then
    fail "interrupted --partial sweep wrote the complete outputs"
fi
"$bin" sweep "$tmp/big.json" --out "$tmp/full" >/dev/null 2>&1
checks=$((checks + 1))
if [ -f "$tmp/part/big.partial.csv" ]; then
    rows=$(($(wc -l <"$tmp/part/big.partial.csv") - 1))
    # Point 5 raised the signal; a second worker may finish the point it holds.
    { [ "$rows" -ge 5 ] && [ "$rows" -le 6 ]; } || fail "partial rows: $rows, want 5 or 6"
    # Every kept row is the row the complete sweep has for that point.
    missing=$(grep -vxFf "$tmp/full/big.csv" "$tmp/part/big.partial.csv" | head -n 2)
    [ -z "$missing" ] || fail "partial rows differ from the complete sweep: $missing"
else
    fail "no big.partial.csv after an interrupted --partial sweep"
fi
# A sweep that completes removes the stale partial file.
expect 0 "24 points (0 refused)" "$bin" sweep "$tmp/big.json" --out "$tmp/part" --partial
check "complete sweep removed big.partial.csv" test ! -e "$tmp/part/big.partial.csv"
expect 2 "--partial needs --out DIR" "$bin" sweep "$tmp/big.json" --partial
no_leftovers "$tmp/full" "complete sweep"

finish cli_reliability
