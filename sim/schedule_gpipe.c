/*
 * schedule_gpipe.c - GPipe: every forward of an iteration, then every
 * backward in micro-batch order, then a flush before the optimizer step.
 * Each device keeps all M micro-batches' activations at the turn.
 */
#include "internal.h"

static int gpipe_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_single_chunk(cfg, "gpipe", err);
}

static int gpipe_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches;
    for (int d = 0; d < cfg->stages; d++) {
        for (int it = 0; it < cfg->iterations; it++) {
            uint32_t base = (uint32_t)it * m;
            for (uint32_t i = 0; i < m; i++)
                bs_program_emit(prog, BS_OP_FORWARD, d, base + i);
            for (uint32_t i = 0; i < m; i++)
                bs_program_emit(prog, BS_OP_BACKWARD, d, base + i);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_gpipe = {
    .name = "gpipe",
    .summary = "all forwards, then all backwards; flush each iteration",
    .check = gpipe_check,
    .generate = gpipe_generate,
    .ops_per_chunk_microbatch = 2,
    .flags = 0,
};
