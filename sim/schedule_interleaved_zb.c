/*
 * schedule_interleaved_zb.c - interleaved zero bubble: the order PyTorch
 * pipelining's ScheduleInterleavedZeroBubble (torch 2.15) runs, the
 * zero-bubble paper's ZB-1P shape spread over V chunks per device. The
 * rules below were read from PyTorch's definition and rewritten here.
 *
 * Chunk c of device r is model stage c*P + r (looped, as interleaved).
 * Micro-batches are taken in rounds: rounds = max(1, floor(M / P)) and
 * n = M / rounds micro-batches per round (M must be a multiple of rounds,
 * which PyTorch requires too). Device r numbers its compute steps 0, 1, ...:
 *   - step s forwards chunk floor(s / n) mod V (its next micro-batch);
 *   - warm-up: the first w = min((V-1) n + P-1-r, M V) steps forward only;
 *   - steps w .. MV-1 run that forward and then one input gradient, steps
 *     MV .. MV+w-1 the input gradient alone; the k-th input gradient
 *     (k = s - w) is of chunk V-1 - (floor(k / n) mod V), its next
 *     micro-batch;
 *   - after the k-th input gradient, once k >= r, the oldest input
 *     gradient's weight gradient runs (so device r keeps r of them pending,
 *     as in ZB-H1); the rest close the iteration.
 * With V = 1 this is exactly zb-h1's order. PyTorch pads the order with idle
 * slots where an input has not arrived; the engine waits for inputs
 * itself, so the compute order alone is the schedule.
 *
 * Iterations are flushed and the optimizer step charged as for interleaved.
 */
#include "internal.h"

/* Micro-batches per round: M / max(1, floor(M / P)). */
static uint32_t per_round(const bs_config *cfg)
{
    uint32_t m = (uint32_t)cfg->microbatches, p = (uint32_t)cfg->stages;
    uint32_t rounds = m / p > 0 ? m / p : 1;
    return m / rounds;
}

static int interleaved_zb_check(const bs_config *cfg, bs_error *err)
{
    uint32_t m = (uint32_t)cfg->microbatches, p = (uint32_t)cfg->stages;
    uint32_t rounds = m / p > 0 ? m / p : 1;
    if (m % rounds != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "microbatches: interleaved-zb (PyTorch's ScheduleInterleavedZeroBubble) "
                       "takes micro-batches in max(1, floor(M/P)) = %u rounds and needs M to be a "
                       "multiple of that; got M=%u with P=%u (try M=%u or M=%u)",
                       rounds, m, p, rounds * (m / rounds), rounds * (m / rounds + 1));
    if (cfg->placement != BS_PLACEMENT_LOOPED)
        return bs_fail(err, BS_ERR_INVALID,
                       "placement: interleaved-zb always places chunk c of device r at stage "
                       "c*P + r; placement is for custom schedules");
    return BS_OK;
}

/* One iteration of device r's order over micro-batches base .. base+M-1. */
static void emit_device(bs_program *prog, const bs_config *cfg, uint32_t r, uint32_t base,
                        uint32_t *next_f, uint32_t *next_i, uint32_t *next_w)
{
    uint32_t p = (uint32_t)cfg->stages, v = (uint32_t)cfg->virtual_stages;
    uint32_t m = (uint32_t)cfg->microbatches, n = per_round(cfg);
    uint64_t total = (uint64_t)m * v, w64 = (uint64_t)(v - 1) * n + (p - 1 - r);
    uint32_t warm = (uint32_t)(w64 < total ? w64 : total);
    /* Chunk counters restart each iteration. */
    for (uint32_t c = 0; c < v; c++)
        next_f[c] = next_i[c] = next_w[c] = 0;
    uint32_t weights = 0;
#define STAGE(chunk_) ((int)((chunk_)*p + r))
    for (uint64_t s = 0; s < total + warm; s++) {
        if (s < total) {
            uint32_t c = (uint32_t)((s / n) % v);
            bs_program_emit(prog, BS_OP_FORWARD, STAGE(c), base + next_f[c]++);
        }
        if (s < warm)
            continue;
        uint64_t k = s - warm;
        uint32_t c = v - 1 - (uint32_t)((k / n) % v);
        bs_program_emit(prog, BS_OP_INPUT_GRAD, STAGE(c), base + next_i[c]++);
        if (k >= r) {
            uint32_t wc = v - 1 - (uint32_t)((weights / n) % v);
            bs_program_emit(prog, BS_OP_WEIGHT_GRAD, STAGE(wc), base + next_w[wc]++);
            weights++;
        }
    }
    for (; weights < total; weights++) {
        uint32_t wc = v - 1 - (uint32_t)((weights / n) % v);
        bs_program_emit(prog, BS_OP_WEIGHT_GRAD, STAGE(wc), base + next_w[wc]++);
    }
#undef STAGE
}

static int interleaved_zb_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    size_t v = (size_t)cfg->virtual_stages;
    uint32_t *counters = bs_alloc_array(3 * v, sizeof *counters);
    if (!counters)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for interleaved-zb");
    for (uint32_t r = 0; r < (uint32_t)cfg->stages; r++) {
        for (int it = 0; it < cfg->iterations; it++) {
            emit_device(prog, cfg, r, (uint32_t)it * (uint32_t)cfg->microbatches, counters,
                        counters + v, counters + 2 * v);
            bs_emit_iteration_end(prog, cfg, it);
        }
        bs_program_end_device(prog, (int)r);
    }
    bs_free(counters);
    return BS_OK;
}

const bs_schedule bs_schedule_interleaved_zb = {
    .name = "interleaved-zb",
    .summary = "PyTorch's interleaved zero bubble (ZB-1P over V chunks per device), flush",
    .check = interleaved_zb_check,
    .generate = interleaved_zb_generate,
    .ops_per_chunk_microbatch = 3,
    .flags = 0,
};
