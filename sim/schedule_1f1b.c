/*
 * schedule_1f1b.c - 1F1B / PipeDream-Flush (synchronous).
 *
 * Device r runs min(P-r-1, M) warm-up forwards, then alternates one forward
 * and one backward, then drains the remaining backwards. The pipeline is
 * flushed before each optimizer step, so every micro-batch of an iteration
 * sees the same weights. At most P-r micro-batches are in flight on device r.
 */
#include "internal.h"

static int one_f_one_b_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_single_chunk(cfg, "1f1b", err);
}

static int one_f_one_b_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches;
    for (int d = 0; d < cfg->stages; d++) {
        for (int it = 0; it < cfg->iterations; it++) {
            bs_emit_one_f_one_b(prog, d, (uint32_t)it * m, m, cfg->stages - d - 1);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_1f1b = {
    .name = "1f1b",
    .summary = "PipeDream-Flush: one forward one backward, flush each iteration",
    .check = one_f_one_b_check,
    .generate = one_f_one_b_generate,
    .ops_per_chunk_microbatch = 2,
    .flags = 0,
};
