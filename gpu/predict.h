/*
 * predict.h - the config the prediction runs with, from the config as run
 * and what the GPU run measured. Plain C, tested on the CPU.
 */
#ifndef BS_GPU_PREDICT_H
#define BS_GPU_PREDICT_H

#include "settings.h"

/* Fills pcfg (bs_config_init'ed; the caller frees it) with cfg, changed by
 * what rep measured:
 *  - the mlp workload on a GPU (not a dry run): per chunk (P x V values)
 *    forward, backward (the input gradient where the program splits it)
 *    and weight gradient from rep->mlp_costs; the optimizer op's stamps
 *    where the program has optimizer ops; overlap 1, since the executor
 *    runs an overlapped pair's ops one after the other;
 *  - gpu.copy_cost "measured": latency + bytes / bandwidth = the measured
 *    message copy (latency alone, bandwidth unlimited, where the message
 *    copy is no slower than the 4-byte one). */
int bs_gpu_prediction_config(bs_config *pcfg, const bs_config *cfg, const bs_program *prog,
                             const bs_gpu_report *rep, const bs_gpu_settings *s, int dry_run,
                             bs_error *err);

#endif
