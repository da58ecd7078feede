/*
 * schedule_looped_bfs.c - looped breadth-first (Lamy-Poirier's "breadth-first
 * pipeline parallelism", PyTorch pipelining's ScheduleLoopedBFS).
 *
 * Chunks are looped over devices like interleaved 1F1B (chunk c of device r
 * is stage c*P + r), but each device runs breadth first: every micro-batch's
 * forward of its first chunk, then of its second, and so on; then the
 * backwards, last chunk first and last micro-batch first. It is GPipe per
 * chunk: the bubble shrinks with V like interleaving, but all M*V chunk
 * activations are alive at the turn. Iterations are flushed.
 */
#include "internal.h"

static int looped_bfs_check(const bs_config *cfg, bs_error *err)
{
    if (cfg->placement != BS_PLACEMENT_LOOPED)
        return bs_fail(err, BS_ERR_INVALID,
                       "placement: looped-bfs always loops chunks over devices; placement is for "
                       "custom schedules");
    return BS_OK;
}

static int looped_bfs_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    int p = cfg->stages, v = cfg->virtual_stages;
    uint32_t m = (uint32_t)cfg->microbatches;
    for (int r = 0; r < p; r++) {
        for (int it = 0; it < cfg->iterations; it++) {
            uint32_t base = (uint32_t)it * m;
            for (int c = 0; c < v; c++)
                for (uint32_t k = 0; k < m; k++)
                    bs_program_emit(prog, BS_OP_FORWARD, c * p + r, base + k);
            for (int c = v - 1; c >= 0; c--)
                for (uint32_t k = m; k-- > 0;)
                    bs_program_emit(prog, BS_OP_BACKWARD, c * p + r, base + k);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, r);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_looped_bfs = {
    .name = "looped-bfs",
    .summary = "looped breadth-first: all forwards chunk by chunk, then all backwards, flush",
    .check = looped_bfs_check,
    .generate = looped_bfs_generate,
    .ops_per_chunk_microbatch = 2,
    .flags = 0,
};
