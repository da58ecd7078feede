/*
 * schedule_zb_auto.c - zb-auto: a zero-bubble order searched for the
 * configuration's own per-stage costs F, I ("backward" in split mode), W,
 * message time and a memory limit, after the automatic scheduler of Qi et
 * al., "Zero Bubble Pipeline Parallelism" (ICLR 2024), section 3.1.
 *
 * What is implemented. The paper's greedy heuristic, written here from its
 * description and from the rules of the authors' scheduler (read, not
 * copied), on a model of time that charges every op its stage's cost plus
 * costs.overhead and every hop its boundary's message time
 * (bs_boundary_time: latency + bytes / bandwidth of the pipeline link, or
 * of the node link where the boundary crosses nodes):
 *   - warm-up: every stage runs F(0); then, from the last stage back, each
 *     stage adds as many forwards as fit before the input gradient of
 *     micro-batch 0 reaches it and within the memory limit; the counts are
 *     made to fall strictly from stage to stage (a stage can only forward
 *     what its predecessor has); then I(0) runs from the last stage back;
 *   - each later round i: every stage with forwards left runs one more F,
 *     then I(i) runs from the last stage back; before each F or I a stage
 *     runs pending W's while they end before that op's input can arrive
 *     (they fill what would be a bubble), and as many as the memory limit
 *     needs before a forward;
 *   - the remaining W's close each stage.
 * Three choices of the authors' heuristic are tried both ways (8 variants):
 * whether a warm-up forward may run past the arrival of the first gradient;
 * whether a stage two forwards ahead of its successor skips its forward to
 * reach the input gradient sooner; whether a gap shorter than the largest
 * bubble so far is still filled with a W.
 *
 * The refinement. The paper refines the heuristic's order with an ILP; that
 * is not done here. Instead every variant, and every member of the fixed
 * ZB-H1/ZB-H2 family (warm-up a(P-1-r), W lag a*r for a = 1..4) whose peak
 * fits the limit, is timed by the engine's rules (contention on links
 * included; time_candidate), and among the candidates no slower than the
 * best family member the one with the smallest longest per-device span (the
 * paper's cost) is kept. So zb-auto is never slower than zb-h1
 * at limit P or zb-h2 at limit 2P by construction, and the tests count how
 * often the heuristic's own variants win.
 *
 * Left out of the search: data-parallel gradient collectives. They run on
 * each device's communication stream and delay only the optimizer step (and
 * the run's end), not the ops the order places; the chosen order is
 * simulated by the engine with them.
 *
 * Memory is counted as the metrics count it: a forward holds one
 * activation, the input gradient frees all but memory.kept_fraction of it,
 * the weight gradient the rest; no device's running total exceeds
 * memory.limit_activations (default P, 1F1B's peak).
 *
 * Iterations and the optimizer: each iteration runs the searched order and
 * ends with the optimizer step behind a flush, as zb-h1 does. The paper
 * replaces the synchronisation before the step with its optimizer
 * post-validation (a rollback when a check fails), which lets the next
 * iteration start before every device agreed; that is not modelled: the
 * flush barrier is kept, which overstates the time between iterations by at
 * most the fill and drain skew.
 *
 * One chunk per device (V = 1); P = 1 is allowed (a single stage simply
 * runs F I W per micro-batch).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* Slack for comparing sums of activation fractions with the limit. */
#define MEMORY_EPSILON 1e-9

enum { VARIANT_EARLY_FORWARD = 1, VARIANT_INPUT_GRAD_FIRST = 2, VARIANT_GREEDY_W = 4 };
#define VARIANT_COUNT 8
/* Members a of the fixed family tried: warm-up a(P-1-r), lag a*r. */
#define FAMILY_MAX 4

/* The heuristic's working state for one variant. Times are op end times. */
typedef struct zba {
    int p;
    uint32_t m;
    const double *cf, *ci, *cw; /* [p] per-stage costs, costs.overhead included */
    /* [p] per boundary j (stages j and j+1): a message's arrival after its
     * start and how long it holds its link (bs_boundary_time). */
    const double *delay, *hold;
    double limit, kept;
    int blocking; /* network.blocking: a sender waits for its message */
    int variant;
    uint32_t *nf, *ni, *nw;     /* [p] ops of each kind placed so far */
    double *end, *mem, *bubble; /* [p] device free, live activations, idle so far */
    double *tf, *ti;            /* [p * m] end of F(j, k) and I(j, k) */
    uint32_t *want;             /* [p] round plan: forwards wanted */
    bs_op *ops;                 /* [p * 3m]: stage j's order at ops + j * 3m */
    uint32_t *count;            /* [p] ops in stage j's order */
} zba;

static size_t at(const zba *z, int j, uint32_t k)
{
    return (size_t)j * z->m + k;
}

/* Appends the next op of `kind` to stage j and advances the model of time. */
static void put(zba *z, int j, int kind)
{
    uint32_t k;
    double cost, ready = z->end[j];
    switch (kind) {
    case BS_OP_FORWARD:
        k = z->nf[j]++;
        cost = z->cf[j];
        if (j > 0)
            ready = fmax(ready, z->tf[at(z, j - 1, k)] + z->delay[j - 1]);
        z->mem[j] += 1.0;
        break;
    case BS_OP_INPUT_GRAD:
        k = z->ni[j]++;
        cost = z->ci[j];
        if (j + 1 < z->p)
            ready = fmax(ready, z->ti[at(z, j + 1, k)] + z->delay[j]);
        z->mem[j] -= 1.0 - z->kept;
        break;
    default:
        k = z->nw[j]++;
        cost = z->cw[j];
        z->mem[j] -= z->kept;
        break;
    }
    /* Waiting before the first forward is the fill, not a bubble. */
    if (z->nf[j] > 1 || kind != BS_OP_FORWARD)
        z->bubble[j] += ready - z->end[j];
    z->end[j] = ready + cost;
    if (kind == BS_OP_FORWARD)
        z->tf[at(z, j, k)] = z->end[j];
    else if (kind == BS_OP_INPUT_GRAD)
        z->ti[at(z, j, k)] = z->end[j];
    bs_op *op = &z->ops[(size_t)j * 3 * z->m + z->count[j]++];
    op->kind = (uint8_t)kind;
    op->stage = (uint16_t)j;
    op->microbatch = k;
    op->reserved = 0;
}

static double largest_bubble(const zba *z)
{
    double b = 0;
    for (int j = 0; j < z->p; j++)
        b = fmax(b, z->bubble[j]);
    return b;
}

/* Runs W's on stage j while they end before `arrival` (the moment the next
 * op's input is in); then, if a gap is left and a W waits, fills it too
 * unless the gap is small next to the largest bubble so far and the variant
 * keeps such gaps open (a W run late can still fill a bigger gap). */
static void fill_w_before(zba *z, int j, double arrival)
{
    while (z->nw[j] < z->ni[j] && z->end[j] + z->cw[j] <= arrival)
        put(z, j, BS_OP_WEIGHT_GRAD);
    if (z->nw[j] < z->ni[j] && z->end[j] < arrival) {
        int small = arrival - z->end[j] <= largest_bubble(z) - z->bubble[j];
        if (!small || (z->variant & VARIANT_GREEDY_W))
            put(z, j, BS_OP_WEIGHT_GRAD);
    }
}

/* Frees memory with W's until one more activation fits; -1 if none is left
 * to run (the limit is too small for this variant). */
static int make_room(zba *z, int j)
{
    while (z->mem[j] + 1.0 > z->limit + MEMORY_EPSILON) {
        if (z->nw[j] >= z->ni[j])
            return -1;
        put(z, j, BS_OP_WEIGHT_GRAD);
    }
    return 0;
}

static int warm_up(zba *z)
{
    int p = z->p;
    for (int j = 0; j < p; j++)
        if (make_room(z, j))
            return -1;
        else
            put(z, j, BS_OP_FORWARD);
    /* How many more forwards stage j fits before I(0) reaches it. */
    double gradient_end = z->tf[at(z, p - 1, 0)] + z->ci[p - 1];
    z->want[p - 1] = 0;
    for (int j = p - 2; j >= 0; j--) {
        double t = z->end[j], mem = z->mem[j], arrival = gradient_end + z->delay[j];
        uint32_t extra = 0;
        while (z->nf[j] + extra < z->m && mem + 1.0 <= z->limit + MEMORY_EPSILON) {
            if ((z->variant & VARIANT_EARLY_FORWARD) ? t >= arrival : t + z->cf[j] > arrival)
                break;
            mem += 1.0;
            t += z->cf[j];
            extra++;
        }
        z->want[j] = extra;
        gradient_end = fmax(t, arrival) + z->ci[j];
    }
    /* Stage j forwards only what stage j-1 has forwarded. */
    for (int j = 1; j < p; j++) {
        uint32_t cap = z->want[j - 1];
        if (z->nf[j - 1] + z->want[j - 1] < z->m && cap > 0)
            cap--;
        else if (z->nf[j - 1] + z->want[j - 1] < z->m)
            cap = 0;
        if (z->want[j] > cap)
            z->want[j] = cap;
    }
    for (int j = 0; j < p; j++)
        for (uint32_t e = 0; e < z->want[j]; e++)
            put(z, j, BS_OP_FORWARD);
    for (int j = p - 1; j >= 0; j--)
        put(z, j, BS_OP_INPUT_GRAD);
    return 0;
}

/* Whether stage j, ahead of stage j+1, should skip its forward this round
 * to reach its input gradient sooner (VARIANT_INPUT_GRAD_FIRST). */
static int skip_forward(const zba *z, int j)
{
    if (!(z->variant & VARIANT_INPUT_GRAD_FIRST) || j + 1 >= z->p || z->nf[j] < z->nf[j + 1] + 2)
        return 0;
    /* About when the gradient from stage j+1 comes: its forward and input
     * gradient of this round, then the hop. */
    double gradient = z->end[j + 1] + z->cf[j + 1] + z->ci[j + 1] + z->delay[j];
    if (z->end[j] >= gradient)
        return 1;
    double w_cost = 0, mem = z->mem[j] + 1.0;
    for (uint32_t w = z->nw[j]; mem > z->limit + MEMORY_EPSILON && w < z->ni[j]; w++) {
        w_cost += z->cw[j];
        mem -= z->kept;
    }
    if (z->end[j] + z->cf[j] + w_cost <= gradient)
        return 0;
    return gradient - z->end[j] <= largest_bubble(z) - z->bubble[j];
}

static int round_of(zba *z, uint32_t i)
{
    int p = z->p;
    for (int j = 0; j < p; j++)
        z->want[j] = z->nf[j] < z->m && !skip_forward(z, j);
    for (int j = p - 2; j >= 0; j--)
        if (z->want[j + 1] == 0)
            z->want[j] = 0;
    for (int j = 0; j < p; j++) {
        if (!z->want[j])
            continue;
        if (make_room(z, j))
            return -1;
        if (j > 0)
            fill_w_before(z, j, z->tf[at(z, j - 1, z->nf[j])] + z->delay[j - 1]);
        put(z, j, BS_OP_FORWARD);
    }
    for (int j = p - 1; j >= 0; j--) {
        if (z->ni[j] != i || z->nf[j] <= i)
            return -1; /* an invariant broke: drop the variant */
        if (j + 1 < p)
            fill_w_before(z, j, z->ti[at(z, j + 1, i)] + z->delay[j]);
        if (j == 0 && z->nf[0] == z->m)
            while (z->nw[0] < z->ni[0])
                put(z, 0, BS_OP_WEIGHT_GRAD);
        put(z, j, BS_OP_INPUT_GRAD);
    }
    return 0;
}

/* Builds the heuristic's order for z->variant into z->ops; -1 when the
 * variant cannot keep to the limit. */
static int heuristic(zba *z)
{
    size_t p = (size_t)z->p;
    memset(z->nf, 0, p * sizeof *z->nf);
    memset(z->ni, 0, p * sizeof *z->ni);
    memset(z->nw, 0, p * sizeof *z->nw);
    memset(z->count, 0, p * sizeof *z->count);
    for (size_t j = 0; j < p; j++)
        z->end[j] = z->mem[j] = z->bubble[j] = 0;
    if (warm_up(z))
        return -1;
    for (uint32_t i = 1; i < z->m; i++)
        if (round_of(z, i))
            return -1;
    for (int j = 0; j < z->p; j++)
        while (z->nw[j] < z->m)
            put(z, j, BS_OP_WEIGHT_GRAD);
    return 0;
}

/* Member a of the fixed family (a = 1 is zb-h1's order, 2 zb-h2's). */
static void family(zba *z, uint32_t a)
{
    for (int j = 0; j < z->p; j++) {
        bs_op *ops = z->ops + (size_t)j * 3 * z->m;
        uint32_t n = 0, m = z->m, warm = a * (uint32_t)(z->p - 1 - j), lag = a * (uint32_t)j;
        uint32_t w = warm < m ? warm : m, next_f = 0, next_w = 0;
#define EMIT(kind_, mb_)                                                                           \
    ops[n++] = (bs_op)                                                                             \
    {                                                                                              \
        .microbatch = (mb_), .stage = (uint16_t)j, .kind = (kind_)                                 \
    }
        while (next_f < w)
            EMIT(BS_OP_FORWARD, next_f++);
        for (uint32_t k = 0; k < m; k++) {
            if (next_f < m)
                EMIT(BS_OP_FORWARD, next_f++);
            EMIT(BS_OP_INPUT_GRAD, k);
            if (k + 1 - next_w > lag)
                EMIT(BS_OP_WEIGHT_GRAD, next_w++);
        }
        while (next_w < m)
            EMIT(BS_OP_WEIGHT_GRAD, next_w++);
#undef EMIT
        z->count[j] = n;
    }
}

/* Peak live activations of the candidate in z->ops over all stages. */
static double candidate_peak(const zba *z)
{
    double peak = 0;
    for (int j = 0; j < z->p; j++) {
        const bs_op *ops = z->ops + (size_t)j * 3 * z->m;
        double live = 0;
        for (uint32_t n = 0; n < z->count[j]; n++) {
            live += ops[n].kind == BS_OP_FORWARD      ? 1.0
                    : ops[n].kind == BS_OP_INPUT_GRAD ? -(1.0 - z->kept)
                                                      : -z->kept;
            peak = fmax(peak, live);
        }
    }
    return peak;
}

/* The search's buffers: the heuristic state, the candidate timer's
 * arrays and the best order so far (laid out as z.ops). */
typedef struct search {
    zba z;
    double *costs;               /* [5p]: F, I, W of each stage, delay and hold of each boundary */
    double *fin, *gin;           /* [p * m]: when F's input and I's gradient arrive */
    double *link_down, *link_up; /* [p]: when the link to r+1 / to r-1 is free */
    bs_op *best;
    double best_makespan, best_span;
    double family_makespan; /* best makespan of the fixed family */
    int found;
} search;

static void search_free(search *s)
{
    zba *z = &s->z;
    bs_free(z->nf);
    bs_free(z->ni);
    bs_free(z->nw);
    bs_free(z->end);
    bs_free(z->mem);
    bs_free(z->bubble);
    bs_free(z->tf);
    bs_free(z->ti);
    bs_free(z->want);
    bs_free(z->ops);
    bs_free(z->count);
    bs_free(s->best);
    bs_free(s->fin);
    bs_free(s->gin);
    bs_free(s->link_down);
    bs_free(s->link_up);
    bs_free(s->costs);
}

static double limit_of(const bs_config *cfg)
{
    return cfg->limit_activations > 0 ? cfg->limit_activations : (double)cfg->stages;
}

static int search_init(search *s, const bs_config *cfg, bs_error *err)
{
    memset(s, 0, sizeof *s);
    zba *z = &s->z;
    size_t p = (size_t)cfg->stages, m = (size_t)cfg->microbatches;
    /* One chunk per device: a cost is one number or one per stage (P and
     * P*V entries are the same here). Read directly rather than through
     * bs_chunk_costs_resolve (config.c), which depends on the schedule
     * table (tests/check_deps.sh). */
    if (!(s->costs = bs_alloc_array(5 * p, sizeof *s->costs)))
        return bs_fail(err, BS_ERR_NOMEM, "zb-auto: out of memory for the search");
    const bs_values *given[3] = {&cfg->forward, &cfg->backward, &cfg->weight};
    for (size_t k = 0; k < 3; k++)
        if (!given[k]->v || (given[k]->count != 1 && given[k]->count < p))
            return bs_fail(err, BS_ERR_INVALID,
                           "costs: zb-auto needs one cost or one per stage, got %zu for P=%zu",
                           given[k]->count, p);
    /* The engine adds costs.overhead to every compute op. */
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < p; j++)
            s->costs[k * p + j] = given[k]->v[given[k]->count == 1 ? 0 : j] + cfg->overhead;
    z->p = cfg->stages;
    z->m = (uint32_t)m;
    z->cf = s->costs;
    z->ci = s->costs + p;
    z->cw = s->costs + 2 * p;
    /* The device plan as the engine reads it: only when made for P devices
     * and P chunks. */
    const bs_device_plan *dp = cfg->device_plan;
    if (dp && (dp->devices != cfg->stages || dp->chunks != cfg->stages))
        dp = NULL;
    for (size_t j = 0; j < p; j++)
        bs_boundary_time(cfg, dp, (int)j, &s->costs[3 * p + j], &s->costs[4 * p + j]);
    z->delay = s->costs + 3 * p;
    z->hold = s->costs + 4 * p;
    z->blocking = cfg->blocking;
    z->limit = limit_of(cfg);
    z->kept = cfg->kept_fraction;
    z->nf = bs_alloc_array(p, sizeof *z->nf);
    z->ni = bs_alloc_array(p, sizeof *z->ni);
    z->nw = bs_alloc_array(p, sizeof *z->nw);
    z->want = bs_alloc_array(p, sizeof *z->want);
    z->count = bs_alloc_array(p, sizeof *z->count);
    z->end = bs_alloc_array(p, sizeof *z->end);
    z->mem = bs_alloc_array(p, sizeof *z->mem);
    z->bubble = bs_alloc_array(p, sizeof *z->bubble);
    z->tf = bs_alloc_array(p * m, sizeof *z->tf);
    z->ti = bs_alloc_array(p * m, sizeof *z->ti);
    z->ops = bs_alloc_array(p * m, 3 * sizeof *z->ops);
    s->best = bs_alloc_array(p * m, 3 * sizeof *s->best);
    s->fin = bs_alloc_array(p * m, sizeof *s->fin);
    s->gin = bs_alloc_array(p * m, sizeof *s->gin);
    s->link_down = bs_alloc_array(p, sizeof *s->link_down);
    s->link_up = bs_alloc_array(p, sizeof *s->link_up);
    if (!z->nf || !z->ni || !z->nw || !z->want || !z->count || !z->end || !z->mem || !z->bubble ||
        !z->tf || !z->ti || !z->ops || !s->best || !s->fin || !s->gin || !s->link_down ||
        !s->link_up)
        return bs_fail(err, BS_ERR_NOMEM, "zb-auto: out of memory for the search");
    s->best_makespan = INFINITY;
    s->family_makespan = INFINITY;
    return BS_OK;
}

/* Times the candidate in z->ops into *makespan and *span (the longest
 * per-device span); 1 when it fits the limit and finishes, 0 when not.
 * The rules are the engine's (sim/engine.c) for one chunk per device: an
 * op starts when its device is free and its input is in and lasts its cost
 * plus costs.overhead; a message waits for its directed link (first come
 * first served, one sender's messages in that sender's order), arrives
 * after its boundary's delay and holds the link for its boundary's hold
 * (bs_boundary_time: node links, network.latency_holds_link); with
 * network.blocking the sender's device waits for the arrival. The engine
 * itself is not called: the schedules sit below it (tests/check_deps.sh),
 * and the chosen order is simulated by it anyway. */
static int time_candidate(search *s, double *makespan, double *span)
{
    zba *z = &s->z;
    if (candidate_peak(z) > z->limit + MEMORY_EPSILON)
        return 0;
    int p = z->p;
    size_t pairs = (size_t)p * z->m;
    for (size_t k = 0; k < pairs; k++)
        s->fin[k] = s->gin[k] = INFINITY;
    for (uint32_t k = 0; k < z->m; k++)
        s->fin[at(z, 0, k)] = 0;
    for (int j = 0; j < p; j++) {
        z->nf[j] = 0;      /* reused: the next op of each device */
        z->end[j] = 0;     /* when the device is free */
        z->mem[j] = 0;     /* reused: the last op's end */
        z->bubble[j] = -1; /* reused: the first op's start */
        s->link_down[j] = s->link_up[j] = 0;
    }
    for (int progress = 1; progress;) {
        progress = 0;
        for (int j = 0; j < p; j++) {
            const bs_op *ops = z->ops + (size_t)j * 3 * z->m;
            while (z->nf[j] < z->count[j]) {
                const bs_op *op = &ops[z->nf[j]];
                double ready = 0, cost = z->cw[j];
                if (op->kind == BS_OP_FORWARD) {
                    ready = s->fin[at(z, j, op->microbatch)];
                    cost = z->cf[j];
                } else if (op->kind == BS_OP_INPUT_GRAD) {
                    ready = j + 1 < p ? s->gin[at(z, j, op->microbatch)] : 0;
                    cost = z->ci[j];
                }
                if (ready == INFINITY)
                    break;
                double start = fmax(z->end[j], ready);
                if (z->bubble[j] < 0)
                    z->bubble[j] = start;
                z->end[j] = z->mem[j] = start + cost;
                double *link = NULL, *input = NULL;
                int boundary = j;
                if (op->kind == BS_OP_FORWARD && j + 1 < p) {
                    link = &s->link_down[j];
                    input = &s->fin[at(z, j + 1, op->microbatch)];
                } else if (op->kind == BS_OP_INPUT_GRAD && j > 0) {
                    link = &s->link_up[j];
                    input = &s->gin[at(z, j - 1, op->microbatch)];
                    boundary = j - 1;
                }
                if (link) {
                    double sent = fmax(z->end[j], *link);
                    *link = sent + z->hold[boundary];
                    *input = sent + z->delay[boundary];
                    /* The device, not the op, waits for the arrival. */
                    if (z->blocking && *input > z->end[j])
                        z->end[j] = *input;
                }
                z->nf[j]++;
                progress = 1;
            }
        }
    }
    *makespan = *span = 0;
    for (int j = 0; j < p; j++) {
        if (z->nf[j] < z->count[j])
            return 0; /* a candidate that cannot finish is not kept */
        *makespan = fmax(*makespan, z->mem[j]);
        *span = fmax(*span, z->mem[j] - z->bubble[j]);
    }
    return 1;
}

/* Keeps the candidate in z->ops if it is the best so far: among candidates
 * no slower (makespan) than the best fixed-family order, the one with the
 * smallest longest span (the paper's cost), then the smallest makespan. */
static int consider(search *s, bs_error *err)
{
    double makespan, span;
    (void)err;
    if (!time_candidate(s, &makespan, &span))
        return BS_OK;
    double tol = 1e-9 * fmax(1.0, makespan);
    if (makespan > s->family_makespan + tol)
        return BS_OK;
    /* Strictly better only, so that rounding never prefers a later
     * candidate that merely ties. */
    if (s->found && (span > s->best_span + tol ||
                     (span > s->best_span - tol && makespan >= s->best_makespan - tol)))
        return BS_OK;
    s->found = 1;
    s->best_makespan = makespan;
    s->best_span = span;
    memcpy(s->best, s->z.ops, (size_t)s->z.p * 3 * s->z.m * sizeof *s->best);
    return BS_OK;
}

static int zb_auto_check(const bs_config *cfg, bs_error *err)
{
    int rc = bs_check_single_chunk(cfg, "zb-auto", err);
    if (rc)
        return rc;
    if (cfg->limit_activations > 0 && cfg->limit_activations < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "memory.limit_activations: zb-auto needs room for at least one "
                       "micro-batch's activations per device (a limit of 1 or more, or 0 for "
                       "P), got %g",
                       cfg->limit_activations);
    return BS_OK;
}

static int zb_auto_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    search s;
    int rc = search_init(&s, cfg, err);
    if (rc)
        goto error;
    /* First the bar: the fastest fixed-family order within the limit. */
    for (uint32_t a = 1; a <= FAMILY_MAX; a++) {
        double makespan, span;
        family(&s.z, a);
        if (time_candidate(&s, &makespan, &span) && makespan < s.family_makespan)
            s.family_makespan = makespan;
    }
    for (s.z.variant = 0; s.z.variant < VARIANT_COUNT; s.z.variant++)
        if (heuristic(&s.z) == 0 && (rc = consider(&s, err)))
            goto error;
    for (uint32_t a = 1; a <= FAMILY_MAX; a++) {
        family(&s.z, a);
        if ((rc = consider(&s, err)))
            goto error;
    }
    if (!s.found) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "memory.limit_activations: zb-auto found no order within %g activations "
                     "per device for P=%d, M=%d",
                     s.z.limit, cfg->stages, cfg->microbatches);
        goto error;
    }
    uint32_t m = (uint32_t)cfg->microbatches;
    for (int j = 0; j < cfg->stages; j++) {
        const bs_op *ops = s.best + (size_t)j * 3 * m;
        size_t n = 3 * (size_t)m;
        for (int it = 0; it < cfg->iterations; it++) {
            for (size_t k = 0; k < n; k++)
                bs_program_emit(prog, ops[k].kind, j, (uint32_t)it * m + ops[k].microbatch);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, j);
    }
error:
    search_free(&s);
    return rc;
}

const bs_schedule bs_schedule_zb_auto = {
    .name = "zb-auto",
    .summary = "zero bubble searched for the per-stage costs and memory.limit_activations, flush",
    .check = zb_auto_check,
    .generate = zb_auto_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = 0,
};
