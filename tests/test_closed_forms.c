/*
 * test_closed_forms.c - every closed form of ../shared/reference/schedules.md
 * reproduced by the simulation at uniform costs and free communication,
 * over a grid (P 1..8, M 1..32, V 1..4 where the schedule takes it), to
 * 1e-9: makespan, the bubble measures, per-device peak activations, weight
 * versions and staleness, and message counts. Plus the reference's worked
 * examples.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

static const double tol = 1e-9;

static bs_config make(const char *schedule, int p, int m, int v, double f, double b, double w)
{
    static double store[3];
    bs_config cfg;
    bs_config_init(&cfg);
    store[0] = f;
    store[1] = b;
    store[2] = w;
    cfg.forward = (bs_values){1, &store[0]};
    cfg.backward = (bs_values){1, &store[1]};
    cfg.weight = (bs_values){1, &store[2]};
    snprintf(cfg.schedule, sizeof cfg.schedule, "%s", schedule);
    cfg.stages = p;
    cfg.microbatches = m;
    cfg.virtual_stages = v;
    return cfg;
}

/* Point-to-point messages per micro-batch for each schedule. */
static double messages_per_microbatch(const char *s, int p, int v)
{
    if (strcmp(s, "forward") == 0)
        return p > 1 ? (double)v * p - 1 : 0;
    if (strcmp(s, "interleaved") == 0)
        return 2.0 * (v * p - 1);
    return 2.0 * (p - 1);
}

static int runs, with_formula;

static void check_point(bs_context *ctx, const char *s, int p, int m, int v, int iters, double f,
                        double b, double w)
{
    static double fw, bw, ww;
    bs_config cfg;
    bs_config_init(&cfg);
    fw = f;
    bw = b;
    ww = w;
    snprintf(cfg.schedule, sizeof cfg.schedule, "%s", s);
    cfg.stages = p;
    cfg.microbatches = m;
    cfg.virtual_stages = v;
    cfg.iterations = iters;
    cfg.forward = (bs_values){1, &fw};
    cfg.backward = (bs_values){1, &bw};
    cfg.weight = (bs_values){1, &ww};
    const bs_result *r;
    bs_error err = {{0}};
    int rc = bs_context_run(ctx, &cfg, NULL, &r, &err);
    if (rc == BS_ERR_INVALID)
        return; /* a configuration the schedule refuses; test_schedules covers refusals */
    runs++;
    CHECK_MSG(rc == BS_OK, "%s P=%d M=%d V=%d: %s", s, p, m, v, err.message);
    if (rc)
        return;
    int interleaved = strcmp(s, "interleaved") == 0;
    int forward_v = strcmp(s, "forward") == 0 && v > 1;
    int expect_formula = !(interleaved || forward_v) || m % p == 0;
    CHECK_MSG(r->formula.valid == expect_formula, "%s P=%d M=%d V=%d: formula valid %d", s, p, m, v,
              r->formula.valid);
    if (!r->formula.valid)
        return;
    with_formula++;
    const char *where = s;
#define NEAR(got, want)                                                                            \
    CHECK_MSG(fabs((got) - (want)) <= tol,                                                         \
              "%s P=%d M=%d V=%d it=%d F=%g B=%g W=%g: %s = %.12g, "                               \
              "closed form %.12g",                                                                 \
              where, p, m, v, iters, f, b, w, #got, (double)(got), (double)(want))
    NEAR(r->makespan, r->formula.makespan);
    NEAR(r->bubble_ratio, r->formula.bubble_ratio);
    NEAR(r->bubble_over_ideal, r->formula.bubble_over_ideal);
    NEAR(r->peak_activations, r->formula.peak_activations);
    NEAR((double)r->weight_versions, r->formula.weight_versions);
    for (int d = 0; d < p; d++)
        NEAR(r->device[d].peak_activations, r->device[d].formula_peak_activations);
    double mt = (double)m * iters;
    NEAR((double)r->messages, messages_per_microbatch(s, p, v) * mt);
    if (strcmp(s, "pipedream") == 0) {
        /* Device r stashes P-r versions once the pipeline reaches its steady
         * state, which needs M' >= 2(P-r-1) micro-batches; staleness is the
         * warm-up depth, capped by the stream. */
        for (int d = 0; d < p; d++) {
            double warmup = p - d - 1;
            if (mt >= 2 * warmup)
                NEAR((double)r->device[d].weight_versions, p - d);
            NEAR((double)r->weight_versions, 1 + fmin(p - 1, floor(mt / 2)));
            NEAR((double)r->device[d].max_staleness, mt - 1 < warmup ? mt - 1 : warmup);
        }
    } else {
        NEAR((double)r->max_staleness, 0);
    }
#undef NEAR
}

int main(void)
{
    bs_context *ctx;
    if (bs_context_create(&ctx))
        return 1;
    const char *schedules[] = {"gpipe", "1f1b", "pipedream", "interleaved", "forward"};
    const double costs[][3] = {{1, 2, 0}, {1, 1, 1}, {0.7, 1.3, 0.4}};
    for (size_t si = 0; si < 5; si++)
        for (int p = 1; p <= 8; p++)
            for (int m = 1; m <= 32; m++)
                for (int v = 1; v <= 4; v++)
                    for (size_t c = 0; c < 3; c++)
                        check_point(ctx, schedules[si], p, m, v, 1, costs[c][0], costs[c][1],
                                    costs[c][2]);
    /* Several iterations: flushes for the synchronous schedules, one stream for
     * pipedream and forward. */
    for (size_t si = 0; si < 5; si++)
        for (int p = 1; p <= 6; p++)
            for (int m = 1; m <= 12; m++)
                check_point(ctx, schedules[si], p, m, si == 3 ? 2 : 1, 3, 1, 2, 0);
    printf("closed forms: %d runs, %d with a closed form\n", runs, with_formula);
    CHECK(with_formula > 3000);

    /* The reference's worked examples. */
    const bs_result *r;
    bs_error err;
    bs_config cfg = make("gpipe", 4, 8, 1, 1, 1, 1);
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK && fabs(r->makespan - 33) < tol);
    snprintf(cfg.schedule, sizeof cfg.schedule, "1f1b");
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK && fabs(r->makespan - 33) < tol);
    CHECK(fabs(r->device[0].busy - 24) < tol);
    cfg = make("interleaved", 4, 8, 2, 1, 2, 0);
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK);
    CHECK_NEAR(r->makespan, 28.5, tol);
    const double chunks[] = {11, 9, 7, 5};
    for (int d = 0; d < 4; d++)
        CHECK_NEAR(r->device[d].peak_activations * 2, chunks[d], tol);

    /* The seed's interleaved inference (section 5.4): P = 4, M = 16, V = 2
     * gives a bubble of (P - 1) / (M V) = 3 / 32 = 9.375 % over ideal, and
     * 1.5 / 17.5 = 8.57 % of the total; the closed form over the grid above
     * is (P - 1) / (M V) over ideal for every P, M multiple of P, V. */
    cfg = make("forward", 4, 16, 2, 1, 0, 0);
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK);
    CHECK_NEAR(r->bubble_over_ideal, 3.0 / 32.0, tol);
    CHECK_NEAR(r->bubble_ratio, 1.5 / 17.5, tol);
    CHECK_NEAR(r->makespan, 17.5, tol);
    for (int p = 1; p <= 8; p++)
        for (int v = 1; v <= 4; v++)
            for (int m = p; m <= 32; m += p) {
                cfg = make("forward", p, m, v, 0.8, 0, 0);
                if (bs_context_run(ctx, &cfg, NULL, &r, &err) != BS_OK) {
                    CHECK_MSG(0, "forward P=%d M=%d V=%d: %s", p, m, v, err.message);
                    continue;
                }
                CHECK_NEAR(r->bubble_over_ideal, (p - 1.0) / ((double)m * v), tol);
            }
    bs_context_free(&ctx);
    return check_finish("closed_forms");
}
