/*
 * demo.c - `bubblesim` with no arguments: the seed's example (P=4 devices,
 * M=8 micro-batches, forward 1 ms, backward 2 ms) under every schedule of
 * the seed, simulated and set beside the closed forms.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *schedule;
    int virtual_stages;
} demo_rows[] = {
    {"gpipe", 1}, {"1f1b", 1}, {"pipedream", 1}, {"interleaved", 2}, {"forward", 1},
};

static void cell(char *buf, size_t size, int valid, double x, int percent)
{
    if (!valid)
        snprintf(buf, size, "-");
    else if (percent)
        snprintf(buf, size, "%.2f%%", 100 * x);
    else
        snprintf(buf, size, "%.2f", x);
}

int cli_demo(void)
{
    bs_context *ctx = NULL;
    bs_config cfg;
    bs_error err = {{0}};
    int code = EXIT_OK;
    bs_config_init(&cfg);
    if (bs_context_create(&ctx)) {
        fprintf(stderr, "bubblesim: out of memory\n");
        return EXIT_FAILURE_OTHER;
    }
    printf(
        "bubblesim %s: the seed's example, P=%d devices, M=%d micro-batches,\n"
        "forward %.0f ms and backward %.0f ms per micro-batch and device stage, free network.\n\n",
        BS_VERSION, cfg.stages, cfg.microbatches, cfg.forward.v[0], cfg.backward.v[0]);
    printf("%-12s %2s %9s %9s %8s %8s %9s %8s %9s %8s %5s %5s\n", "schedule", "V", "makespan",
           "(formula)", "bubble", "(formula)", "idle/busy", "span-bb", "peak-act", "(formula)",
           "wver", "msgs");
    for (size_t i = 0; i < sizeof demo_rows / sizeof demo_rows[0]; i++) {
        const bs_result *r;
        snprintf(cfg.schedule, sizeof cfg.schedule, "%s", demo_rows[i].schedule);
        cfg.virtual_stages = demo_rows[i].virtual_stages;
        int rc = bs_context_run(ctx, &cfg, NULL, &r, &err);
        if (rc) {
            code = cli_report(rc, &err);
            break;
        }
        char fm[16], fb[16], fp[16];
        cell(fm, sizeof fm, r->formula.valid, r->formula.makespan, 0);
        cell(fb, sizeof fb, r->formula.valid, r->formula.bubble_ratio, 1);
        cell(fp, sizeof fp, r->formula.valid, r->formula.peak_activations, 0);
        printf("%-12s %2d %9.2f %9s %7.2f%% %8s %8.2f%% %7.2f%% %9.2f %8s %5d %5llu\n", r->schedule,
               r->virtual_stages, r->makespan, fm, 100 * r->bubble_ratio, fb,
               100 * r->bubble_over_ideal, 100 * r->span_bubble_ratio, r->peak_activations, fp,
               r->weight_versions, (unsigned long long)r->messages);
    }
    printf("\nbubble = idle over total time; idle/busy = idle over ideal time (Megatron's\n"
           "measure, the seed's (P-1)/M for inference); span-bb leaves out the fill skew.\n"
           "peak-act = largest activations held by one device, in micro-batches of one\n"
           "device stage; wver = weight versions kept at once; msgs = point-to-point sends.\n"
           "Describe your own pipeline in JSON: bubblesim run configs/seed-p4-m8.json\n");
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "bubblesim: cannot write to standard output\n");
        code = EXIT_FAILURE_OTHER;
    }
    bs_context_free(&ctx);
    bs_config_free(&cfg);
    return code;
}
