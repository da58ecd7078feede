/*
 * main.c - the bubblesim command: dispatch to the subcommands of the table
 * in help.c, --help and --version.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_demo();
    if (is_help(argv[1])) {
        cli_print_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("bubblesim %s\n", BS_VERSION);
        return EXIT_OK;
    }
    const cli_command *cmd = cli_command_find(argv[1]);
    if (!cmd) {
        fprintf(stderr, "bubblesim: unknown command \"%s\"\n", argv[1]);
        cli_print_usage(stderr);
        return EXIT_BAD_INPUT;
    }
    /* `bubblesim CMD ... --help` anywhere among the options: the command's
     * help, and nothing run. */
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i]))
            return cli_command_help(cmd, stdout);
    return cmd->main(argc - 2, argv + 2);
}
