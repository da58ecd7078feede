/*
 * test_gpu_compare.c - the plain-C parts of `verify` that moved into gpu/:
 * the "gpu" settings reader (gpu/settings.c), with hostile values, and the
 * comparison and its pass rule (gpu/compare.c) on hand-made results whose
 * answers are worked out here, the prediction's config from measured costs
 * (gpu/predict.c), and the report's table and JSON (gpu/verify_report.c).
 */
#include "check.h"
#include "compare.h"
#include "predict.h"
#include "settings.h"
#include "verify_report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/bs_test_gpu_compare_XXXXXX";

/* Writes text to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* Loads a config with a gpu section; returns the status, err filled. */
static int load(const char *gpu_section, bs_gpu_settings *s, bs_config *cfg, bs_error *err)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4%s%s}",
             gpu_section ? ", \"gpu\": " : "", gpu_section ? gpu_section : "");
    const char *path = write_file("c.json", text);
    bs_gpu_settings_init(s);
    bs_config_free(cfg);
    bs_config_init(cfg);
    memset(err, 0, sizeof *err);
    return bs_gpu_config_load(cfg, s, path, NULL, 0, err);
}

static void test_settings(void)
{
    bs_gpu_settings s;
    bs_config cfg;
    bs_error err;
    bs_config_init(&cfg);

    CHECK(load(NULL, &s, &cfg, &err) == BS_OK);
    CHECK(cfg.stages == 2 && cfg.microbatches == 4);
    CHECK(s.gpu.reps == 5 && s.gpu.warmup == 2 && s.tolerance < 0 && s.copy_cost_measured);
    CHECK(bs_gpu_settings_finish(&s, "c.json", &err) == BS_OK && s.tolerance == 2.0);

    CHECK(load("{\"workload\": \"mlp\", \"reps\": 9, \"warmup\": 0, \"mode\": \"streams\", "
               "\"copy_cost\": \"config\", \"mlp\": {\"hidden\": 64, \"batch\": 8, "
               "\"layers_per_chunk\": 3, \"seed\": 0, \"lr\": 0.5}}",
               &s, &cfg, &err) == BS_OK);
    CHECK(s.gpu.workload == BS_GPU_WORKLOAD_MLP && s.gpu.reps == 9 && s.gpu.warmup == 0);
    CHECK(s.gpu.force_streams && !s.copy_cost_measured);
    CHECK(s.gpu.mlp.hidden == 64 && s.gpu.mlp.batch == 8 && s.gpu.mlp.layers == 3);
    CHECK(s.gpu.mlp.seed == 0 && s.gpu.mlp.lr == 0.5);
    CHECK(bs_gpu_settings_finish(&s, "c.json", &err) == BS_OK && s.tolerance == 5.0);
    CHECK(strcmp(bs_gpu_workload_name(s.gpu.workload), "mlp") == 0);

    /* Hostile values: each refused with the file, the key and what was
     * expected. */
    static const struct {
        const char *gpu, *key, *expected;
    } bad[] = {
        {"[]", "gpu:", "an object"},
        {"{\"reps\": 0}", "gpu.reps", "integer >= 1"},
        {"{\"reps\": 1.5}", "gpu.reps", "integer"},
        {"{\"reps\": \"3\"}", "gpu.reps", "integer"},
        {"{\"reps\": 1e300}", "gpu.reps", "integer"},
        {"{\"warmup\": -1}", "gpu.warmup", "integer >= 0"},
        {"{\"device\": null}", "gpu.device", "integer"},
        {"{\"tolerance\": 0}", "gpu.tolerance", "(0, 1000]"},
        {"{\"tolerance\": 1001}", "gpu.tolerance", "(0, 1000]"},
        {"{\"tolerance\": -1e308}", "gpu.tolerance", "(0, 1000]"},
        {"{\"workload\": \"fast\"}", "gpu.workload", "\"calibrated\" or \"mlp\""},
        {"{\"workload\": \"\"}", "gpu.workload", "\"calibrated\" or \"mlp\""},
        {"{\"mode\": 3}", "gpu.mode", "\"auto\" or \"streams\""},
        {"{\"copy_cost\": true}", "gpu.copy_cost", "\"config\" or \"measured\""},
        {"{\"allocate_activations\": 1}", "gpu.allocate_activations", "true or false"},
        {"{\"speed\": 1}", "gpu.speed", "unknown key"},
        {"{\"\": 1}", "gpu.:", "unknown key"},
        {"{\"mlp\": 3}", "gpu.mlp", "an object"},
        {"{\"mlp\": {\"hidden\": 0}}", "gpu.mlp.hidden", "integer >= 1"},
        {"{\"mlp\": {\"layers_per_chunk\": 2000}}", "gpu.mlp.layers_per_chunk", "at most 1024"},
        {"{\"mlp\": {\"lr\": -1}}", "gpu.mlp.lr", "[0, 1e6]"},
        {"{\"mlp\": {\"width\": 8}}", "gpu.mlp.width", "unknown key"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = load(bad[k].gpu, &s, &cfg, &err);
        CHECK_MSG(rc == BS_ERR_INVALID, "gpu %s: status %d", bad[k].gpu, rc);
        CHECK_MSG(strstr(err.message, "c.json") && strstr(err.message, bad[k].key) &&
                      strstr(err.message, bad[k].expected),
                  "gpu %s: message \"%s\"", bad[k].gpu, err.message);
    }
    /* The rest of the config still goes through the core parser. */
    CHECK(load("{}", &s, &cfg, &err) == BS_OK);
    write_file("bad.json", "{\"schedule\": \"1f1b\", \"stages\": -2, \"gpu\": {}}");
    char path[256];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    bs_config_free(&cfg);
    bs_config_init(&cfg);
    CHECK(bs_gpu_config_load(&cfg, &s, path, NULL, 0, &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "stages") != NULL);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    CHECK(bs_gpu_config_load(&cfg, &s, path, NULL, 0, &err) == BS_ERR_IO);

    /* --set: JSON values, or bare words as strings. */
    bs_gpu_settings_init(&s);
    CHECK(bs_gpu_settings_set(&s, "reps", "3", &err) == BS_OK && s.gpu.reps == 3);
    CHECK(bs_gpu_settings_set(&s, "workload", "mlp", &err) == BS_OK);
    CHECK(s.gpu.workload == BS_GPU_WORKLOAD_MLP);
    CHECK(bs_gpu_settings_set(&s, "mlp.hidden", "512", &err) == BS_OK && s.gpu.mlp.hidden == 512);
    CHECK(bs_gpu_settings_set(&s, "mlp", "{\"batch\": 16}", &err) == BS_OK);
    CHECK(s.gpu.mlp.batch == 16 && s.gpu.mlp.hidden == 512);
    CHECK(bs_gpu_settings_set(&s, "mlp.hidden", "abc", &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "--set: gpu.mlp.hidden") != NULL);
    CHECK(bs_gpu_settings_set(&s, "reps", "", &err) == BS_ERR_INVALID);
    CHECK(bs_gpu_settings_set(&s, "tolerance", "NaN", &err) == BS_ERR_INVALID);
    CHECK(bs_gpu_settings_set(&s, "allocate_activations", "false", &err) == BS_OK);
    CHECK(bs_gpu_settings_finish(&s, "c.json", &err) == BS_ERR_INVALID);
    CHECK(strstr(err.message, "gpu.allocate_activations") != NULL);
    bs_config_free(&cfg);
}

/* A 1f1b program, P = 2, M = 4: 8 ops per device, 2 messages per
 * micro-batch (one forward hop, one backward hop). */
static void test_compare(void)
{
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_program_init(&prog);
    snprintf(cfg.schedule, sizeof cfg.schedule, "1f1b");
    cfg.stages = 2;
    cfg.microbatches = 4;
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);

    bs_result pred, meas;
    memset(&pred, 0, sizeof pred);
    memset(&meas, 0, sizeof meas);
    pred.makespan = 10.0;
    pred.bubble_ratio = 0.25;
    pred.messages = 8;
    pred.iterations = 1;
    meas = pred;
    meas.makespan = 10.1;
    meas.bubble_ratio = 0.26;
    bs_timeline mtl;
    memset(&mtl, 0, sizeof mtl);
    mtl.messages_sent = 8;
    bs_gpu_report rep;
    bs_gpu_report_init(&rep);
    CHECK(bs_gpu_report_reserve(&rep, prog.op_count, prog.devices, &err) == BS_OK);
    for (size_t i = 0; i < prog.op_count; i++)
        rep.executed[i] = (uint32_t)i;
    rep.copies = 8;
    rep.reps = 5;
    rep.makespan_median = 10.1;
    rep.makespan_min = 10.05;
    rep.makespan_max = 10.252;
    snprintf(rep.mode, sizeof rep.mode, "green-contexts");

    bs_gpu_comparison c;
    bs_gpu_comparison_init(&c);
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 2.0,
                         &err) == BS_OK);
    CHECK_NEAR(c.makespan_error_pct, 1.0, 1e-9);
    CHECK_NEAR(c.makespan_error_us, 100.0, 1e-9);
    CHECK_NEAR(c.hops, 2.0, 0); /* 8 messages over 4 micro-batches */
    CHECK_NEAR(c.error_per_hop_us, 50.0, 1e-9);
    CHECK_NEAR(c.bubble_diff_points, 1.0, 1e-9);
    CHECK_NEAR(c.noise_pct, 2.0, 1e-9); /* (10.252 - 10.05) / 10.1 */
    CHECK(c.messages_match && c.orders_match && c.numerics_ok && c.judged && c.within);
    CHECK(c.stage_order_match[0] && c.stage_order_match[1]);

    /* Outside a tighter tolerance; the sign of the error is kept. */
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 0.5,
                         &err) == BS_OK);
    CHECK(!c.within && c.judged);
    meas.makespan = 9.8;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 2.5,
                         &err) == BS_OK);
    CHECK_NEAR(c.makespan_error_pct, -2.0, 1e-9);
    CHECK_NEAR(c.makespan_error_us, -200.0, 1e-9);
    CHECK(c.within);

    /* A message lost, then an order swapped on device 1: each fails. */
    rep.copies = 7;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 2.5,
                         &err) == BS_OK);
    CHECK(!c.messages_match && !c.within);
    rep.copies = 8;
    size_t a = prog.device_first[1], b = a + 1;
    rep.executed[a] = (uint32_t)b;
    rep.executed[b] = (uint32_t)a;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 2.5,
                         &err) == BS_OK);
    CHECK(!c.orders_match && c.stage_order_match[0] && !c.stage_order_match[1] && !c.within);
    rep.executed[a] = (uint32_t)a;
    rep.executed[b] = (uint32_t)b;

    /* mlp in streams mode: not judged, so a 50 % error still passes on exact
     * counts and orders; the same run in green contexts fails. */
    meas.makespan = 15.0;
    snprintf(rep.mode, sizeof rep.mode, "streams");
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_MLP, 5.0, &err) ==
          BS_OK);
    CHECK(!c.judged && c.within && strstr(c.not_judged_why, "not comparable"));
    CHECK_NEAR(c.makespan_error_pct, 50.0, 1e-9);
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 5.0,
                         &err) == BS_OK);
    CHECK(c.judged && !c.within); /* calibrated kernels are judged in streams mode */
    snprintf(rep.mode, sizeof rep.mode, "green-contexts");
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_MLP, 5.0, &err) ==
          BS_OK);
    CHECK(c.judged && !c.within && c.not_judged_why[0] == '\0');

    /* Numerics outside the bar fail even within tolerance. */
    meas.makespan = 10.0;
    rep.numerics.checked = 1;
    rep.numerics.worst_rel_err = 2 * BS_MLP_GRAD_TOLERANCE;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_MLP, 5.0, &err) ==
          BS_OK);
    CHECK(!c.numerics_ok && !c.within);
    rep.numerics.worst_rel_err = BS_MLP_GRAD_TOLERANCE / 2;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_MLP, 5.0, &err) ==
          BS_OK);
    CHECK(c.numerics_ok && c.within);
    rep.numerics.checked = 0;

    /* No messages (one stage's worth): no hops, no division by zero. */
    pred.messages = 0;
    mtl.messages_sent = 0;
    rep.copies = 0;
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, BS_GPU_WORKLOAD_CALIBRATED, 5.0,
                         &err) == BS_OK);
    CHECK(c.hops == 0 && c.error_per_hop_us == 0);

    bs_gpu_comparison_free(&c);
    bs_gpu_report_free(&rep);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

/* Reads everything written to f (a tmpfile) into a static buffer. */
static const char *slurp(FILE *f)
{
    static char text[16384];
    size_t n;
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    return text;
}

static double json_number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345.0;
}

/* The report of a hand-made mlp run in streams mode on 2 stages, as a
 * table and as JSON: the figures put in come out where they belong. */
static void test_report(void)
{
    bs_config cfg;
    bs_program prog;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_program_init(&prog);
    snprintf(cfg.schedule, sizeof cfg.schedule, "1f1b");
    cfg.stages = 2;
    cfg.microbatches = 4;
    cfg.message_bytes = 1024;
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);
    bs_gpu_settings s;
    bs_gpu_settings_init(&s);
    s.gpu.workload = BS_GPU_WORKLOAD_MLP;
    CHECK(bs_gpu_settings_finish(&s, "c.json", &err) == BS_OK);

    bs_device_result dev_p[2], dev_m[2];
    memset(dev_p, 0, sizeof dev_p);
    memset(dev_m, 0, sizeof dev_m);
    dev_p[0].busy = dev_p[1].busy = 6.0;
    dev_m[0].busy = dev_m[1].busy = 6.5;
    bs_result pred, meas;
    memset(&pred, 0, sizeof pred);
    snprintf(pred.schedule, sizeof pred.schedule, "1f1b");
    pred.makespan = 10.0;
    pred.messages = 8;
    pred.iterations = 1;
    pred.devices = 2;
    pred.device = dev_p;
    meas = pred;
    meas.makespan = 12.0;
    meas.device = dev_m;
    bs_timeline mtl;
    memset(&mtl, 0, sizeof mtl);
    mtl.messages_sent = 8;
    bs_gpu_report rep;
    bs_gpu_report_init(&rep);
    CHECK(bs_gpu_report_reserve(&rep, prog.op_count, prog.devices, &err) == BS_OK);
    for (size_t i = 0; i < prog.op_count; i++)
        rep.executed[i] = (uint32_t)i;
    rep.copies = 8;
    rep.reps = 5;
    rep.makespan_median = 12.0;
    rep.makespan_min = 11.94;
    rep.makespan_max = 12.06;
    rep.gate_timeouts = 1;
    rep.gate_timeout_ms = 1000;
    rep.kernels_warmed = 24;
    rep.warm_runs = 30;
    rep.warm_ms = 301;
    snprintf(rep.mode, sizeof rep.mode, "streams");
    snprintf(rep.selftest, sizeof rep.selftest, "plain streams: ... on each of 2 streams: ok");
    snprintf(rep.info.module_loading, sizeof rep.info.module_loading, "EAGER");
    rep.mlp_stages = 2;
    rep.mlp_samples = 7;
    double costs[8] = {1.5, 2.5, 3, 4, -1, -1, -1, -1};
    double spread[8] = {0.5, 0.25, 1, 2, -1, -1, -1, -1};
    rep.mlp_costs = malloc(sizeof costs);
    rep.mlp_cost_spread = malloc(sizeof spread);
    if (rep.mlp_costs && rep.mlp_cost_spread) {
        memcpy(rep.mlp_costs, costs, sizeof costs);
        memcpy(rep.mlp_cost_spread, spread, sizeof spread);
    }
    bs_gpu_comparison c;
    bs_gpu_comparison_init(&c);
    CHECK(bs_gpu_compare(&c, &pred, &meas, &mtl, &rep, &prog, s.gpu.workload, s.tolerance, &err) ==
          BS_OK);
    CHECK(!c.judged && c.within); /* 20 % off, but not comparable */
    bs_gpu_verify_view v = {&cfg, &s, &rep, &pred, &meas, &c, &prog};

    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        CHECK(bs_gpu_verify_write_table(f, &v, &err) == BS_OK);
        const char *t = slurp(f);
        CHECK_MSG(strstr(t, "2000.0 us") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "1000.00 us/hop (2 message hops per micro-batch)") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "1.000% (slowest - fastest of 5 reps") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "makespan not comparable: in streams mode") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "PASS: makespan error 20.000% (tolerance 5%, not judged") != NULL, "%s",
                  t);
        CHECK_MSG(strstr(t, "24 ungated kernel launches; 30 whole runs in 301 ms") != NULL, "%s",
                  t);
        CHECK_MSG(strstr(t, "in 1 run the gate let go after 1000 ms") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "forward      1.500000 (0.50%) 2.500000 (0.25%)") != NULL, "%s", t);
        CHECK_MSG(strstr(t, "module loading: EAGER") != NULL, "%s", t);
        CHECK(strstr(t, "DRY RUN") == NULL);
        fclose(f);
    }
    f = tmpfile();
    if (f) {
        CHECK(bs_gpu_verify_write_json(f, &v, &err) == BS_OK);
        cJSON *o = cJSON_Parse(slurp(f));
        CHECK(o != NULL);
        CHECK_NEAR(json_number(o, "makespan_error_pct"), 20.0, 1e-9);
        CHECK_NEAR(json_number(o, "makespan_error_us"), 2000.0, 1e-9);
        CHECK_NEAR(json_number(o, "makespan_error_per_hop_us"), 1000.0, 1e-9);
        CHECK_NEAR(json_number(o, "message_hops_per_microbatch"), 2.0, 0);
        CHECK_NEAR(json_number(o, "makespan_noise_pct"), 1.0, 1e-9);
        CHECK_NEAR(json_number(o, "gate_timeouts"), 1, 0);
        CHECK_NEAR(json_number(o, "kernels_warmed"), 24, 0);
        CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "judged")));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "pass")));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "dry_run")));
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "not_judged");
        CHECK(cJSON_IsString(why) && strstr(why->valuestring, "not comparable"));
        const cJSON *mlp = cJSON_GetObjectItemCaseSensitive(o, "mlp");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(mlp, "measured_costs_spread_pct");
        const cJSON *bw = cJSON_GetObjectItemCaseSensitive(sp, "backward");
        CHECK(cJSON_GetArraySize(bw) == 2 && cJSON_GetArrayItem(bw, 1)->valuedouble == 2.0);
        CHECK(cJSON_GetObjectItemCaseSensitive(sp, "weight_grad") == NULL);
        const cJSON *gpu = cJSON_GetObjectItemCaseSensitive(o, "gpu");
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(gpu, "module_loading");
        CHECK(cJSON_IsString(ml) && strcmp(ml->valuestring, "EAGER") == 0);
        cJSON_Delete(o);
        fclose(f);
    }
    /* A dry run says so first; a write to a full device is an error. */
    snprintf(rep.mode, sizeof rep.mode, "dry-run");
    f = tmpfile();
    if (f) {
        CHECK(bs_gpu_verify_write_table(f, &v, &err) == BS_OK);
        CHECK(strncmp(slurp(f), "DRY RUN", 7) == 0);
        fclose(f);
    }
    f = fopen("/dev/full", "w");
    if (f) {
        CHECK(bs_gpu_verify_write_json(f, &v, &err) == BS_ERR_IO);
        fclose(f);
    }

    /* The prediction's config: the measured per-chunk costs (mlp, not a
     * dry run), overlap 1, and the measured copy as the network. */
    bs_config pcfg;
    bs_config_init(&pcfg);
    rep.copy_ms = 0.2;
    rep.copy_latency_ms = 0.01;
    rep.copy_bandwidth = 1e9;
    CHECK(bs_gpu_prediction_config(&pcfg, &cfg, &prog, &rep, &s, 0, &err) == BS_OK);
    CHECK(pcfg.forward.count == 2 && pcfg.forward.v[0] == 1.5 && pcfg.forward.v[1] == 2.5);
    CHECK(pcfg.backward.count == 2 && pcfg.backward.v[0] == 3 && pcfg.backward.v[1] == 4);
    CHECK(pcfg.weight.count == 2 && pcfg.weight.v[0] == 0 && pcfg.weight.v[1] == 0);
    CHECK(pcfg.overlap == 1.0 && pcfg.latency == 0.01 && pcfg.bandwidth == 1e9);
    bs_config_free(&pcfg);
    bs_config_init(&pcfg);
    rep.copy_bandwidth = 0; /* the message copy no slower than 4 bytes */
    s.copy_cost_measured = 1;
    CHECK(bs_gpu_prediction_config(&pcfg, &cfg, &prog, &rep, &s, 1, &err) == BS_OK);
    CHECK(pcfg.latency == 0.2 && pcfg.bandwidth == 0);
    CHECK(pcfg.forward.count == cfg.forward.count); /* a dry run keeps the config's costs */
    bs_config_free(&pcfg);
    bs_config_init(&pcfg);
    s.copy_cost_measured = 0;
    CHECK(bs_gpu_prediction_config(&pcfg, &cfg, &prog, &rep, &s, 1, &err) == BS_OK);
    CHECK(pcfg.latency == cfg.latency && pcfg.bandwidth == cfg.bandwidth);
    bs_config_free(&pcfg);

    bs_gpu_comparison_free(&c);
    bs_gpu_report_free(&rep);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_settings();
    test_compare();
    test_report();
    char path[256];
    const char *names[] = {"c.json", "bad.json"};
    for (size_t k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
    return check_finish("test_gpu_compare");
}
