/*
 * common.c - what every subcommand shares: the one mapping from library
 * status to exit code, error reporting, the --set splitter and the width of
 * a schedule column. Kept apart
 * from main.c so that subcommands depend on this file and main.c on the
 * subcommands, never in a circle.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

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

int cli_report_file(const char *path, int rc, const bs_error *err)
{
    const char *msg = err->message[0] ? err->message : "out of memory";
    /* Schedule constraints and engine errors come back without the file
     * name; messages about the file itself already start with it. */
    if (rc == BS_ERR_IO || strncmp(msg, path, strlen(path)) == 0)
        fprintf(stderr, "bubblesim: %s\n", msg);
    else
        fprintf(stderr, "bubblesim: %s: %s\n", path, msg);
    return cli_exit_code(rc);
}

int cli_parse_override(char *kv, bs_override *ov)
{
    char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv)
        return -1;
    *eq = '\0';
    ov->path = kv;
    ov->value = eq + 1;
    return 0;
}

int cli_usage_error(const char *synopsis, const char *fmt, const char *arg)
{
    fprintf(stderr, "bubblesim: %.*s: ", (int)strcspn(synopsis, " "), synopsis);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (usage: bubblesim %s)\n", synopsis);
    return EXIT_BAD_INPUT;
}

int cli_schedule_width(void)
{
    size_t width = strlen("schedule");
    for (size_t i = 0; i < bs_schedule_count(); i++) {
        size_t len = strlen(bs_schedule_at(i)->name);
        if (len > width)
            width = len;
    }
    return (int)width;
}
