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
#include "outfile.h"
#include "sweep.h"

#include <cjson/cJSON.h>
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
#define PROGRESS_DELAY_S 0.5 /* a sweep shorter than this shows no bar */
#define PROGRESS_WIDTH 40

typedef struct sweep {
    const char *source; /* the config file, for messages */
    char *base_text;    /* the config without "sweep" */
    sweep_axis *axes;
    size_t n_axes, points;
    sweep_row *rows;

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

static int axis_read(sweep_axis *axis, const cJSON *list, const char *source, bs_error *err)
{
    if (!(axis->path = strdup(list->string)))
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return cli_fail(err, BS_ERR_INVALID,
                        "%s: sweep.%s: expected a non-empty list of values, got %s", source,
                        list->string,
                        cJSON_IsArray(list) ? "an empty list" : "a single value (write [value])");
    size_t n = (size_t)cJSON_GetArraySize(list);
    axis->values = calloc(n, sizeof *axis->values);
    axis->labels = calloc(n, sizeof *axis->labels);
    axis->number = calloc(n, sizeof *axis->number);
    if (!axis->values || !axis->labels || !axis->number)
        return cli_fail(err, BS_ERR_NOMEM, "out of memory");
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        size_t j = axis->count++;
        axis->values[j] = cJSON_PrintUnformatted(item);
        axis->labels[j] = strdup(cJSON_IsString(item) ? item->valuestring
                                 : axis->values[j]    ? axis->values[j]
                                                      : "");
        axis->number[j] = cJSON_IsNumber(item) ? item->valuedouble : NAN;
        if (!axis->values[j] || !axis->labels[j])
            return cli_fail(err, BS_ERR_NOMEM, "out of memory");
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

/* Splits the file into base text and axes, and counts the points. */
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
    s->n_axes = (size_t)cJSON_GetArraySize(spec);
    if (!(s->axes = calloc(s->n_axes, sizeof *s->axes))) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    size_t k = 0;
    unsigned long long points = 1;
    for (const cJSON *list = spec->child; list; list = list->next, k++) {
        for (const cJSON *other = spec->child; other != list; other = other->next)
            if (strcmp(other->string, list->string) == 0) {
                rc = cli_fail(err, BS_ERR_INVALID, "%s: sweep.%s: key appears more than once",
                              s->source, list->string);
                goto error;
            }
        if ((rc = axis_read(&s->axes[k], list, s->source, err)) ||
            (rc = axis_check_path(s, &s->axes[k], err)))
            goto error;
        /* Saturating product: only "over the limit" matters. */
        if (points > max_points / s->axes[k].count)
            points = max_points + 1;
        else
            points *= s->axes[k].count;
    }
    if (points > max_points) {
        char size[64] = "more than that";
        unsigned long long exact = 1;
        int overflow = 0;
        for (size_t j = 0; j < s->n_axes; j++) {
            if (exact > ULLONG_MAX / s->axes[j].count)
                overflow = 1;
            else
                exact *= s->axes[j].count;
        }
        if (!overflow)
            snprintf(size, sizeof size, "%llu", exact);
        rc = cli_fail(err, BS_ERR_LIMIT,
                      "%s: sweep: %s points exceed the limit of %llu; sweep fewer values or "
                      "raise --max-points",
                      s->source, size, max_points);
        goto error;
    }
    s->points = (size_t)points;
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
}

/* Simulates point i into its row; returns non-zero only for failures that
 * must stop the sweep. */
static int run_point(sweep *s, size_t i, bs_context *ctx, bs_override *ov, bs_error *err)
{
    sweep_result view = {s->axes, s->n_axes, s->rows, s->points};
    sweep_row *row = &s->rows[i];
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
        if (!s->fatal_rc && !s->stop && s->next < s->points)
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
        if (++s->done == s->points || rc)
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
    while (s->done < s->points && !s->fatal_rc && !s->stop) {
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
        if (show && elapsed > PROGRESS_DELAY_S && s->done < s->points) {
            progress_draw(s->done, s->points, elapsed);
            drawn = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    if (drawn) {
        progress_draw(s->done, s->points, now_seconds() - t0);
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
    "messages",          "message_bytes",
};
#define N_METRICS (sizeof metric_columns / sizeof metric_columns[0])

/* The metric cells of a row as text; an empty cell is no value. */
static void metric_cells(const sweep_row *row, char cells[N_METRICS][40])
{
    double v[N_METRICS] = {
        row->makespan,          row->iteration_time,        row->bubble_ratio,
        row->bubble_over_ideal, row->span_bubble_ratio,     row->formula_bubble_ratio,
        row->peak_activations,  row->peak_activation_bytes, row->weight_versions,
        (double)row->messages,  row->message_bytes};
    for (size_t c = 0; c < N_METRICS; c++) {
        int empty = !row->ok || (c == 5 && !row->formula_valid) || !isfinite(v[c]);
        if (empty)
            cells[c][0] = '\0';
        else
            format_number(cells[c], sizeof cells[c], v[c]);
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

/* ------------------------------------------------------------------ main */

static const char sweep_usage[] =
    "usage: bubblesim sweep CONFIG [--out DIR] [--jobs N] [--plot] [--max-points N]\n"
    "                       [--partial]\n";

static int parse_count(const char *option, const char *text, unsigned long long min,
                       unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "bubblesim: sweep: %s %s: expected an integer from %llu to %llu\n", option,
                text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_sweep(int argc, char **argv)
{
    const char *path = NULL, *out_dir = NULL;
    unsigned long long max_points = SWEEP_DEFAULT_MAX_POINTS, jobs_arg = 0;
    int plot = 0, partial = 0, rc = BS_OK, code = EXIT_OK;
    char *text = NULL, stem[1024];
    bs_error err = {{0}};
    sweep s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.progress, NULL);

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int takes_value =
            strcmp(a, "--out") == 0 || strcmp(a, "--jobs") == 0 || strcmp(a, "--max-points") == 0;
        if (takes_value && i + 1 >= argc) {
            fprintf(stderr, "bubblesim: sweep: %s needs a value\n%s", a, sweep_usage);
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
        } else if (strcmp(a, "--plot") == 0) {
            plot = 1;
        } else if (strcmp(a, "--partial") == 0) {
            partial = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bubblesim: sweep: unknown option \"%s\"\n%s", a, sweep_usage);
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
        fprintf(stderr, "bubblesim: sweep: missing CONFIG\n%s", sweep_usage);
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
    {
        /* Output files are named after the config: DIR/STEM.csv, ... */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        size_t len = strlen(base);
        if (len > 5 && strcmp(base + len - 5, ".json") == 0)
            len -= 5;
        snprintf(stem, sizeof stem, "%.*s", (int)(len < 1000 ? len : 1000), base);
    }
    s.source = path;
    if ((rc = bs_read_text_file(path, &text, &err)) ||
        (rc = sweep_read(&s, text, max_points, &err)))
        goto failed;
    if (!(s.rows = calloc(s.points, sizeof *s.rows))) {
        rc = cli_fail(&err, BS_ERR_NOMEM, "out of memory for %zu sweep rows", s.points);
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
    if (jobs > s.points)
        jobs = s.points;
    rc = sweep_run(&s, (int)jobs, &err);
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
    if (partial) {
        char stale[8192];
        snprintf(stale, sizeof stale, "%s/%s.partial.csv", out_dir, stem);
        unlink(stale);
    }

    if (!out_dir) {
        write_rows_csv(stdout, &s);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "bubblesim: cannot write to standard output\n");
            code = EXIT_FAILURE_OTHER;
        }
        goto done;
    }
    if ((rc = write_file(out_dir, stem, "csv", write_rows_csv, &s, &err)) ||
        (rc = write_file(out_dir, stem, "json", write_rows_json, &s, &err)))
        goto failed;
    size_t refused_rows = 0;
    for (size_t i = 0; i < s.points; i++)
        refused_rows += !s.rows[i].ok;
    fprintf(stderr, "bubblesim: %zu points (%zu refused) -> %s/%s.csv, %s/%s.json\n", s.points,
            refused_rows, out_dir, stem, out_dir, stem);
    if (plot) {
        sweep_result view = {s.axes, s.n_axes, s.rows, s.points};
        if ((rc = sweep_plot(&view, out_dir, stem, &err)))
            goto failed;
    }
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        cli_fail(&err, rc, "out of memory");
    code = cli_report(rc, &err);
done:
    for (size_t i = 0; s.rows && i < s.points; i++)
        free(s.rows[i].reason);
    free(s.rows);
    axes_free(s.axes, s.n_axes);
    cJSON_free(s.base_text);
    bs_text_free(text);
    pthread_mutex_destroy(&s.lock);
    pthread_cond_destroy(&s.progress);
    return code;
}
