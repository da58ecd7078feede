/*
 * executor_none.c - the executor of a build without CUDA (nvcc not found,
 * or -Dcuda=disabled): every entry point says so, so `bubblesim verify`
 * can exit with "no usable GPU" instead of failing to link.
 */
#include "executor.h"

#include "internal.h"

static int not_built(bs_error *err)
{
    return bs_fail(err, BS_GPU_UNAVAILABLE,
                   "this bubblesim was built without the CUDA backend (nvcc not found at "
                   "configure time, or -Dcuda=disabled); reconfigure with nvcc on PATH and "
                   "-Dcuda=enabled to run on a GPU");
}

int bs_gpu_probe(bs_gpu_info *info, int device, bs_error *err)
{
    (void)info;
    (void)device;
    return not_built(err);
}

int bs_gpu_execute(bs_timeline *tl, bs_gpu_report *rep, const bs_gpu_plan *plan,
                   const bs_program *prog, const bs_gpu_options *opt, bs_error *err)
{
    (void)tl;
    (void)rep;
    (void)plan;
    (void)prog;
    (void)opt;
    return not_built(err);
}
