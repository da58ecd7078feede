/*
 * timeline.h - `run --timeline FILE.png|FILE.svg`: the gnuplot timeline
 * (program plots/timeline.gp).
 */
#ifndef BS_CLI_TIMELINE_H
#define BS_CLI_TIMELINE_H

#include "gnuplot.h"

/* What the picture shows beyond the ops. */
typedef struct cli_timeline_options {
    int with_messages; /* message arrows, when the run recorded them */
    int with_memory;   /* a live-activation line per device */
    int windowed;      /* only [window_from, window_to] ms */
    double window_from, window_to;
} cli_timeline_options;

/* The most devices one picture holds (rows of at least TL_MIN_ROW px). */
int cli_timeline_max_devices(void);

/* Parses a --window value "START:END" (ms, START < END, both finite and
 * >= 0) into opt. Returns -1 on a bad value. */
int cli_timeline_parse_window(const char *text, cli_timeline_options *opt);

/* Checks before any simulation what can be checked without the result:
 * the file name's extension. */
int cli_timeline_check_name(const char *image_path, bs_error *err);

/* Checks what the result decides, before any file is touched: the number
 * of devices one picture holds, the window against the makespan. Refusals
 * are BS_ERR_INVALID (exit 2) with a hint. */
int cli_timeline_check(const char *image_path, const bs_result *res,
                       const cli_timeline_options *opt, bs_error *err);

/* Stages STEM.dat, STEM.gp, STEM.sh and the picture into set, drawn with
 * gnuplot. Too many devices for one picture or a window outside the run is
 * BS_ERR_INVALID (exit 2) with a hint. */
int cli_timeline_stage(cli_outset *set, const char *image_path, const bs_result *res,
                       const bs_config *cfg, const cli_timeline_options *opt, bs_error *err);

#endif
