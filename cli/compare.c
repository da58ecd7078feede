/*
 * compare.c - `bubblesim compare CONFIG TRACE.json [--json] [--tolerance
 * PCT] [--noise NOISE.json [--samples N] [--seed S]] [--set KEY=VALUE]...`:
 * CONFIG's prediction beside a measured trace (tools/pytorch/run_schedule.py):
 * makespan with its error against the median step, per-rank busy and idle,
 * per-op errors, and the run's own noise; with --noise, also the prediction
 * sampled under the op-to-op variation measured in NOISE.json, which the
 * tolerance then judges (docs/validation.md, "PyTorch runtime").
 *
 * Exit codes: 0 within the tolerance (default 5 %), 4 outside, 2 bad input.
 */
#include "bubblesim_measure.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OUTSIDE_TOLERANCE = 4 };

/* Contract in cli.h: parse, load config and trace, compare, print; exit 4
 * outside the tolerance. */
int cli_compare(int argc, char **argv)
{
    const char *config_path = NULL, *trace_path = NULL, *noise_path = NULL;
    double tolerance = 5.0;
    bs_compare_options opt = {NULL, 0, 1};
    int samples_given = 0, seed_given = 0;
    bs_trace *noise = NULL;
    int json = 0, rc, code = EXIT_OK;
    bs_override *overrides = calloc((size_t)argc + 1, sizeof *overrides);
    size_t n_overrides = 0;
    bs_config cfg;
    bs_trace *tr = NULL;
    bs_comparison *cmp = NULL;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    if (!overrides) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--noise") == 0 || strcmp(a, "--samples") == 0 ||
                   strcmp(a, "--seed") == 0) {
            if (i + 1 >= argc) {
                code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "%s needs a value", a);
                goto done;
            }
            const char *v = argv[++i];
            char *end;
            if (a[2] == 'n') {
                noise_path = v;
            } else if (a[3] == 'a') {
                long k = strtol(v, &end, 10);
                if (end == v || *end != '\0' || k < 1 || k > BS_COMPARE_MAX_SAMPLES) {
                    code = cli_usage_error("compare",
                                           "--samples: expected an integer 1..100000, got %s", v);
                    goto done;
                }
                opt.samples = (int)k;
                samples_given = 1;
            } else {
                errno = 0;
                unsigned long long k = strtoull(v, &end, 10);
                if (end == v || *end != '\0' || v[0] == '-' || errno == ERANGE) {
                    code = cli_usage_error("compare",
                                           "--seed: expected an integer 0..2^64-1, got %s", v);
                    goto done;
                }
                opt.seed = (uint64_t)k;
                seed_given = 1;
            }
        } else if (strcmp(a, "--tolerance") == 0 || strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "%s needs a value", a);
                goto done;
            }
            if (a[2] == 't') {
                char *end;
                tolerance = strtod(argv[++i], &end);
                if (end == argv[i] || *end != '\0' || !isfinite(tolerance) || tolerance <= 0 ||
                    tolerance > 1000) {
                    code = cli_usage_error(
                        "compare", "--tolerance: expected a percentage in (0, 1000], got %s",
                        argv[i]);
                    goto done;
                }
            } else if (cli_parse_override(argv[++i], &overrides[n_overrides]) == 0) {
                n_overrides++;
            } else {
                code =
                    cli_usage_error(CLI_SYNOPSIS_COMPARE, "--set %s: expected KEY=VALUE", argv[i]);
                goto done;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "unknown option %s", a);
            goto done;
        } else if (!config_path) {
            config_path = a;
        } else if (!trace_path) {
            trace_path = a;
        } else {
            code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "unexpected argument %s", a);
            goto done;
        }
    }
    if (!config_path || !trace_path) {
        code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "%s", "missing CONFIG or TRACE.json");
        goto done;
    }
    if (!noise_path && (samples_given || seed_given)) {
        code = cli_usage_error(CLI_SYNOPSIS_COMPARE, "%s",
                               "--samples and --seed need --noise NOISE.json");
        goto done;
    }
    if ((rc = bs_config_load(&cfg, config_path, overrides, n_overrides, &err)) < 0) {
        code = cli_report_file(config_path, rc, &err);
        goto done;
    }
    if ((rc = bs_trace_load(&tr, trace_path, &err)) < 0) {
        code = cli_report_file(trace_path, rc, &err);
        goto done;
    }
    if (noise_path) {
        if ((rc = bs_trace_load(&noise, noise_path, &err)) < 0) {
            code = cli_report_file(noise_path, rc, &err);
            goto done;
        }
        opt.noise = noise;
    }
    if ((rc = bs_compare_with(&cmp, &cfg, tr, &opt, &err)) < 0) {
        if (noise_path)
            fprintf(stderr, "bubblesim: %s against %s with noise %s: %s\n", config_path, trace_path,
                    noise_path, err.message);
        else
            fprintf(stderr, "bubblesim: %s against %s: %s\n", config_path, trace_path, err.message);
        code = cli_exit_code(rc);
        goto done;
    }
    rc = json ? bs_comparison_write_json(stdout, cmp, tolerance, &err)
              : bs_comparison_write_table(stdout, cmp, tolerance, &err);
    if (rc < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "bubblesim: compare: cannot write the result to standard output\n");
        code = EXIT_BAD_INPUT;
        goto done;
    }
    if (fabs(bs_comparison_judged_error(cmp)) * 100.0 > tolerance)
        code = EXIT_OUTSIDE_TOLERANCE;
done:
    bs_comparison_free(&cmp);
    bs_trace_free(&tr);
    bs_trace_free(&noise);
    bs_config_free(&cfg);
    free(overrides);
    return code;
}
