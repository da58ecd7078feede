/*
 * schedule_forward.c - forward-only inference, micro-batched.
 *
 * Each device runs the forwards of its stage in micro-batch order; nothing
 * is kept for a backward, and iterations simply continue the stream (weights
 * never change, so there is nothing to flush).
 */
#include "internal.h"

static int forward_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_single_chunk(cfg, "forward", err);
}

static int forward_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    for (int d = 0; d < cfg->stages; d++) {
        for (uint32_t i = 0; i < prog->microbatches; i++)
            bs_program_emit(prog, BS_OP_FORWARD, d, i);
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_forward = {
    .name = "forward",
    .summary = "inference: forward only, micro-batched",
    .check = forward_check,
    .generate = forward_generate,
    .ops_per_chunk_microbatch = 1,
    .flags = BS_PROGRAM_FORWARD_ONLY,
};
