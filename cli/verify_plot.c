/*
 * verify_plot.c - the verify comparison chart (see verify_plot.h).
 */
#include "verify_plot.h"

static void write_data(FILE *dat, const bs_result *pred, const bs_result *meas)
{
    const bs_program *prog = pred->timeline->program;
    fprintf(dat,
            "# bubblesim verify: P=%d M=%d V=%d; times in ms\n"
            "# one line per op: row start end kind (row 2d predicted, 2d+1 measured)\n",
            pred->stages, pred->microbatches, pred->virtual_stages);
    for (int d = 0; d < prog->devices; d++)
        for (int measured = 0; measured < 2; measured++) {
            const bs_timeline *tl = (measured ? meas : pred)->timeline;
            for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++)
                fprintf(dat, "%d %.17g %.17g %d\n", 2 * d + measured, tl->times[i].start,
                        tl->times[i].end, prog->ops[i].kind);
        }
    if (prog->op_count == 0)
        fputs("0 NaN NaN 0\n", dat);
}

int cli_verify_chart(const char *image_path, const bs_result *pred, const bs_result *meas,
                     double error_pct, int dry)
{
    char dir[4096], stem[1024], path[8192], title[600], settings[200];
    cli_outset set;
    bs_error err = {{0}};
    FILE *dat;
    int rc, member, code = EXIT_OK;
    cli_image_format format = cli_image_format_of(image_path);
    cli_outset_init(&set);
    if (format == CLI_IMAGE_NONE) {
        rc = cli_fail(&err, BS_ERR_INVALID, "--chart %s: expected a .png or .svg file name",
                      image_path);
        goto error;
    }
    if (cli_chart_split(image_path, dir, sizeof dir, stem, sizeof stem)) {
        rc = cli_fail(&err, BS_ERR_IO, "%s: path too long", image_path);
        goto error;
    }
    if ((rc = cli_prepare_file_dir(image_path, &err)))
        goto error;
    snprintf(path, sizeof path, "%s/%s.dat", dir, stem);
    if ((rc = member = cli_outset_add(&set, path, &dat, &err)) < 0)
        goto error;
    write_data(dat, pred, meas);
    snprintf(title, sizeof title,
             "%s  P=%d  M=%d  V=%d: predicted %.6g ms, measured %.6g ms (%+.3f%%)%s",
             pred->schedule, pred->stages, pred->microbatches, pred->virtual_stages, pred->makespan,
             meas->makespan, error_pct,
             dry ? "\nDRY RUN: no GPU was used, the measured rows are the plan under ideal stream "
                   "semantics"
                 : "");
    int devices = pred->devices;
    double end = pred->makespan > meas->makespan ? pred->makespan : meas->makespan;
    int height = 200 + 30 * 2 * devices;
    snprintf(settings, sizeof settings, "1200 %d %d %.17g %d", height > 10000 ? 10000 : height,
             devices, end, format == CLI_IMAGE_SVG);
    cli_chart_arg args[] = {CLI_MEMBER(member), CLI_TEXT(title), CLI_TEXT(settings)};
    if ((rc = cli_chart_stage(&set, image_path, "verify", args, 3, &err)) ||
        (rc = cli_outset_commit(&set, &err)))
        goto error;
    if (set.gnuplot_missing)
        code = cli_chart_missing_report(&set);
    return code;
error:
    cli_outset_abort(&set);
    return cli_report(rc, &err);
}
