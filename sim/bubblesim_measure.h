/*
 * bubblesim_measure.h - measured runs beside the simulator: reading a trace
 * recorded from a real pipeline runtime (tools/pytorch/run_schedule.py, the
 * format is in docs/validation.md "PyTorch runtime"), calibrating a config
 * from it, and comparing a config's prediction with it.
 *
 *   trace JSON --bs_trace_load--> bs_trace --bs_calibrate--> bs_calibration
 *                                          (written as a config run accepts)
 *   config + bs_trace --bs_compare--> bs_comparison (measured beside predicted)
 *
 * The same rules as bubblesim.h: BS_OK or a negative bs_status with the
 * reason in bs_error, nothing printed, create/free pairs. Times in ms.
 */
#ifndef BUBBLESIM_MEASURE_H
#define BUBBLESIM_MEASURE_H

#include "bubblesim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- trace */

/* One compute op (F, B, I or W) as it ran on its rank in one step. Times are
 * ms from the step's origin: the earliest start of any action in the step,
 * on any rank (the runtime's work before the first op belongs to the step). */
typedef struct bs_trace_op {
    uint32_t microbatch;
    uint16_t stage;
    uint8_t kind; /* BS_OP_FORWARD, _BACKWARD, _INPUT_GRAD or _WEIGHT_GRAD */
    double start, end;
    /* Time the rank spent blocked on communication after its previous
     * compute op ended and before this one started (receive waits,
     * WAIT_SEND_F/B, WAIT_REDUCE_GRAD): these are waits, not work. */
    double wait_before;
} bs_trace_op;

/* A whole trace: `steps` repetitions of the same executed order. Within a
 * step, rank r's ops are ops[step * ops_per_step + rank_first[r] ..
 * + rank_first[r + 1]) in executed order. */
typedef struct bs_trace {
    int ranks, stages, microbatches, steps;
    uint16_t *placement; /* [stages]: the rank that owns each chunk */
    size_t ops_per_step;
    size_t *rank_first; /* [ranks + 1] */
    bs_trace_op *ops;   /* [steps * ops_per_step] */
    /* [steps * ranks]: when each rank began its first action of the step
     * (of any kind), from the step's origin: the runtime's own work before a
     * rank's first compute op is measured from here. */
    double *rank_start;
    char source[64];     /* "pytorch" */
    char workload[16];   /* "sleep", "mlp", or "" */
    size_t comm_actions; /* communication and wait actions seen in step 0 */
} bs_trace;

/* Limits on what a trace may hold, so a hostile file cannot make the reader
 * allocate without bound. */
#define BS_TRACE_MAX_STEPS 10000
#define BS_TRACE_MAX_ACTIONS 10000000
#define BS_TRACE_MAX_RANKS 1024

/* Reads a trace from JSON text; `source` names it in messages (a file name).
 * Every key is checked: a bad value is BS_ERR_INVALID with "SOURCE: key
 * path: what was expected". Overlapped actions (OVERLAP_F_B) are refused. */
int bs_trace_parse(bs_trace **out, const char *text, const char *source, bs_error *err);
/* bs_trace_parse on the file at `path`. */
int bs_trace_load(bs_trace **out, const char *path, bs_error *err);
/* Sets *tr to NULL; accepts NULL. */
void bs_trace_free(bs_trace **tr);

/* The executed order of step 0 in PyTorch pipelining's text format (one row
 * per rank), compute actions only. */
int bs_trace_write_order(FILE *out, const bs_trace *tr, bs_error *err);

/* The runtime's own time before op i (0 <= i < ops_per_step) of step st on
 * its rank: from the end of the rank's previous compute op (or from the
 * rank's first action, for its first op) to the op's start, less the time
 * it was blocked on communication. Can be slightly negative on a trace
 * whose clocks round. */
double bs_trace_gap(const bs_trace *tr, size_t st, size_t i);

/* For each op i of a step (0 <= i < ops_per_step), the op of the same step
 * whose output it consumes from the neighbouring chunk: the forward of chunk
 * s - 1 for a forward of s; the backward (I, else B) of s + 1 for a B or I
 * of s. SIZE_MAX where there is none (the first chunk's forward, the last
 * chunk's backward, W). A new array, freed with bs_free; NULL when out of
 * memory. */
size_t *bs_trace_producers(const bs_trace *tr);

/* ------------------------------------------------------------- calibrate */

/* Costs derived from a trace. Per-op overhead (the runtime's own time
 * before a compute op starts: from the previous compute op's end, or the
 * rank's first action, to its start, waits excluded) has no config key
 * yet, so it is folded into the op costs: each chunk's cost of a kind is
 * the duration of that kind plus the gap before such an op, each the mean
 * over every op of that chunk and kind in every step. */
typedef struct bs_calibration {
    int ranks, stages, microbatches, virtual_stages;
    uint16_t *placement; /* [stages] */
    /* Per chunk in model order, ms, overhead included: forward; backward is
     * the input gradient I (or the full backward B where the chunk ran no
     * split backward); weight is W (0 without a split backward). */
    double *forward, *backward, *weight;
    /* The same without the overhead: the op durations alone. */
    double *forward_op, *backward_op, *weight_op;
    double overhead;        /* gap between compute ops, waits excluded */
    double latency;         /* message delay beyond the overhead (fitted) */
    size_t latency_samples; /* receives from another rank it was fitted to */
    size_t gap_samples;     /* gaps measured, all steps */
    const bs_trace *trace;  /* the executed order comes from here */
} bs_calibration;

/* Derives the costs, latency and overhead (means over every step) from tr,
 * which must outlive the calibration. */
int bs_calibrate(bs_calibration **out, const bs_trace *tr, bs_error *err);
void bs_calibration_free(bs_calibration **cal);

/* Writes a config that `bubblesim run` accepts: schedule custom with the
 * executed order inline, the placement, the per-chunk costs and the
 * latency (bandwidth unlimited). */
int bs_calibration_write_config(FILE *out, const bs_calibration *cal, bs_error *err);

/* --------------------------------------------------------------- compare */

/* One compute op: predicted and measured (median over steps) times. */
typedef struct bs_compare_op {
    uint32_t microbatch;
    uint16_t stage;
    uint8_t kind;
    int rank;
    double predicted_start, predicted_end;
    double measured_start, measured_end; /* medians over steps */
    /* predicted_end - measured_end: ends line up in the model (the
     * overhead is folded into the start of each op's cost), starts do not. */
    double end_error;
    double duration_error; /* predicted - measured duration */
} bs_compare_op;

typedef struct bs_comparison {
    int ranks, steps;
    double predicted_makespan;
    double measured_makespan; /* median over steps */
    double measured_min, measured_max;
    /* (predicted - measured) / measured, with the median measured makespan;
     * and against each step's own makespan: median and worst (largest
     * magnitude, sign kept) over steps. */
    double makespan_error, step_error_median, step_error_worst;
    /* The run's own noise: (max - min) / median of the steps' makespans,
     * and their standard deviation over the median. */
    double noise_spread, noise_stdev;
    /* Per rank: busy = sum of op durations, idle = makespan - busy. The
     * predicted busy includes the overhead folded into the op costs. */
    double *predicted_busy, *predicted_idle, *measured_busy, *measured_idle; /* [ranks] */
    size_t op_count;
    bs_compare_op *ops;
    /* |end_error| and |duration_error| over the ops: median and worst
     * (the worst with its sign). */
    double op_end_error_median, op_end_error_worst;
    double op_duration_error_median, op_duration_error_worst;
    /* With a noise trace (bs_compare_options): the prediction sampled under
     * the measured op-to-op variation. samples engine runs; their median
     * makespan, its 10th and 90th percentiles, and the median's error
     * against the median measured step. samples 0: none made. */
    int samples;
    double sampled_makespan, sampled_low, sampled_high, sampled_error;
} bs_comparison;

/* Simulates cfg (one iteration; its ops must be exactly the trace's ops, on
 * the same ranks) and sets the prediction beside the trace. */
int bs_compare(bs_comparison **out, const bs_config *cfg, const bs_trace *tr, bs_error *err);

/* What bs_compare_with adds to bs_compare: a sampled prediction.
 *
 * The deterministic prediction is one step in which every op takes its
 * configured cost. A real step's ops vary, and where two ranks meet the
 * later one sets the time, so a real step is slower than that. The sampled
 * prediction runs the engine `samples` times. Run k takes step k mod S of
 * the noise trace (S steps), and gives every op the config's cost times
 * x / mean, where x is the runtime's gap plus duration of an op of the same
 * chunk and kind drawn at random from that step, and mean is the mean of
 * those over the whole noise trace. So a calibrated config replays drawn
 * ops exactly, and one noise step's slowness stays together within a run.
 * The noise trace must have the compared trace's ranks, chunks, placement,
 * M and ops; in a held-out check it is the one the config was calibrated
 * from. Draws come from a fixed generator seeded by `seed`: the same inputs
 * give the same figures. */
typedef struct bs_compare_options {
    const bs_trace *noise; /* NULL: no sampled prediction */
    int samples;           /* 1..BS_COMPARE_MAX_SAMPLES; 0 takes the default (within the op runs) */
    uint64_t seed;
} bs_compare_options;

#define BS_COMPARE_DEFAULT_SAMPLES 2000
#define BS_COMPARE_MAX_SAMPLES 100000
/* The most op runs (samples times ops per step) one sampled prediction may
 * take, about 10 s of engine time: the default sample count shrinks to fit
 * it, and an explicit count beyond it is refused. */
#define BS_COMPARE_MAX_OP_RUNS 2e8

/* bs_compare plus, when opt and opt->noise are given, the sampled
 * prediction (bs_comparison.samples > 0). */
int bs_compare_with(bs_comparison **out, const bs_config *cfg, const bs_trace *tr,
                    const bs_compare_options *opt, bs_error *err);
void bs_comparison_free(bs_comparison **cmp);

/* The error a tolerance judges: sampled_error when cmp has samples, else
 * makespan_error. */
double bs_comparison_judged_error(const bs_comparison *cmp);

/* Human-readable table, or one JSON object (all fields above, ops
 * included), each with the verdict against `tolerance` in percent. */
int bs_comparison_write_table(FILE *out, const bs_comparison *cmp, double tolerance, bs_error *err);
int bs_comparison_write_json(FILE *out, const bs_comparison *cmp, double tolerance, bs_error *err);

#ifdef __cplusplus
}
#endif

#endif
