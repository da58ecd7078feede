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

/* Creates dir (and parents) if missing and proves it takes a new file. */
int cli_prepare_dir(const char *dir, bs_error *err);
/* The same for the directory that will hold the file path. */
int cli_prepare_file_dir(const char *path, bs_error *err);

/* Writes res with the named writer (bubblesim.h's table) to path, whole or
 * not at all. */
int cli_write_result_file(const char *path, const char *writer_name, const bs_result *res,
                          const bs_config *cfg, bs_error *err);

#endif
