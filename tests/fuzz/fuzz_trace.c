/*
 * fuzz_trace.c - libFuzzer target for the measured-trace reader and what
 * consumes it (sim/trace_read.c, sim/calibrate.c, sim/compare.c).
 *
 * Input: a trace JSON text (tools/pytorch/run_schedule.py's format). Each
 * input is parsed; a trace that reads is calibrated, the calibrated config
 * is written, parsed again and compared with the trace, deterministically
 * and sampled with the trace as its own noise. Properties checked
 * on top of "no crash, no sanitizer report":
 *   - a failure always leaves a message in the error record;
 *   - the config calibrate writes is one the config reader accepts;
 *   - a sampled prediction's median lies between its 10th and 90th
 *     percentiles.
 */
#include "bubblesim_measure.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts when a failed call left no message: every failure must say why. */
static void check_message(int rc, const bs_error *err)
{
    if (rc != BS_OK && err->message[0] == '\0')
        abort();
}

/* Calibrates tr, checks that the written config parses, and compares. */
static void calibrate_and_compare(const bs_trace *tr)
{
    bs_calibration *cal = NULL;
    bs_error err;
    err.message[0] = '\0';
    int rc = bs_calibrate(&cal, tr, &err);
    check_message(rc, &err);
    if (rc != BS_OK)
        return;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        bs_calibration_free(&cal);
        return;
    }
    rc = bs_calibration_write_config(f, cal, &err);
    fclose(f);
    if (rc == BS_OK) {
        bs_config cfg;
        bs_config_init(&cfg);
        err.message[0] = '\0';
        if (bs_config_parse(&cfg, text, "calibrated", NULL, 0, &err) != BS_OK)
            abort(); /* calibrate writes only configs the reader accepts */
        bs_comparison *cmp = NULL;
        err.message[0] = '\0';
        rc = bs_compare(&cmp, &cfg, tr, &err);
        check_message(rc, &err);
        bs_comparison_free(&cmp);
        /* The sampled prediction, with the trace as its own noise (a few
         * samples: the fuzzer wants paths, not statistics). */
        bs_compare_options opt = {tr, 8, 1};
        err.message[0] = '\0';
        rc = bs_compare_with(&cmp, &cfg, tr, &opt, &err);
        check_message(rc, &err);
        if (rc == BS_OK && !(cmp->samples == 8 && cmp->sampled_low <= cmp->sampled_makespan &&
                             cmp->sampled_makespan <= cmp->sampled_high))
            abort(); /* the percentiles come from the sorted samples */
        bs_comparison_free(&cmp);
        bs_config_free(&cfg);
    }
    free(text);
    bs_calibration_free(&cal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    bs_trace *tr = NULL;
    bs_error err;
    err.message[0] = '\0';
    int rc = bs_trace_parse(&tr, text, "fuzz.json", &err);
    check_message(rc, &err);
    if (rc == BS_OK)
        calibrate_and_compare(tr);
    bs_trace_free(&tr);
    free(text);
    return 0;
}
