/*
 * test_measure.c - the trace reader, calibration and comparison
 * (sim/trace_read.c, sim/calibrate.c, sim/compare.c) on the fixture traces
 * of tests/fixtures/pytorch (worked out by hand in make_fixtures.py) and on
 * hostile traces.
 *
 * usage: test_measure FIXTURE_DIR
 */
#include "bubblesim_measure.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char fixture_dir[2048];

static bs_trace *load_fixture(const char *name)
{
    char path[4096];
    bs_trace *tr = NULL;
    bs_error err = {{0}};
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    int rc = bs_trace_load(&tr, path, &err);
    if (rc != BS_OK)
        fprintf(stderr, "loading %s: %s\n", path, err.message);
    CHECK(rc == BS_OK);
    return tr;
}

static void test_reader(void)
{
    bs_trace *tr = load_fixture("1f1b-2rank.json");
    if (!tr)
        return;
    CHECK(tr->ranks == 2 && tr->stages == 2 && tr->microbatches == 2 && tr->steps == 2);
    CHECK(tr->ops_per_step == 8);
    CHECK(tr->rank_first[0] == 0 && tr->rank_first[1] == 4 && tr->rank_first[2] == 8);
    /* WAIT_SEND_F, WAIT_SEND_B and WAIT_REDUCE_GRAD are waits, not W ops:
     * only F and B ops come through, and their waits land in wait_before. */
    for (size_t i = 0; i < tr->ops_per_step * 2; i++)
        CHECK(tr->ops[i].kind == BS_OP_FORWARD || tr->ops[i].kind == BS_OP_BACKWARD);
    CHECK(tr->comm_actions == 18);
    const bs_trace_op *b0 = &tr->ops[2]; /* rank 0: 0F0 0F1 0B0 0B1 */
    CHECK(b0->stage == 0 && b0->microbatch == 0 && b0->kind == BS_OP_BACKWARD);
    CHECK_NEAR(b0->start, 12.0, 1e-9);
    CHECK_NEAR(b0->end, 16.0, 1e-9);
    CHECK_NEAR(b0->wait_before, 6.5, 1e-9); /* 3.4 in 0WAIT_SEND_F0 + 3.1 in 0B0 */
    /* Step 1 is step 0 shifted by 1000 ms: rebased to its own origin. */
    const bs_trace_op *b0s1 = &tr->ops[tr->ops_per_step + 2];
    CHECK_NEAR(b0s1->start, 12.0, 1e-9);
    CHECK_NEAR(tr->rank_start[0], 0.0, 1e-9);
    CHECK_NEAR(tr->rank_start[3], 0.0, 1e-9);
    CHECK_NEAR(tr->ops[4].wait_before, 3.5, 1e-9); /* 1F0 */
    CHECK(strcmp(tr->workload, "sleep") == 0);

    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    bs_error err = {{0}};
    CHECK(bs_trace_write_order(mem, tr, &err) == BS_OK);
    fclose(mem);
    CHECK(text && strcmp(text, "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n") == 0);
    free(text);
    bs_trace_free(&tr);
    CHECK(tr == NULL);
    bs_trace_free(NULL);
}

/* Calibration recovers the hand-made costs exactly, and the engine then
 * predicts the measured makespan: makespan_error 0. In a fixture whose
 * steps are the same step with every time scaled, calibration takes the
 * mean over steps, so every cost comes out times the mean scale, and so
 * does the whole prediction (the median step keeps scale 1). */
static void test_calibrate_and_compare(const char *name, int steps, double spread,
                                       double mean_scale)
{
    const double k = mean_scale;
    bs_trace *tr = load_fixture(name);
    if (!tr)
        return;
    bs_calibration *cal = NULL;
    bs_error err = {{0}};
    CHECK(bs_calibrate(&cal, tr, &err) == BS_OK);
    if (!cal) {
        bs_trace_free(&tr);
        return;
    }
    CHECK_NEAR(cal->overhead, 0.5 * k, 1e-9);
    CHECK_NEAR(cal->latency, 1.0 * k, 1e-9);
    /* Every receive from the other rank: 1F0, 1F1, 0B0, 0B1 per step. */
    CHECK(cal->latency_samples == (size_t)(4 * steps));
    for (int s = 0; s < 2; s++) {
        CHECK_NEAR(cal->forward_op[s], 2.0 * k, 1e-9);
        CHECK_NEAR(cal->forward[s], 2.5 * k, 1e-9);
        CHECK_NEAR(cal->backward_op[s], 4.0 * k, 1e-9);
        CHECK_NEAR(cal->backward[s], 4.5 * k, 1e-9);
        CHECK_NEAR(cal->weight[s], 0.0, 1e-12);
        CHECK(cal->placement[s] == s);
    }

    /* The config it writes parses and runs as given. */
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    CHECK(bs_calibration_write_config(mem, cal, &err) == BS_OK);
    fclose(mem);
    bs_config cfg;
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, text, "calibrated", NULL, 0, &err);
    if (rc != BS_OK)
        fprintf(stderr, "calibrated config: %s\n%s\n", err.message, text);
    CHECK(rc == BS_OK);
    CHECK(strcmp(cfg.schedule, "custom") == 0 && cfg.stages == 2 && cfg.microbatches == 2);
    CHECK_NEAR(cfg.latency, 1.0 * k, 1e-9);

    bs_comparison *cmp = NULL;
    CHECK(bs_compare(&cmp, &cfg, tr, &err) == BS_OK);
    if (cmp) {
        CHECK_NEAR(cmp->predicted_makespan, 23.0 * k, 1e-6);
        CHECK_NEAR(cmp->measured_makespan, 23.0, 1e-9);
        CHECK_NEAR(cmp->makespan_error, k - 1.0, 1e-6);
        CHECK_NEAR(cmp->noise_spread, spread, 1e-9);
        CHECK(cmp->steps == steps && cmp->op_count == 8);
        /* Ends line up exactly (at scale 1); durations differ by the
         * folded overhead: F 2.5k - 2, B 4.5k - 4, four of each. */
        CHECK_NEAR(cmp->op_end_error_worst, 23.0 * (k - 1.0), 1e-6);
        CHECK_NEAR(cmp->op_duration_error_median, 3.5 * k - 3.0, 1e-6);
        /* Measured busy is the compute alone: 2 + 2 + 4 + 4 per rank. */
        CHECK_NEAR(cmp->measured_busy[0], 12.0, 1e-9);
        CHECK_NEAR(cmp->measured_idle[0], 11.0, 1e-9);
        CHECK_NEAR(cmp->predicted_busy[1], 14.0 * k, 1e-6);
        if (steps == 5) {
            /* Step makespans 23, 23, 27.6, 23, 20.7: the worst step error
             * is 23k / 27.6 - 1. */
            CHECK_NEAR(cmp->step_error_worst, 23.0 * k / 27.6 - 1.0, 1e-6);
            CHECK_NEAR(cmp->measured_min, 20.7, 1e-9);
            CHECK_NEAR(cmp->measured_max, 27.6, 1e-9);
        }
        char *out = NULL;
        size_t out_size = 0;
        mem = open_memstream(&out, &out_size);
        CHECK(bs_comparison_write_json(mem, cmp, 2.0, &err) == BS_OK);
        CHECK(bs_comparison_write_table(mem, cmp, 2.0, &err) == BS_OK);
        fclose(mem);
        CHECK(out && strstr(out, k == 1.0 ? "\"makespan_error\": 0," : "+2.00%") &&
              strstr(out, "within"));
        free(out);
    }
    bs_comparison_free(&cmp);
    CHECK(cmp == NULL);

    /* A config that does not describe the run is refused with the reason. */
    bs_config other;
    bs_config_init(&other);
    other.stages = 4;
    CHECK(bs_compare(&cmp, &other, tr, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "P=4") != NULL);
    other.stages = 2;
    other.microbatches = 2;
    strcpy(other.schedule, "gpipe"); /* same ops, other order: compared */
    CHECK(bs_compare(&cmp, &other, tr, &err) == BS_OK);
    bs_comparison_free(&cmp);
    strcpy(other.schedule, "zb-h1"); /* I and W ops: not what the trace ran */
    other.weight.count = 1;
    CHECK(bs_compare(&cmp, &other, tr, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "does not have") != NULL);
    other.iterations = 2;
    strcpy(other.schedule, "1f1b");
    CHECK(bs_compare(&cmp, &other, tr, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "iterations") != NULL);
    bs_config_free(&other);

    bs_config_free(&cfg);
    free(text);
    bs_calibration_free(&cal);
    CHECK(cal == NULL);
    bs_trace_free(&tr);
}

/* A minimal valid trace with one replaceable part, for hostile variants. */
static const char base_head[] =
    "{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 2, \"stages\": 2, "
    "\"microbatches\": 1, \"placement\": [0, 1], \"steps\": [{\"ranks\": [";
static const char rank0_ok[] =
    "{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, \"end\": 1}, "
    "{\"action\": \"0SEND_F0\", \"start\": 1, \"end\": 1.1}, "
    "{\"action\": \"0B0\", \"start\": 1.1, \"end\": 5, \"wait\": 2}]}";
static const char rank1_ok[] =
    "{\"rank\": 1, \"actions\": [{\"action\": \"1F0\", \"start\": 0, \"end\": 2.5, \"wait\": "
    "1.2}, {\"action\": \"1B0\", \"start\": 2.5, \"end\": 3}]}";

static void expect_bad(const char *text, const char *needle)
{
    bs_trace *tr = NULL;
    bs_error err = {{0}};
    int rc = bs_trace_parse(&tr, text, "t.json", &err);
    CHECK_MSG(rc == BS_ERR_INVALID, "expected \"%s\", got %d", needle, rc);
    CHECK(tr == NULL);
    if (rc == BS_ERR_INVALID && (!strstr(err.message, needle) || strncmp(err.message, "t.json", 6)))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.message, needle);
    CHECK(strstr(err.message, needle) != NULL);
    CHECK(strncmp(err.message, "t.json", 6) == 0);
}

static void expect_bad_rank0(const char *rank0, const char *needle)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s, %s]}]}", base_head, rank0, rank1_ok);
    expect_bad(text, needle);
}

static void expect_bad_head(const char *head_replace, const char *with, const char *needle)
{
    char text[4096], head[1024];
    const char *at = strstr(base_head, head_replace);
    CHECK(at != NULL);
    if (!at)
        return;
    snprintf(head, sizeof head, "%.*s%s%s", (int)(at - base_head), base_head, with,
             at + strlen(head_replace));
    snprintf(text, sizeof text, "%s%s, %s]}]}", head, rank0_ok, rank1_ok);
    expect_bad(text, needle);
}

static void test_hostile(void)
{
    char text[8192];
    snprintf(text, sizeof text, "%s%s, %s]}]}", base_head, rank0_ok, rank1_ok);
    bs_trace *tr = NULL;
    bs_error err = {{0}};
    CHECK(bs_trace_parse(&tr, text, "t.json", &err) == BS_OK);
    if (tr) {
        CHECK(tr->ops_per_step == 4);
        CHECK_NEAR(tr->ops[1].wait_before, 2.0, 1e-12);
    }
    bs_trace_free(&tr);

    expect_bad("", "not valid JSON");
    expect_bad("[1, 2]", "expected a JSON object");
    expect_bad("{\"format\": \"other\"}", "format: expected \"bubblesim-pytorch-trace\"");
    expect_bad_head("\"version\": 1", "\"version\": 2", "version: 2 is not known");
    expect_bad_head("\"version\": 1", "\"version\": \"1\"", "version: expected an integer");
    expect_bad_head("\"ranks\": 2", "\"ranks\": 0", "ranks: expected an integer 1..1024");
    expect_bad_head("\"ranks\": 2", "\"ranks\": 1e300", "ranks: expected an integer");
    expect_bad_head("\"ranks\": 2", "\"ranks\": 2.5", "ranks: expected an integer");
    expect_bad_head("\"ranks\": 2, ", "", "ranks: missing");
    expect_bad_head("\"stages\": 2", "\"stages\": 70000", "stages: expected an integer");
    expect_bad_head("\"microbatches\": 1", "\"microbatches\": -1", "microbatches");
    expect_bad("{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 1, "
               "\"stages\": 65535, \"microbatches\": 1000000, \"placement\": [0], \"steps\": []}",
               "exceeds the trace limit");
    expect_bad_head("[0, 1]", "[0]", "placement: expected an array of 2");
    expect_bad_head("[0, 1]", "[0, 2]", "placement[1]: expected a rank number from 0 to 1");
    expect_bad_head("[0, 1]", "[0, \"1\"]", "placement[1]");
    expect_bad_head("[0, 1]", "[1, 0]", "belongs to rank");
    expect_bad("{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 1, "
               "\"stages\": 1, \"microbatches\": 1, \"placement\": [0], \"steps\": []}",
               "steps: expected an array of 1..10000 steps");
    expect_bad("{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 1, "
               "\"stages\": 1, \"microbatches\": 1, \"placement\": [0], \"steps\": {}}",
               "steps: expected an array");
    expect_bad("{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 2, "
               "\"stages\": 2, \"microbatches\": 1, \"placement\": [0, 1], "
               "\"steps\": [{\"ranks\": []}]}",
               "steps[0].ranks: expected an array of 2 rank objects");

    expect_bad_rank0("{\"rank\": 1, \"actions\": []}", "steps[0].ranks[0].rank: expected 0");
    expect_bad_rank0("{\"rank\": 0}", "steps[0].ranks[0].actions: expected an array");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [5]}", "actions[0]: expected an object");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"start\": 0, \"end\": 1}]}",
                     "actions[0].action: expected a non-empty action string");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"\", \"start\": 0, \"end\": 1}]}",
                     "actions[0].action: expected a non-empty");
    expect_bad_rank0(
        "{\"rank\": 0, \"actions\": [{\"action\": \"0X0\", \"start\": 0, \"end\": 1}]}",
        "\"0X0\": unknown action X");
    /* A W-looking wait that is not one of PyTorch's names is not a W op. */
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0WAIT_SEND_X0\", \"start\": 0, "
                     "\"end\": 1}]}",
                     "\"0WAIT_SEND_X0\"");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"(0F0;1B0)OVERLAP_F_B\", "
                     "\"start\": 0, \"end\": 1}]}",
                     "overlapped actions (OVERLAP_F_B) are not read yet");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F99999999999\", \"start\": 0, "
                     "\"end\": 1}]}",
                     "micro-batch");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F5\", \"start\": 0, "
                     "\"end\": 1}]}",
                     "out of range");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"7F0\", \"start\": 0, "
                     "\"end\": 1}]}",
                     "out of range");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0}]}",
                     "actions[0].end: missing");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": \"0\", "
                     "\"end\": 1}]}",
                     "actions[0].start: expected a finite time in ms");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1e400}]}",
                     "actions[0].end: expected a finite time");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 2, "
                     "\"end\": 1}]}",
                     "expected start <= end");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1, \"wait\": -1}]}",
                     "0 <= wait");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1, \"wait\": 5}]}",
                     "wait <= end - start");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1, \"compute_start\": 0.5}]}",
                     "compute_start and compute_end go together");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1, \"compute_start\": 0.5, \"compute_end\": 3}]}",
                     "within start..end");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
                     "\"end\": 1}, {\"action\": \"0F0\", \"start\": 1, \"end\": 2}]}",
                     "appears twice");
    expect_bad_rank0("{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 5, "
                     "\"end\": 6}, {\"action\": \"0B0\", \"start\": 1, \"end\": 2}]}",
                     "before the previous compute op ended");
    snprintf(text, sizeof text, "%s%s]}]}", base_head, rank0_ok);
    expect_bad(text, "steps[0].ranks: expected an array of 2");
    {
        /* A later step that runs another order. */
        char two[8192];
        snprintf(two, sizeof two,
                 "%s%s, %s]}, {\"ranks\": [{\"rank\": 0, \"actions\": [{\"action\": \"0B0\", "
                 "\"start\": 0, \"end\": 1}, {\"action\": \"0F0\", \"start\": 1, \"end\": 2}]}, "
                 "%s]}]}",
                 base_head, rank0_ok, rank1_ok, rank1_ok);
        expect_bad(two, "steps[1].ranks[0]: compute op 0 differs from step 0");
        snprintf(two, sizeof two,
                 "%s%s, %s]}, {\"ranks\": [{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", "
                 "\"start\": 0, \"end\": 1}]}, %s]}]}",
                 base_head, rank0_ok, rank1_ok, rank1_ok);
        expect_bad(two, "differs from step 0");
    }
    /* Calibration refuses chunk counts the simulator cannot place. */
    snprintf(text, sizeof text,
             "{\"format\": \"bubblesim-pytorch-trace\", \"version\": 1, \"ranks\": 2, "
             "\"stages\": 3, \"microbatches\": 1, \"placement\": [0, 1, 1], \"steps\": "
             "[{\"ranks\": [{\"rank\": 0, \"actions\": [{\"action\": \"0F0\", \"start\": 0, "
             "\"end\": 1}]}, {\"rank\": 1, \"actions\": [{\"action\": \"1F0\", \"start\": 1, "
             "\"end\": 2}]}]}]}");
    CHECK(bs_trace_parse(&tr, text, "t.json", &err) == BS_OK);
    if (tr) {
        bs_calibration *cal = NULL;
        CHECK(bs_calibrate(&cal, tr, &err) == BS_ERR_INVALID);
        CHECK(strstr(err.message, "same number of chunks") != NULL);
        CHECK(cal == NULL);
    }
    bs_trace_free(&tr);
}

/* The order text reader takes PyTorch 2.15's compute_comms dumps: WAIT_*
 * actions are waits, never W ops, so a custom schedule built from a dump
 * with comms has only the compute ops. */
static void test_order_waits(void)
{
    static const char config[] =
        "{\"schedule\": \"custom\", \"stages\": 2, \"microbatches\": 1, "
        "\"order\": [[\"0UNSHARD\", \"0F0\", \"0SEND_F0\", \"0RECV_B0\", "
        "\"0WAIT_SEND_F0\", \"0B0\", \"0REDUCE_GRAD\", \"0WAIT_REDUCE_GRAD\"], "
        "[\"1RECV_F0\", \"1F0\", \"1B0\", \"1SEND_B0\", \"1WAIT_SEND_B0\", "
        "\"1REDUCE_GRAD\", \"1WAIT_REDUCE_GRAD\"]]}";
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_program_init(&prog);
    int rc = bs_config_parse(&cfg, config, "waits.json", NULL, 0, &err);
    if (rc != BS_OK)
        fprintf(stderr, "%s\n", err.message);
    CHECK(rc == BS_OK);
    rc = bs_program_build(&prog, &cfg, &err);
    if (rc != BS_OK)
        fprintf(stderr, "%s\n", err.message);
    CHECK(rc == BS_OK);
    size_t compute = 0;
    for (size_t i = 0; i < prog.op_count; i++) {
        CHECK(prog.ops[i].kind != BS_OP_WEIGHT_GRAD);
        compute += prog.ops[i].kind != BS_OP_OPTIMIZER;
    }
    CHECK(compute == 4);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

/* Parses a config calibrated from tr into cfg: BS_OK, or the error. */
static int calibrated_config(const bs_trace *tr, bs_config *cfg)
{
    bs_calibration *cal = NULL;
    bs_error err = {{0}};
    char *text = NULL;
    size_t size = 0;
    int rc = bs_calibrate(&cal, tr, &err);
    if (rc == BS_OK) {
        FILE *mem = open_memstream(&text, &size);
        rc = bs_calibration_write_config(mem, cal, &err);
        fclose(mem);
    }
    if (rc == BS_OK)
        rc = bs_config_parse(cfg, text, "calibrated", NULL, 0, &err);
    free(text);
    bs_calibration_free(&cal);
    return rc;
}

/* The sampled prediction (bs_compare_with). On the exact fixture every op
 * of a chunk and kind costs the same, so every sample is the deterministic
 * run. On the noisy one, step k is the exact step with every time scaled by
 * (1, 1, 1.2, 1, 0.9)[k]: a sample drawn from step k runs every op at the
 * base cost times that scale (the config holds the base times the mean
 * scale 1.02), with the fitted latency unchanged, so the samples take three
 * values, T(0.9), T(1) and T(1.2), 20 %, 60 % and 20 % of the time: T(1) is
 * the median, T(0.9) the 10th and T(1.2) the 90th percentile. T(x) is
 * worked out apart, by the plain engine on the config with its costs
 * scaled by x / 1.02. */
static void test_sampled(void)
{
    bs_trace *exact = load_fixture("1f1b-2rank.json");
    bs_trace *noisy = load_fixture("1f1b-2rank-noisy.json");
    bs_config cfg;
    bs_comparison *cmp = NULL, *again = NULL;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    if (!exact || !noisy)
        goto done;

    CHECK(calibrated_config(exact, &cfg) == BS_OK);
    bs_compare_options opt = {exact, 0, 1};
    CHECK(bs_compare_with(&cmp, &cfg, exact, &opt, &err) == BS_OK);
    if (cmp) {
        CHECK(cmp->samples == BS_COMPARE_DEFAULT_SAMPLES);
        CHECK_NEAR(cmp->sampled_makespan, 23.0, 1e-9);
        CHECK_NEAR(cmp->sampled_low, 23.0, 1e-9);
        CHECK_NEAR(cmp->sampled_high, 23.0, 1e-9);
        CHECK_NEAR(cmp->sampled_error, 0.0, 1e-12);
        CHECK(bs_comparison_judged_error(cmp) == cmp->sampled_error);
    }
    bs_comparison_free(&cmp);
    /* Without a noise trace nothing is sampled, and makespan_error is judged. */
    CHECK(bs_compare_with(&cmp, &cfg, exact, NULL, &err) == BS_OK);
    CHECK(cmp && cmp->samples == 0 && bs_comparison_judged_error(cmp) == cmp->makespan_error);
    bs_comparison_free(&cmp);
    bs_config_free(&cfg);

    bs_config_init(&cfg);
    CHECK(calibrated_config(noisy, &cfg) == BS_OK);
    double t[3], scale[3] = {0.9, 1.0, 1.2};
    for (int k = 0; k < 3; k++) {
        bs_config scaled = cfg;
        double f[2], b[2];
        for (int s = 0; s < 2; s++) {
            f[s] = cfg.forward.v[s] * scale[k] / 1.02;
            b[s] = cfg.backward.v[s] * scale[k] / 1.02;
        }
        scaled.forward.v = f;
        scaled.backward.v = b;
        t[k] = NAN;
        CHECK(bs_compare(&cmp, &scaled, noisy, &err) == BS_OK);
        if (cmp)
            t[k] = cmp->predicted_makespan;
        bs_comparison_free(&cmp);
    }
    /* T(1): the exact step's 23 ms plus the latency's 0.02 ms excess on
     * each message of the critical path (at most four). */
    CHECK(t[1] > 23.0 && t[1] <= 23.0 + 4 * 0.02 + 1e-9);
    opt.noise = noisy;
    opt.samples = 1000;
    CHECK(bs_compare_with(&cmp, &cfg, noisy, &opt, &err) == BS_OK);
    CHECK(bs_compare_with(&again, &cfg, noisy, &opt, &err) == BS_OK);
    if (cmp && again) {
        CHECK(cmp->samples == 1000);
        CHECK_NEAR(cmp->sampled_makespan, t[1], 1e-9);
        CHECK_NEAR(cmp->sampled_low, t[0], 1e-9);
        CHECK_NEAR(cmp->sampled_high, t[2], 1e-9);
        CHECK_NEAR(cmp->sampled_error, t[1] / 23.0 - 1.0, 1e-9);
        /* The same seed draws the same samples. */
        CHECK(cmp->sampled_makespan == again->sampled_makespan &&
              cmp->sampled_low == again->sampled_low && cmp->sampled_high == again->sampled_high);
        char *out = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&out, &size);
        CHECK(bs_comparison_write_json(mem, cmp, 5.0, &err) == BS_OK);
        CHECK(bs_comparison_write_table(mem, cmp, 5.0, &err) == BS_OK);
        fclose(mem);
        CHECK(out && strstr(out, "\"samples\": 1000") && strstr(out, "\"judged\": \"sampled\"") &&
              strstr(out, "sampled makespan (ms, median)") &&
              strstr(out, "|sampled makespan error|"));
        free(out);
    }
    bs_comparison_free(&cmp);
    bs_comparison_free(&again);

    /* A noise trace of another run, or a sample count out of range, is
     * refused with the reason. */
    bs_trace other = *noisy;
    other.microbatches = 3;
    opt.noise = &other;
    CHECK(bs_compare_with(&cmp, &cfg, noisy, &opt, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "noise trace") != NULL);
    uint16_t swapped[2] = {1, 0};
    other = *noisy;
    other.placement = swapped;
    CHECK(bs_compare_with(&cmp, &cfg, noisy, &opt, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "chunk 0 is on rank 1") != NULL);
    opt.noise = noisy;
    opt.samples = -1;
    CHECK(bs_compare_with(&cmp, &cfg, noisy, &opt, &err) == BS_ERR_INVALID);
    opt.samples = BS_COMPARE_MAX_SAMPLES + 1;
    CHECK(bs_compare_with(&cmp, &cfg, noisy, &opt, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "samples") != NULL && cmp == NULL);
done:
    bs_config_free(&cfg);
    bs_trace_free(&exact);
    bs_trace_free(&noisy);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_measure FIXTURE_DIR\n");
        return 2;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", argv[1]);
    test_reader();
    test_calibrate_and_compare("1f1b-2rank.json", 2, 0.0, 1.0);
    /* Steps scaled 1, 1, 1.2, 1, 0.9: mean scale 1.02. */
    test_calibrate_and_compare("1f1b-2rank-noisy.json", 5, (27.6 - 20.7) / 23.0, 1.02);
    test_hostile();
    test_order_waits();
    test_sampled();
    return check_finish("test_measure");
}
