/*
 * calibrate.c - costs, message latency and per-op overhead from a measured
 * trace, written as a config that the simulator runs.
 *
 * The model this fits (docs/validation.md, "PyTorch runtime"):
 *  - an op of chunk s and kind k lasts its measured duration (the mean
 *    within a step, the median over steps);
 *  - before every op the runtime spends some time of its own (posting sends
 *    and receives, Python, the step's preamble before a rank's first op);
 *    with no config key for it, that gap (per chunk and kind, waits left
 *    out, averaged the same way) is added to the start of the op's cost,
 *    so the op ends where it did;
 *  - a message leaves when its producer ends (PyTorch posts the send right
 *    after the op) and arrives `latency` later; the consumer then spends
 *    its own gap before computing. Latency is the median over the receives
 *    that really blocked, the only ones that show it.
 */
#include "bubblesim_measure.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A receive counts as blocked (and so shows the message delay) when the
 * consumer waited at least this long, in ms. */
#define BLOCKED_MS 0.02
/* The smallest forward cost the config accepts is > 0. */
#define MIN_COST 1e-6

enum { KINDS = 4 };

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

/* Appends x, growing the array by doubling; BS_ERR_NOMEM on failure. */
static int push(samples *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        if (bs_realloc_array((void **)&s->v, cap, sizeof *s->v) < 0)
            return BS_ERR_NOMEM;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return BS_OK;
}

/* Contract in bubblesim_measure.h. */
void bs_calibration_free(bs_calibration **cal)
{
    if (!cal || !*cal)
        return;
    bs_calibration *c = *cal;
    bs_free(c->placement);
    bs_free(c->forward);
    bs_free(c->backward);
    bs_free(c->weight);
    bs_free(c->forward_op);
    bs_free(c->backward_op);
    bs_free(c->weight_op);
    free(c);
    *cal = NULL;
}

/* Index of the op (stage, mb, kind) within a step, SIZE_MAX when absent. */
static size_t *op_index(const bs_trace *tr)
{
    size_t cells = (size_t)tr->stages * (size_t)tr->microbatches * KINDS;
    size_t *idx = bs_alloc_array(cells, sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < cells; i++)
        idx[i] = SIZE_MAX;
    for (size_t i = 0; i < tr->ops_per_step; i++) {
        const bs_trace_op *op = &tr->ops[i];
        idx[((size_t)op->stage * (size_t)tr->microbatches + op->microbatch) * KINDS + op->kind] = i;
    }
    return idx;
}

/* The op (stage, mb, kind) of a step through op_index's table; SIZE_MAX when
 * the stage is out of range or the op did not run. */
static size_t lookup(const bs_trace *tr, const size_t *idx, int stage, uint32_t mb, int kind)
{
    if (stage < 0 || stage >= tr->stages)
        return SIZE_MAX;
    return idx[((size_t)stage * (size_t)tr->microbatches + mb) * KINDS + (size_t)kind];
}

/* The op whose output op i consumes from another chunk: F(s-1) for F(s);
 * the backward (B or I) of s+1 for B or I of s. SIZE_MAX for none. */
static size_t producer_of(const bs_trace *tr, const size_t *idx, const bs_trace_op *op)
{
    if (op->kind == BS_OP_FORWARD)
        return lookup(tr, idx, op->stage - 1, op->microbatch, BS_OP_FORWARD);
    if (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) {
        size_t p = lookup(tr, idx, op->stage + 1, op->microbatch, BS_OP_INPUT_GRAD);
        return p != SIZE_MAX ? p : lookup(tr, idx, op->stage + 1, op->microbatch, BS_OP_BACKWARD);
    }
    return SIZE_MAX;
}

/* Contract in bubblesim_measure.h. */
int bs_calibrate(bs_calibration **out, const bs_trace *tr, bs_error *err)
{
    int rc = BS_OK;
    bs_calibration *c = NULL;
    size_t *idx = NULL;
    size_t cells = (size_t)tr->stages * KINDS;
    samples *dur = NULL, *gap = NULL, all_gaps = {0}, lat = {0};
    double *cost = NULL, *dur_med = NULL, *sums = NULL;
    size_t *counts = NULL;
    *out = NULL;
    if (tr->stages % tr->ranks != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "the trace has %d stages on %d ranks; the simulator needs the same "
                       "number of chunks on every rank",
                       tr->stages, tr->ranks);
    c = calloc(1, sizeof *c);
    dur = calloc(cells, sizeof *dur);
    gap = calloc(cells, sizeof *gap);
    cost = bs_alloc_array(cells, sizeof *cost);
    dur_med = bs_alloc_array(cells, sizeof *dur_med);
    sums = bs_alloc_array(2 * cells, sizeof *sums);
    counts = bs_alloc_array(2 * cells, sizeof *counts);
    idx = op_index(tr);
    if (!c || !dur || !gap || !cost || !dur_med || !sums || !counts || !idx)
        goto nomem;
    c->trace = tr;
    c->ranks = tr->ranks;
    c->stages = tr->stages;
    c->microbatches = tr->microbatches;
    c->virtual_stages = tr->stages / tr->ranks;
    c->placement = bs_alloc_array((size_t)tr->stages, sizeof *c->placement);
    c->forward = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    c->backward = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    c->weight = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    c->forward_op = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    c->backward_op = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    c->weight_op = bs_zalloc_array((size_t)tr->stages, sizeof(double));
    if (!c->placement || !c->forward || !c->backward || !c->weight || !c->forward_op ||
        !c->backward_op || !c->weight_op)
        goto nomem;
    memcpy(c->placement, tr->placement, (size_t)tr->stages * sizeof *c->placement);

    /* Durations and the gaps before each op on its rank: the mean of each
     * chunk and kind within a step, then the median of those over the
     * steps. The mean keeps a step's slow ops (preemption on a busy host
     * lands on some of them), which add to the makespan; the median over
     * steps drops a step that was slow throughout. */
    for (int st = 0; st < tr->steps; st++) {
        const bs_trace_op *ops = tr->ops + (size_t)st * tr->ops_per_step;
        const double *rank_start = tr->rank_start + (size_t)st * (size_t)tr->ranks;
        double all_sum = 0.0;
        size_t all_n = 0;
        for (size_t k = 0; k < 2 * cells; k++)
            sums[k] = 0.0, counts[k] = 0;
        for (int r = 0; r < tr->ranks; r++) {
            for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
                size_t cell = (size_t)ops[i].stage * KINDS + ops[i].kind;
                double prev_end = i == tr->rank_first[r] ? rank_start[r] : ops[i - 1].end;
                double g = ops[i].start - prev_end - ops[i].wait_before;
                sums[cell] += ops[i].end - ops[i].start;
                counts[cell]++;
                sums[cells + cell] += g;
                counts[cells + cell]++;
                all_sum += g;
                all_n++;
            }
        }
        for (size_t k = 0; k < cells; k++) {
            if ((counts[k] && push(&dur[k], sums[k] / (double)counts[k]) < 0) ||
                (counts[cells + k] &&
                 push(&gap[k], sums[cells + k] / (double)counts[cells + k]) < 0))
                goto nomem;
        }
        if (all_n && push(&all_gaps, all_sum / (double)all_n) < 0)
            goto nomem;
        c->gap_samples += all_n;
    }
    c->overhead = all_gaps.n ? fmax(0.0, bs_median(all_gaps.v, all_gaps.n)) : 0.0;
    for (size_t k = 0; k < cells; k++) {
        dur_med[k] = dur[k].n ? bs_median(dur[k].v, dur[k].n) : 0.0;
        double g = gap[k].n ? fmax(0.0, bs_median(gap[k].v, gap[k].n)) : c->overhead;
        cost[k] = dur[k].n ? dur_med[k] + g : 0.0;
    }

    /* Message delay: consumer start - its folded overhead - producer end,
     * over receives from another rank that blocked (the consumer waited and
     * the producer finished after the consumer's previous op). */
    for (int st = 0; st < tr->steps; st++) {
        const bs_trace_op *ops = tr->ops + (size_t)st * tr->ops_per_step;
        const double *rank_start = tr->rank_start + (size_t)st * (size_t)tr->ranks;
        for (int r = 0; r < tr->ranks; r++) {
            for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
                size_t p = producer_of(tr, idx, &ops[i]);
                if (p == SIZE_MAX || tr->placement[ops[p].stage] == r)
                    continue;
                double prev_end = i == tr->rank_first[r] ? rank_start[r] : ops[i - 1].end;
                if (ops[i].wait_before <= BLOCKED_MS || ops[p].end <= prev_end)
                    continue;
                size_t cell = (size_t)ops[i].stage * KINDS + ops[i].kind;
                double folded = cost[cell] - dur_med[cell];
                if (push(&lat, ops[i].start - folded - ops[p].end) < 0)
                    goto nomem;
            }
        }
    }
    c->latency_samples = lat.n;
    c->latency = lat.n ? fmax(0.0, bs_median(lat.v, lat.n)) : 0.0;

    for (int s = 0; s < tr->stages; s++) {
        const size_t base = (size_t)s * KINDS;
        if (!dur[base + BS_OP_FORWARD].n) {
            rc = bs_fail(err, BS_ERR_INVALID, "stage %d ran no forward in the trace", s);
            goto error;
        }
        c->forward[s] = fmax(MIN_COST, cost[base + BS_OP_FORWARD]);
        c->forward_op[s] = dur_med[base + BS_OP_FORWARD];
        if (dur[base + BS_OP_INPUT_GRAD].n) {
            /* Split backward: I and W (a full B here, if any, is predicted
             * as I + W). */
            c->backward[s] = cost[base + BS_OP_INPUT_GRAD];
            c->weight[s] = cost[base + BS_OP_WEIGHT_GRAD];
            c->backward_op[s] = dur_med[base + BS_OP_INPUT_GRAD];
            c->weight_op[s] = dur_med[base + BS_OP_WEIGHT_GRAD];
        } else {
            c->backward[s] = cost[base + BS_OP_BACKWARD];
            c->backward_op[s] = dur_med[base + BS_OP_BACKWARD];
        }
    }
    goto done;
nomem:
    rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
error:
    bs_calibration_free(&c);
done:
    for (size_t k = 0; dur && k < cells; k++)
        bs_free(dur[k].v);
    for (size_t k = 0; gap && k < cells; k++)
        bs_free(gap[k].v);
    free(dur);
    free(gap);
    bs_free(all_gaps.v);
    bs_free(lat.v);
    bs_free(cost);
    bs_free(dur_med);
    bs_free(sums);
    bs_free(counts);
    bs_free(idx);
    *out = c;
    return rc;
}

/* A JSON array of v[0..n), each rounded to 1 ns; NULL when out of memory. */
static cJSON *number_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        /* Round to 1 ns: the config is for people too. */
        cJSON *x = cJSON_CreateNumber(round(v[i] * 1e6) / 1e6);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* Contract in bubblesim_measure.h. */
int bs_calibration_write_config(FILE *out, const bs_calibration *cal, bs_error *err)
{
    static const char letter[] = {'F', 'B', 'I', 'W'};
    const bs_trace *tr = cal->trace;
    int rc = BS_OK;
    char *text = NULL;
    /* Every part is attached to root as soon as it exists, so one delete
     * frees whatever was built when an allocation fails. */
    cJSON *root = cJSON_CreateObject();
    if (!root || !cJSON_AddStringToObject(root, "schedule", "custom") ||
        !cJSON_AddNumberToObject(root, "stages", cal->ranks) ||
        !cJSON_AddNumberToObject(root, "microbatches", cal->microbatches) ||
        !cJSON_AddNumberToObject(root, "virtual_stages", cal->virtual_stages))
        goto nomem;
    cJSON *placement = cJSON_AddArrayToObject(root, "placement");
    if (!placement)
        goto nomem;
    for (int s = 0; s < cal->stages; s++) {
        cJSON *x = cJSON_CreateNumber(cal->placement[s]);
        if (!x || !cJSON_AddItemToArray(placement, x)) {
            cJSON_Delete(x);
            goto nomem;
        }
    }
    cJSON *order = cJSON_AddArrayToObject(root, "order");
    if (!order)
        goto nomem;
    for (int r = 0; r < tr->ranks; r++) {
        cJSON *row = cJSON_CreateArray();
        if (!row || !cJSON_AddItemToArray(order, row)) {
            cJSON_Delete(row);
            goto nomem;
        }
        for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%u%c%u", (unsigned)tr->ops[i].stage, letter[tr->ops[i].kind],
                     (unsigned)tr->ops[i].microbatch);
            cJSON *x = cJSON_CreateString(buf);
            if (!x || !cJSON_AddItemToArray(row, x)) {
                cJSON_Delete(x);
                goto nomem;
            }
        }
    }
    cJSON *costs = cJSON_AddObjectToObject(root, "costs");
    if (!costs)
        goto nomem;
    const char *names[] = {"forward", "backward", "weight"};
    const double *values[] = {cal->forward, cal->backward, cal->weight};
    for (int k = 0; k < 3; k++) {
        cJSON *a = number_array(values[k], cal->stages);
        if (!a || !cJSON_AddItemToObject(costs, names[k], a)) {
            cJSON_Delete(a);
            goto nomem;
        }
    }
    cJSON *network = cJSON_AddObjectToObject(root, "network");
    if (!cJSON_AddNumberToObject(costs, "optimizer", 0) || !network ||
        !cJSON_AddNumberToObject(network, "latency", round(cal->latency * 1e6) / 1e6) ||
        !cJSON_AddNumberToObject(network, "bandwidth", 0) ||
        !cJSON_AddNumberToObject(network, "message_bytes", 0))
        goto nomem;
    text = cJSON_Print(root);
    if (!text)
        goto nomem;
    if (fputs(text, out) == EOF || fputc('\n', out) == EOF || ferror(out))
        rc = bs_fail(err, BS_ERR_IO, "write error");
    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
nomem:
    cJSON_Delete(root);
    return bs_fail(err, BS_ERR_NOMEM, "out of memory");
}
