/*
 * verify_report.h - the report of one `verify` run (a prediction beside a
 * GPU run or a dry run) and of a probe, as a table for people and as JSON
 * for tools. Plain C, so the formatting is tested on the CPU with hand-made
 * reports (tests/test_gpu_compare.c) and any front end prints the same.
 */
#ifndef BS_GPU_VERIFY_REPORT_H
#define BS_GPU_VERIFY_REPORT_H

#include "compare.h"
#include "settings.h"

#include <stdio.h>

/* Everything one report shows; nothing is owned. */
typedef struct bs_gpu_verify_view {
    const bs_config *cfg; /* the config as run (the mlp's sizes applied) */
    const bs_gpu_settings *settings;
    const bs_gpu_report *rep;
    const bs_result *pred, *meas;
    const bs_gpu_comparison *cmp;
    const bs_program *prog; /* the program that ran */
} bs_gpu_verify_view;

/* The device as the probe saw it. BS_ERR_IO when out cannot be written. */
int bs_gpu_info_write_table(FILE *out, const bs_gpu_info *info, bs_error *err);
int bs_gpu_info_write_json(FILE *out, const bs_gpu_info *info, bs_error *err);

/* The comparison: a dry run says so on its first line ("DRY RUN") and in
 * JSON ("dry_run": true); a run not judged says "not comparable". */
int bs_gpu_verify_write_table(FILE *out, const bs_gpu_verify_view *v, bs_error *err);
int bs_gpu_verify_write_json(FILE *out, const bs_gpu_verify_view *v, bs_error *err);

#endif
