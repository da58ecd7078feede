/*
 * metrics.c - what a timeline means: time, bubble, memory, messages.
 *
 * Definitions (docs/metrics.md has the long form):
 *   makespan            last op end (the run starts at 0);
 *   busy, idle          per device: time inside ops; makespan - busy;
 *   bubble_ratio        idle over total: idle / (P * makespan);
 *   bubble_over_ideal   idle over ideal: idle / busy (Megatron's measure);
 *   span_bubble_ratio   1 - busy / (P * longest device span), a span being a
 *                       device's first op start to its last op end; it
 *                       leaves out the fill skew (zero-bubble papers' measure);
 *   iteration_time      makespan with one iteration; with several, the mean
 *                       gap between consecutive iteration ends (the steady
 *                       state of a schedule that does not flush).
 *
 * Memory is computed by walking each device's ops in order, which on an
 * in-order device is also time order. Activations are counted in chunks (a
 * forward adds one, a backward frees it) and reported in micro-batch units
 * of a whole device stage, i.e. divided by V. Weight versions: each forward
 * records the version it used; a version stays alive while an in-flight
 * micro-batch refers to it, and the current version is always alive. An
 * update happens at each optimizer op, or after every backward when the
 * program says so (asynchronous PipeDream). Staleness of a micro-batch is
 * the number of updates between its forward and its backward.
 *
 * Only the timeline and the program are read, so a measured timeline
 * (gpu/) is measured with exactly the same code.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* In programs that split the backward, the input gradient frees a chunk's
 * activation but for memory.kept_fraction of it, freed at the weight
 * gradient. An overlapped pair (BS_OP_OVERLAP_NEXT) shares one interval,
 * which counts once as busy time. */

typedef struct walk_scratch {
    uint32_t *version_of_pair; /* [stages * microbatches] */
    uint32_t *refs;            /* [updates + 1] per device */
} walk_scratch;

static void walk_device(bs_device_result *dr, const bs_program *prog, int d, walk_scratch *w,
                        double kept)
{
    int forward_only = (prog->flags & BS_PROGRAM_FORWARD_ONLY) != 0;
    int per_backward = (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD) != 0;
    double live = 0, peak = 0;
    uint32_t current = 0, distinct = 0, live_versions = 1, peak_versions = 1, stale = 0;
    uint32_t max_updates = 0;
    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++)
        max_updates += prog->ops[i].kind == BS_OP_OPTIMIZER ||
                       (per_backward && (prog->ops[i].kind == BS_OP_BACKWARD ||
                                         prog->ops[i].kind == BS_OP_WEIGHT_GRAD));
    memset(w->refs, 0, ((size_t)max_updates + 1) * sizeof *w->refs);

    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
        const bs_op *op = &prog->ops[i];
        size_t pair = bs_pair(prog, op->stage, op->microbatch);
        int release = 0;
        switch (op->kind) {
        case BS_OP_FORWARD:
            if (forward_only)
                break;
            live += 1;
            w->version_of_pair[pair] = current;
            if (w->refs[current]++ == 0)
                distinct++;
            break;
        case BS_OP_BACKWARD:
            live -= 1;
            release = 1;
            break;
        case BS_OP_INPUT_GRAD:
            live -= 1.0 - kept;
            break;
        case BS_OP_WEIGHT_GRAD:
            live -= kept;
            release = 1;
            break;
        case BS_OP_OPTIMIZER:
            current++;
            break;
        }
        if (release) {
            uint32_t v = w->version_of_pair[pair];
            if (current - v > stale)
                stale = current - v;
            if (--w->refs[v] == 0)
                distinct--;
            if (per_backward)
                current++;
        }
        if (live > peak)
            peak = live;
        live_versions = distinct + (w->refs[current] == 0 ? 1 : 0);
        if (live_versions > peak_versions)
            peak_versions = live_versions;
    }
    dr->peak_activations = peak / prog->chunks_per_device;
    dr->weight_versions = (int)peak_versions;
    dr->max_staleness = (int)stale;
}

static void count_messages(bs_device_result *dr, const bs_program *prog, int d)
{
    uint64_t sent = 0;
    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
        const bs_op *op = &prog->ops[i];
        if (op->kind == BS_OP_FORWARD && op->stage + 1 < prog->stages)
            sent += prog->stage_device[op->stage + 1] != d;
        else if ((op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) && op->stage > 0)
            sent += prog->stage_device[op->stage - 1] != d;
    }
    dr->messages_sent = sent;
}

static uint32_t iteration_of(const bs_program *prog, const bs_op *op)
{
    return op->kind == BS_OP_OPTIMIZER ? op->microbatch : op->microbatch / prog->per_iteration;
}

int bs_metrics_compute(bs_result *res, const bs_timeline *tl, const bs_config *cfg, bs_error *err)
{
    const bs_program *prog = tl->program;
    int p = prog->devices, rc = BS_OK;
    uint32_t iterations = (uint32_t)cfg->iterations;
    walk_scratch w = {0};
    double *iter_end = NULL, *formula_peak = NULL;
    size_t longest_list = 0;
    for (int d = 0; d < p; d++)
        if (prog->device_first[d + 1] - prog->device_first[d] > longest_list)
            longest_list = prog->device_first[d + 1] - prog->device_first[d];

    if (bs_realloc_array((void **)&res->device, (size_t)p, sizeof *res->device) ||
        !(w.version_of_pair =
              bs_alloc_array((size_t)prog->stages * prog->microbatches, sizeof(uint32_t))) ||
        !(w.refs = bs_alloc_array(longest_list + 1, sizeof(uint32_t))) ||
        !(iter_end = bs_zalloc_array(iterations, sizeof *iter_end)) ||
        !(formula_peak = bs_alloc_array((size_t)p, sizeof *formula_peak))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory computing metrics");
        goto error;
    }
    snprintf(res->schedule, sizeof res->schedule, "%s", cfg->schedule);
    res->stages = cfg->stages;
    res->microbatches = cfg->microbatches;
    res->virtual_stages = cfg->virtual_stages;
    res->iterations = cfg->iterations;
    res->devices = p;
    res->timeline = tl;

    double makespan = 0, busy_total = 0, longest_span = 0;
    for (int d = 0; d < p; d++) {
        bs_device_result *dr = &res->device[d];
        memset(dr, 0, sizeof *dr);
        size_t first = prog->device_first[d], last = prog->device_first[d + 1];
        for (size_t i = first; i < last; i++) {
            if (!(prog->ops[i].reserved & BS_OP_OVERLAP_NEXT))
                dr->busy += tl->end[i] - tl->start[i];
            if (tl->end[i] > makespan)
                makespan = tl->end[i];
            uint32_t it = iteration_of(prog, &prog->ops[i]);
            if (it < iterations && tl->end[i] > iter_end[it])
                iter_end[it] = tl->end[i];
        }
        dr->span = last > first ? tl->end[last - 1] - tl->start[first] : 0;
        if (dr->span > longest_span)
            longest_span = dr->span;
        busy_total += dr->busy;
        walk_device(dr, prog, d, &w, cfg->kept_fraction);
        count_messages(dr, prog, d);
        dr->peak_activation_bytes = dr->peak_activations * cfg->activation_bytes;
        dr->weight_version_bytes = dr->weight_versions * cfg->weight_bytes;
        dr->message_bytes_sent = (double)dr->messages_sent * cfg->message_bytes;
    }
    res->makespan = makespan;
    res->busy = busy_total;
    res->idle = p * makespan - busy_total;
    res->bubble_ratio = makespan > 0 ? res->idle / (p * makespan) : 0;
    res->bubble_over_ideal = busy_total > 0 ? res->idle / busy_total : 0;
    res->span_bubble_ratio = longest_span > 0 ? 1.0 - busy_total / (p * longest_span) : 0;
    res->iteration_time =
        iterations > 1 ? (iter_end[iterations - 1] - iter_end[0]) / (iterations - 1) : makespan;
    res->messages = 0;
    res->peak_activations = 0;
    res->weight_versions = 0;
    res->max_staleness = 0;
    bs_formula_compute(&res->formula, formula_peak, cfg);
    for (int d = 0; d < p; d++) {
        bs_device_result *dr = &res->device[d];
        dr->idle = makespan - dr->busy;
        dr->bubble_ratio = makespan > 0 ? dr->idle / makespan : 0;
        dr->span_bubble_ratio = dr->span > 0 ? 1.0 - dr->busy / dr->span : 0;
        dr->formula_peak_activations = res->formula.valid ? formula_peak[d] : NAN;
        res->messages += dr->messages_sent;
        if (dr->peak_activations > res->peak_activations)
            res->peak_activations = dr->peak_activations;
        if (dr->weight_versions > res->weight_versions)
            res->weight_versions = dr->weight_versions;
        if (dr->max_staleness > res->max_staleness)
            res->max_staleness = dr->max_staleness;
    }
    res->peak_activation_bytes = res->peak_activations * cfg->activation_bytes;
    res->message_bytes = (double)res->messages * cfg->message_bytes;
    if (res->messages != tl->messages_sent)
        rc = bs_fail(err, BS_ERR_INTERNAL,
                     "message count mismatch: timeline sent %llu, program implies %llu",
                     (unsigned long long)tl->messages_sent, (unsigned long long)res->messages);
error:
    bs_free(w.version_of_pair);
    bs_free(w.refs);
    bs_free(iter_end);
    bs_free(formula_peak);
    return rc;
}

void bs_result_free(bs_result *res)
{
    bs_free(res->device);
    memset(res, 0, sizeof *res);
}
