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
 */
#include "internal.h"

typedef struct vtable {
    uint32_t m, n, v;
    uint32_t full_groups; /* groups of exactly n before the last group */
    uint32_t last_start, last_size;
} vtable;

static void vtable_init(vtable *t, uint32_t m, uint32_t n, uint32_t v)
{
    t->m = m;
    t->n = n;
    t->v = v;
    /* A group starting at g*n is the last one when g*n + n >= m. */
    t->full_groups = (m - 1) / n;
    t->last_start = t->full_groups * n;
    t->last_size = m - t->last_start;
}

/* Virtual micro-batch k -> (micro-batch, chunk) in forward order. */
static void vtable_at(const vtable *t, uint32_t k, uint32_t *mb, uint32_t *chunk)
{
    uint32_t full = t->full_groups * t->n * t->v;
    if (k < full) {
        uint32_t g = k / (t->n * t->v), within = k % (t->n * t->v);
        *chunk = within / t->n;
        *mb = g * t->n + within % t->n;
    } else {
        uint32_t r = k - full;
        *chunk = r / t->last_size;
        *mb = t->last_start + r % t->last_size;
    }
}

static uint32_t group_size(const bs_config *cfg)
{
    return cfg->group_size > 0 ? (uint32_t)cfg->group_size : (uint32_t)cfg->stages;
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
    if (n < (uint32_t)p || n > (uint32_t)m)
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
    vtable t;
    vtable_init(&t, m, n, v);
    for (uint32_t r = 0; r < p; r++) {
        uint64_t w64 = 2ull * (p - r - 1) + (uint64_t)(v - 1) * n;
        uint32_t warmup = w64 < total ? (uint32_t)w64 : total;
        for (int it = 0; it < cfg->iterations; it++) {
            uint32_t base = (uint32_t)it * m, mb, chunk;
            for (uint32_t k = 0; k < warmup; k++) {
                vtable_at(&t, k, &mb, &chunk);
                bs_program_emit(prog, BS_OP_FORWARD, (int)(chunk * p + r), base + mb);
            }
            for (uint32_t k = 0; k < total; k++) {
                if (k + warmup < total) {
                    vtable_at(&t, k + warmup, &mb, &chunk);
                    bs_program_emit(prog, BS_OP_FORWARD, (int)(chunk * p + r), base + mb);
                }
                vtable_at(&t, k, &mb, &chunk);
                bs_program_emit(prog, BS_OP_BACKWARD, (int)((v - 1 - chunk) * p + r), base + mb);
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
