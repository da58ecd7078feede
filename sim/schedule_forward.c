/*
 * schedule_forward.c - forward-only inference, micro-batched, with V >= 1
 * model chunks per device (looped placement: chunk c of device r is model
 * stage c*P + r, so a micro-batch passes over the devices V times).
 *
 * Order on device r: micro-batches in groups of N (group_size, P by
 * default); within a group, chunk by chunk, the group's micro-batches in
 * order. With N = P the micro-batch leaving the last device of one pass
 * reaches device 0 exactly when device 0 finishes the group's previous
 * chunk, so uniform costs and a free network leave no bubble after the fill:
 *   makespan = M F + (P - 1) F / V      (F: a whole device stage's forward),
 * the bubble over ideal (P - 1) / (M V), the seed's 3 / (16 x 2) = 9.4 % at
 * P = 4, M = 16, V = 2 (sim/formula.c; docs/inference.md). With V = 1 the
 * order is plain micro-batch order, as before. Nothing is kept for a
 * backward, and iterations simply continue the stream (weights never
 * change, so there is nothing to flush).
 */
#include "internal.h"

static uint32_t forward_group(const bs_config *cfg)
{
    return cfg->group_size > 0 ? (uint32_t)cfg->group_size : (uint32_t)cfg->stages;
}

void bs_emit_forward_pass(bs_program *prog, int kind, int device, uint32_t first, uint32_t count,
                          uint32_t group)
{
    uint32_t p = (uint32_t)prog->devices, v = (uint32_t)prog->chunks_per_device;
    if (group == 0)
        group = 1;
    for (uint32_t g = 0; g < count; g += group) {
        uint32_t size = count - g < group ? count - g : group;
        for (uint32_t c = 0; c < v; c++)
            for (uint32_t i = 0; i < size; i++)
                bs_program_emit(prog, kind, (int)(c * p + (uint32_t)device), first + g + i);
    }
}

static int forward_check(const bs_config *cfg, bs_error *err)
{
    (void)cfg;
    (void)err;
    return BS_OK; /* any P, M, V and group size runs; a small last group only stalls */
}

static int forward_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches, n = forward_group(cfg);
    for (int d = 0; d < cfg->stages; d++) {
        /* Iterations continue the stream: each is one more set of M. */
        for (int it = 0; it < cfg->iterations; it++)
            bs_emit_forward_pass(prog, BS_OP_FORWARD, d, (uint32_t)it * m, m, n);
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_forward = {
    .name = "forward",
    .summary = "inference: forward only, micro-batched, V chunks per device (looped)",
    .check = forward_check,
    .generate = forward_generate,
    .ops_per_chunk_microbatch = 1,
    .flags = BS_PROGRAM_FORWARD_ONLY,
};
