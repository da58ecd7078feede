/*
 * sweep.h - what `bubblesim sweep` computes and what its charts read: the
 * swept axes and one row per point of their cross product (the keys of the
 * sweep's "cases" vary together, as one axis).
 */
#ifndef BS_CLI_SWEEP_H
#define BS_CLI_SWEEP_H

#include "cli.h"
#include "outfile.h"

#include <stdint.h>

/* One swept key path and its values, as JSON text (what --set takes). */
typedef struct sweep_axis {
    char *path;     /* "microbatches", "costs.forward", ... */
    size_t count;   /* >= 1 */
    char **values;  /* [count] JSON text of each value */
    char **labels;  /* [count] the value for people: strings unquoted */
    double *number; /* [count] the value as a number, NAN when not one */
    /* A key of the sweep's "cases": it takes its value index from the axis
     * before it (the cases are zipped, not crossed). The first key of the
     * cases is not zipped: it leads the group, whose count is the number
     * of cases. */
    int zipped;
} sweep_axis;

/* The outcome of one point. A refused point (config or schedule not
 * possible) has ok = 0 and the reason; its metrics are unset. */
typedef struct sweep_row {
    int ok;
    char *reason; /* malloc'd, only when !ok */
    char schedule[BS_NAME_MAX];
    int stages, microbatches, virtual_stages;
    double makespan, iteration_time;
    double bubble_ratio, bubble_over_ideal, span_bubble_ratio;
    int formula_valid;
    double formula_bubble_ratio;
    double peak_activations, peak_activation_bytes;
    int weight_versions;
    uint64_t messages;
    double message_bytes;
    double time_per_output_token, tokens_per_second; /* decode only; NAN otherwise */
    /* Iteration time of the point's baseline over its own (the sweep's
     * "baseline"); NAN without a baseline or when either was refused. */
    double speedup;
} sweep_row;

typedef struct sweep_result {
    const sweep_axis *axes;
    size_t n_axes;
    const sweep_row *rows; /* [points], first axis varying slowest */
    size_t points;
} sweep_result;

/* Value index of axis k at point i (cli/sweep_result.c). */
size_t sweep_value_index(const sweep_result *s, size_t point, size_t axis);
/* The first axis of the group that axis k belongs to: k itself unless it is
 * a zipped key of the cases. Axes with the same leader vary together. */
size_t sweep_axis_leader(const sweep_result *s, size_t axis);

/* Stages the charts that the swept keys allow into set, in dir as
 * STEM-*.png (+ .dat, .gp, .sh each, gnuplot.h); says on stderr which ones,
 * or that none applies (every point refused included: BS_OK, no chart). */
int sweep_plot(const sweep_result *s, cli_outset *set, const char *dir, const char *stem,
               bs_error *err);

/* Checks the "sweep" section of a config text as `sweep` would (its keys,
 * lists, cases and baseline, and the base config), simulating nothing: for
 * `run`, which ignores the section. */
int sweep_check_section(const char *text, const char *source, bs_error *err);

/* `bubblesim merge DIR... --out DIR [--plot]`: joins the shard files that
 * `sweep --shard K/N` wrote in the directories into DIR/NAME.csv and
 * DIR/NAME.json, the same bytes as the unsharded sweep (cli/sweep.c).
 * Returns the exit code. */
int sweep_merge(char *const *dirs, size_t n_dirs, const char *out_dir, int plot);

#endif
