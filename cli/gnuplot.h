/*
 * gnuplot.h - what the timeline and the sweep charts share: the image
 * formats, the script preamble and running gnuplot headless.
 *
 * Convention: a chart NAME.png (or .svg) comes with NAME.gp and NAME.dat in
 * the same directory. The script names its data and image by basename, so
 * `cd DIR && gnuplot NAME.gp` redraws it after a user restyles it.
 */
#ifndef BS_CLI_GNUPLOT_H
#define BS_CLI_GNUPLOT_H

#include "cli.h"

#include <stdio.h>

typedef enum cli_image_format { CLI_IMAGE_NONE = 0, CLI_IMAGE_PNG, CLI_IMAGE_SVG } cli_image_format;

/* The format named by path's extension, CLI_IMAGE_NONE for any other. */
cli_image_format cli_image_format_of(const char *path);
const char *cli_image_extension(cli_image_format format);

/* Splits "dir/name.png" into its directory ("dir", or "." when none) and
 * its basename without extension ("name"). Returns -1 when a part does not
 * fit. */
int cli_chart_split(const char *image_path, char *dir, size_t dir_size, char *stem,
                    size_t stem_size);

/* Writes the script's first lines: provenance, the output file (overridable
 * with -e "outfile='...'"), the terminal for format at width x height pixels,
 * and the style every chart shares. */
void cli_gnuplot_preamble(FILE *gp, const char *stem, cli_image_format format, int width,
                          int height);

/* Writes s as a single-quoted gnuplot string. */
void cli_gnuplot_quote(FILE *gp, const char *s);

/* Runs `gnuplot STEM.gp` in dir, drawing into a temporary file that is
 * renamed to STEM.EXT on success. A missing gnuplot is BS_ERR_IO (exit 2)
 * with a message naming the script left behind. */
int cli_gnuplot_render(const char *dir, const char *stem, cli_image_format format, bs_error *err);

#endif
