/*
 * schedule_zb.c - the zero-bubble schedules ZB-H1 and ZB-H2 (Qi et al.,
 * "Zero Bubble Pipeline Parallelism", 2024): the backward is split into the
 * input gradient I, on the critical path, and the weight gradient W, which
 * nothing downstream waits for and which therefore fills idle time.
 *
 * Both run one order shape on device r (0-based, P devices, M micro-batches):
 *   - `warmup` forwards;
 *   - then per micro-batch k: the next forward (while any is left), I(k),
 *     and the oldest pending W once more than `lag` weight gradients wait;
 *   - then the pending W's.
 * ZB-H1: warmup P-1-r (1F1B's), lag r. A device holds at most P-r
 *        activations between F and I plus r waiting for W: P in all, 1F1B's
 *        memory; the bubble shrinks to (P-1)(F+B-W).
 * ZB-H2: warmup 2(P-1-r), lag 2r: at most 2P-1 activations, and at
 *        F = B = W no device idles between its first and last op.
 * Both orders were derived on unit-time slots and checked by simulation
 * (tests/test_zb.c); they are fixed orders, so other costs only change the
 * timing, never the order.
 *
 * ZB-H1 flushes each iteration like 1F1B. ZB-H2 runs iterations without a
 * flush (the paper's optimizer post-validation): each device starts the
 * next iteration's forwards as soon as its own last W is done, which is
 * what makes its steady-state time per iteration M(F+B+W).
 */
#include "internal.h"

/* One device's ZB order over micro-batches base .. base+m-1. */
static void emit_zb(bs_program *prog, int stage, uint32_t base, uint32_t m, uint32_t warmup,
                    uint32_t lag)
{
    uint32_t w = warmup < m ? warmup : m, next_f = w, next_w = 0;
    for (uint32_t i = 0; i < w; i++)
        bs_program_emit(prog, BS_OP_FORWARD, stage, base + i);
    for (uint32_t k = 0; k < m; k++) {
        if (next_f < m)
            bs_program_emit(prog, BS_OP_FORWARD, stage, base + next_f++);
        bs_program_emit(prog, BS_OP_INPUT_GRAD, stage, base + k);
        if (k + 1 - next_w > lag)
            bs_program_emit(prog, BS_OP_WEIGHT_GRAD, stage, base + next_w++);
    }
    while (next_w < m)
        bs_program_emit(prog, BS_OP_WEIGHT_GRAD, stage, base + next_w++);
}

static int zb_h1_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_single_chunk(cfg, "zb-h1", err);
}

static int zb_h1_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches, p = (uint32_t)cfg->stages;
    for (uint32_t r = 0; r < p; r++) {
        for (int it = 0; it < cfg->iterations; it++) {
            emit_zb(prog, (int)r, (uint32_t)it * m, m, p - 1 - r, r);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, (int)r);
    }
    return BS_OK;
}

/* Shared by the schedules that run iterations without a flush: there is no
 * global optimizer step to charge, so a cost for it is refused rather than
 * silently dropped. */
int bs_check_no_flush_optimizer(const bs_config *cfg, const char *name, bs_error *err)
{
    if (cfg->optimizer > 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "costs.optimizer: %s runs iterations without a flush (each device steps "
                       "its optimizer when its own weight gradients are done), which is not "
                       "modelled; set costs.optimizer to 0, got %g",
                       name, cfg->optimizer);
    return BS_OK;
}

static int zb_h2_check(const bs_config *cfg, bs_error *err)
{
    int rc = bs_check_single_chunk(cfg, "zb-h2", err);
    return rc ? rc : bs_check_no_flush_optimizer(cfg, "zb-h2", err);
}

static int zb_h2_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t m = (uint32_t)cfg->microbatches, p = (uint32_t)cfg->stages;
    for (uint32_t r = 0; r < p; r++) {
        for (int it = 0; it < cfg->iterations; it++)
            emit_zb(prog, (int)r, (uint32_t)it * m, m, 2 * (p - 1 - r), 2 * r);
        bs_program_end_device(prog, (int)r);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_zb_h1 = {
    .name = "zb-h1",
    .summary = "zero bubble H1: split backward, W fills the bubble, 1F1B memory, flush",
    .check = zb_h1_check,
    .generate = zb_h1_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = 0,
};

const bs_schedule bs_schedule_zb_h2 = {
    .name = "zb-h2",
    .summary = "zero bubble H2: split backward, 2P-1 activations, no flush between iterations",
    .check = zb_h2_check,
    .generate = zb_h2_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = BS_PROGRAM_NO_FLUSH,
};
