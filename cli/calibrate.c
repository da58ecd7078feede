/*
 * calibrate.c - `bubblesim calibrate TRACE.json -o CONFIG`: costs, message
 * latency and per-op overhead measured in a trace of a real run
 * (tools/pytorch/run_schedule.py), written as a config that `bubblesim
 * run` and `bubblesim compare` accept: schedule custom with the executed
 * order inline and the placement (docs/validation.md, "PyTorch runtime").
 * A summary of what was derived goes to standard output. The config is
 * written whole or not at all.
 */
#include "bubblesim_measure.h"
#include "cli.h"
#include "outfile.h"

#include <stdio.h>
#include <string.h>

/* What calibrate derived, for the person who ran it (standard output). */
static void print_summary(const bs_calibration *cal, const char *trace_path, const char *out_path)
{
    static const char *const bwd_name[] = {"B", "I"};
    printf("calibrated %s -> %s: %d ranks, %d chunks (V=%d), M=%d, %d steps\n", trace_path,
           out_path, cal->ranks, cal->stages, cal->virtual_stages, cal->microbatches,
           cal->trace->steps);
    printf("per-op overhead %.4f ms (from %zu gaps, folded into each op's cost)\n", cal->overhead,
           cal->gap_samples);
    printf("message latency %.4f ms (fitted to %zu receives from another rank)\n", cal->latency,
           cal->latency_samples);
    printf("%-6s %-5s %12s %12s %12s   (ms: op alone / cost with overhead)\n", "chunk", "rank", "F",
           "B or I", "W");
    for (int s = 0; s < cal->stages; s++)
        printf("%-6d %-5u %5.3f/%-6.3f %5.3f/%-6.3f %5.3f/%-6.3f %s\n", s,
               (unsigned)cal->placement[s], cal->forward_op[s], cal->forward[s],
               cal->backward_op[s], cal->backward[s], cal->weight_op[s], cal->weight[s],
               bwd_name[cal->weight_op[s] > 0 || cal->weight[s] > 0]);
}

/* Contract in cli.h: parse, load, calibrate, write, summarise. */
int cli_calibrate(int argc, char **argv)
{
    const char *trace_path = NULL, *out_path = NULL;
    bs_trace *tr = NULL;
    bs_calibration *cal = NULL;
    bs_error err = {{0}};
    cli_outfile out = {0};
    int rc, code = EXIT_OK;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(CLI_SYNOPSIS_CALIBRATE, "%s needs a file name", argv[i]);
            out_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(CLI_SYNOPSIS_CALIBRATE, "unknown option %s", argv[i]);
        } else if (!trace_path) {
            trace_path = argv[i];
        } else {
            return cli_usage_error(CLI_SYNOPSIS_CALIBRATE, "unexpected argument %s", argv[i]);
        }
    }
    if (!trace_path)
        return cli_usage_error(CLI_SYNOPSIS_CALIBRATE, "%s", "missing TRACE.json");
    if (!out_path)
        return cli_usage_error(CLI_SYNOPSIS_CALIBRATE, "%s", "missing -o CONFIG");
    if ((rc = bs_trace_load(&tr, trace_path, &err)) < 0 ||
        (rc = bs_calibrate(&cal, tr, &err)) < 0) {
        code = cli_report_file(trace_path, rc, &err);
        goto done;
    }
    cli_install_interrupt_cleanup();
    if ((rc = cli_outfile_open(&out, out_path, &err)) < 0) {
        code = cli_report(rc, &err);
        goto done;
    }
    if ((rc = bs_calibration_write_config(out.file, cal, &err)) < 0) {
        cli_outfile_abort(&out);
        code = cli_report_file(out_path, rc, &err);
        goto done;
    }
    if ((rc = cli_outfile_commit(&out, &err)) < 0) {
        code = cli_report(rc, &err);
        goto done;
    }
    print_summary(cal, trace_path, out_path);
done:
    bs_calibration_free(&cal);
    bs_trace_free(&tr);
    return code;
}
