/*
 * verify.c - `bubblesim verify CONFIG`: run the simulated schedule on a GPU
 * (gpu/) and set the prediction beside the measurement.
 *
 *   bubblesim verify CONFIG [--json] [--tolerance PCT] [--reps N] [--warmup N]
 *                    [--streams] [--set KEY=VALUE]... [--measured FILE]
 *                    [--predicted FILE] [--timeline FILE.png|FILE.svg] [--dry-run]
 *
 * --measured and --predicted write the result in `run --json` form, or as a
 * Chrome/Perfetto trace when FILE ends in ".trace.json" (the two traces
 * open side by side: predicted and measured rows per device). --timeline
 * draws both timelines in one gnuplot chart, a predicted row above a
 * measured row for each device. --dry-run takes no GPU: the "measured" side
 * is the GPU plan run under ideal stream semantics (mode "dry-run", said in
 * every output), which checks the plan against the engine and the whole
 * comparison and output path on any machine; it is never a measurement.
 *   bubblesim verify --probe [--json]
 *
 * This file parses arguments, calls gpu/ and prints. The config is the
 * simulator's plus an optional "gpu" section, read by gpu/settings.c
 * (bs_gpu_config_load: the section is detached, the rest goes to
 * bs_config_parse, so every other key is checked exactly as `run` checks
 * it). `--set gpu.KEY=V` overrides a gpu key (bs_gpu_settings_set); other
 * --set keys go to the core parser.
 *
 * Prediction: the engine runs the same program with the config's costs
 * (gpu/predict.c); with gpu.copy_cost "measured" (the default) the message
 * time is the copy time measured on this GPU, because a device-to-device
 * copy on one GPU is not the network the config describes. The measured
 * timeline goes through bs_metrics_compute, the same code as the
 * prediction; gpu/compare.c sets the two side by side and
 * gpu/verify_report.c writes the table or the JSON.
 *
 * The mlp workload (gpu.workload "mlp", shape under gpu.mlp; gpu/mlp.h):
 * its sizes replace memory.activation_bytes, network.message_bytes and, for
 * split backwards, memory.kept_fraction; on a GPU each op kind is first
 * timed alone per chunk and those costs replace costs.* in the prediction.
 * The weight gradients (or, for PipeDream, the weight versions) are checked
 * and must be right for a pass. A dry run checks them on the CPU, for
 * shapes small enough.
 *
 * Exit codes: 0 within tolerance and exact counts and orders (and mlp
 * numerics right); 2 bad input or usage; 3 no usable GPU; 4 a measurement
 * outside tolerance, a count or order that differs, or wrong mlp numerics.
 */
#include "cli.h"

#include "executor.h"
#include "gnuplot.h"
#include "outfile.h"
#include "predict.h"
#include "verify_plot.h"
#include "verify_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_NO_GPU = 3, EXIT_OUTSIDE_TOLERANCE = 4 };

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bubblesim: verify: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return EXIT_BAD_INPUT;
}

/* Writes res to path through a temporary file in the same directory: as a
 * Chrome/Perfetto trace when the name ends in ".trace.json", else as the
 * result JSON of `run --json`. */
static int write_result(const char *path, const bs_result *res, const bs_config *cfg)
{
    size_t len = strlen(path);
    int trace = len >= 11 && strcmp(path + len - 11, ".trace.json") == 0;
    bs_error err = {{0}};
    int rc = cli_prepare_file_dir(path, &err);
    if (!rc)
        rc = cli_write_result_file(path, trace ? "trace" : "json", res, cfg, &err);
    return rc ? cli_report(rc, &err) : EXIT_OK;
}

/* The exit code of a report written to standard output. */
static int printed(int rc)
{
    if (rc == BS_OK)
        return EXIT_OK;
    fprintf(stderr, "bubblesim: cannot write to standard output\n");
    return EXIT_FAILURE_OTHER;
}

static int probe(int device, int json)
{
    bs_gpu_info info;
    bs_error err = {{0}};
    int rc = bs_gpu_probe(&info, device, &err);
    if (rc == BS_GPU_UNAVAILABLE) {
        fprintf(stderr, "bubblesim: verify: no usable GPU: %s\n", err.message);
        return EXIT_NO_GPU;
    }
    if (rc)
        return cli_report(rc, &err);
    return printed(json ? bs_gpu_info_write_json(stdout, &info, &err)
                        : bs_gpu_info_write_table(stdout, &info, &err));
}

int cli_verify(int argc, char **argv)
{
    const char *path = NULL, *measured_path = NULL, *predicted_path = NULL, *chart_path = NULL;
    int json = 0, want_probe = 0, dry_run = 0, code = EXIT_OK, rc;
    bs_gpu_settings s;
    bs_override *ov = calloc((size_t)argc + 1, sizeof *ov);
    bs_override *gpu_sets = calloc((size_t)argc + 1, sizeof *gpu_sets);
    size_t n_ov = 0, n_gpu = 0;
    double tolerance_arg = -1;
    int reps_arg = -1, warmup_arg = -1, streams_arg = 0;
    bs_config cfg, pcfg;
    bs_program prog;
    bs_gpu_plan plan;
    bs_timeline mtl;
    bs_gpu_report rep;
    bs_result meas;
    bs_context *ctx = NULL;
    bs_error err = {{0}};
    bs_gpu_comparison cmp;
    bs_config_init(&cfg);
    bs_config_init(&pcfg);
    bs_program_init(&prog);
    bs_gpu_plan_init(&plan);
    bs_timeline_init(&mtl);
    bs_gpu_report_init(&rep);
    memset(&meas, 0, sizeof meas);
    bs_gpu_settings_init(&s);
    bs_gpu_comparison_init(&cmp);
    if (!ov || !gpu_sets) {
        fprintf(stderr, "bubblesim: out of memory\n");
        code = EXIT_FAILURE_OTHER;
        goto done;
    }

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char *kv = NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--probe") == 0) {
            want_probe = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(a, "--streams") == 0) {
            streams_arg = 1;
        } else if (strcmp(a, "--tolerance") == 0 || strcmp(a, "--reps") == 0 ||
                   strcmp(a, "--warmup") == 0 || strcmp(a, "--measured") == 0 ||
                   strcmp(a, "--predicted") == 0 || strcmp(a, "--timeline") == 0 ||
                   strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) {
                code = bad("%s needs a value%s", a, "");
                goto done;
            }
            const char *v = argv[++i];
            char *end = NULL;
            errno = 0;
            if (strcmp(a, "--tolerance") == 0) {
                tolerance_arg = strtod(v, &end);
                if (errno || end == v || *end || !(tolerance_arg > 0) || tolerance_arg > 1000) {
                    code = bad("--tolerance %s: expected a percentage in (0, 1000]%s", v, "");
                    goto done;
                }
            } else if (strcmp(a, "--reps") == 0 || strcmp(a, "--warmup") == 0) {
                long n = strtol(v, &end, 10);
                int min = strcmp(a, "--reps") == 0;
                if (errno || end == v || *end || n < min || n > 100000) {
                    code = bad("%s %s: expected a whole number (at least 1 for --reps)", a, v);
                    goto done;
                }
                *(min ? &reps_arg : &warmup_arg) = (int)n;
            } else if (strcmp(a, "--measured") == 0) {
                measured_path = v;
            } else if (strcmp(a, "--predicted") == 0) {
                predicted_path = v;
            } else if (strcmp(a, "--timeline") == 0) {
                chart_path = v;
            } else {
                kv = argv[i];
            }
        } else if (strncmp(a, "--set=", 6) == 0) {
            kv = argv[i] + 6;
        } else if (a[0] == '-' && a[1] != '\0') {
            code = bad("unknown option \"%s\" (see bubblesim --help)%s", a, "");
            goto done;
        } else if (!path) {
            path = a;
        } else {
            code = bad("one CONFIG expected, got \"%s\" and \"%s\"", path, a);
            goto done;
        }
        bs_override set;
        if (kv && cli_parse_override(kv, &set)) {
            code = bad("--set %s: expected KEY=VALUE%s", kv, "");
            goto done;
        }
        if (kv && strncmp(set.path, "gpu.", 4) == 0) {
            set.path += 4;
            gpu_sets[n_gpu++] = set;
        } else if (kv) {
            ov[n_ov++] = set;
        }
    }
    if (want_probe) {
        code = probe(s.gpu.device, json);
        goto done;
    }
    if (!path) {
        code = bad("missing CONFIG (a JSON file; see bubblesim --help)%s%s", "", "");
        goto done;
    }
    if ((rc = bs_gpu_config_load(&cfg, &s, path, ov, n_ov, &err))) {
        code = cli_report(rc, &err);
        goto done;
    }
    for (size_t k = 0; k < n_gpu; k++)
        if ((rc = bs_gpu_settings_set(&s, gpu_sets[k].path, gpu_sets[k].value, &err))) {
            code = cli_report(rc, &err);
            goto done;
        }
    if (tolerance_arg > 0)
        s.tolerance = tolerance_arg;
    if (reps_arg > 0)
        s.gpu.reps = reps_arg;
    if (warmup_arg >= 0)
        s.gpu.warmup = warmup_arg;
    if (streams_arg)
        s.gpu.force_streams = 1;
    if ((rc = bs_gpu_settings_finish(&s, path, &err))) {
        code = cli_report(rc, &err);
        goto done;
    }
    int mlp = s.gpu.workload == BS_GPU_WORKLOAD_MLP;

    /* Everything that can be checked without a GPU is checked first, so a
     * bad config says so on any machine. The mlp's sizes replace the
     * config's activation and message bytes (and kept fraction where the
     * backward is split) before the plan is made. */
    if ((rc = bs_program_build(&prog, &cfg, &err)) ||
        (mlp && (rc = bs_mlp_apply_sizes(&cfg, &s.gpu.mlp, &prog, &err))) ||
        (rc = bs_gpu_plan_build(&plan, &prog, &cfg, &err)) ||
        (rc = bs_gpu_plan_check(&plan, &prog, &err))) {
        fprintf(stderr, "bubblesim: %s: %s\n", path, err.message);
        code = cli_exit_code(rc);
        goto done;
    }
    rc = dry_run ? bs_gpu_dry_run(&mtl, &rep, &plan, &prog, &cfg, &err)
                 : bs_gpu_execute(&mtl, &rep, &plan, &prog, &s.gpu, &err);
    if (!rc && dry_run && mlp)
        rc = bs_gpu_dry_run_mlp(&rep, &plan, &prog, &s.gpu.mlp, &err);
    if (rc == BS_GPU_UNAVAILABLE) {
        fprintf(stderr, "bubblesim: verify: no usable GPU: %s\n", err.message);
        code = EXIT_NO_GPU;
        goto done;
    }
    if (rc) {
        code = cli_report(rc, &err);
        goto done;
    }

    const bs_result *pred = NULL;
    if ((rc = bs_gpu_prediction_config(&pcfg, &cfg, &prog, &rep, &s, dry_run, &err)))
        goto failed;
    bs_run_options run_opts = {.record_messages = 1};
    if ((rc = bs_context_create(&ctx)) ||
        (rc = bs_context_run(ctx, &pcfg, &run_opts, &pred, &err)) ||
        (rc = bs_metrics_compute(&meas, &mtl, &pcfg, &err)))
        goto failed;
    /* Costs may shape some generators' orders: the prediction must be of
     * the program that ran. */
    if (pred->timeline->program->op_count != prog.op_count ||
        memcmp(pred->timeline->program->ops, prog.ops, prog.op_count * sizeof *prog.ops)) {
        rc = cli_fail(&err, BS_ERR_INVALID,
                      "%s: with the measured costs the schedule generator orders the ops "
                      "differently from the program that ran; use gpu.copy_cost \"config\" or "
                      "the calibrated workload for this schedule",
                      path);
        goto failed;
    }
    if ((rc = bs_gpu_compare(&cmp, pred, &meas, &mtl, &rep, &prog, s.gpu.workload, s.tolerance,
                             &err)))
        goto failed;
    if ((predicted_path && (code = write_result(predicted_path, pred, &pcfg))) ||
        (measured_path && (code = write_result(measured_path, &meas, &pcfg))) ||
        (chart_path &&
         (code = cli_verify_chart(chart_path, pred, &meas, cmp.makespan_error_pct, dry_run))))
        goto done;
    bs_gpu_verify_view view = {&cfg, &s, &rep, pred, &meas, &cmp, &prog};
    code = printed(json ? bs_gpu_verify_write_json(stdout, &view, &err)
                        : bs_gpu_verify_write_table(stdout, &view, &err));
    if (!code && !cmp.within)
        code = EXIT_OUTSIDE_TOLERANCE;
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        snprintf(err.message, sizeof err.message, "out of memory");
    code = cli_report(rc, &err);
done:
    free(gpu_sets);
    free(ov);
    bs_gpu_comparison_free(&cmp);
    bs_result_free(&meas);
    bs_context_free(&ctx);
    bs_gpu_report_free(&rep);
    bs_timeline_free(&mtl);
    bs_gpu_plan_free(&plan);
    bs_program_free(&prog);
    bs_config_free(&pcfg);
    bs_config_free(&cfg);
    return code;
}

int cli_verify_check_gpu(const struct cJSON *gpu, const char *path)
{
    bs_error err = {{0}};
    int rc = bs_gpu_settings_check(gpu, path, &err);
    return rc ? cli_report_file(path, rc, &err) : EXIT_OK;
}
