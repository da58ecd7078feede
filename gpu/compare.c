/*
 * compare.c - the prediction beside the measurement (see compare.h). Moved
 * out of cli/verify.c so that any front end judges a run the same way.
 */
#include "compare.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void bs_gpu_comparison_init(bs_gpu_comparison *c)
{
    memset(c, 0, sizeof *c);
}

void bs_gpu_comparison_free(bs_gpu_comparison *c)
{
    bs_free(c->stage_order_match);
    bs_gpu_comparison_init(c);
}

int bs_gpu_compare(bs_gpu_comparison *c, const bs_result *pred, const bs_result *meas,
                   const bs_timeline *mtl, const bs_gpu_report *rep, const bs_program *prog,
                   bs_gpu_workload workload, double tolerance, bs_error *err)
{
    bs_gpu_comparison_free(c);
    if (!(c->stage_order_match = bs_zalloc_array((size_t)prog->devices + 1, sizeof(int))))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the comparison");
    c->devices = prog->devices;
    c->makespan_error_pct =
        pred->makespan > 0 ? (meas->makespan - pred->makespan) / pred->makespan * 100.0 : 0.0;
    c->makespan_error_us = (meas->makespan - pred->makespan) * 1000.0;
    double passes = (double)prog->microbatches * (pred->iterations > 0 ? pred->iterations : 1);
    c->hops = passes > 0 ? (double)pred->messages / passes : 0;
    c->error_per_hop_us = c->hops > 0 ? c->makespan_error_us / c->hops : 0;
    c->bubble_diff_points = (meas->bubble_ratio - pred->bubble_ratio) * 100.0;
    c->noise_pct = rep->makespan_median > 0
                       ? (rep->makespan_max - rep->makespan_min) / rep->makespan_median * 100.0
                       : 0.0;
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
    c->judged = 1;
    c->not_judged_why[0] = '\0';
    if (workload == BS_GPU_WORKLOAD_MLP && strcmp(rep->mode, "streams") == 0) {
        c->judged = 0;
        snprintf(c->not_judged_why, sizeof c->not_judged_why,
                 "not comparable: in streams mode the stages share every SM, so the costs "
                 "timed alone are not the costs of ops running side by side");
    }
    c->within = (!c->judged || fabs(c->makespan_error_pct) <= tolerance) && c->messages_match &&
                c->orders_match && c->numerics_ok;
    return BS_OK;
}
