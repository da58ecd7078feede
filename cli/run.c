/*
 * run.c - `bubblesim run CONFIG [--set KEY=VALUE]... [--json]
 *          [--timeline FILE.png|FILE.svg [--messages]] [--trace FILE.json]`.
 */
#include "cli.h"
#include "outfile.h"
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_run(int argc, char **argv)
{
    const char *path = NULL, *format = "table";
    const char *timeline_path = NULL, *trace_path = NULL;
    int with_messages = 0;
    bs_override *overrides = calloc((size_t)argc + 1, sizeof *overrides);
    size_t n_overrides = 0;
    bs_config cfg;
    bs_context *ctx = NULL;
    bs_error err = {{0}};
    int rc = BS_OK, code = EXIT_OK;
    bs_config_init(&cfg);
    if (!overrides) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *kv = NULL;
        if (strcmp(a, "--json") == 0) {
            format = "json";
        } else if (strcmp(a, "--timeline") == 0 || strcmp(a, "--trace") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: run: %s needs a FILE\n", a);
                code = EXIT_BAD_INPUT;
                goto done;
            }
            *(strcmp(a, "--trace") == 0 ? &trace_path : &timeline_path) = argv[++i];
        } else if (strcmp(a, "--messages") == 0) {
            with_messages = 1;
        } else if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: run: --set needs KEY=VALUE\n");
                code = EXIT_BAD_INPUT;
                goto done;
            }
            kv = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            kv = argv[i] + 6;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bubblesim: run: unknown option \"%s\" (see bubblesim --help)\n", a);
            code = EXIT_BAD_INPUT;
            goto done;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bubblesim: run: one CONFIG expected, got \"%s\" and \"%s\"\n", path,
                    a);
            code = EXIT_BAD_INPUT;
            goto done;
        }
        if (kv && cli_parse_override(kv, &overrides[n_overrides++])) {
            fprintf(stderr, "bubblesim: run: --set %s: expected KEY=VALUE\n", kv);
            code = EXIT_BAD_INPUT;
            goto done;
        }
    }
    if (!path) {
        fprintf(stderr, "bubblesim: run: missing CONFIG (a JSON file; see bubblesim --help)\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (timeline_path && cli_image_format_of(timeline_path) == CLI_IMAGE_NONE) {
        fprintf(stderr, "bubblesim: run: --timeline %s: expected a .png or .svg file name\n",
                timeline_path);
        code = EXIT_BAD_INPUT;
        goto done;
    }
    /* Unwritable outputs fail before any simulation. */
    if ((timeline_path && (rc = cli_prepare_file_dir(timeline_path, &err))) ||
        (trace_path && (rc = cli_prepare_file_dir(trace_path, &err)))) {
        code = cli_report(rc, &err);
        goto done;
    }
    if (timeline_path || trace_path)
        cli_install_interrupt_cleanup();
    const bs_result *res;
    bs_run_options opts = {.record_messages = trace_path || with_messages};
    if ((rc = bs_config_load(&cfg, path, overrides, n_overrides, &err)) ||
        (rc = bs_context_create(&ctx)) || (rc = bs_context_run(ctx, &cfg, &opts, &res, &err))) {
        code = cli_report_file(path, rc, &err);
        goto done;
    }
    rc = bs_writer_find(format)->write(stdout, res, &cfg, &err);
    if (rc || fflush(stdout) != 0) {
        fprintf(stderr, "bubblesim: cannot write to standard output\n");
        code = EXIT_FAILURE_OTHER;
    }
    if (code == EXIT_OK && trace_path &&
        (rc = cli_write_result_file(trace_path, "trace", res, &cfg, &err)))
        code = cli_report(rc, &err);
    if (code == EXIT_OK && timeline_path &&
        (rc = cli_timeline_draw(timeline_path, res, with_messages, &err)))
        code = cli_report(rc, &err);
done:
    bs_context_free(&ctx);
    bs_config_free(&cfg);
    free(overrides);
    return code;
}
