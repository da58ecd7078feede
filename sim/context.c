/*
 * context.c - one run from config to result: check, build the program,
 * simulate, measure. A context keeps its buffers between runs so that a
 * sweep over many points allocates only when a point is larger than any
 * before it.
 *
 * The validator's deadlock search is an untimed run of the same rules the
 * engine applies, so a run does it once: the engine's, and the validator's
 * only when the engine reports a deadlock (for the cycle of waits).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct bs_context {
    bs_program program;
    bs_timeline timeline;
    bs_result result;
};

int bs_context_create(bs_context **out)
{
    bs_context *ctx = bs_zalloc_array(1, sizeof *ctx);
    if (!ctx)
        return BS_ERR_NOMEM;
    bs_program_init(&ctx->program);
    bs_timeline_init(&ctx->timeline);
    *out = ctx;
    return BS_OK;
}

void bs_context_free(bs_context **ctx)
{
    if (!ctx || !*ctx)
        return;
    bs_program_free(&(*ctx)->program);
    bs_timeline_free(&(*ctx)->timeline);
    bs_result_free(&(*ctx)->result);
    bs_free(*ctx);
    *ctx = NULL;
}

int bs_context_run(bs_context *ctx, const bs_config *cfg, const bs_run_options *opts,
                   const bs_result **out, bs_error *err)
{
    int rc;
    int record = opts ? opts->record_messages : 0;
    *out = NULL;
    if ((rc = bs_config_check(cfg, "config", err)) ||
        (rc = bs_program_build_unchecked(&ctx->program, cfg, err)))
        return rc;
    /* The engine stops with BS_ERR_DEADLOCK exactly when the validator's
     * feasibility pass would; only then is that pass run, for its message. */
    rc = bs_engine_run(&ctx->timeline, &ctx->program, cfg, record, err);
    if (rc == BS_ERR_DEADLOCK) {
        bs_error why;
        int vrc = bs_program_validate(&ctx->program, &why);
        if (vrc != BS_OK) {
            if (err)
                *err = why;
            return vrc;
        }
    }
    if (rc || (rc = bs_metrics_compute(&ctx->result, &ctx->timeline, cfg, err)))
        return rc;
    /* bs_config_check bounds every op and message time, so this holds; it
     * is checked anyway because a non-finite result would print as numbers. */
    if (!isfinite(ctx->result.makespan))
        return bs_fail(err, BS_ERR_INVALID,
                       "the simulated makespan is %g ms, not a finite time; reduce the costs or "
                       "message times (costs.*, network.*)",
                       ctx->result.makespan);
    *out = &ctx->result;
    return BS_OK;
}
