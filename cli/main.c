/*
 * main.c - the bubblesim command: dispatch to subcommands, help, version,
 * and the one mapping from library status to exit code.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: bubblesim                      the seed's example: every schedule at P=4, M=8\n"
    "       bubblesim run CONFIG [--set KEY=VALUE]... [--json]\n"
    "       bubblesim --help | --version\n"
    "\n"
    "run       simulate the pipeline described by the JSON file CONFIG and print a table\n"
    "          (or, with --json, the result object). --set overrides a key by dotted\n"
    "          path, e.g. --set costs.forward=1.5 --set schedule=gpipe --set stages=8.\n"
    "\n"
    "schedules:";

int cli_exit_code(int status)
{
    switch (status) {
    case BS_OK:
        return EXIT_OK;
    case BS_ERR_INVALID:
    case BS_ERR_LIMIT:
    case BS_ERR_IO:
        return EXIT_BAD_INPUT;
    case BS_ERR_DEADLOCK:
        return EXIT_DEADLOCK;
    default:
        return EXIT_FAILURE_OTHER;
    }
}

int cli_report(int rc, const bs_error *err)
{
    fprintf(stderr, "bubblesim: %s\n", err->message);
    return cli_exit_code(rc);
}

static void print_usage(FILE *out)
{
    fputs(usage, out);
    for (size_t i = 0; i < bs_schedule_count(); i++)
        fprintf(out, "%s %s", i ? "," : "", bs_schedule_at(i)->name);
    fputs("\nexit codes: 0 ok, 2 bad input or usage, 3 deadlock.\n"
          "docs: docs/config.md (keys), docs/metrics.md (definitions)\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_demo();
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("bubblesim %s\n", BS_VERSION);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "run") == 0)
        return cli_run(argc - 2, argv + 2);
    fprintf(stderr, "bubblesim: unknown command \"%s\"\n", argv[1]);
    print_usage(stderr);
    return EXIT_BAD_INPUT;
}
