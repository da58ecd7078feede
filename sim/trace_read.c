/*
 * trace_read.c - reads a measured run (the JSON that
 * tools/pytorch/run_schedule.py writes; docs/validation.md) into a bs_trace.
 *
 * The file is untrusted: every key is checked for type and range, sizes are
 * bounded before anything is allocated from them, and every error names the
 * file and the key path. Each action is parsed with PyTorch's own action
 * grammar (order_text.c): compute actions (F, B, I, W) become ops;
 * communication actions and waits (SEND_F, RECV_B, WAIT_SEND_F,
 * WAIT_SEND_B, WAIT_REDUCE_GRAD, ...) only add their blocked time to the
 * next op's wait_before. A WAIT_* action must never be read as a W op.
 */
#include "bubblesim_measure.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_FORMAT "bubblesim-pytorch-trace"
#define TRACE_VERSION 1
/* Timestamps beyond this many ms (about 11.6 days) are not a pipeline step. */
#define TIME_LIMIT 1e9

/* qsort order of doubles, ascending. */
static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Contract in internal.h. */
double bs_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* obj[key], case-sensitive; NULL when absent. */
static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* An integer key in [lo, hi]. */
static int read_int(const cJSON *obj, const char *key, int lo, int hi, int *out, const char *source,
                    bs_error *err)
{
    const cJSON *it = get(obj, key);
    if (!it)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: missing; expected an integer %d..%d", source,
                       key, lo, hi);
    double x = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || !isfinite(x) || x != floor(x) || x < lo || x > hi)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an integer %d..%d, got %s", source,
                       key, lo, hi,
                       cJSON_IsNumber(it) ? "a number out of range" : bs_json_kind(it));
    *out = (int)x;
    return BS_OK;
}

/* A time key of an action: a finite number within +-TIME_LIMIT ms. */
static int read_time(const cJSON *obj, const char *key, int required, double *out,
                     const char *source, const char *where, bs_error *err)
{
    const cJSON *it = get(obj, key);
    if (!it) {
        if (!required)
            return 0;
        return bs_fail(err, BS_ERR_INVALID, "%s: %s.%s: missing; expected a time in ms", source,
                       where, key);
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || fabs(it->valuedouble) > TIME_LIMIT)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s.%s: expected a finite time in ms (|t| <= 1e9), got %s", source,
                       where, key, cJSON_IsNumber(it) ? "a number out of range" : bs_json_kind(it));
    *out = it->valuedouble;
    return 1;
}

/* An optional string key into dst (empty when absent or null); too long or
 * not a string is BS_ERR_INVALID naming the key. */
static int copy_string(const cJSON *obj, const char *key, char *dst, size_t size,
                       const char *source, bs_error *err)
{
    const cJSON *it = get(obj, key);
    dst[0] = '\0';
    if (!it || cJSON_IsNull(it))
        return BS_OK;
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= size)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected a string of at most %zu bytes",
                       source, key, size - 1);
    memcpy(dst, it->valuestring, strlen(it->valuestring) + 1);
    return BS_OK;
}

/* Reads one rank's actions of one step into ops (room for `room`), returning
 * the op count in *count. */
static int read_rank(bs_trace *tr, const cJSON *actions, int rank, int step, bs_trace_op *ops,
                     size_t room, size_t *count, size_t *comms, double *earliest,
                     const char *source, bs_error *err)
{
    char where[96];
    size_t n = 0;
    double pending_wait = 0.0, last_end = -INFINITY;
    int index = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, actions)
    {
        snprintf(where, sizeof where, "steps[%d].ranks[%d].actions[%d]", step, rank, index);
        index++;
        if (!cJSON_IsObject(a))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an object, got %s", source, where,
                           bs_json_kind(a));
        const cJSON *name = get(a, "action");
        if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.action: expected a non-empty action string such as \"0F3\"",
                           source, where);
        const char *text = name->valuestring;
        size_t len = strlen(text);
        if (len > 64)
            return bs_fail(err, BS_ERR_INVALID, "%s: %s.action: longer than 64 bytes", source,
                           where);
        if (text[0] == '(')
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.action: \"%s\": overlapped actions (OVERLAP_F_B) are not "
                           "read yet",
                           source, where, text);
        bs_action act;
        const char *why = bs_action_parse(text, len, &act);
        if (why)
            return bs_fail(err, BS_ERR_INVALID, "%s: %s.action: \"%s\": %s", source, where, text,
                           why);
        double start, end, wait = 0.0;
        int rc;
        if ((rc = read_time(a, "start", 1, &start, source, where, err)) < 0 ||
            (rc = read_time(a, "end", 1, &end, source, where, err)) < 0 ||
            (rc = read_time(a, "wait", 0, &wait, source, where, err)) < 0)
            return rc;
        if (end < start || wait < 0 || wait > end - start + 1e-3)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: expected start <= end and 0 <= wait <= end - start, got "
                           "start %g, end %g, wait %g",
                           source, where, start, end, wait);
        pending_wait += wait;
        *earliest = fmin(*earliest, start);
        if (act.count == 0) {
            if (step == 0)
                (*comms)++;
            continue;
        }
        const bs_op *op = &act.op[0];
        if (op->stage >= tr->stages || op->microbatch >= (uint32_t)tr->microbatches)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.action: \"%s\": stage or micro-batch out of range (%d stages, "
                           "%d micro-batches)",
                           source, where, text, tr->stages, tr->microbatches);
        if (tr->placement[op->stage] != rank)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.action: \"%s\": stage %u belongs to rank %u by \"placement\"",
                           source, where, text, (unsigned)op->stage,
                           (unsigned)tr->placement[op->stage]);
        /* The compute itself: its own bracket when recorded, else the part
         * of the action after its wait. */
        double cs = start + wait, ce = end;
        int has_cs, has_ce;
        if ((has_cs = read_time(a, "compute_start", 0, &cs, source, where, err)) < 0 ||
            (has_ce = read_time(a, "compute_end", 0, &ce, source, where, err)) < 0)
            return has_cs < 0 ? has_cs : has_ce;
        if (has_cs != has_ce || ce < cs || cs < start - 1e-3 || ce > end + 1e-3)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: compute_start and compute_end go together and lie within "
                           "start..end in that order",
                           source, where);
        if (cs < last_end - 1e-3)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: starts at %g, before the previous compute op ended (%g)",
                           source, where, cs, last_end);
        if (n >= room)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: steps[%d].ranks[%d]: more compute actions than in step 0", source,
                           step, rank);
        ops[n] = (bs_trace_op){op->microbatch, op->stage, op->kind, cs, ce, pending_wait};
        pending_wait = 0.0;
        last_end = ce;
        n++;
    }
    *count = n;
    return BS_OK;
}

/* Every (stage, micro-batch, kind) at most once in a step: the runtime never
 * runs an op twice. */
static int check_unique(const bs_trace *tr, const bs_trace_op *ops, size_t n, const char *source,
                        bs_error *err)
{
    size_t cells = (size_t)tr->stages * (size_t)tr->microbatches * 4;
    unsigned char *seen = bs_zalloc_array(cells, 1);
    if (!seen)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t k =
            ((size_t)ops[i].stage * (size_t)tr->microbatches + ops[i].microbatch) * 4 + ops[i].kind;
        if (seen[k]++) {
            char buf[48];
            bs_op op = {ops[i].microbatch, ops[i].stage, ops[i].kind, 0};
            bs_free(seen);
            return bs_fail(err, BS_ERR_INVALID, "%s: step 0: op %s appears twice", source,
                           bs_op_format(&op, buf, sizeof buf));
        }
    }
    bs_free(seen);
    return BS_OK;
}

/* Contract in bubblesim_measure.h. Reads the header keys, sizes the ops from
 * step 0, then reads every step against step 0's order. */
int bs_trace_parse(bs_trace **out, const char *text, const char *source, bs_error *err)
{
    int rc = BS_OK;
    bs_trace *tr = NULL;
    cJSON *root = NULL;
    *out = NULL;
    if (!text)
        return bs_fail(err, BS_ERR_INVALID, "%s: no text", source);
    root = cJSON_Parse(text);
    if (!root) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: not valid JSON", source);
        goto error;
    }
    if (!cJSON_IsObject(root)) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: expected a JSON object at the top, got %s", source,
                     bs_json_kind(root));
        goto error;
    }
    const cJSON *fmt = get(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, TRACE_FORMAT) != 0) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: format: expected \"%s\"", source, TRACE_FORMAT);
        goto error;
    }
    int version;
    if ((rc = read_int(root, "version", 1, 1000, &version, source, err)) < 0)
        goto error;
    if (version != TRACE_VERSION) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: version: %d is not known; this build reads %d",
                     source, version, TRACE_VERSION);
        goto error;
    }
    tr = calloc(1, sizeof *tr);
    if (!tr) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    if ((rc = read_int(root, "ranks", 1, BS_TRACE_MAX_RANKS, &tr->ranks, source, err)) < 0 ||
        (rc = read_int(root, "stages", 1, UINT16_MAX, &tr->stages, source, err)) < 0 ||
        (rc = read_int(root, "microbatches", 1, 1000000, &tr->microbatches, source, err)) < 0 ||
        (rc = copy_string(root, "source", tr->source, sizeof tr->source, source, err)) < 0 ||
        (rc = copy_string(root, "workload", tr->workload, sizeof tr->workload, source, err)) < 0)
        goto error;
    if ((double)tr->stages * tr->microbatches > BS_TRACE_MAX_ACTIONS) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "%s: stages x microbatches = %g exceeds the trace limit of %d", source,
                     (double)tr->stages * tr->microbatches, BS_TRACE_MAX_ACTIONS);
        goto error;
    }
    const cJSON *placement = get(root, "placement");
    if (!cJSON_IsArray(placement) || cJSON_GetArraySize(placement) != tr->stages) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "%s: placement: expected an array of %d rank numbers (one per stage)", source,
                     tr->stages);
        goto error;
    }
    tr->placement = bs_alloc_array((size_t)tr->stages, sizeof *tr->placement);
    tr->rank_first = bs_alloc_array((size_t)tr->ranks + 1, sizeof *tr->rank_first);
    if (!tr->placement || !tr->rank_first) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    {
        int s = 0, value;
        const cJSON *el;
        cJSON_ArrayForEach(el, placement)
        {
            if ((rc = bs_json_array_int(el, 0, tr->ranks - 1, "a rank number", source, "placement",
                                        (size_t)s, &value, err)) < 0)
                goto error;
            tr->placement[s++] = (uint16_t)value;
        }
    }
    const cJSON *steps = get(root, "steps");
    int n_steps = cJSON_IsArray(steps) ? cJSON_GetArraySize(steps) : -1;
    if (n_steps < 1 || n_steps > BS_TRACE_MAX_STEPS) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: steps: expected an array of 1..%d steps, got %s",
                     source, BS_TRACE_MAX_STEPS,
                     n_steps < 0 ? bs_json_kind(steps) : "a count out of range");
        goto error;
    }
    tr->steps = n_steps;
    /* Size step 0 first: every later step must run the same ops. */
    size_t total_actions = 0;
    for (int st = 0; st < n_steps; st++) {
        const cJSON *step = cJSON_GetArrayItem(steps, st);
        const cJSON *ranks = cJSON_IsObject(step) ? get(step, "ranks") : NULL;
        if (!cJSON_IsArray(ranks) || cJSON_GetArraySize(ranks) != tr->ranks) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: steps[%d].ranks: expected an array of %d rank objects", source, st,
                         tr->ranks);
            goto error;
        }
        for (int r = 0; r < tr->ranks; r++) {
            const cJSON *rk = cJSON_GetArrayItem(ranks, r);
            const cJSON *acts = cJSON_IsObject(rk) ? get(rk, "actions") : NULL;
            int id;
            if (!cJSON_IsArray(acts)) {
                rc = bs_fail(err, BS_ERR_INVALID,
                             "%s: steps[%d].ranks[%d].actions: expected an array of actions",
                             source, st, r);
                goto error;
            }
            if ((rc = read_int(rk, "rank", 0, tr->ranks - 1, &id, source, err)) < 0)
                goto error;
            if (id != r) {
                rc = bs_fail(err, BS_ERR_INVALID, "%s: steps[%d].ranks[%d].rank: expected %d",
                             source, st, r, r);
                goto error;
            }
            total_actions += (size_t)cJSON_GetArraySize(acts);
            if (total_actions > BS_TRACE_MAX_ACTIONS) {
                rc = bs_fail(err, BS_ERR_INVALID, "%s: more than %d actions in all", source,
                             BS_TRACE_MAX_ACTIONS);
                goto error;
            }
        }
    }
    /* Step 0 fixes the op count per rank. */
    size_t per_step = 0;
    const cJSON *ranks0 = get(cJSON_GetArrayItem(steps, 0), "ranks");
    for (int r = 0; r < tr->ranks; r++)
        per_step += (size_t)cJSON_GetArraySize(get(cJSON_GetArrayItem(ranks0, r), "actions"));
    if (per_step == 0) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: steps[0]: no actions", source);
        goto error;
    }
    tr->ops = bs_alloc_array(per_step * (size_t)n_steps, sizeof *tr->ops);
    tr->rank_start = bs_alloc_array((size_t)n_steps * (size_t)tr->ranks, sizeof *tr->rank_start);
    if (!tr->ops || !tr->rank_start) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    for (int st = 0; st < n_steps; st++) {
        const cJSON *ranks = get(cJSON_GetArrayItem(steps, st), "ranks");
        bs_trace_op *base = tr->ops + (size_t)st * (st ? tr->ops_per_step : 0);
        size_t at = 0;
        double *rank_start = tr->rank_start + (size_t)st * (size_t)tr->ranks;
        for (int r = 0; r < tr->ranks; r++) {
            const cJSON *acts = get(cJSON_GetArrayItem(ranks, r), "actions");
            size_t room = st == 0 ? per_step - at : tr->rank_first[r + 1] - tr->rank_first[r];
            size_t count = 0;
            rank_start[r] = INFINITY;
            if (st == 0)
                tr->rank_first[r] = at;
            if ((rc = read_rank(tr, acts, r, st, base + at, room, &count, &tr->comm_actions,
                                &rank_start[r], source, err)) < 0)
                goto error;
            if (st > 0) {
                const bs_trace_op *ref = tr->ops + tr->rank_first[r];
                for (size_t i = 0; i < count || i < room; i++) {
                    if (i >= count || ref[i].stage != base[at + i].stage ||
                        ref[i].microbatch != base[at + i].microbatch ||
                        ref[i].kind != base[at + i].kind) {
                        rc = bs_fail(err, BS_ERR_INVALID,
                                     "%s: steps[%d].ranks[%d]: compute op %zu differs from step "
                                     "0's executed order (every step must run the same order)",
                                     source, st, r, i);
                        goto error;
                    }
                }
            }
            at += count;
        }
        if (st == 0) {
            tr->rank_first[tr->ranks] = at;
            tr->ops_per_step = at;
            if (at == 0) {
                rc = bs_fail(err, BS_ERR_INVALID, "%s: steps[0]: no compute actions", source);
                goto error;
            }
            if ((rc = check_unique(tr, tr->ops, at, source, err)) < 0)
                goto error;
        }
        /* The origin of each step: its earliest action start. */
        bs_trace_op *ops = tr->ops + (size_t)st * tr->ops_per_step;
        double origin = INFINITY;
        for (int r = 0; r < tr->ranks; r++)
            origin = fmin(origin, rank_start[r]);
        for (int r = 0; r < tr->ranks; r++)
            rank_start[r] = isfinite(rank_start[r]) ? rank_start[r] - origin : 0.0;
        for (size_t i = 0; i < tr->ops_per_step; i++) {
            ops[i].start -= origin;
            ops[i].end -= origin;
        }
    }
    cJSON_Delete(root);
    *out = tr;
    return BS_OK;
error:
    cJSON_Delete(root);
    bs_trace_free(&tr);
    return rc;
}

/* Contract in bubblesim_measure.h. */
int bs_trace_load(bs_trace **out, const char *path, bs_error *err)
{
    char *text = NULL;
    *out = NULL;
    int rc = bs_read_text_file(path, &text, err);
    if (rc < 0)
        return rc;
    rc = bs_trace_parse(out, text, path, err);
    bs_text_free(text);
    return rc;
}

/* Contract in bubblesim_measure.h. */
void bs_trace_free(bs_trace **tr)
{
    if (!tr || !*tr)
        return;
    bs_free((*tr)->placement);
    bs_free((*tr)->rank_first);
    bs_free((*tr)->ops);
    bs_free((*tr)->rank_start);
    free(*tr);
    *tr = NULL;
}

/* Contract in bubblesim_measure.h. */
int bs_trace_write_order(FILE *out, const bs_trace *tr, bs_error *err)
{
    for (int r = 0; r < tr->ranks; r++) {
        for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
            const bs_trace_op *op = &tr->ops[i];
            fprintf(out, "%s%u%c%u", i > tr->rank_first[r] ? "," : "", (unsigned)op->stage,
                    bs_op_letter(op->kind), (unsigned)op->microbatch);
        }
        fputc('\n', out);
    }
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "write error");
    return BS_OK;
}

/* Contract in bubblesim_measure.h. */
double bs_trace_gap(const bs_trace *tr, size_t st, size_t i)
{
    const bs_trace_op *ops = tr->ops + st * tr->ops_per_step;
    int r = tr->placement[ops[i].stage];
    double prev_end = i == tr->rank_first[r] ? tr->rank_start[st * (size_t)tr->ranks + (size_t)r]
                                             : ops[i - 1].end;
    return ops[i].start - prev_end - ops[i].wait_before;
}

/* The op of a step with this (stage, micro-batch, kind), through a table of
 * every cell; SIZE_MAX when the stage is out of range or the op did not run. */
static size_t lookup(const bs_trace *tr, const size_t *cell_op, int stage, uint32_t mb, int kind)
{
    if (stage < 0 || stage >= tr->stages)
        return SIZE_MAX;
    return cell_op[((size_t)stage * (size_t)tr->microbatches + mb) * 4 + (size_t)kind];
}

/* Contract in bubblesim_measure.h. */
size_t *bs_trace_producers(const bs_trace *tr)
{
    size_t cells = (size_t)tr->stages * (size_t)tr->microbatches * 4;
    size_t *cell_op = bs_alloc_array(cells, sizeof *cell_op);
    size_t *producer = bs_alloc_array(tr->ops_per_step ? tr->ops_per_step : 1, sizeof *producer);
    if (!cell_op || !producer) {
        bs_free(cell_op);
        bs_free(producer);
        return NULL;
    }
    for (size_t k = 0; k < cells; k++)
        cell_op[k] = SIZE_MAX;
    for (size_t i = 0; i < tr->ops_per_step; i++) {
        const bs_trace_op *op = &tr->ops[i];
        cell_op[((size_t)op->stage * (size_t)tr->microbatches + op->microbatch) * 4 + op->kind] = i;
    }
    for (size_t i = 0; i < tr->ops_per_step; i++) {
        const bs_trace_op *op = &tr->ops[i];
        size_t p = SIZE_MAX;
        if (op->kind == BS_OP_FORWARD) {
            p = lookup(tr, cell_op, op->stage - 1, op->microbatch, BS_OP_FORWARD);
        } else if (op->kind == BS_OP_BACKWARD || op->kind == BS_OP_INPUT_GRAD) {
            p = lookup(tr, cell_op, op->stage + 1, op->microbatch, BS_OP_INPUT_GRAD);
            if (p == SIZE_MAX)
                p = lookup(tr, cell_op, op->stage + 1, op->microbatch, BS_OP_BACKWARD);
        }
        producer[i] = p;
    }
    bs_free(cell_op);
    return producer;
}
