/*
 * compare.h - a prediction set beside a GPU run (or a dry run): the figures
 * `verify` reports and the pass rule. Plain C, tested on the CPU with
 * hand-made results (tests/test_gpu_compare.c).
 *
 * The makespan error is given three ways: in percent of the predicted
 * makespan (the pass rule), in microseconds, and per message hop. Hops are
 * the messages one micro-batch passes on its way through the pipeline and
 * back (messages / (M x iterations)): they lie on the fill and drain path
 * of every schedule here, so where the error is message delay the model
 * missed, error per hop is that delay per message.
 *
 * Not every run can be judged: under the mlp workload in streams mode the
 * stages share every SM, so a cost timed alone is not the cost of the same
 * op beside P - 1 others, and the makespan error says nothing about the
 * schedule. Such a run is "not comparable": its error is reported, its
 * pass rests on counts, orders and numerics only, and `judged` is 0 with
 * the reason.
 */
#ifndef BS_GPU_COMPARE_H
#define BS_GPU_COMPARE_H

#include "executor.h"

typedef struct bs_gpu_comparison {
    double makespan_error_pct; /* (measured - predicted) / predicted x 100 */
    double makespan_error_us;  /* measured - predicted, microseconds */
    double hops;               /* message hops per micro-batch (0: none) */
    double error_per_hop_us;   /* makespan_error_us / hops (0 without hops) */
    double bubble_diff_points; /* measured - predicted bubble ratio, x 100 */
    double noise_pct;          /* (slowest - fastest measured rep) / median x 100 */
    int messages_match, orders_match;
    int numerics_ok; /* mlp: gradients within BS_MLP_GRAD_TOLERANCE, versions as stashed */
    int judged;      /* the makespan error counts toward the pass */
    char not_judged_why[160];
    int within; /* the pass: (judged: error within tolerance) and counts, orders, numerics */
    int devices;
    int *stage_order_match; /* [devices] */
} bs_gpu_comparison;

void bs_gpu_comparison_init(bs_gpu_comparison *c);
void bs_gpu_comparison_free(bs_gpu_comparison *c);

/* Compares pred (the engine's result) with meas (bs_metrics_compute of
 * the measured timeline mtl) and the run's report rep, for program prog
 * run with workload under tolerance (percent). */
int bs_gpu_compare(bs_gpu_comparison *c, const bs_result *pred, const bs_result *meas,
                   const bs_timeline *mtl, const bs_gpu_report *rep, const bs_program *prog,
                   bs_gpu_workload workload, double tolerance, bs_error *err);

#endif
