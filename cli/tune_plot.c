/*
 * tune_plot.c - the tune chart (see tune_plot.h).
 */
#include "tune_plot.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

int cli_tune_chart_stage(cli_outset *set, const char *dir, const char *source,
                         double memory_limit_bytes, const cli_tune_point *points, size_t n,
                         bs_error *err)
{
    char path[8192], title[600], settings[200];
    FILE *dat;
    int rc, member;
    snprintf(path, sizeof path, "%s/tune.dat", dir);
    if ((rc = member = cli_outset_add(set, path, &dat, err)) < 0)
        return rc;
    static const char *const names[] = {"simulated, fits", "simulated, over memory",
                                        "Pareto front"};
    fputs("# peak memory (GiB), time per iteration (s), configuration\n", dat);
    for (int k = 0; k < 3; k++) {
        int any = 0;
        fprintf(dat, "%s# %s\n", k ? "\n\n" : "", names[k]);
        for (size_t i = 0; i < n; i++) {
            if (points[i].group != (cli_tune_group)k)
                continue;
            fprintf(dat, "%.6f %.9g ", points[i].memory_bytes / GIB, points[i].time_ms / 1000);
            cli_gnuplot_data_string(dat, points[i].label);
            fputc('\n', dat);
            any = 1;
        }
        if (!any) /* gnuplot refuses an empty index */
            fputs("NaN NaN \"none\"\n", dat);
    }
    snprintf(title, sizeof title, "bubblesim tune %s: time per iteration against peak memory",
             source);
    snprintf(settings, sizeof settings, "%.6f %.6f 0", memory_limit_bytes / GIB,
             2 * memory_limit_bytes / GIB);
    snprintf(path, sizeof path, "%s/tune.png", dir);
    cli_chart_arg args[] = {CLI_MEMBER(member), CLI_TEXT(title), CLI_TEXT(settings)};
    return cli_chart_stage(set, path, "tune", args, 3, err);
}
