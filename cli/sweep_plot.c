/*
 * sweep_plot.c - `sweep --plot`: the charts a sweep's keys allow.
 *
 *   STEM-bubble     bubble (idle over total) against M, or against P when M
 *                   is not swept: markers simulated, dashed the closed form;
 *                   one series per combination of the other swept values.
 *   STEM-schedules  when the schedule is swept: makespan, bubble and peak
 *                   activations side by side, one bar per simulated point.
 *   STEM-makespan-v makespan against V, one series per other combination.
 *   STEM-serving    decode sweeps: time per output token and tokens/s
 *                   against the batch (model.microbatch_size), else M, P,
 *                   V or the first other numeric swept key.
 *
 * A line chart is drawn only when some series has two points to join.
 * Refused points are left out of every chart (they are in the CSV with
 * their reason). A series whose only point is at the smallest x (the V=1
 * baseline of a 1f1b/interleaved x V sweep, where interleaved refuses V=1
 * and 1f1b refuses V>1) is joined to every line that lacks that x and
 * differs from it only in the schedule, so each V>1 line starts from its
 * baseline; the note under the chart says so.
 *
 * Readability: at most CHART_MAX_SERIES series per line chart and
 * CHART_MAX_BARS bars per comparison; beyond that the chart is split into
 * STEM-NAME-1.png, -2, ... (said on stderr), up to CHART_MAX_PARTS
 * pictures; a chart that would need more is left out with a hint (the CSV
 * has every point), which also bounds the files of one output set. Tick marks sit at the swept
 * values themselves, the last included, also on a log axis. Byte-valued
 * swept keys are labelled in GiB (or MiB, KiB), and the memory panel shows
 * GiB when the config gives activation bytes.
 *
 * Every chart is a program of plots/ (sweep-lines.gp, sweep-bars.gp,
 * sweep-serving.gp) run by
 * gnuplot.h with its data and titles as arguments; all files are staged in
 * the caller's output set, committed with the CSV and JSON.
 */
#include "gnuplot.h"
#include "outfile.h"
#include "sweep.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHART_MAX_SERIES 8
#define CHART_MAX_BARS 12
#define CHART_MAX_PARTS 4 /* beyond 32 series or 48 bars a chart is refused */
#define GIB (1024.0 * 1024.0 * 1024.0)

static long find_axis(const sweep_result *s, const char *path)
{
    for (size_t k = 0; k < s->n_axes; k++)
        if (strcmp(s->axes[k].path, path) == 0)
            return (long)k;
    return -1;
}

/* A byte count for people: "1.5 GiB", "64 MiB", "512 KiB", "100 B". */
static void bytes_label(char *buf, size_t size, double bytes)
{
    if (bytes >= GIB)
        snprintf(buf, size, "%.4g GiB", bytes / GIB);
    else if (bytes >= 1024.0 * 1024.0)
        snprintf(buf, size, "%.4g MiB", bytes / (1024.0 * 1024.0));
    else if (bytes >= 1024.0)
        snprintf(buf, size, "%.4g KiB", bytes / 1024.0);
    else
        snprintf(buf, size, "%.4g B", bytes);
}

static int is_bytes_key(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, "bytes") == 0;
}

/* "P=4", "M=8", "V=2", the schedule name, or "path=value" (bytes in GiB). */
static void value_label(char *buf, size_t size, const sweep_axis *axis, size_t j)
{
    const char *p = axis->path, *v = axis->labels[j];
    char bytes[64];
    if (is_bytes_key(p) && !isnan(axis->number[j])) {
        bytes_label(bytes, sizeof bytes, axis->number[j]);
        v = bytes;
    }
    if (strcmp(p, "schedule") == 0)
        snprintf(buf, size, "%s", v);
    else if (strcmp(p, "stages") == 0)
        snprintf(buf, size, "P=%s", v);
    else if (strcmp(p, "microbatches") == 0)
        snprintf(buf, size, "M=%s", v);
    else if (strcmp(p, "virtual_stages") == 0)
        snprintf(buf, size, "V=%s", v);
    else
        snprintf(buf, size, "%s=%s", p, v);
}

/* Label of point i from every axis with more than one value except skip. */
static void point_label(char *buf, size_t size, const sweep_result *s, size_t i, long skip)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < s->n_axes && n < size; k++) {
        char part[200];
        if ((long)k == skip || s->axes[k].count < 2)
            continue;
        value_label(part, sizeof part, &s->axes[k], sweep_value_index(s, i, k));
        n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? " " : "", part);
    }
    if (!buf[0])
        snprintf(buf, size, "simulated");
}

/* NAME, or NAME-PART when the chart is split into several. */
static void chart_path(char *buf, size_t size, const char *dir, const char *stem, const char *name,
                       size_t part, size_t parts, const char *ext)
{
    if (parts > 1)
        snprintf(buf, size, "%s/%s-%s-%zu.%s", dir, stem, name, part + 1, ext);
    else
        snprintf(buf, size, "%s/%s-%s.%s", dir, stem, name, ext);
}

/* Series of a line chart over axis x: the j-th point of series g, in
 * increasing x, is point order[g * nx + j]. Returns the number of series,
 * 0 on no memory. */
static size_t series_order(const sweep_result *s, long x, size_t **order)
{
    const sweep_axis *ax = &s->axes[x];
    size_t nx = ax->count, groups = s->points / nx;
    size_t *o = malloc(s->points * sizeof *o), *rank = malloc(nx * sizeof *rank);
    if (!o || !rank) {
        free(o);
        free(rank);
        return 0;
    }
    /* rank[j]: place of value j when the values are sorted (stable, few). */
    for (size_t j = 0; j < nx; j++) {
        double xj = isnan(ax->number[j]) ? INFINITY : ax->number[j];
        rank[j] = 0;
        for (size_t q = 0; q < nx; q++) {
            double xq = isnan(ax->number[q]) ? INFINITY : ax->number[q];
            rank[j] += xq < xj || (xq == xj && q < j);
        }
    }
    for (size_t i = 0; i < s->points; i++) {
        size_t g = 0;
        for (size_t k = 0; k < s->n_axes; k++)
            if (!s->axes[k].zipped && k != sweep_axis_leader(s, (size_t)x))
                g = g * s->axes[k].count + sweep_value_index(s, i, k);
        o[g * nx + rank[sweep_value_index(s, i, (size_t)x)]] = i;
    }
    free(rank);
    *order = o;
    return groups;
}

/* What a line chart shows: its y column(s) and program. */
typedef enum line_kind { LINES_MAKESPAN, LINES_BUBBLE, LINES_SERVING } line_kind;

/* Can point i be drawn on a chart of this kind? The serving chart needs
 * the decode figures, which only decode points have. */
static int usable(const sweep_result *s, size_t i, line_kind what)
{
    const sweep_row *r = &s->rows[i];
    return r->ok && (what != LINES_SERVING ||
                     (isfinite(r->time_per_output_token) && isfinite(r->tokens_per_second)));
}

/* x of point i: M, P and V as the run used them, any other key its swept
 * value. */
static double x_of(const sweep_result *s, long x, size_t i)
{
    const sweep_row *r = &s->rows[i];
    const char *path = s->axes[x].path;
    return strcmp(path, "microbatches") == 0 ? r->microbatches
           : strcmp(path, "stages") == 0     ? r->stages
           : strcmp(path, "virtual_stages") == 0
               ? r->virtual_stages
               : s->axes[x].number[sweep_value_index(s, i, (size_t)x)];
}

/* Do points a and b agree on every axis but x and the schedule? */
static int same_but_schedule(const sweep_result *s, size_t a, size_t b, long x, long sched)
{
    for (size_t k = 0; k < s->n_axes; k++)
        if ((long)k != x && (long)k != sched &&
            sweep_value_index(s, a, k) != sweep_value_index(s, b, k))
            return 0;
    return 1;
}

/* Line chart of y(row) against axis x; returns the number of pictures
 * drawn (0: no series with two points to join), <0 on error. */
static int line_chart(const sweep_result *s, long x, long sched, cli_outset *set, const char *dir,
                      const char *stem, const char *name, const char *title, const char *xlabel,
                      const char *ylabel, line_kind what, bs_error *err)
{
    size_t *order = NULL, nx = s->axes[x].count, *shown = NULL, *base = NULL;
    size_t groups = series_order(s, x, &order), n_shown = 0;
    int rc = 0, any_formula = 0, joined = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    char path[8192], xtics[1024] = "", settings[200], note[300];
    if (!groups)
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing charts");
    shown = malloc(groups * sizeof *shown);
    base = malloc(groups * sizeof *base);
    if (!shown || !base) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory drawing charts");
        goto done;
    }
    /* The smallest swept x, where a baseline sits. */
    size_t first_ok_rank = nx;
    for (size_t g = 0; g < groups; g++)
        for (size_t j = 0; j < nx && j < first_ok_rank; j++)
            if (usable(s, order[g * nx + j], what))
                first_ok_rank = j;
    /* A series is shown with two points to join, or with one point and a
     * baseline point joined in front of it. */
    for (size_t g = 0; g < groups; g++) {
        size_t ok = 0;
        base[g] = SIZE_MAX;
        for (size_t j = 0; j < nx; j++)
            ok += (size_t)usable(s, order[g * nx + j], what);
        if (ok && first_ok_rank < nx && sched >= 0 &&
            !usable(s, order[g * nx + first_ok_rank], what)) {
            /* Several lone points may qualify (gpipe, 1f1b, ... at V=1):
             * 1f1b, which interleaved generalises, is preferred. */
            for (size_t h = 0; h < groups; h++) {
                size_t cand = order[h * nx + first_ok_rank], okh = 0;
                for (size_t j = 0; j < nx; j++)
                    okh += (size_t)usable(s, order[h * nx + j], what);
                if (h != g && okh == 1 && usable(s, cand, what) &&
                    same_but_schedule(s, cand, order[g * nx], x, sched) &&
                    (base[g] == SIZE_MAX || strcmp(s->rows[cand].schedule, "1f1b") == 0))
                    base[g] = cand;
            }
        }
        if (ok + (base[g] != SIZE_MAX) >= 2)
            shown[n_shown++] = g;
        joined |= ok + (base[g] != SIZE_MAX) >= 2 && base[g] != SIZE_MAX;
    }
    if (!n_shown)
        goto done;
    size_t parts = (n_shown + CHART_MAX_SERIES - 1) / CHART_MAX_SERIES;
    if (parts > CHART_MAX_PARTS) {
        fprintf(stderr,
                "bubblesim: --plot: no %s chart: %zu series would take %zu pictures of %d; "
                "sweep fewer values besides the x axis, or plot from the CSV\n",
                name, n_shown, parts, CHART_MAX_SERIES);
        rc = 0;
        goto done;
    }
    for (size_t j = 0, n = 0; j < nx && nx <= 24; j++) {
        if (isnan(s->axes[x].number[j]))
            continue;
        n += (size_t)snprintf(xtics + n, sizeof xtics - n, "%s%.17g", n ? " " : "",
                              s->axes[x].number[j]);
        if (n >= sizeof xtics) {
            xtics[0] = '\0';
            break;
        }
    }
    for (size_t part = 0; part < parts; part++) {
        FILE *dat;
        int member;
        chart_path(path, sizeof path, dir, stem, name, part, parts, "dat");
        if ((rc = member = cli_outset_add(set, path, &dat, err)) < 0)
            goto done;
        fputs(what == LINES_SERVING
                  ? "# one block (gnuplot index) per series: its title, then lines\n"
                    "# x time_per_output_token_ms tokens_per_second\n"
                  : "# one block (gnuplot index) per series: its title, then lines\n"
                    "# x simulated closed_form (NaN: none)\n",
              dat);
        size_t from = part * CHART_MAX_SERIES, to = from + CHART_MAX_SERIES;
        for (size_t q = from; q < to && q < n_shown; q++) {
            size_t g = shown[q];
            char label[512];
            point_label(label, sizeof label, s, order[g * nx], x);
            if (base[g] != SIZE_MAX) {
                size_t len = strlen(label);
                const char *xp = s->axes[x].path;
                snprintf(label + len, sizeof label - len, " (from %s at %s=%g)",
                         s->rows[base[g]].schedule,
                         strcmp(xp, "virtual_stages") == 0 ? "V"
                         : strcmp(xp, "microbatches") == 0 ? "M"
                                                           : "P",
                         x_of(s, x, base[g]));
            }
            fputs(q > from ? "\n\n" : "", dat);
            cli_gnuplot_data_string(dat, label);
            fputc('\n', dat);
            for (size_t j = 0; j < nx; j++) {
                size_t i = j == first_ok_rank && base[g] != SIZE_MAX ? base[g] : order[g * nx + j];
                const sweep_row *r = &s->rows[i];
                if (!usable(s, i, what))
                    continue;
                double xv = x_of(s, x, i);
                xmin = fmin(xmin, xv);
                xmax = fmax(xmax, xv);
                if (what == LINES_SERVING) {
                    fprintf(dat, "%.17g %.17g %.17g\n", xv, r->time_per_output_token,
                            r->tokens_per_second);
                } else if (what == LINES_BUBBLE) {
                    fprintf(dat, "%.17g %.17g ", xv, 100 * r->bubble_ratio);
                    if (r->formula_valid) {
                        fprintf(dat, "%.17g\n", 100 * r->formula_bubble_ratio);
                        any_formula = 1;
                    } else {
                        fputs("NaN\n", dat);
                    }
                } else {
                    fprintf(dat, "%.17g %.17g NaN\n", xv, r->makespan);
                }
            }
        }
        size_t n_series = (to < n_shown ? to : n_shown) - from;
        int logx = (strcmp(s->axes[x].path, "microbatches") == 0 ||
                    strcmp(s->axes[x].path, "model.microbatch_size") == 0) &&
                   xmin > 0 && xmax / xmin >= 8;
        snprintf(settings, sizeof settings, "%zu %d %.17g %.17g 0", n_series, logx, xmin, xmax);
        int nn = snprintf(note, sizeof note, "%s",
                          what == LINES_SERVING
                              ? "tokens/s: every generated token over the whole run, prefill "
                                "included; refused points left out (see the CSV)"
                          : any_formula ? "markers: simulated; dashed: closed form (uniform "
                                          "costs, free network)"
                                        : "");
        if (joined)
            snprintf(note + nn, sizeof note - (size_t)nn,
                     "%sthe lone point at the smallest x (a baseline schedule) starts each line "
                     "it joins",
                     nn ? "; " : "");
        chart_path(path, sizeof path, dir, stem, name, part, parts, "png");
        cli_chart_arg args[] = {CLI_MEMBER(member), CLI_TEXT(title), CLI_TEXT(xlabel),
                                CLI_TEXT(ylabel),   CLI_TEXT(note),  CLI_TEXT(settings),
                                CLI_TEXT(xtics)};
        /* sweep-serving.gp names its two panels' y axes itself: no YLABEL. */
        if (what == LINES_SERVING) {
            args[3] = args[4];
            args[4] = args[5];
            args[5] = args[6];
        }
        if ((rc =
                 cli_chart_stage(set, path, what == LINES_SERVING ? "sweep-serving" : "sweep-lines",
                                 args, what == LINES_SERVING ? 6 : 7, err)))
            goto done;
        fprintf(stderr, "bubblesim: chart %s (%s%s)\n", path, title,
                parts > 1 ? ", split: too many series for one picture" : "");
    }
    rc = (int)parts;
done:
    free(order);
    free(shown);
    free(base);
    return rc;
}

/* Makespan, bubble and peak activations, one bar per simulated point;
 * returns the number of pictures (0 when no point simulated). */
static int schedule_chart(const sweep_result *s, long sched, cli_outset *set, const char *dir,
                          const char *stem, bs_error *err)
{
    size_t bars = 0, drawn = 0;
    int rc, bytes = 1;
    char path[8192], settings[100], title[200];
    for (size_t i = 0; i < s->points; i++) {
        bars += s->rows[i].ok;
        if (s->rows[i].ok && !(s->rows[i].peak_activation_bytes > 0))
            bytes = 0;
    }
    if (!bars)
        return 0;
    size_t parts = (bars + CHART_MAX_BARS - 1) / CHART_MAX_BARS;
    if (parts > CHART_MAX_PARTS) {
        fprintf(stderr,
                "bubblesim: --plot: no schedules chart: %zu bars would take %zu pictures of %d; "
                "sweep fewer values, or plot from the CSV\n",
                bars, parts, CHART_MAX_BARS);
        return 0;
    }
    for (size_t part = 0; part < parts; part++) {
        FILE *dat;
        int member;
        size_t in_part = 0;
        chart_path(path, sizeof path, dir, stem, "schedules", part, parts, "dat");
        if ((rc = member = cli_outset_add(set, path, &dat, err)) < 0)
            return rc;
        fprintf(dat, "# one line per simulated point: label makespan_ms bubble_percent %s\n",
                bytes ? "peak_activation_GiB" : "peak_activations");
        for (size_t i = 0, k = 0; i < s->points; i++) {
            const sweep_row *r = &s->rows[i];
            char label[512], rest[400];
            if (!r->ok || k++ / CHART_MAX_BARS != part)
                continue;
            point_label(rest, sizeof rest, s, i, sched);
            snprintf(label, sizeof label, "%s%s%s", r->schedule,
                     strcmp(rest, "simulated") == 0 ? "" : " ",
                     strcmp(rest, "simulated") == 0 ? "" : rest);
            cli_gnuplot_data_string(dat, label);
            fprintf(dat, " %.17g %.17g %.17g\n", r->makespan, 100 * r->bubble_ratio,
                    bytes ? r->peak_activation_bytes / GIB : r->peak_activations);
            in_part++;
        }
        int width = 1100 + (in_part > 6 ? (int)(in_part - 6) * 3 * 45 : 0);
        snprintf(settings, sizeof settings, "%zu %d 0", in_part, width > 3000 ? 3000 : width);
        if (parts > 1)
            snprintf(title, sizeof title,
                     "Schedules compared (one bar per simulated point; part %zu of %zu)", part + 1,
                     parts);
        else
            snprintf(title, sizeof title, "Schedules compared (one bar per simulated point)");
        chart_path(path, sizeof path, dir, stem, "schedules", part, parts, "png");
        cli_chart_arg args[] = {
            CLI_MEMBER(member), CLI_TEXT(title),
            CLI_TEXT(bytes ? "peak activation memory (GiB)" : "peak activations (micro-batches)"),
            CLI_TEXT(settings)};
        if ((rc = cli_chart_stage(set, path, "sweep-bars", args, 4, err)))
            return rc;
        fprintf(stderr, "bubblesim: chart %s (schedules compared%s)\n", path,
                parts > 1 ? ", split: too many bars for one picture" : "");
        drawn++;
    }
    return (int)drawn;
}

/* The x axis of the serving chart, -1 when none applies: some point has
 * the decode figures, and a key with two or more values, all numbers,
 * is swept (not a zipped case key, which follows its leader). The batch
 * (model.microbatch_size) is preferred, then M, P, V, then the first. */
static long serving_axis(const sweep_result *s)
{
    static const char *const preferred[] = {"model.microbatch_size", "microbatches", "stages",
                                            "virtual_stages"};
    int any = 0;
    for (size_t i = 0; i < s->points && !any; i++)
        any = usable(s, i, LINES_SERVING);
    if (!any)
        return -1;
    for (size_t p = 0; p <= sizeof preferred / sizeof *preferred; p++) {
        /* p < the list: that key; p at its end: any key, in sweep order. */
        for (size_t k = 0; k < s->n_axes; k++) {
            const sweep_axis *a = &s->axes[k];
            int fits =
                a->count > 1 && !a->zipped &&
                (p == sizeof preferred / sizeof *preferred || strcmp(a->path, preferred[p]) == 0);
            for (size_t j = 0; j < a->count && fits; j++)
                fits = isfinite(a->number[j]);
            if (fits)
                return (long)k;
        }
    }
    return -1;
}

/* The serving chart's x label: what the key means, with its path. */
static void serving_xlabel(char *buf, size_t size, const char *path)
{
    if (strcmp(path, "model.microbatch_size") == 0)
        snprintf(buf, size, "batch: sequences per micro-batch (model.microbatch_size)");
    else if (strcmp(path, "microbatches") == 0)
        snprintf(buf, size, "micro-batches M");
    else if (strcmp(path, "stages") == 0)
        snprintf(buf, size, "pipeline stages P (devices)");
    else if (strcmp(path, "virtual_stages") == 0)
        snprintf(buf, size, "model chunks per device V");
    else
        snprintf(buf, size, "%s", path);
}

int sweep_plot(const sweep_result *s, cli_outset *set, const char *dir, const char *stem,
               bs_error *err)
{
    long m = find_axis(s, "microbatches"), p = find_axis(s, "stages");
    long v = find_axis(s, "virtual_stages"), sched = find_axis(s, "schedule");
    int drawn = 0, rc;
    size_t simulated = 0;
    long x = m >= 0 && s->axes[m].count > 1 ? m : p >= 0 && s->axes[p].count > 1 ? p : -1;
    for (size_t i = 0; i < s->points; i++)
        simulated += s->rows[i].ok;
    if (!simulated) {
        fprintf(stderr,
                "bubblesim: --plot: no chart drawn: every one of the %zu points was "
                "refused (the reasons are in the CSV)\n",
                s->points);
        return BS_OK;
    }
    if (x >= 0) {
        const char *title = x == m ? "Bubble against micro-batches M" : "Bubble against stages P";
        rc = line_chart(s, x, sched, set, dir, stem, "bubble", title,
                        x == m ? "micro-batches M" : "pipeline stages P (devices)",
                        "bubble: idle / total device time (%)", LINES_BUBBLE, err);
        if (rc < 0)
            return rc;
        drawn += rc;
    }
    if (sched >= 0 && s->axes[sched].count > 1) {
        if ((rc = schedule_chart(s, sched, set, dir, stem, err)) < 0)
            return rc;
        drawn += rc;
    }
    if (v >= 0 && s->axes[v].count > 1) {
        rc = line_chart(s, v, sched, set, dir, stem, "makespan-v",
                        "Makespan against chunks per device V", "model chunks per device V",
                        "makespan (ms)", LINES_MAKESPAN, err);
        if (rc < 0)
            return rc;
        drawn += rc;
    }
    long sx = serving_axis(s);
    if (sx >= 0) {
        char title[400], xlabel[300];
        serving_xlabel(xlabel, sizeof xlabel, s->axes[sx].path);
        snprintf(title, sizeof title, "Decode: time per output token and tokens/s against %s",
                 strcmp(s->axes[sx].path, "model.microbatch_size") == 0 ? "batch size" : xlabel);
        rc = line_chart(s, sx, sched, set, dir, stem, "serving", title, xlabel, "", LINES_SERVING,
                        err);
        if (rc < 0)
            return rc;
        drawn += rc;
    }
    if (!drawn)
        fprintf(stderr, "bubblesim: --plot: no chart applies; charts need microbatches or "
                        "stages (bubble), schedule (comparison), virtual_stages (makespan), or "
                        "a decode config with a numeric key (model.microbatch_size first) "
                        "swept over two or more values that simulate\n");
    return BS_OK;
}
