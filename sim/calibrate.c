/*
 * calibrate.c - costs, message latency and per-op overhead from a measured
 * trace, written as a config that the simulator runs.
 *
 * The model this fits (docs/validation.md, "PyTorch runtime"):
 *  - an op of chunk s and kind k lasts its measured duration, the mean
 *    over every such op of every step;
 *  - before every op the runtime spends some time of its own (posting sends
 *    and receives, Python, the step's preamble before a rank's first op);
 *    with no config key for it, that gap (per chunk and kind, waits left
 *    out, averaged the same way) is added to the start of the op's cost,
 *    so the op ends where it did;
 *  - a message leaves when its producer ends (PyTorch posts the send right
 *    after the op) and arrives `latency` later; the consumer then spends
 *    its own gap before computing. Latency is the one value that starts
 *    the consumers of every receive from another rank on time on average
 *    (fit_latency).
 */
#include "bubblesim_measure.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The receives from another rank, one entry each in three parallel arrays:
 * when the consumer's rank was free (its previous op's end), when the
 * producer ended, and when the consumer began less its folded overhead. */
typedef struct receives {
    samples ready, sent, due;
} receives;

/* qsort order of breakpoints, ascending. */
static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The latency L >= 0 at which the model, given what happened before each
 * receive, starts the consumers on time on average:
 *
 *     sum over receives i of  max(ready_i, sent_i + L) - due_i  =  0.
 *
 * The sum grows with L and is piecewise linear: receive i waits for its
 * message (and adds slope 1) once L passes ready_i - sent_i. So the
 * breakpoints are sorted and swept until the line through the current
 * segment reaches 0. Every receive counts, not only those that blocked: a
 * rule that keeps only the blocked ones keeps only the late messages (and a
 * rule that also needs the producer to end after the consumer was free
 * drops the latest ones of all). L is 0 without receives, or when the model
 * is already late without any delay. BS_ERR_NOMEM or BS_OK. */
static int fit_latency(const receives *rc, double *latency)
{
    size_t n = rc->due.n;
    *latency = 0.0;
    if (n == 0)
        return BS_OK;
    double *knee = bs_alloc_array(n, sizeof *knee);
    if (!knee)
        return BS_ERR_NOMEM;
    /* At L = 0: the sum with every receive that already waits (knee < 0)
     * on its message and the rest on their rank. */
    double level = 0.0;
    size_t waiting = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double k = rc->ready.v[i] - rc->sent.v[i];
        if (k < 0) {
            level += rc->sent.v[i] - rc->due.v[i];
            waiting++;
        } else {
            level += rc->ready.v[i] - rc->due.v[i];
            knee[m++] = k;
        }
    }
    /* level is now the sum at L = 0 less waiting * L, i.e. its intercept. */
    qsort(knee, m, sizeof *knee, by_value);
    double at = 0.0;
    size_t j = 0;
    for (;;) {
        double next = j < m ? knee[j] : INFINITY;
        if (level + (double)waiting * at >= 0.0)
            break; /* already on time at `at` (only when at == 0) */
        if (waiting > 0) {
            double root = -level / (double)waiting;
            if (root <= next) {
                at = root;
                break;
            }
        }
        if (j == m)
            break; /* unreachable: past the last knee every receive waits */
        /* Receive with this knee starts waiting on its message: its term
         * turns from ready_i - due_i into sent_i + L - due_i, equal here. */
        level -= knee[j];
        waiting++;
        at = knee[j++];
    }
    *latency = fmax(0.0, at);
    bs_free(knee);
    return BS_OK;
}

/* Contract in bubblesim_measure.h. */
int bs_calibrate(bs_calibration **out, const bs_trace *tr, bs_error *err)
{
    int rc = BS_OK;
    bs_calibration *c = NULL;
    size_t *producer = NULL;
    size_t cells = (size_t)tr->stages * KINDS;
    receives recv = {{0}, {0}, {0}};
    double *cost = NULL, *dur_mean = NULL, *sums = NULL;
    size_t *counts = NULL;
    *out = NULL;
    if (tr->stages % tr->ranks != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "the trace has %d stages on %d ranks; the simulator needs the same "
                       "number of chunks on every rank",
                       tr->stages, tr->ranks);
    c = calloc(1, sizeof *c);
    cost = bs_alloc_array(cells, sizeof *cost);
    dur_mean = bs_alloc_array(cells, sizeof *dur_mean);
    sums = bs_alloc_array(2 * cells, sizeof *sums);
    counts = bs_alloc_array(2 * cells, sizeof *counts);
    producer = bs_trace_producers(tr);
    if (!c || !cost || !dur_mean || !sums || !counts || !producer)
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
     * chunk and kind over every step. Means, not medians: the model runs one
     * fixed path through the ops, and the expected length of a fixed path
     * is the sum of its ops' expected costs, so an op that is slow now and
     * then (preemption, a late wake-up) must add its share to every op of
     * its kind. A median would drop those, and every prediction would come
     * out short (docs/validation.md, "PyTorch runtime"). */
    for (size_t k = 0; k < 2 * cells; k++)
        sums[k] = 0.0, counts[k] = 0;
    double all_sum = 0.0;
    for (int st = 0; st < tr->steps; st++) {
        const bs_trace_op *ops = tr->ops + (size_t)st * tr->ops_per_step;
        for (int r = 0; r < tr->ranks; r++) {
            for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
                size_t cell = (size_t)ops[i].stage * KINDS + ops[i].kind;
                double g = bs_trace_gap(tr, (size_t)st, i);
                sums[cell] += ops[i].end - ops[i].start;
                counts[cell]++;
                sums[cells + cell] += g;
                counts[cells + cell]++;
                all_sum += g;
                c->gap_samples++;
            }
        }
    }
    c->overhead = c->gap_samples ? fmax(0.0, all_sum / (double)c->gap_samples) : 0.0;
    for (size_t k = 0; k < cells; k++) {
        dur_mean[k] = counts[k] ? sums[k] / (double)counts[k] : 0.0;
        double g = counts[cells + k] ? fmax(0.0, sums[cells + k] / (double)counts[cells + k])
                                     : c->overhead;
        cost[k] = counts[k] ? dur_mean[k] + g : 0.0;
    }

    /* Message delay: the one latency L with which the model, started from
     * what really happened before each receive from another rank, puts the
     * consumers' starts right on average (fit_latency). */
    for (int st = 0; st < tr->steps; st++) {
        const bs_trace_op *ops = tr->ops + (size_t)st * tr->ops_per_step;
        const double *rank_start = tr->rank_start + (size_t)st * (size_t)tr->ranks;
        for (int r = 0; r < tr->ranks; r++) {
            for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
                size_t p = producer[i];
                if (p == SIZE_MAX || tr->placement[ops[p].stage] == r)
                    continue;
                double prev_end = i == tr->rank_first[r] ? rank_start[r] : ops[i - 1].end;
                size_t cell = (size_t)ops[i].stage * KINDS + ops[i].kind;
                double folded = cost[cell] - dur_mean[cell];
                if (push(&recv.ready, prev_end) < 0 || push(&recv.sent, ops[p].end) < 0 ||
                    push(&recv.due, ops[i].start - folded) < 0)
                    goto nomem;
            }
        }
    }
    c->latency_samples = recv.due.n;
    if ((rc = fit_latency(&recv, &c->latency)) < 0)
        goto nomem;

    for (int s = 0; s < tr->stages; s++) {
        const size_t base = (size_t)s * KINDS;
        if (!counts[base + BS_OP_FORWARD]) {
            rc = bs_fail(err, BS_ERR_INVALID, "stage %d ran no forward in the trace", s);
            goto error;
        }
        c->forward[s] = fmax(MIN_COST, cost[base + BS_OP_FORWARD]);
        c->forward_op[s] = dur_mean[base + BS_OP_FORWARD];
        if (counts[base + BS_OP_INPUT_GRAD]) {
            /* Split backward: I and W (a full B here, if any, is predicted
             * as I + W). */
            c->backward[s] = cost[base + BS_OP_INPUT_GRAD];
            c->weight[s] = cost[base + BS_OP_WEIGHT_GRAD];
            c->backward_op[s] = dur_mean[base + BS_OP_INPUT_GRAD];
            c->weight_op[s] = dur_mean[base + BS_OP_WEIGHT_GRAD];
        } else {
            c->backward[s] = cost[base + BS_OP_BACKWARD];
            c->backward_op[s] = dur_mean[base + BS_OP_BACKWARD];
        }
    }
    goto done;
nomem:
    rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
error:
    bs_calibration_free(&c);
done:
    bs_free(recv.ready.v);
    bs_free(recv.sent.v);
    bs_free(recv.due.v);
    bs_free(cost);
    bs_free(dur_mean);
    bs_free(sums);
    bs_free(counts);
    bs_free(producer);
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
            snprintf(buf, sizeof buf, "%u%c%u", (unsigned)tr->ops[i].stage,
                     bs_op_letter(tr->ops[i].kind), (unsigned)tr->ops[i].microbatch);
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
