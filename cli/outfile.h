/*
 * outfile.h - output files written whole or not at all (temp file + rename),
 * removed on SIGINT/SIGTERM; and the output directory check.
 */
#ifndef BS_CLI_OUTFILE_H
#define BS_CLI_OUTFILE_H

#include "cli.h"

#include <stdio.h>

typedef struct cli_outfile {
    FILE *file; /* write here; the final name appears at commit */
    char path[4096], temp[4096];
    int slot;        /* entry in the interrupt cleanup table, -1 none */
    int saved_errno; /* why open failed */
} cli_outfile;

/* Formats a message into err and returns code (the CLI's bs_fail). */
int cli_fail(bs_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Makes SIGINT and SIGTERM remove every temporary file still open, print
 * why, and exit 128 + signal. */
void cli_install_interrupt_cleanup(void);
/* Makes SIGINT and SIGTERM only record the signal (see cli_interrupt_signal),
 * for a command that stops cleanly and keeps its finished work. */
void cli_install_interrupt_flag(void);
/* The signal recorded since cli_install_interrupt_flag, or 0. */
int cli_interrupt_signal(void);

/* Opens a temporary file beside path. */
int cli_outfile_open(cli_outfile *out, const char *path, bs_error *err);
/* Closes and renames the temporary file to its path; removes it on error. */
int cli_outfile_commit(cli_outfile *out, bs_error *err);
/* Closes and removes the temporary file (no-op after commit). */
void cli_outfile_abort(cli_outfile *out);

/* A temporary name beside path for a file some other program writes (the
 * image gnuplot draws). Returns the cleanup slot, or -1 when no slot is free
 * or the name does not fit. */
int cli_temp_name(char *buf, size_t size, const char *path);
/* Forgets the temporary name, removing the file first when asked. */
void cli_temp_release(int slot, const char *name, int remove);

/* An output set: files that appear together or not at all. Each member is
 * staged as a temporary file beside its target; cli_outset_commit first
 * checks that every member was written completely, then renames them all;
 * on any failure every temporary file is removed and the targets are left
 * byte-identical (a rename that fails midway puts the earlier targets back
 * from hard-link backups). A target that exists and is not a regular file
 * (/dev/stdout, /dev/full, a FIFO) is written directly, as cli_outfile does,
 * and its write errors surface at commit before any rename. */
#define CLI_OUTSET_MAX 64

typedef int (*cli_outset_check)(const char *temp_path, const char *target, bs_error *err);

typedef struct cli_outset {
    size_t count;
    int gnuplot_missing;    /* a chart was left without its image (gnuplot.h) */
    char missing_hint[512]; /* the first such chart's redraw command */
    struct cli_outset_member {
        cli_outfile file;       /* file.file is NULL for an external member */
        int external;           /* written by another program into temp */
        cli_outset_check check; /* proves an external member complete, or NULL */
    } members[CLI_OUTSET_MAX];
} cli_outset;

void cli_outset_init(cli_outset *set);
/* Adds path as a member written by us; *file is where to write. Returns
 * the member index (>= 0) or a negative bs_status with err set. */
int cli_outset_add(cli_outset *set, const char *path, FILE **file, bs_error *err);
/* Adds path as a member another program writes (gnuplot's image); the name
 * it must write is cli_outset_staged(set, index). check, when given, runs at
 * commit on the finished temporary file. */
int cli_outset_add_external(cli_outset *set, const char *path, cli_outset_check check,
                            bs_error *err);
/* Where member index is being written now: its temporary name, or its
 * target when written directly. */
const char *cli_outset_staged(const cli_outset *set, int index);
/* The final name of member index. */
const char *cli_outset_target(const cli_outset *set, int index);
/* Checks every member, then renames all into place. On failure nothing is
 * replaced and err names the file. The set is empty afterwards either way. */
int cli_outset_commit(cli_outset *set, bs_error *err);
/* Removes every temporary file of the set (no-op on an empty set). */
void cli_outset_abort(cli_outset *set);

/* The completeness checks for images: a PNG ends with its IEND chunk, an
 * SVG with </svg> (and white space). */
int cli_check_png(const char *temp_path, const char *target, bs_error *err);
int cli_check_svg(const char *temp_path, const char *target, bs_error *err);

/* Checks, without creating or changing anything, that the file path could
 * be written: its directory exists and takes new files, or the nearest
 * existing ancestor is a writable directory (so cli_prepare_file_dir can
 * create the rest later). Used before a command's inputs are known good. */
int cli_check_file_dir(const char *path, bs_error *err);

/* Creates dir (and parents) if missing and proves it takes a new file. */
int cli_prepare_dir(const char *dir, bs_error *err);
/* The same for the directory that will hold the file path. */
int cli_prepare_file_dir(const char *path, bs_error *err);

/* Writes res with the named writer (bubblesim.h's table) to path, whole or
 * not at all. */
int cli_write_result_file(const char *path, const char *writer_name, const bs_result *res,
                          const bs_config *cfg, bs_error *err);

#endif
