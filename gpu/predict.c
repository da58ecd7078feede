/*
 * predict.c - the prediction's config from the measured run (predict.h).
 * Moved out of cli/verify.c.
 */
#include "predict.h"

#include "internal.h"

#include <string.h>

/* pcfg = cfg with the mlp's costs as measured op by op on the GPU: per
 * chunk (P*V values) forward, backward (the input gradient where the
 * program splits it) and weight gradient; the optimizer op's stamps; no
 * overlap, since the executor runs an overlapped pair's ops one after the
 * other. */
static int with_measured_costs(bs_config *pcfg, const bs_config *cfg, const bs_program *prog,
                               const bs_gpu_report *rep, bs_error *err)
{
    size_t n = (size_t)prog->stages;
    int split = bs_mlp_program_splits(prog), rc;
    double *f = bs_zalloc_array(n, sizeof *f), *b = bs_zalloc_array(n, sizeof *b),
           *w = bs_zalloc_array(n, sizeof *w);
    if (!f || !b || !w) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory for the prediction's costs");
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
    bs_free(f);
    bs_free(b);
    bs_free(w);
    return rc;
}

int bs_gpu_prediction_config(bs_config *pcfg, const bs_config *cfg, const bs_program *prog,
                             const bs_gpu_report *rep, const bs_gpu_settings *s, int dry_run,
                             bs_error *err)
{
    int rc = s->gpu.workload == BS_GPU_WORKLOAD_MLP && !dry_run && rep->mlp_costs
                 ? with_measured_costs(pcfg, cfg, prog, rep, err)
                 : bs_config_copy(pcfg, cfg, err);
    if (rc)
        return rc;
    if (s->copy_cost_measured) {
        /* latency + bytes / bandwidth = the measured message copy */
        int split_cost = rep->copy_bandwidth > 0;
        pcfg->latency = split_cost ? rep->copy_latency_ms : rep->copy_ms;
        pcfg->bandwidth = split_cost ? rep->copy_bandwidth : 0;
    }
    return BS_OK;
}
