/*
 * timeline.c - a run's timeline as a gnuplot chart (plots/timeline.gp):
 * one row per device, one box per op, coloured by op kind, lighter for
 * later model chunks.
 *
 * STEM.dat holds the facts (its blocks are listed atop timeline.gp); the
 * program holds every choice of looks. The data depends on the picture in
 * a few places only, all so that the picture stays true at every size:
 *   - an op's label (its micro-batch) is left out where the box cannot
 *     hold it;
 *   - an op narrower than TL_THIN_PX goes to the borderless block: a white
 *     border around a box of a pixel or two would paint the row white and
 *     make a busy device look idle (P=16 M=1024 V=2 drew a blank picture);
 *   - when any op is that thin, a utilisation strip under each row shows
 *     the busy share of every TL_BIN_PX-wide bin, which stays readable
 *     where boxes merge; the picture's note says both;
 *   - y +- dy is the box's vertical extent: the row band (its upper part
 *     when the strip is drawn), or a half of it for the two ops of an
 *     overlapped pair (BS_OP_OVERLAP_NEXT), which share one interval.
 * Rows get thinner with many devices, down to TL_MIN_ROW px; beyond that
 * the picture is refused with a hint (cairo cannot draw images over 32767
 * px, and thinner rows would not show anything true).
 */
#include "timeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Picture geometry, in pixels (the SVG terminal uses the same units). */
#define TL_MIN_WIDTH 900
#define TL_MAX_WIDTH 2400
#define TL_PX_PER_OP 14  /* width the busiest device gets per op, before the cap */
#define TL_ROW_HEIGHT 38 /* per device, at most */
#define TL_MIN_ROW 4     /* per device, at least */
#define TL_MAX_HEIGHT 10000
#define TL_FRAME_HEIGHT 230
#define TL_MARGIN_X 110 /* y tic labels and borders: what the plot area loses */
#define TL_DIGIT_PX 6   /* one character of the 8 pt label font */
#define TL_THIN_PX 3.0  /* a box narrower than this has no border */
#define TL_BIN_PX 4     /* width of one utilisation-strip bin */

int cli_timeline_max_devices(void)
{
    return (TL_MAX_HEIGHT - TL_FRAME_HEIGHT) / TL_MIN_ROW;
}

int cli_timeline_parse_window(const char *text, cli_timeline_options *opt)
{
    char *end;
    const char *colon = strchr(text, ':');
    if (!colon)
        return -1;
    double a = strtod(text, &end);
    if (end != colon || end == text)
        return -1;
    double b = strtod(colon + 1, &end);
    if (*end || end == colon + 1 || !isfinite(a) || !isfinite(b) || a < 0 || b <= a)
        return -1;
    opt->windowed = 1;
    opt->window_from = a;
    opt->window_to = b;
    return 0;
}

int cli_timeline_check_name(const char *image_path, bs_error *err)
{
    if (cli_image_format_of(image_path) == CLI_IMAGE_NONE)
        return cli_fail(err, BS_ERR_INVALID, "--timeline %s: expected a .png or .svg file name",
                        image_path);
    return BS_OK;
}

/* chunk[s]: position of model stage s among its device's chunks, 0 first. */
static int *chunk_of_stage(const bs_program *prog)
{
    int *chunk = calloc((size_t)prog->stages, sizeof *chunk);
    int *seen = calloc((size_t)prog->devices, sizeof *seen);
    if (chunk && seen)
        for (int s = 0; s < prog->stages; s++)
            chunk[s] = seen[prog->stage_device[s]]++;
    free(seen);
    if (!seen) {
        free(chunk);
        return NULL;
    }
    return chunk;
}

typedef struct geometry {
    double from, to, px_per_ms; /* the window shown */
    int strip;                  /* some op is thinner than TL_THIN_PX */
    int bins;                   /* of the strip */
} geometry;

/* Writes one op block: thin = 0 the bordered ops, 1 the thin ones. */
static size_t write_ops(FILE *dat, const bs_result *res, const int *chunk, const geometry *g,
                        int thin)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    size_t written = 0;
    for (int d = 0; d < prog->devices; d++) {
        int second_of_pair = 0;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            int first_of_pair = (op->reserved & BS_OP_OVERLAP_NEXT) != 0;
            double start = tl->times[i].start, end = tl->times[i].end;
            double top = d - 0.42, bottom = g->strip ? d + 0.18 : d + 0.42;
            char label[16];
            int pair = first_of_pair || second_of_pair;
            second_of_pair = first_of_pair;
            if (end < g->from || start > g->to)
                continue;
            /* Thin by its own width: an op the window cuts keeps its border. */
            double box_px = (end - start) * g->px_per_ms;
            if ((box_px < TL_THIN_PX) != thin)
                continue;
            if (pair) { /* the first of the pair above, the second below */
                double mid = (top + bottom) / 2;
                if (first_of_pair)
                    bottom = mid;
                else
                    top = mid;
            }
            if (op->kind == BS_OP_OPTIMIZER)
                snprintf(label, sizeof label, "opt");
            else
                snprintf(label, sizeof label, "%u", op->microbatch);
            double shown_px = (fmin(end, g->to) - fmax(start, g->from)) * g->px_per_ms;
            if (thin || shown_px < (double)(strlen(label) * TL_DIGIT_PX + 4))
                label[0] = '\0';
            fprintf(dat, "%d %.17g %.17g %d %d \"%s\" %.6g %.6g\n", d, start, end, op->kind,
                    op->kind == BS_OP_OPTIMIZER ? 0 : chunk[op->stage], label, (top + bottom) / 2,
                    (bottom - top) / 2);
            written++;
        }
    }
    return written;
}

/* The busy share of each strip bin per device: the union of the op
 * intervals (an overlapped pair counts once) cut at the bin edges. */
static int write_strip(FILE *dat, const bs_result *res, const geometry *g)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    double bin = (g->to - g->from) / g->bins;
    double *busy = malloc((size_t)g->bins * sizeof *busy);
    if (!busy)
        return -1;
    for (int d = 0; d < prog->devices; d++) {
        memset(busy, 0, (size_t)g->bins * sizeof *busy);
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            if (i > prog->device_first[d] && (prog->ops[i - 1].reserved & BS_OP_OVERLAP_NEXT))
                continue; /* the second of a pair: the same interval */
            double a = fmax(tl->times[i].start, g->from), b = fmin(tl->times[i].end, g->to);
            if (b <= a)
                continue;
            /* Clamped before the cast: a bin of a denormal width would
             * put the index beyond int. */
            double fa = (a - g->from) / bin, fb = (b - g->from) / bin;
            int first = fa < 0 ? 0 : fa >= g->bins ? g->bins : (int)fa;
            int last = fb < 0 ? 0 : fb >= g->bins ? g->bins : (int)fb;
            for (int k = first; k <= last && k < g->bins; k++) {
                double lo = g->from + k * bin, hi = lo + bin;
                busy[k] += fmin(b, hi) - fmax(a, lo);
            }
        }
        for (int k = 0; k < g->bins; k++)
            fprintf(dat, "%d %.17g %.17g %.4f %.3f 0.17\n", d, g->from + k * bin,
                    g->from + (k + 1) * bin, fmin(1, busy[k] / bin), d + 0.23);
    }
    free(busy);
    return 0;
}

/* Live activations per device, in micro-batch activations of one chunk,
 * as metrics.c counts them; scaled so the busiest device's peak fills its
 * row band. */
static int write_memory(FILE *dat, const bs_result *res, const bs_config *cfg)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    double peak = 0, kept = cfg->kept_fraction;
    int pass;
    if (prog->flags & BS_PROGRAM_FORWARD_ONLY)
        return 0;
    for (pass = 0; pass < 2; pass++) {
        for (int d = 0; d < prog->devices; d++) {
            double live = 0;
            if (pass)
                fprintf(dat, "%s%d 0 %.6g\n", d ? "\n" : "", d, d + 0.42);
            for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
                const bs_op *op = &prog->ops[i];
                double at = tl->times[i].end;
                switch (op->kind) {
                case BS_OP_FORWARD:
                    live += 1;
                    break;
                case BS_OP_BACKWARD:
                    live -= 1;
                    at = tl->times[i].start;
                    break;
                case BS_OP_INPUT_GRAD:
                    live -= 1 - kept;
                    at = tl->times[i].start;
                    break;
                case BS_OP_WEIGHT_GRAD:
                    live -= kept;
                    at = tl->times[i].start;
                    break;
                default:
                    continue;
                }
                if (!pass && live > peak)
                    peak = live;
                if (pass)
                    fprintf(dat, "%d %.17g %.6g\n", d, at, d + 0.42 - 0.84 * live / peak);
            }
            if (pass)
                fprintf(dat, "%d %.17g %.6g\n", d, res->makespan, d + 0.42 - 0.84 * live / peak);
        }
        if (peak <= 0)
            return 0;
    }
    return 1;
}

static void write_data(FILE *dat, const bs_result *res, const bs_config *cfg, const int *chunk,
                       const geometry *g, const cli_timeline_options *opt, int *memory_drawn,
                       int *failed)
{
    const bs_timeline *tl = res->timeline;
    fprintf(dat,
            "# bubblesim timeline: P=%d, M=%d, V=%d, iterations=%d; times in ms\n"
            "# blocks (gnuplot index): see the program's header (plots/timeline.gp)\n"
            "# index 0, ops with a border: device start end kind chunk label y dy\n",
            res->stages, res->microbatches, res->virtual_stages, res->iterations);
    /* gnuplot refuses an empty index; one invisible point keeps it. */
    if (!write_ops(dat, res, chunk, g, 0))
        fputs("0 NaN NaN 0 0 \"\" NaN NaN\n", dat);
    fputs("\n\n# index 1, ops too thin for a border: the same columns\n", dat);
    if (!write_ops(dat, res, chunk, g, 1))
        fputs("0 NaN NaN 0 0 \"\" NaN NaN\n", dat);
    fputs("\n\n# index 2, messages: src dst ready start arrive y_from y_to\n", dat);
    if (opt->with_messages && tl->messages && tl->message_count) {
        for (size_t k = 0; k < tl->message_count; k++) {
            const bs_message *m = &tl->messages[k];
            double down = m->dst > m->src ? 0.42 : -0.42;
            fprintf(dat, "%u %u %.17g %.17g %.17g %.17g %.17g\n", m->src, m->dst, m->ready,
                    m->start, m->arrive, m->src + down, m->dst - down);
        }
    } else {
        fputs("0 0 0 0 0 NaN NaN\n", dat);
    }
    fputs("\n\n# index 3, utilisation strip: device from to busy_fraction y dy\n", dat);
    if (!g->strip || write_strip(dat, res, g))
        fputs("0 0 0 NaN NaN NaN\n", dat);
    if (g->strip && g->bins <= 0)
        *failed = 1;
    fputs("\n\n# index 4, live activations: device time y\n", dat);
    *memory_drawn = opt->with_memory ? write_memory(dat, res, cfg) : 0;
    if (!*memory_drawn)
        fputs("0 NaN NaN\n", dat);
    if (ferror(dat))
        *failed = 1;
}

int cli_timeline_check(const char *image_path, const bs_result *res,
                       const cli_timeline_options *opt, bs_error *err)
{
    const bs_program *prog = res->timeline->program;
    if (prog->devices > cli_timeline_max_devices())
        return cli_fail(err, BS_ERR_INVALID,
                        "--timeline %s: %d devices do not fit one picture (at most %d, at %d "
                        "pixels a row); use --trace FILE.json and open it in Perfetto "
                        "(ui.perfetto.dev), which scrolls",
                        image_path, prog->devices, cli_timeline_max_devices(), TL_MIN_ROW);
    if (opt->windowed && opt->window_from >= res->makespan)
        return cli_fail(err, BS_ERR_INVALID,
                        "--window %.6g:%.6g: starts after the run ends (makespan %.6g ms)",
                        opt->window_from, opt->window_to, res->makespan);
    return BS_OK;
}

int cli_timeline_stage(cli_outset *set, const char *image_path, const bs_result *res,
                       const bs_config *cfg, const cli_timeline_options *opt, bs_error *err)
{
    char dir[4096], stem[1024], path[8192], title[512], note[600], settings[400];
    int rc = BS_OK, *chunk = NULL, failed = 0, memory_drawn = 0, dat_member;
    cli_image_format format = cli_image_format_of(image_path);
    const bs_program *prog = res->timeline->program;
    FILE *dat;
    geometry g = {0, res->makespan, 0, 0, 0};
    if ((rc = cli_timeline_check_name(image_path, err)))
        return rc;
    if ((rc = cli_timeline_check(image_path, res, opt, err)))
        return rc;
    if (opt->windowed) {
        g.from = opt->window_from;
        g.to = opt->window_to;
    }
    if (cli_chart_split(image_path, dir, sizeof dir, stem, sizeof stem))
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    if (!(chunk = chunk_of_stage(prog)))
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing the timeline");

    size_t busiest = 0;
    unsigned kinds = 0;
    for (int d = 0; d < prog->devices; d++)
        if (prog->device_first[d + 1] - prog->device_first[d] > busiest)
            busiest = prog->device_first[d + 1] - prog->device_first[d];
    for (size_t i = 0; i < prog->op_count; i++)
        kinds |= 1u << (prog->ops[i].kind <= BS_OP_OPTIMIZER ? prog->ops[i].kind : 0);
    double shown = res->makespan > 0 ? (g.to - g.from) / res->makespan : 1;
    double wanted = (double)busiest * fmin(1, shown) * TL_PX_PER_OP + TL_MARGIN_X;
    int width = (int)fmin(TL_MAX_WIDTH, fmax(TL_MIN_WIDTH, wanted));
    int row = (TL_MAX_HEIGHT - TL_FRAME_HEIGHT) / (prog->devices > 0 ? prog->devices : 1);
    if (row > TL_ROW_HEIGHT)
        row = TL_ROW_HEIGHT;
    int height = TL_FRAME_HEIGHT + row * prog->devices;
    g.px_per_ms = g.to > g.from ? (width - TL_MARGIN_X) / (g.to - g.from) : 0;
    for (size_t i = 0; i < prog->op_count && !g.strip; i++) {
        const bs_op_time *t = &res->timeline->times[i];
        if (t->end >= g.from && t->start <= g.to && (t->end - t->start) * g.px_per_ms < TL_THIN_PX)
            g.strip = 1;
    }
    g.bins = (width - TL_MARGIN_X) / TL_BIN_PX;
    if (!(g.to > g.from) || !isfinite(g.px_per_ms))
        g.strip = 0; /* nothing to cut into bins */

    snprintf(path, sizeof path, "%s/%s.dat", dir, stem);
    if ((rc = dat_member = cli_outset_add(set, path, &dat, err)) < 0)
        goto error;
    write_data(dat, res, cfg, chunk, &g, opt, &memory_drawn, &failed);
    if (failed) {
        rc = cli_fail(err, BS_ERR_NOMEM, "%s: out of memory or write failed", path);
        goto error;
    }

    int n = snprintf(title, sizeof title, "%s   P=%d  M=%d  V=%d", res->schedule, res->stages,
                     res->microbatches, res->virtual_stages);
    if (res->iterations > 1)
        n += snprintf(title + n, sizeof title - (size_t)n, "  iterations=%d", res->iterations);
    n += snprintf(title + n, sizeof title - (size_t)n,
                  "\nmakespan %.6g ms,  bubble %.2f%% of device time idle", res->makespan,
                  100 * res->bubble_ratio);
    if (res->formula.valid)
        snprintf(title + n, sizeof title - (size_t)n, " (closed form %.2f%%)",
                 100 * res->formula.bubble_ratio);
    n = 0;
    note[0] = '\0';
    if (opt->windowed)
        n += snprintf(note + n, sizeof note - (size_t)n,
                      "window %.6g to %.6g ms of %.6g ms; the title's figures are for the whole "
                      "run\n",
                      g.from, g.to, res->makespan);
    if (g.strip)
        n += snprintf(note + n, sizeof note - (size_t)n,
                      "boxes under %.0f px have no border; the strip under each row is the busy "
                      "share per %.3g ms\n",
                      TL_THIN_PX, (g.to - g.from) / g.bins);
    if (memory_drawn)
        snprintf(note + n, sizeof note - (size_t)n,
                 "black line: live activations (row height = the largest device peak)\n");
    int note_lines = 0;
    for (char *c = note; *c; c++)
        note_lines += *c == '\n';
    if (note_lines) /* no trailing newline: the lines are counted */
        note[strlen(note) - 1] = '\0';
    int entries = 1 + (opt->with_messages != 0) + g.strip + memory_drawn;
    for (int k = 0; k <= BS_OP_OPTIMIZER; k++)
        entries += (kinds >> k & 1) ? (k == BS_OP_OPTIMIZER ? 1 : prog->chunks_per_device) : 0;
    int label_every = prog->devices > 64 ? (prog->devices + 63) / 64 : 1;
    snprintf(settings, sizeof settings, "%d %d %d %d %.17g %.17g %u %d %d %d %d %d %d %d", width,
             height + 14 * note_lines, prog->devices, prog->chunks_per_device, g.from, g.to, kinds,
             opt->with_messages != 0, g.strip, memory_drawn, (entries + 3) / 4,
             format == CLI_IMAGE_SVG, label_every, note_lines);
    cli_chart_arg args[] = {CLI_MEMBER(dat_member), CLI_TEXT(title), CLI_TEXT(note),
                            CLI_TEXT(settings)};
    rc = cli_chart_stage(set, image_path, "timeline", args, 4, err);
error:
    free(chunk);
    return rc < 0 ? rc : BS_OK;
}
