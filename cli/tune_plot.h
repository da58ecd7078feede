/*
 * tune_plot.h - `tune --out DIR`'s chart DIR/tune.png (program
 * plots/tune.gp): time per iteration against peak memory.
 */
#ifndef BS_CLI_TUNE_PLOT_H
#define BS_CLI_TUNE_PLOT_H

#include "gnuplot.h"

typedef enum cli_tune_group {
    CLI_TUNE_FITS = 0, /* simulated, fits the memory limit */
    CLI_TUNE_OVER = 1, /* simulated, over the limit */
    CLI_TUNE_FRONT = 2 /* on the time-memory Pareto front, in memory order */
} cli_tune_group;

typedef struct cli_tune_point {
    double memory_bytes, time_ms;
    cli_tune_group group;
    const char *label; /* "1f1b P=4 T=2 V=1 b=1 M=64" */
} cli_tune_point;

/* Stages DIR/tune.dat, tune.gp, tune.sh and tune.png into set: the points
 * of each group (the front labelled), time in seconds, memory in GiB, the
 * limit dashed. source names the config in the title. */
int cli_tune_chart_stage(cli_outset *set, const char *dir, const char *source,
                         double memory_limit_bytes, const cli_tune_point *points, size_t n,
                         bs_error *err);

#endif
