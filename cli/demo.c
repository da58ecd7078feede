/*
 * demo.c - `bubblesim` with no arguments: the seed's example (P=4 devices,
 * M=8 micro-batches, forward 1 ms, backward 2 ms) under every schedule of
 * the seed, simulated and set beside the closed forms; then every other
 * built-in schedule (from the table, so a new one appears by itself) on the
 * same example with the backward split into input and weight gradients.
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

/* Runs cfg and prints one row; returns the exit code (0 on success). */
static int demo_row(bs_context *ctx, const bs_config *cfg, bs_error *err)
{
    const bs_result *r;
    int rc = bs_context_run(ctx, cfg, NULL, &r, err);
    if (rc)
        return cli_report(rc, err);
    char fm[16], fb[16], fp[16];
    cell(fm, sizeof fm, r->formula.valid, r->formula.makespan, 0);
    cell(fb, sizeof fb, r->formula.valid, r->formula.bubble_ratio, 1);
    cell(fp, sizeof fp, r->formula.valid, r->formula.peak_activations, 0);
    printf("%-*s %2d %9.2f %9s %7.2f%% %9s %8.2f%% %7.2f%% %9.2f %9s %5d %5llu\n",
           cli_schedule_width(), r->schedule, r->virtual_stages, r->makespan, fm,
           100 * r->bubble_ratio, fb, 100 * r->bubble_over_ideal, 100 * r->span_bubble_ratio,
           r->peak_activations, fp, r->weight_versions, (unsigned long long)r->messages);
    return EXIT_OK;
}

static int is_seed_schedule(const char *name)
{
    for (size_t i = 0; i < sizeof demo_rows / sizeof demo_rows[0]; i++)
        if (strcmp(demo_rows[i].schedule, name) == 0)
            return 1;
    return 0;
}

static void print_head(void)
{
    printf("%-*s %2s %9s %9s %8s %9s %9s %8s %9s %9s %5s %5s\n", cli_schedule_width(), "schedule",
           "V", "makespan", "(formula)", "bubble", "(formula)", "idle/busy", "span-bb", "peak-act",
           "(formula)", "wver", "msgs");
}

/* The built-in schedules beyond the seed, each at V = 2 where it takes
 * several chunks per device (else V = 1), with B = W = 1 ms so that the
 * split backward has something to move; custom needs an order of its own
 * and is only named. */
static int beyond_the_seed(bs_context *ctx, bs_error *err)
{
    bs_config cfg;
    int code = EXIT_OK;
    bs_config_init(&cfg);
    static const double one = 1.0;
    cfg.backward = (bs_values){1, (double *)&one};
    cfg.weight = (bs_values){1, (double *)&one};
    printf("\nThe schedules beyond the seed, on the same example with the backward split\n"
           "into an input gradient (B = 1 ms) and a weight gradient (W = 1 ms):\n\n");
    print_head();
    for (size_t i = 0; i < bs_schedule_count() && !code; i++) {
        const bs_schedule *s = bs_schedule_at(i);
        if (is_seed_schedule(s->name) || strcmp(s->name, "custom") == 0)
            continue;
        snprintf(cfg.schedule, sizeof cfg.schedule, "%s", s->name);
        /* decode: four tokens per micro-batch, each step 1 ms like the
         * prefill (docs/inference.md); the other schedules ignore these. */
        cfg.prompt_tokens = 128;
        cfg.output_tokens = 4;
        cfg.decode = (bs_values){1, (double *)&one};
        cfg.virtual_stages = 2;
        if (s->check(&cfg, err) != BS_OK)
            cfg.virtual_stages = 1;
        code = demo_row(ctx, &cfg, err);
    }
    printf("%-*s  your own op order, inline or as PyTorch pipelining text\n"
           "%-*s  (docs/schedules.md; bubblesim export writes any schedule's)\n",
           cli_schedule_width(), "custom", cli_schedule_width(), "");
    /* The cost arrays point at static storage: forget them before the free. */
    cfg.backward = (bs_values){0, NULL};
    cfg.weight = (bs_values){0, NULL};
    cfg.decode = (bs_values){0, NULL};
    bs_config_free(&cfg);
    return code;
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
    print_head();
    for (size_t i = 0; i < sizeof demo_rows / sizeof demo_rows[0] && !code; i++) {
        snprintf(cfg.schedule, sizeof cfg.schedule, "%s", demo_rows[i].schedule);
        cfg.virtual_stages = demo_rows[i].virtual_stages;
        code = demo_row(ctx, &cfg, &err);
    }
    if (!code)
        code = beyond_the_seed(ctx, &err);
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
