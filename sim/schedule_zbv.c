/*
 * schedule_zbv.c - ZB-V (zero-bubble paper, section 6): two chunks per
 * device in a V: device r holds model chunk r (on the way down) and chunk
 * 2P-1-r (on the way back up), so the turn at the last device stays local
 * and a micro-batch crosses 4(P-1) links in all.
 *
 * Order on device r (chunk 0 = stage r, chunk 1 = stage 2P-1-r), the one
 * PyTorch pipelining's ScheduleZBVZeroBubble runs, over n = max(2P-1, M)
 * micro-batch slots:
 *   warm-up   2(P-r)-1 forwards of chunk 0; r times F1 F0; P-r times F1 I1 W1;
 *   steady    F0 (while any left) I0 W0 F1 I1 W1, until every forward ran;
 *   cool-down r times I0 I1; P-r times I0 W0; then the pending W1 and W0.
 * Ops of slots >= M are dropped (they would be idle slots). At F = B = W no
 * device idles inside its span and a device holds at most 2P chunk
 * activations, P micro-batch units.
 *
 * Iterations run without a flush, as for ZB-H2: each device goes on with
 * the next iteration's order when its own is done.
 */
#include "internal.h"

typedef struct zbv_emitter {
    bs_program *prog;
    uint32_t base, m;
    int stage[2];
} zbv_emitter;

static void put(const zbv_emitter *z, int kind, int chunk, uint32_t mb)
{
    if (mb < z->m)
        bs_program_emit(z->prog, kind, z->stage[chunk], z->base + mb);
}

static void emit_device(const zbv_emitter *z, uint32_t p, uint32_t r)
{
    uint32_t n = z->m > 2 * p - 1 ? z->m : 2 * p - 1;
    uint32_t f0 = 0, f1 = 0, b0 = 0, b1 = 0;
    for (uint32_t i = 0; i < 2 * (p - r) - 1; i++)
        put(z, BS_OP_FORWARD, 0, f0++);
    for (uint32_t i = 0; i < r; i++) {
        put(z, BS_OP_FORWARD, 1, f1++);
        put(z, BS_OP_FORWARD, 0, f0++);
    }
    for (uint32_t i = 0; i < p - r; i++) {
        put(z, BS_OP_FORWARD, 1, f1++);
        put(z, BS_OP_INPUT_GRAD, 1, b1);
        put(z, BS_OP_WEIGHT_GRAD, 1, b1++);
    }
    while (f1 < f0 || f0 < n) {
        if (f0 < n)
            put(z, BS_OP_FORWARD, 0, f0++);
        put(z, BS_OP_INPUT_GRAD, 0, b0);
        put(z, BS_OP_WEIGHT_GRAD, 0, b0++);
        put(z, BS_OP_FORWARD, 1, f1++);
        put(z, BS_OP_INPUT_GRAD, 1, b1);
        put(z, BS_OP_WEIGHT_GRAD, 1, b1++);
    }
    uint32_t w0 = b0, w1 = b1;
    for (uint32_t i = 0; i < r; i++) {
        put(z, BS_OP_INPUT_GRAD, 0, b0++);
        put(z, BS_OP_INPUT_GRAD, 1, b1++);
    }
    for (uint32_t i = 0; i < p - r; i++) {
        put(z, BS_OP_INPUT_GRAD, 0, b0++);
        put(z, BS_OP_WEIGHT_GRAD, 0, w0++);
    }
    while (w1 < b1)
        put(z, BS_OP_WEIGHT_GRAD, 1, w1++);
    while (w0 < b0)
        put(z, BS_OP_WEIGHT_GRAD, 0, w0++);
}

/* Shared with dualpipev: the V placement needs exactly two chunks. */
int bs_check_v_shape(const bs_config *cfg, const char *name, bs_error *err)
{
    if (cfg->virtual_stages != 2)
        return bs_fail(err, BS_ERR_INVALID,
                       "virtual_stages: %s places two model chunks per device in a V (chunks s "
                       "and 2P-1-s on device s) and needs V = 2, got %d",
                       name, cfg->virtual_stages);
    if (cfg->placement != BS_PLACEMENT_LOOPED)
        return bs_fail(err, BS_ERR_INVALID,
                       "placement: %s always uses its own V placement; placement is for custom "
                       "schedules",
                       name);
    return BS_OK;
}

static int zbv_check(const bs_config *cfg, bs_error *err)
{
    int rc = bs_check_v_shape(cfg, "zbv", err);
    return rc ? rc : bs_check_no_flush_optimizer(cfg, "zbv", err);
}

static int zbv_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t p = (uint32_t)cfg->stages;
    bs_place_v(prog);
    for (uint32_t r = 0; r < p; r++) {
        zbv_emitter z = {prog, 0, (uint32_t)cfg->microbatches, {(int)r, (int)(2 * p - 1 - r)}};
        for (int it = 0; it < cfg->iterations; it++) {
            z.base = (uint32_t)it * z.m;
            emit_device(&z, p, r);
        }
        bs_program_end_device(prog, (int)r);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_zbv = {
    .name = "zbv",
    .summary = "zero bubble V: two chunks per device in a V, split backward, no flush",
    .check = zbv_check,
    .generate = zbv_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = BS_PROGRAM_NO_FLUSH,
    .v_shape = 1,
};
