/*
 * test_v_memory.c - v-min and v-half (controllable-memory V schedules)
 * against the authors' statements: peak activations (P+4)//3 and (P+2)//2
 * micro-batches where 1F1B holds P, counted as the authors count (W frees
 * the whole activation: memory.kept_fraction = 1), once M >= 2P; bubbles
 * below 1F1B's; every order valid (no deadlock) for any M; V = 2 only, and
 * the default when a config has no virtual_stages.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

static double unit_cost = 1.0;

static void make(bs_config *cfg, const char *schedule, int p, int m, int v)
{
    bs_config_init(cfg);
    cfg->forward = cfg->backward = cfg->weight = (bs_values){1, &unit_cost};
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", schedule);
    cfg->stages = p;
    cfg->microbatches = m;
    cfg->virtual_stages = v;
    cfg->kept_fraction = 1;
}

static int run(bs_context *ctx, const bs_config *cfg, const bs_result **res)
{
    bs_error err = {{0}};
    int rc = bs_context_run(ctx, cfg, NULL, res, &err);
    CHECK_MSG(rc == BS_OK, "%s P=%d M=%d: %s", cfg->schedule, cfg->stages, cfg->microbatches,
              err.message);
    return rc == BS_OK;
}

static void test_memory_and_bubble(bs_context *ctx)
{
    for (int p = 2; p <= 16; p++)
        for (int i = 0; i < 9; i++) {
            /* Around P and its multiples, where the shape changes. */
            const int ms[9] = {1, 2, p - 1, p, p + 1, 2 * p, 2 * p + 1, 3 * p, 4 * p};
            int m = ms[i];
            if (m < 1)
                continue;
            bs_config cfg;
            const bs_result *res;
            make(&cfg, "1f1b", p, m, 1);
            if (!run(ctx, &cfg, &res))
                continue;
            double one_f_one_b = res->span_bubble_ratio;
            double bubble[2] = {0, 0};
            for (int k = 0; k < 2; k++) {
                make(&cfg, k ? "v-min" : "v-half", p, m, 2);
                if (!run(ctx, &cfg, &res))
                    continue;
                bubble[k] = res->span_bubble_ratio;
                int want = k ? (p + 4) / 3 : (p + 2) / 2;
                if (m >= 2 * p)
                    CHECK_MSG(res->peak_activations == want, "%s P=%d M=%d: peak %g, want %d",
                              cfg.schedule, p, m, res->peak_activations, want);
                else
                    CHECK_MSG(res->peak_activations <= want, "%s P=%d M=%d: peak %g > %d",
                              cfg.schedule, p, m, res->peak_activations, want);
                if (m >= 2 * p)
                    CHECK_MSG(bubble[k] < one_f_one_b, "%s P=%d M=%d: bubble %g, 1f1b %g",
                              cfg.schedule, p, m, bubble[k], one_f_one_b);
                /* With the default kept fraction the input gradient frees
                 * a little: never more than the authors' count. */
                cfg.kept_fraction = 32.0 / 34.0;
                if (run(ctx, &cfg, &res))
                    CHECK(res->peak_activations <= want + 1e-12);
            }
            if (m >= 2 * p)
                CHECK_MSG(bubble[0] <= bubble[1] + 1e-12, "P=%d M=%d: v-half %g > v-min %g", p, m,
                          bubble[0], bubble[1]);
        }
}

static void test_refusals(void)
{
    const char *names[] = {"v-min", "v-half"};
    for (int k = 0; k < 2; k++)
        for (int v = 1; v <= 3; v += 2) {
            bs_config cfg;
            bs_program prog;
            bs_error err = {{0}};
            make(&cfg, names[k], 4, 8, v);
            bs_program_init(&prog);
            int rc = bs_program_build(&prog, &cfg, &err);
            CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "needs V = 2"), "%s V=%d: %s",
                      names[k], v, err.message);
            bs_program_free(&prog);
        }
}

/* Without a virtual_stages key the V-shaped schedules get V = 2 (issue
 * 15.6); a value they cannot use is still refused; others keep V = 1. */
static void test_default_v(void)
{
    const char *v_shaped[] = {"zbv", "dualpipev", "v-min", "v-half"};
    for (int k = 0; k < 4; k++) {
        char json[160];
        bs_config cfg;
        bs_error err = {{0}};
        bs_program prog;
        snprintf(json, sizeof json, "{\"schedule\": \"%s\", \"stages\": 4, \"microbatches\": 8}",
                 v_shaped[k]);
        bs_config_init(&cfg);
        CHECK(bs_config_parse(&cfg, json, "t.json", NULL, 0, &err) == BS_OK);
        CHECK_MSG(cfg.virtual_stages == 2, "%s: V=%d", v_shaped[k], cfg.virtual_stages);
        bs_program_init(&prog);
        CHECK_MSG(bs_program_build(&prog, &cfg, &err) == BS_OK, "%s: %s", v_shaped[k], err.message);
        bs_program_free(&prog);
        bs_config_free(&cfg);
        bs_override o = {"virtual_stages", "1"};
        bs_config_init(&cfg);
        CHECK(bs_config_parse(&cfg, json, "t.json", &o, 1, &err) == BS_OK);
        CHECK(cfg.virtual_stages == 1);
        bs_program_init(&prog);
        int rc = bs_program_build(&prog, &cfg, &err);
        CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "needs V = 2, got 1"), "%s: %s",
                  v_shaped[k], err.message);
        bs_program_free(&prog);
        bs_config_free(&cfg);
    }
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    CHECK(bs_config_parse(&cfg, "{\"schedule\": \"zb-h1\"}", "t.json", NULL, 0, &err) == BS_OK);
    CHECK(cfg.virtual_stages == 1);
    bs_config_free(&cfg);
    /* The default comes from the table record's v_shape, and exactly the
     * four names above have it. */
    int flagged = 0;
    for (size_t i = 0; i < bs_schedule_count(); i++) {
        const bs_schedule *s = bs_schedule_at(i);
        char json[160];
        snprintf(json, sizeof json, "{\"schedule\": \"%s\", \"stages\": 4}", s->name);
        flagged += s->v_shape != 0;
        bs_config_init(&cfg);
        if (bs_config_parse(&cfg, json, "t.json", NULL, 0, &err) == BS_OK)
            CHECK_MSG(cfg.virtual_stages == (s->v_shape ? 2 : 1), "%s: V=%d, v_shape %d", s->name,
                      cfg.virtual_stages, s->v_shape);
        else
            CHECK_MSG(!s->v_shape, "%s: %s", s->name, err.message);
        bs_config_free(&cfg);
    }
    CHECK_MSG(flagged == 4, "%d schedules have v_shape", flagged);
    for (int k = 0; k < 4; k++)
        CHECK_MSG(bs_schedule_find(v_shaped[k])->v_shape, "%s", v_shaped[k]);
}

/* Several iterations: a flush and the optimizer step between them. */
static void test_iterations(bs_context *ctx)
{
    bs_config cfg;
    const bs_result *res;
    make(&cfg, "v-half", 4, 8, 2);
    if (!run(ctx, &cfg, &res))
        return;
    double one = res->makespan;
    cfg.iterations = 3;
    cfg.optimizer = 0.25;
    if (run(ctx, &cfg, &res))
        CHECK_NEAR(res->makespan, 3 * (one + 0.25), 1e-9);
}

int main(void)
{
    bs_context *ctx;
    if (bs_context_create(&ctx) != BS_OK)
        return 1;
    test_memory_and_bubble(ctx);
    test_refusals();
    test_default_v();
    test_iterations(ctx);
    bs_context_free(&ctx);
    return check_finish("v_memory");
}
