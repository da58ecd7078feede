/*
 * write_table_inference.c - the table of a decode run: time, bubble and
 * the serving figures (docs/inference.md), with the closed form beside
 * them where one exists, then per device its busy and idle time, the KV
 * cache it holds and the messages it sent. Weight versions and staleness
 * mean nothing for inference (weights never change) and are left out.
 */
#include "internal.h"

#include <math.h>

static void cell(char *buf, size_t size, int valid, double x, int percent)
{
    if (!valid || !isfinite(x))
        snprintf(buf, size, "%s", "-");
    else if (percent)
        snprintf(buf, size, "%.2f %%", 100.0 * x);
    else
        snprintf(buf, size, "%.3f", x);
}

int bs_write_inference_table(FILE *out, const bs_result *r, const bs_config *cfg, bs_error *err)
{
    const bs_formula *f = &r->formula;
    const bs_inference_result *in = &r->inference;
    char mk[32], bb[32], tp[32];
    cell(mk, sizeof mk, f->valid, f->makespan, 0);
    cell(bb, sizeof bb, f->valid, f->bubble_ratio, 1);
    cell(tp, sizeof tp, f->valid, f->time_per_output_token, 0);
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
