/*
 * merge.c - `bubblesim merge DIR... --out DIR [--plot]`: the shards of a
 * sweep run with --shard K/N (on several machines, or as a job array) joined
 * into the files the unsharded sweep writes (cli/sweep.c, docs/sweeps.md).
 */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_merge(int argc, char **argv)
{
    const char *out_dir = NULL;
    int plot = 0, code;
    char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    size_t n_dirs = 0;
    if (!dirs) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: merge: --out needs a DIR\n");
                free(dirs);
                return EXIT_BAD_INPUT;
            }
            out_dir = argv[++i];
        } else if (strcmp(a, "--plot") == 0) {
            plot = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr,
                    "bubblesim: merge: unknown option \"%s\" (see bubblesim merge --help)\n", a);
            free(dirs);
            return EXIT_BAD_INPUT;
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0 || !out_dir) {
        fprintf(stderr, "bubblesim: merge: expected DIR... --out DIR: the directories the "
                        "shards were written to, and where the merged files go\n");
        free(dirs);
        return EXIT_BAD_INPUT;
    }
    code = sweep_merge(dirs, n_dirs, out_dir, plot);
    free(dirs);
    return code;
}
