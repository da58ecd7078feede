/*
 * cli.h - pieces shared by the bubblesim command's subcommands.
 */
#ifndef BS_CLI_H
#define BS_CLI_H

#include "bubblesim.h"

enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* out of memory, internal error */
    EXIT_BAD_INPUT = 2,     /* bad config, bad usage, unwritable output */
    EXIT_DEADLOCK = 3
};

/* Maps a library status to the documented exit code. */
int cli_exit_code(int status);

/* Prints "bubblesim: message" on stderr and returns the exit code for rc. */
int cli_report(int rc, const bs_error *err);

int cli_demo(void);
int cli_run(int argc, char **argv);

#endif
