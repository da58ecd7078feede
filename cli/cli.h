/*
 * cli.h - pieces shared by the bubblesim command's subcommands.
 */
#ifndef BS_CLI_H
#define BS_CLI_H

#include "bubblesim.h"

#include <stdio.h>

enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* out of memory, internal error */
    EXIT_BAD_INPUT = 2,     /* bad config, bad usage, unwritable output */
    EXIT_DEADLOCK = 3
};

/* cli/common.c --------------------------------------------------------- */

/* Maps a library status to the documented exit code. */
int cli_exit_code(int status);

/* Prints "bubblesim: message" on stderr and returns the exit code for rc. */
int cli_report(int rc, const bs_error *err);
/* The same for an error about the config file `path`: the message is
 * prefixed with the file name unless it already starts with it. */
int cli_report_file(const char *path, int rc, const bs_error *err);

/* Splits a --set argument "KEY=VALUE" in place (argv strings are writable)
 * into *ov, which then points into kv. Returns -1, leaving kv as it was,
 * when there is no '=' or the key is empty; the caller reports it. */
int cli_parse_override(char *kv, bs_override *ov);

/* Prints "bubblesim: COMMAND: " fmt (with one string) " (usage: bubblesim
 * SYNOPSIS)" on stderr, where synopsis starts with the command's name, and
 * returns EXIT_BAD_INPUT. */
int cli_usage_error(const char *synopsis, const char *fmt, const char *arg);

/* Width of a table's schedule column: the longest built-in schedule name,
 * or "schedule" itself if that is longer, so every row lines up. */
int cli_schedule_width(void);

/* cli/help.c ----------------------------------------------------------- */

/* One subcommand: a row of the command table in cli/help.c. */
typedef struct cli_command {
    const char *name;
    int (*main)(int argc, char **argv); /* argv after the command name */
    const char *synopsis;               /* "run CONFIG [--json] ..." */
    const char *summary;                /* one line for the overview */
    const char *help;                   /* description and one line per option */
} cli_command;

/* The command called name, or NULL. */
const cli_command *cli_command_find(const char *name);
/* The overview: every command's synopsis and summary, the schedules, the
 * exit codes. */
void cli_print_usage(FILE *out);
/* One command's help; returns the exit code. */
int cli_command_help(const cli_command *cmd, FILE *out);
/* The synopses of the commands that report usage errors with
 * cli_usage_error; the command table (cli/help.c) shows the same text. */
#define CLI_SYNOPSIS_EXPORT                                                                        \
    "export CONFIG [--format pytorch|pytorch-comms] [-o FILE] [--set KEY=VALUE]..."
#define CLI_SYNOPSIS_CALIBRATE "calibrate TRACE.json -o CONFIG"
#define CLI_SYNOPSIS_COMPARE                                                                       \
    "compare CONFIG TRACE.json [--json] [--tolerance PCT] [--noise NOISE.json [--samples N] "      \
    "[--seed S]] [--set KEY=VALUE]..."

/* The subcommands ------------------------------------------------------- */

int cli_demo(void);
int cli_run(int argc, char **argv);
/* `export`: a schedule as PyTorch pipelining text (cli/export.c). */
int cli_export(int argc, char **argv);
/* `verify`: the schedule on a GPU against the prediction (cli/verify.c). */
int cli_verify(int argc, char **argv);
struct cJSON;
/* A config's "gpu" section checked key by key as verify reads it (for
 * `run`, which ignores the section); prints what is wrong, returns the
 * exit code. */
int cli_verify_check_gpu(const struct cJSON *gpu, const char *path);
/* `sweep`: the cross product of a config's "sweep" values (cli/sweep.c). */
int cli_sweep(int argc, char **argv);
/* `merge`: the shards of a sweep joined (cli/merge.c). */
int cli_merge(int argc, char **argv);
/* `tune`: the fastest schedule, P, T, V and micro-batch size that fit (cli/tune.c). */
int cli_tune(int argc, char **argv);
/* `calibrate` and `compare`: a measured trace of a real runtime (cli/calibrate.c,
 * cli/compare.c; docs/validation.md "PyTorch runtime"). */
int cli_calibrate(int argc, char **argv);
int cli_compare(int argc, char **argv);

#endif
