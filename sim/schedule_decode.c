/*
 * schedule_decode.c - autoregressive inference: prefill, then decode.
 *
 * Each of the M micro-batches (groups of sequences) is first prefilled, a
 * forward of its prompt through every stage (costs.forward), which yields
 * its first output token; then it generates the other T - 1 tokens one
 * decode step at a time (costs.decode). The decode step of token k + 1 on
 * the first stage needs token k from the last stage, so a micro-batch
 * circulates around the ring of devices once per token (V times with V
 * chunks per device). Ops are items: item k*M + m is token k of micro-batch
 * m (BS_PROGRAM_DECODE_LOOP in bubblesim.h); the engine and the validator
 * know only that the last stage feeds stage 0 of the item M later.
 *
 * Order on device r (looped placement, chunk c of device r is stage c*P+r):
 *  - prefill: the forward schedule's order, groups of N = group_size (P by
 *    default) micro-batches, chunk by chunk;
 *  - decode, token by token: chunk by chunk, every micro-batch in order.
 *    A token's M micro-batches form one group, not groups of P: a
 *    micro-batch comes back to a device M ops after it left, while it needs
 *    P ops (plus messages) to go round, so with M >= P the ring has M - P
 *    ops of slack for latency, where groups of P would have none.
 * With uniform stage cost d (one decode step of a whole device stage), a
 * free network and prefill cost d too, every token takes max(P, M) d per
 * micro-batch: M d of work per device, or the ring's P d when M < P, which
 * leaves each device idle (P - M) / P of the time (sim/formula.c).
 */
#include "internal.h"

#include <string.h>

static int decode_check(const bs_config *cfg, bs_error *err)
{
    if (cfg->output_tokens < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "inference.output_tokens: the decode schedule needs the number of tokens "
                       "each sequence generates (an integer >= 1)");
    if (cfg->prompt_tokens < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "inference.prompt_tokens: the decode schedule needs the prompt length in "
                       "tokens (an integer >= 1)");
    if (cfg->decode.count == 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "costs.decode: the decode schedule needs one decode step's time (a number, "
                       "P or P*V numbers, ms), or a model section to compute it from");
    if (cfg->iterations != 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "iterations: decode runs one batch of requests (iterations = 1), got %d; "
                       "give more micro-batches or tokens instead",
                       cfg->iterations);
    return BS_OK;
}

static int decode_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches, tokens = (uint32_t)cfg->output_tokens;
    uint32_t n = cfg->group_size > 0 ? (uint32_t)cfg->group_size : (uint32_t)cfg->stages;
    for (int d = 0; d < cfg->stages; d++) {
        bs_emit_forward_pass(prog, BS_OP_FORWARD, d, 0, m, n);
        for (uint32_t k = 1; k < tokens; k++)
            bs_emit_forward_pass(prog, BS_OP_DECODE, d, k * m, m, m);
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_decode = {
    .name = "decode",
    .summary = "inference: prefill, then one decode step per token, V chunks per device",
    .check = decode_check,
    .generate = decode_generate,
    .ops_per_chunk_microbatch = 1, /* per item: one per (micro-batch, output token) */
    .flags = BS_PROGRAM_FORWARD_ONLY | BS_PROGRAM_DECODE_LOOP,
};
