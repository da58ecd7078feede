/*
 * sweep.c - `bubblesim sweep CONFIG [--out DIR] [--jobs N] [--plot]
 *            [--max-points N]`: simulate the cross product of the values in
 * the config's "sweep" object and tabulate one row per point.
 *
 * Each point is the base config (the file without "sweep") with one --set
 * override per swept key, parsed by bs_config_parse, so a swept value is
 * checked exactly like the same value written in the file. A point whose
 * config or schedule is refused (invalid, over a limit, deadlocked) becomes a
 * row with the reason; only a broken sweep object, an unwritable output or
 * an internal failure stops the command.
 *
 * Workers (pthreads, one bs_context each) take point indices from a shared
 * counter and write each result into its own row; the rows are printed in
 * point order after all workers are done, so the output does not depend on
 * --jobs or on timing. Everything that can refuse the sweep as a whole (its
 * size, the output directory) is checked before the first simulation.
 *
 * Interruption (SIGINT, SIGTERM): by default the command exits at once and
 * leaves no file (outfile.c). With --partial a signal only stops the
 * workers taking new points; the points already finished are written, in
 * point order, to DIR/NAME.partial.csv, and the command exits 128 + signal.
 * A sweep that completes removes a NAME.partial.csv left by an earlier one.
 * For tests, BUBBLESIM_TEST_SIGINT_AFTER=N raises SIGINT once N points are
 * done, so an interrupted sweep can be replayed exactly.
 */
#include "gnuplot.h"
#include "outfile.h"
#include "sweep.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_DEFAULT_MAX_POINTS 1000000ull
#define SWEEP_MAX_JOBS 256
#define SWEEP_MAX_SHARDS 1000000ull
#define PROGRESS_DELAY_S 0.5 /* a sweep shorter than this shows no bar */
#define PROGRESS_WIDTH 40

typedef struct sweep {
    const char *source; /* the config file, for messages */
    char *base_text;    /* the config without "sweep" */
    sweep_axis *axes;
    size_t n_axes, points;
    /* The points this run simulates: [first, first + count), all of them
     * unless --shard; rows[i - first] holds point i. */
    size_t first, count;
    sweep_row *rows;
    /* "baseline": per axis, the value index of the baseline point on the
     * axis's group (set on leaders only), or -1 where the point keeps its
     * own; has_baseline says whether there is a baseline at all. */
    long *baseline;
    int has_baseline;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t progress;
    size_t next, done;
    int fatal_rc; /* first failure that is not a refused point */
    bs_error fatal;
    int stop;            /* --partial: a signal came; take no new points */
    int watch_signal;    /* --partial is on */
    int finished_only;   /* write only the rows of finished points */
    size_t sigint_after; /* test hook, 0 = off */
} sweep;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Numbers are printed by cJSON's rule (15 significant digits unless that
 * is off by more than a relative DBL_EPSILON, then 17), so a cell is the same
 * text as the number `run --json` prints for the same point. */
static void format_number(char *buf, size_t size, double x)
{
    snprintf(buf, size, "%1.15g", x);
    double back = strtod(buf, NULL);
    if (!(fabs(back - x) <= fmax(fabs(back), fabs(x)) * DBL_EPSILON))
        snprintf(buf, size, "%1.17g", x);
}

/* ------------------------------------------------------- the sweep object */

static void axes_free(sweep_axis *axes, size_t n)
{
    for (size_t k = 0; axes && k < n; k++) {
        for (size_t j = 0; j < axes[k].count; j++) {
            if (axes[k].values)
                cJSON_free(axes[k].values[j]);
            if (axes[k].labels)
                free(axes[k].labels[j]);
        }
        free(axes[k].values);
        free(axes[k].labels);
        free(axes[k].number);
        free(axes[k].path);
    }
    free(axes);
}

/* A new zeroed axis at the end of s->axes. */
static sweep_axis *axis_add(sweep *s, const char *path, size_t values, bs_error *err)
{
    sweep_axis *bigger = realloc(s->axes, (s->n_axes + 1) * sizeof *s->axes);
    if (!bigger) {
        cli_fail(err, BS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->axes = bigger;
    sweep_axis *axis = &s->axes[s->n_axes++];
    memset(axis, 0, sizeof *axis);
    axis->path = strdup(path);
    axis->values = calloc(values, sizeof *axis->values);
    axis->labels = calloc(values, sizeof *axis->labels);
    axis->number = calloc(values, sizeof *axis->number);
    if (!axis->path || !axis->values || !axis->labels || !axis->number) {
        cli_fail(err, BS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return axis;
}

/* Appends one value (any JSON) to an axis made by axis_add. */
static int axis_push(sweep_axis *axis, const cJSON *item, bs_error *err)
{
    size_t j = axis->count++;
    axis->values[j] = cJSON_PrintUnformatted(item);
    axis->labels[j] = strdup(cJSON_IsString(item) ? item->valuestring
                             : axis->values[j]    ? axis->values[j]
                                                  : "");
    axis->number[j] = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!axis->values[j] || !axis->labels[j])
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    return BS_OK;
}

/* A key path of the sweep object or of a case: not empty, and within what
 * --set takes (the core names an unknown path in axis_check_path). */
static int key_path_check(const char *source, const char *where, const char *path, bs_error *err)
{
    if (!path[0])
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: %s: an empty key path; expected a config key such as "
                        "\"microbatches\" or \"costs.forward\"",
                        source, where);
    if (strlen(path) > 120)
        return cli_fail(err, BS_ERR_INVALID, "%s: %s: key path of %zu characters; at most 120",
                        source, where, strlen(path));
    return BS_OK;
}

static int axis_read(sweep *s, const cJSON *list, bs_error *err)
{
    int rc;
    if ((rc = key_path_check(s->source, "sweep.\"\"", list->string, err)))
        return rc;
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: sweep.%s: expected a non-empty list of values, got %s", s->source,
                        list->string,
                        cJSON_IsArray(list) ? "an empty list" : "a single value (write [value])");
    sweep_axis *axis = axis_add(s, list->string, (size_t)cJSON_GetArraySize(list), err);
    if (!axis)
        return BS_ERR_NOMEM;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        if ((rc = axis_push(axis, item, err)))
            return rc;
    }
    return BS_OK;
}

/* "cases": a list of objects, each one point of the group (key path ->
 * value); every case gives the same keys. Each key becomes an axis whose
 * j-th value is case j's, zipped to the group's first key. */
static int cases_read(sweep *s, const cJSON *cases, bs_error *err)
{
    int rc;
    if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: sweep.cases: expected a non-empty list of objects, one per point "
                        "(key path -> value), got %s",
                        s->source, cJSON_IsArray(cases) ? "an empty list" : "another value");
    const cJSON *first = cases->child;
    size_t n = (size_t)cJSON_GetArraySize(cases), idx = 0, lead = s->n_axes;
    for (const cJSON *c = first; c; c = c->next, idx++) {
        if (!cJSON_IsObject(c) || !c->child)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: sweep.cases[%zu]: expected a non-empty object of key path -> "
                            "value, got %s",
                            s->source, idx,
                            cJSON_IsObject(c) ? "an empty object" : "another value");
        for (const cJSON *k = c->child; k; k = k->next) {
            char where[200];
            snprintf(where, sizeof where, "sweep.cases[%zu].\"\"", idx);
            if ((rc = key_path_check(s->source, where, k->string, err)))
                return rc;
            for (const cJSON *o = c->child; o != k; o = o->next)
                if (strcmp(o->string, k->string) == 0)
                    return cli_fail(err, BS_ERR_INVALID,
                                    "%s: sweep.cases[%zu].%s: key appears more than once",
                                    s->source, idx, k->string);
            if (!cJSON_GetObjectItemCaseSensitive(first, k->string))
                return cli_fail(err, BS_ERR_INVALID,
                                "%s: sweep.cases[%zu].%s: not in sweep.cases[0]; every case "
                                "gives the same keys",
                                s->source, idx, k->string);
        }
        for (const cJSON *k = first->child; k; k = k->next)
            if (!cJSON_GetObjectItemCaseSensitive(c, k->string))
                return cli_fail(err, BS_ERR_INVALID,
                                "%s: sweep.cases[%zu]: lacks %s, which sweep.cases[0] gives; "
                                "every case gives the same keys",
                                s->source, idx, k->string);
    }
    for (const cJSON *k = first->child; k; k = k->next) {
        sweep_axis *axis = axis_add(s, k->string, n, err);
        if (!axis)
            return BS_ERR_NOMEM;
        axis->zipped = s->n_axes - 1 > lead;
        for (const cJSON *c = first; c; c = c->next)
            if ((rc = axis_push(axis, cJSON_GetObjectItemCaseSensitive(c, k->string), err)))
                return rc;
    }
    return BS_OK;
}

/* Checks that every swept path names a config key, by applying its first
 * value to the base config: the core reports an unknown path as a --set
 * error, which is rewritten to name the file and the sweep entry. Errors in
 * the value itself are left for that point's row. */
static int axis_check_path(const sweep *s, const sweep_axis *axis, bs_error *err)
{
    bs_config cfg;
    bs_error e = {{0}};
    bs_override ov = {axis->path, axis->values[0]};
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, s->base_text, s->source, &ov, 1, &e);
    bs_config_free(&cfg);
    if (rc == BS_ERR_NOMEM)
        return cli_fail(err, rc, "out of memory");
    const char *prefix = "--set ";
    size_t path_len = strlen(axis->path);
    if (rc && strncmp(e.message, prefix, strlen(prefix)) == 0) {
        const char *rest = e.message + strlen(prefix);
        if (strncmp(rest, axis->path, path_len) == 0 && rest[path_len] == ':')
            rest += path_len + 1;
        return cli_fail(err, BS_ERR_INVALID, "%s: sweep.%s: not a config key path:%s", s->source,
                        axis->path, rest);
    }
    return BS_OK;
}

static long find_axis(const sweep *s, const char *path)
{
    for (size_t k = 0; k < s->n_axes; k++)
        if (strcmp(s->axes[k].path, path) == 0)
            return (long)k;
    return -1;
}

/* "baseline": {KEY: VALUE, ...} names one value of some swept keys; a
 * point's baseline is the point with those values and its own on every
 * other key. Keys of the cases pick the first case that matches all of
 * them. */
static int baseline_read(sweep *s, const cJSON *spec, bs_error *err)
{
    sweep_result view = {s->axes, s->n_axes, NULL, 0};
    if (!cJSON_IsObject(spec) || !spec->child)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: sweep.baseline: expected an object of swept key -> value, such as "
                        "{\"schedule\": \"1f1b\"}",
                        s->source);
    if (!(s->baseline = malloc(s->n_axes * sizeof *s->baseline)))
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < s->n_axes; k++)
        s->baseline[k] = -1;
    for (const cJSON *b = spec->child; b; b = b->next) {
        long k = find_axis(s, b->string);
        if (k < 0)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: sweep.baseline.%s: not a swept key; the baseline gives values "
                            "of swept keys",
                            s->source, b->string);
        for (const cJSON *o = spec->child; o != b; o = o->next)
            if (strcmp(o->string, b->string) == 0)
                return cli_fail(err, BS_ERR_INVALID,
                                "%s: sweep.baseline.%s: key appears more than once", s->source,
                                b->string);
    }
    /* Per group: the first value index where every named key matches. */
    for (size_t lead = 0; lead < s->n_axes; lead++) {
        if (s->axes[lead].zipped)
            continue;
        int named = 0;
        for (size_t j = 0; j < s->axes[lead].count && s->baseline[lead] < 0; j++) {
            int match = 1;
            for (size_t k = lead; k < s->n_axes && sweep_axis_leader(&view, k) == lead; k++) {
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(spec, s->axes[k].path);
                if (!b)
                    continue;
                named = 1;
                char *text = cJSON_PrintUnformatted(b);
                if (!text)
                    return cli_fail(err, BS_ERR_NOMEM, "out of memory");
                match &= strcmp(text, s->axes[k].values[j]) == 0;
                cJSON_free(text);
            }
            if (named && match)
                s->baseline[lead] = (long)j;
        }
        int is_cases = lead + 1 < s->n_axes && s->axes[lead + 1].zipped;
        if (named && s->baseline[lead] < 0 && is_cases)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: sweep.baseline: no case of sweep.cases has the baseline's values "
                            "of its keys",
                            s->source);
        if (named && s->baseline[lead] < 0)
            return cli_fail(err, BS_ERR_INVALID,
                            "%s: sweep.baseline.%s: not one of the swept values of %s", s->source,
                            s->axes[lead].path, s->axes[lead].path);
    }
    s->has_baseline = 1;
    return BS_OK;
}

/* The baseline point of point i. */
static size_t baseline_point(const sweep *s, size_t i)
{
    sweep_result view = {s->axes, s->n_axes, NULL, s->points};
    size_t b = 0;
    for (size_t k = 0; k < s->n_axes; k++) {
        if (s->axes[k].zipped)
            continue;
        size_t j = s->baseline[k] >= 0 ? (size_t)s->baseline[k] : sweep_value_index(&view, i, k);
        b = b * s->axes[k].count + j;
    }
    return b;
}

/* Splits the file into base text and axes, checks the base once, and
 * counts the points. */
static int sweep_read(sweep *s, const char *text, unsigned long long max_points, bs_error *err)
{
    int rc = BS_OK;
    cJSON *root = cJSON_ParseWithOpts(text, NULL, 1), *spec = NULL;
    if (!root || !cJSON_IsObject(root)) {
        /* The core words syntax errors with line and column. */
        bs_config cfg;
        bs_config_init(&cfg);
        rc = bs_config_parse(&cfg, text, s->source, NULL, 0, err);
        bs_config_free(&cfg);
        if (rc == BS_OK)
            rc = cli_fail(err, BS_ERR_INTERNAL, "%s: cJSON and the core disagree", s->source);
        goto error;
    }
    spec = cJSON_DetachItemFromObjectCaseSensitive(root, "sweep");
    if (!spec) {
        rc = cli_fail(err, BS_ERR_INVALID,
                      "%s: sweep: missing; a sweep config is a config plus \"sweep\": {KEY: "
                      "[VALUE, ...], ...} (see docs/sweeps.md)",
                      s->source);
        goto error;
    }
    if (!cJSON_IsObject(spec) || !spec->child) {
        rc = cli_fail(err, BS_ERR_INVALID,
                      "%s: sweep: expected an object mapping key paths to lists of values, got "
                      "%s",
                      s->source,
                      cJSON_IsObject(spec)  ? "an empty object"
                      : cJSON_IsArray(spec) ? "a list (write {\"KEY\": [VALUE, ...]})"
                                            : "a single value");
        goto error;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "sweep")) {
        rc = cli_fail(err, BS_ERR_INVALID, "%s: sweep: key appears more than once", s->source);
        goto error;
    }
    if (!(s->base_text = cJSON_PrintUnformatted(root))) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    /* The base once, before any point: a typo there would refuse every
     * point with the same reason. Values the sweep sets are checked per
     * point (a base whose P does not fit its cost arrays may be completed
     * by the swept P). */
    if ((rc = bs_config_check_keys(s->base_text, s->source, NULL, 0, err)))
        goto error;
    const cJSON *baseline = NULL;
    for (const cJSON *list = spec->child; list; list = list->next) {
        for (const cJSON *other = spec->child; other != list; other = other->next)
            if (strcmp(other->string, list->string) == 0) {
                rc = cli_fail(err, BS_ERR_INVALID, "%s: sweep.%s: key appears more than once",
                              s->source, list->string);
                goto error;
            }
        size_t before = s->n_axes;
        if (strcmp(list->string, "baseline") == 0) {
            baseline = list;
            continue;
        }
        if ((rc = strcmp(list->string, "cases") == 0 ? cases_read(s, list, err)
                                                     : axis_read(s, list, err)))
            goto error;
        for (size_t k = before; k < s->n_axes; k++) {
            long twice = find_axis(s, s->axes[k].path);
            if (twice >= 0 && (size_t)twice != k) {
                rc = cli_fail(err, BS_ERR_INVALID,
                              "%s: sweep.%s: swept twice (as a list and in cases, or in both); "
                              "give each key in one place",
                              s->source, s->axes[k].path);
                goto error;
            }
            if ((rc = axis_check_path(s, &s->axes[k], err)))
                goto error;
        }
    }
    if (s->n_axes == 0) {
        rc =
            cli_fail(err, BS_ERR_INVALID,
                     "%s: sweep: nothing to sweep; give KEY: [VALUE, ...] or \"cases\"", s->source);
        goto error;
    }
    /* Saturating product over the groups: only "over the limit" matters;
     * the exact size (or its magnitude) goes into the message. */
    unsigned long long points = 1, exact = 1;
    double magnitude = 1;
    int overflow = 0;
    for (size_t k = 0; k < s->n_axes; k++) {
        size_t n = s->axes[k].count;
        if (s->axes[k].zipped)
            continue;
        magnitude *= (double)n;
        if (exact > ULLONG_MAX / n)
            overflow = 1;
        else
            exact *= n;
        if (points > max_points / n)
            points = max_points + 1;
        else
            points *= n;
    }
    if (points > max_points) {
        char size[64];
        if (!overflow)
            snprintf(size, sizeof size, "%llu", exact);
        else
            snprintf(size, sizeof size, "about %.3g (more than 2^64)", magnitude);
        rc = cli_fail(err, BS_ERR_LIMIT,
                      "%s: sweep: %s points exceed the limit of %llu; sweep fewer values or "
                      "raise --max-points",
                      s->source, size, max_points);
        goto error;
    }
    s->points = (size_t)points;
    if (baseline && (rc = baseline_read(s, baseline, err)))
        goto error;
error:
    cJSON_Delete(spec);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------- simulation */

static int refused(int rc)
{
    return rc == BS_ERR_INVALID || rc == BS_ERR_LIMIT || rc == BS_ERR_DEADLOCK;
}

/* The reason without the "FILE: " prefix every row would repeat. */
static char *reason_text(const char *source, const char *message)
{
    size_t n = strlen(source);
    if (strncmp(message, source, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
        message += n + 2;
    return strdup(message);
}

static void row_fill(sweep_row *row, const bs_result *r)
{
    row->ok = 1;
    snprintf(row->schedule, sizeof row->schedule, "%s", r->schedule);
    row->stages = r->stages;
    row->microbatches = r->microbatches;
    row->virtual_stages = r->virtual_stages;
    row->makespan = r->makespan;
    row->iteration_time = r->iteration_time;
    row->bubble_ratio = r->bubble_ratio;
    row->bubble_over_ideal = r->bubble_over_ideal;
    row->span_bubble_ratio = r->span_bubble_ratio;
    row->formula_valid = r->formula.valid;
    row->formula_bubble_ratio = r->formula.bubble_ratio;
    row->peak_activations = r->peak_activations;
    row->peak_activation_bytes = r->peak_activation_bytes;
    row->weight_versions = r->weight_versions;
    row->messages = r->messages;
    row->message_bytes = r->message_bytes;
    /* Decode runs' serving figures; no value for other schedules. */
    row->time_per_output_token = r->inference.valid ? r->inference.time_per_output_token : NAN;
    row->tokens_per_second = r->inference.valid ? r->inference.tokens_per_second : NAN;
}

/* Simulates point i into its row; returns non-zero only for failures that
 * must stop the sweep. */
static int run_point(sweep *s, size_t i, bs_context *ctx, bs_override *ov, bs_error *err)
{
    sweep_result view = {s->axes, s->n_axes, s->rows, s->points};
    sweep_row *row = &s->rows[i - s->first];
    const bs_result *res;
    bs_config cfg;
    bs_config_init(&cfg);
    for (size_t k = 0; k < s->n_axes; k++)
        ov[k] = (bs_override){s->axes[k].path, s->axes[k].values[sweep_value_index(&view, i, k)]};
    err->message[0] = '\0';
    int rc = bs_config_parse(&cfg, s->base_text, s->source, ov, s->n_axes, err);
    if (rc == BS_OK)
        rc = bs_context_run(ctx, &cfg, NULL, &res, err);
    bs_config_free(&cfg);
    if (rc == BS_OK) {
        row_fill(row, res);
        return BS_OK;
    }
    if (!refused(rc))
        return rc;
    if (!(row->reason = reason_text(s->source, err->message)))
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    return BS_OK;
}

static void *worker(void *arg)
{
    sweep *s = arg;
    bs_context *ctx = NULL;
    bs_error err = {{0}};
    bs_override *ov = calloc(s->n_axes, sizeof *ov);
    int rc = !ov ? cli_fail(&err, BS_ERR_NOMEM, "out of memory") : bs_context_create(&ctx);
    if (rc == BS_ERR_NOMEM && !err.message[0])
        cli_fail(&err, rc, "out of memory");
    for (;;) {
        size_t i = 0;
        pthread_mutex_lock(&s->lock);
        if (rc && !s->fatal_rc) {
            s->fatal_rc = rc;
            s->fatal = err;
        }
        if (s->watch_signal && cli_interrupt_signal())
            s->stop = 1;
        if (!s->fatal_rc && !s->stop && s->next < s->first + s->count)
            i = s->next++;
        else
            i = SIZE_MAX;
        pthread_mutex_unlock(&s->lock);
        if (i == SIZE_MAX)
            break;
        rc = run_point(s, i, ctx, ov, &err);
        if (rc == BS_ERR_NOMEM && !err.message[0])
            cli_fail(&err, rc, "out of memory");
        pthread_mutex_lock(&s->lock);
        if (++s->done == s->count || rc)
            pthread_cond_signal(&s->progress);
        /* Raised under the lock: the handler only records the signal (or
         * exits), and no other worker takes a point before it has. */
        if (s->sigint_after && s->done == s->sigint_after)
            raise(SIGINT);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->progress);
    pthread_mutex_unlock(&s->lock);
    bs_context_free(&ctx);
    free(ov);
    return NULL;
}

static void progress_draw(size_t done, size_t total, double elapsed)
{
    int filled = total ? (int)((double)done / (double)total * PROGRESS_WIDTH) : PROGRESS_WIDTH;
    char bar[PROGRESS_WIDTH + 1];
    for (int j = 0; j < PROGRESS_WIDTH; j++)
        bar[j] = j < filled ? '#' : ' ';
    bar[PROGRESS_WIDTH] = '\0';
    fprintf(stderr, "\rsweep [%s] %zu/%zu points, %.1f s", bar, done, total, elapsed);
    fflush(stderr);
}

/* Runs every point on `jobs` threads; the calling thread only watches. */
static int sweep_run(sweep *s, int jobs, bs_error *err)
{
    pthread_t threads[SWEEP_MAX_JOBS];
    int started = 0, show = isatty(STDERR_FILENO), drawn = 0;
    double t0 = now_seconds();
    pthread_mutex_lock(&s->lock);
    for (; started < jobs; started++) {
        if (pthread_create(&threads[started], NULL, worker, s) != 0) {
            if (started == 0) {
                pthread_mutex_unlock(&s->lock);
                return cli_fail(err, BS_ERR_INTERNAL, "cannot start a worker thread: %s",
                                strerror(errno));
            }
            break; /* fewer workers still finish the sweep */
        }
    }
    while (s->done < s->count && !s->fatal_rc && !s->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->progress, &s->lock, &until);
        if (s->watch_signal && cli_interrupt_signal())
            s->stop = 1;
        double elapsed = now_seconds() - t0;
        if (show && elapsed > PROGRESS_DELAY_S && s->done < s->count) {
            progress_draw(s->done, s->count, elapsed);
            drawn = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    if (drawn) {
        progress_draw(s->done, s->count, now_seconds() - t0);
        fputc('\n', stderr);
    }
    if (s->fatal_rc) {
        *err = s->fatal;
        return s->fatal_rc;
    }
    return BS_OK;
}

/* ----------------------------------------------------------------- output */

static const char *const metric_columns[] = {
    "makespan",          "iteration_time",        "bubble_ratio",
    "bubble_over_ideal", "span_bubble_ratio",     "formula_bubble_ratio",
    "peak_activations",  "peak_activation_bytes", "weight_versions",
    "messages",          "message_bytes",         "time_per_output_token",
    "tokens_per_second",
};
#define N_METRICS (sizeof metric_columns / sizeof metric_columns[0])

/* The metric cells of a row as text; an empty cell is no value. */
static void metric_cells(const sweep_row *row, char cells[N_METRICS][40])
{
    double v[N_METRICS] = {
        row->makespan,          row->iteration_time,        row->bubble_ratio,
        row->bubble_over_ideal, row->span_bubble_ratio,     row->formula_bubble_ratio,
        row->peak_activations,  row->peak_activation_bytes, row->weight_versions,
        (double)row->messages,  row->message_bytes,         row->time_per_output_token,
        row->tokens_per_second};
    for (size_t c = 0; c < N_METRICS; c++) {
        int empty = !row->ok || (c == 5 && !row->formula_valid) || !isfinite(v[c]);
        if (empty)
            cells[c][0] = '\0';
        else
            format_number(cells[c], sizeof cells[c], v[c]);
    }
}

/* The speedup cell: empty when the point or its baseline was refused. */
static void speedup_cell(const sweep_row *row, char *buf, size_t size)
{
    if (isfinite(row->speedup))
        format_number(buf, size, row->speedup);
    else
        buf[0] = '\0';
}

/* Fills every row's speedup against its baseline point (NAN without one). */
static void speedups_compute(sweep *s)
{
    for (size_t i = 0; i < s->points; i++) {
        sweep_row *row = &s->rows[i];
        row->speedup = NAN;
        if (!s->has_baseline || !row->ok)
            continue;
        const sweep_row *b = &s->rows[baseline_point(s, i)];
        if (b->ok && row->iteration_time > 0)
            row->speedup = b->iteration_time / row->iteration_time;
    }
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n") && s[0] != ' ') {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void write_rows_csv(FILE *out, const sweep *s)
{
    sweep_result view = {s->axes, s->n_axes, s->rows, s->points};
    for (size_t k = 0; k < s->n_axes; k++) {
        csv_field(out, s->axes[k].path);
        fputc(',', out);
    }
    for (size_t c = 0; c < N_METRICS; c++)
        fprintf(out, "%s,", metric_columns[c]);
    if (s->has_baseline)
        fputs("speedup,", out);
    fputs("reason\n", out);
    for (size_t i = 0; i < s->points; i++) {
        char cells[N_METRICS][40];
        if (s->finished_only && !s->rows[i].ok && !s->rows[i].reason)
            continue; /* never simulated: the sweep was interrupted */
        for (size_t k = 0; k < s->n_axes; k++) {
            csv_field(out, s->axes[k].labels[sweep_value_index(&view, i, k)]);
            fputc(',', out);
        }
        metric_cells(&s->rows[i], cells);
        for (size_t c = 0; c < N_METRICS; c++)
            fprintf(out, "%s,", cells[c]);
        if (s->has_baseline) {
            speedup_cell(&s->rows[i], cells[0], sizeof cells[0]);
            fprintf(out, "%s,", cells[0]);
        }
        csv_field(out, s->rows[i].ok ? "" : s->rows[i].reason);
        fputc('\n', out);
    }
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void write_rows_json(FILE *out, const sweep *s)
{
    sweep_result view = {s->axes, s->n_axes, s->rows, s->points};
    fputs("{\n  \"config\": ", out);
    json_string(out, s->source);
    fputs(",\n  \"swept\": {", out);
    for (size_t k = 0; k < s->n_axes; k++) {
        fputs(k ? ", " : "", out);
        json_string(out, s->axes[k].path);
        fputs(": [", out);
        for (size_t j = 0; j < s->axes[k].count; j++)
            fprintf(out, "%s%s", j ? ", " : "", s->axes[k].values[j]);
        fputc(']', out);
    }
    fputs("},\n  \"rows\": [", out);
    for (size_t i = 0; i < s->points; i++) {
        char cells[N_METRICS][40];
        fputs(i ? ",\n    {" : "\n    {", out);
        for (size_t k = 0; k < s->n_axes; k++) {
            json_string(out, s->axes[k].path);
            fprintf(out, ": %s, ", s->axes[k].values[sweep_value_index(&view, i, k)]);
        }
        metric_cells(&s->rows[i], cells);
        for (size_t c = 0; c < N_METRICS; c++)
            fprintf(out, "\"%s\": %s, ", metric_columns[c], cells[c][0] ? cells[c] : "null");
        if (s->has_baseline) {
            speedup_cell(&s->rows[i], cells[0], sizeof cells[0]);
            fprintf(out, "\"speedup\": %s, ", cells[0][0] ? cells[0] : "null");
        }
        fputs("\"reason\": ", out);
        if (s->rows[i].ok)
            fputs("null", out);
        else
            json_string(out, s->rows[i].reason);
        fputc('}', out);
    }
    fputs(s->points ? "\n  ]\n}\n" : "]\n}\n", out);
}

static int write_file(const char *dir, const char *stem, const char *ext,
                      void (*write)(FILE *, const sweep *), const sweep *s, bs_error *err)
{
    char path[8192];
    cli_outfile f;
    int rc;
    snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext);
    if ((rc = cli_outfile_open(&f, path, err)))
        return rc;
    write(f.file, s);
    return cli_outfile_commit(&f, err);
}

/* ----------------------------------------------------------------- shards */

/* A shard file, DIR/STEM.shard-K-of-N: a header line, a JSON line naming
 * the sweep and the shard, the sweep's definition (the config with --set
 * written in, one line), then one line per point of the shard:
 *   INDEX ok SCHEDULE STAGES M V FORMULA_VALID WEIGHT_VERSIONS MESSAGES
 *         then the eleven doubles in C's exact hexadecimal form (%a), and
 *         (version 2) the decode figures time_per_output_token and
 *         tokens_per_second (nan when the point is not a decode run)
 *   INDEX refused REASON (with %, CR, LF and other control bytes as %XX)
 * so that `bubblesim merge` rebuilds every row bit for bit and writes the
 * files through the same code as an unsharded sweep. */
#define SHARD_MAGIC "bubblesim-sweep-shard 2"

/* FNV-1a: names the sweep a shard belongs to, to refuse mixing sweeps. */
static unsigned long long fingerprint(const char *text)
{
    unsigned long long h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* Shard k (1-based) of n over `points`: the first n - 1 get the quotient,
 * the first (points mod n) of them one more; no product can overflow. */
static void shard_range(size_t points, size_t k, size_t n, size_t *first, size_t *count)
{
    size_t q = points / n, r = points % n;
    *first = (k - 1) * q + (k - 1 < r ? k - 1 : r);
    *count = q + (k - 1 < r);
}

static void shard_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '%' || c == 0x7f)
            fprintf(out, "%%%02X", c);
        else
            fputc(c, out);
    }
}

static void write_shard(FILE *out, const sweep *s, const char *definition, const char *stem,
                        size_t k, size_t n)
{
    fputs(SHARD_MAGIC "\n{\"source\": ", out);
    json_string(out, s->source);
    fputs(", \"stem\": ", out);
    json_string(out, stem);
    fprintf(out,
            ", \"shard\": %zu, \"shards\": %zu, \"points\": %zu, \"first\": %zu, \"count\": %zu, "
            "\"fingerprint\": \"%016llx\"}\n%s\n",
            k, n, s->points, s->first, s->count, fingerprint(definition), definition);
    for (size_t i = 0; i < s->count; i++) {
        const sweep_row *r = &s->rows[i];
        if (!r->ok) {
            fprintf(out, "%zu refused ", s->first + i);
            shard_escape(out, r->reason ? r->reason : "");
            fputc('\n', out);
            continue;
        }
        fprintf(out, "%zu ok %s %d %d %d %d %d %llu", s->first + i, r->schedule, r->stages,
                r->microbatches, r->virtual_stages, r->formula_valid, r->weight_versions,
                (unsigned long long)r->messages);
        double v[] = {r->makespan,          r->iteration_time,
                      r->bubble_ratio,      r->bubble_over_ideal,
                      r->span_bubble_ratio, r->formula_bubble_ratio,
                      r->peak_activations,  r->peak_activation_bytes,
                      r->message_bytes,     r->time_per_output_token,
                      r->tokens_per_second};
        for (size_t c = 0; c < sizeof v / sizeof v[0]; c++)
            fprintf(out, " %a", v[c]);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------------------ main */

static int parse_count(const char *option, const char *text, unsigned long long min,
                       unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || text[0] == '+' || v < min || v > max) {
        fprintf(stderr, "bubblesim: sweep: %s %s: expected an integer from %llu to %llu\n", option,
                text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* "K/N" with 1 <= K <= N <= SWEEP_MAX_SHARDS. */
static int parse_shard(const char *text, size_t *k, size_t *n)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    unsigned long long kk, nn;
    if (!slash || (size_t)(slash - text) >= sizeof buf) {
        fprintf(stderr,
                "bubblesim: sweep: --shard %s: expected K/N, such as 3/8 (shard K of N, "
                "K from 1 to N)\n",
                text);
        return -1;
    }
    snprintf(buf, sizeof buf, "%.*s", (int)(slash - text), text);
    char *end;
    errno = 0;
    nn = strtoull(slash + 1, &end, 10);
    int bad_n = !slash[1] || *end || errno || !isdigit((unsigned char)slash[1]) || nn < 1 ||
                nn > SWEEP_MAX_SHARDS;
    kk = strtoull(buf, &end, 10);
    int bad_k = !buf[0] || *end || errno || !isdigit((unsigned char)buf[0]) || kk < 1 ||
                (!bad_n && kk > nn);
    if (bad_n || bad_k) {
        fprintf(stderr,
                "bubblesim: sweep: --shard %s: expected K/N with N from 1 to %llu and K from 1 "
                "to N (shard K of N)\n",
                text, SWEEP_MAX_SHARDS);
        return -1;
    }
    *k = (size_t)kk;
    *n = (size_t)nn;
    return 0;
}

/* DIR/NAME.csv is named after the config file: NAME is its base name
 * without ".json". */
static void stem_of(char *stem, size_t size, const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0)
        len -= 5;
    snprintf(stem, size, "%.*s", (int)(len < 1000 ? len : 1000), base);
}

static void sweep_free(sweep *s)
{
    for (size_t i = 0; s->rows && i < s->count; i++)
        free(s->rows[i].reason);
    free(s->rows);
    free(s->baseline);
    axes_free(s->axes, s->n_axes);
    cJSON_free(s->base_text);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->progress);
}

static void sweep_init(sweep *s, const char *source)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->progress, NULL);
    s->source = source;
}

/* After every point is in: exit 2 when all were refused (nothing written),
 * else the speedups. */
static int sweep_finish_rows(sweep *s, bs_error *err)
{
    size_t refused_rows = 0;
    for (size_t i = 0; i < s->points; i++)
        refused_rows += !s->rows[i].ok;
    if (s->points > 0 && refused_rows == s->points)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: sweep: all %zu points were refused, so nothing was written; the "
                        "first point's reason: %s",
                        s->source, s->points, s->rows[0].reason ? s->rows[0].reason : "none");
    speedups_compute(s);
    return BS_OK;
}

/* Stages DIR/STEM.EXT into the output set. */
static int stage_file(cli_outset *set, const char *dir, const char *stem, const char *ext,
                      void (*write)(FILE *, const sweep *), const sweep *s, bs_error *err)
{
    char path[8192];
    FILE *f;
    int rc;
    snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext);
    if ((rc = cli_outset_add(set, path, &f, err)) < 0)
        return rc;
    write(f, s);
    return BS_OK;
}

/* Writes DIR/STEM.csv, DIR/STEM.json and the charts as one output set
 * (outfile.h: all or none), then removes a DIR/STEM.partial.csv left by an
 * interrupted run: the set is complete. Without gnuplot the charts' data and
 * scripts are written and BS_ERR_IO says so (exit 2, as run and tune). */
static int sweep_write_outputs(sweep *s, const char *out_dir, const char *stem, int plot,
                               bs_error *err)
{
    int rc;
    cli_outset set;
    cli_outset_init(&set);
    if ((rc = stage_file(&set, out_dir, stem, "csv", write_rows_csv, s, err)) ||
        (rc = stage_file(&set, out_dir, stem, "json", write_rows_json, s, err)))
        goto error;
    if (plot) {
        sweep_result view = {s->axes, s->n_axes, s->rows, s->points};
        if ((rc = sweep_plot(&view, &set, out_dir, stem, err)))
            goto error;
    }
    if ((rc = cli_outset_commit(&set, err)))
        goto error;
    char stale[8192];
    snprintf(stale, sizeof stale, "%s/%s.partial.csv", out_dir, stem);
    unlink(stale);
    size_t refused_rows = 0;
    for (size_t i = 0; i < s->points; i++)
        refused_rows += !s->rows[i].ok;
    fprintf(stderr, "bubblesim: %zu points (%zu refused) -> %s/%s.csv, %s/%s.json\n", s->points,
            refused_rows, out_dir, stem, out_dir, stem);
    if (set.gnuplot_missing)
        return cli_chart_missing_error(&set, err);
    return BS_OK;
error:
    cli_outset_abort(&set);
    return rc;
}

int cli_sweep(int argc, char **argv)
{
    const char *path = NULL, *out_dir = NULL;
    unsigned long long max_points = SWEEP_DEFAULT_MAX_POINTS, jobs_arg = 0;
    int plot = 0, partial = 0, rc = BS_OK, code = EXIT_OK;
    size_t shard_k = 0, shard_n = 0;
    char *text = NULL, *definition = NULL, stem[1024];
    bs_override *overrides = calloc((size_t)argc + 1, sizeof *overrides);
    size_t n_overrides = 0;
    bs_error err = {{0}};
    sweep s;
    sweep_init(&s, NULL);
    if (!overrides) {
        fprintf(stderr, "bubblesim: out of memory\n");
        code = EXIT_FAILURE_OTHER;
        goto done;
    }

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int takes_value = strcmp(a, "--out") == 0 || strcmp(a, "--jobs") == 0 ||
                          strcmp(a, "--max-points") == 0 || strcmp(a, "--set") == 0 ||
                          strcmp(a, "--shard") == 0;
        if (takes_value && i + 1 >= argc) {
            fprintf(stderr, "bubblesim: sweep: %s needs a value (see bubblesim sweep --help)\n", a);
            code = EXIT_BAD_INPUT;
            goto done;
        }
        if (strcmp(a, "--out") == 0) {
            out_dir = argv[++i];
        } else if (strcmp(a, "--jobs") == 0) {
            if (parse_count(a, argv[++i], 1, SWEEP_MAX_JOBS, &jobs_arg)) {
                code = EXIT_BAD_INPUT;
                goto done;
            }
        } else if (strcmp(a, "--max-points") == 0) {
            if (parse_count(a, argv[++i], 1, SIZE_MAX / sizeof(sweep_row), &max_points)) {
                code = EXIT_BAD_INPUT;
                goto done;
            }
        } else if (strcmp(a, "--shard") == 0) {
            if (parse_shard(argv[++i], &shard_k, &shard_n)) {
                code = EXIT_BAD_INPUT;
                goto done;
            }
        } else if (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0) {
            char *kv = a[5] == '=' ? argv[i] + 6 : argv[++i];
            if (cli_parse_override(kv, &overrides[n_overrides])) {
                fprintf(stderr, "bubblesim: sweep: --set %s: expected KEY=VALUE\n", kv);
                code = EXIT_BAD_INPUT;
                goto done;
            }
            n_overrides++;
        } else if (strcmp(a, "--plot") == 0) {
            plot = 1;
        } else if (strcmp(a, "--partial") == 0) {
            partial = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr,
                    "bubblesim: sweep: unknown option \"%s\" (see bubblesim sweep --help)\n", a);
            code = EXIT_BAD_INPUT;
            goto done;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bubblesim: sweep: one CONFIG expected, got \"%s\" and \"%s\"\n", path,
                    a);
            code = EXIT_BAD_INPUT;
            goto done;
        }
    }
    if (!path) {
        fprintf(stderr, "bubblesim: sweep: missing CONFIG (see bubblesim sweep --help)\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (plot && !out_dir) {
        fprintf(stderr, "bubblesim: sweep: --plot needs --out DIR for the charts\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (partial && !out_dir) {
        fprintf(stderr, "bubblesim: sweep: --partial needs --out DIR for NAME.partial.csv\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (shard_n && (!out_dir || plot || partial)) {
        fprintf(stderr, "bubblesim: sweep: --shard needs --out DIR and takes neither --plot nor "
                        "--partial (`bubblesim merge` joins the shards and draws the charts)\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    stem_of(stem, sizeof stem, path);
    s.source = path;
    /* A signal while the config is read still says what happened. */
    cli_install_interrupt_cleanup();
    if ((rc = bs_read_text_file(path, &text, &err)))
        goto failed;
    /* --set goes into the text before the sweep is split off, so that it is
     * checked as the same key in the file would be. */
    if ((n_overrides || shard_n) &&
        (rc = bs_config_apply_overrides(text, path, overrides, n_overrides, &definition, &err)))
        goto failed;
    if ((rc = sweep_read(&s, definition ? definition : text, max_points, &err)))
        goto failed;
    for (size_t k = 0; k < n_overrides; k++)
        if (find_axis(&s, overrides[k].path) >= 0) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s: --set %s: the sweep sets this key at every point; change its "
                          "values in \"sweep\" instead",
                          path, overrides[k].path);
            goto failed;
        }
    s.first = 0;
    s.count = s.points;
    if (shard_n)
        shard_range(s.points, shard_k, shard_n, &s.first, &s.count);
    s.next = s.first;
    if (s.count && !(s.rows = calloc(s.count, sizeof *s.rows))) {
        rc = cli_fail(&err, BS_ERR_NOMEM, "out of memory for %zu sweep rows", s.count);
        goto failed;
    }
    if (out_dir && (rc = cli_prepare_dir(out_dir, &err)))
        goto failed;
    if (partial)
        cli_install_interrupt_flag();
    else
        cli_install_interrupt_cleanup();
    s.watch_signal = partial;
    const char *hook = getenv("BUBBLESIM_TEST_SIGINT_AFTER");
    s.sigint_after = hook ? strtoull(hook, NULL, 10) : 0;

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long long jobs = jobs_arg ? jobs_arg : (cpus > 0 ? (unsigned long long)cpus : 1);
    if (jobs > SWEEP_MAX_JOBS)
        jobs = SWEEP_MAX_JOBS;
    if (jobs > s.count)
        jobs = s.count;
    rc = s.count ? sweep_run(&s, (int)jobs, &err) : BS_OK;
    if (partial) {
        /* From here on a signal removes unfinished files at once; one that
         * came after the last point still counts as an interruption. */
        cli_install_interrupt_cleanup();
        if (cli_interrupt_signal())
            s.stop = 1;
    }
    if (s.stop) {
        int sig = cli_interrupt_signal();
        size_t finished = 0;
        for (size_t i = 0; i < s.points; i++)
            finished += s.rows[i].ok || s.rows[i].reason;
        s.finished_only = 1;
        speedups_compute(&s); /* against finished baselines only */
        char partial_stem[1100];
        snprintf(partial_stem, sizeof partial_stem, "%s.partial", stem);
        int wrc = write_file(out_dir, partial_stem, "csv", write_rows_csv, &s, &err);
        if (wrc) {
            fprintf(stderr, "bubblesim: sweep interrupted; %s\n", err.message);
        } else {
            fprintf(
                stderr,
                "bubblesim: sweep interrupted after %zu of %zu points; the finished rows are in "
                "%s/%s.csv (no %s.csv or %s.json was written)\n",
                finished, s.points, out_dir, partial_stem, stem, stem);
        }
        code = 128 + sig;
        goto done;
    }
    if (rc)
        goto failed;
    if (shard_n) {
        char name[1200];
        cli_outfile f;
        snprintf(name, sizeof name, "%s.shard-%zu-of-%zu", stem, shard_k, shard_n);
        char file[8192];
        snprintf(file, sizeof file, "%s/%s", out_dir, name);
        if ((rc = cli_outfile_open(&f, file, &err)))
            goto failed;
        write_shard(f.file, &s, definition ? definition : text, stem, shard_k, shard_n);
        if ((rc = cli_outfile_commit(&f, &err)))
            goto failed;
        if (s.count)
            fprintf(stderr,
                    "bubblesim: shard %zu of %zu: points %zu to %zu of %zu -> %s (join the "
                    "shards with bubblesim merge)\n",
                    shard_k, shard_n, s.first, s.first + s.count - 1, s.points, file);
        else
            fprintf(stderr,
                    "bubblesim: shard %zu of %zu: no points (%zu points, fewer than shards) -> "
                    "%s\n",
                    shard_k, shard_n, s.points, file);
        goto done;
    }
    if ((rc = sweep_finish_rows(&s, &err)))
        goto failed;
    if (!out_dir) {
        write_rows_csv(stdout, &s);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "bubblesim: cannot write to standard output\n");
            code = EXIT_FAILURE_OTHER;
        }
        goto done;
    }
    if ((rc = sweep_write_outputs(&s, out_dir, stem, plot, &err)))
        goto failed;
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        cli_fail(&err, rc, "out of memory");
    code = cli_report_file(path, rc, &err);
done:
    sweep_free(&s);
    bs_text_free(text);
    bs_text_free(definition);
    free(overrides);
    return code;
}

int sweep_check_section(const char *text, const char *source, bs_error *err)
{
    sweep s;
    sweep_init(&s, source);
    int rc = sweep_read(&s, text, SIZE_MAX / sizeof(sweep_row), err);
    sweep_free(&s);
    return rc;
}

/* ------------------------------------------------------------------ merge */

typedef struct shard_file {
    char *path;
    size_t k, n;
} shard_file;

/* Whether name is STEM.shard-K-of-N; fills k and n. */
static int shard_name(const char *name, size_t *k, size_t *n)
{
    const char *at = NULL;
    for (const char *p = strstr(name, ".shard-"); p; p = strstr(p + 1, ".shard-"))
        at = p;
    unsigned long long kk, nn;
    int used = 0;
    if (!at || at == name || sscanf(at, ".shard-%llu-of-%llu%n", &kk, &nn, &used) != 2 ||
        at[used] != '\0' || !isdigit((unsigned char)at[7]))
        return 0;
    *k = (size_t)kk;
    *n = (size_t)nn;
    return 1;
}

/* Every shard file in the directories, sorted by K. */
static int shard_files_find(shard_file **out, size_t *n_out, char *const *dirs, size_t n_dirs,
                            bs_error *err)
{
    shard_file *files = NULL;
    size_t n = 0;
    int rc = BS_OK;
    for (size_t d = 0; d < n_dirs; d++) {
        DIR *dir = opendir(dirs[d]);
        size_t before = n;
        if (!dir) {
            rc = cli_fail(err, BS_ERR_IO, "%s: cannot open the directory: %s", dirs[d],
                          strerror(errno));
            goto error;
        }
        for (struct dirent *e; (e = readdir(dir));) {
            size_t k, sn;
            if (!shard_name(e->d_name, &k, &sn))
                continue;
            shard_file *bigger = realloc(files, (n + 1) * sizeof *files);
            size_t len = strlen(dirs[d]) + strlen(e->d_name) + 2;
            char *p = malloc(len);
            if (!bigger || !p) {
                free(bigger ? NULL : p);
                if (bigger)
                    files = bigger;
                free(p);
                closedir(dir);
                rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
                goto error;
            }
            files = bigger;
            snprintf(p, len, "%s/%s", dirs[d], e->d_name);
            files[n++] = (shard_file){p, k, sn};
        }
        closedir(dir);
        if (n == before) {
            rc = cli_fail(err, BS_ERR_INVALID,
                          "%s: no sweep shard in it (files NAME.shard-K-of-N that `bubblesim "
                          "sweep CONFIG --out %s --shard K/N` writes)",
                          dirs[d], dirs[d]);
            goto error;
        }
    }
    *out = files;
    *n_out = n;
    return BS_OK;
error:
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
    return rc;
}

static int shard_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        unsigned x;
        if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]) ||
            sscanf(r + 1, "%2x", &x) != 1 || x == 0)
            return -1;
        *w++ = (char)x;
        r += 2;
    }
    *w = '\0';
    return 0;
}

/* One row line of a shard into row (point index into *index). */
static int shard_row(char *line, size_t *index, sweep_row *row)
{
    char *rest, word[16];
    int used = 0;
    unsigned long long i;
    if (sscanf(line, "%llu %15s %n", &i, word, &used) != 2 || used == 0)
        return -1;
    *index = (size_t)i;
    rest = line + used;
    if (strcmp(word, "refused") == 0) {
        if (shard_unescape(rest) || !(row->reason = strdup(rest)))
            return -1;
        row->ok = 0;
        return 0;
    }
    if (strcmp(word, "ok") != 0)
        return -1;
    unsigned long long messages;
    double v[11];
    char schedule[BS_NAME_MAX + 1];
    used = 0;
    if (sscanf(rest, "%32s %d %d %d %d %d %llu %la %la %la %la %la %la %la %la %la %la %la%n",
               schedule, &row->stages, &row->microbatches, &row->virtual_stages,
               &row->formula_valid, &row->weight_versions, &messages, &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &used) != 18 ||
        rest[used] != '\0' || strlen(schedule) >= BS_NAME_MAX)
        return -1;
    row->ok = 1;
    snprintf(row->schedule, sizeof row->schedule, "%s", schedule);
    row->messages = messages;
    row->makespan = v[0];
    row->iteration_time = v[1];
    row->bubble_ratio = v[2];
    row->bubble_over_ideal = v[3];
    row->span_bubble_ratio = v[4];
    row->formula_bubble_ratio = v[5];
    row->peak_activations = v[6];
    row->peak_activation_bytes = v[7];
    row->message_bytes = v[8];
    row->time_per_output_token = v[9];
    row->tokens_per_second = v[10];
    return 0;
}

/* The header of a shard file: the JSON line's fields and the definition. */
typedef struct shard_head {
    char *source, *stem, *definition, *fingerprint;
    size_t k, n, points, first, count;
} shard_head;

static void shard_head_free(shard_head *h)
{
    free(h->source);
    free(h->stem);
    free(h->definition);
    free(h->fingerprint);
    memset(h, 0, sizeof *h);
}

static int json_size(const cJSON *obj, const char *key, size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 9.0e15) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (size_t)v->valuedouble;
    return 0;
}

static char *json_text(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* Reads lines 1 to 3 of a shard file. */
static int shard_head_read(shard_head *h, FILE *f, const char *path, char **line, size_t *cap,
                           bs_error *err)
{
    ssize_t len;
    cJSON *meta = NULL;
    memset(h, 0, sizeof *h);
    if ((len = getline(line, cap, f)) < 0 || strcmp(*line, SHARD_MAGIC "\n") != 0)
        return cli_fail(err, BS_ERR_INVALID, "%s: line 1: not a bubblesim sweep shard", path);
    if ((len = getline(line, cap, f)) < 0 || !(meta = cJSON_Parse(*line)) ||
        !(h->source = json_text(meta, "source")) || !(h->stem = json_text(meta, "stem")) ||
        !(h->fingerprint = json_text(meta, "fingerprint")) || json_size(meta, "shard", &h->k) ||
        json_size(meta, "shards", &h->n) || json_size(meta, "points", &h->points) ||
        json_size(meta, "first", &h->first) || json_size(meta, "count", &h->count)) {
        cJSON_Delete(meta);
        shard_head_free(h);
        return cli_fail(err, BS_ERR_INVALID, "%s: line 2: a damaged shard header", path);
    }
    cJSON_Delete(meta);
    if ((len = getline(line, cap, f)) < 1 || (*line)[len - 1] != '\n') {
        shard_head_free(h);
        return cli_fail(err, BS_ERR_INVALID, "%s: line 3: the sweep's definition is missing", path);
    }
    (*line)[len - 1] = '\0';
    if (!(h->definition = strdup(*line))) {
        shard_head_free(h);
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    }
    return BS_OK;
}

int sweep_merge(char *const *dirs, size_t n_dirs, const char *out_dir, int plot)
{
    shard_file *files = NULL;
    size_t n_files = 0, *owner = NULL, line_no = 0;
    shard_head first = {0}, h = {0};
    char *line = NULL, fp[32];
    size_t cap = 0;
    FILE *f = NULL;
    bs_error err = {{0}};
    int rc, code = EXIT_OK;
    sweep s;
    sweep_init(&s, NULL);
    if ((rc = shard_files_find(&files, &n_files, dirs, n_dirs, &err)))
        goto failed;
    for (size_t i = 0; i < n_files; i++) {
        const char *path = files[i].path;
        if (!(f = fopen(path, "r"))) {
            rc = cli_fail(&err, BS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            goto failed;
        }
        if ((rc = shard_head_read(&h, f, path, &line, &cap, &err)))
            goto failed;
        line_no = 3;
        size_t want_first, want_count;
        if (i == 0) {
            /* The first shard defines the sweep: its axes come from the same
             * reader as an unsharded run, so the files come out the same. */
            first = h;
            memset(&h, 0, sizeof h);
            s.source = first.source;
            snprintf(fp, sizeof fp, "%016llx", fingerprint(first.definition));
            if (strcmp(fp, first.fingerprint) != 0) {
                rc = cli_fail(&err, BS_ERR_INVALID,
                              "%s: line 3: the sweep's definition does not match its "
                              "fingerprint (a damaged shard)",
                              path);
                goto failed;
            }
            if ((rc = sweep_read(&s, first.definition, SIZE_MAX / sizeof(sweep_row), &err)))
                goto failed;
            if (s.points != first.points || first.n < 1 || first.n > SWEEP_MAX_SHARDS) {
                rc = cli_fail(&err, BS_ERR_INVALID,
                              "%s: line 2: %zu points and %zu shards do not match the sweep "
                              "(%zu points)",
                              path, first.points, first.n, s.points);
                goto failed;
            }
            s.count = s.points;
            if ((s.points && !(s.rows = calloc(s.points, sizeof *s.rows))) ||
                !(owner = calloc(first.n + 1, sizeof *owner))) {
                rc = cli_fail(&err, BS_ERR_NOMEM, "out of memory");
                goto failed;
            }
            h = first; /* checked below like every other shard */
        }
        if (strcmp(h.fingerprint, first.fingerprint) != 0 || strcmp(h.stem, first.stem) != 0 ||
            strcmp(h.source, first.source) != 0 || h.points != first.points) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s: a shard of another sweep than %s (a different config, --set or "
                          "file name); merge the shards of one sweep",
                          path, files[0].path);
            goto failed;
        }
        if (h.n != first.n || files[i].n != h.n || files[i].k != h.k) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s: shard %zu of %zu, but %s is one of %zu; every shard of a merge "
                          "comes from the same --shard K/N split",
                          path, h.k, h.n, files[0].path, first.n);
            goto failed;
        }
        if (h.k < 1 || h.k > h.n) {
            rc = cli_fail(&err, BS_ERR_INVALID, "%s: shard %zu of %zu is out of range", path, h.k,
                          h.n);
            goto failed;
        }
        if (owner[h.k]) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s and %s: both hold shard %zu of %zu (overlapping shards); give each "
                          "shard once",
                          files[owner[h.k] - 1].path, path, h.k, h.n);
            goto failed;
        }
        owner[h.k] = i + 1;
        shard_range(s.points, h.k, h.n, &want_first, &want_count);
        if (h.first != want_first || h.count != want_count) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s: line 2: points %zu to %zu, but shard %zu of %zu is %zu points "
                          "from %zu",
                          path, h.first, h.first + h.count, h.k, h.n, want_count, want_first);
            goto failed;
        }
        for (size_t j = 0; j < h.count; j++) {
            ssize_t len = getline(&line, &cap, f);
            size_t index = 0;
            line_no++;
            if (len < 1 || line[len - 1] != '\n') {
                rc = cli_fail(&err, BS_ERR_INVALID,
                              "%s: line %zu: the shard ends after %zu of its %zu rows", path,
                              line_no, j, h.count);
                goto failed;
            }
            line[len - 1] = '\0';
            sweep_row *row = &s.rows[h.first + j];
            if (shard_row(line, &index, row) || index != h.first + j) {
                rc = cli_fail(&err, BS_ERR_INVALID,
                              "%s: line %zu: expected the row of point %zu, got something else",
                              path, line_no, h.first + j);
                goto failed;
            }
        }
        if (getline(&line, &cap, f) >= 0) {
            rc = cli_fail(&err, BS_ERR_INVALID, "%s: line %zu: more rows than the shard's %zu",
                          path, line_no + 1, h.count);
            goto failed;
        }
        fclose(f);
        f = NULL;
        if (i > 0)
            shard_head_free(&h);
        memset(&h, 0, sizeof h);
    }
    {
        char missing[256] = "";
        size_t n_missing = 0, len = 0;
        for (size_t k = 1; k <= first.n; k++)
            if (!owner[k] && n_missing++ < 10)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%zu",
                                        n_missing > 1 ? ", " : "", k);
        if (n_missing) {
            rc = cli_fail(&err, BS_ERR_INVALID,
                          "%s: %zu of %zu shards missing: %s%s (run `bubblesim sweep CONFIG "
                          "--out DIR --shard K/%zu` for each, and give every DIR to merge)",
                          first.stem, n_missing, first.n, missing, n_missing > 10 ? ", ..." : "",
                          first.n);
            goto failed;
        }
    }
    if ((rc = sweep_finish_rows(&s, &err)) || (rc = cli_prepare_dir(out_dir, &err)) ||
        (rc = sweep_write_outputs(&s, out_dir, first.stem, plot, &err)))
        goto failed;
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        cli_fail(&err, rc, "out of memory");
    code = cli_report(rc, &err);
done:
    if (f)
        fclose(f);
    free(line);
    free(owner);
    for (size_t i = 0; i < n_files; i++)
        free(files[i].path);
    free(files);
    sweep_free(&s);
    if (h.definition != first.definition)
        shard_head_free(&h);
    shard_head_free(&first);
    return code;
}
