/*
 * test_decode.c - the decode schedule (prefill, then a decode step per
 * token, the loop back from the last stage to the first) against closed
 * forms and hand-worked cases.
 *
 * Closed forms (uniform stage cost d for the prefill and the decode step, a
 * free network): time per output token max(P, M) d (V = 1; see the grid
 * for V > 1); makespan T M d +
 * (P - 1) d / V for M >= P, T P d + (M - 1) d / V for M < P; in the steady
 * state every device is idle max(0, (P - M) / P) of the time. Hand-worked:
 * latency on the loop back, uneven stages, a context-dependent cost.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

static const double tol = 1e-9;
static double fw_store[64], dec_store[64];

static bs_config make(int p, int m, int v, int tokens, double f, double d)
{
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "decode");
    cfg.stages = p;
    cfg.microbatches = m;
    cfg.virtual_stages = v;
    cfg.prompt_tokens = 8;
    cfg.output_tokens = tokens;
    fw_store[0] = f;
    dec_store[0] = d;
    cfg.forward = (bs_values){1, fw_store};
    cfg.decode = (bs_values){1, dec_store};
    return cfg;
}

/* Idle fraction of device `dev` over one period of micro-batch 0's decode
 * steps on it: from token k's start to token k + 1's start, k in the middle
 * of the run. */
static double steady_idle(const bs_result *r, int dev, int m, int tokens)
{
    const bs_timeline *tl = r->timeline;
    const bs_program *prog = tl->program;
    uint32_t k = (uint32_t)tokens / 2, a = k * (uint32_t)m, b = (k + 1) * (uint32_t)m;
    double start_a = -1, start_b = -1, busy = 0;
    size_t ia = 0, ib = 0;
    for (size_t i = prog->device_first[dev]; i < prog->device_first[dev + 1]; i++) {
        if (prog->ops[i].stage != (unsigned)dev)
            continue;
        if (prog->ops[i].microbatch == a) {
            start_a = tl->times[i].start;
            ia = i;
        }
        if (prog->ops[i].microbatch == b) {
            start_b = tl->times[i].start;
            ib = i;
        }
    }
    for (size_t i = ia; i < ib; i++)
        busy += tl->times[i].end - tl->times[i].start;
    return start_b > start_a ? 1.0 - busy / (start_b - start_a) : -1;
}

static void grid(bs_context *ctx)
{
    int points = 0;
    for (int p = 1; p <= 6; p++)
        for (int m = 1; m <= 14; m++)
            for (int v = 1; v <= 3; v++)
                for (int t = 1; t <= 6; t += 1) {
                    if (v > 1 && m >= p && m % p != 0)
                        continue; /* prefill groups of P stall; no closed form */
                    double d = 0.75;
                    bs_config cfg = make(p, m, v, t, d, d);
                    const bs_result *r;
                    bs_error err = {{0}};
                    int rc = bs_context_run(ctx, &cfg, NULL, &r, &err);
                    CHECK_MSG(rc == BS_OK, "P=%d M=%d V=%d T=%d: %s", p, m, v, t, err.message);
                    if (rc)
                        continue;
                    points++;
                    double mk = m >= p ? t * m * d + (p - 1) * d / v : t * p * d + (m - 1) * d / v;
                    /* With V > 1 and M >= P the prefill's groups of P
                     * finish the micro-batches in another order than the
                     * decode steps serve them: the mean over micro-batches
                     * carries (V-1)(M-P) d / (2 V (T-1)) on top of the
                     * steady period max(P, M) d (derived in sim/formula.c). */
                    double tpot = t > 1 ? (p > m ? p : m) * d : 0;
                    if (t > 1 && v > 1 && m >= p)
                        tpot += (v - 1.0) * (m - p) * d / (2.0 * v * (t - 1));
                    CHECK_MSG(r->formula.valid, "P=%d M=%d V=%d T=%d: no closed form", p, m, v, t);
                    CHECK_MSG(fabs(r->makespan - mk) < tol,
                              "P=%d M=%d V=%d T=%d: makespan %.12g, want %.12g", p, m, v, t,
                              r->makespan, mk);
                    CHECK_MSG(fabs(r->formula.makespan - mk) < tol, "formula makespan");
                    CHECK_MSG(r->inference.valid, "inference figures");
                    CHECK_MSG(fabs(r->inference.time_per_output_token - tpot) < tol,
                              "P=%d M=%d V=%d T=%d: TPOT %.12g, want %.12g", p, m, v, t,
                              r->inference.time_per_output_token, tpot);
                    CHECK_NEAR(r->formula.time_per_output_token, tpot, tol);
                    CHECK_NEAR(r->bubble_ratio, r->formula.bubble_ratio, tol);
                    /* Every (chunk, item) runs once: P V M T ops, d / V each. */
                    CHECK_NEAR(r->busy, (double)p * m * t * d, 1e-6);
                    /* Messages: P V - 1 per item along the pipeline, plus
                     * the loop back for every item but the last token's. */
                    double msgs = p > 1 ? (double)(p * v - 1) * m * t + (double)m * (t - 1) : 0;
                    CHECK_NEAR((double)r->messages, msgs, tol);
                    /* Tokens per second: M T tokens over the makespan. */
                    CHECK_NEAR(r->inference.tokens_per_second, m * t / mk * 1000.0, 1e-6);
                    if (t >= 4) {
                        double want = p > m ? (double)(p - m) / p : 0.0;
                        for (int dev = 0; dev < p; dev++)
                            CHECK_MSG(fabs(steady_idle(r, dev, m, t) - want) < tol,
                                      "P=%d M=%d T=%d device %d: steady idle %.12g, want %.12g", p,
                                      m, t, dev, steady_idle(r, dev, m, t), want);
                    }
                }
    printf("decode grid: %d points\n", points);
    CHECK(points > 500);
}

static void hand_worked(bs_context *ctx)
{
    const bs_result *r;
    bs_error err = {{0}};

    /* P = 2, M = 1, T = 3, F = 2, d = 1, latency 0.5 on every message.
     * Prefill: stage 0 [0,2], message to 2.5, stage 1 [2.5,4.5]: TTFT 4.5.
     * Token 2: loop back arrives 5, stage 0 [5,6], message 6.5, stage 1
     * [6.5,7.5]. Token 3: 8, [8,9], 9.5, [9.5,10.5]. TPOT (10.5-4.5)/2 = 3,
     * i.e. d P + 2 latencies per token. */
    bs_config cfg = make(2, 1, 1, 3, 2, 1);
    cfg.latency = 0.5;
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK);
    CHECK_NEAR(r->makespan, 10.5, tol);
    CHECK_NEAR(r->inference.time_to_first_token, 4.5, tol);
    CHECK_NEAR(r->inference.time_per_output_token, 3.0, tol);
    CHECK_NEAR(r->inference.prefill_time, 4.5, tol);
    CHECK_NEAR((double)r->messages, 5, tol);
    CHECK(!r->formula.valid);

    /* Uneven stages: P = 2, M = 2, T = 2, forward {1, 3}, decode {1, 2}.
     * Device 0: F0 [0,1], F1 [1,2]; device 1: F0 [1,4], F1 [4,7].
     * Token 2 of m0 on device 0 needs F(1,0) (4): [4,5]; of m1: F(1,1) at 7:
     * [7,8]. Device 1: D(1,m0) [7,9] (free at 7), D(1,m1) [9,11].
     * TTFT (4 + 7)/2 = 5.5, TPOT ((9 - 4) + (11 - 7))/2 = 4.5. */
    static double f2[2] = {1, 3}, d2[2] = {1, 2};
    cfg = make(2, 2, 1, 2, 1, 1);
    cfg.forward = (bs_values){2, f2};
    cfg.decode = (bs_values){2, d2};
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK);
    CHECK_NEAR(r->makespan, 11, tol);
    CHECK_NEAR(r->inference.time_to_first_token, 5.5, tol);
    CHECK_NEAR(r->inference.time_per_output_token, 4.5, tol);
    CHECK_NEAR(r->inference.prefill_time, 7, tol);
    CHECK_NEAR(r->device[0].busy, 4, tol);
    CHECK_NEAR(r->device[1].busy, 10, tol);

    /* A context-dependent step: P = 1, M = 1, T = 3, prompt 8; the step
     * costs max(0.5 + 0.1 c, 1.0 + 0.01 c) at context c = 9, 10:
     * max(1.4, 1.09) = 1.4 and max(1.5, 1.1) = 1.5; after a prefill of 2,
     * the makespan is 4.9 and the TPOT 1.45. */
    static double dpt = 0.1, dm = 1.0, dmpt = 0.01;
    cfg = make(1, 1, 1, 3, 2, 0.5);
    cfg.decode_per_token = (bs_values){1, &dpt};
    cfg.decode_memory = (bs_values){1, &dm};
    cfg.decode_memory_per_token = (bs_values){1, &dmpt};
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK);
    CHECK_NEAR(r->makespan, 4.9, tol);
    CHECK_NEAR(r->inference.time_per_output_token, 1.45, tol);
    CHECK(!r->formula.valid);

    /* Refusals name the key. */
    cfg = make(2, 2, 1, 2, 1, 1);
    cfg.output_tokens = 0;
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "inference.output_tokens"));
    cfg = make(2, 2, 1, 2, 1, 1);
    cfg.prompt_tokens = 0;
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "inference.prompt_tokens"));
    cfg = make(2, 2, 1, 2, 1, 1);
    cfg.decode = (bs_values){0, NULL};
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "costs.decode"));
    cfg = make(2, 2, 1, 2, 1, 1);
    cfg.iterations = 2;
    CHECK(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "iterations"));
}

/* The validator knows decode programs by their ops and the loop flag. */
static void validator(void)
{
    bs_config cfg = make(2, 2, 1, 3, 1, 1);
    bs_program prog;
    bs_error err = {{0}};
    bs_program_init(&prog);
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);
    CHECK(prog.op_count == 2 * 2 * 3);
    CHECK(prog.microbatches == 6 && prog.per_iteration == 2);
    /* A decode step of the first token (item 0) cannot run: the prefill
     * makes that token. */
    size_t first_decode = 0;
    while (prog.ops[first_decode].kind != BS_OP_DECODE)
        first_decode++;
    prog.ops[first_decode].microbatch = 0;
    CHECK(bs_program_validate(&prog, &err) == BS_ERR_INVALID && strstr(err.message, "first token"));
    /* Swapping device 0's two decode steps of one token and the next token's
     * first makes it wait for itself: a deadlock, reported with its cycle. */
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);
    size_t a = prog.device_first[0] + 2, b = prog.device_first[0] + 4; /* D(0,i2), D(0,i4) */
    bs_op tmp = prog.ops[a];
    prog.ops[a] = prog.ops[b];
    prog.ops[b] = tmp;
    CHECK(bs_program_validate(&prog, &err) == BS_ERR_DEADLOCK);
    bs_program_free(&prog);
}

/* LLaMA-70B on 4 A100-40GB (312 TFLOP/s bf16, 1.555 TB/s HBM), one
 * sequence, as the seed's section 6.2 compares them. */
static const char llama[] =
    "{\"schedule\": \"decode\", \"stages\": %d, \"microbatches\": 1, \"tensor_parallel\": %d,"
    " \"inference\": {\"prompt_tokens\": %d, \"output_tokens\": %d},"
    " \"model\": {\"layers\": 80, \"hidden\": 8192, \"heads\": 64, \"kv_heads\": 8,"
    " \"ffn_hidden\": 43008, \"microbatch_size\": %d, \"vocabulary\": 32000},"
    " \"hardware\": {\"peak_flops\": 312e12, \"efficiency\": 0.5, \"memory_bandwidth\": 1.555e12,"
    " \"memory_bytes\": 42949672960, \"tp_latency\": 0.005, \"tp_bandwidth\": 300e9,"
    " \"latency\": 0.005, \"bandwidth\": 300e9}}";

static int run_llama(bs_context *ctx, int p, int t, int prompt, int out, int b, const bs_result **r,
                     bs_error *err)
{
    char text[2048];
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(text, sizeof text, llama, p, t, prompt, out, b);
    int rc = bs_config_parse(&cfg, text, "llama.json", NULL, 0, err);
    if (rc == BS_OK)
        rc = bs_context_run(ctx, &cfg, NULL, r, err);
    bs_config_free(&cfg);
    return rc;
}

static void llama70b(bs_context *ctx)
{
    const bs_result *r;
    bs_error err = {{0}};
    /* TP = 4: each GPU holds a quarter of the 80 layers' weights and of the
     * output layer; a decode step reads all of them, so no step can beat
     * their bytes over the HBM bandwidth. */
    double layer = 2.0 * 8192 * 8192 + 2.0 * 8192 * 1024 + 2.0 * 8192 * 43008;
    double bytes_per_gpu = (80 * layer + 32000.0 * 8192) / 4 * 2;
    double bound = bytes_per_gpu / 1.555e12 * 1000;
    CHECK(run_llama(ctx, 1, 4, 128, 64, 1, &r, &err) == BS_OK);
    double tp4 = r->inference.time_per_output_token;
    printf("llama-70b batch 1: TP=4 %.3f ms per token, weights bound %.3f ms\n", tp4, bound);
    CHECK(tp4 >= bound);
    CHECK(tp4 < 2 * bound); /* memory-bound, not far above it */
    /* PP = 4 at batch 1: the token passes the four stages one after another,
     * each reading its quarter of the weights: not faster than TP = 4. */
    CHECK(run_llama(ctx, 4, 1, 128, 64, 1, &r, &err) == BS_OK);
    double pp4 = r->inference.time_per_output_token;
    printf("llama-70b batch 1: PP=4 %.3f ms per token\n", pp4);
    CHECK(pp4 >= tp4);
    CHECK(pp4 >= 4 * bound * 0.99);
    /* PP = 2 + TP = 2 sits in between. */
    CHECK(run_llama(ctx, 2, 2, 128, 64, 1, &r, &err) == BS_OK);
    CHECK(r->inference.time_per_output_token >= tp4 && r->inference.time_per_output_token <= pp4);
    /* Later tokens cost more: the KV cache grows. */
    CHECK(run_llama(ctx, 1, 4, 128, 4096, 8, &r, &err) == BS_OK);
    const bs_timeline *tl = r->timeline;
    size_t n = tl->program->op_count;
    CHECK(tl->times[n - 1].end - tl->times[n - 1].start > tl->times[1].end - tl->times[1].start);
    CHECK(r->device[0].kv_cache_bytes > 0);
    /* KV cache bytes per GPU: 2 x 80 layers x 1024 (kv heads x head dim)
     * x 2 bytes x context (128 + 4096 - 1) x 8 sequences / T. */
    CHECK_NEAR(r->device[0].kv_cache_bytes, 2.0 * 80 * 1024 * 2 * (128 + 4095) * 8 / 4, 1);
    /* A KV cache that does not fit is refused, naming the key. */
    CHECK(run_llama(ctx, 1, 4, 4096, 4096, 64, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "hardware.memory_bytes") && strstr(err.message, "KV cache"));
    /* Zero tokens, missing bandwidth, a decode cost by hand beside a model. */
    CHECK(run_llama(ctx, 1, 4, 0, 16, 1, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "inference.prompt_tokens"));
    CHECK(run_llama(ctx, 1, 4, 16, 0, 1, &r, &err) == BS_ERR_INVALID &&
          strstr(err.message, "inference.output_tokens"));
    bs_config cfg;
    bs_config_init(&cfg);
    CHECK(
        bs_config_parse(&cfg,
                        "{\"schedule\": \"decode\", \"stages\": 1, \"inference\": "
                        "{\"prompt_tokens\": 8, \"output_tokens\": 8}, \"model\": {\"layers\": 2, "
                        "\"hidden\": 64, \"heads\": 4}, \"hardware\": {\"peak_flops\": 1e12}}",
                        "nobw.json", NULL, 0, &err) == BS_ERR_INVALID &&
        strstr(err.message, "hardware.memory_bandwidth"));
    CHECK(bs_config_parse(&cfg,
                          "{\"schedule\": \"decode\", \"stages\": 1, \"costs\": {\"decode\": 1},"
                          " \"inference\": {\"prompt_tokens\": 8, \"output_tokens\": 8}, \"model\":"
                          " {\"layers\": 2, \"hidden\": 64, \"heads\": 4}, \"hardware\": "
                          "{\"peak_flops\": 1e12, \"memory_bandwidth\": 1e12}}",
                          "both.json", NULL, 0, &err) == BS_ERR_INVALID &&
          strstr(err.message, "costs.decode"));
    CHECK(
        bs_config_parse(&cfg,
                        "{\"schedule\": \"decode\", \"stages\": 1, \"inference\": "
                        "{\"prompt_tokens\": 8, \"output_tokens\": 8}, \"model\": {\"layers\": 2, "
                        "\"hidden\": 64, \"heads\": 4, \"sequence\": 9}, \"hardware\": "
                        "{\"peak_flops\": 1e12, \"memory_bandwidth\": 1e12}}",
                        "seq.json", NULL, 0, &err) == BS_ERR_INVALID &&
        strstr(err.message, "model.sequence"));
    bs_config_free(&cfg);
}

/* Hostile values of the new keys: each refused with its key path. */
static void hostile(void)
{
    static const char *const cases[][2] = {
        {"\"inference\": {\"output_tokens\": 0}", "inference.output_tokens"},
        {"\"inference\": {\"output_tokens\": -3}", "inference.output_tokens"},
        {"\"inference\": {\"output_tokens\": 2.5}", "inference.output_tokens"},
        {"\"inference\": {\"output_tokens\": \"many\"}", "inference.output_tokens"},
        {"\"inference\": {\"output_tokens\": 1e300}", "inference.output_tokens"},
        {"\"inference\": {\"prompt_tokens\": 0}", "inference.prompt_tokens"},
        {"\"inference\": {\"prompt_tokens\": null}", "inference.prompt_tokens"},
        {"\"inference\": {\"prompt\": 3}", "inference.prompt"},
        {"\"inference\": 5", "inference"},
        {"\"costs\": {\"decode\": 0}", "costs.decode"},
        {"\"costs\": {\"decode\": -1}", "costs.decode"},
        {"\"costs\": {\"decode\": []}", "costs.decode"},
        {"\"costs\": {\"decode\": [1, 2, 3]}", "costs.decode"},
        {"\"costs\": {\"decode\": \"x\"}", "costs.decode"},
        {"\"costs\": {\"decode\": 1e300}", "costs.decode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        bs_config cfg;
        bs_error err = {{0}};
        bs_config_init(&cfg);
        snprintf(text, sizeof text, "{\"schedule\": \"decode\", \"stages\": 2, %s}", cases[i][0]);
        int rc = bs_config_parse(&cfg, text, "h.json", NULL, 0, &err);
        CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, cases[i][1]),
                  "%s: rc %d, message \"%s\"", cases[i][0], rc, err.message);
        bs_config_free(&cfg);
    }
    /* Too many items for the op limit: named by the key that makes them. */
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg,
                             "{\"schedule\": \"decode\", \"stages\": 64, \"microbatches\": 4096,"
                             " \"costs\": {\"decode\": 1}, \"inference\": {\"prompt_tokens\": 1,"
                             " \"output_tokens\": 100000000}}",
                             "big.json", NULL, 0, &err);
    CHECK_MSG(rc == BS_ERR_LIMIT && strstr(err.message, "output_tokens"), "rc %d: %s", rc,
              err.message);
    bs_config_free(&cfg);
}

int main(void)
{
    bs_context *ctx;
    if (bs_context_create(&ctx))
        return 1;
    grid(ctx);
    hand_worked(ctx);
    validator();
    llama70b(ctx);
    hostile();
    bs_context_free(&ctx);
    return check_finish("decode");
}
