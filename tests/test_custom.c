/*
 * test_custom.c - user-written schedules: the order text (inline and
 * PyTorch pipelining's format), placements, overlapped pairs, the errors
 * that name device, position and action, deadlocks with their cycle, and
 * export / import round trips of every built-in schedule.
 */
#include "bubblesim.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static double costs_storage[3];

static void make(bs_config *cfg, const char *schedule, int p, int m, int v, double f, double b,
                 double w)
{
    bs_config_init(cfg);
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", schedule);
    cfg->stages = p;
    cfg->microbatches = m;
    cfg->virtual_stages = v;
    costs_storage[0] = f;
    costs_storage[1] = b;
    costs_storage[2] = w;
    cfg->forward = (bs_values){1, &costs_storage[0]};
    cfg->backward = (bs_values){1, &costs_storage[1]};
    cfg->weight = (bs_values){1, &costs_storage[2]};
}

/* Parses a JSON config text; returns the status, message in err. */
static int parse(bs_config *cfg, const char *json, bs_error *err)
{
    bs_config_init(cfg);
    memset(err, 0, sizeof *err);
    return bs_config_parse(cfg, json, "test.json", NULL, 0, err);
}

static int run_json(bs_context *ctx, const char *json, const bs_result **res, bs_error *err)
{
    bs_config cfg;
    int rc = parse(&cfg, json, err);
    if (rc == BS_OK)
        rc = bs_context_run(ctx, &cfg, NULL, res, err);
    bs_config_free(&cfg);
    return rc;
}

static void expect_error(bs_context *ctx, const char *json, int code, const char *needle)
{
    const bs_result *res;
    bs_error err;
    int rc = run_json(ctx, json, &res, &err);
    CHECK_MSG(rc == code && strstr(err.message, needle), "%s\n  rc %d, want %d: %s\n  want: %s",
              json, rc, code, err.message, needle);
}

/* schedules.md's small case: 2 ranks, M=2; it is 1F1B's order. */
static void test_small_case(bs_context *ctx)
{
    const bs_result *res;
    bs_error err;
    int rc = run_json(ctx,
                      "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 2,"
                      " \"order\": [[\"0F0\", \"0F1\", \"\", \"0B0\", \"\", \"0B1\"],"
                      "             [\"\", \"1F0\", \"1B0\", \"1F1\", \"1B1\", \"\"]]}",
                      &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    double custom = rc == BS_OK ? res->makespan : -1;
    rc = run_json(ctx, "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2}", &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK) {
        CHECK_NEAR(custom, res->makespan, 1e-12);
        CHECK_NEAR(custom, 9, 1e-12); /* (M + P - 1)(F + B) with F=1, B=2 */
    }
}

/* An overlapped pair on the last device: (F + B) * overlap, counted once
 * as busy time. F=1, B=2: device 1 runs F0 [1,2], then the pair from 2. */
static void test_overlap(bs_context *ctx)
{
    static const char *json =
        "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 2,"
        " \"costs\": {\"overlap\": %s},"
        " \"order\": [[\"0F0\", \"0F1\", \"0B0\", \"0B1\"], [\"1F0\", \"(1F1;1B0)\", \"1B1\"]]}";
    char text[512];
    const bs_result *res;
    bs_error err;
    snprintf(text, sizeof text, json, "1");
    int rc = run_json(ctx, text, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK) {
        CHECK_NEAR(res->makespan, 9, 1e-12);
        CHECK_NEAR(res->device[1].busy, 6, 1e-12);
    }
    snprintf(text, sizeof text, json, "0.5");
    rc = run_json(ctx, text, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK) {
        CHECK_NEAR(res->makespan, 7.5, 1e-12);
        CHECK_NEAR(res->device[1].busy, 4.5, 1e-12);
        const bs_timeline *tl = res->timeline;
        /* Both ops of the pair share start and end. */
        size_t first = tl->program->device_first[1] + 1;
        CHECK_NEAR(tl->times[first].start, 2, 1e-12);
        CHECK_NEAR(tl->times[first + 1].start, 2, 1e-12);
        CHECK_NEAR(tl->times[first].end, 3.5, 1e-12);
        CHECK_NEAR(tl->times[first + 1].end, 3.5, 1e-12);
    }
}

/* An order with PyTorch 2.15's communication actions (as its compute_comms
 * lowering writes them) runs exactly like the same order without them. */
static void test_comms_actions(bs_context *ctx)
{
    const char *plain = "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 2, "
                        "\"network\": {\"latency\": 0.25}, \"order\": [[\"0F0\", \"0F1\", "
                        "\"0B0\", \"0B1\"], [\"1F0\", \"1B0\", \"1F1\", \"1B1\"]]}";
    const char *comms =
        "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 2, "
        "\"network\": {\"latency\": 0.25}, \"order\": [[\"0UNSHARD\", \"0F0\", \"0SEND_F0\", "
        "\"0F1\", \"0SEND_F1\", \"0RECV_B0\", \"0B0\", \"0WAIT_SEND_F0\", \"0RECV_B1\", "
        "\"0B1\", \"0WAIT_SEND_F1\", \"0REDUCE_GRAD\", \"0WAIT_REDUCE_GRAD\", \"0RESHARD\"], "
        "[\"1RECV_F0\", \"1F0\", \"1B0\", \"1SEND_B0\", \"1RECV_F1\", \"1F1\", \"1B1\", "
        "\"1SEND_B1\", \"1WAIT_SEND_B0\", \"1WAIT_SEND_B1\"]]}";
    const bs_result *res;
    bs_error err;
    int rc = run_json(ctx, plain, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    double want = rc == BS_OK ? res->makespan : -1;
    uint64_t messages = rc == BS_OK ? res->messages : 0;
    rc = run_json(ctx, comms, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK) {
        CHECK_NEAR(res->makespan, want, 1e-12);
        CHECK(res->messages == messages);
    }
}

static void test_errors(bs_context *ctx)
{
    const char *head = "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 2, ";
    char text[1024];
#define ORDER(o) (snprintf(text, sizeof text, "%s\"order\": %s}", head, o), text)
    expect_error(ctx, ORDER("[[\"0F0\", \"0F1\", \"0X0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "order: device 0, position 2, action \"0X0\": unknown action X; PyTorch 2.15 "
                 "knows F, B, I, W, SEND_F");
    expect_error(ctx, ORDER("[[\"0F0\", \"\", \"1F1\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "device 0, position 2, action \"1F1\": stage 1 is placed on device 1");
    expect_error(ctx, ORDER("[[\"0F0\", \"0B1\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "device 0, position 1, action \"0B1\": backward before the forward");
    expect_error(ctx, ORDER("[[\"0F0\", \"0W0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "action \"0W0\": weight gradient before the input gradient");
    expect_error(ctx, ORDER("[[\"0F0\", \"0F0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "position 1, action \"0F0\": second forward");
    expect_error(ctx, ORDER("[[\"0F0\", \"0F5\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "action \"0F5\": micro-batch 5 does not exist (microbatches = 2)");
    expect_error(ctx, ORDER("[[\"0F0\"]]"), BS_ERR_INVALID,
                 "order: has 1 rows of actions; expected one per device, stages = 2");
    expect_error(ctx, ORDER("[[\"(0F0;0B0)\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "an overlapped pair cannot hold the forward and backward of one stage");
    expect_error(ctx, ORDER("[[\"(0F0;0F1)\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "one forward and one backward");
    expect_error(ctx, ORDER("[[\"0F0\", 3], [\"1F0\"]]"), BS_ERR_INVALID,
                 "test.json: order[0][1]: expected an action string");
    /* PyTorch 2.15's communication actions: read, checked against the
     * compute order, then left to the engine's own message model. */
    expect_error(ctx, ORDER("[[\"0F0\", \"0WAIT_SENDX0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "action \"0WAIT_SENDX0\": unknown action WAIT_SENDX");
    expect_error(ctx, ORDER("[[\"0SEND_F0\", \"0F0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "position 0, action \"0SEND_F0\": SEND_F before the forward (F)");
    expect_error(ctx, ORDER("[[\"0F0\", \"0SEND_F\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "expected a micro-batch number after a send, receive or wait-send action");
    expect_error(ctx, ORDER("[[\"0F0\", \"0WAIT_SEND_F0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "WAIT_SEND_F without a SEND_F of this stage and micro-batch before it");
    expect_error(ctx, ORDER("[[\"0RECV_F0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "the first stage receives no activation");
    expect_error(ctx, ORDER("[[\"0F0\"], [\"1F0\", \"1RECV_F0\"]]"), BS_ERR_INVALID,
                 "RECV_F after the forward (F) that needs it");
    expect_error(ctx, ORDER("[[\"0F0\"], [\"1F0\", \"1SEND_F0\"]]"), BS_ERR_INVALID,
                 "the last stage sends no activation");
    expect_error(ctx, ORDER("[[\"1SEND_F0\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "stage 1 is placed on device 1, not on this device");
    expect_error(ctx, ORDER("[[\"7UNSHARD\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "stage 7 does not exist");
    expect_error(ctx, ORDER("[[\"0F0\", \"0SEND_F9\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "micro-batch 9 does not exist");
    expect_error(ctx, ORDER("[[\"0WAIT_REDUCE_GRAD\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "WAIT_REDUCE_GRAD without a REDUCE_GRAD of this stage before it");
    expect_error(ctx, ORDER("[[\"0F0\", \"0REDUCE_GRAD\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "device 0: REDUCE_GRAD of stage 0 has no WAIT_REDUCE_GRAD after it");
    /* Once a file waits for sends (PyTorch 2.15), it must wait for all. */
    expect_error(ctx,
                 ORDER("[[\"0F0\", \"0SEND_F0\", \"0F1\", \"0B0\", \"0B1\"], [\"1F0\", \"1B0\", "
                       "\"1SEND_B0\", \"1WAIT_SEND_B0\", \"1F1\", \"1B1\"]]"),
                 BS_ERR_INVALID, "device 0: 0SEND_F0 has no WAIT_SEND_F after it");
    expect_error(ctx, ORDER("[[\"(0F0;0SEND_F0)\"], [\"1F0\"]]"), BS_ERR_INVALID,
                 "an overlapped pair holds two compute actions");
    /* A missing op comes from the validator. */
    expect_error(ctx, ORDER("[[\"0F0\", \"0F1\", \"0B0\", \"0B1\"], [\"1F0\", \"1B0\", \"1F1\"]]"),
                 BS_ERR_INVALID, "stage 1, micro-batch 1: no backward op on device 1");
    /* A cross dependency: device 0 waits for B(s1,m0), which device 1 runs
     * only after F(s1,m1), which waits for device 0's F(s0,m1). */
    expect_error(ctx,
                 ORDER("[[\"0F0\", \"0B0\", \"0F1\", \"0B1\"], [\"1F1\", \"1B1\", \"1F0\", "
                       "\"1B0\"]]"),
                 BS_ERR_DEADLOCK,
                 "cycle: B(s0,m0) on device 0 -> F(s1,m1) on device 1 -> B(s0,m0) on device 0");
    /* Placement. */
    expect_error(ctx, "{\"schedule\": \"custom\", \"placement\": \"v\", \"order\": [[\"0F0\"]]}",
                 BS_ERR_INVALID, "placement: \"v\" puts chunks s and 2P-1-s on device s");
    expect_error(ctx,
                 "{\"schedule\": \"custom\", \"stages\": 2, \"placement\": [0, 2], \"order\": "
                 "[[\"0F0\"], [\"1F0\"]]}",
                 BS_ERR_INVALID, "placement[1]: device 2 does not exist");
    expect_error(ctx, "{\"schedule\": \"1f1b\", \"placement\": \"v\"}", BS_ERR_INVALID,
                 "placement: only the custom schedule takes a placement");
    expect_error(ctx, "{\"schedule\": \"custom\"}", BS_ERR_INVALID,
                 "order: the custom schedule needs an order");
    expect_error(ctx, "{\"schedule\": \"custom\", \"order\": [[\"0F0\"]], \"order_file\": \"x\"}",
                 BS_ERR_INVALID, "order_file: give either order or order_file, not both");
#undef ORDER
}

/* An explicit placement that puts both stages on device 1 of 2. */
static void test_explicit_placement(bs_context *ctx)
{
    const bs_result *res;
    bs_error err;
    int rc = run_json(ctx,
                      "{\"schedule\": \"custom\", \"stages\": 2, \"virtual_stages\": 2,"
                      " \"microbatches\": 1, \"placement\": [0, 1, 1, 0],"
                      " \"order\": [[\"0F0\", \"3F0\", \"3B0\", \"0B0\"],"
                      "             [\"1F0\", \"2F0\", \"2B0\", \"1B0\"]]}",
                      &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK) {
        CHECK(res->messages == 4); /* 0->1, 2->3, and back; 1->2 and 3 -> 0 stay local */
        CHECK_NEAR(res->makespan, 4 * 0.5 + 4 * 1.0, 1e-12);
    }
}

/* Every built-in schedule, written as text and read back as custom, gives
 * the same simulation. */
static void test_round_trips(bs_context *ctx)
{
    static const struct {
        const char *name;
        int v, placement;
    } all[] = {{"gpipe", 1, BS_PLACEMENT_LOOPED},     {"1f1b", 1, BS_PLACEMENT_LOOPED},
               {"pipedream", 1, BS_PLACEMENT_LOOPED}, {"interleaved", 2, BS_PLACEMENT_LOOPED},
               {"forward", 1, BS_PLACEMENT_LOOPED},   {"zb-h1", 1, BS_PLACEMENT_LOOPED},
               {"zb-h2", 1, BS_PLACEMENT_LOOPED},     {"zbv", 2, BS_PLACEMENT_V},
               {"dualpipev", 2, BS_PLACEMENT_V},      {"looped-bfs", 3, BS_PLACEMENT_LOOPED}};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        for (int iterations = 1; iterations <= 2; iterations++) {
            bs_config cfg;
            bs_program prog;
            bs_error err = {{0}};
            make(&cfg, all[k].name, 4, 8, all[k].v, 1.5, 2, 0.75);
            cfg.latency = 0.25;
            cfg.overlap = 0.8;
            bs_program_init(&prog);
            int rc = bs_program_build(&prog, &cfg, &err);
            CHECK_MSG(rc == BS_OK, "%s: %s", all[k].name, err.message);
            int updates = (prog.flags & BS_PROGRAM_NO_FLUSH)              ? BS_UPDATES_NO_FLUSH
                          : (prog.flags & BS_PROGRAM_UPDATE_PER_BACKWARD) ? BS_UPDATES_PER_BACKWARD
                                                                          : BS_UPDATES_FLUSH;
            /* PipeDream's iterations are one stream: the text holds one. */
            if (rc != BS_OK || (iterations > 1 && updates == BS_UPDATES_PER_BACKWARD)) {
                bs_program_free(&prog);
                continue;
            }
            cfg.iterations = iterations;
            char *text = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&text, &len);
            CHECK(mem != NULL);
            if (!mem) {
                bs_program_free(&prog);
                continue;
            }
            rc = bs_order_write(mem, &prog, (uint32_t)cfg.microbatches, &err);
            fclose(mem);
            CHECK(rc == BS_OK);
            bs_program_free(&prog);

            const bs_result *res;
            rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
            CHECK_MSG(rc == BS_OK, "%s: %s", all[k].name, err.message);
            bs_result want = rc == BS_OK ? *res : (bs_result){0};
            double want_peak = want.peak_activations, want_span = want.span_bubble_ratio;
            int want_versions = want.weight_versions, want_stale = want.max_staleness;

            bs_config custom;
            make(&custom, "custom", 4, 8, all[k].v, 1.5, 2, 0.75);
            custom.latency = 0.25;
            custom.overlap = 0.8;
            custom.iterations = iterations;
            custom.placement = all[k].placement;
            custom.updates = updates;
            custom.order = text;
            snprintf(custom.order_source, sizeof custom.order_source, "%s.txt", all[k].name);
            rc = bs_context_run(ctx, &custom, NULL, &res, &err);
            CHECK_MSG(rc == BS_OK, "%s as custom: %s", all[k].name, err.message);
            if (rc == BS_OK) {
                CHECK_MSG(res->makespan == want.makespan, "%s: makespan %g vs %g", all[k].name,
                          res->makespan, want.makespan);
                CHECK(res->busy == want.busy);
                CHECK(res->messages == want.messages);
                CHECK(res->peak_activations == want_peak);
                CHECK(res->span_bubble_ratio == want_span);
                CHECK(res->iteration_time == want.iteration_time);
                CHECK(res->weight_versions == want_versions);
                CHECK(res->max_staleness == want_stale);
            }
            custom.order = NULL;
            free(text);
        }
    }
}

/* A copied config owns its own order and placement. */
static void test_copy(void)
{
    bs_config a, b;
    bs_error err;
    int rc = parse(&a,
                   "{\"schedule\": \"custom\", \"stages\": 2, \"virtual_stages\": 2,"
                   " \"placement\": [0, 1, 1, 0], \"order\": [[\"0F0\"], [\"1F0\"]]}",
                   &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    bs_config_init(&b);
    CHECK(bs_config_copy(&b, &a, &err) == BS_OK);
    CHECK(b.order && a.order && b.order != a.order && strcmp(b.order, a.order) == 0);
    CHECK(b.placement_map && b.placement_map != a.placement_map && b.placement_count == 4 &&
          b.placement_map[2] == 1);
    CHECK(strcmp(b.order, "0F0\n1F0\n") == 0);
    bs_config_free(&a);
    CHECK(b.placement_map[3] == 0);
    bs_config_free(&b);
}

int main(void)
{
    test_copy();
    bs_context *ctx = NULL;
    if (bs_context_create(&ctx) != BS_OK)
        return 1;
    test_small_case(ctx);
    test_overlap(ctx);
    test_comms_actions(ctx);
    test_errors(ctx);
    test_explicit_placement(ctx);
    test_round_trips(ctx);
    bs_context_free(&ctx);
    return check_finish("custom");
}
