/*
 * export.c - `bubblesim export CONFIG [--format pytorch|pytorch-comms]
 *             [-o FILE] [--set KEY=VALUE]...`: the op order of CONFIG's
 * schedule in PyTorch pipelining's text format (one row per rank), so that
 * it can be run by PyTorch's _PipelineScheduleRuntime or read back as a
 * custom schedule. `pytorch` (the default) is the compute-only format;
 * `pytorch-comms` adds the send, receive and wait actions, the format
 * PyTorch 2.15's _load_csv(..., format="compute_comms") reads.
 *
 * The text holds one iteration; a custom schedule that reads it back repeats
 * it per iteration, with a flush unless its "updates" key says otherwise (a
 * note on standard error names the keys the read-back needs). Asynchronous
 * PipeDream runs all iterations as one stream, so it exports only with
 * iterations = 1. The file is written whole or not at all.
 */
#include "cli.h"
#include "outfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_export(int argc, char **argv)
{
    const char *path = NULL, *format = NULL, *out_path = NULL;
    bs_override *overrides = calloc((size_t)argc + 1, sizeof *overrides);
    size_t n_overrides = 0;
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    cli_outfile out = {0};
    int rc = BS_OK, code = EXIT_OK, out_open = 0;
    bs_config_init(&cfg);
    bs_program_init(&prog);
    if (!overrides) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *kv = NULL;
        if (strcmp(a, "--format") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                code = cli_usage_error(CLI_SYNOPSIS_EXPORT, "%s needs a value", a);
                goto done;
            }
            const char *value = argv[++i];
            if (a[1] == 'o')
                out_path = value;
            else if (a[2] == 'f')
                format = value;
            else
                kv = argv[i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            kv = argv[i] + 6;
        } else if (strncmp(a, "--format=", 9) == 0) {
            format = a + 9;
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage_error(CLI_SYNOPSIS_EXPORT, "unknown option \"%s\"", a);
            goto done;
        } else if (!path) {
            path = a;
        } else {
            code =
                cli_usage_error(CLI_SYNOPSIS_EXPORT, "one CONFIG expected, got another: \"%s\"", a);
            goto done;
        }
        if (kv && cli_parse_override(kv, &overrides[n_overrides++])) {
            code = cli_usage_error(CLI_SYNOPSIS_EXPORT, "--set %s: expected KEY=VALUE", kv);
            goto done;
        }
    }
    if (!path) {
        code = cli_usage_error(CLI_SYNOPSIS_EXPORT, "%s", "missing CONFIG");
        goto done;
    }
    int with_comms = format && strcmp(format, "pytorch-comms") == 0;
    if (format && strcmp(format, "pytorch") != 0 && !with_comms) {
        code = cli_usage_error(CLI_SYNOPSIS_EXPORT,
                               "--format: expected pytorch or pytorch-comms, got \"%s\"", format);
        goto done;
    }
    if ((rc = bs_config_load(&cfg, path, overrides, n_overrides, &err)) ||
        (rc = bs_config_check(&cfg, path, &err)) || (rc = bs_program_build(&prog, &cfg, &err))) {
        code = cli_report_file(path, rc, &err);
        goto done;
    }
    if (cfg.iterations > 1 && (prog.flags & BS_PROGRAM_UPDATE_PER_BACKWARD)) {
        fprintf(stderr,
                "bubblesim: %s: iterations: %s runs all iterations as one stream of "
                "micro-batches, which the text format (one iteration, repeated) cannot hold; "
                "export with iterations = 1 and microbatches = %lld\n",
                path, cfg.schedule, (long long)cfg.microbatches * cfg.iterations);
        code = EXIT_BAD_INPUT;
        goto done;
    }
    FILE *to = stdout;
    if (out_path) {
        if ((rc = cli_prepare_file_dir(out_path, &err)) ||
            (rc = cli_outfile_open(&out, out_path, &err))) {
            code = cli_report(rc, &err);
            goto done;
        }
        out_open = 1;
        to = out.file;
    }
    if ((rc = (with_comms ? bs_order_write_comms
                          : bs_order_write)(to, &prog, (uint32_t)cfg.microbatches, &err))) {
        code = cli_report(rc, &err);
        goto done;
    }
    /* What a custom config needs besides the text to run it the same way. */
    int looped = 1, v_shape = prog.stages == 2 * prog.devices;
    for (int st = 0; st < prog.stages; st++) {
        looped &= prog.stage_device[st] == st % prog.devices;
        v_shape &= prog.stage_device[st] == (st < prog.devices ? st : 2 * prog.devices - 1 - st);
    }
    v_shape &= !looped;
    const char *updates = (prog.flags & BS_PROGRAM_NO_FLUSH)              ? "no-flush"
                          : (prog.flags & BS_PROGRAM_UPDATE_PER_BACKWARD) ? "per-backward"
                                                                          : NULL;
    if (v_shape || updates)
        fprintf(stderr, "bubblesim: note: to read this back, give the custom config%s%s%s%s%s\n",
                v_shape ? " \"placement\": \"v\"" : "", v_shape && updates ? " and" : "",
                updates ? " \"updates\": \"" : "", updates ? updates : "", updates ? "\"" : "");
    if (out_open) {
        out_open = 0;
        if ((rc = cli_outfile_commit(&out, &err)))
            code = cli_report(rc, &err);
    } else if (fflush(stdout) != 0) {
        fprintf(stderr, "bubblesim: cannot write to standard output\n");
        code = EXIT_FAILURE_OTHER;
    }
done:
    if (out_open)
        cli_outfile_abort(&out);
    bs_program_free(&prog);
    bs_config_free(&cfg);
    free(overrides);
    return code;
}
