/*
 * timeline.c - a run's timeline as a gnuplot chart: one row per device,
 * one box per op, coloured by op kind, lighter for later model chunks.
 *
 * STEM.dat holds the facts, one block per gnuplot index:
 *   index 0  one line per op:      device start end kind chunk "label" y dy
 *   index 1  one line per message: src dst ready start arrive y_from y_to
 * and STEM.gp holds every choice of looks (colours, sizes, fonts), so a user
 * restyles by editing the script alone. The label of an op is its
 * micro-batch number, left empty when the box is too narrow to hold it at
 * the chosen image width; y +- dy is the box's vertical extent: the whole row
 * band, or its upper and lower half for the two ops of an overlapped pair
 * (BS_OP_OVERLAP_NEXT), which share one interval. Those are the only places
 * where the data depends on the picture.
 */
#include "timeline.h"
#include "outfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Picture geometry, in pixels (the SVG terminal uses the same units). */
#define TL_MIN_WIDTH 900
#define TL_MAX_WIDTH 2400
#define TL_PX_PER_OP 14  /* width the busiest device gets per op, before the cap */
#define TL_ROW_HEIGHT 38 /* per device */
#define TL_FRAME_HEIGHT 210
#define TL_MARGIN_X 110 /* y tic labels and borders: what the plot area loses */
#define TL_DIGIT_PX 6   /* one character of the 8 pt label font */

static const char *const kind_names[] = {"forward", "backward", "input-grad", "weight-grad",
                                         "optimizer"};

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

static int write_data(FILE *dat, const bs_result *res, const int *chunk, double px_per_ms,
                      int with_messages)
{
    const bs_timeline *tl = res->timeline;
    const bs_program *prog = tl->program;
    fprintf(dat,
            "# bubblesim timeline: %s, P=%d, M=%d, V=%d, iterations=%d; times in ms\n"
            "# index 0, one line per op: device start end kind chunk label y dy\n"
            "#   kind: 0 forward, 1 backward, 2 input-grad, 3 weight-grad, 4 optimizer;\n"
            "#   label: the micro-batch number, empty where the box is too narrow;\n"
            "#   y, dy: the box spans y - dy .. y + dy (half rows: an overlapped pair)\n",
            res->schedule, res->stages, res->microbatches, res->virtual_stages, res->iterations);
    for (int d = 0; d < prog->devices; d++) {
        int second_of_pair = 0;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
            const bs_op *op = &prog->ops[i];
            int first_of_pair = (op->reserved & BS_OP_OVERLAP_NEXT) != 0;
            double y = d, dy = 0.4;
            char label[16];
            if (first_of_pair || second_of_pair) {
                y = first_of_pair ? d - 0.2 : d + 0.2;
                dy = 0.2;
            }
            second_of_pair = first_of_pair;
            if (op->kind == BS_OP_OPTIMIZER)
                snprintf(label, sizeof label, "opt");
            else
                snprintf(label, sizeof label, "%u", op->microbatch);
            double box_px = (tl->times[i].end - tl->times[i].start) * px_per_ms;
            if (box_px < (double)(strlen(label) * TL_DIGIT_PX + 4))
                label[0] = '\0';
            fprintf(dat, "%d %.17g %.17g %d %d \"%s\" %g %g\n", d, tl->times[i].start,
                    tl->times[i].end, op->kind, op->kind == BS_OP_OPTIMIZER ? 0 : chunk[op->stage],
                    label, y, dy);
        }
    }
    fputs("\n\n# index 1, one line per message: src dst ready start arrive y_from y_to\n"
          "#   (y: the edges of the sender's and receiver's rows)\n",
          dat);
    if (with_messages && tl->messages) {
        for (size_t k = 0; k < tl->message_count; k++) {
            const bs_message *m = &tl->messages[k];
            double down = m->dst > m->src ? 0.42 : -0.42;
            fprintf(dat, "%u %u %.17g %.17g %.17g %.17g %.17g\n", m->src, m->dst, m->ready,
                    m->start, m->arrive, m->src + down, m->dst - down);
        }
    } else {
        /* gnuplot refuses an empty index; one invisible point keeps it. */
        fputs("0 0 0 0 0 NaN NaN\n", dat);
    }
    return ferror(dat) ? -1 : 0;
}

static void write_script(FILE *gp, const char *stem, cli_image_format format, const bs_result *res,
                         int width, int height, int with_messages, const int *kinds_present)
{
    const bs_program *prog = res->timeline->program;
    int p = prog->devices, v = prog->chunks_per_device;
    cli_gnuplot_preamble(gp, stem, format, width, height);
    fprintf(gp, "data = '%s.dat'\n", stem);
    fputs("\n# Colours: one per op kind; chunk c of V is lighter by shade(c).\n"
          "forward_rgb = 0x4C72B0; backward_rgb = 0x55A868; input_grad_rgb = 0xDD8452\n"
          "weight_grad_rgb = 0x8172B3; optimizer_rgb = 0x7F7F7F\n"
          "idle_rgb = '#EEEEEE'; message_rgb = '#B03030'\n",
          gp);
    fprintf(gp, "V = %d\n", v);
    fputs("kind_rgb(k) = k == 0 ? forward_rgb : k == 1 ? backward_rgb : k == 2 ? input_grad_rgb "
          ": k == 3 ? weight_grad_rgb : optimizer_rgb\n"
          "shade(c) = V > 1 ? 0.55 * c / (V - 1) : 0\n"
          "channel(rgb, s) = int(rgb / s) % 256\n"
          "lighter(x, f) = int(x + (255 - x) * f)\n"
          "color(k, c) = lighter(channel(kind_rgb(k), 65536), shade(c)) * 65536 + "
          "lighter(channel(kind_rgb(k), 256), shade(c)) * 256 + lighter(channel(kind_rgb(k), 1), "
          "shade(c))\n"
          "text_rgb(c) = shade(c) > 0.3 ? 0x000000 : 0xFFFFFF\n\n",
          gp);
    fprintf(gp, "set title \"%s   P=%d  M=%d  V=%d", res->schedule, res->stages, res->microbatches,
            res->virtual_stages);
    if (res->iterations > 1)
        fprintf(gp, "  iterations=%d", res->iterations);
    fprintf(gp, "\\nmakespan %.6g ms,  bubble %.2f%% of device time idle", res->makespan,
            100 * res->bubble_ratio);
    if (res->formula.valid)
        fprintf(gp, " (closed form %.2f%%)", 100 * res->formula.bubble_ratio);
    fputs("\" font ',12'\n", gp);
    fprintf(gp, "set xrange [0:%.17g]\nset yrange [%d.5:-0.5]\n", res->makespan, p - 1);
    /* The key: one entry per kind and chunk that occurs, idle, messages;
     * four to a row so that it fits the narrowest picture. */
    int entries = 1 + (with_messages != 0);
    for (int k = 0; k <= BS_OP_OPTIMIZER; k++)
        entries += kinds_present[k] ? (k == BS_OP_OPTIMIZER ? 1 : v) : 0;
    int key_rows = (entries + 3) / 4;
    fprintf(gp, "set xlabel 'time (ms)' offset 0,0.5\nset bmargin %d\nset ytics scale 0 (",
            4 + key_rows);
    for (int d = 0; d < p; d++)
        fprintf(gp, "%s'device %d' %d", d ? ", " : "", d, d);
    fputs(")\nset grid noytics xtics\nset mxtics\n"
          "set key outside bottom center horizontal samplen 2 width 1 maxcols 4\n"
          "set style fill solid 1.0 border lc rgb 'white'\n",
          gp);
    for (int d = 0; d < p; d++)
        fprintf(gp,
                "set object %d rect from 0,%g to %.17g,%g fc rgb idle_rgb fs solid 1.0 "
                "noborder behind\n",
                d + 1, d - 0.4, res->makespan, d + 0.4);
    fputs("\nplot data index 0 using (($2 + $3) / 2):7:(($3 - $2) / 2):8:(color($4, $5)) \\\n"
          "        with boxxyerror lc rgb variable, \\\n"
          "     data index 0 using (($2 + $3) / 2):7:(stringcolumn(6)):(text_rgb($5)) \\\n"
          "        with labels font ',8' tc rgb variable",
          gp);
    if (with_messages)
        fputs(", \\\n     data index 1 using 4:6:($5 - $4):($7 - $6) with vectors "
              "nohead lc rgb message_rgb lw 0.6",
              gp);
    /* Key samples, in the order counted above. */
    for (int k = 0; k <= BS_OP_OPTIMIZER; k++) {
        if (!kinds_present[k])
            continue;
        int chunks = k == BS_OP_OPTIMIZER ? 1 : v;
        for (int c = 0; c < chunks; c++) {
            fprintf(gp, ", \\\n     NaN with boxes lc rgb color(%d, %d) title '%s", k, c,
                    kind_names[k]);
            if (chunks > 1)
                fprintf(gp, " (chunk %d)", c);
            fputc('\'', gp);
        }
    }
    fputs(", \\\n     NaN with boxes lc rgb idle_rgb title 'idle'", gp);
    if (with_messages)
        fputs(", \\\n     NaN with lines lc rgb message_rgb title 'message (send to arrival)'", gp);
    fputc('\n', gp);
}

int cli_timeline_draw(const char *image_path, const bs_result *res, int with_messages,
                      bs_error *err)
{
    char dir[4096], stem[1024], path[8192];
    cli_outfile dat = {0}, gp = {0};
    int rc = BS_OK, *chunk = NULL;
    cli_image_format format = cli_image_format_of(image_path);
    const bs_program *prog = res->timeline->program;
    dat.slot = gp.slot = -1;
    if (format == CLI_IMAGE_NONE)
        return cli_fail(err, BS_ERR_INVALID, "--timeline %s: expected a .png or .svg file name",
                        image_path);
    if (cli_chart_split(image_path, dir, sizeof dir, stem, sizeof stem))
        return cli_fail(err, BS_ERR_IO, "%s: path too long", image_path);
    if (!(chunk = chunk_of_stage(prog)))
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing the timeline");

    size_t busiest = 0;
    int kinds_present[BS_OP_OPTIMIZER + 1] = {0};
    for (int d = 0; d < prog->devices; d++)
        if (prog->device_first[d + 1] - prog->device_first[d] > busiest)
            busiest = prog->device_first[d + 1] - prog->device_first[d];
    for (size_t i = 0; i < prog->op_count; i++)
        kinds_present[prog->ops[i].kind <= BS_OP_OPTIMIZER ? prog->ops[i].kind : 0] = 1;
    double wanted = (double)busiest * TL_PX_PER_OP + TL_MARGIN_X;
    int width = (int)fmin(TL_MAX_WIDTH, fmax(TL_MIN_WIDTH, wanted));
    int height = TL_FRAME_HEIGHT + TL_ROW_HEIGHT * prog->devices;
    double px_per_ms = res->makespan > 0 ? (width - TL_MARGIN_X) / res->makespan : 0;

    snprintf(path, sizeof path, "%s/%s.dat", dir, stem);
    if ((rc = cli_outfile_open(&dat, path, err)))
        goto error;
    if (write_data(dat.file, res, chunk, px_per_ms, with_messages)) {
        rc = cli_fail(err, BS_ERR_IO, "%s: write failed", path);
        goto error;
    }
    snprintf(path, sizeof path, "%s/%s.gp", dir, stem);
    if ((rc = cli_outfile_open(&gp, path, err)))
        goto error;
    write_script(gp.file, stem, format, res, width, height, with_messages, kinds_present);
    if ((rc = cli_outfile_commit(&dat, err)) || (rc = cli_outfile_commit(&gp, err)))
        goto error;
    rc = cli_gnuplot_render(dir, stem, format, err);
error:
    cli_outfile_abort(&dat);
    cli_outfile_abort(&gp);
    free(chunk);
    return rc;
}
