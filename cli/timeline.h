/*
 * timeline.h - `run --timeline FILE.png|FILE.svg`: the gnuplot timeline.
 */
#ifndef BS_CLI_TIMELINE_H
#define BS_CLI_TIMELINE_H

#include "gnuplot.h"

/* Writes STEM.dat and STEM.gp beside image_path and draws the picture with
 * gnuplot. Message arrows are drawn when with_messages is set and the run
 * recorded them. The .gp and .dat are kept even when gnuplot is missing. */
int cli_timeline_draw(const char *image_path, const bs_result *res, int with_messages,
                      bs_error *err);

#endif
