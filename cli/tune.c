/*
 * tune.c - `bubblesim tune CONFIG [--set KEY=VALUE]... [--top N] [--out DIR]
 *          [--jobs N] [--no-prune]`:
 * which schedule, P, T, V and micro-batch size fit a model's memory and run
 * fastest (docs/tune.md).
 *
 * The config has a "model" (sim/model.c) and a "tune" object: the device
 * count, the global batch and the memory limit per device, and optionally
 * the values to search. Every candidate is the config with six --set
 * overrides (schedule, stages, microbatches, virtual_stages,
 * tensor_parallel, model.microbatch_size), parsed by bs_config_parse, so a
 * row of the result is reproduced exactly by `bubblesim run CONFIG --set
 * ...`.
 *
 * Search: candidates a schedule refuses are dropped with the reason; the
 * rest get closed-form lower bounds on time per iteration and on peak
 * memory (see bounds()). Candidates whose memory bound exceeds the limit are
 * never simulated. The others are simulated in order of their time bound,
 * in batches of TUNE_BATCH; before a batch starts, a candidate is skipped
 * when its time bound exceeds the N-th best time found so far AND an
 * already simulated fitting point dominates its (time, memory) bounds: then
 * it can be neither in the best N nor on the Pareto front. Decisions use
 * only finished batches, so the result (and the CSV) does not depend on
 * --jobs. --no-prune simulates everything, to check the bounds.
 */
#include "cli.h"
#include "gnuplot.h"
#include "outfile.h"
#include "tune_plot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TUNE_BATCH 16
#define TUNE_MAX_JOBS 256
#define TUNE_MAX_LIST 64
#define TUNE_MAX_OVERRIDES 64
#define TUNE_MAX_CANDIDATES 200000
#define GIB (1024.0 * 1024.0 * 1024.0)

typedef enum cand_status {
    ST_REFUSED = 0,  /* a schedule's constraint or a config limit */
    ST_MEMORY_BOUND, /* memory lower bound above the limit: not simulated */
    ST_PRUNED,       /* bounds show it cannot be in the best N or on the front */
    ST_PENDING,      /* waiting to be simulated */
    ST_FITS,         /* simulated, fits */
    ST_OVER_MEMORY,  /* simulated, does not fit */
    ST_FAILED        /* the simulation reported an error */
} cand_status;

static const char *const status_names[] = {"refused", "over_memory_bound", "pruned", "pending",
                                           "fits",    "over_memory",       "failed"};

typedef struct candidate {
    int schedule, P, T, V, b, M;
    cand_status status;
    double time_bound, memory_bound;
    double time, bubble, memory;
    int peak_device;
    bs_model_memory parts; /* of the peak device */
    char note[200];
} candidate;

typedef struct tune_spec {
    int devices, global_batch, use_all_devices;
    double memory_limit;
    const bs_schedule *schedules[TUNE_MAX_LIST];
    int n_schedules;
    int tps[TUNE_MAX_LIST], n_tps;
    int vs[TUNE_MAX_LIST], n_vs;
    int mbs[TUNE_MAX_LIST], n_mbs;
} tune_spec;

typedef struct tune_state {
    const char *source;
    const bs_override *user_overrides; /* the command line's --set, for messages */
    size_t n_user_overrides;
    char *base_text; /* the config without "tune" and "sweep" */
    bs_model model;
    tune_spec spec;
    candidate *cand;
    size_t n_cand;
    /* The batch being simulated, and the workers' share of it. */
    size_t *batch;
    size_t batch_len, next;
    pthread_mutex_t lock;
} tune_state;

/* ------------------------------------------------------------ the spec */

static int spec_int(const cJSON *item, const char *path, const char *source, int min, int max,
                    int *out, bs_error *err)
{
    double x = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!cJSON_IsNumber(item) || !(x >= min && x <= max) || x != floor(x)) {
        if (cJSON_IsNumber(item))
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: %s: expected an integer from %d to %d, got %g", source, path, min,
                            max, x);
        return cli_fail(err, BS_ERR_INVALID, "%s: %s: expected an integer from %d to %d, got %s",
                        source, path, min, max,
                        cJSON_IsString(item)  ? "a string"
                        : cJSON_IsArray(item) ? "an array"
                                              : "another type");
    }
    *out = (int)x;
    return BS_OK;
}

static int spec_int_list(const cJSON *obj, const char *key, const char *source, int min, int max,
                         int *out, int *n, bs_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key), *el;
    char path[96];
    if (!item)
        return BS_OK;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0 ||
        cJSON_GetArraySize(item) > TUNE_MAX_LIST)
        return cli_fail(err, BS_ERR_INVALID, "%s: tune.%s: expected an array of 1 to %d integers",
                        source, key, TUNE_MAX_LIST);
    *n = 0;
    cJSON_ArrayForEach(el, item)
    {
        int rc;
        snprintf(path, sizeof path, "tune.%s[%d]", key, *n);
        if ((rc = spec_int(el, path, source, min, max, &out[*n], err)))
            return rc;
        (*n)++;
    }
    return BS_OK;
}

static int read_spec(tune_spec *sp, const cJSON *tune, const bs_model *m, const bs_config *base,
                     const char *source, bs_error *err)
{
    static const char *const known[] = {"devices",          "global_batch",    "memory_limit",
                                        "schedules",        "tensor_parallel", "virtual_stages",
                                        "microbatch_sizes", "use_all_devices"};
    int rc;
    memset(sp, 0, sizeof *sp);
    sp->use_all_devices = 1;
    if (!tune)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: tune: missing; expected an object with devices, global_batch and "
                        "optionally memory_limit (docs/tune.md)",
                        source);
    if (!cJSON_IsObject(tune))
        return cli_fail(err, BS_ERR_INVALID, "%s: tune: expected an object", source);
    for (const cJSON *item = tune->child; item; item = item->next) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], item->string) != 0)
            i++;
        if (i == sizeof known / sizeof known[0])
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: tune.%s: unknown key; expected one of devices, global_batch, "
                            "memory_limit, schedules, tensor_parallel, virtual_stages, "
                            "microbatch_sizes, use_all_devices",
                            source, item->string);
    }
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(tune, "devices");
    if (!item)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: tune.devices: missing; expected the number of "
                        "devices to use",
                        source);
    if ((rc = spec_int(item, "tune.devices", source, 1, 4096 * 4096, &sp->devices, err)))
        return rc;
    if (!(item = cJSON_GetObjectItemCaseSensitive(tune, "global_batch")))
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: tune.global_batch: missing; expected the sequences per iteration",
                        source);
    if ((rc = spec_int(item, "tune.global_batch", source, 1, INT_MAX / 2, &sp->global_batch, err)))
        return rc;
    sp->memory_limit = m->memory_bytes;
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "memory_limit"))) {
        if (!cJSON_IsNumber(item) || !(item->valuedouble > 0 && item->valuedouble <= 1e18))
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: tune.memory_limit: expected a number of bytes > 0", source);
        sp->memory_limit = item->valuedouble;
    }
    if (!(sp->memory_limit > 0))
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: tune.memory_limit: missing; give it, or hardware.memory_bytes",
                        source);
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "use_all_devices"))) {
        if (!cJSON_IsBool(item))
            return cli_fail(err, BS_ERR_INVALID, "%s: tune.use_all_devices: expected true or false",
                            source);
        sp->use_all_devices = cJSON_IsTrue(item);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "schedules"))) {
        const cJSON *el;
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0 ||
            cJSON_GetArraySize(item) > TUNE_MAX_LIST)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: tune.schedules: expected an array of schedule names", source);
        cJSON_ArrayForEach(el, item)
        {
            const bs_schedule *s = cJSON_IsString(el) ? bs_schedule_find(el->valuestring) : NULL;
            if (!s || strcmp(s->name, "custom") == 0)
                return cli_fail(err, BS_ERR_INVALID,
                                "%s: tune.schedules[%d]: expected the name of a built-in schedule "
                                "(bubblesim --help lists them; custom cannot be tuned)",
                                source, sp->n_schedules);
            sp->schedules[sp->n_schedules++] = s;
        }
    } else {
        /* The config's own kind of work: inference tunes the forward
         * schedule, training every training schedule. */
        const bs_schedule *own = bs_schedule_find(base->schedule);
        int inference = own && (own->flags & BS_PROGRAM_FORWARD_ONLY);
        for (size_t i = 0; i < bs_schedule_count() && sp->n_schedules < TUNE_MAX_LIST; i++) {
            const bs_schedule *s = bs_schedule_at(i);
            if (strcmp(s->name, "custom") == 0 ||
                inference != ((s->flags & BS_PROGRAM_FORWARD_ONLY) != 0))
                continue;
            sp->schedules[sp->n_schedules++] = s;
        }
    }
    /* Tensor parallelism needs a fast link: by default at most 8 devices
     * (one NVLink domain of a typical server). */
    for (int t = 1; t <= 8 && t <= sp->devices; t *= 2)
        if (m->heads % t == 0 && sp->devices % t == 0)
            sp->tps[sp->n_tps++] = t;
    sp->vs[0] = 1, sp->vs[1] = 2, sp->vs[2] = 4, sp->n_vs = 3;
    for (int b = 1; b <= 32 && b <= sp->global_batch; b *= 2)
        if (sp->global_batch % b == 0)
            sp->mbs[sp->n_mbs++] = b;
    if ((rc = spec_int_list(tune, "tensor_parallel", source, 1, 4096, sp->tps, &sp->n_tps, err)) ||
        (rc = spec_int_list(tune, "virtual_stages", source, 1, 256, sp->vs, &sp->n_vs, err)) ||
        (rc = spec_int_list(tune, "microbatch_sizes", source, 1, INT_MAX / 2, sp->mbs, &sp->n_mbs,
                            err)))
        return rc;
    return BS_OK;
}

/* --------------------------------------------------------- a candidate */

typedef struct cand_text {
    char schedule[BS_NAME_MAX], P[16], M[16], V[16], T[16], b[16];
    bs_override ov[6];
} cand_text;

static void candidate_overrides(cand_text *t, const tune_state *st, const candidate *c)
{
    snprintf(t->schedule, sizeof t->schedule, "%s", st->spec.schedules[c->schedule]->name);
    snprintf(t->P, sizeof t->P, "%d", c->P);
    snprintf(t->M, sizeof t->M, "%d", c->M);
    snprintf(t->V, sizeof t->V, "%d", c->V);
    snprintf(t->T, sizeof t->T, "%d", c->T);
    snprintf(t->b, sizeof t->b, "%d", c->b);
    t->ov[0] = (bs_override){"schedule", t->schedule};
    t->ov[1] = (bs_override){"stages", t->P};
    t->ov[2] = (bs_override){"microbatches", t->M};
    t->ov[3] = (bs_override){"virtual_stages", t->V};
    t->ov[4] = (bs_override){"tensor_parallel", t->T};
    t->ov[5] = (bs_override){"model.microbatch_size", t->b};
}

/* The config and the model plan of candidate c. */
static int candidate_config(const tune_state *st, const candidate *c, bs_config *cfg,
                            bs_model_plan *plan, bs_error *err)
{
    cand_text t;
    int rc;
    candidate_overrides(&t, st, c);
    if ((rc = bs_config_parse(cfg, st->base_text, st->source, t.ov, 6, err)))
        return rc;
    bs_model m = st->model; /* shallow: layers_per_stage is NULL in tune */
    m.tensor_parallel = c->T;
    m.microbatch_size = c->b;
    return bs_model_plan_compute(plan, &m, cfg, st->source, err);
}

/* Lower bounds, from the plan alone:
 *   time:   device d cannot start before the first micro-batch's forward has
 *           passed every chunk ahead of its first chunk, and then has M
 *           micro-batches of its own work (forward, input and weight
 *           gradients; times costs.overlap, the most overlapping saves);
 *           messages and the optimizer only add. With several iterations the
 *           steady state can hide the fill, so no time bound is used.
 *   memory: weights, gradients, optimizer state and KV cache, plus in
 *           training one chunk's activations: every device holds at least
 *           one forward's activations until its backward. */
static void bounds(candidate *c, const bs_config *cfg, const bs_model_plan *plan)
{
    double time = 0, memory = 0;
    for (int d = 0; d < plan->devices; d++) {
        double head = INFINITY, work = 0, before = 0;
        for (int k = 0; k < plan->chunks; k++) {
            const bs_model_chunk *ch = &plan->chunk[k];
            if (ch->device == d) {
                if (before < head)
                    head = before;
                work += ch->forward_ms;
                if (plan->training)
                    work += ch->input_grad_ms + ch->weight_grad_ms;
            }
            before += ch->forward_ms;
        }
        if (!isfinite(head))
            head = 0;
        double t = head + work * cfg->microbatches * cfg->overlap;
        if (t > time)
            time = t;
        const bs_model_device *dv = &plan->device[d];
        double mem = dv->weight_bytes + dv->gradient_bytes + dv->optimizer_bytes +
                     dv->kv_cache_bytes +
                     (plan->training ? dv->activation_bytes / cfg->virtual_stages : 0);
        if (mem > memory)
            memory = mem;
    }
    c->time_bound = cfg->iterations == 1 ? time : 0;
    c->memory_bound = memory;
}

/* Simulates candidate c: time per iteration and the peak device's memory. */
static void simulate(const tune_state *st, candidate *c, bs_context *ctx)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_error err = {{0}};
    const bs_result *res = NULL;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    int rc = candidate_config(st, c, &cfg, &plan, &err);
    if (!rc)
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
    if (rc) {
        c->status = ST_FAILED;
        snprintf(c->note, sizeof c->note, "%.190s", err.message);
    } else {
        c->time = res->iteration_time;
        c->bubble = res->bubble_ratio;
        c->memory = -1;
        for (int d = 0; d < res->devices; d++) {
            bs_model_memory mm;
            bs_model_memory_of(&mm, &plan, res, d);
            if (mm.total > c->memory) {
                c->memory = mm.total;
                c->parts = mm;
                c->peak_device = d;
            }
        }
        c->status = c->memory <= st->spec.memory_limit ? ST_FITS : ST_OVER_MEMORY;
    }
    bs_model_plan_free(&plan);
    bs_config_free(&cfg);
}

static void *worker(void *arg)
{
    tune_state *st = arg;
    bs_context *ctx = NULL;
    if (bs_context_create(&ctx) != BS_OK)
        ctx = NULL;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        size_t k = st->next < st->batch_len ? st->next++ : SIZE_MAX;
        pthread_mutex_unlock(&st->lock);
        if (k == SIZE_MAX)
            break;
        candidate *c = &st->cand[st->batch[k]];
        if (!ctx) {
            c->status = ST_FAILED;
            snprintf(c->note, sizeof c->note, "out of memory");
            continue;
        }
        simulate(st, c, ctx);
    }
    bs_context_free(&ctx);
    return NULL;
}

/* ------------------------------------------------------------- ranking */

static const tune_state *sort_state;

static int by_time_bound(const void *a, const void *b)
{
    const candidate *x = &sort_state->cand[*(const size_t *)a];
    const candidate *y = &sort_state->cand[*(const size_t *)b];
    if (x->time_bound != y->time_bound)
        return x->time_bound < y->time_bound ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int by_time(const void *a, const void *b)
{
    const candidate *x = &sort_state->cand[*(const size_t *)a];
    const candidate *y = &sort_state->cand[*(const size_t *)b];
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int by_memory(const void *a, const void *b)
{
    const candidate *x = &sort_state->cand[*(const size_t *)a];
    const candidate *y = &sort_state->cand[*(const size_t *)b];
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Whether the bounds of c show it can be neither among the best `top` of
 * the fitting points found so far (the N-th best time is nth_best) nor on
 * their time-memory Pareto front. Checking the front suffices: a fitting
 * point that dominates c's bounds is itself dominated by (or equal to) a
 * point of the front, which then dominates them too. */
static int can_prune(const tune_state *st, const candidate *c, const size_t *front, size_t n_front,
                     double nth_best)
{
    if (!(c->time_bound > nth_best))
        return 0;
    for (size_t i = 0; i < n_front; i++) {
        const candidate *q = &st->cand[front[i]];
        if (q->time <= c->time_bound && q->memory <= c->memory_bound &&
            (q->time < c->time_bound || q->memory < c->memory_bound))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------- outputs */

static void describe(char *buf, size_t size, const tune_state *st, const candidate *c)
{
    snprintf(buf, size, "%s P=%d T=%d V=%d b=%d M=%d", st->spec.schedules[c->schedule]->name, c->P,
             c->T, c->V, c->b, c->M);
}

static void print_row(FILE *out, const tune_state *st, const candidate *c, int rank)
{
    double tokens = (double)st->spec.global_batch * st->model.sequence;
    fprintf(out, "%4d  %-12s %4d %3d %3d %4d %6d %16.3f %7.2f%% %10.2f %12.0f\n", rank,
            st->spec.schedules[c->schedule]->name, c->P, c->T, c->V, c->b, c->M, c->time,
            100 * c->bubble, c->memory / GIB, c->time > 0 ? tokens / (c->time / 1000) : 0);
}

static const char table_head[] = "rank  schedule        P   T   V    b      M   time/iter (ms)  "
                                 " bubble  mem (GiB)     tokens/s\n";

static void csv_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static int write_csv(const tune_state *st, cli_outset *set, const char *dir, bs_error *err)
{
    char path[4200];
    cli_outfile f;
    int rc;
    snprintf(path, sizeof path, "%s/tune.csv", dir);
    if ((rc = cli_outset_add(set, path, &f.file, err)) < 0)
        return rc;
    fputs("schedule,stages,tensor_parallel,virtual_stages,microbatch_size,microbatches,status,"
          "time_per_iteration_ms,bubble_ratio,peak_memory_bytes,peak_device,activation_bytes,"
          "weight_bytes,gradient_bytes,optimizer_bytes,stashed_weight_bytes,kv_cache_bytes,"
          "time_lower_bound_ms,memory_lower_bound_bytes,note\n",
          f.file);
    for (size_t i = 0; i < st->n_cand; i++) {
        const candidate *c = &st->cand[i];
        int sim = c->status == ST_FITS || c->status == ST_OVER_MEMORY;
        fprintf(f.file, "%s,%d,%d,%d,%d,%d,%s,", st->spec.schedules[c->schedule]->name, c->P, c->T,
                c->V, c->b, c->M, status_names[c->status]);
        if (sim)
            fprintf(f.file, "%.6f,%.6f,%.0f,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,", c->time, c->bubble,
                    c->memory, c->peak_device, c->parts.activations, c->parts.weights,
                    c->parts.gradients, c->parts.optimizer, c->parts.stashed_weights,
                    c->parts.kv_cache);
        else
            fputs(",,,,,,,,,,", f.file);
        if (c->status != ST_REFUSED)
            fprintf(f.file, "%.6f,%.0f,", c->time_bound, c->memory_bound);
        else
            fputs(",,", f.file);
        csv_text(f.file, c->note);
        fputc('\n', f.file);
    }
    return BS_OK;
}

/* tune.png (cli/tune_plot.c): every simulated point, the Pareto front
 * labelled, the memory limit dashed. */
static int write_chart(const tune_state *st, cli_outset *set, const char *dir,
                       const size_t *front, size_t n_front, bs_error *err)
{
    size_t n = 0;
    int rc;
    cli_tune_point *pts = calloc(st->n_cand + n_front + 1, sizeof *pts);
    char(*labels)[160] = calloc(st->n_cand + n_front + 1, sizeof *labels);
    if (!pts || !labels) {
        free(pts);
        free(labels);
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing the chart");
    }
    for (size_t i = 0; i < st->n_cand + n_front; i++) {
        const candidate *c = i < st->n_cand ? &st->cand[i] : &st->cand[front[i - st->n_cand]];
        if (i < st->n_cand && c->status != ST_FITS && c->status != ST_OVER_MEMORY)
            continue;
        describe(labels[n], sizeof labels[n], st, c);
        pts[n] = (cli_tune_point){c->memory, c->time,
                                  i >= st->n_cand            ? CLI_TUNE_FRONT
                                  : c->status == ST_FITS ? CLI_TUNE_FITS
                                                             : CLI_TUNE_OVER,
                                  labels[n]};
        n++;
    }
    rc = cli_tune_chart_stage(set, dir, st->source, st->spec.memory_limit, pts, n, err);
    free(pts);
    free(labels);
    return rc;
}

/* -------------------------------------------------------------- search */

static int load(tune_state *st, const char *path, const bs_override *ov, size_t n_ov, bs_error *err)
{
    int rc = BS_OK;
    cJSON *root = NULL, *tune = NULL;
    char *full = NULL;
    bs_config base;
    bs_config_init(&base);
    char *text = NULL;
    if ((rc = bs_read_text_file(path, &text, err)))
        return rc;
    /* bs_config_parse reports syntax errors with line and column, and bad
     * override paths; the model and "tune" sections are read from the same
     * text with the overrides in. */
    if ((rc = bs_config_parse(&base, text, path, ov, n_ov, err)) ||
        (rc = bs_config_apply_overrides(text, path, ov, n_ov, &full, err)))
        goto done;
    if (!(root = cJSON_Parse(full))) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = bs_model_parse(&st->model, full, path, err)))
        goto done;
    tune = cJSON_DetachItemFromObjectCaseSensitive(root, "tune");
    if (st->model.layers_per_stage) {
        rc = cli_fail(err, BS_ERR_INVALID,
                      "%s: layers_per_stage: tune chooses P and V, so it cannot keep a fixed "
                      "split; remove layers_per_stage (and set balance: true to balance)",
                      path);
        goto done;
    }
    if ((rc = read_spec(&st->spec, tune, &st->model, &base, path, err)))
        goto done;
    if (!(st->base_text = cJSON_PrintUnformatted(root)))
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
done:
    bs_text_free(text);
    bs_text_free(full);
    cJSON_Delete(root);
    cJSON_Delete(tune);
    bs_config_free(&base);
    return rc;
}

static int enumerate(tune_state *st, bs_error *err)
{
    const tune_spec *sp = &st->spec;
    st->n_cand = 0;
    for (int s = 0; s < sp->n_schedules; s++)
        for (int ti = 0; ti < sp->n_tps; ti++) {
            int T = sp->tps[ti];
            /* bubblesim simulates at most 4096 stages. */
            for (int P = 1; P <= 4096 && (long long)P * T <= sp->devices; P++) {
                if (sp->use_all_devices && P * T != sp->devices)
                    continue;
                for (int vi = 0; vi < sp->n_vs; vi++)
                    for (int bi = 0; bi < sp->n_mbs; bi++) {
                        if (sp->global_batch % sp->mbs[bi] != 0)
                            continue;
                        if (st->n_cand >= TUNE_MAX_CANDIDATES)
                            return cli_fail(err, BS_ERR_LIMIT,
                                            "%s: tune: more than %d candidates; narrow the "
                                            "search (tune.schedules, tune.tensor_parallel, ...)",
                                            st->source, TUNE_MAX_CANDIDATES);
                        if (st->n_cand % 1024 == 0) {
                            candidate *bigger =
                                realloc(st->cand, (st->n_cand + 1024) * sizeof *st->cand);
                            if (!bigger)
                                return cli_fail(err, BS_ERR_NOMEM, "out of memory");
                            st->cand = bigger;
                        }
                        candidate *c = &st->cand[st->n_cand++];
                        memset(c, 0, sizeof *c);
                        c->schedule = s;
                        c->T = T;
                        c->P = P;
                        c->V = sp->vs[vi];
                        c->b = sp->mbs[bi];
                        c->M = sp->global_batch / sp->mbs[bi];
                    }
            }
        }
    if (st->n_cand == 0)
        return cli_fail(
            err, BS_ERR_INVALID,
            "%s: tune: nothing to search: no P (1 to 4096) and T (tune.tensor_parallel) "
            "give P*T = tune.devices = %d, or no b in tune.microbatch_sizes divides "
            "tune.global_batch = %d",
            st->source, sp->devices, sp->global_batch);
    return BS_OK;
}

/* Checks each candidate without simulating it: the config and the
 * schedule's constraints, then the bounds. */
static void screen(tune_state *st)
{
    for (size_t i = 0; i < st->n_cand; i++) {
        candidate *c = &st->cand[i];
        bs_config cfg;
        bs_model_plan plan;
        bs_error err = {{0}};
        bs_config_init(&cfg);
        memset(&plan, 0, sizeof plan);
        int rc = candidate_config(st, c, &cfg, &plan, &err);
        if (!rc)
            rc = st->spec.schedules[c->schedule]->check(&cfg, &err);
        if (rc) {
            c->status = ST_REFUSED;
            /* Drop the file name: every row has the same. */
            const char *msg = err.message;
            size_t n = strlen(st->source);
            if (strncmp(msg, st->source, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                msg += n + 2;
            snprintf(c->note, sizeof c->note, "%.190s", msg);
        } else {
            bounds(c, &cfg, &plan);
            c->status = c->memory_bound > st->spec.memory_limit ? ST_MEMORY_BOUND : ST_PENDING;
        }
        bs_model_plan_free(&plan);
        bs_config_free(&cfg);
    }
}

static int search(tune_state *st, int jobs, int top, int prune, int show_progress, bs_error *err)
{
    size_t *order = NULL, *fits = NULL, *front = NULL, n_order = 0, n_fits = 0, n_front = 0;
    size_t simulated = 0;
    int rc = BS_OK;
    if (!(order = malloc((st->n_cand + 1) * sizeof *order)) ||
        !(fits = malloc((st->n_cand + 1) * sizeof *fits)) ||
        !(front = malloc((st->n_cand + 1) * sizeof *front)) ||
        !(st->batch = malloc(TUNE_BATCH * sizeof *st->batch))) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < st->n_cand; i++)
        if (st->cand[i].status == ST_PENDING || (!prune && st->cand[i].status == ST_MEMORY_BOUND))
            order[n_order++] = i;
    sort_state = st;
    qsort(order, n_order, sizeof *order, by_time_bound);
    for (size_t at = 0; at < n_order;) {
        double nth_best = INFINITY;
        if (prune && n_fits >= (size_t)top) {
            qsort(fits, n_fits, sizeof *fits, by_time);
            nth_best = st->cand[fits[top - 1]].time;
            qsort(fits, n_fits, sizeof *fits, by_memory);
            double fastest = INFINITY;
            n_front = 0;
            for (size_t i = 0; i < n_fits; i++)
                if (st->cand[fits[i]].time < fastest) {
                    fastest = st->cand[fits[i]].time;
                    front[n_front++] = fits[i];
                }
        }
        st->batch_len = 0;
        while (at < n_order && st->batch_len < TUNE_BATCH) {
            candidate *c = &st->cand[order[at++]];
            if (prune && can_prune(st, c, front, n_front, nth_best))
                c->status = ST_PRUNED;
            else
                st->batch[st->batch_len++] = (size_t)(c - st->cand);
        }
        st->next = 0;
        int n_threads = jobs < (int)st->batch_len ? jobs : (int)st->batch_len, started = 0;
        pthread_t threads[TUNE_MAX_JOBS];
        for (; started < n_threads - 1; started++)
            if (pthread_create(&threads[started], NULL, worker, st) != 0)
                break;
        worker(st); /* this thread works too, so a failed pthread_create only slows */
        for (int k = 0; k < started; k++)
            pthread_join(threads[k], NULL);
        for (size_t k = 0; k < st->batch_len; k++) {
            candidate *c = &st->cand[st->batch[k]];
            simulated++;
            if (c->status == ST_FITS)
                fits[n_fits++] = st->batch[k];
        }
        if (show_progress) {
            double best = INFINITY;
            for (size_t k = 0; k < n_fits; k++)
                if (st->cand[fits[k]].time < best)
                    best = st->cand[fits[k]].time;
            fprintf(stderr, "\rtune: %zu/%zu candidates, %zu simulated, %zu fit", at, n_order,
                    simulated, n_fits);
            if (n_fits)
                fprintf(stderr, ", best %.3f ms", best);
            fputs("   ", stderr);
        }
    }
    if (show_progress)
        fputs("\r\033[K", stderr);
done:
    free(order);
    free(fits);
    free(front);
    free(st->batch);
    st->batch = NULL;
    return rc;
}

static int report(tune_state *st, int top, const char *out_dir, bs_error *err)
{
    size_t counts[7] = {0}, *fits = NULL, n_fits = 0, *front = NULL, n_front = 0;
    int rc = BS_OK;
    for (size_t i = 0; i < st->n_cand; i++)
        counts[st->cand[i].status]++;
    if (!(fits = malloc((st->n_cand + 1) * sizeof *fits)) ||
        !(front = malloc((st->n_cand + 1) * sizeof *front))) {
        free(fits);
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < st->n_cand; i++)
        if (st->cand[i].status == ST_FITS)
            fits[n_fits++] = i;
    if (n_fits == 0) {
        double least = INFINITY;
        const candidate *which = NULL;
        for (size_t i = 0; i < st->n_cand; i++) {
            const candidate *c = &st->cand[i];
            double m = c->status == ST_OVER_MEMORY    ? c->memory
                       : c->status == ST_MEMORY_BOUND ? c->memory_bound
                                                      : INFINITY;
            if (m < least) {
                least = m;
                which = c;
            }
        }
        if (which) {
            char label[160];
            describe(label, sizeof label, st, which);
            rc = cli_fail(err, BS_ERR_INVALID,
                          "%s: no configuration fits in %.2f GiB per device: of the %zu that the "
                          "schedules accept, the smallest needs at least %.2f GiB (%s); add "
                          "devices, raise tune.memory_limit, or %s",
                          st->source, st->spec.memory_limit / GIB, st->n_cand - counts[ST_REFUSED],
                          least / GIB, label,
                          st->spec.schedules[which->schedule]->flags & BS_PROGRAM_FORWARD_ONLY
                              ? "shorten the batch or the sequence (the KV cache grows with both)"
                              : "recompute activations (model.recompute)");
        } else {
            rc = cli_fail(err, BS_ERR_INVALID,
                          "%s: no configuration to try: the schedules refuse all %zu candidates "
                          "(first reason: %s)",
                          st->source, st->n_cand, st->n_cand ? st->cand[0].note : "none");
        }
        goto done;
    }
    sort_state = st;
    qsort(fits, n_fits, sizeof *fits, by_time);
    printf("tune %s: %d devices, global batch %d, memory limit %.2f GiB per device\n", st->source,
           st->spec.devices, st->spec.global_batch, st->spec.memory_limit / GIB);
    printf("candidates %zu: %zu refused by a schedule or limit, %zu over memory by the bound, "
           "%zu pruned by the bounds, %zu simulated (%zu fit, %zu over memory%s)\n",
           st->n_cand, counts[ST_REFUSED], counts[ST_MEMORY_BOUND], counts[ST_PRUNED],
           counts[ST_FITS] + counts[ST_OVER_MEMORY] + counts[ST_FAILED], counts[ST_FITS],
           counts[ST_OVER_MEMORY], counts[ST_FAILED] ? ", some failed: see the CSV" : "");
    printf("\nbest %zu by time per iteration:\n%s", n_fits < (size_t)top ? n_fits : (size_t)top,
           table_head);
    for (size_t i = 0; i < n_fits && i < (size_t)top; i++)
        print_row(stdout, st, &st->cand[fits[i]], (int)i + 1);
    qsort(fits, n_fits, sizeof *fits, by_memory);
    double best_time = INFINITY;
    for (size_t i = 0; i < n_fits; i++)
        if (st->cand[fits[i]].time < best_time) {
            best_time = st->cand[fits[i]].time;
            front[n_front++] = fits[i];
        }
    printf("\ntime-memory Pareto front (no other fitting point is both faster and smaller):\n%s",
           table_head);
    for (size_t i = 0; i < n_front; i++)
        print_row(stdout, st, &st->cand[front[i]], (int)i + 1);
    {
        const candidate *c = &st->cand[front[n_front - 1]];
        printf("\nreproduce the best: bubblesim run %s", st->source);
        for (size_t i = 0; i < st->n_user_overrides; i++)
            printf(" --set '%s=%s'", st->user_overrides[i].path, st->user_overrides[i].value);
        printf(" --set schedule=%s --set stages=%d --set "
               "microbatches=%d --set virtual_stages=%d --set tensor_parallel=%d --set "
               "model.microbatch_size=%d\n",
               st->spec.schedules[c->schedule]->name, c->P, c->M, c->V, c->T, c->b);
    }
    if (out_dir) {
        /* The CSV and the chart's files are one output set (outfile.h). */
        cli_outset set;
        cli_outset_init(&set);
        if ((rc = cli_prepare_dir(out_dir, err)) || (rc = write_csv(st, &set, out_dir, err)) ||
            (rc = write_chart(st, &set, out_dir, front, n_front, err)) ||
            (rc = cli_outset_commit(&set, err))) {
            cli_outset_abort(&set);
            goto done;
        }
        if (set.gnuplot_missing) {
            printf("wrote %s/tune.csv and the chart's data and script (tune.dat, tune.gp, "
                   "tune.sh), but no picture\n",
                   out_dir);
            rc = cli_chart_missing_error(&set, err);
        } else {
            printf("wrote %s/tune.csv and the chart %s/tune.png (tune.dat, tune.gp, tune.sh)\n",
                   out_dir, out_dir);
        }
    }
done:
    free(fits);
    free(front);
    return rc;
}

int cli_tune(int argc, char **argv)
{
    const char *path = NULL, *out_dir = NULL;
    int top = 10, jobs = 0, prune = 1;
    bs_override overrides[TUNE_MAX_OVERRIDES];
    size_t n_overrides = 0;
    tune_state st;
    bs_error err = {{0}};
    int rc = BS_OK;
    memset(&st, 0, sizeof st);
    bs_model_init(&st.model);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (n_overrides == TUNE_MAX_OVERRIDES) {
            fprintf(stderr, "bubblesim: tune: at most %d --set options\n", TUNE_MAX_OVERRIDES);
            return EXIT_BAD_INPUT;
        }
        if (strcmp(a, "--top") == 0 || strcmp(a, "--jobs") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: tune: %s needs a value\n", a);
                return EXIT_BAD_INPUT;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--out") == 0) {
                out_dir = v;
                continue;
            }
            char *end;
            errno = 0;
            long x = strtol(v, &end, 10);
            if (errno || *end || end == v || x < 1 ||
                x > (strcmp(a, "--top") == 0 ? 100000 : TUNE_MAX_JOBS)) {
                fprintf(stderr,
                        "bubblesim: tune: %s: expected an integer from 1 to %d, got \"%s\"\n", a,
                        strcmp(a, "--top") == 0 ? 100000 : TUNE_MAX_JOBS, v);
                return EXIT_BAD_INPUT;
            }
            *(strcmp(a, "--top") == 0 ? &top : &jobs) = (int)x;
        } else if (strcmp(a, "--no-prune") == 0) {
            prune = 0;
        } else if (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0) {
            char *kv = a[5] == '=' ? argv[i] + 6 : i + 1 < argc ? argv[++i] : NULL;
            if (cli_parse_override(kv, &overrides[n_overrides++])) {
                fprintf(stderr, "bubblesim: tune: --set needs KEY=VALUE\n");
                return EXIT_BAD_INPUT;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bubblesim: tune: unknown option \"%s\" (see bubblesim --help)\n", a);
            return EXIT_BAD_INPUT;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bubblesim: tune: one CONFIG expected, got \"%s\" and \"%s\"\n", path,
                    a);
            return EXIT_BAD_INPUT;
        }
    }
    if (!path) {
        fprintf(stderr, "bubblesim: tune: missing CONFIG (a JSON file with model, hardware and "
                        "tune; see docs/tune.md)\n");
        return EXIT_BAD_INPUT;
    }
    if (jobs == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = cpus < 1 ? 1 : cpus > TUNE_MAX_JOBS ? TUNE_MAX_JOBS : (int)cpus;
    }
    st.source = path;
    st.user_overrides = overrides;
    st.n_user_overrides = n_overrides;
    if (pthread_mutex_init(&st.lock, NULL) != 0) {
        fprintf(stderr, "bubblesim: tune: cannot create a lock\n");
        return EXIT_FAILURE_OTHER;
    }
    cli_install_interrupt_cleanup();
    if ((rc = load(&st, path, overrides, n_overrides, &err)) || (rc = enumerate(&st, &err)))
        goto done;
    screen(&st);
    if ((rc = search(&st, jobs, top, prune, isatty(STDERR_FILENO), &err)) ||
        (rc = report(&st, top, out_dir, &err)))
        goto done;
done:
    pthread_mutex_destroy(&st.lock);
    free(st.cand);
    cJSON_free(st.base_text);
    bs_model_free(&st.model);
    if (rc)
        return cli_report_file(path, rc, &err);
    return EXIT_OK;
}
