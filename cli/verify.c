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
 * The config is the simulator's, plus an optional "gpu" section that this
 * file reads itself (the core parser does not know it): the section is
 * detached from the JSON and the rest goes to bs_config_parse as text, so
 * every other key is checked exactly as `run` checks it. `--set gpu.KEY=V`
 * overrides a gpu key; other --set keys go to the core parser.
 *
 * Prediction: the engine runs the same program with the config's costs;
 * with gpu.copy_cost "measured" (the default) the message time is the copy
 * time measured on this GPU (latency = one copy, bandwidth unlimited),
 * because a device-to-device copy on one GPU is not the network the config
 * describes. The measured timeline goes through bs_metrics_compute, the
 * same code as the prediction.
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
#include "verify_plot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_NO_GPU = 3, EXIT_OUTSIDE_TOLERANCE = 4 };

typedef struct verify_settings {
    bs_gpu_options gpu;
    double tolerance; /* percent of makespan */
    int copy_cost_measured;
} verify_settings;

static const char gpu_keys[] = "workload (\"calibrated\" or \"mlp\"), reps, warmup, tolerance, "
                               "device, mode (\"auto\" or \"streams\"), copy_cost (\"measured\" "
                               "or \"config\"), allocate_activations (true or false), mlp (an "
                               "object)";
static const char mlp_keys[] = "hidden, batch, layers_per_chunk, seed, lr";

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bubblesim: verify: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return EXIT_BAD_INPUT;
}

static int read_int(const cJSON *v, const char *src, const char *key, int min, int *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > 1e6) {
        fprintf(stderr, "bubblesim: %s: gpu.%s: expected an integer >= %d\n", src, key, min);
        return EXIT_BAD_INPUT;
    }
    *out = (int)v->valuedouble;
    return EXIT_OK;
}

static int read_choice(const cJSON *v, const char *src, const char *key, const char *a,
                       const char *b, int *is_b)
{
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, a) && strcmp(v->valuestring, b))) {
        fprintf(stderr, "bubblesim: %s: gpu.%s: expected \"%s\" or \"%s\"\n", src, key, a, b);
        return EXIT_BAD_INPUT;
    }
    *is_b = strcmp(v->valuestring, b) == 0;
    return EXIT_OK;
}

/* Applies one gpu.mlp key. */
static int apply_mlp_key(bs_mlp_shape *m, const char *key, const cJSON *v, const char *src)
{
    char path[96];
    int n = 0, code;
    snprintf(path, sizeof path, "mlp.%s", key);
    if (strcmp(key, "lr") == 0) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e6) {
            fprintf(stderr, "bubblesim: %s: gpu.mlp.lr: expected a number in [0, 1e6]\n", src);
            return EXIT_BAD_INPUT;
        }
        m->lr = v->valuedouble;
        return EXIT_OK;
    }
    if (strcmp(key, "hidden") && strcmp(key, "batch") && strcmp(key, "layers_per_chunk") &&
        strcmp(key, "seed")) {
        fprintf(stderr, "bubblesim: %s: gpu.mlp.%s: unknown key; expected one of %s\n", src, key,
                mlp_keys);
        return EXIT_BAD_INPUT;
    }
    if ((code = read_int(v, src, path, strcmp(key, "seed") ? 1 : 0, &n)))
        return code;
    if (strcmp(key, "hidden") == 0)
        m->hidden = n;
    else if (strcmp(key, "batch") == 0)
        m->batch = n;
    else if (strcmp(key, "seed") == 0)
        m->seed = (uint32_t)n;
    else if (n > 1024) {
        fprintf(stderr, "bubblesim: %s: gpu.mlp.layers_per_chunk: expected at most 1024\n", src);
        return EXIT_BAD_INPUT;
    } else
        m->layers = n;
    return EXIT_OK;
}

/* Applies one gpu key; src names the file or the --set option. */
static int apply_gpu_key(verify_settings *s, const char *key, const cJSON *v, const char *src)
{
    int flag = 0, code = EXIT_OK;
    if (strncmp(key, "mlp.", 4) == 0) {
        return apply_mlp_key(&s->gpu.mlp, key + 4, v, src);
    } else if (strcmp(key, "mlp") == 0) {
        if (!cJSON_IsObject(v)) {
            fprintf(stderr, "bubblesim: %s: gpu.mlp: expected an object with keys %s\n", src,
                    mlp_keys);
            return EXIT_BAD_INPUT;
        }
        for (const cJSON *item = v->child; item && !code; item = item->next)
            code = apply_mlp_key(&s->gpu.mlp, item->string, item, src);
    } else if (strcmp(key, "workload") == 0) {
        if (!(code = read_choice(v, src, key, "calibrated", "mlp", &flag)))
            s->gpu.workload = flag ? BS_GPU_WORKLOAD_MLP : BS_GPU_WORKLOAD_CALIBRATED;
    } else if (strcmp(key, "reps") == 0) {
        code = read_int(v, src, key, 1, &s->gpu.reps);
    } else if (strcmp(key, "warmup") == 0) {
        code = read_int(v, src, key, 0, &s->gpu.warmup);
    } else if (strcmp(key, "device") == 0) {
        code = read_int(v, src, key, 0, &s->gpu.device);
    } else if (strcmp(key, "tolerance") == 0) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1000) {
            fprintf(stderr, "bubblesim: %s: gpu.tolerance: expected a percentage in (0, 1000]\n",
                    src);
            return EXIT_BAD_INPUT;
        }
        s->tolerance = v->valuedouble;
    } else if (strcmp(key, "mode") == 0) {
        if (!(code = read_choice(v, src, key, "auto", "streams", &flag)))
            s->gpu.force_streams = flag;
    } else if (strcmp(key, "copy_cost") == 0) {
        if (!(code = read_choice(v, src, key, "config", "measured", &flag)))
            s->copy_cost_measured = flag;
    } else if (strcmp(key, "allocate_activations") == 0) {
        if (!cJSON_IsBool(v)) {
            fprintf(stderr, "bubblesim: %s: gpu.allocate_activations: expected true or false\n",
                    src);
            return EXIT_BAD_INPUT;
        }
        s->gpu.allocate_activations = cJSON_IsTrue(v);
    } else {
        fprintf(stderr, "bubblesim: %s: gpu.%s: unknown key; expected one of %s\n", src, key,
                gpu_keys);
        return EXIT_BAD_INPUT;
    }
    return code;
}

/* Loads CONFIG: detaches and applies "gpu", parses the rest with the core. */
static int load_config(bs_config *cfg, verify_settings *s, const char *path, const bs_override *ov,
                       size_t n_ov)
{
    int code = EXIT_OK;
    char *text = NULL, *rest = NULL;
    bs_error err = {{0}};
    int rc = bs_read_text_file(path, &text, &err);
    if (rc)
        return cli_report(rc, &err);
    cJSON *root = cJSON_Parse(text);
    if (root && cJSON_IsObject(root)) {
        cJSON *gpu = cJSON_DetachItemFromObjectCaseSensitive(root, "gpu");
        if (gpu && !cJSON_IsObject(gpu)) {
            fprintf(stderr, "bubblesim: %s: gpu: expected an object with keys %s\n", path,
                    gpu_keys);
            code = EXIT_BAD_INPUT;
        }
        for (cJSON *item = gpu ? gpu->child : NULL; item && !code; item = item->next)
            code = apply_gpu_key(s, item->string, item, path);
        cJSON_Delete(gpu);
        if (!code && !(rest = cJSON_PrintUnformatted(root))) {
            fprintf(stderr, "bubblesim: out of memory\n");
            code = EXIT_FAILURE_OTHER;
        }
    }
    /* Syntax errors and non-objects: the core parser reports them with line
     * and column, so it gets the original text. */
    if (!code && (rc = bs_config_parse(cfg, rest ? rest : text, path, ov, n_ov, &err)))
        code = cli_report(rc, &err);
    cJSON_Delete(root);
    free(rest);
    bs_text_free(text);
    return code;
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

static const char *mode_text(const bs_gpu_report *rep)
{
    return rep->mode[0] ? rep->mode : "?";
}

static void print_info_table(const bs_gpu_info *info)
{
    printf("GPU %d: %s (compute capability %d.%d, %d SMs)\n", info->device, info->name,
           info->cc_major, info->cc_minor, info->sm_count);
    printf("driver %d.%d, runtime %d.%d\n", info->driver_version / 1000,
           info->driver_version % 1000 / 10, info->runtime_version / 1000,
           info->runtime_version % 1000 / 10);
    if (info->green_available)
        printf("green contexts: available, partition minimum %u SMs, alignment %u SMs\n",
               info->min_partition, info->alignment);
    else
        printf("green contexts: not available\n");
    printf("%%globaltimer: smallest step %.0f ns, %.6f timer ns per host ns\n", info->timer_tick_ns,
           info->timer_ns_per_ns);
}

static cJSON *info_json(const bs_gpu_info *info)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", info->name);
    cJSON_AddNumberToObject(o, "device", info->device);
    cJSON_AddNumberToObject(o, "driver_version", info->driver_version);
    cJSON_AddNumberToObject(o, "runtime_version", info->runtime_version);
    cJSON_AddNumberToObject(o, "compute_capability", info->cc_major * 10 + info->cc_minor);
    cJSON_AddNumberToObject(o, "sm_count", info->sm_count);
    cJSON_AddBoolToObject(o, "green_contexts", info->green_available);
    cJSON_AddNumberToObject(o, "min_partition_sms", info->min_partition);
    cJSON_AddNumberToObject(o, "partition_alignment_sms", info->alignment);
    cJSON_AddNumberToObject(o, "globaltimer_tick_ns", info->timer_tick_ns);
    cJSON_AddNumberToObject(o, "globaltimer_ns_per_host_ns", info->timer_ns_per_ns);
    return o;
}

static int print_json(cJSON *o)
{
    char *text = cJSON_Print(o);
    int ok = text && printf("%s\n", text) >= 0 && fflush(stdout) == 0;
    free(text);
    cJSON_Delete(o);
    if (!ok) {
        fprintf(stderr, "bubblesim: cannot write to standard output\n");
        return EXIT_FAILURE_OTHER;
    }
    return EXIT_OK;
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
    if (json)
        return print_json(info_json(&info));
    print_info_table(&info);
    return EXIT_OK;
}

/* The comparison of one run. */
typedef struct comparison {
    double makespan_error_pct, bubble_diff_points;
    int messages_match, orders_match, within;
    int numerics_ok;        /* mlp: gradients within BS_MLP_GRAD_TOLERANCE, versions as stashed */
    int *stage_order_match; /* [devices] */
} comparison;

static void compare(comparison *c, const bs_result *pred, const bs_result *meas,
                    const bs_timeline *mtl, const bs_gpu_report *rep, const bs_program *prog,
                    double tolerance)
{
    c->makespan_error_pct =
        pred->makespan > 0 ? (meas->makespan - pred->makespan) / pred->makespan * 100.0 : 0.0;
    c->bubble_diff_points = (meas->bubble_ratio - pred->bubble_ratio) * 100.0;
    c->messages_match = pred->messages == rep->copies && pred->messages == mtl->messages_sent;
    c->orders_match = 1;
    for (int d = 0; d < prog->devices; d++) {
        int same = 1;
        for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++)
            same &= rep->executed[i] == (uint32_t)i;
        c->stage_order_match[d] = same;
        c->orders_match &= same;
    }
    const bs_mlp_numerics *n = &rep->numerics;
    c->numerics_ok =
        !n->checked || (n->versioned ? n->stash_ok : n->worst_rel_err <= BS_MLP_GRAD_TOLERANCE);
    c->within = fabs(c->makespan_error_pct) <= tolerance && c->messages_match && c->orders_match &&
                c->numerics_ok;
}

static const char *workload_name(const verify_settings *s)
{
    return s->gpu.workload == BS_GPU_WORKLOAD_MLP ? "mlp" : "calibrated";
}

static const char *kind_name(int kind)
{
    static const char *const names[] = {"forward", "backward", "input_grad", "weight_grad"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

static cJSON *mlp_json(const verify_settings *s, const bs_config *cfg, const bs_program *prog,
                       const bs_gpu_report *rep, const comparison *c)
{
    const bs_mlp_shape *m = &s->gpu.mlp;
    const bs_mlp_numerics *n = &rep->numerics;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "hidden", m->hidden);
    cJSON_AddNumberToObject(o, "batch", m->batch);
    cJSON_AddNumberToObject(o, "layers_per_chunk", m->layers);
    cJSON_AddNumberToObject(o, "seed", m->seed);
    cJSON_AddNumberToObject(o, "lr", m->lr);
    cJSON_AddNumberToObject(o, "message_bytes", cfg->message_bytes);
    cJSON_AddNumberToObject(o, "activation_bytes", cfg->activation_bytes);
    if (bs_mlp_program_splits(prog))
        cJSON_AddNumberToObject(o, "kept_fraction", cfg->kept_fraction);
    if (rep->mlp_costs) {
        cJSON *costs = cJSON_CreateObject();
        for (int k = 0; k < 4; k++) {
            int any = 0;
            cJSON *a = cJSON_CreateArray();
            for (int ch = 0; ch < rep->mlp_stages; ch++) {
                double v = rep->mlp_costs[(size_t)k * (size_t)rep->mlp_stages + (size_t)ch];
                any |= v >= 0;
                cJSON_AddItemToArray(a, cJSON_CreateNumber(v));
            }
            if (any)
                cJSON_AddItemToObject(costs, kind_name(k), a);
            else
                cJSON_Delete(a);
        }
        cJSON_AddNumberToObject(costs, "optimizer", rep->mlp_optimizer_ms);
        cJSON_AddNumberToObject(costs, "samples", rep->mlp_samples);
        cJSON_AddItemToObject(o, "measured_costs_ms", costs);
    }
    cJSON_AddBoolToObject(o, "numerics_checked", n->checked);
    if (!n->checked)
        cJSON_AddStringToObject(o, "numerics_not_checked", n->why_not);
    if (n->checked && !n->versioned && !(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        cJSON *a = cJSON_CreateArray();
        for (int ch = 0; ch < n->chunks; ch++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(n->max_rel_err[ch]));
        cJSON_AddItemToObject(o, "grad_max_rel_err", a);
        cJSON_AddNumberToObject(o, "grad_worst_rel_err", n->worst_rel_err);
        cJSON_AddNumberToObject(o, "grad_max_abs", n->grad_scale);
        cJSON_AddNumberToObject(o, "grad_tolerance", BS_MLP_GRAD_TOLERANCE);
    }
    if (n->checked && n->versioned) {
        cJSON *a = cJSON_CreateArray();
        for (uint32_t k = 0; k < n->pairs; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "stage", k / prog->microbatches);
            cJSON_AddNumberToObject(e, "microbatch", k % prog->microbatches);
            cJSON_AddNumberToObject(e, "forward_version", n->forward_version[k]);
            cJSON_AddNumberToObject(e, "backward_version", n->backward_version[k]);
            cJSON_AddNumberToObject(e, "expected_version", n->expected_version[k]);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_AddItemToObject(o, "weight_versions", a);
        cJSON_AddBoolToObject(o, "backward_used_stashed_version", n->stash_ok);
    }
    cJSON_AddBoolToObject(o, "numerics_ok", c->numerics_ok);
    return o;
}

static void print_mlp(const verify_settings *s, const bs_config *cfg, const bs_program *prog,
                      const bs_gpu_report *rep, const comparison *c)
{
    const bs_mlp_shape *m = &s->gpu.mlp;
    const bs_mlp_numerics *n = &rep->numerics;
    printf("\nmlp: hidden %d, batch %d, %d layer%s per chunk, seed %u; message %.0f bytes, "
           "activation %.0f bytes per micro-batch and device stage\n",
           m->hidden, m->batch, m->layers, m->layers == 1 ? "" : "s", (unsigned)m->seed,
           cfg->message_bytes, cfg->activation_bytes);
    if (rep->mlp_costs) {
        printf("costs timed alone (median of %d, ms), per chunk:\n", rep->mlp_samples);
        for (int k = 0; k < 4; k++) {
            if (rep->mlp_costs[(size_t)k * (size_t)rep->mlp_stages] < 0)
                continue;
            printf("  %-12s", kind_name(k));
            for (int ch = 0; ch < rep->mlp_stages; ch++)
                printf(" %.6f", rep->mlp_costs[(size_t)k * (size_t)rep->mlp_stages + (size_t)ch]);
            printf("\n");
        }
    }
    if (!n->checked) {
        printf("numerics: not checked: %s\n", n->why_not);
    } else if (n->versioned) {
        printf("weight versions (PipeDream, SGD after each backward, weight stashing):\n");
        printf("  %-6s %-6s %8s %9s %9s\n", "stage", "mb", "forward", "backward", "expected");
        for (uint32_t k = 0; k < n->pairs; k++)
            printf("  %-6u %-6u %8u %9u %9u\n", k / prog->microbatches, k % prog->microbatches,
                   n->forward_version[k], n->backward_version[k], n->expected_version[k]);
        printf("numerics: every backward used its forward's stashed version: %s\n",
               n->stash_ok ? "yes" : "NO");
    } else if (!(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        printf("weight gradients, pipelined vs micro-batches one after another (max relative "
               "error per chunk):");
        for (int ch = 0; ch < n->chunks; ch++)
            printf(" %.3g", n->max_rel_err[ch]);
        printf("\nnumerics: worst %.3g (largest |gradient| %.3g), tolerance %.3g: %s\n",
               n->worst_rel_err, n->grad_scale, BS_MLP_GRAD_TOLERANCE,
               c->numerics_ok ? "ok" : "OUTSIDE");
    } else {
        printf("numerics: forward only, no gradients to compare\n");
    }
}

static cJSON *report_json(const bs_config *cfg, const verify_settings *s, const bs_gpu_report *rep,
                          const bs_result *pred, const bs_result *meas, const comparison *c,
                          const bs_program *prog)
{
    cJSON *o = cJSON_CreateObject(), *stages = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "schedule", cfg->schedule);
    cJSON_AddNumberToObject(o, "stages", cfg->stages);
    cJSON_AddNumberToObject(o, "microbatches", cfg->microbatches);
    cJSON_AddNumberToObject(o, "virtual_stages", cfg->virtual_stages);
    cJSON_AddNumberToObject(o, "iterations", cfg->iterations);
    cJSON_AddStringToObject(o, "workload", workload_name(s));
    cJSON_AddItemToObject(o, "gpu", info_json(&rep->info));
    cJSON_AddStringToObject(o, "mode", mode_text(rep));
    cJSON_AddBoolToObject(o, "dry_run", strcmp(rep->mode, "dry-run") == 0);
    cJSON_AddStringToObject(o, "mode_reason", rep->mode_reason);
    cJSON_AddNumberToObject(o, "partitions", rep->partitions);
    cJSON_AddNumberToObject(o, "partition_sms", rep->partition_sms);
    cJSON_AddNumberToObject(o, "warmup", rep->warmup);
    cJSON_AddNumberToObject(o, "reps", rep->reps);
    cJSON_AddStringToObject(o, "copy_cost", s->copy_cost_measured ? "measured" : "config");
    cJSON_AddNumberToObject(o, "copy_ms", rep->copy_ms);
    cJSON_AddNumberToObject(o, "copy_latency_ms", rep->copy_latency_ms);
    cJSON_AddNumberToObject(o, "copy_bandwidth_bytes_per_s", rep->copy_bandwidth);
    cJSON_AddBoolToObject(o, "gate_timed_out", rep->gate_timed_out);
    cJSON_AddNumberToObject(o, "makespan_predicted_ms", pred->makespan);
    cJSON_AddNumberToObject(o, "makespan_measured_ms", meas->makespan);
    cJSON_AddNumberToObject(o, "makespan_measured_min_ms", rep->makespan_min);
    cJSON_AddNumberToObject(o, "makespan_measured_max_ms", rep->makespan_max);
    cJSON_AddNumberToObject(o, "makespan_error_pct", c->makespan_error_pct);
    cJSON_AddNumberToObject(o, "bubble_predicted", pred->bubble_ratio);
    cJSON_AddNumberToObject(o, "bubble_measured", meas->bubble_ratio);
    cJSON_AddNumberToObject(o, "bubble_diff_points", c->bubble_diff_points);
    cJSON_AddNumberToObject(o, "messages_predicted", (double)pred->messages);
    cJSON_AddNumberToObject(o, "messages_measured", (double)rep->copies);
    cJSON_AddBoolToObject(o, "messages_match", c->messages_match);
    cJSON_AddBoolToObject(o, "orders_match", c->orders_match);
    for (int d = 0; d < pred->devices; d++) {
        cJSON *st = cJSON_CreateObject();
        cJSON_AddNumberToObject(st, "device", d);
        cJSON_AddNumberToObject(st, "peak_activation_bytes_predicted",
                                pred->device[d].peak_activation_bytes);
        cJSON_AddNumberToObject(st, "pool_high_water_bytes", rep->pool_high_water[d]);
        cJSON_AddNumberToObject(st, "busy_predicted_ms", pred->device[d].busy);
        cJSON_AddNumberToObject(st, "busy_measured_ms", meas->device[d].busy);
        cJSON_AddBoolToObject(st, "order_match", c->stage_order_match[d]);
        cJSON_AddItemToArray(stages, st);
    }
    cJSON_AddItemToObject(o, "per_stage", stages);
    if (s->gpu.workload == BS_GPU_WORKLOAD_MLP)
        cJSON_AddItemToObject(o, "mlp", mlp_json(s, cfg, prog, rep, c));
    cJSON_AddNumberToObject(o, "tolerance_pct", s->tolerance);
    cJSON_AddBoolToObject(o, "pass", c->within);
    return o;
}

static void print_table(const bs_config *cfg, const verify_settings *s, const bs_gpu_report *rep,
                        const bs_result *pred, const bs_result *meas, const comparison *c,
                        const bs_program *prog)
{
    int dry = strcmp(rep->mode, "dry-run") == 0;
    if (dry)
        printf("DRY RUN: no GPU was used; the measured columns are the GPU plan run under ideal "
               "stream semantics. This is not a measurement.\n");
    else
        print_info_table(&rep->info);
    if (!dry)
        printf("mode: %s, %d partitions of %u SMs%s%s\n", mode_text(rep), rep->partitions,
               rep->partition_sms, rep->mode_reason[0] ? " - " : "", rep->mode_reason);
    printf("%s P=%d M=%d V=%d iterations=%d, workload %s, %d warm-up + %d reps "
           "(median kept)\n",
           cfg->schedule, cfg->stages, cfg->microbatches, cfg->virtual_stages, cfg->iterations,
           workload_name(s), rep->warmup, rep->reps);
    printf("copy of %.0f bytes: %.6f ms %s; prediction uses %s message time\n", cfg->message_bytes,
           rep->copy_ms, dry ? "from the config" : "measured",
           s->copy_cost_measured && !dry ? "the measured" : "the config's");
    if (!dry && rep->copy_bandwidth > 0)
        printf("copy latency (4 bytes) %.6f ms, bandwidth %.4g GB/s\n", rep->copy_latency_ms,
               rep->copy_bandwidth / 1e9);
    if (rep->gate_timed_out)
        printf("warning: the GPU started before the host had issued the whole run\n");
    printf("\n%-22s %14s %14s %12s\n", "", "predicted", "measured", "difference");
    printf("%-22s %14.6f %14.6f %11.3f%%\n", "makespan (ms)", pred->makespan, meas->makespan,
           c->makespan_error_pct);
    printf("%-22s %14.6f %14.6f %9.3f pts\n", "bubble (idle/total)", pred->bubble_ratio,
           meas->bubble_ratio, c->bubble_diff_points);
    printf("%-22s %14llu %14llu %12s\n", "messages", (unsigned long long)pred->messages,
           (unsigned long long)rep->copies, c->messages_match ? "exact" : "DIFFER");
    printf("\n%-6s %18s %18s %12s %12s %8s\n", "stage", "peak act. bytes", "pool high-water",
           "busy pred", "busy meas", "order");
    for (int d = 0; d < pred->devices; d++)
        printf("%-6d %18.0f %18.0f %12.6f %12.6f %8s\n", d, pred->device[d].peak_activation_bytes,
               rep->pool_high_water[d], pred->device[d].busy, meas->device[d].busy,
               c->stage_order_match[d] ? "same" : "DIFFER");
    if (s->gpu.workload == BS_GPU_WORKLOAD_MLP)
        print_mlp(s, cfg, prog, rep, c);
    printf("\n%s: makespan error %.3f%% (tolerance %.3g%%), messages %s, op orders %s%s\n",
           c->within ? "PASS" : "FAIL", c->makespan_error_pct, s->tolerance,
           c->messages_match ? "exact" : "differ", c->orders_match ? "exact" : "differ",
           s->gpu.workload != BS_GPU_WORKLOAD_MLP ? ""
           : c->numerics_ok                       ? ", numerics ok"
                                                  : ", numerics OUTSIDE");
}

/* pcfg = cfg with the mlp's costs as measured op by op on the GPU: per
 * chunk (P*V values) forward, backward (the input gradient where the
 * program splits it) and weight gradient; the optimizer op's stamps; no
 * overlap, since the executor runs an overlapped pair's ops one after the
 * other. */
static int config_with_measured_costs(bs_config *pcfg, const bs_config *cfg, const bs_program *prog,
                                      const bs_gpu_report *rep, bs_error *err)
{
    size_t n = (size_t)prog->stages;
    int split = bs_mlp_program_splits(prog), rc;
    double *f = calloc(n, sizeof *f), *b = calloc(n, sizeof *b), *w = calloc(n, sizeof *w);
    if (!f || !b || !w) {
        rc = cli_fail(err, BS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t c = 0; c < n; c++) {
        const double *k = rep->mlp_costs;
        double fb = k[BS_OP_BACKWARD * n + c], fi = k[BS_OP_INPUT_GRAD * n + c];
        double fw = k[BS_OP_WEIGHT_GRAD * n + c];
        f[c] = k[BS_OP_FORWARD * n + c] > 0 ? k[BS_OP_FORWARD * n + c] : 1e-6;
        b[c] = split ? (fi > 0 ? fi : 0) : (fb > 0 ? fb : 0);
        w[c] = split ? (fw > 0 ? fw : 0) : 0;
    }
    bs_config tmp = *cfg;
    tmp.forward = (bs_values){n, f};
    tmp.backward = (bs_values){n, b};
    tmp.weight = (bs_values){n, w};
    /* An optimizer cost only where the program has optimizer ops: a cost
     * of 0 or not decides whether a one-iteration schedule emits one. */
    int has_optimizer = 0;
    for (size_t i = 0; i < prog->op_count; i++)
        has_optimizer |= prog->ops[i].kind == BS_OP_OPTIMIZER;
    if (has_optimizer)
        tmp.optimizer = rep->mlp_optimizer_ms > 0 ? rep->mlp_optimizer_ms : 1e-6;
    else if (prog->flags & BS_PROGRAM_UPDATE_PER_BACKWARD)
        tmp.optimizer = 0; /* the measured backward includes its SGD step */
    tmp.overlap = 1.0;
    rc = bs_config_copy(pcfg, &tmp, err);
done:
    free(f);
    free(b);
    free(w);
    return rc;
}

int cli_verify(int argc, char **argv)
{
    const char *path = NULL, *measured_path = NULL, *predicted_path = NULL, *chart_path = NULL;
    int json = 0, want_probe = 0, dry_run = 0, code = EXIT_OK, rc;
    verify_settings s;
    bs_override *ov = calloc((size_t)argc + 1, sizeof *ov);
    cJSON **gpu_sets = calloc((size_t)argc + 1, sizeof *gpu_sets);
    const char **gpu_set_keys = calloc((size_t)argc + 1, sizeof *gpu_set_keys);
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
    comparison cmp = {0};
    bs_config_init(&cfg);
    bs_config_init(&pcfg);
    bs_program_init(&prog);
    bs_gpu_plan_init(&plan);
    bs_timeline_init(&mtl);
    bs_gpu_report_init(&rep);
    memset(&meas, 0, sizeof meas);
    memset(&s, 0, sizeof s);
    bs_gpu_options_init(&s.gpu);
    s.tolerance = -1; /* set below from the workload unless given */
    s.copy_cost_measured = 1;
    if (!ov || !gpu_sets || !gpu_set_keys) {
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
            cJSON *v = cJSON_Parse(set.value);
            gpu_sets[n_gpu] = v ? v : cJSON_CreateString(set.value);
            gpu_set_keys[n_gpu++] = set.path + 4;
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
    if ((code = load_config(&cfg, &s, path, ov, n_ov)))
        goto done;
    for (size_t k = 0; k < n_gpu; k++)
        if ((code = apply_gpu_key(&s, gpu_set_keys[k], gpu_sets[k], "--set")))
            goto done;
    if (tolerance_arg > 0)
        s.tolerance = tolerance_arg;
    if (s.tolerance < 0) /* the targets */
        s.tolerance = s.gpu.workload == BS_GPU_WORKLOAD_MLP ? 5.0 : 2.0;
    if (reps_arg > 0)
        s.gpu.reps = reps_arg;
    if (warmup_arg >= 0)
        s.gpu.warmup = warmup_arg;
    if (streams_arg)
        s.gpu.force_streams = 1;
    int mlp = s.gpu.workload == BS_GPU_WORKLOAD_MLP;
    if (mlp && !s.gpu.allocate_activations) {
        fprintf(stderr,
                "bubblesim: %s: gpu.allocate_activations: the mlp workload keeps real "
                "activations in the stage pools; false is for the calibrated workload only\n",
                path);
        code = EXIT_BAD_INPUT;
        goto done;
    }

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
    if (mlp && !dry_run)
        rc = config_with_measured_costs(&pcfg, &cfg, &prog, &rep, &err);
    else
        rc = bs_config_copy(&pcfg, &cfg, &err);
    if (rc)
        goto failed;
    if (s.copy_cost_measured) {
        /* latency + bytes / bandwidth = the measured message copy */
        int split_cost = rep.copy_bandwidth > 0;
        pcfg.latency = split_cost ? rep.copy_latency_ms : rep.copy_ms;
        pcfg.bandwidth = split_cost ? rep.copy_bandwidth : 0;
    }
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
    if (!(cmp.stage_order_match = calloc((size_t)prog.devices, sizeof *cmp.stage_order_match))) {
        rc = BS_ERR_NOMEM;
        goto failed;
    }
    compare(&cmp, pred, &meas, &mtl, &rep, &prog, s.tolerance);
    if ((predicted_path && (code = write_result(predicted_path, pred, &pcfg))) ||
        (measured_path && (code = write_result(measured_path, &meas, &pcfg))) ||
        (chart_path &&
         (code = cli_verify_chart(chart_path, pred, &meas, cmp.makespan_error_pct, dry_run))))
        goto done;
    if (json)
        code = print_json(report_json(&cfg, &s, &rep, pred, &meas, &cmp, &prog));
    else
        print_table(&cfg, &s, &rep, pred, &meas, &cmp, &prog);
    if (!code && !cmp.within)
        code = EXIT_OUTSIDE_TOLERANCE;
    goto done;
failed:
    if (rc == BS_ERR_NOMEM && !err.message[0])
        snprintf(err.message, sizeof err.message, "out of memory");
    code = cli_report(rc, &err);
done:
    for (size_t k = 0; k < n_gpu; k++)
        cJSON_Delete(gpu_sets[k]);
    free(gpu_sets);
    free(gpu_set_keys);
    free(ov);
    free(cmp.stage_order_match);
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
