/*
 * tune.c - `bubblesim tune CONFIG [--set KEY=VALUE]... [--top N] [--out DIR]
 *          [--jobs N] [--no-prune]`:
 * which schedule, P, T, V and micro-batch size fit a model's memory and run
 * fastest (docs/tune.md).
 *
 * The search itself is the library's planner (sim/tune.h, bs_tune_run);
 * this file parses the options, prints the ranking and the Pareto front,
 * and writes DIR/tune.csv and the chart.
 */
#include "cli.h"
#include "gnuplot.h"
#include "outfile.h"
#include "tune.h"
#include "tune_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TUNE_MAX_OVERRIDES 64
#define GIB (1024.0 * 1024.0 * 1024.0)

/* ------------------------------------------------------------- outputs */

static void print_row(FILE *out, const bs_tune_info *info, const bs_tune_candidate *c, int rank)
{
    if (info->decode) { /* serving figures: time per output token and tokens/s */
        fprintf(out, "%4d  %-*s %4d %3d %3d %4d %6d %16.3f %7.2f%% %10.2f %12.1f\n", rank,
                cli_schedule_width(), c->schedule, c->stages, c->tensor_parallel, c->virtual_stages,
                c->microbatch_size, c->microbatches, c->time_per_output_token, 100 * c->bubble,
                c->memory / GIB, c->tokens_per_second);
        return;
    }
    static const char *const recompute[] = {"none", "sel", "full"};
    fprintf(out, "%4d  %-*s %4d %3d %3d %4d %6d %4d %4d %4s %16.3f %7.2f%% %10.2f %12.0f %6.2f%%\n",
            rank, cli_schedule_width(), c->schedule, c->stages, c->tensor_parallel,
            c->virtual_stages, c->microbatch_size, c->microbatches, c->data_parallel, c->zero_stage,
            recompute[c->recompute % 3], c->time, 100 * c->bubble, c->memory / GIB,
            c->time > 0 ? info->tokens_per_iteration / (c->time / 1000) : 0, 100 * c->mfu);
}

/* The headings after the schedule column, which print_head pads to
 * cli_schedule_width. */
static const char table_head[] = "    P   T   V    b      M    D ZeRO  rec   "
                                 "time/iter (ms)   bubble  mem (GiB)     tokens/s     MFU\n";
/* A forward-only search tunes a prefill: its tokens/s are the prompt's. */
static const char prefill_head[] = "    P   T   V    b      M    D ZeRO  rec   "
                                   "time/iter (ms)   bubble  mem (GiB) prefill tok/s   MFU\n";
static const char decode_head[] = "    P   T   V    b      M  time/token (ms)  "
                                  " bubble  mem (GiB)     tokens/s\n";

static void print_head(FILE *out, const bs_tune_info *info, const bs_tune *tune)
{
    const bs_tune_candidate *c =
        bs_tune_candidate_count(tune) ? bs_tune_candidate_at(tune, 0) : NULL;
    const char *rest = table_head;
    if (info->decode)
        rest = decode_head;
    else if (c && strcmp(c->schedule, "forward") == 0)
        rest = prefill_head;
    fprintf(out, "rank  %-*s%s", cli_schedule_width(), "schedule", rest);
}

static void csv_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static int write_csv(const bs_tune *tune, cli_outset *set, const char *dir, bs_error *err)
{
    char path[4200];
    cli_outfile f;
    int rc;
    snprintf(path, sizeof path, "%s/tune.csv", dir);
    if ((rc = cli_outset_add(set, path, &f.file, err)) < 0)
        return rc;
    fputs("schedule,stages,tensor_parallel,virtual_stages,microbatch_size,microbatches,status,"
          "time_per_iteration_ms,bubble_ratio,peak_memory_bytes,peak_device,activation_bytes,"
          "weight_bytes,gradient_bytes,optimizer_bytes,stashed_weight_bytes,kv_cache_bytes,"
          "time_lower_bound_ms,memory_lower_bound_bytes,data_parallel,zero_stage,recompute,"
          "buffer_bytes,tokens_per_second,mfu,note\n",
          f.file);
    for (size_t i = 0; i < bs_tune_candidate_count(tune); i++) {
        const bs_tune_candidate *c = bs_tune_candidate_at(tune, i);
        int sim = c->status == BS_TUNE_FITS || c->status == BS_TUNE_OVER_MEMORY;
        fprintf(f.file, "%s,%d,%d,%d,%d,%d,%s,", c->schedule, c->stages, c->tensor_parallel,
                c->virtual_stages, c->microbatch_size, c->microbatches,
                bs_tune_status_name(c->status));
        if (sim)
            fprintf(f.file, "%.6f,%.6f,%.0f,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,", c->time, c->bubble,
                    c->memory, c->peak_device, c->parts.activations, c->parts.weights,
                    c->parts.gradients, c->parts.optimizer, c->parts.stashed_weights,
                    c->parts.kv_cache);
        else
            fputs(",,,,,,,,,,", f.file);
        if (c->status != BS_TUNE_REFUSED)
            fprintf(f.file, "%.6f,%.0f,", c->time_bound, c->memory_bound);
        else
            fputs(",,", f.file);
        /* The data-parallel dimensions (issue 13), before the note so the
         * earlier columns keep their places. */
        static const char *const recompute[] = {"none", "selective", "full"};
        fprintf(f.file, "%d,%d,%s,", c->data_parallel, c->zero_stage, recompute[c->recompute % 3]);
        if (sim)
            fprintf(f.file, "%.0f,%.3f,%.6f,", c->parts.buffers, c->tokens_per_second, c->mfu);
        else
            fputs(",,,", f.file);
        csv_text(f.file, c->note);
        fputc('\n', f.file);
    }
    return BS_OK;
}

/* tune.png (cli/tune_plot.c): every simulated point, the Pareto front
 * labelled, the memory limit dashed. */
static int write_chart(const bs_tune *tune, const char *source, cli_outset *set, const char *dir,
                       bs_error *err)
{
    size_t n = 0, n_cand = bs_tune_candidate_count(tune), n_front = bs_tune_front_count(tune);
    int rc;
    cli_tune_point *pts = calloc(n_cand + n_front + 1, sizeof *pts);
    char(*labels)[160] = calloc(n_cand + n_front + 1, sizeof *labels);
    if (!pts || !labels) {
        free(pts);
        free(labels);
        return cli_fail(err, BS_ERR_NOMEM, "out of memory drawing the chart");
    }
    for (size_t i = 0; i < n_cand + n_front; i++) {
        const bs_tune_candidate *c =
            i < n_cand ? bs_tune_candidate_at(tune, i) : bs_tune_front(tune, i - n_cand);
        if (i < n_cand && c->status != BS_TUNE_FITS && c->status != BS_TUNE_OVER_MEMORY)
            continue;
        bs_tune_describe(c, labels[n], sizeof labels[n]);
        pts[n] = (cli_tune_point){c->memory, c->time,
                                  i >= n_cand                 ? CLI_TUNE_FRONT
                                  : c->status == BS_TUNE_FITS ? CLI_TUNE_FITS
                                                              : CLI_TUNE_OVER,
                                  labels[n]};
        n++;
    }
    rc = cli_tune_chart_stage(set, dir, source, bs_tune_get_info(tune)->memory_limit, pts, n, err);
    free(pts);
    free(labels);
    return rc;
}

/* ------------------------------------------------------------- report */

/* The progress line on a terminal: candidates done, simulated, fitting. */
static void show_progress(void *user, size_t done, size_t total, size_t simulated, size_t fit,
                          double best_ms)
{
    (void)user;
    fprintf(stderr, "\rtune: %zu/%zu candidates, %zu simulated, %zu fit", done, total, simulated,
            fit);
    if (fit)
        fprintf(stderr, ", best %.3f ms", best_ms);
    fputs("   ", stderr);
}

static int report(const bs_tune *tune, const char *source, const bs_override *user_overrides,
                  size_t n_user_overrides, int top, const char *out_dir, bs_error *err)
{
    const bs_tune_info *info = bs_tune_get_info(tune);
    const size_t *counts = info->count;
    size_t n_best = bs_tune_best_count(tune), n_front = bs_tune_front_count(tune);
    int rc;
    printf("tune %s: %d devices, global batch %d, memory limit %.2f GiB per device\n", source,
           info->devices, info->global_batch, info->memory_limit / GIB);
    printf("candidates %zu: %zu refused by a schedule or limit, %zu over memory by the bound, "
           "%zu pruned by the bounds, %zu simulated (%zu fit, %zu over memory%s)\n",
           info->candidates, counts[BS_TUNE_REFUSED], counts[BS_TUNE_MEMORY_BOUND],
           counts[BS_TUNE_PRUNED],
           counts[BS_TUNE_FITS] + counts[BS_TUNE_OVER_MEMORY] + counts[BS_TUNE_FAILED],
           counts[BS_TUNE_FITS], counts[BS_TUNE_OVER_MEMORY],
           counts[BS_TUNE_FAILED] ? ", some failed: see the CSV" : "");
    static const char *const objective_text[] = {"time per iteration",
                                                 "time per output token (latency)",
                                                 "milliseconds per generated token (throughput)"};
    printf("\nbest %zu by %s:\n", n_best < (size_t)top ? n_best : (size_t)top,
           objective_text[info->objective >= 0 && info->objective <= 2 ? info->objective : 0]);
    print_head(stdout, info, tune);
    for (size_t i = 0; i < n_best && i < (size_t)top; i++)
        print_row(stdout, info, bs_tune_best(tune, i), (int)i + 1);
    printf("\ntime-memory Pareto front (no other fitting point is both faster and smaller):\n");
    print_head(stdout, info, tune);
    for (size_t i = 0; i < n_front; i++)
        print_row(stdout, info, bs_tune_front(tune, i), (int)i + 1);
    const bs_tune_candidate *c = bs_tune_front(tune, n_front - 1);
    printf("\nreproduce the best: bubblesim run %s", source);
    for (size_t i = 0; i < n_user_overrides; i++)
        printf(" --set '%s=%s'", user_overrides[i].path, user_overrides[i].value);
    static const char *const recompute[] = {"none", "selective", "full"};
    printf(" --set schedule=%s --set stages=%d --set "
           "microbatches=%d --set virtual_stages=%d --set tensor_parallel=%d --set "
           "model.microbatch_size=%d --set data_parallel=%d --set zero_stage=%d --set "
           "model.recompute=%s\n",
           c->schedule, c->stages, c->microbatches, c->virtual_stages, c->tensor_parallel,
           c->microbatch_size, c->data_parallel, c->zero_stage, recompute[c->recompute % 3]);
    if (out_dir) {
        /* The CSV and the chart's files are one output set (outfile.h). */
        cli_outset set;
        cli_outset_init(&set);
        if ((rc = cli_prepare_dir(out_dir, err)) || (rc = write_csv(tune, &set, out_dir, err)) ||
            (rc = write_chart(tune, source, &set, out_dir, err)) ||
            (rc = cli_outset_commit(&set, err))) {
            cli_outset_abort(&set);
            return rc;
        }
        if (set.gnuplot_missing) {
            printf("wrote %s/tune.csv and the chart's data and script (tune.dat, tune.gp, "
                   "tune.sh), but no picture\n",
                   out_dir);
            return cli_chart_missing_error(&set, err);
        }
        printf("wrote %s/tune.csv and the chart %s/tune.png (tune.dat, tune.gp, tune.sh)\n",
               out_dir, out_dir);
    }
    return BS_OK;
}

int cli_tune(int argc, char **argv)
{
    const char *path = NULL, *out_dir = NULL;
    int top = 10, jobs = 0, prune = 1;
    bs_override overrides[TUNE_MAX_OVERRIDES];
    size_t n_overrides = 0;
    bs_tune *tune = NULL;
    bs_tune_options opts;
    char *text = NULL;
    bs_error err = {{0}};
    int rc = BS_OK;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (n_overrides == TUNE_MAX_OVERRIDES) {
            fprintf(stderr, "bubblesim: tune: at most %d --set options\n", TUNE_MAX_OVERRIDES);
            return EXIT_BAD_INPUT;
        }
        if (strcmp(a, "--top") == 0 || strcmp(a, "--jobs") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bubblesim: tune: %s needs a value\n", a);
                return EXIT_BAD_INPUT;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--out") == 0) {
                out_dir = v;
                continue;
            }
            char *end;
            errno = 0;
            long x = strtol(v, &end, 10);
            if (errno || *end || end == v || x < 1 ||
                x > (strcmp(a, "--top") == 0 ? 100000 : BS_TUNE_MAX_JOBS)) {
                fprintf(stderr,
                        "bubblesim: tune: %s: expected an integer from 1 to %d, got \"%s\"\n", a,
                        strcmp(a, "--top") == 0 ? 100000 : BS_TUNE_MAX_JOBS, v);
                return EXIT_BAD_INPUT;
            }
            *(strcmp(a, "--top") == 0 ? &top : &jobs) = (int)x;
        } else if (strcmp(a, "--no-prune") == 0) {
            prune = 0;
        } else if (strcmp(a, "--set") == 0 || strncmp(a, "--set=", 6) == 0) {
            char *kv = a[5] == '=' ? argv[i] + 6 : i + 1 < argc ? argv[++i] : NULL;
            if (cli_parse_override(kv, &overrides[n_overrides++])) {
                fprintf(stderr, "bubblesim: tune: --set needs KEY=VALUE\n");
                return EXIT_BAD_INPUT;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "bubblesim: tune: unknown option \"%s\" (see bubblesim --help)\n", a);
            return EXIT_BAD_INPUT;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bubblesim: tune: one CONFIG expected, got \"%s\" and \"%s\"\n", path,
                    a);
            return EXIT_BAD_INPUT;
        }
    }
    if (!path) {
        fprintf(stderr, "bubblesim: tune: missing CONFIG (a JSON file with model, hardware and "
                        "tune; see docs/tune.md)\n");
        return EXIT_BAD_INPUT;
    }
    if (jobs == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = cpus < 1 ? 1 : cpus > BS_TUNE_MAX_JOBS ? BS_TUNE_MAX_JOBS : (int)cpus;
    }
    bs_tune_options_init(&opts);
    opts.top = top;
    opts.jobs = jobs;
    opts.prune = prune;
    if (isatty(STDERR_FILENO))
        opts.progress = show_progress;
    cli_install_interrupt_cleanup();
    if ((rc = bs_tune_create(&tune))) {
        cli_fail(&err, rc, "out of memory");
        goto done;
    }
    if ((rc = bs_read_text_file(path, &text, &err)))
        goto done;
    rc = bs_tune_run(tune, text, path, overrides, n_overrides, &opts, &err);
    if (opts.progress && bs_tune_candidate_count(tune) > 0)
        fputs("\r\033[K", stderr);
    if (rc || (rc = report(tune, path, overrides, n_overrides, top, out_dir, &err)))
        goto done;
done:
    bs_text_free(text);
    bs_tune_free(&tune);
    if (rc)
        return cli_report_file(path, rc, &err);
    return EXIT_OK;
}
