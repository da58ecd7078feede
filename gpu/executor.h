/*
 * executor.h - the C interface of the CUDA executor (gpu/executor.cu), which
 * runs a bs_gpu_plan on one GPU and gives back a measured bs_timeline.
 *
 * P pipeline stages share one GPU: each stage gets a disjoint SM partition
 * (a CUDA green context) and a stream on it; where green contexts are
 * missing or P partitions do not fit, each stage gets an ordinary stream
 * and kernels sized to 1/P of the SMs. Which mode ran is reported, never
 * hidden. Builds without CUDA link gpu/executor_none.c instead, whose
 * functions all answer BS_GPU_UNAVAILABLE.
 *
 * Measurement: each op's kernel stamps its start and end with %globaltimer
 * on the GPU; the timeline is in ms from the first op's start. Warm-up runs
 * are dropped; of the measured repetitions, the one with the median makespan
 * gives the timeline, so start and end times come from one consistent run.
 */
#ifndef BS_GPU_EXECUTOR_H
#define BS_GPU_EXECUTOR_H

#include "mlp.h"
#include "plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* No usable GPU: built without CUDA, no driver, no device, or the device
 * cannot run the kernels. The message says which. */
#define BS_GPU_UNAVAILABLE (-100)

typedef enum bs_gpu_workload {
    BS_GPU_WORKLOAD_CALIBRATED = 0, /* spin kernels of the configured duration */
    BS_GPU_WORKLOAD_MLP = 1         /* real layers (gpu/mlp.h): GEMMs in own kernels */
} bs_gpu_workload;

typedef struct bs_gpu_options {
    int device;               /* CUDA device ordinal */
    int warmup;               /* repetitions run and dropped */
    int reps;                 /* measured repetitions, >= 1 */
    int force_streams;        /* skip green contexts even where they work */
    int allocate_activations; /* stream-ordered allocs/frees from a per-stage pool */
    bs_gpu_workload workload;
    bs_mlp_shape mlp; /* the mlp workload's model */
} bs_gpu_options;

void bs_gpu_options_init(bs_gpu_options *opt);

typedef struct bs_gpu_info {
    char name[256];
    int device;
    int driver_version, runtime_version; /* 1000 * major + 10 * minor */
    int cc_major, cc_minor, sm_count;
    int green_available;               /* the driver has green contexts */
    unsigned min_partition, alignment; /* SM partition granularity from the driver */
    double timer_tick_ns;              /* smallest %globaltimer step seen */
    double timer_ns_per_ns;            /* %globaltimer ns per host ns over ~50 ms */
    char module_loading[16];           /* CUDA_MODULE_LOADING in effect: "EAGER" (set by the
                                          probe before the driver starts, so no kernel's first
                                          launch waits for its module to load) */
} bs_gpu_info;

/* What a run did beyond the timeline. */
typedef struct bs_gpu_report {
    bs_gpu_info info;
    char mode[32];          /* "green-contexts" or "streams" */
    char mode_reason[256];  /* why streams, when they ran */
    int partitions;         /* stage partitions obtained */
    unsigned partition_sms; /* SMs per stage partition (streams mode: blocks per kernel) */
    int reps, warmup;
    double makespan_median, makespan_min, makespan_max; /* ms, over measured reps */
    double copy_ms;          /* one copy of the message size alone, median */
    double copy_latency_ms;  /* one 4-byte copy alone, median: the link's latency */
    double copy_bandwidth;   /* bytes/s: message bytes / (copy_ms - latency); 0 when the
                                message copy is not slower than the 4-byte one */
    uint64_t copies;         /* copies executed per repetition */
    uint32_t *executed;      /* [op_count]: op indices each device ran, in the order it ran
                                them, laid out like program->ops (device_first) */
    double *pool_high_water; /* [devices]: bytes, 0 without activation allocation */
    int gate_timed_out;      /* the host was still issuing when the GPU started */
    int gate_timeouts;       /* how many runs (warm-up, cost timing, measured) that happened in */
    double gate_timeout_ms;  /* how long the gate holds the streams at most */
    /* Pre-flight, before anything is timed. */
    char selftest[256]; /* the stream operations tried on every stage stream, and the result */
    int kernels_warmed; /* ungated launches: every kernel the run uses, once per stage stream */
    double warm_ms;     /* host time the GPU was kept busy before timing (clocks up) */
    int warm_runs;      /* whole runs of the plan in that time */
    /* mlp: each op kind timed alone on its stage's partition, median, ms:
     * mlp_costs[kind * mlp_stages + chunk] for kind F, B, I, W (bs_op_kind),
     * -1 where the program has no such op; the optimizer op (stamps only,
     * no work: gradients are compared, not applied) timed on device 0. */
    double *mlp_costs;
    double *mlp_cost_spread; /* same layout: (slowest - fastest) / median x 100 over the rounds */
    int mlp_stages;
    double mlp_optimizer_ms;
    int mlp_samples;          /* rounds: each round times every op kind and chunk once, so a
                                 drift of the clocks spreads over all of them (median kept) */
    bs_mlp_numerics numerics; /* mlp: gradients or weight versions */
} bs_gpu_report;

void bs_gpu_report_init(bs_gpu_report *rep);
void bs_gpu_report_free(bs_gpu_report *rep);
/* (Re)allocates rep->executed for op_count ops and rep->pool_high_water
 * (zeroed) for devices. */
int bs_gpu_report_reserve(bs_gpu_report *rep, size_t op_count, int devices, bs_error *err);

/* A dry run, for machines without a GPU: fills tl and rep as
 * bs_gpu_execute would, from the plan run under ideal stream semantics
 * (bs_gpu_plan_simulate) with the config's message time for copies, so the
 * "measured" side equals the prediction exactly when the plan is right
 * (rep->mode "dry-run"). It checks the plan and the whole comparison path
 * and never stands for a measurement. */
int bs_gpu_dry_run(bs_timeline *tl, bs_gpu_report *rep, const bs_gpu_plan *plan,
                   const bs_program *prog, const bs_config *cfg, bs_error *err);

/* The mlp part of a dry run: runs the plan with real numbers on the CPU
 * (bs_mlp_cpu_check) into rep->numerics, when it is at most about
 * BS_GPU_DRY_RUN_FLOPS of work (else says so there). Call after
 * bs_gpu_dry_run. */
#define BS_GPU_DRY_RUN_FLOPS 4e8
int bs_gpu_dry_run_mlp(bs_gpu_report *rep, const bs_gpu_plan *plan, const bs_program *prog,
                       const bs_mlp_shape *shape, bs_error *err);

/* Relative error bar of the pipelined weight gradients against the
 * sequential reference (max |difference| over max |reference|, per chunk). */
#define BS_MLP_GRAD_TOLERANCE 1e-4

/* Finds the device and fills info (name, driver, SMs, partition granularity,
 * timer tick). BS_GPU_UNAVAILABLE with the reason when there is no usable
 * GPU. */
int bs_gpu_probe(bs_gpu_info *info, int device, bs_error *err);

/* Runs plan (built from prog) opt->warmup + opt->reps times and fills tl
 * (tl->program = prog, start/end per op in ms, messages_sent = copies
 * executed) from the median repetition, and rep with the rest. */
int bs_gpu_execute(bs_timeline *tl, bs_gpu_report *rep, const bs_gpu_plan *plan,
                   const bs_program *prog, const bs_gpu_options *opt, bs_error *err);

#ifdef __cplusplus
}
#endif

#endif
