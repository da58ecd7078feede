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
