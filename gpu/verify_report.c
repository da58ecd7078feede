/*
 * verify_report.c - the verify report as a table and as JSON (see
 * verify_report.h). Moved out of cli/verify.c, which now only prints what
 * these functions write.
 */
#include "verify_report.h"

#include "internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *mode_text(const bs_gpu_report *rep)
{
    return rep->mode[0] ? rep->mode : "?";
}

static void info_table(FILE *out, const bs_gpu_info *info)
{
    fprintf(out, "GPU %d: %s (compute capability %d.%d, %d SMs)\n", info->device, info->name,
            info->cc_major, info->cc_minor, info->sm_count);
    fprintf(out, "driver %d.%d, runtime %d.%d\n", info->driver_version / 1000,
            info->driver_version % 1000 / 10, info->runtime_version / 1000,
            info->runtime_version % 1000 / 10);
    if (info->green_available)
        fprintf(out, "green contexts: available, partition minimum %u SMs, alignment %u SMs\n",
                info->min_partition, info->alignment);
    else
        fprintf(out, "green contexts: not available\n");
    fprintf(out, "%%globaltimer: smallest step %.0f ns, %.6f timer ns per host ns\n",
            info->timer_tick_ns, info->timer_ns_per_ns);
    fprintf(out, "module loading: %s\n", info->module_loading[0] ? info->module_loading : "?");
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
    cJSON_AddStringToObject(o, "module_loading", info->module_loading);
    return o;
}

static const char *kind_name(int kind)
{
    static const char *const names[] = {"forward", "backward", "input_grad", "weight_grad"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

static cJSON *mlp_json(const bs_gpu_settings *s, const bs_config *cfg, const bs_program *prog,
                       const bs_gpu_report *rep, const bs_gpu_comparison *c)
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
        if (rep->mlp_cost_spread) {
            cJSON *spread = cJSON_CreateObject();
            for (int k = 0; k < 4; k++) {
                const double *v = rep->mlp_cost_spread + (size_t)k * (size_t)rep->mlp_stages;
                if (v[0] < 0)
                    continue;
                cJSON *a = cJSON_CreateArray();
                for (int ch = 0; ch < rep->mlp_stages; ch++)
                    cJSON_AddItemToArray(a, cJSON_CreateNumber(v[ch]));
                cJSON_AddItemToObject(spread, kind_name(k), a);
            }
            cJSON_AddItemToObject(o, "measured_costs_spread_pct", spread);
        }
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

static void mlp_table(FILE *out, const bs_gpu_settings *s, const bs_config *cfg,
                      const bs_program *prog, const bs_gpu_report *rep, const bs_gpu_comparison *c)
{
    const bs_mlp_shape *m = &s->gpu.mlp;
    const bs_mlp_numerics *n = &rep->numerics;
    fprintf(out,
            "\nmlp: hidden %d, batch %d, %d layer%s per chunk, seed %u; message %.0f bytes, "
            "activation %.0f bytes per micro-batch and device stage\n",
            m->hidden, m->batch, m->layers, m->layers == 1 ? "" : "s", (unsigned)m->seed,
            cfg->message_bytes, cfg->activation_bytes);
    if (rep->mlp_costs) {
        fprintf(out,
                "costs timed alone (median of %d rounds, ms; spread = (slowest - fastest) / "
                "median), per chunk:\n",
                rep->mlp_samples);
        for (int k = 0; k < 4; k++) {
            size_t at = (size_t)k * (size_t)rep->mlp_stages;
            if (rep->mlp_costs[at] < 0)
                continue;
            fprintf(out, "  %-12s", kind_name(k));
            for (int ch = 0; ch < rep->mlp_stages; ch++) {
                fprintf(out, " %.6f", rep->mlp_costs[at + (size_t)ch]);
                if (rep->mlp_cost_spread)
                    fprintf(out, " (%.2f%%)", rep->mlp_cost_spread[at + (size_t)ch]);
            }
            fputc('\n', out);
        }
    }
    if (!n->checked) {
        fprintf(out, "numerics: not checked: %s\n", n->why_not);
    } else if (n->versioned) {
        fprintf(out, "weight versions (PipeDream, SGD after each backward, weight stashing):\n");
        fprintf(out, "  %-6s %-6s %8s %9s %9s\n", "stage", "mb", "forward", "backward", "expected");
        for (uint32_t k = 0; k < n->pairs; k++)
            fprintf(out, "  %-6u %-6u %8u %9u %9u\n", k / prog->microbatches,
                    k % prog->microbatches, n->forward_version[k], n->backward_version[k],
                    n->expected_version[k]);
        fprintf(out, "numerics: every backward used its forward's stashed version: %s\n",
                n->stash_ok ? "yes" : "NO");
    } else if (!(prog->flags & BS_PROGRAM_FORWARD_ONLY)) {
        fprintf(out, "weight gradients, pipelined vs micro-batches one after another (max relative "
                     "error per chunk):");
        for (int ch = 0; ch < n->chunks; ch++)
            fprintf(out, " %.3g", n->max_rel_err[ch]);
        fprintf(out, "\nnumerics: worst %.3g (largest |gradient| %.3g), tolerance %.3g: %s\n",
                n->worst_rel_err, n->grad_scale, BS_MLP_GRAD_TOLERANCE,
                c->numerics_ok ? "ok" : "OUTSIDE");
    } else {
        fprintf(out, "numerics: forward only, no gradients to compare\n");
    }
}

static cJSON *report_json(const bs_config *cfg, const bs_gpu_settings *s, const bs_gpu_report *rep,
                          const bs_result *pred, const bs_result *meas, const bs_gpu_comparison *c,
                          const bs_program *prog)
{
    cJSON *o = cJSON_CreateObject(), *stages = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "schedule", cfg->schedule);
    cJSON_AddNumberToObject(o, "stages", cfg->stages);
    cJSON_AddNumberToObject(o, "microbatches", cfg->microbatches);
    cJSON_AddNumberToObject(o, "virtual_stages", cfg->virtual_stages);
    cJSON_AddNumberToObject(o, "iterations", cfg->iterations);
    cJSON_AddStringToObject(o, "workload", bs_gpu_workload_name(s->gpu.workload));
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
    cJSON_AddNumberToObject(o, "gate_timeouts", rep->gate_timeouts);
    cJSON_AddNumberToObject(o, "gate_timeout_ms", rep->gate_timeout_ms);
    cJSON_AddStringToObject(o, "selftest", rep->selftest);
    cJSON_AddNumberToObject(o, "kernels_warmed", rep->kernels_warmed);
    cJSON_AddNumberToObject(o, "warm_ms", rep->warm_ms);
    cJSON_AddNumberToObject(o, "warm_runs", rep->warm_runs);
    cJSON_AddNumberToObject(o, "makespan_predicted_ms", pred->makespan);
    cJSON_AddNumberToObject(o, "makespan_measured_ms", meas->makespan);
    cJSON_AddNumberToObject(o, "makespan_measured_min_ms", rep->makespan_min);
    cJSON_AddNumberToObject(o, "makespan_measured_max_ms", rep->makespan_max);
    cJSON_AddNumberToObject(o, "makespan_error_pct", c->makespan_error_pct);
    cJSON_AddNumberToObject(o, "makespan_error_us", c->makespan_error_us);
    cJSON_AddNumberToObject(o, "message_hops_per_microbatch", c->hops);
    cJSON_AddNumberToObject(o, "makespan_error_per_hop_us", c->error_per_hop_us);
    cJSON_AddNumberToObject(o, "makespan_noise_pct", c->noise_pct);
    cJSON_AddBoolToObject(o, "judged", c->judged);
    if (!c->judged)
        cJSON_AddStringToObject(o, "not_judged", c->not_judged_why);
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

static void verify_table(FILE *out, const bs_config *cfg, const bs_gpu_settings *s,
                         const bs_gpu_report *rep, const bs_result *pred, const bs_result *meas,
                         const bs_gpu_comparison *c, const bs_program *prog)
{
    int dry = strcmp(rep->mode, "dry-run") == 0;
    if (dry)
        fprintf(out,
                "DRY RUN: no GPU was used; the measured columns are the GPU plan run under ideal "
                "stream semantics. This is not a measurement.\n");
    else
        info_table(out, &rep->info);
    if (!dry)
        fprintf(out, "mode: %s, %d partitions of %u SMs%s%s\n", mode_text(rep), rep->partitions,
                rep->partition_sms, rep->mode_reason[0] ? " - " : "", rep->mode_reason);
    fprintf(out,
            "%s P=%d M=%d V=%d iterations=%d, workload %s, %d warm-up + %d reps "
            "(median kept)\n",
            cfg->schedule, cfg->stages, cfg->microbatches, cfg->virtual_stages, cfg->iterations,
            bs_gpu_workload_name(s->gpu.workload), rep->warmup, rep->reps);
    fprintf(out, "copy of %.0f bytes: %.6f ms %s; prediction uses %s message time\n",
            cfg->message_bytes, rep->copy_ms, dry ? "from the config" : "measured",
            s->copy_cost_measured && !dry ? "the measured" : "the config's");
    if (!dry && rep->copy_bandwidth > 0)
        fprintf(out, "copy latency (4 bytes) %.6f ms, bandwidth %.4g GB/s\n", rep->copy_latency_ms,
                rep->copy_bandwidth / 1e9);
    if (!dry)
        fprintf(out,
                "pre-flight: %s; %d ungated kernel launches; %d whole runs in %.0f ms to warm "
                "the GPU\n",
                rep->selftest, rep->kernels_warmed, rep->warm_runs, rep->warm_ms);
    if (rep->gate_timeouts)
        fprintf(out,
                "warning: in %d run%s the gate let go after %.0f ms, before the host had issued "
                "the whole run%s\n",
                rep->gate_timeouts, rep->gate_timeouts == 1 ? "" : "s", rep->gate_timeout_ms,
                rep->gate_timed_out ? " (measured runs among them: their times include host "
                                      "issue)"
                                    : " (none of the measured runs)");
    fprintf(out, "\n%-22s %14s %14s %12s\n", "", "predicted", "measured", "difference");
    fprintf(out, "%-22s %14.6f %14.6f %11.3f%%\n", "makespan (ms)", pred->makespan, meas->makespan,
            c->makespan_error_pct);
    fprintf(out, "%-22s %14s %14s %9.1f us\n", "", "", "", c->makespan_error_us);
    if (c->hops > 0)
        fprintf(out, "%-22s %14s %14s %6.2f us/hop (%.3g message hops per micro-batch)\n", "", "",
                "", c->error_per_hop_us, c->hops);
    if (!dry)
        fprintf(out, "%-22s %14s %14.6f %11.3f%% (slowest - fastest of %d reps, over the median)\n",
                "run-to-run spread", "", rep->makespan_max - rep->makespan_min, c->noise_pct,
                rep->reps);
    fprintf(out, "%-22s %14.6f %14.6f %9.3f pts\n", "bubble (idle/total)", pred->bubble_ratio,
            meas->bubble_ratio, c->bubble_diff_points);
    fprintf(out, "%-22s %14llu %14llu %12s\n", "messages", (unsigned long long)pred->messages,
            (unsigned long long)rep->copies, c->messages_match ? "exact" : "DIFFER");
    fprintf(out, "\n%-6s %18s %18s %12s %12s %8s\n", "stage", "peak act. bytes", "pool high-water",
            "busy pred", "busy meas", "order");
    for (int d = 0; d < pred->devices; d++)
        fprintf(out, "%-6d %18.0f %18.0f %12.6f %12.6f %8s\n", d,
                pred->device[d].peak_activation_bytes, rep->pool_high_water[d],
                pred->device[d].busy, meas->device[d].busy,
                c->stage_order_match[d] ? "same" : "DIFFER");
    if (s->gpu.workload == BS_GPU_WORKLOAD_MLP)
        mlp_table(out, s, cfg, prog, rep, c);
    if (!c->judged)
        fprintf(out, "\nmakespan %s\n", c->not_judged_why);
    fprintf(out, "\n%s: makespan error %.3f%% (tolerance %.3g%%%s), messages %s, op orders %s%s\n",
            c->within ? "PASS" : "FAIL", c->makespan_error_pct, s->tolerance,
            c->judged ? "" : ", not judged: not comparable", c->messages_match ? "exact" : "differ",
            c->orders_match ? "exact" : "differ",
            s->gpu.workload != BS_GPU_WORKLOAD_MLP ? ""
            : c->numerics_ok                       ? ", numerics ok"
                                                   : ", numerics OUTSIDE");
}

/* Prints o (then frees it); BS_ERR_IO when out cannot take it. */
static int write_json(FILE *out, cJSON *o, bs_error *err)
{
    if (!o)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the JSON report");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the JSON report");
    int ok = fprintf(out, "%s\n", text) >= 0 && fflush(out) == 0 && !ferror(out);
    free(text);
    return ok ? BS_OK : bs_fail(err, BS_ERR_IO, "cannot write the report");
}

static int write_done(FILE *out, bs_error *err)
{
    return fflush(out) == 0 && !ferror(out) ? BS_OK
                                            : bs_fail(err, BS_ERR_IO, "cannot write the report");
}

int bs_gpu_info_write_table(FILE *out, const bs_gpu_info *info, bs_error *err)
{
    info_table(out, info);
    return write_done(out, err);
}

int bs_gpu_info_write_json(FILE *out, const bs_gpu_info *info, bs_error *err)
{
    return write_json(out, info_json(info), err);
}

int bs_gpu_verify_write_table(FILE *out, const bs_gpu_verify_view *v, bs_error *err)
{
    verify_table(out, v->cfg, v->settings, v->rep, v->pred, v->meas, v->cmp, v->prog);
    return write_done(out, err);
}

int bs_gpu_verify_write_json(FILE *out, const bs_gpu_verify_view *v, bs_error *err)
{
    return write_json(
        out, report_json(v->cfg, v->settings, v->rep, v->pred, v->meas, v->cmp, v->prog), err);
}
