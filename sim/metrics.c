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
 * which counts once as busy time.
 *
 * Speed. Everything per device is computed in one sequential pass over its
 * ops and their times. The weight version a micro-batch's forward used is
 * kept per device, indexed by (micro-batch, the chunk's rank among the
 * device's chunks), so that the pass touches memory in order instead of
 * striding through an array of all (stage, micro-batch) pairs. The buffers
 * live in the result and are reused by the next compute. */

struct bs_metrics_scratch {
    uint32_t *version; /* [largest device's chunks * microbatches] */
    size_t version_capacity;
    uint32_t *refs; /* [longest op list + 1]: in-flight users of each version */
    size_t refs_capacity;
    uint32_t *stage_rank; /* [stages]: rank of the chunk among its device's chunks */
    size_t stage_capacity;
    uint32_t *device_chunks; /* [devices] */
    double *iter_end;        /* [iterations] */
    double *formula_peak;    /* [devices] */
    size_t device_capacity, iter_capacity;
};

static int grow(void **p, size_t *capacity, size_t count, size_t size)
{
    if (count <= *capacity)
        return 0;
    if (bs_realloc_array(p, count, size))
        return -1;
    *capacity = count;
    return 0;
}

static int scratch_reserve(bs_result *res, const bs_program *prog, size_t iterations)
{
    struct bs_metrics_scratch *w = res->scratch;
    if (!w && !(w = res->scratch = bs_zalloc_array(1, sizeof *w)))
        return -1;
    size_t p = (size_t)prog->devices, longest = 0, most_chunks = 0, stages = (size_t)prog->stages;
    for (size_t d = 0; d < p; d++)
        if (prog->device_first[d + 1] - prog->device_first[d] > longest)
            longest = prog->device_first[d + 1] - prog->device_first[d];
    size_t old_devices = w->device_capacity;
    if (grow((void **)&w->stage_rank, &w->stage_capacity, stages, sizeof *w->stage_rank) ||
        grow((void **)&w->refs, &w->refs_capacity, longest + 1, sizeof *w->refs))
        return -1;
    if (p > old_devices) {
        if (bs_realloc_array((void **)&w->device_chunks, p, sizeof *w->device_chunks) ||
            bs_realloc_array((void **)&w->formula_peak, p, sizeof *w->formula_peak))
            return -1;
        w->device_capacity = p;
    }
    if (grow((void **)&w->iter_end, &w->iter_capacity, iterations ? iterations : 1,
             sizeof *w->iter_end))
        return -1;
    memset(w->device_chunks, 0, p * sizeof *w->device_chunks);
    for (size_t s = 0; s < stages; s++) {
        uint32_t *count = &w->device_chunks[prog->stage_device[s]];
        w->stage_rank[s] = (*count)++;
        if (*count > most_chunks)
            most_chunks = *count;
    }
    return grow((void **)&w->version, &w->version_capacity,
                most_chunks * (size_t)prog->microbatches, sizeof *w->version);
}

/* One pass over device d's ops: busy time, span, iteration ends, makespan,
 * peak activations, weight versions, staleness and messages sent. */
static void walk_device(bs_device_result *dr, const bs_timeline *tl, int d,
                        struct bs_metrics_scratch *w, uint32_t iterations, double kept,
                        const double *chunk_bytes, double *makespan)
{
    const bs_program *prog = tl->program;
    int forward_only = (prog->flags & BS_PROGRAM_FORWARD_ONLY) != 0;
    int per_backward = (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD) != 0;
    size_t first = prog->device_first[d], last = prog->device_first[d + 1];
    size_t chunks = w->device_chunks[d];
    const uint16_t *stage_device = prog->stage_device;
    unsigned last_stage = (unsigned)prog->stages - 1;
    /* Decode: the last stage sends each token back to stage 0, but for the
     * items of the last token. */
    uint64_t loop_end = (prog->flags & BS_PROGRAM_DECODE_LOOP)
                            ? (uint64_t)prog->microbatches - prog->per_iteration
                            : 0;
    int loop_crosses = stage_device[0] != d;
    uint64_t sent_decode = 0; /* decode messages: the steps' outputs and the loop back */
    double live = 0, peak = 0, busy = 0, latest = *makespan;
    /* Bytes as well as chunk units when the model gives each chunk's own
     * activation bytes (embedding, logits): the peak of the sum over time,
     * not a mean chunk times the peak count. */
    double live_bytes = 0, peak_bytes = 0;
    uint32_t current = 0, distinct = 0, live_versions = 1, peak_versions = 1, stale = 0;
    uint64_t sent = 0;
    /* A version is referred to only after `current` reached it, and each
     * step of `current` clears the count of the version it enters. */
    w->refs[0] = 0;

    for (size_t i = first; i < last; i++) {
        const bs_op *op = &prog->ops[i];
        double start = tl->times[i].start, end = tl->times[i].end;
        if (!(op->reserved & BS_OP_OVERLAP_NEXT))
            busy += end - start;
        if (end > latest)
            latest = end;
        /* With one iteration every op belongs to iteration 0: no division. */
        uint32_t it = iterations == 1               ? 0
                      : op->kind == BS_OP_OPTIMIZER ? op->microbatch
                                                    : op->microbatch / prog->per_iteration;
        if (it < iterations && end > w->iter_end[it])
            w->iter_end[it] = end;

        size_t slot = (size_t)op->microbatch * chunks + w->stage_rank[op->stage];
        int release = 0;
        switch (op->kind) {
        case BS_OP_DECODE:
        case BS_OP_FORWARD:
            if (op->stage < last_stage) {
                int crosses = stage_device[op->stage + 1] != d;
                sent += crosses;
                sent_decode += op->kind == BS_OP_DECODE ? crosses : 0;
            } else if (op->microbatch < loop_end) {
                sent += loop_crosses;
                sent_decode += loop_crosses;
            }
            if (forward_only)
                break;
            live += 1;
            if (chunk_bytes)
                live_bytes += chunk_bytes[op->stage];
            w->version[slot] = current;
            if (w->refs[current]++ == 0)
                distinct++;
            break;
        case BS_OP_BACKWARD:
            if (op->stage > 0)
                sent += stage_device[op->stage - 1] != d;
            live -= 1;
            if (chunk_bytes)
                live_bytes -= chunk_bytes[op->stage];
            release = 1;
            break;
        case BS_OP_INPUT_GRAD:
            if (op->stage > 0)
                sent += stage_device[op->stage - 1] != d;
            live -= 1.0 - kept;
            if (chunk_bytes)
                live_bytes -= (1.0 - kept) * chunk_bytes[op->stage];
            break;
        case BS_OP_WEIGHT_GRAD:
            live -= kept;
            if (chunk_bytes)
                live_bytes -= kept * chunk_bytes[op->stage];
            release = 1;
            break;
        case BS_OP_OPTIMIZER:
            w->refs[++current] = 0;
            break;
        }
        if (release) {
            uint32_t v = w->version[slot];
            if (current - v > stale)
                stale = current - v;
            if (--w->refs[v] == 0)
                distinct--;
            if (per_backward)
                w->refs[++current] = 0;
        }
        if (live > peak)
            peak = live;
        if (live_bytes > peak_bytes)
            peak_bytes = live_bytes;
        live_versions = distinct + (w->refs[current] == 0 ? 1 : 0);
        if (live_versions > peak_versions)
            peak_versions = live_versions;
    }
    dr->busy = busy;
    dr->span = last > first ? tl->times[last - 1].end - tl->times[first].start : 0;
    dr->peak_activations = peak / prog->chunks_per_device;
    dr->peak_activation_bytes = peak_bytes;
    dr->weight_versions = (int)peak_versions;
    dr->max_staleness = (int)stale;
    dr->messages_sent = sent;
    dr->decode_messages_sent = sent_decode;
    *makespan = latest;
}

/* Whole-device memory of one device: the plan's static bytes, the peak of
 * its own activations, and a 16-bit copy of the weights per stashed
 * version beyond the current one (PipeDream's weight stashing). */
static void device_memory(bs_device_result *dr, const bs_device_static *st, double limit)
{
    bs_device_memory *m = &dr->memory;
    memset(m, 0, sizeof *m);
    m->weights = st->weights;
    m->gradients = st->gradients;
    m->optimizer = st->optimizer;
    m->activations = dr->peak_activation_bytes;
    m->stashed_weights = dr->weight_versions > 1 ? (dr->weight_versions - 1) * st->weights : 0;
    m->kv_cache = st->kv_cache;
    m->buffers = st->buffers;
    m->other = m->stashed_weights + m->kv_cache + m->buffers;
    m->total = m->weights + m->gradients + m->optimizer + m->activations + m->other;
    m->fits = limit > 0 ? m->total <= limit : -1;
}

int bs_metrics_compute(bs_result *res, const bs_timeline *tl, const bs_config *cfg, bs_error *err)
{
    const bs_program *prog = tl->program;
    int p = prog->devices, rc = BS_OK;
    uint32_t iterations = (uint32_t)cfg->iterations;

    if (bs_realloc_array((void **)&res->device, (size_t)p, sizeof *res->device) ||
        scratch_reserve(res, prog, iterations))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory computing metrics");
    struct bs_metrics_scratch *w = res->scratch;
    memset(w->iter_end, 0, (iterations ? iterations : 1) * sizeof *w->iter_end);
    snprintf(res->schedule, sizeof res->schedule, "%s", cfg->schedule);
    res->stages = cfg->stages;
    res->microbatches = cfg->microbatches;
    res->virtual_stages = cfg->virtual_stages;
    res->iterations = cfg->iterations;
    res->devices = p;
    res->timeline = tl;
    /* A memory plan made for another shape (a hand-edited config) is not
     * used: its chunks would not be the program's. */
    const bs_device_plan *mp = cfg->device_plan;
    if (mp && (mp->devices != p || mp->chunks != prog->stages))
        mp = NULL;
    const double *chunk_bytes =
        mp && !(prog->flags & BS_PROGRAM_FORWARD_ONLY) ? mp->chunk_activation : NULL;
    res->has_memory = mp != NULL;
    res->memory_limit = mp ? mp->limit : 0;
    res->peak_memory = 0;

    double makespan = 0, busy_total = 0, longest_span = 0;
    for (int d = 0; d < p; d++) {
        bs_device_result *dr = &res->device[d];
        memset(dr, 0, sizeof *dr);
        walk_device(dr, tl, d, w, iterations, cfg->kept_fraction, chunk_bytes, &makespan);
        if (dr->span > longest_span)
            longest_span = dr->span;
        busy_total += dr->busy;
        if (!chunk_bytes)
            dr->peak_activation_bytes = dr->peak_activations * cfg->activation_bytes;
        dr->weight_version_bytes = dr->weight_versions * cfg->weight_bytes;
        /* Decode messages carry one token per sequence (bubblesim.h). */
        double decode_bytes =
            cfg->decode_message_bytes > 0 ? cfg->decode_message_bytes : cfg->message_bytes;
        dr->message_bytes_sent =
            (double)(dr->messages_sent - dr->decode_messages_sent) * cfg->message_bytes +
            (double)dr->decode_messages_sent * decode_bytes;
        dr->kv_cache_bytes = cfg->kv_cache_bytes.count == (size_t)p ? cfg->kv_cache_bytes.v[d] : 0;
    }
    /* Gradient collectives end iterations (and the run) too; they are not
     * compute, so not busy time. */
    res->collectives = tl->collective_count;
    for (size_t k = 0; k < tl->collective_count; k++) {
        const bs_collective *c = &tl->collectives[k];
        if (c->end > makespan)
            makespan = c->end;
        if (c->iteration < iterations && c->end > w->iter_end[c->iteration])
            w->iter_end[c->iteration] = c->end;
        if (c->device < p)
            res->device[c->device].collective_time += c->end - c->start;
    }
    double *iter_end = w->iter_end;
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
    bs_formula_compute(&res->formula, w->formula_peak, cfg);
    bs_inference_compute(&res->inference, tl, cfg, makespan);
    for (int d = 0; d < p; d++) {
        bs_device_result *dr = &res->device[d];
        dr->idle = makespan - dr->busy;
        dr->bubble_ratio = makespan > 0 ? dr->idle / makespan : 0;
        dr->span_bubble_ratio = dr->span > 0 ? 1.0 - dr->busy / dr->span : 0;
        dr->formula_peak_activations = res->formula.valid ? w->formula_peak[d] : NAN;
        res->messages += dr->messages_sent;
        if (dr->peak_activations > res->peak_activations)
            res->peak_activations = dr->peak_activations;
        if (dr->weight_versions > res->weight_versions)
            res->weight_versions = dr->weight_versions;
        if (dr->max_staleness > res->max_staleness)
            res->max_staleness = dr->max_staleness;
    }
    res->peak_activation_bytes = res->peak_activations * cfg->activation_bytes;
    if (mp) {
        res->peak_activation_bytes = 0;
        for (int d = 0; d < p; d++) {
            device_memory(&res->device[d], &mp->device[d], mp->limit);
            if (res->device[d].peak_activation_bytes > res->peak_activation_bytes)
                res->peak_activation_bytes = res->device[d].peak_activation_bytes;
            if (res->device[d].memory.total > res->peak_memory)
                res->peak_memory = res->device[d].memory.total;
        }
    }
    res->message_bytes = 0;
    for (int d = 0; d < p; d++)
        res->message_bytes += res->device[d].message_bytes_sent;
    if (res->messages != tl->messages_sent)
        rc = bs_fail(err, BS_ERR_INTERNAL,
                     "message count mismatch: timeline sent %llu, program implies %llu",
                     (unsigned long long)tl->messages_sent, (unsigned long long)res->messages);
    return rc;
}

static void scratch_free(struct bs_metrics_scratch *w)
{
    if (!w)
        return;
    bs_free(w->version);
    bs_free(w->refs);
    bs_free(w->stage_rank);
    bs_free(w->device_chunks);
    bs_free(w->iter_end);
    bs_free(w->formula_peak);
    bs_free(w);
}

void bs_result_free(bs_result *res)
{
    bs_free(res->device);
    scratch_free(res->scratch);
    memset(res, 0, sizeof *res);
}
