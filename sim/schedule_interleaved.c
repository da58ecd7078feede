/*
 * schedule_interleaved.c - Megatron-LM's interleaved 1F1B.
 *
 * Each device holds V model chunks; chunk c of device r is model stage
 * c*P + r, so a micro-batch loops over the devices V times. The order comes
 * from a table of "virtual micro-batches": micro-batches are taken in groups
 * of N (group_size, P by default); within a group every chunk runs the whole
 * group before the next chunk starts. The last group holds what is left
 * (M mod N, or N). Forwards follow the table; backwards follow it with the
 * chunk reversed (V-1-c), since gradients flow from the last chunk back.
 *
 * Device r warms up with 2(P-r-1) + (V-1)N forwards (all MV of them when
 * that is more), then alternates one forward one backward, then drains.
 *
 * Megatron refuses N outside [P, M] and a last group of fewer than P
 * micro-batches (it would stall the pipeline); so do we, with its reasons.
 * One exception: M < P with no group_size given runs as PyTorch's
 * ScheduleInterleaved1F1B runs it, one group of all M micro-batches
 * (N = M), warm-up min(2(P-r-1) + (V-1)M, MV).
 */
#include "internal.h"

/* A walk through the table of virtual micro-batches in forward order:
 * group by group, within a group chunk by chunk, within a chunk the group's
 * micro-batches in order. It steps without dividing, which keeps generating
 * the program as cheap as writing it (docs/performance.md). */
typedef struct vcursor {
    uint32_t m, n, v;
    uint32_t group_start, group_size; /* the current group's micro-batches */
    uint32_t chunk, offset;           /* position within the group */
} vcursor;

static void vcursor_init(vcursor *c, uint32_t m, uint32_t n, uint32_t v)
{
    c->m = m;
    c->n = n;
    c->v = v;
    c->group_start = 0;
    c->group_size = n < m ? n : m;
    c->chunk = 0;
    c->offset = 0;
}

static uint32_t vcursor_mb(const vcursor *c)
{
    return c->group_start + c->offset;
}

static void vcursor_step(vcursor *c)
{
    if (++c->offset < c->group_size)
        return;
    c->offset = 0;
    if (++c->chunk < c->v)
        return;
    c->chunk = 0;
    c->group_start += c->group_size;
    /* Groups hold N micro-batches; the last one what is left (1..N). */
    uint32_t left = c->m - c->group_start;
    c->group_size = left < c->n ? left : c->n;
}

/* N: group_size when given; else P, or M when M < P (PyTorch's
 * ScheduleInterleaved1F1B takes max(1, floor(M/P)) rounds of M / rounds
 * micro-batches, so with M < P one round of all M; Megatron refuses M < P). */
static uint32_t group_size(const bs_config *cfg)
{
    if (cfg->group_size > 0)
        return (uint32_t)cfg->group_size;
    return cfg->microbatches < cfg->stages ? (uint32_t)cfg->microbatches : (uint32_t)cfg->stages;
}

static int interleaved_check(const bs_config *cfg, bs_error *err)
{
    int p = cfg->stages, m = cfg->microbatches;
    uint32_t n = group_size(cfg);
    if (cfg->virtual_stages < 2)
        return bs_fail(err, BS_ERR_INVALID,
                       "virtual_stages: interleaved needs V >= 2 model chunks per device, got "
                       "%d (V=1 is plain 1f1b)",
                       cfg->virtual_stages);
    if (p < 2)
        return bs_fail(err, BS_ERR_INVALID, "stages: interleaved needs at least 2 devices, got %d",
                       p);
    /* M < P without a group size runs as PyTorch runs it: one group of M. */
    int pytorch_small = cfg->group_size == 0 && m < p;
    if (!pytorch_small && (n < (uint32_t)p || n > (uint32_t)m))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: interleaved needs the group size N between P=%d and M=%d (Megatron's "
                       "microbatch_group_size_per_vp_stage), got N=%u",
                       cfg->group_size > 0 ? "group_size" : "microbatches", p, m, n);
    uint32_t rest = (uint32_t)m % n;
    if (rest != 0 && rest < (uint32_t)p)
        return bs_fail(err, BS_ERR_INVALID,
                       "microbatches: interleaved needs M mod N to be 0 or at least P=%d; M=%d, "
                       "N=%u leaves a last group of %u, which would stall the pipeline",
                       p, m, n, rest);
    return BS_OK;
}

static int interleaved_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    uint32_t p = (uint32_t)cfg->stages, v = (uint32_t)cfg->virtual_stages;
    uint32_t m = (uint32_t)cfg->microbatches, n = group_size(cfg);
    uint32_t total = m * v;
    for (uint32_t r = 0; r < p; r++) {
        uint64_t w64 = 2ull * (p - r - 1) + (uint64_t)(v - 1) * n;
        uint32_t warmup = w64 < total ? (uint32_t)w64 : total;
        for (int it = 0; it < cfg->iterations; it++) {
            uint32_t base = (uint32_t)it * m;
            /* fwd runs `warmup` virtual micro-batches ahead of bwd. */
            vcursor fwd, bwd;
            vcursor_init(&fwd, m, n, v);
            vcursor_init(&bwd, m, n, v);
            for (uint32_t k = 0; k < warmup; k++, vcursor_step(&fwd))
                bs_program_emit(prog, BS_OP_FORWARD, (int)(fwd.chunk * p + r),
                                base + vcursor_mb(&fwd));
            for (uint32_t k = 0; k < total; k++, vcursor_step(&bwd)) {
                if (k + warmup < total) {
                    bs_program_emit(prog, BS_OP_FORWARD, (int)(fwd.chunk * p + r),
                                    base + vcursor_mb(&fwd));
                    vcursor_step(&fwd);
                }
                bs_program_emit(prog, BS_OP_BACKWARD, (int)((v - 1 - bwd.chunk) * p + r),
                                base + vcursor_mb(&bwd));
            }
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, (int)r);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_interleaved = {
    .name = "interleaved",
    .summary = "Megatron interleaved 1F1B, V chunks per device, flush each iteration",
    .check = interleaved_check,
    .generate = interleaved_generate,
    .ops_per_chunk_microbatch = 2,
    .flags = 0,
};
