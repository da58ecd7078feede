/*
 * test_zb_auto.c - zb-auto, the searched zero-bubble order: the closed forms
 * at F = B = W (ZB-H1's bubble at limit P, no bubble inside any device's
 * span at limit 2P), a grid of random per-stage costs against zb-h1 and
 * zb-h2 and the memory limit, the zero-bubble paper's Table 5 bubble rates
 * from its Table 9 costs, iterations, and the limit key's hostile values.
 */
#include "bubblesim.h"
#include "check.h"

#include <math.h>
#include <string.h>

typedef struct run {
    bs_context *ctx;
    const bs_result *res;
    bs_error err;
    int rc;
} run;

/* bs_config_init points the costs at read-only defaults: give them storage. */
typedef struct costs {
    double f[32], b[32], w[32];
} costs;

static void make(bs_config *cfg, costs *c, const char *schedule, int p, int m, double f, double b,
                 double w)
{
    bs_config_init(cfg);
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", schedule);
    cfg->stages = p;
    cfg->microbatches = m;
    for (int j = 0; j < p; j++) {
        c->f[j] = f;
        c->b[j] = b;
        c->w[j] = w;
    }
    cfg->forward = (bs_values){(size_t)p, c->f};
    cfg->backward = (bs_values){(size_t)p, c->b};
    cfg->weight = (bs_values){(size_t)p, c->w};
}

/* Simulates cfg; the result stays in r->res until the next call. */
static int simulate(run *r, const bs_config *cfg)
{
    memset(&r->err, 0, sizeof r->err);
    r->res = NULL;
    r->rc = bs_context_run(r->ctx, cfg, NULL, &r->res, &r->err);
    CHECK_MSG(r->rc == BS_OK, "%s P=%d M=%d: %s", cfg->schedule, cfg->stages, cfg->microbatches,
              r->err.message);
    return r->rc == BS_OK;
}

/* F = B = W = 1, free network. At limit P zb-auto's makespan is ZB-H1's
 * closed form M T + (P - 1) max(F, F + B - W); at limit 2P and M >= 2P - 1
 * no device idles between its first and last op, as in ZB-H2. */
static void test_closed_forms(run *r)
{
    bs_config cfg;
    costs c;
    for (int p = 2; p <= 8; p++)
        for (int mult = 1; mult <= 4; mult++) {
            int m = mult * p;
            make(&cfg, &c, "zb-auto", p, m, 1, 1, 1);
            if (simulate(r, &cfg)) {
                CHECK_NEAR(r->res->makespan, 3.0 * m + (p - 1), 1e-9);
                CHECK(r->res->peak_activations <= p + 1e-9);
            }
            if (m < 2 * p - 1)
                continue;
            cfg.limit_activations = 2 * p;
            if (simulate(r, &cfg)) {
                CHECK_MSG(fabs(r->res->span_bubble_ratio) < 1e-12, "P=%d M=%d span bubble %g", p, m,
                          r->res->span_bubble_ratio);
                CHECK_NEAR(r->res->makespan, 3.0 * m + (p - 1), 1e-9);
                CHECK(r->res->peak_activations <= 2 * p + 1e-9);
            }
        }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
/* xorshift64*: a fixed seed, so the grid is the same on every run. */
static double uniform(double lo, double hi)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 2685821657736338717ull;
    return lo + (hi - lo) * (double)(x >> 11) / 9007199254740992.0;
}

/* Random heterogeneous per-stage costs and message times: zb-auto is never
 * slower than zb-h1 at limit P nor zb-h2 at limit 2P (makespan, one
 * iteration), never holds more than its limit, and its searched order
 * (not the fixed family) is strictly faster at 2P in most cases. */
static void test_random_grid(run *r)
{
    int cases = 0, faster_h1 = 0, faster_h2 = 0;
    for (int trial = 0; trial < 120; trial++) {
        int p = 2 + (int)uniform(0, 7);           /* 2..8 */
        int m = p + (int)uniform(0, 3.0 * p + 1); /* P..4P */
        bs_config cfg;
        costs c;
        make(&cfg, &c, "zb-h1", p, m, 1, 1, 1);
        for (int j = 0; j < p; j++) {
            c.f[j] = uniform(0.5, 2);
            c.b[j] = uniform(0.5, 2.5);
            c.w[j] = uniform(0.2, 2);
        }
        cfg.latency = uniform(0, 0.3);
        cfg.kept_fraction = uniform(0.2, 1);
        double h1, h2;
        if (!simulate(r, &cfg))
            continue;
        h1 = r->res->makespan;
        snprintf(cfg.schedule, sizeof cfg.schedule, "zb-h2");
        if (!simulate(r, &cfg))
            continue;
        h2 = r->res->makespan;
        snprintf(cfg.schedule, sizeof cfg.schedule, "zb-auto");
        for (int twice = 0; twice < 2; twice++) {
            double limit = twice ? 2.0 * p : p, bar = twice ? h2 : h1;
            cfg.limit_activations = twice ? limit : 0; /* 0: the default, P */
            if (!simulate(r, &cfg))
                continue;
            cases++;
            CHECK_MSG(r->res->makespan <= bar * (1 + 1e-12), "P=%d M=%d limit %g: %.9g > %.9g", p,
                      m, limit, r->res->makespan, bar);
            CHECK_MSG(r->res->peak_activations <= limit + 1e-9, "P=%d M=%d: peak %g > limit %g", p,
                      m, r->res->peak_activations, limit);
            if (r->res->makespan < bar * (1 - 1e-9))
                *(twice ? &faster_h2 : &faster_h1) += 1;
        }
    }
    CHECK(cases == 240);
    /* Measured, and asserted so that a regression of the search shows: with
     * uneven stages the searched order beats the fixed ones often. */
    printf("zb-auto random grid: %d cases; faster than zb-h1 (limit P) in %d of 120, than zb-h2 "
           "(limit 2P) in %d of 120\n",
           cases, faster_h1, faster_h2);
    CHECK(faster_h1 > 0);
    CHECK(faster_h2 > 0);
}

/* The engine's other timing rules, each switched on in turn over a grid of
 * random costs: costs.overhead, network.blocking,
 * network.latency_holds_link false, and node links (a device plan whose
 * boundaries cross nodes alternately, with their own latency and
 * bandwidth). zb-auto times its candidates by the same rules, so the
 * guarantees hold as on a plain network: never slower than zb-h1 at limit
 * P nor zb-h2 at limit 2P, never above the limit. */
static void test_timing_rules(run *r)
{
    int cases = 0;
    for (int rule = 0; rule < 5; rule++)
        for (int trial = 0; trial < 24; trial++) {
            int p = 2 + (int)uniform(0, 7);           /* 2..8 */
            int m = p + (int)uniform(0, 3.0 * p + 1); /* P..4P */
            bs_config cfg;
            costs c;
            make(&cfg, &c, "zb-h1", p, m, 1, 1, 1);
            for (int j = 0; j < p; j++) {
                c.f[j] = uniform(0.5, 2);
                c.b[j] = uniform(0.5, 2.5);
                c.w[j] = uniform(0.2, 2);
            }
            cfg.latency = uniform(0, 0.3);
            cfg.message_bytes = 1e6;
            cfg.bandwidth = uniform(1e9, 1e10); /* 0.1 to 1 ms per message */
            cfg.kept_fraction = uniform(0.2, 1);
            if (rule == 0 || rule == 4)
                cfg.overhead = uniform(0.01, 0.5);
            if (rule == 1 || rule == 4)
                cfg.blocking = 1;
            if (rule == 2 || rule == 4)
                cfg.latency_holds_link = 0;
            if (rule == 3 || rule == 4) {
                cfg.device_plan = bs_device_plan_create(p, p);
                if (!cfg.device_plan)
                    return;
                for (int j = 0; j + 1 < p; j++)
                    cfg.device_plan->crosses_node[j] = j % 2;
                cfg.device_plan->node_latency = uniform(0.2, 1);
                cfg.device_plan->node_bandwidth = 1e9;
            }
            double h1 = 0, h2 = 0;
            int ok = simulate(r, &cfg);
            h1 = ok ? r->res->makespan : 0;
            snprintf(cfg.schedule, sizeof cfg.schedule, "zb-h2");
            ok = ok && simulate(r, &cfg);
            h2 = ok ? r->res->makespan : 0;
            snprintf(cfg.schedule, sizeof cfg.schedule, "zb-auto");
            for (int twice = 0; twice < 2 && ok; twice++) {
                double limit = twice ? 2.0 * p : p, bar = twice ? h2 : h1;
                cfg.limit_activations = twice ? limit : 0;
                if (!simulate(r, &cfg))
                    continue;
                cases++;
                CHECK_MSG(r->res->makespan <= bar * (1 + 1e-12),
                          "rule %d P=%d M=%d limit %g: %.9g > %.9g", rule, p, m, limit,
                          r->res->makespan, bar);
                CHECK_MSG(r->res->peak_activations <= limit + 1e-9,
                          "rule %d P=%d M=%d: peak %g > limit %g", rule, p, m,
                          r->res->peak_activations, limit);
            }
            bs_device_plan_free(cfg.device_plan);
        }
    CHECK(cases == 5 * 24 * 2);
}

/* The zero-bubble paper (Qi et al., ICLR 2024): Table 9's profiled TF, TB,
 * TW, Tcomm (ms) and Table 5's bubble rates, (cost - m(TF+TB+TW)) / cost
 * with cost the longest stage's execution time: our span_bubble_ratio.
 * The share of a micro-batch's activations W keeps is Table 1's
 * 32h / (34h + 5as) with Table 3's h, a and s = 1024. */
typedef struct paper_row {
    const char *model;
    int p, m;
    double f, b, w, comm, kept;
    double zb_h1, zb_h2, zb_1p, zb_2p;
} paper_row;

static const paper_row paper[] = {
    {"1.5B", 8, 24, 18.522, 18.086, 9.337, 0.601, 0.3664, 0.1585, 0.1083, 0.1585, 0.0433},
    {"1.5B", 8, 32, 18.513, 18.086, 9.331, 0.626, 0.3664, 0.1242, 0.0837, 0.1242, 0.0039},
    {"1.5B", 8, 64, 18.546, 18.097, 9.321, 0.762, 0.3664, 0.0674, 0.0444, 0.0674, 0.0026},
    {"6.2B", 8, 24, 29.718, 29.444, 19.927, 0.527, 0.4324, 0.1323, 0.0698, 0.1323, 0.0029},
    {"6.2B", 8, 32, 29.802, 29.428, 19.530, 0.577, 0.4324, 0.1045, 0.0559, 0.1045, 0.0022},
    {"6.2B", 8, 64, 29.935, 29.621, 19.388, 0.535, 0.4324, 0.0554, 0.0294, 0.0554, 0.0010},
    {"14.6B", 16, 48, 11.347, 11.248, 8.132, 0.377, 0.4324, 0.1397, 0.0672, 0.1397, 0.0066},
    {"14.6B", 16, 64, 11.307, 11.254, 8.101, 0.379, 0.4324, 0.1088, 0.0516, 0.1088, 0.0054},
    {"14.6B", 16, 128, 11.325, 11.308, 8.109, 0.378, 0.4324, 0.0576, 0.0266, 0.0576, 0.0028},
    {"28.3B", 32, 96, 10.419, 10.207, 7.715, 0.408, 0.4324, 0.1421, 0.0641, 0.1421, 0.0038},
    {"28.3B", 32, 128, 10.408, 10.204, 7.703, 0.408, 0.4324, 0.1106, 0.0490, 0.1106, 0.0029},
    {"28.3B", 32, 256, 10.402, 10.248, 7.698, 0.460, 0.4324, 0.0594, 0.0257, 0.0594, 0.0018},
};

static double span_bubble(run *r, const paper_row *row, const char *schedule, double limit)
{
    bs_config cfg;
    costs c;
    make(&cfg, &c, schedule, row->p, row->m, row->f, row->b, row->w);
    cfg.latency = row->comm;
    cfg.kept_fraction = row->kept;
    cfg.limit_activations = limit;
    return simulate(r, &cfg) ? r->res->span_bubble_ratio : NAN;
}

static void test_paper_table5(run *r)
{
    /* The paper prints four decimals: agreement means within rounding. */
    const double tol = 0.00005 + 1e-9;
    for (size_t i = 0; i < sizeof paper / sizeof paper[0]; i++) {
        const paper_row *row = &paper[i];
        double h1 = span_bubble(r, row, "zb-h1", 0), h2 = span_bubble(r, row, "zb-h2", 0);
        double p1 = span_bubble(r, row, "zb-auto", row->p);
        double p2 = span_bubble(r, row, "zb-auto", 2.0 * row->p);
        CHECK_MSG(fabs(h1 - row->zb_h1) <= tol, "%s m=%d ZB-H1 %.4f, paper %.4f", row->model,
                  row->m, h1, row->zb_h1);
        CHECK_MSG(fabs(h2 - row->zb_h2) <= tol, "%s m=%d ZB-H2 %.4f, paper %.4f", row->model,
                  row->m, h2, row->zb_h2);
        CHECK_MSG(fabs(p1 - row->zb_1p) <= tol, "%s m=%d ZB-1p %.4f, paper %.4f", row->model,
                  row->m, p1, row->zb_1p);
        /* Without the paper's ILP refinement one row stays above it
         * (28.3B, m = 256: 0.0033 against 0.0018, docs/schedules.md). */
        if (row->p == 32 && row->m == 256)
            CHECK_MSG(p2 < 0.004 && p2 < h2, "%s m=%d ZB-2p %.4f", row->model, row->m, p2);
        else
            CHECK_MSG(fabs(p2 - row->zb_2p) <= tol, "%s m=%d ZB-2p %.4f, paper %.4f", row->model,
                      row->m, p2, row->zb_2p);
    }
}

/* Several iterations with an optimizer step: each iteration repeats the
 * searched order behind a flush, so the time per iteration is one
 * iteration's makespan plus the step. */
static void test_iterations(run *r)
{
    bs_config cfg;
    costs c;
    make(&cfg, &c, "zb-auto", 4, 12, 1, 1.5, 0.7);
    cfg.latency = 0.05;
    if (!simulate(r, &cfg))
        return;
    double one = r->res->makespan;
    cfg.iterations = 3;
    cfg.optimizer = 0.5;
    if (simulate(r, &cfg))
        CHECK_NEAR(r->res->makespan, 3 * (one + 0.5), 1e-9);
    /* One stage: F I W per micro-batch, no bubble. */
    make(&cfg, &c, "zb-auto", 1, 5, 1, 2, 3);
    if (simulate(r, &cfg)) {
        CHECK_NEAR(r->res->makespan, 30, 1e-12);
        CHECK(r->res->peak_activations <= 1 + 1e-12);
    }
    /* The smallest limit, one activation per device, still has an order. */
    make(&cfg, &c, "zb-auto", 4, 8, 1, 1, 1);
    cfg.limit_activations = 1;
    if (simulate(r, &cfg))
        CHECK(r->res->peak_activations <= 1 + 1e-12);
}

/* memory.limit_activations is untrusted input: bad values are refused with
 * the key's name, a limit below one activation by zb-auto's check. */
static void test_hostile_limit(void)
{
    static const char *bad[] = {"\"\"", "\"8\"", "true", "[]", "{}", "-1", "1e300", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bs_config cfg;
        bs_error err = {{0}};
        bs_override o = {"memory.limit_activations", bad[i]};
        bs_config_init(&cfg);
        int rc = bs_config_parse(&cfg, "{\"schedule\": \"zb-auto\"}", "t.json", &o, 1, &err);
        CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "memory.limit_activations"),
                  "value %s: rc %d: %s", bad[i], rc, err.message);
        bs_config_free(&cfg);
    }
    /* NaN cannot be written in JSON; the text is taken as a string. */
    bs_config cfg;
    bs_error err = {{0}};
    bs_override o = {"memory.limit_activations", "NaN"};
    bs_config_init(&cfg);
    CHECK(bs_config_parse(&cfg, "{}", "t.json", &o, 1, &err) == BS_ERR_INVALID);
    bs_config_free(&cfg);

    bs_config_init(&cfg);
    o.value = "0.5";
    CHECK(bs_config_parse(&cfg, "{\"schedule\": \"zb-auto\"}", "t.json", &o, 1, &err) == BS_OK);
    bs_program prog;
    bs_program_init(&prog);
    int rc = bs_program_build(&prog, &cfg, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "memory.limit_activations: zb-auto"),
              "rc %d: %s", rc, err.message);
    cfg.virtual_stages = 2;
    rc = bs_program_build(&prog, &cfg, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "virtual_stages"), "rc %d: %s", rc,
              err.message);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

int main(void)
{
    run r = {0};
    if (bs_context_create(&r.ctx) != BS_OK)
        return 1;
    test_closed_forms(&r);
    test_random_grid(&r);
    test_timing_rules(&r);
    test_paper_table5(&r);
    test_iterations(&r);
    test_hostile_limit();
    bs_context_free(&r.ctx);
    return check_finish("zb_auto");
}
