/*
 * gnuplot.h - charts drawn by the gnuplot programs under plots/.
 *
 * Every chart is a fixed program, plots/NAME.gp, run as
 *   gnuplot -c plots/NAME.gp IMAGE ARG2 ARG3 ...
 * with the image, the data files and every title passed as arguments:
 * gnuplot holds them in string variables (ARG1, ARG2, ...) and the programs
 * use them only as strings (never as @ macros, never with enhanced text),
 * so no byte of a file name or a config's text is ever read as gnuplot
 * code. File names reach gnuplot through cli_gnuplot_path ("./" before a
 * relative name), so none is taken for a command ('<cmd', '|cmd').
 *
 * Convention: a chart NAME.png (or .svg) comes with NAME.dat (its data),
 * NAME.gp (a copy of the program, to restyle) and NAME.sh, which redraws it:
 * `sh NAME.sh` runs `gnuplot -c NAME.gp ...` in its own directory with the
 * same arguments, each quoted as one shell word (quote.h). All of them are
 * members of one output set (outfile.h): they appear together or not at all.
 *
 * Where the programs are found (cli_plots_dir), first hit wins:
 *   1. $BUBBLESIM_PLOTS, when set (tests, relocated installs);
 *   2. DIR/../share/bubblesim/plots, DIR being the directory of the running
 *      executable (/proc/self/exe): an installed tree moved as a whole;
 *   3. the install data directory configured at build time
 *      (PREFIX/DATADIR/bubblesim/plots);
 *   4. the source tree's plots/, for the binary in a build directory.
 * A directory counts when it holds timeline.gp.
 */
#ifndef BS_CLI_GNUPLOT_H
#define BS_CLI_GNUPLOT_H

#include "cli.h"
#include "outfile.h"

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

/* The directory holding the gnuplot programs (search order above), or
 * BS_ERR_IO with a message naming the places tried. */
int cli_plots_dir(char *buf, size_t size, bs_error *err);

/* One argument of a chart program: a member of the output set (its staged
 * name while drawing, its final basename in NAME.sh) or a literal string. */
typedef struct cli_chart_arg {
    const char *text; /* used when member < 0 */
    int member;
} cli_chart_arg;

#define CLI_CHART_MAX_ARGS 8 /* gnuplot 5.4 passes ARG1..ARG9; ARG1 is the image */

/* Text argument and member argument. */
#define CLI_TEXT(s) ((cli_chart_arg){(s), -1})
#define CLI_MEMBER(i) ((cli_chart_arg){NULL, (i)})

/* Stages the chart image_path (.png or .svg) into set: NAME.gp (a copy of
 * plots/program.gp), NAME.sh, and the image drawn by gnuplot now, checked
 * complete (PNG IEND chunk, closing </svg>, exit status 0) at commit.
 * When gnuplot is not on PATH the image is left out, set->gnuplot_missing
 * is set (the caller commits the rest and reports, see
 * cli_chart_missing_report) and BS_OK is returned; a gnuplot that fails
 * is BS_ERR_INTERNAL with its exit status. */
int cli_chart_stage(cli_outset *set, const char *image_path, const char *program,
                    const cli_chart_arg *args, int nargs, bs_error *err);

/* After a set with set->gnuplot_missing was committed: says on stderr that
 * no image was drawn and how to draw it, and returns the exit code shared by
 * run, sweep and tune (2). */
int cli_chart_missing_report(const cli_outset *set);
/* The same message in err, as BS_ERR_IO (exit 2), for a caller that
 * reports its own errors. */
int cli_chart_missing_error(const cli_outset *set, bs_error *err);

/* Writes s as a string in a gnuplot data file: inside "..." gnuplot ends
 * the string at the next quote and reads backslash escapes, so a quote
 * becomes ' and a backslash /; control bytes (a newline would end the line)
 * become spaces. Only ever data: the programs in plots/ show it as a title
 * or label, never run it. */
void cli_gnuplot_data_string(FILE *f, const char *s);

#endif
