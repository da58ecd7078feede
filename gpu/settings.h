/*
 * settings.h - the "gpu" section of a config: how `verify` runs a schedule
 * on a GPU (workload, repetitions, tolerance, mode, copy cost, the mlp's
 * shape). Plain C, no CUDA, so every front end (and the CPU tests) reads it
 * the same way.
 *
 * The core parser (sim/config.c) does not know the section: a config file
 * is read here, its "gpu" object detached and applied, and the rest parsed
 * by bs_config_parse, so every other key is checked as `run` checks it.
 * Errors name the file (or "--set"), the key path and what was expected,
 * and come back as BS_ERR_INVALID with the message in bs_error.
 */
#ifndef BS_GPU_SETTINGS_H
#define BS_GPU_SETTINGS_H

#include "executor.h"

typedef struct bs_gpu_settings {
    bs_gpu_options gpu;     /* what the executor gets */
    double tolerance;       /* makespan error bar, percent; < 0 until set */
    int copy_cost_measured; /* gpu.copy_cost "measured" (1, the default) or "config" */
} bs_gpu_settings;

/* The defaults: bs_gpu_options_init, tolerance unset, copy cost measured. */
void bs_gpu_settings_init(bs_gpu_settings *s);

/* Reads the config file at path into cfg and s: the "gpu" section goes to
 * s, the rest (with the non-gpu overrides ov) to bs_config_parse. cfg must
 * be bs_config_init'ed; the caller frees it in every case. */
int bs_gpu_config_load(bs_config *cfg, bs_gpu_settings *s, const char *path, const bs_override *ov,
                       size_t n_ov, bs_error *err);

/* Checks a parsed "gpu" object key by key as verify would read it, without
 * keeping the values: `run` uses it to accept a config that carries the
 * section. src names the file in messages. */
struct cJSON;
int bs_gpu_settings_check(const struct cJSON *gpu, const char *src, bs_error *err);

/* Applies `--set gpu.KEY=VALUE`; key is the path after "gpu." (such as
 * "reps" or "mlp.hidden"), value JSON text, or a bare word taken as a
 * string ("mlp" stays a string, "3" is a number). */
int bs_gpu_settings_set(bs_gpu_settings *s, const char *key, const char *value, bs_error *err);

/* After the file and every --set: fills the tolerance from the workload
 * when unset (2 % calibrated, 5 % mlp: issue 3's targets) and refuses
 * combinations no run can honour. path names the config in messages. */
int bs_gpu_settings_finish(bs_gpu_settings *s, const char *path, bs_error *err);

/* "calibrated" or "mlp". */
const char *bs_gpu_workload_name(bs_gpu_workload w);

#endif
