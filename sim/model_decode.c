/*
 * model_decode.c - decode-step costs and the KV cache, from a transformer
 * and its hardware (docs/inference.md gives each formula).
 *
 * A decode step computes one token for each of the b sequences of a
 * micro-batch. Its matmuls are matrix-vector products: each weight is read
 * once from memory for 2 b FLOPs, so below a few hundred sequences the step
 * is bound by memory bandwidth, not by FLOPs; attention reads the whole KV
 * cache. So a step costs the larger of its compute time and its memory
 * time, plus the tensor-parallel all-reduces of one token (two per layer,
 * as in the forward; small messages, so latency-bound).
 *
 * Each step gets its own cost at its own context length c, not an average:
 * both terms are linear in c, and max(a + b c, a' + b' c) is cheap to
 * evaluate per op (sim/engine.c), while an average would be wrong where the
 * step turns from memory- to compute-bound within a run, and would hide
 * the growth of the time per token from the timeline. The config carries
 * the four coefficients per chunk; the engine evaluates them.
 *
 * Left out: the KV-cache write of the new token (one entry of c), the
 * input embedding's b-row read, softmax and norm FLOPs, kernel launch
 * overheads, the prefill's transient activations and the framework's
 * workspace in memory, paged-attention fragmentation.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <string.h>

int bs_model_decode_prompt(bs_model *m, const bs_config *cfg, const cJSON *root, const char *source,
                           bs_error *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int given = cJSON_GetObjectItemCaseSensitive(model, "sequence") != NULL;
    if (cfg->prompt_tokens < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: inference.prompt_tokens: missing; the decode schedule prefills a "
                       "prompt of that many tokens (an integer >= 1)",
                       source);
    if (given && m->sequence != cfg->prompt_tokens)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: model.sequence: %d, but decode prefills inference.prompt_tokens = %d "
                       "tokens; leave model.sequence out or make the two equal",
                       source, m->sequence, cfg->prompt_tokens);
    m->sequence = cfg->prompt_tokens;
    return BS_OK;
}

/* Replaces *v with a new array of n values (the caller fills it). */
static double *values_new(bs_values *v, size_t n)
{
    double *p = bs_zalloc_array(n, sizeof *p);
    if (!p)
        return NULL;
    bs_free(v->v);
    v->v = p;
    v->count = n;
    return p;
}

int bs_model_decode_costs(bs_config *cfg, const bs_model *m, bs_model_plan *plan,
                          const char *source, bs_error *err)
{
    int n = plan->chunks, p = plan->devices, T = m->tensor_parallel;
    if (cfg->output_tokens < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: inference.output_tokens: missing; the decode schedule generates that "
                       "many tokens per sequence (an integer >= 1)",
                       source);
    if (!(m->memory_bandwidth > 0))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: hardware.memory_bandwidth: missing; a decode step reads every weight "
                       "and the KV cache, so its time needs the device's memory bandwidth "
                       "(bytes/s, e.g. 1.555e12 for an A100 40GB)",
                       source);
    double b = m->microbatch_size, h = m->hidden, e = m->bytes_per_element;
    double h_kv = h * m->kv_heads / m->heads, vocab = m->vocabulary;
    double flop_ms = 1000.0 / (m->peak_flops * m->efficiency);
    double byte_ms = 1000.0 / m->memory_bandwidth;
    /* Two all-reduces of b * h elements per layer, ring over T devices. */
    double allreduce = 0;
    if (T > 1) {
        allreduce = 2.0 * (T - 1) * m->tp_latency;
        if (m->tp_bandwidth > 0)
            allreduce += 2.0 * (T - 1) / T * (b * h * e) / m->tp_bandwidth * 1000.0;
    }
    /* Sequences in flight: every micro-batch stays resident during decode. */
    double sequences = b * cfg->microbatches;
    double context = (double)cfg->prompt_tokens + cfg->output_tokens - 1;
    double *c0 = values_new(&cfg->decode, (size_t)n),
           *c1 = c0 ? values_new(&cfg->decode_per_token, (size_t)n) : NULL,
           *m0 = c1 ? values_new(&cfg->decode_memory, (size_t)n) : NULL,
           *m1 = m0 ? values_new(&cfg->decode_memory_per_token, (size_t)n) : NULL,
           *kv = m1 ? values_new(&cfg->kv_cache_bytes, (size_t)p) : NULL;
    if (!kv)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory computing decode costs");
    for (int c = 0; c < n; c++) {
        const bs_model_chunk *ch = &plan->chunk[c];
        double l = ch->layers, last = c == n - 1;
        double weights = l * plan->layer_parameters / T + (last ? vocab * h / T : 0);
        double flops = 2 * b * weights; /* one token per sequence, every weight once */
        double ar = 2 * l * allreduce;
        c0[c] = flops * flop_ms + ar;
        c1[c] = 4 * b * h * l / T * flop_ms; /* QK^T and AV over c cached tokens */
        m0[c] = weights * e * byte_ms + ar;
        m1[c] = 2 * l * b * h_kv * e / T * byte_ms; /* K and V of c tokens */
        kv[ch->device] += 2 * l * h_kv * e / T * context * sequences;
    }
    for (int d = 0; d < p; d++)
        plan->device[d].kv_cache_bytes = kv[d];
    cfg->sequences_per_microbatch = m->microbatch_size;
    cfg->decode_message_bytes = b * h * e;
    if (m->memory_bytes > 0)
        for (int d = 0; d < p; d++) {
            double need = plan->device[d].weight_bytes + kv[d];
            if (need > m->memory_bytes)
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: hardware.memory_bytes: device %d needs %.4g GB (weights %.4g "
                               "GB + KV cache %.4g GB for %g sequences at context %g), more "
                               "than its %.4g GB; use fewer sequences (microbatches, "
                               "model.microbatch_size), shorter inference.prompt_tokens or "
                               "output_tokens, or more devices",
                               source, d, need / 1e9, plan->device[d].weight_bytes / 1e9,
                               kv[d] / 1e9, sequences, context, m->memory_bytes / 1e9);
        }
    return BS_OK;
}
