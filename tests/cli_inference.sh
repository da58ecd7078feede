#!/bin/bash
# cli_inference.sh BUBBLESIM SOURCE_DIR - inference as a user runs it: the
# decode table and JSON (serving figures, KV cache), interleaved forward,
# tune for serving (latency, throughput), and bad inputs (exit 2 naming the
# key): zero tokens, a KV cache that cannot fit, a missing memory bandwidth,
# an objective for a training config, decode exported as PyTorch text.
set -u
bin=$1
src=$2
. "$(dirname "$0")/cli_lib.sh"
c=$src/configs

# Decode by hand: the table names the serving figures and drops weight
# versions; the JSON has the inference object and per-device KV cache.
expect 0 "time per output token" "$bin" run "$c/decode-p4.json"
expect 0 "time to first token" "$bin" run "$c/decode-p4.json"
checks=$((checks + 1))
if "$bin" run "$c/decode-p4.json" | grep -q "weight versions"; then
    fail "decode table shows weight versions"
fi
"$bin" run "$c/decode-p4.json" --json >"$tmp/d.json"
check "decode JSON has the serving figures" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
i = d["inference"]
for k in ("prefill_time", "time_to_first_token", "time_per_output_token", "tokens_per_second"):
    assert i[k] > 0, k
assert all("kv_cache_bytes" in x for x in d["devices"])
' "$tmp/d.json"
# Uniform costs, free network: TPOT = max(P, M) d = 4 * 0.5 ms.
"$bin" run "$c/decode-p4.json" --set costs.forward=0.5 --set network.latency=0 --json >"$tmp/u.json"
check "closed form max(P, M) d" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert abs(d["inference"]["time_per_output_token"] - 2.0) < 1e-9
assert abs(d["inference"]["formula_time_per_output_token"] - 2.0) < 1e-9
' "$tmp/u.json"

# Interleaved forward: the seed's 9.4 %, and the table says it is a prefill.
expect 0 "9.38 %" "$bin" run "$c/inference-p4-interleaved.json"
expect 0 "a prefill" "$bin" run "$c/inference-p4-interleaved.json"

# LLaMA-70B from the model: every config runs; the KV cache is reported.
for f in tp4 pp4 pp2tp2; do
    expect 0 "kv-cache-bytes" "$bin" run "$c/llama70b-decode-$f.json"
done

# Bad inputs: exit 2 with the key.
expect 2 "inference.output_tokens" "$bin" run "$c/decode-p4.json" --set inference.output_tokens=0
expect 2 "inference.prompt_tokens" "$bin" run "$c/decode-p4.json" --set inference.prompt_tokens=0
expect 2 "inference.output_tokens" "$bin" run "$c/decode-p4.json" --set 'inference.output_tokens="x"'
expect 2 "costs.decode" "$bin" run "$c/decode-p4.json" --set costs.decode=-1
expect 2 "costs.decode" "$bin" run "$c/decode-p4.json" --set 'costs.decode=[1,2,3]'
expect 2 "hardware.memory_bytes" "$bin" run "$c/llama70b-decode-tp4.json" \
    --set model.microbatch_size=256
expect 2 "hardware.memory_bandwidth" "$bin" run "$c/llama70b-decode-tp4.json" \
    --set hardware.memory_bandwidth=0
expect 2 "iterations" "$bin" run "$c/decode-p4.json" --set iterations=2
expect 2 "no PyTorch pipelining text" "$bin" export "$c/decode-p4.json" --format pytorch
expect 2 "does not run decode programs" "$bin" verify "$c/decode-p4.json" --dry-run

# Decode timeline: decode steps are their own kind (5, the "decode" key
# entry) labelled m/t, every step wide enough for its label; the picture is
# complete and NAME.sh redraws it. Long decodes fall back to the thin-box
# rule at the width cap.
is_png_whole() { [ -s "$1" ] && [ "$(tail -c 8 "$1" | head -c 4)" = "IEND" ]; }
if command -v gnuplot >/dev/null 2>&1; then
    mkdir -p "$tmp/tl"
    expect 0 "" "$bin" run "$c/decode-p4.json" --timeline "$tmp/tl/d.png"
    check "decode timeline: PNG complete" is_png_whole "$tmp/tl/d.png"
    check "decode timeline: labels m/t, kinds 0 and 5" python3 -c '
import re, shlex, sys
ops = [l for l in open(sys.argv[1]).read().split("\n\n\n")[0].splitlines() if l[:1].isdigit()]
seen = {}
for l in ops:
    d, start, end, kind, chunk, label, y, dy = shlex.split(l)
    seen.setdefault((d, kind), set()).add(label)
for d in "0123":
    # M = 3 micro-batches, 6 output tokens: token 0 is the prefill (kind 0).
    assert seen[(d, "0")] == {"0", "1", "2"}, seen[(d, "0")]
    want = {"%d/%d" % (m, t) for m in range(3) for t in range(1, 6)}
    assert seen[(d, "5")] == want, (d, seen[(d, "5")])
assert {k for _, k in seen} == {"0", "5"}, seen.keys()
# Settings: kinds bitmask 1 + 32 (forward, decode), no strip.
settings = shlex.split(open(sys.argv[2]).read().split("gnuplot -c", 1)[1])[-1].split()
assert settings[6] == "33" and settings[8] == "0", settings
' "$tmp/tl/d.dat" "$tmp/tl/d.sh"
    check "decode timeline: the program names decode and prefill" \
        grep -q "decode_rgb" "$tmp/tl/d.gp"
    rm -f "$tmp/tl/d.png"
    sh "$tmp/tl/d.sh" 2>"$tmp/tl/redraw.err"
    check "decode timeline: d.sh redraws: $(cat "$tmp/tl/redraw.err")" is_png_whole "$tmp/tl/d.png"
    # V = 2 chunks: decode steps of chunk 1 drawn (lighter), labels m/t.
    expect 0 "" "$bin" run "$c/decode-p4.json" --set virtual_stages=2 --timeline "$tmp/tl/v2.png"
    check "decode timeline V=2: chunk 1 decode steps" \
        grep -qE '^[0-9]+ [^ ]+ [^ ]+ 5 1 "[0-9]+/[0-9]+"' "$tmp/tl/v2.dat"
    # 400 tokens: capped at 2400 px, thin steps lose labels and get the strip.
    expect 0 "" "$bin" run "$c/decode-p4.json" --set inference.output_tokens=400 \
        --timeline "$tmp/tl/long.png"
    check "long decode: PNG complete" is_png_whole "$tmp/tl/long.png"
    check "long decode: width capped, strip drawn" python3 -c '
import shlex, sys
settings = shlex.split(open(sys.argv[1]).read().split("gnuplot -c", 1)[1])[-1].split()
assert settings[0] == "2400" and settings[8] == "1", settings
' "$tmp/tl/long.sh"
    expect 0 "" "$bin" run "$c/decode-p4.json" --set inference.output_tokens=400 \
        --window 100:110 --timeline "$tmp/tl/win.png"
    check "long decode, window: steps labelled" grep -qE ' 5 0 "[0-9]/[0-9]+"' "$tmp/tl/win.dat"

    # sweep --plot on a decode config: the serving chart (time per output
    # token and tokens/s against the batch), its figures those of the CSV,
    # the refused 256 left out; NAME.sh redraws it.
    expect 0 "sweep-decode-batch-serving.png" "$bin" sweep "$c/sweep-decode-batch.json" \
        --out "$tmp/sd" --plot
    for f in png dat gp sh; do
        check "serving chart: .$f written" test -s "$tmp/sd/sweep-decode-batch-serving.$f"
    done
    check "serving chart: PNG complete" is_png_whole "$tmp/sd/sweep-decode-batch-serving.png"
    check "serving chart: the program is sweep-serving.gp" \
        cmp -s "$src/plots/sweep-serving.gp" "$tmp/sd/sweep-decode-batch-serving.gp"
    check "serving chart: data = the CSV's decode figures" python3 -c '
import csv, sys
want = [(float(r["model.microbatch_size"]), float(r["time_per_output_token"]),
         float(r["tokens_per_second"]))
        for r in csv.DictReader(open(sys.argv[1])) if r["time_per_output_token"]]
got = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l[:1].isdigit()]
assert [w[0] for w in want] == [1, 2, 4, 8, 16, 32, 64, 128], want
# The CSV rounds to its own digits; the data file keeps 17.
assert len(got) == len(want) and all(
    abs(g - w) <= 1e-12 * abs(w) for gr, wr in zip(got, want) for g, w in zip(gr, wr)), (got, want)
' "$tmp/sd/sweep-decode-batch.csv" "$tmp/sd/sweep-decode-batch-serving.dat"
    rm -f "$tmp/sd/sweep-decode-batch-serving.png"
    sh "$tmp/sd/sweep-decode-batch-serving.sh" 2>"$tmp/sd/redraw.err"
    check "serving chart: NAME.sh redraws: $(cat "$tmp/sd/redraw.err")" \
        is_png_whole "$tmp/sd/sweep-decode-batch-serving.png"
    # Against M, one series per latency; a training sweep gets no serving chart.
    cfg multi.json '{"schedule": "decode", "stages": 4, "microbatches": 3,
 "inference": {"prompt_tokens": 128, "output_tokens": 6},
 "costs": {"forward": 2.0, "decode": 0.5},
 "sweep": {"microbatches": [1, 2, 4], "network.latency": [0, 0.2]}}'
    expect 0 "multi-serving.png" "$bin" sweep "$tmp/multi.json" --out "$tmp/sm" --plot
    check "serving chart against M: two series of three points" \
        test "$(grep -c '^"network.latency=' "$tmp/sm/multi-serving.dat")" -eq 2 -a \
        "$(grep -c '^[0-9]' "$tmp/sm/multi-serving.dat")" -eq 6
    "$bin" sweep "$c/sweep-bubble-vs-m.json" --out "$tmp/st" --plot >/dev/null 2>&1
    check "training sweep: no serving chart" test -z "$(ls "$tmp/st" | grep serving)"
    # A hostile config name: the chart and its script run nothing.
    hs="$tmp/hs/q'uote;system('touch PWNED');\$(touch PWNED) \`touch PWNED\`.json"
    mkdir -p "$tmp/hs"
    cp "$c/sweep-decode-batch.json" "$hs"
    (cd "$tmp/hs" && "$bin" sweep "$hs" --out "$tmp/hs/out" --plot >/dev/null 2>"$tmp/hs.err")
    rc=$? # before "$(cat ...)" below, which would reset $?
    check "hostile name: exit 0: $(cat "$tmp/hs.err")" test $rc -eq 0
    check "hostile name: serving chart drawn" test "$(ls "$tmp/hs/out/"*-serving.png | wc -l)" -eq 1
    for f in "$tmp/hs/out/"*-serving.sh; do (cd "$tmp/hs" && sh "$f" 2>/dev/null); done
    check "hostile name: nothing ran" test -z "$(find "$tmp" -name PWNED)" -a ! -e /tmp/PWNED
fi

# tune for serving: latency ranks by time per output token, throughput by
# ms per token; on 4 GPUs at batch 32 pure TP wins both.
expect 0 "time per output token (latency)" "$bin" tune "$c/llama70b-decode-tune.json" --top 3
expect 0 "1   4   1   32      1" "$bin" tune "$c/llama70b-decode-tune.json" --top 3
# Its tokens/s are the simulation's generated tokens per second, as `run`
# prints them for the same layout (a merge once overwrote them with 0).
expect 0 "29.256    0.00%      35.24        537.1" "$bin" tune "$c/llama70b-decode-tune.json" --top 3
expect 0 "tokens per second (all)                   537.1" "$bin" run "$c/llama70b-decode-tune.json" \
    --set stages=1 --set tensor_parallel=4 --set model.microbatch_size=32 --set microbatches=1
expect 0 "throughput" "$bin" tune "$c/llama70b-decode-tune.json" --top 3 \
    --set tune.objective=throughput
expect 2 "tune.objective" "$bin" tune "$c/llama70b-decode-tune.json" --set tune.objective=fast
expect 2 "tune.objective" "$bin" tune "$c/model-gpt3-175b-64gpu.json" --set tune.objective=latency
# The decode bounds lie below every simulated value (no pruning: all run).
for o in latency throughput; do
    "$bin" tune "$c/llama70b-decode-tune.json" --no-prune --set tune.objective=$o \
        --out "$tmp/tune-$o" >/dev/null 2>&1
    check "decode $o bounds below the simulation" python3 -c '
import csv, sys
n = 0
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] in ("fits", "over_memory"):
        n += 1
        assert float(r["time_lower_bound_ms"]) <= float(r["time_per_iteration_ms"]) * (1 + 1e-9), r
        assert float(r["memory_lower_bound_bytes"]) <= float(r["peak_memory_bytes"]) * (1 + 1e-9), r
        assert float(r["tokens_per_second"]) > 0, r
assert n > 20, n
' "$tmp/tune-$o/tune.csv"
done
# A forward (prefill) search says its tokens/s are the prefill's.
expect 0 "prefill tok/s" "$bin" tune "$c/model-llama70b-infer-4gpu.json" --top 2

finish cli_inference
