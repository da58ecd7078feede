/*
 * schedule_v_memory.c - V-Min and V-Half, the V-shaped schedules with
 * controllable memory of Qi et al., "Pipeline Parallelism with
 * Controllable Memory" (2024), as the authors' repository
 * (sail-sg/zero-bubble-pipeline-parallelism, zbv_greedy.py) builds them;
 * the rules were read there and rewritten here. Their third schedule, V-ZB,
 * is `zbv`.
 *
 * Placement as zbv: device r holds chunk 0 = stage r and chunk 1 = stage
 * 2P-1-r. Time is cut into unit slots, six per micro-batch on every device
 * (F and I of both chunks, W of both). A "stable pattern" gives each device
 * the slot of micro-batch 0's F0, F1, I1, I0; micro-batch k's op sits 6k
 * slots later:
 *   V-Min  (peak about 1/3 of 1F1B's), g = 2 when P mod 3 = 0, else 0:
 *          F0 at r, F1 at 2P-1-r, I1 at 2P+g+r, I0 at 4P+g-1-r;
 *   V-Half (about 1/2), g = 3 when P is even, else 0:
 *          F0 at 2r, F1 at 3P-2-r, I1 at 3P+g+2r-1, I0 at 6P+g-2-r.
 * Each op's slot is after its input's slot (the previous stage's F, the
 * next stage's I), and the four offsets differ modulo 6, so no two ops
 * share a slot. Walking the slots in order, a device runs the op of that
 * slot; an empty slot after an input gradient takes a pending W (chunk 1's
 * first, each chunk's in micro-batch order); the W's still pending at the
 * end follow, chunk 1's first.
 *
 * Not done: the repository then "squeezes" the warm-up and cool-down,
 * moving ops into earlier free slots where dependencies and the peak allow.
 * Here the order is the pattern's; the engine runs every op as early as its
 * inputs allow anyway, so only the order within the fill and the drain can
 * differ from the authors', not the steady state.
 *
 * Iterations are flushed, with the optimizer step charged, as zb-h1.
 */
#include "internal.h"

#include <string.h>

enum { T_F0, T_F1, T_I1, T_I0, T_COUNT };

typedef struct v_pattern {
    const char *name;
    /* Slot of micro-batch 0's op of each type on device r of P. */
    void (*offsets)(uint32_t p, uint32_t r, uint64_t slot[T_COUNT]);
} v_pattern;

static void v_min_offsets(uint32_t p, uint32_t r, uint64_t slot[T_COUNT])
{
    uint64_t g = p % 3 == 0 ? 2 : 0;
    slot[T_F0] = r;
    slot[T_F1] = 2ull * p - 1 - r;
    slot[T_I1] = 2ull * p + g + r;
    slot[T_I0] = 4ull * p + g - 1 - r;
}

static void v_half_offsets(uint32_t p, uint32_t r, uint64_t slot[T_COUNT])
{
    uint64_t g = p % 2 == 0 ? 3 : 0;
    slot[T_F0] = 2ull * r;
    slot[T_F1] = 3ull * p - 2 - r;
    slot[T_I1] = 3ull * p + g + 2ull * r - 1;
    slot[T_I0] = 6ull * p + g - 2 - r;
}

/* The slot plan of all devices: slot[d][type][k] for types F0 F1 I1 I0
 * (M each) and, while the first squeeze runs, W (2M: one per input
 * gradient, in the order they ran). Each type's slots rise with k. */
enum { T_W = T_COUNT, T_ALL };

typedef struct plan {
    uint32_t p, m;
    int64_t *slot;     /* [p * 6m]: 4 types of M, then 2M W's */
    uint8_t *occupied; /* [p * cap] */
    size_t cap;        /* slots a device may use */
    int has_w;
} plan;

static int64_t *at(const plan *pl, uint32_t d, int type)
{
    return pl->slot + ((size_t)d * 6 + (size_t)type) * pl->m;
}

static uint32_t count_of(const plan *pl, int type)
{
    return type == T_W ? 2 * pl->m : pl->m;
}

/* Walks device d's slots in order, calling back for each op or empty slot.
 * The walk is what both the memory count and the W placement need. */
static int64_t last_slot(const plan *pl, uint32_t d)
{
    int64_t b = 0;
    for (int t = 0; t < (pl->has_w ? T_ALL : T_COUNT); t++)
        if (at(pl, d, t)[count_of(pl, t) - 1] > b)
            b = at(pl, d, t)[count_of(pl, t) - 1];
    return b;
}

/* Peak activations of device d in chunk units, the authors' way: a forward
 * holds one, a weight gradient frees one; without W's in the plan, each
 * empty slot after an input gradient runs one. */
static int64_t plan_memory(const plan *pl, uint32_t d)
{
    int types = pl->has_w ? T_ALL : T_COUNT;
    uint32_t next[T_ALL] = {0};
    int64_t cur = 0, peak = 0, bound = last_slot(pl, d);
    uint32_t pending = 0;
    for (int64_t t = 0; t <= bound; t++) {
        int type = -1;
        for (int k = 0; k < types; k++)
            if (next[k] < count_of(pl, k) && at(pl, d, k)[next[k]] == t)
                type = k;
        if (type >= 0) {
            next[type]++;
            cur += type == T_F0 || type == T_F1 ? 1 : type == T_W ? -1 : 0;
            if (type == T_I0 || type == T_I1)
                pending++;
        } else if (!pl->has_w && pending) {
            cur--;
            pending--;
        }
        if (cur > peak)
            peak = cur;
    }
    return peak;
}

/* The W's of device d into the plan: each empty slot after an input
 * gradient takes one; the rest follow the last op. */
static void plan_put_w(plan *pl, uint32_t d)
{
    uint32_t next[T_COUNT] = {0}, pending = 0, placed = 0;
    int64_t *w = at(pl, d, T_W), t = 0, bound = last_slot(pl, d);
    for (; t <= bound; t++) {
        int type = -1;
        for (int k = 0; k < T_COUNT; k++)
            if (next[k] < pl->m && at(pl, d, k)[next[k]] == t)
                type = k;
        if (type >= 0) {
            next[type]++;
            pending += type == T_I0 || type == T_I1;
        } else if (pending) {
            w[placed++] = t;
            pending--;
        }
    }
    while (placed < 2 * pl->m)
        w[placed++] = t++;
}

/* The earliest slot op (d, type, k) may take: after its inputs' slots. */
static int64_t earliest(const plan *pl, uint32_t d, int type, uint32_t k)
{
    int64_t e = -1;
#define AFTER(x)                                                                                   \
    do {                                                                                           \
        int64_t x_ = (x);                                                                          \
        if (x_ > e)                                                                                \
            e = x_;                                                                                \
    } while (0)
    if ((type == T_F0 || type == T_I1) && d > 0)
        AFTER(at(pl, d - 1, type)[k]);
    if ((type == T_F1 || type == T_I0) && d + 1 < pl->p)
        AFTER(at(pl, d + 1, type)[k]);
    if (type == T_F1 || type == T_I1 || type == T_I0)
        AFTER(at(pl, d, type - 1)[k]);
    if (type == T_W) {
        /* The k-th input gradient in slot order, of either chunk. */
        const int64_t *a = at(pl, d, T_I1), *b = at(pl, d, T_I0);
        uint32_t i = 0, j = 0;
        int64_t kth = 0;
        for (uint32_t n = 0; n <= k; n++)
            kth = (j >= pl->m || (i < pl->m && a[i] < b[j])) ? a[i++] : b[j++];
        AFTER(kth);
    }
    if (k > 0)
        AFTER(at(pl, d, type)[k - 1]);
#undef AFTER
    return e + 1;
}

/* The authors' squeeze: ops taken in slot order (device, then type, on
 * ties) move to the earliest free slot their inputs allow, provided the
 * device's peak stays within the plan's peak. Ops from the first I0 of
 * device 0 to the last F0 stay where they are (the steady state); without
 * W's in the plan (consider_w 0) the warm-up stays too. */
static void squeeze(plan *pl, int consider_w)
{
    if (consider_w)
        for (uint32_t d = 0; d < pl->p; d++)
            plan_put_w(pl, d);
    pl->has_w = consider_w;
    int types = consider_w ? T_ALL : T_COUNT;
    int64_t limit = 0;
    for (uint32_t d = 0; d < pl->p; d++) {
        int64_t mem = plan_memory(pl, d);
        if (mem > limit)
            limit = mem;
    }
    memset(pl->occupied, 0, pl->p * pl->cap);
    uint32_t *next = bs_zalloc_array((size_t)pl->p * T_ALL, sizeof *next);
    if (!next)
        return; /* leaves the plan as it was: still a valid order */
    int phase = 0;
    for (;;) {
        int64_t best = INT64_MAX;
        uint32_t bd = 0;
        int bt = -1;
        for (uint32_t d = 0; d < pl->p; d++)
            for (int t = 0; t < types; t++) {
                uint32_t k = next[d * T_ALL + (uint32_t)t];
                if (k < count_of(pl, t) && at(pl, d, t)[k] < best) {
                    best = at(pl, d, t)[k];
                    bd = d;
                    bt = t;
                }
            }
        if (bt < 0)
            break;
        uint32_t k = next[bd * T_ALL + (uint32_t)bt]++;
        int64_t *slot = &at(pl, bd, bt)[k];
        if (bt == T_I0 && bd == 0 && phase == 0)
            phase = 1;
        int fixed = phase == 1 || (phase == 0 && !consider_w);
        if (phase == 1 && bt == T_F0 && k == pl->m - 1)
            phase = 2;
        if (!fixed) {
            int64_t home = *slot;
            int moved = 0;
            for (int64_t t = earliest(pl, bd, bt, k); t < home && !moved; t++) {
                if (pl->occupied[bd * pl->cap + (size_t)t])
                    continue;
                *slot = t;
                moved = plan_memory(pl, bd) <= limit;
            }
            if (!moved)
                *slot = home;
        }
        pl->occupied[bd * pl->cap + (size_t)*slot] = 1;
    }
    bs_free(next);
    pl->has_w = 0;
}

/* Emits device d's order for one iteration: the plan's ops in slot order,
 * a pending W (chunk 1's first) in each empty slot, the rest at the end. */
static void emit_device(bs_program *prog, const plan *pl, uint32_t d, uint32_t base)
{
    int stage[2] = {(int)d, (int)(2 * pl->p - 1 - d)};
    static const int kind[T_COUNT] = {BS_OP_FORWARD, BS_OP_FORWARD, BS_OP_INPUT_GRAD,
                                      BS_OP_INPUT_GRAD};
    static const int chunk[T_COUNT] = {0, 1, 1, 0};
    uint32_t next[T_COUNT] = {0}, w_done[2] = {0, 0}, i_done[2] = {0, 0};
    int64_t bound = last_slot(pl, d);
    for (int64_t t = 0; t <= bound; t++) {
        int type = -1;
        for (int k = 0; k < T_COUNT; k++)
            if (next[k] < pl->m && at(pl, d, k)[next[k]] == t)
                type = k;
        if (type >= 0) {
            int c = chunk[type];
            bs_program_emit(prog, kind[type], stage[c], base + next[type]++);
            if (kind[type] == BS_OP_INPUT_GRAD)
                i_done[c]++;
            continue;
        }
        for (int c = 1; c >= 0; c--)
            if (w_done[c] < i_done[c]) {
                bs_program_emit(prog, BS_OP_WEIGHT_GRAD, stage[c], base + w_done[c]++);
                break;
            }
    }
    for (int c = 1; c >= 0; c--)
        while (w_done[c] < pl->m)
            bs_program_emit(prog, BS_OP_WEIGHT_GRAD, stage[c], base + w_done[c]++);
}

static int generate(const v_pattern *pat, const bs_config *cfg, bs_program *prog, bs_error *err)
{
    plan pl = {0};
    pl.p = (uint32_t)cfg->stages;
    pl.m = (uint32_t)cfg->microbatches;
    /* The last pattern slot is below 6P + 6M + 3; W's appended after it
     * add at most 2M. */
    pl.cap = 6 * (size_t)pl.p + 9 * (size_t)pl.m + 16;
    pl.slot = bs_alloc_array((size_t)pl.p * 6 * pl.m, sizeof *pl.slot);
    pl.occupied = bs_alloc_array((size_t)pl.p, pl.cap);
    if (!pl.slot || !pl.occupied) {
        bs_free(pl.slot);
        bs_free(pl.occupied);
        return bs_fail(err, BS_ERR_NOMEM, "%s: out of memory for the slot plan", pat->name);
    }
    for (uint32_t d = 0; d < pl.p; d++) {
        uint64_t off[T_COUNT];
        pat->offsets(pl.p, d, off);
        for (int t = 0; t < T_COUNT; t++)
            for (uint32_t k = 0; k < pl.m; k++)
                at(&pl, d, t)[k] = (int64_t)(off[t] + 6ull * k);
    }
    squeeze(&pl, 1);
    squeeze(&pl, 0);
    bs_place_v(prog);
    for (uint32_t d = 0; d < pl.p; d++) {
        for (int it = 0; it < cfg->iterations; it++) {
            emit_device(prog, &pl, d, (uint32_t)it * pl.m);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, (int)d);
    }
    bs_free(pl.slot);
    bs_free(pl.occupied);
    return BS_OK;
}

static const v_pattern v_min = {"v-min", v_min_offsets};
static const v_pattern v_half = {"v-half", v_half_offsets};

static int v_min_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_v_shape(cfg, "v-min", err);
}

static int v_half_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_v_shape(cfg, "v-half", err);
}

static int v_min_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    return generate(&v_min, cfg, prog, err);
}

static int v_half_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    return generate(&v_half, cfg, prog, err);
}

const bs_schedule bs_schedule_v_min = {
    .name = "v-min",
    .summary = "controllable-memory V-Min: V placement, about 1/3 of 1F1B's activations, flush",
    .check = v_min_check,
    .generate = v_min_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = 0,
    .v_shape = 1,
};

const bs_schedule bs_schedule_v_half = {
    .name = "v-half",
    .summary = "controllable-memory V-Half: V placement, about 1/2 of 1F1B's activations, flush",
    .check = v_half_check,
    .generate = v_half_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = 0,
    .v_shape = 1,
};
