/*
 * write_table.c - the result as a table for people: a summary with the
 * closed form beside each simulated figure where one exists, then one row
 * per device. A decode run gets its own layout (write_inference_table):
 * time, bubble and the serving figures (docs/inference.md), then per device
 * its busy and idle time, the KV cache it holds and the messages it sent;
 * weight versions and staleness mean nothing for inference (weights never
 * change) and are left out.
 */
#include "internal.h"

#include <math.h>

static void formula_cell(char *buf, size_t size, int valid, double x, int percent)
{
    if (!valid || !isfinite(x))
        snprintf(buf, size, "%s", "-");
    else if (percent)
        snprintf(buf, size, "%.2f %%", 100.0 * x);
    else
        snprintf(buf, size, "%.3f", x);
}

static int write_inference_table(FILE *out, const bs_result *r, const bs_config *cfg, bs_error *err)
{
    const bs_formula *f = &r->formula;
    const bs_inference_result *in = &r->inference;
    char mk[32], bb[32], tp[32];
    formula_cell(mk, sizeof mk, f->valid, f->makespan, 0);
    formula_cell(bb, sizeof bb, f->valid, f->bubble_ratio, 1);
    formula_cell(tp, sizeof tp, f->valid, f->time_per_output_token, 0);
    fprintf(out, "schedule %s: P=%d M=%d V=%d, prompt %d tokens, %d output tokens\n\n", r->schedule,
            r->stages, r->microbatches, r->virtual_stages, cfg->prompt_tokens, cfg->output_tokens);
    fprintf(out, "%-32s %14s %14s\n", "", "simulated", "closed form");
    fprintf(out, "%-32s %14.3f %14s\n", "makespan (ms)", r->makespan, mk);
    fprintf(out, "%-32s %14.3f\n", "prefill time, prefill only (ms)", in->prefill_time);
    fprintf(out, "%-32s %14.3f\n", "time to first token (ms)", in->time_to_first_token);
    fprintf(out, "%-32s %14.3f %14s\n", "time per output token (ms)", in->time_per_output_token,
            tp);
    fprintf(out, "%-32s %14.1f\n", "tokens per second (all)", in->tokens_per_second);
    fprintf(out, "%-32s %14.0f\n", "generated tokens", in->generated_tokens);
    fprintf(out, "%-32s %12.2f %% %14s\n", "bubble, idle over total", 100 * r->bubble_ratio, bb);
    fprintf(out, "%-32s %12.2f %%\n", "bubble, idle over ideal", 100 * r->bubble_over_ideal);
    fprintf(out, "%-32s %14llu\n", "messages", (unsigned long long)r->messages);
    if (r->message_bytes > 0)
        fprintf(out, "%-32s %14.0f\n", "message bytes", r->message_bytes);
    fprintf(out, "\n%6s %12s %12s %8s %16s %8s\n", "device", "busy", "idle", "bubble",
            "kv-cache-bytes", "sent");
    for (int d = 0; d < r->devices; d++) {
        const bs_device_result *dr = &r->device[d];
        fprintf(out, "%6d %12.3f %12.3f %7.2f%% %16.0f %8llu\n", d, dr->busy, dr->idle,
                100 * dr->bubble_ratio, dr->kv_cache_bytes, (unsigned long long)dr->messages_sent);
    }
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the table");
    return BS_OK;
}

/* Whole-device memory per device in GiB, and whether it fits. */
static void write_memory(FILE *out, const bs_result *r)
{
    const double gib = 1024.0 * 1024.0 * 1024.0;
    if (r->memory_limit > 0)
        fprintf(out, "\nmemory per device (GiB), limit %.2f GiB\n", r->memory_limit / gib);
    else
        fprintf(out, "\nmemory per device (GiB), no hardware.memory_bytes given\n");
    fprintf(out, "%6s %10s %10s %10s %11s %10s %10s %5s %14s\n", "device", "weights", "gradients",
            "optimizer", "activations", "other", "total", "fits", "grad sync (ms)");
    for (int d = 0; d < r->devices; d++) {
        const bs_device_memory *m = &r->device[d].memory;
        fprintf(out, "%6d %10.2f %10.2f %10.2f %11.2f %10.2f %10.2f %5s %14.3f\n", d,
                m->weights / gib, m->gradients / gib, m->optimizer / gib, m->activations / gib,
                m->other / gib, m->total / gib,
                m->fits < 0 ? "-"
                : m->fits   ? "yes"
                            : "no",
                r->device[d].collective_time);
    }
}

static int write_table(FILE *out, const bs_result *r, const bs_config *cfg, bs_error *err)
{
    const bs_formula *f = &r->formula;
    char c1[32], c2[32], c3[32], c4[32];
    if (r->inference.valid)
        return write_inference_table(out, r, cfg, err);
    formula_cell(c1, sizeof c1, f->valid, f->makespan, 0);
    formula_cell(c2, sizeof c2, f->valid, f->bubble_ratio, 1);
    formula_cell(c3, sizeof c3, f->valid, f->bubble_over_ideal, 1);
    formula_cell(c4, sizeof c4, f->valid, f->peak_activations, 0);
    fprintf(out, "schedule %s: P=%d M=%d V=%d iterations=%d\n\n", r->schedule, r->stages,
            r->microbatches, r->virtual_stages, r->iterations);
    fprintf(out, "%-30s %14s %14s\n", "", "simulated", "closed form");
    fprintf(out, "%-30s %14.3f %14s\n", "makespan (ms)", r->makespan, c1);
    fprintf(out, "%-30s %14.3f\n", "time per iteration (ms)", r->iteration_time);
    fprintf(out, "%-30s %12.2f %% %14s\n", "bubble, idle over total", 100 * r->bubble_ratio, c2);
    fprintf(out, "%-30s %12.2f %% %14s\n", "bubble, idle over ideal", 100 * r->bubble_over_ideal,
            c3);
    fprintf(out, "%-30s %12.2f %%\n", "bubble, per-device span", 100 * r->span_bubble_ratio);
    fprintf(out, "%-30s %14.3f %14s\n", "peak activations (mb units)", r->peak_activations, c4);
    if (cfg->activation_bytes > 0)
        fprintf(out, "%-30s %14.0f\n", "peak activation bytes", r->peak_activation_bytes);
    if (r->timeline && (r->timeline->program->flags & BS_PROGRAM_FORWARD_ONLY))
        fprintf(out, "%-30s %14s\n", "forward only", "a prefill");
    fprintf(out, "%-30s %14d\n", "weight versions (peak)", r->weight_versions);
    fprintf(out, "%-30s %14d\n", "weight staleness (max)", r->max_staleness);
    fprintf(out, "%-30s %14llu\n", "messages", (unsigned long long)r->messages);
    if (r->collectives > 0)
        fprintf(out, "%-30s %14zu\n", "gradient collectives", r->collectives);
    if (cfg->message_bytes > 0)
        fprintf(out, "%-30s %14.0f\n", "message bytes", r->message_bytes);
    fprintf(out, "\n%6s %10s %10s %8s %8s %10s %8s %8s %6s %8s\n", "device", "busy", "idle",
            "bubble", "span-bb", "peak-act", "formula", "versions", "stale", "sent");
    for (int d = 0; d < r->devices; d++) {
        const bs_device_result *dr = &r->device[d];
        char fp[32];
        formula_cell(fp, sizeof fp, f->valid, dr->formula_peak_activations, 0);
        fprintf(out, "%6d %10.3f %10.3f %7.2f%% %7.2f%% %10.3f %8s %8d %6d %8llu\n", d, dr->busy,
                dr->idle, 100 * dr->bubble_ratio, 100 * dr->span_bubble_ratio, dr->peak_activations,
                fp, dr->weight_versions, dr->max_staleness, (unsigned long long)dr->messages_sent);
    }
    if (r->has_memory)
        write_memory(out, r);
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "cannot write the table");
    return BS_OK;
}

const bs_writer bs_writer_table = {"table", "txt", write_table};
