/*
 * quote.h - strings made safe to hand to another program as data: a
 * POSIX shell word and a file name gnuplot opens as a plain file.
 *
 * Both are pure functions of their input (no I/O), so the fuzz target
 * tests/fuzz/fuzz_quote.c can check them by round trip.
 */
#ifndef BS_CLI_QUOTE_H
#define BS_CLI_QUOTE_H

#include <stddef.h>

/* Writes s as one single-quoted POSIX shell word into buf: every byte
 * stands for itself inside '...', and a quote becomes '\''. Any byte string
 * (newlines, $, backticks, backslashes, non-UTF-8) reads back unchanged and
 * expands nothing. Returns the length written, or -1 when it does not fit
 * (buf then holds ""). */
long cli_shell_quote(char *buf, size_t size, const char *s);

/* Writes path into buf so that gnuplot opens it as a plain file: a relative
 * path gets a leading "./". gnuplot gives a file name starting with '<' (a
 * command to read), '|' (a command to write), '$' (a datablock), '-'
 * (standard input), '+' (a pseudo-file) or '~' (the home directory) a
 * meaning of its own; after "./" or "/" none of those apply. Returns the
 * length, or -1 when it does not fit or path is empty. */
long cli_gnuplot_path(char *buf, size_t size, const char *path);

#endif
