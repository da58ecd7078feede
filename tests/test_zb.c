/*
 * test_zb.c - the schedules beyond the seed: zb-h1, zb-h2, zbv, dualpipev
 * and looped-bfs. Worked examples and closed forms from
 * ../shared/reference/schedules.md, memory caps, message counts, the
 * steady state of iterations without a flush, hand-written orders for small
 * cases, and the constraints each schedule refuses with its reason.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

typedef struct run {
    bs_context *ctx;
    const bs_result *res;
    bs_error err;
    int rc;
} run;

/* bs_config_init points the costs at read-only defaults: give them storage. */
static double costs_storage[3];
static void set_costs(bs_config *cfg, double f, double b, double w)
{
    costs_storage[0] = f;
    costs_storage[1] = b;
    costs_storage[2] = w;
    cfg->forward = (bs_values){1, &costs_storage[0]};
    cfg->backward = (bs_values){1, &costs_storage[1]};
    cfg->weight = (bs_values){1, &costs_storage[2]};
}

static void simulate(run *r, bs_config *cfg)
{
    memset(&r->err, 0, sizeof r->err);
    r->res = NULL;
    r->rc = bs_context_run(r->ctx, cfg, NULL, &r->res, &r->err);
    CHECK_MSG(r->rc == BS_OK, "%s P=%d M=%d V=%d: %s", cfg->schedule, cfg->stages,
              cfg->microbatches, cfg->virtual_stages, r->err.message);
}

static void make(bs_config *cfg, const char *schedule, int p, int m, int v, double f, double b,
                 double w)
{
    bs_config_init(cfg);
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", schedule);
    cfg->stages = p;
    cfg->microbatches = m;
    cfg->virtual_stages = v;
    set_costs(cfg, f, b, w);
}

static void test_examples(run *r)
{
    bs_config cfg;
    /* schedules.md: P=4 M=8 F=B=W=1: 1F1B 33, ZB-H1 27. */
    make(&cfg, "zb-h1", 4, 8, 1, 1, 1, 1);
    simulate(r, &cfg);
    if (r->res) {
        CHECK_NEAR(r->res->makespan, 27, 1e-9);
        CHECK_NEAR(r->res->busy, 4 * 24, 1e-9);
        CHECK(r->res->formula.valid);
        CHECK_NEAR(r->res->formula.makespan, 27, 1e-9);
    }
    make(&cfg, "1f1b", 4, 8, 1, 1, 1, 1);
    simulate(r, &cfg);
    if (r->res)
        CHECK_NEAR(r->res->makespan, 33, 1e-9);
    /* ZB-H2 at the same point: no device idles inside its span; the
     * makespan keeps the fill skew (P-1)F. */
    make(&cfg, "zb-h2", 4, 8, 1, 1, 1, 1);
    simulate(r, &cfg);
    if (r->res) {
        CHECK_NEAR(r->res->span_bubble_ratio, 0, 1e-12);
        CHECK_NEAR(r->res->makespan, 27, 1e-9);
        for (int d = 0; d < 4; d++)
            CHECK_NEAR(r->res->device[d].span, 24, 1e-9);
    }
    make(&cfg, "zbv", 4, 8, 2, 1, 1, 1);
    simulate(r, &cfg);
    if (r->res) {
        CHECK_NEAR(r->res->span_bubble_ratio, 0, 1e-12);
        CHECK_NEAR(r->res->makespan, 25.5, 1e-9);
    }
}

/* ZB-H1's bubble (P-1)(F+B-W) for W <= F; its memory is 1F1B's. */
static void test_zb_h1_grid(run *r)
{
    static const double costs[][3] = {{1, 1, 1}, {1, 2, 1}, {2, 3, 1}, {1, 1, 0.5}, {3, 1, 2}};
    for (size_t c = 0; c < sizeof costs / sizeof costs[0]; c++) {
        for (int p = 2; p <= 8; p += 2) {
            for (int m = p; m <= 3 * p + 1; m += p + 1) {
                double f = costs[c][0], b = costs[c][1], w = costs[c][2];
                bs_config cfg;
                make(&cfg, "zb-h1", p, m, 1, f, b, w);
                simulate(r, &cfg);
                if (!r->res)
                    continue;
                /* schedules.md's (P-1)(F+B-W) holds for B >= W; below, the fill
                 * skew (P-1)F of the last device is the floor. */
                double bubble = f + b - w > f ? f + b - w : f;
                CHECK_NEAR(r->res->makespan, m * (f + b + w) + (p - 1) * bubble, 1e-9);
                CHECK_NEAR(r->res->formula.makespan, r->res->makespan, 1e-9);
                CHECK(r->res->peak_activations <= p + 1e-9);
                for (int d = 0; d < p; d++)
                    CHECK_NEAR(r->res->device[d].peak_activations,
                               r->res->device[d].formula_peak_activations, 1e-9);
                CHECK(r->res->messages == (uint64_t)(2 * (p - 1) * m));
            }
        }
    }
}

/* ZB-H2: zero per-device-span bubble at F=B=W, memory at most 2P-1, and
 * the makespan M T + (P-1) max(F, F+B-2W). */
static void test_zb_h2_grid(run *r)
{
    static const double costs[][3] = {{1, 1, 1}, {1, 2, 1}, {2, 3, 1}, {1, 2, 2}, {3, 1, 1}};
    for (size_t c = 0; c < sizeof costs / sizeof costs[0]; c++) {
        for (int p = 2; p <= 8; p += 3) {
            for (int m = 2 * p - 1; m <= 4 * p; m += p + 2) {
                double f = costs[c][0], b = costs[c][1], w = costs[c][2];
                bs_config cfg;
                make(&cfg, "zb-h2", p, m, 1, f, b, w);
                cfg.kept_fraction = 1.0; /* the cap holds even if W keeps it all */
                simulate(r, &cfg);
                if (!r->res)
                    continue;
                double want = m * (f + b + w) + (p - 1) * (f + b - 2 * w > f ? f + b - 2 * w : f);
                CHECK_NEAR(r->res->makespan, want, 1e-9);
                CHECK_NEAR(r->res->formula.makespan, want, 1e-9);
                if (f == b && b == w)
                    CHECK_NEAR(r->res->span_bubble_ratio, 0, 1e-12);
                CHECK(r->res->peak_activations <= 2 * p - 1 + 1e-9);
                CHECK_NEAR(r->res->peak_activations, 2 * p - 1, 1e-9);
            }
        }
    }
}

/* Iterations without a flush: the steady state is M(F+B+W) per iteration
 * at F=B=W, below the single-iteration makespan. */
static void test_no_flush(run *r)
{
    const char *names[] = {"zb-h2", "zbv"};
    for (int k = 0; k < 2; k++) {
        for (int p = 2; p <= 6; p += 2) {
            bs_config cfg;
            int m = 2 * p + 1, v = k == 1 ? 2 : 1;
            make(&cfg, names[k], p, m, v, 1, 1, 1);
            simulate(r, &cfg);
            double single = r->res ? r->res->makespan : 0;
            cfg.iterations = 5;
            simulate(r, &cfg);
            if (!r->res)
                continue;
            CHECK_NEAR(r->res->iteration_time, 3.0 * m, 1e-9);
            CHECK(r->res->iteration_time < single);
            CHECK_NEAR(r->res->makespan, single + 4 * 3.0 * m, 1e-9);
            CHECK(r->res->weight_versions == 1);
        }
    }
    /* ZB-H1 flushes: iterations add up. */
    bs_config cfg;
    make(&cfg, "zb-h1", 4, 8, 1, 1, 1, 1);
    cfg.iterations = 3;
    simulate(r, &cfg);
    if (r->res)
        CHECK_NEAR(r->res->iteration_time, 27, 1e-9);
}

/* V placements: 4(P-1) messages per micro-batch, ZB-V at most P micro-batch
 * units, DualPipeV at most P+1. */
static void test_v_shapes(run *r)
{
    for (int p = 1; p <= 8; p++) {
        for (int m = 2 * p - 1; m <= 4 * p; m += p) {
            bs_config cfg;
            make(&cfg, "zbv", p, m, 2, 1, 1, 1);
            simulate(r, &cfg);
            if (r->res) {
                CHECK(r->res->messages == (uint64_t)(4 * (p - 1) * m));
                CHECK(r->res->peak_activations <= p + 1e-9);
                CHECK_NEAR(r->res->span_bubble_ratio, 0, 1e-12);
                CHECK_NEAR(r->res->makespan, 3.0 * m + (p - 1) * 0.5, 1e-9);
                CHECK_NEAR(r->res->formula.makespan, r->res->makespan, 1e-9);
            }
            if (m < 2 * p)
                continue;
            make(&cfg, "dualpipev", p, m, 2, 1, 2, 1);
            simulate(r, &cfg);
            if (r->res) {
                CHECK(r->res->messages == (uint64_t)(4 * (p - 1) * m));
                /* 2P+1 chunks: within DualPipe's published P+1 units. */
                CHECK(r->res->peak_activations <= p + 1 + 1e-9);
                CHECK_NEAR(r->res->peak_activations, p + 0.5, 1e-9);
                CHECK(!r->res->formula.valid);
            }
        }
    }
}

/* An overlapped pair costs (F + B) * costs.overlap: DualPipeV gets faster
 * as the factor falls, and busy time counts each pair once. */
static void test_overlap_factor(run *r)
{
    double last = 1e300;
    for (int k = 10; k >= 5; k--) {
        bs_config cfg;
        make(&cfg, "dualpipev", 4, 16, 2, 1, 2, 0);
        cfg.overlap = k / 10.0;
        simulate(r, &cfg);
        if (!r->res)
            continue;
        CHECK(r->res->makespan < last || k == 10);
        last = r->res->makespan;
        if (k == 10)
            CHECK_NEAR(r->res->busy, 4 * 16 * 3.0, 1e-9);
        else
            CHECK(r->res->busy < 4 * 16 * 3.0);
    }
}

static void test_looped_bfs(run *r)
{
    for (int v = 1; v <= 3; v++) {
        for (int p = 2; p <= 6; p += 2) {
            bs_config cfg;
            int m = p + 2;
            make(&cfg, "looped-bfs", p, m, v, 1, 2, 0);
            simulate(r, &cfg);
            if (!r->res)
                continue;
            CHECK_NEAR(r->res->makespan, 3.0 * m + (p - 1) * 3.0 / v, 1e-9);
            CHECK_NEAR(r->res->formula.makespan, r->res->makespan, 1e-9);
            CHECK_NEAR(r->res->peak_activations, m, 1e-9);
            CHECK(r->res->messages == (uint64_t)(2 * (p * v - 1) * m));
        }
    }
}

/* Device d's ops as "F0.0 I0.1 (F7.4;B0.0) ..." (stage.micro-batch). */
static const char *device_order(const bs_program *prog, int d, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1] && n < size; i++) {
        const bs_op *op = &prog->ops[i];
        const char *k = "FBIWO";
        int open = (op->reserved & BS_OP_OVERLAP_NEXT) != 0;
        int close = i > prog->device_first[d] && (op[-1].reserved & BS_OP_OVERLAP_NEXT);
        n += (size_t)snprintf(buf + n, size - n, "%s%s%c%u.%u%s", n && !close ? " " : "",
                              open ? "(" : (close ? ";" : ""), k[op->kind], op->stage,
                              op->microbatch, close ? ")" : "");
    }
    return buf;
}

static void expect_order(const char *schedule, int p, int m, int v, int device, const char *want)
{
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    char got[4096];
    make(&cfg, schedule, p, m, v, 1, 1, 1);
    bs_program_init(&prog);
    int rc = bs_program_build(&prog, &cfg, &err);
    CHECK_MSG(rc == BS_OK, "%s: %s", schedule, err.message);
    if (rc == BS_OK) {
        device_order(&prog, device, got, sizeof got);
        CHECK_MSG(strcmp(got, want) == 0, "%s P=%d M=%d device %d:\n  got  %s\n  want %s", schedule,
                  p, m, device, got, want);
    }
    bs_program_free(&prog);
}

static void test_orders(void)
{
    /* ZB-H1 P=2 M=3: device 0 warms up with one forward and delays no W;
     * device 1 delays one W. */
    expect_order("zb-h1", 2, 3, 1, 0, "F0.0 F0.1 I0.0 W0.0 F0.2 I0.1 W0.1 I0.2 W0.2");
    expect_order("zb-h1", 2, 3, 1, 1, "F1.0 I1.0 F1.1 I1.1 W1.0 F1.2 I1.2 W1.1 W1.2");
    /* ZB-H2 P=2 M=3: two warm-up forwards on device 0, W lag 2 on device 1. */
    expect_order("zb-h2", 2, 3, 1, 0, "F0.0 F0.1 F0.2 I0.0 W0.0 I0.1 W0.1 I0.2 W0.2");
    expect_order("zb-h2", 2, 3, 1, 1, "F1.0 I1.0 F1.1 I1.1 F1.2 I1.2 W1.0 W1.1 W1.2");
    /* ZB-V P=2 M=3, device 1 (stages 1 and 2), by the rules in
     * schedule_zbv.c: one F1 warm-up; F2 F1; F2 I2 W2; one steady round;
     * I1 I2; I1 W1; the pending W2 and W1. */
    expect_order("zbv", 2, 3, 2, 1,
                 "F1.0 F2.0 F1.1 F2.1 I2.0 W2.0 F1.2 I1.0 W1.0 F2.2 I2.1 W2.1 I1.1 I2.2 I1.2 "
                 "W1.1 W2.2 W1.2");
    /* DualPipeV P=4 M=8, device 0: the overlapped pair (0F7;7B3) of
     * schedules.md's text-format example. */
    expect_order("dualpipev", 4, 8, 2, 0,
                 "F0.0 F0.1 F0.2 F0.3 F0.4 F0.5 F0.6 F7.0 I7.0 W7.0 F7.1 I7.1 W7.1 F7.2 I7.2 "
                 "W7.2 F7.3 (F0.7;B7.3) (F7.4;B0.0) B7.4 (F7.5;B0.1) B7.5 (F7.6;B0.2) B7.6 "
                 "(F7.7;B0.3) B7.7 I0.4 W0.4 I0.5 W0.5 I0.6 W0.6 I0.7 W0.7");
    /* Looped BFS P=2 M=2 V=2, device 1: chunk by chunk, then backwards
     * last chunk and last micro-batch first. */
    expect_order("looped-bfs", 2, 2, 2, 1, "F1.0 F1.1 F3.0 F3.1 B3.1 B3.0 B1.1 B1.0");
}

static void expect_refusal(const char *schedule, int p, int m, int v, double optimizer,
                           const char *needle)
{
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    make(&cfg, schedule, p, m, v, 1, 1, 1);
    cfg.optimizer = optimizer;
    bs_program_init(&prog);
    int rc = bs_program_build(&prog, &cfg, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, needle), "%s: rc %d: %s", schedule, rc,
              err.message);
    bs_program_free(&prog);
}

static void test_refusals(void)
{
    expect_refusal("zb-h1", 4, 8, 2, 0, "virtual_stages: zb-h1 runs one model chunk");
    expect_refusal("zb-h2", 4, 8, 1, 1, "costs.optimizer: zb-h2 runs iterations without a flush");
    expect_refusal("zbv", 4, 8, 1, 0, "needs V = 2");
    expect_refusal("zbv", 4, 8, 2, 0.5, "costs.optimizer");
    expect_refusal("dualpipev", 4, 8, 3, 0, "needs V = 2");
    expect_refusal("dualpipev", 4, 7, 2, 0, "needs M >= 2P");
}

int main(void)
{
    run r = {0};
    if (bs_context_create(&r.ctx) != BS_OK)
        return 1;
    test_examples(&r);
    test_zb_h1_grid(&r);
    test_zb_h2_grid(&r);
    test_no_flush(&r);
    test_v_shapes(&r);
    test_overlap_factor(&r);
    test_looped_bfs(&r);
    test_orders();
    test_refusals();
    bs_context_free(&r.ctx);
    return check_finish("zb");
}
