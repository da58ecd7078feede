/*
 * schedule_zb_auto.c - zb-auto: a zero-bubble order searched for the
 * configuration's own per-stage costs F, I ("backward" in split mode), W,
 * message time and a memory limit, after the automatic scheduler of Qi et
 * al., "Zero Bubble Pipeline Parallelism" (ICLR 2024), section 3.1.
 *
 * What is implemented. The paper's greedy heuristic, written here from its
 * description and from the rules of the authors' scheduler (read, not
 * copied), on a model of time that charges every op its stage's cost and
 * every hop the message time (latency + bytes / bandwidth):
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
 * fits the limit, is simulated by the engine itself (contention on links
 * included), and the order with the smallest makespan (then the smallest
 * longest per-device span) is kept. So zb-auto is never slower than zb-h1
 * at limit P or zb-h2 at limit 2P by construction, and the tests count how
 * often the heuristic's own variants win.
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
    const double *cf, *ci, *cw; /* [p] per-stage costs */
    double comm, limit, kept;
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
            ready = fmax(ready, z->tf[at(z, j - 1, k)] + z->comm);
        z->mem[j] += 1.0;
        break;
    case BS_OP_INPUT_GRAD:
        k = z->ni[j]++;
        cost = z->ci[j];
        if (j + 1 < z->p)
            ready = fmax(ready, z->ti[at(z, j + 1, k)] + z->comm);
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
        double t = z->end[j], mem = z->mem[j], arrival = gradient_end + z->comm;
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
    double gradient = z->end[j + 1] + z->cf[j + 1] + z->ci[j + 1] + z->comm;
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
            fill_w_before(z, j, z->tf[at(z, j - 1, z->nf[j])] + z->comm);
        put(z, j, BS_OP_FORWARD);
    }
    for (int j = p - 1; j >= 0; j--) {
        if (z->ni[j] != i || z->nf[j] <= i)
            return -1; /* an invariant broke: drop the variant */
        if (j + 1 < p)
            fill_w_before(z, j, z->ti[at(z, j + 1, i)] + z->comm);
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

/* The search's buffers: the heuristic state, a one-iteration program for
 * the engine, its timeline and the best order so far. */
typedef struct search {
    zba z;
    bs_chunk_costs costs;
    bs_program trial;
    bs_timeline tl;
    bs_config one; /* cfg with one iteration and no optimizer step */
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
    bs_chunk_costs_free(&s->costs);
    bs_program_free(&s->trial);
    bs_timeline_free(&s->tl);
}

static double limit_of(const bs_config *cfg)
{
    return cfg->limit_activations > 0 ? cfg->limit_activations : (double)cfg->stages;
}

static int search_init(search *s, const bs_config *cfg, bs_error *err)
{
    memset(s, 0, sizeof *s);
    bs_program_init(&s->trial);
    bs_timeline_init(&s->tl);
    zba *z = &s->z;
    size_t p = (size_t)cfg->stages, m = (size_t)cfg->microbatches;
    int rc = bs_chunk_costs_resolve(&s->costs, cfg, NULL, err);
    if (rc)
        return rc;
    z->p = cfg->stages;
    z->m = (uint32_t)m;
    z->cf = s->costs.forward;
    z->ci = s->costs.backward;
    z->cw = s->costs.weight;
    z->comm = bs_message_time(cfg);
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
    if (!z->nf || !z->ni || !z->nw || !z->want || !z->count || !z->end || !z->mem || !z->bubble ||
        !z->tf || !z->ti || !z->ops || !s->best)
        return bs_fail(err, BS_ERR_NOMEM, "zb-auto: out of memory for the search");
    bs_program *t = &s->trial;
    t->stage_device = bs_alloc_array(p, sizeof *t->stage_device);
    t->device_first = bs_alloc_array(p + 1, sizeof *t->device_first);
    if (!t->stage_device || !t->device_first || bs_program_reserve(t, 3 * p * m, err))
        return bs_fail(err, BS_ERR_NOMEM, "zb-auto: out of memory for the search");
    t->devices = t->stages = (int)p;
    t->chunks_per_device = 1;
    t->microbatches = t->per_iteration = (uint32_t)m;
    t->flags = 0;
    for (size_t j = 0; j < p; j++)
        t->stage_device[j] = (uint16_t)j;
    s->one = *cfg; /* shallow: only read, never freed */
    s->one.iterations = 1;
    s->one.optimizer = 0;
    s->best_makespan = INFINITY;
    s->family_makespan = INFINITY;
    return BS_OK;
}

/* Times the candidate in z->ops with the engine into *makespan and *span
 * (the longest per-device span); 1 when it fits the limit and finishes. */
static int time_candidate(search *s, double *makespan, double *span, bs_error *err)
{
    zba *z = &s->z;
    if (candidate_peak(z) > z->limit + MEMORY_EPSILON)
        return 0;
    bs_program *t = &s->trial;
    t->op_count = 0;
    t->device_first[0] = 0;
    for (int j = 0; j < z->p; j++) {
        memcpy(t->ops + t->op_count, z->ops + (size_t)j * 3 * z->m, z->count[j] * sizeof *t->ops);
        t->op_count += z->count[j];
        t->device_first[j + 1] = t->op_count;
    }
    bs_error ignored;
    int rc = bs_engine_run(&s->tl, t, &s->one, 0, &ignored);
    if (rc == BS_ERR_NOMEM)
        return bs_fail(err, rc, "zb-auto: %s", ignored.message);
    if (rc)
        return 0; /* a candidate the engine cannot finish is not kept */
    *makespan = *span = 0;
    for (int j = 0; j < z->p; j++) {
        size_t a = t->device_first[j], b = t->device_first[j + 1];
        *makespan = fmax(*makespan, s->tl.times[b - 1].end);
        *span = fmax(*span, s->tl.times[b - 1].end - s->tl.times[a].start);
    }
    return 1;
}

/* Keeps the candidate in z->ops if it is the best so far: among candidates
 * no slower (makespan) than the best fixed-family order, the one with the
 * smallest longest span (the paper's cost), then the smallest makespan. */
static int consider(search *s, bs_error *err)
{
    double makespan, span;
    int ok = time_candidate(s, &makespan, &span, err);
    if (ok <= 0)
        return ok;
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
    memcpy(s->best, s->trial.ops, s->trial.op_count * sizeof *s->trial.ops);
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
        if ((rc = time_candidate(&s, &makespan, &span, err)) < 0)
            goto error;
        if (rc == 1 && makespan < s.family_makespan)
            s.family_makespan = makespan;
    }
    rc = BS_OK;
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
        const bs_op *ops = s.best + s.trial.device_first[j];
        size_t n = s.trial.device_first[j + 1] - s.trial.device_first[j];
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
