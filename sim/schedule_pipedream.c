/*
 * schedule_pipedream.c - asynchronous PipeDream (1F1B with weight stashing).
 *
 * The op order is 1F1B's over one unbroken stream of M * iterations
 * micro-batches: there is no flush, and weights change after every
 * micro-batch's backward (BS_PROGRAM_UPDATE_PER_BACKWARD). A forward stashes
 * the weight version it used so that its backward can use the same one;
 * metrics.c counts the versions alive at once and the staleness. The
 * optimizer cost, when given, is paid after every backward.
 */
#include "internal.h"

static int pipedream_check(const bs_config *cfg, bs_error *err)
{
    return bs_check_single_chunk(cfg, "pipedream", err);
}

static int pipedream_generate(const bs_config *cfg, bs_program *prog, bs_error *err)
{
    (void)err;
    for (int d = 0; d < cfg->stages; d++) {
        bs_emit_one_f_one_b(prog, d, 0, prog->microbatches, cfg->stages - d - 1);
        bs_program_end_device(prog, d);
    }
    return BS_OK;
}

const bs_schedule bs_schedule_pipedream = {
    .name = "pipedream",
    .summary = "asynchronous 1F1B, weight stashing, update per micro-batch, no flush",
    .check = pipedream_check,
    .generate = pipedream_generate,
    .ops_per_chunk_microbatch = 2,
    .flags = BS_PROGRAM_UPDATE_PER_BACKWARD,
};
