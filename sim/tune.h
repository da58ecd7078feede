/*
 * tune.h - the planner: which schedule, D, P, T, V, micro-batch size, ZeRO
 * stage and recomputation fit a model's memory and run fastest
 * (docs/tune.md).
 *
 *   config text with "model", "hardware" and "tune"
 *     --(enumerate)--> candidates --(screen: constraints, bounds)-->
 *     --(search: simulate in bound order, prune)--> ranked + Pareto front
 *
 * Every candidate is the config with nine overrides (schedule, stages,
 * microbatches, virtual_stages, tensor_parallel, model.microbatch_size,
 * data_parallel, zero_stage, model.recompute)
 * parsed by bs_config_parse, so a candidate is reproduced exactly by
 * `bubblesim run CONFIG --set ...`. The library never prints: a front end
 * reads the candidates through the accessors below.
 */
#ifndef BUBBLESIM_TUNE_H
#define BUBBLESIM_TUNE_H

#include "bubblesim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most worker threads one search uses. */
#define BS_TUNE_MAX_JOBS 256
/* Most candidates one search enumerates. */
#define BS_TUNE_MAX_CANDIDATES 200000

/* What became of a candidate. */
typedef enum bs_tune_status {
    BS_TUNE_REFUSED = 0,      /* a schedule's constraint or a config limit */
    BS_TUNE_MEMORY_BOUND = 1, /* memory lower bound above the limit: not simulated */
    BS_TUNE_PRUNED = 2,       /* bounds show it cannot be in the best N or on the front */
    BS_TUNE_PENDING = 3,      /* not simulated yet (only during a search) */
    BS_TUNE_FITS = 4,         /* simulated, fits */
    BS_TUNE_OVER_MEMORY = 5,  /* simulated, does not fit */
    BS_TUNE_FAILED = 6,       /* the simulation reported an error */
    BS_TUNE_STATUS_COUNT = 7
} bs_tune_status;

/* "refused", "over_memory_bound", "pruned", "pending", "fits",
 * "over_memory", "failed" (the CSV's status column); "?" out of range. */
const char *bs_tune_status_name(int status);

/* One point of the search space and what the search learnt about it. The
 * searched dimensions come first; to search a new one, add its field here,
 * its loop in enumerate() and its override in candidate_overrides()
 * (sim/tune.c). */
typedef struct bs_tune_candidate {
    const char *schedule; /* built-in schedule name */
    int stages;           /* P */
    int tensor_parallel;  /* T */
    int virtual_stages;   /* V */
    int microbatch_size;  /* b */
    int microbatches;     /* M = global batch / (D * b) */
    int data_parallel;    /* D: replicas; D * P * T devices */
    int zero_stage;       /* 0-3 (only 0 when D = 1: the stages are alike) */
    int recompute;        /* BS_RECOMPUTE_* */
    int status;           /* bs_tune_status */
    /* Closed-form lower bounds (not set when refused); time_bound is 0
     * with several iterations (docs/tune.md). */
    double time_bound, memory_bound;
    /* Simulated (fits and over_memory only): time per iteration (ms), the
     * bubble ratio, the peak device's memory and its parts. */
    double time, bubble, memory;
    int peak_device;
    bs_model_memory parts;
    /* Simulated: the serving figures for decode (`time` above is then the
     * objective's figure, bs_tune_objective); tokens per second and model
     * FLOPs utilisation (model FLOPs of the iteration, without
     * recomputation, over time x devices x peak; docs/tune.md) for
     * training. */
    double time_per_output_token, tokens_per_second, mfu;
    char note[200]; /* why refused or failed */
} bs_tune_candidate;

/* What the search minimises (tune.objective): time per iteration; for
 * decode, time per output token (latency) or milliseconds per generated
 * token, i.e. the most tokens per second (throughput). */
enum { BS_TUNE_TIME = 0, BS_TUNE_LATENCY = 1, BS_TUNE_THROUGHPUT = 2 };

/* The search's settings. */
typedef struct bs_tune_options {
    int top;   /* keep the best `top` exact (>= 1) */
    int jobs;  /* worker threads, 1 .. BS_TUNE_MAX_JOBS */
    int prune; /* 0: simulate everything the memory bound does not exclude */
    /* Called (from the calling thread) after each batch, when set. */
    void (*progress)(void *user, size_t done, size_t total, size_t simulated, size_t fit,
                     double best_ms);
    void *user;
} bs_tune_options;

/* Sets the defaults: top 10, jobs 1, prune on, no progress. */
void bs_tune_options_init(bs_tune_options *opts);

/* What the search looked for, and how many candidates ended in each status. */
typedef struct bs_tune_info {
    int devices, global_batch;
    double memory_limit;         /* bytes per device */
    double tokens_per_iteration; /* global batch * sequence: prefill tokens for forward */
    double flops_per_iteration;  /* model FLOPs: 3 * (L(2sN + 4s^2h) + 2shv) per sequence */
    int objective;               /* BS_TUNE_TIME, _LATENCY or _THROUGHPUT */
    int decode;                  /* the schedules searched are decode schedules */
    size_t candidates;
    size_t count[BS_TUNE_STATUS_COUNT];
} bs_tune_info;

typedef struct bs_tune bs_tune;

int bs_tune_create(bs_tune **out);
void bs_tune_free(bs_tune **tune);

/* Reads the config text (its "model", "hardware" and "tune" objects, with
 * the overrides written in as bs_config_parse does; `source` names it in
 * messages), enumerates the candidates, screens and searches them. When
 * nothing fits it returns BS_ERR_INVALID saying what comes closest (the
 * candidates stay readable); errors in the config are BS_ERR_INVALID naming
 * source and key. A tune object runs once. */
int bs_tune_run(bs_tune *tune, const char *text, const char *source, const bs_override *overrides,
                size_t n_overrides, const bs_tune_options *opts, bs_error *err);

/* Reads the config text's model and "tune" object as bs_tune_run does, and
 * searches nothing: for a front end that only checks the section. */
int bs_tune_check(const char *text, const char *source, const bs_override *overrides,
                  size_t n_overrides, bs_error *err);

const bs_tune_info *bs_tune_get_info(const bs_tune *tune);
/* Every candidate, in enumeration order (schedule, T, P, V, b). */
size_t bs_tune_candidate_count(const bs_tune *tune);
const bs_tune_candidate *bs_tune_candidate_at(const bs_tune *tune, size_t i);
/* The fitting candidates fastest first (ties: less memory, then
 * enumeration order). With pruning only the first `top` are exact. */
size_t bs_tune_best_count(const bs_tune *tune);
const bs_tune_candidate *bs_tune_best(const bs_tune *tune, size_t i);
/* The time-memory Pareto front of the fitting candidates, least memory
 * first: no other fitting candidate is both faster and smaller. */
size_t bs_tune_front_count(const bs_tune *tune);
const bs_tune_candidate *bs_tune_front(const bs_tune *tune, size_t i);

/* "SCHEDULE P=.. T=.. V=.. b=.. M=.." into buf, then " D=.. ZeRO=.." when
 * D > 1 and " recompute=.." when not "none". */
const char *bs_tune_describe(const bs_tune_candidate *c, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
