/*
 * sweep_plot.c - `sweep --plot`: the charts a sweep's keys allow.
 *
 *   STEM-bubble     bubble (idle over total) against M, or against P when M
 *                   is not swept: markers simulated, dashed the closed form;
 *                   one series per combination of the other swept values.
 *   STEM-schedules  when the schedule is swept: makespan, bubble and peak
 *                   activations side by side, one bar per simulated point.
 *   STEM-makespan-v makespan against V, one series per other combination.
 *
 * A line chart is drawn only when some series has two points to join.
 * Refused points are left out of every chart (they are in the CSV with
 * their reason). Every chart follows the .gp + .dat convention of
 * gnuplot.h, so it can be restyled and redrawn without bubblesim.
 */
#include "gnuplot.h"
#include "outfile.h"
#include "sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHART_WIDTH 1100
#define CHART_HEIGHT 640

typedef struct chart_files {
    char dir[4096], stem[1100];
    cli_outfile dat, gp;
} chart_files;

static long find_axis(const sweep_result *s, const char *path)
{
    for (size_t k = 0; k < s->n_axes; k++)
        if (strcmp(s->axes[k].path, path) == 0)
            return (long)k;
    return -1;
}

/* "P=4", "M=8", "V=2", the schedule name, or "path=value". */
static void value_label(char *buf, size_t size, const sweep_axis *axis, size_t j)
{
    const char *p = axis->path, *v = axis->labels[j];
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

/* Gnuplot text may not hold a double quote in a data file string. */
static void dat_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fputc(*s == '"' ? '\'' : *s, f);
    fputc('"', f);
}

static int chart_open(chart_files *c, const char *dir, const char *stem, const char *name,
                      bs_error *err)
{
    char path[8192];
    int rc;
    memset(c, 0, sizeof *c);
    c->dat.slot = c->gp.slot = -1;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    snprintf(c->stem, sizeof c->stem, "%s-%s", stem, name);
    snprintf(path, sizeof path, "%s/%s.dat", c->dir, c->stem);
    if ((rc = cli_outfile_open(&c->dat, path, err)))
        return rc;
    snprintf(path, sizeof path, "%s/%s.gp", c->dir, c->stem);
    return cli_outfile_open(&c->gp, path, err);
}

/* Commits both files and draws the picture. */
static int chart_finish(chart_files *c, const char *what, bs_error *err)
{
    int rc;
    if ((rc = cli_outfile_commit(&c->dat, err)) || (rc = cli_outfile_commit(&c->gp, err)) ||
        (rc = cli_gnuplot_render(c->dir, c->stem, CLI_IMAGE_PNG, err))) {
        cli_outfile_abort(&c->dat);
        cli_outfile_abort(&c->gp);
        return rc;
    }
    fprintf(stderr, "bubblesim: chart %s/%s.png (%s)\n", c->dir, c->stem, what);
    return BS_OK;
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

/* Line chart of y(row) against axis x; returns 1 when it was worth drawing
 * (some series with two simulated points), 0 when not, <0 on error. */
static int line_chart(const sweep_result *s, long x, const char *dir, const char *stem,
                      const char *name, const char *title, const char *xlabel, const char *ylabel,
                      int bubble, bs_error *err)
{
    size_t *order = NULL, nx = s->axes[x].count;
    size_t groups = series_order(s, x, &order);
    chart_files c;
    int worth = 0, rc;
    double xmin = INFINITY, xmax = -INFINITY;
    if (!groups)
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing charts");
    for (size_t g = 0; g < groups && !worth; g++) {
        size_t ok = 0;
        for (size_t j = 0; j < nx; j++)
            ok += s->rows[order[g * nx + j]].ok;
        worth = ok >= 2;
    }
    if (!worth) {
        free(order);
        return 0;
    }
    if ((rc = chart_open(&c, dir, stem, name, err)))
        goto error;
    fprintf(c.dat.file, "# %s\n# one block (gnuplot index) per series: x simulated %s\n", title,
            bubble ? "closed-form (NaN: none)" : "");
    size_t blocks = 0;
    char **titles = calloc(groups, sizeof *titles);
    int *has_formula = calloc(groups, sizeof *has_formula);
    if (!titles || !has_formula) {
        free(titles);
        free(has_formula);
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory drawing charts");
        goto error;
    }
    for (size_t g = 0; g < groups; g++) {
        char label[512];
        size_t first = order[g * nx];
        size_t ok = 0;
        for (size_t j = 0; j < nx; j++)
            ok += s->rows[order[g * nx + j]].ok;
        if (!ok)
            continue;
        point_label(label, sizeof label, s, first, x);
        fprintf(c.dat.file, "%s# %s\n", blocks ? "\n\n" : "", label);
        for (size_t j = 0; j < nx; j++) {
            const sweep_row *r = &s->rows[order[g * nx + j]];
            if (!r->ok)
                continue;
            double xv = strcmp(s->axes[x].path, "microbatches") == 0 ? r->microbatches
                        : strcmp(s->axes[x].path, "stages") == 0     ? r->stages
                                                                     : r->virtual_stages;
            xmin = fmin(xmin, xv);
            xmax = fmax(xmax, xv);
            if (bubble) {
                fprintf(c.dat.file, "%.17g %.17g ", xv, 100 * r->bubble_ratio);
                if (r->formula_valid) {
                    fprintf(c.dat.file, "%.17g\n", 100 * r->formula_bubble_ratio);
                    has_formula[blocks] = 1;
                } else {
                    fputs("NaN\n", c.dat.file);
                }
            } else {
                fprintf(c.dat.file, "%.17g %.17g\n", xv, r->makespan);
            }
        }
        titles[blocks++] = strdup(label);
    }
    FILE *gp = c.gp.file;
    cli_gnuplot_preamble(gp, c.stem, CLI_IMAGE_PNG, CHART_WIDTH, CHART_HEIGHT);
    fprintf(gp, "data = '%s.dat'\nset title ", c.stem);
    cli_gnuplot_quote(gp, title);
    fprintf(gp, " font ',12'\nset xlabel '%s'\nset ylabel '%s'\n", xlabel, ylabel);
    int any_formula = 0;
    for (size_t b = 0; b < blocks; b++)
        any_formula |= has_formula[b];
    if (any_formula)
        fputs("set label 1 'markers: simulated; dashed: closed form (uniform costs, free "
              "network)' at screen 0.99, screen 0.03 right font ',9'\n",
              gp);
    fputs("set key outside right top\nset yrange [0:*]\nset mxtics\n", gp);
    /* Micro-batch counts usually double; stage and chunk counts do not. */
    if (strcmp(s->axes[x].path, "microbatches") == 0 && xmin > 0 && xmax / xmin >= 8)
        fputs("set logscale x 2\n", gp);
    if (nx <= 24) { /* tics at the swept values themselves */
        fputs("set xtics (", gp);
        for (size_t j = 0, first = 1; j < nx; j++) {
            if (isnan(s->axes[x].number[j]))
                continue;
            fprintf(gp, "%s%.17g", first ? "" : ", ", s->axes[x].number[j]);
            first = 0;
        }
        fputs(")\n", gp);
    }
    fprintf(gp, "set xrange [%.17g:%.17g]\nset offsets graph 0.03, graph 0.03, 0, 0\n", xmin, xmax);
    fputs("plot ", gp);
    for (size_t b = 0; b < blocks; b++) {
        static const int point_types[] = {7, 5, 9, 11, 13, 15};
        /* Where a closed form is drawn the markers stand alone, so the
         * dashed line stays visible under them; sizes shrink so that equal
         * series still show each marker. */
        fprintf(gp, "%sdata index %zu using 1:2 with %s pt %d ps %.2f lw 1 lc %zu title ",
                b ? ", \\\n     " : "", b, bubble && has_formula[b] ? "points" : "linespoints",
                point_types[b % 6], 1.8 - 0.3 * (double)(b % 4), b + 1);
        cli_gnuplot_quote(gp, titles[b] ? titles[b] : "");
        if (bubble && has_formula[b])
            fprintf(gp, ", \\\n     data index %zu using 1:3 with lines dt 2 lw 2 lc %zu notitle",
                    b, b + 1);
    }
    if (any_formula)
        fputs(", \\\n     NaN with lines dt 2 lw 2 lc rgb '#555555' title 'closed form'", gp);
    fputc('\n', gp);
    for (size_t b = 0; b < blocks; b++)
        free(titles[b]);
    free(titles);
    free(has_formula);
    free(order);
    order = NULL;
    if ((rc = chart_finish(&c, title, err)))
        return rc;
    return 1;
error:
    cli_outfile_abort(&c.dat);
    cli_outfile_abort(&c.gp);
    free(order);
    return rc;
}

/* Makespan, bubble and peak activations, one bar per simulated point. */
static int schedule_chart(const sweep_result *s, long sched, const char *dir, const char *stem,
                          bs_error *err)
{
    chart_files c;
    size_t bars = 0;
    int rc;
    if ((rc = chart_open(&c, dir, stem, "schedules", err))) {
        cli_outfile_abort(&c.dat);
        cli_outfile_abort(&c.gp);
        return rc;
    }
    fputs("# one line per simulated point: label makespan_ms bubble_percent "
          "peak_activations\n",
          c.dat.file);
    for (size_t i = 0; i < s->points; i++) {
        const sweep_row *r = &s->rows[i];
        char label[512], rest[400];
        if (!r->ok)
            continue;
        point_label(rest, sizeof rest, s, i, sched);
        snprintf(label, sizeof label, "%s%s%s", r->schedule,
                 strcmp(rest, "simulated") == 0 ? "" : " ",
                 strcmp(rest, "simulated") == 0 ? "" : rest);
        dat_string(c.dat.file, label);
        fprintf(c.dat.file, " %.17g %.17g %.17g\n", r->makespan, 100 * r->bubble_ratio,
                r->peak_activations);
        bars++;
    }
    if (bars == 0)
        fputs("\"none\" NaN NaN NaN\n", c.dat.file);
    FILE *gp = c.gp.file;
    int width = CHART_WIDTH + (bars > 6 ? (int)(bars - 6) * 3 * 45 : 0);
    cli_gnuplot_preamble(gp, c.stem, CLI_IMAGE_PNG, width > 3000 ? 3000 : width, 560);
    fprintf(gp, "data = '%s.dat'\n", c.stem);
    fputs("set style fill solid 0.85 border lc rgb '#333333'\n"
          "set boxwidth 0.7\nset yrange [0:*]\nset offsets 0.3, 0.3, graph 0.1, 0\n"
          "set grid noxtics ytics\n"
          "set xtics nomirror scale 0\nset key off\n",
          gp);
    if (bars > 4)
        fputs("set xtics rotate by -35\nset bmargin 8\n", gp);
    fputs("set multiplot layout 1,3 title 'Schedules compared (one bar per simulated point)' "
          "font ',12'\n"
          "set title 'makespan (ms)'\n"
          "plot data using 0:2:xtic(1) with boxes lc rgb '#4C72B0', \\\n"
          "     data using 0:2:(sprintf($2 < 1000 ? '%.3g' : '%.0f', $2)) with labels offset "
          "0,0.7 font ',9'\n"
          "set title 'bubble, idle over total (%)'\n"
          "plot data using 0:3:xtic(1) with boxes lc rgb '#DD8452', \\\n"
          "     data using 0:3:(sprintf('%.1f', $3)) with labels offset 0,0.7 font ',9'\n"
          "set title 'peak activations (micro-batches)'\n"
          "plot data using 0:4:xtic(1) with boxes lc rgb '#55A868', \\\n"
          "     data using 0:4:(sprintf('%.4g', $4)) with labels offset 0,0.7 font ',9'\n"
          "unset multiplot\n",
          gp);
    return chart_finish(&c, "schedules compared", err);
}

int sweep_plot(const sweep_result *s, const char *dir, const char *stem, bs_error *err)
{
    long m = find_axis(s, "microbatches"), p = find_axis(s, "stages");
    long v = find_axis(s, "virtual_stages"), sched = find_axis(s, "schedule");
    int drawn = 0, rc;
    long x = m >= 0 && s->axes[m].count > 1 ? m : p >= 0 && s->axes[p].count > 1 ? p : -1;
    if (x >= 0) {
        const char *title = x == m ? "Bubble against micro-batches M" : "Bubble against stages P";
        rc = line_chart(s, x, dir, stem, "bubble", title,
                        x == m ? "micro-batches M" : "pipeline stages P (devices)",
                        "bubble: idle / total device time (%)", 1, err);
        if (rc < 0)
            return rc;
        drawn += rc;
    }
    if (sched >= 0 && s->axes[sched].count > 1) {
        if ((rc = schedule_chart(s, sched, dir, stem, err)))
            return rc;
        drawn++;
    }
    if (v >= 0 && s->axes[v].count > 1) {
        rc = line_chart(s, v, dir, stem, "makespan-v", "Makespan against chunks per device V",
                        "model chunks per device V", "makespan (ms)", 0, err);
        if (rc < 0)
            return rc;
        drawn += rc;
    }
    if (!drawn)
        fprintf(stderr, "bubblesim: --plot: no chart applies; charts need microbatches or "
                        "stages (bubble), schedule (comparison) or virtual_stages (makespan) "
                        "swept over two or more values that simulate\n");
    return BS_OK;
}
