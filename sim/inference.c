/*
 * inference.c - serving figures of a decode timeline.
 *
 * Every micro-batch enters at time 0. Its first token exists when its
 * prefill leaves the last stage; token k when its k-th decode step does.
 *   prefill_time           end of the last prefill (forward) op on any device:
 *                          the prefill of the whole batch, prefill only;
 *   time_to_first_token    mean over micro-batches of the first token's time;
 *   time_per_output_token  mean over micro-batches of (last token - first
 *                          token) / (T - 1), the usual TPOT; 0 when T = 1;
 *   tokens_per_second      M * sequences * T / makespan: every generated
 *                          token, the prefill's included.
 * Only the device holding the last stage is read for the token times, and
 * its ops are summed without dividing by M, so this costs one pass over
 * that device's ops plus one over the forwards.
 */
#include "internal.h"

#include <string.h>

void bs_inference_compute(bs_inference_result *out, const bs_timeline *tl, const bs_config *cfg,
                          double makespan)
{
    const bs_program *prog = tl->program;
    memset(out, 0, sizeof *out);
    if (!(prog->flags & BS_PROGRAM_DECODE_LOOP) || prog->per_iteration == 0)
        return;
    size_t m = prog->per_iteration, items = prog->microbatches, tokens = items / m;
    unsigned last = (unsigned)prog->stages - 1;
    int d = prog->stage_device[last];
    double first_sum = 0, last_sum = 0, prefill_end = 0;
    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1]; i++) {
        const bs_op *op = &prog->ops[i];
        if (op->stage != last)
            continue;
        double end = tl->times[i].end;
        if (op->microbatch < m)
            first_sum += end;
        if ((size_t)op->microbatch >= items - m)
            last_sum += end;
    }
    for (size_t i = 0; i < prog->op_count; i++)
        if (prog->ops[i].kind == BS_OP_FORWARD && tl->times[i].end > prefill_end)
            prefill_end = tl->times[i].end;
    double sequences = cfg->sequences_per_microbatch > 0 ? cfg->sequences_per_microbatch : 1;
    out->valid = 1;
    out->prefill_time = prefill_end;
    out->time_to_first_token = first_sum / (double)m;
    out->time_per_output_token =
        tokens > 1 ? (last_sum - first_sum) / ((double)m * (double)(tokens - 1)) : 0;
    out->generated_tokens = (double)m * sequences * (double)tokens;
    out->tokens_per_second = makespan > 0 ? out->generated_tokens / makespan * 1000.0 : 0;
}
