/*
 * report.c - the parts of the executor interface that need no CUDA: option
 * defaults, the report's memory and the dry run, shared by the CUDA and
 * non-CUDA builds.
 */
#include "executor.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

void bs_gpu_options_init(bs_gpu_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->warmup = 2;
    opt->reps = 5;
    opt->allocate_activations = 1;
    opt->workload = BS_GPU_WORKLOAD_CALIBRATED;
    bs_mlp_shape_init(&opt->mlp);
}

void bs_gpu_report_init(bs_gpu_report *rep)
{
    memset(rep, 0, sizeof *rep);
}

void bs_gpu_report_free(bs_gpu_report *rep)
{
    bs_free(rep->executed);
    bs_free(rep->pool_high_water);
    bs_free(rep->mlp_costs);
    bs_free(rep->mlp_cost_spread);
    bs_mlp_numerics_free(&rep->numerics);
    bs_gpu_report_init(rep);
}

int bs_gpu_report_reserve(bs_gpu_report *rep, size_t op_count, int devices, bs_error *err)
{
    bs_free(rep->executed);
    bs_free(rep->pool_high_water);
    rep->executed = bs_alloc_array(op_count ? op_count : 1, sizeof *rep->executed);
    rep->pool_high_water = bs_zalloc_array(devices > 0 ? (size_t)devices : 1, sizeof(double));
    if (!rep->executed || !rep->pool_high_water)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory for the GPU report");
    return BS_OK;
}

int bs_gpu_dry_run(bs_timeline *tl, bs_gpu_report *rep, const bs_gpu_plan *plan,
                   const bs_program *prog, const bs_config *cfg, bs_error *err)
{
    int rc;
    bs_gpu_report_free(rep);
    double copy_ms = bs_message_time(cfg);
    if ((rc = bs_gpu_report_reserve(rep, prog->op_count, prog->devices, err)) ||
        (rc = bs_gpu_plan_peak_live(plan, rep->pool_high_water, NULL, err)) ||
        (rc = bs_gpu_plan_simulate(plan, prog, copy_ms, tl, err)))
        return rc;
    snprintf(rep->info.name, sizeof rep->info.name, "none (dry run)");
    snprintf(rep->mode, sizeof rep->mode, "dry-run");
    snprintf(rep->mode_reason, sizeof rep->mode_reason,
             "no GPU was used: the measured side is the plan run under ideal stream semantics");
    rep->partitions = prog->devices;
    for (int d = 0; d < prog->devices; d++)
        rep->pool_high_water[d] *= cfg->activation_bytes / prog->chunks_per_device;
    for (size_t i = 0; i < prog->op_count; i++)
        rep->executed[i] = (uint32_t)i;
    rep->copies = plan->copies;
    rep->copy_ms = copy_ms;
    rep->copy_latency_ms = cfg->latency;
    rep->copy_bandwidth = cfg->bandwidth;
    double makespan = 0;
    for (size_t i = 0; i < prog->op_count; i++)
        if (tl->times[i].end > makespan)
            makespan = tl->times[i].end;
    rep->makespan_median = rep->makespan_min = rep->makespan_max = makespan;
    snprintf(rep->selftest, sizeof rep->selftest, "none: dry run");
    return BS_OK;
}

int bs_gpu_dry_run_mlp(bs_gpu_report *rep, const bs_gpu_plan *plan, const bs_program *prog,
                       const bs_mlp_shape *shape, bs_error *err)
{
    return bs_mlp_cpu_check(&rep->numerics, plan, prog, shape, BS_GPU_DRY_RUN_FLOPS, err);
}
