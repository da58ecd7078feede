/*
 * schedule_dualpipev.c - DualPipeV (DeepSeek's DualPipe folded into a V, as
 * run by deepseek-ai/DualPipe and PyTorch pipelining's ScheduleDualPipeV).
 *
 * Device r holds chunk 0 = stage r and chunk 1 = stage 2P-1-r. In the steady
 * phase a forward of one chunk runs overlapped with a full backward of the
 * other (BS_OP_OVERLAP_NEXT), so that one chunk's communication hides behind
 * the other's compute; such a pair lasts (F + B) * costs.overlap. Order on
 * device r, with M micro-batches (M >= 2P):
 *   1. 2(P-r-1) forwards of chunk 0;
 *   2. r+1 times F0 F1;
 *   3. P-r-1 times I1, W (oldest pending), F1;
 *   4. M-2P+r+1 times (F0 with B1) then (F1 with B0); the last device runs
 *      its first F0 and B1 one after the other, not overlapped;
 *   5. P-r-1 times B1, then (F1 with B0);
 *   6. r+1 times B1 B0, switching to split backwards (I, W deferred) half way;
 *   7. P-r-1 times W, B0 (split);
 *   8. r+1 times W.
 * Full and split backwards mix, so the op count varies with P and r
 * (BS_PROGRAM_VARIABLE_OPS); it never exceeds three ops per chunk and
 * micro-batch. Iterations are flushed like 1F1B.
 */
#include "internal.h"

typedef struct dualpipe_emitter {
    bs_program *prog;
    int stage[2];
    uint32_t base;
    uint32_t forward[2], backward[2];
    /* Split backwards whose weight gradient is still to run, oldest first. */
    uint32_t *pending_stage, *pending_mb;
    size_t head, tail;
} dualpipe_emitter;

static void forward(dualpipe_emitter *z, int chunk)
{
    bs_program_emit(z->prog, BS_OP_FORWARD, z->stage[chunk], z->base + z->forward[chunk]++);
}

static void backward(dualpipe_emitter *z, int chunk, int split)
{
    uint32_t mb = z->base + z->backward[chunk]++;
    bs_program_emit(z->prog, split ? BS_OP_INPUT_GRAD : BS_OP_BACKWARD, z->stage[chunk], mb);
    if (split) {
        z->pending_stage[z->tail] = (uint32_t)z->stage[chunk];
        z->pending_mb[z->tail++] = mb;
    }
}

static void weight(dualpipe_emitter *z)
{
    if (z->head == z->tail)
        return;
    bs_program_emit(z->prog, BS_OP_WEIGHT_GRAD, (int)z->pending_stage[z->head],
                    z->pending_mb[z->head]);
    z->head++;
}

/* Forward of chunk f overlapped with the full backward of chunk b. */
static void overlapped(dualpipe_emitter *z, int f, int b)
{
    forward(z, f);
    z->prog->ops[z->prog->op_count - 1].reserved = BS_OP_OVERLAP_NEXT;
    backward(z, b, 0);
}

static void emit_iteration(dualpipe_emitter *z, uint32_t p, uint32_t r, uint32_t m)
{
    z->forward[0] = z->forward[1] = z->backward[0] = z->backward[1] = 0;
    z->head = z->tail = 0;
    for (uint32_t i = 0; i < 2 * (p - r - 1); i++)
        forward(z, 0);
    for (uint32_t i = 0; i < r + 1; i++) {
        forward(z, 0);
        forward(z, 1);
    }
    for (uint32_t i = 0; i < p - r - 1; i++) {
        backward(z, 1, 1);
        weight(z);
        forward(z, 1);
    }
    for (uint32_t i = 0; i < m - 2 * p + r + 1; i++) {
        if (i == 0 && r == p - 1) {
            forward(z, 0);
            backward(z, 1, 0);
        } else {
            overlapped(z, 0, 1);
        }
        overlapped(z, 1, 0);
    }
    for (uint32_t i = 0; i < p - r - 1; i++) {
        backward(z, 1, 0);
        overlapped(z, 1, 0);
    }
    int split = 0;
    uint32_t steps = r + 1;
    for (uint32_t i = 0; i < steps; i++) {
        if (i == steps / 2 && r % 2 == 1)
            split = 1;
        backward(z, 1, split);
        if (i == steps / 2 && r % 2 == 0)
            split = 1;
        backward(z, 0, split);
    }
    for (uint32_t i = 0; i < p - r - 1; i++) {
        weight(z);
        backward(z, 0, split);
    }
    while (z->head < z->tail)
        weight(z);
}

static int dualpipev_check(const bs_config *cfg, bs_error *err)
{
    int rc = bs_check_v_shape(cfg, "dualpipev", err);
    if (rc)
        return rc;
    if (cfg->microbatches < 2 * cfg->stages)
        return bs_fail(err, BS_ERR_INVALID,
                       "microbatches: dualpipev needs M >= 2P micro-batches (its steady phase "
                       "pairs a forward of one chunk with a backward of the other), got M=%d "
                       "with P=%d",
                       cfg->microbatches, cfg->stages);
    return BS_OK;
}

static int dualpipev_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    uint32_t p = (uint32_t)cfg->stages, m = (uint32_t)cfg->microbatches;
    dualpipe_emitter z = {0};
    z.prog = prog;
    z.pending_stage = bs_alloc_array(2 * (size_t)m, sizeof *z.pending_stage);
    z.pending_mb = bs_alloc_array(2 * (size_t)m, sizeof *z.pending_mb);
    int rc = BS_OK;
    if (!z.pending_stage || !z.pending_mb) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory generating dualpipev");
        goto error;
    }
    bs_place_v(prog);
    for (uint32_t r = 0; r < p; r++) {
        z.stage[0] = (int)r;
        z.stage[1] = (int)(2 * p - 1 - r);
        for (int it = 0; it < cfg->iterations; it++) {
            z.base = (uint32_t)it * m;
            emit_iteration(&z, p, r, m);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, (int)r);
    }
error:
    bs_free(z.pending_stage);
    bs_free(z.pending_mb);
    return rc;
}

const bs_schedule bs_schedule_dualpipev = {
    .name = "dualpipev",
    .summary = "DeepSeek DualPipeV: V placement, overlapped forward+backward pairs, flush",
    .check = dualpipev_check,
    .generate = dualpipev_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = BS_PROGRAM_VARIABLE_OPS,
    .v_shape = 1,
};
