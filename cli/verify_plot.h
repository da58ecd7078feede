/*
 * verify_plot.h - `verify --chart NAME.png|NAME.svg`: the predicted and the
 * measured timeline in one chart (program plots/verify.gp).
 */
#ifndef BS_CLI_VERIFY_PLOT_H
#define BS_CLI_VERIFY_PLOT_H

#include "gnuplot.h"

/* Writes NAME.dat, NAME.gp, NAME.sh and the picture beside image_path, all
 * together or none (one output set). pred and meas share one program. dry
 * marks a measurement that is the plan under ideal stream semantics.
 * Returns the exit code (EXIT_OK, or 2 with the message printed, also when
 * gnuplot is missing, as run and sweep do). */
int cli_verify_chart(const char *image_path, const bs_result *pred, const bs_result *meas,
                     double error_pct, int dry);

#endif
