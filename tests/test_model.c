/*
 * test_model.c - sim/model.c: FLOP, byte and time formulas against values
 * computed by hand for a small model, the config hook (costs filled, errors
 * named), chunk placement against the schedules' programs, the memory of a
 * simulated run, and the balanced partition against brute force.
 */
#include "bubblesim.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* The small model of every hand computation below:
 *   L = 4 layers, h = 64, a = 4 heads (kv_heads = a), ffn = 4h = 256,
 *   s = 16, b = 2 (tokens = s*b = 32), vocabulary 100, 2 bytes per element,
 *   peak 1e9 FLOP/s at efficiency 0.5, so 1 FLOP = 2e-6 ms. */
#define SMALL_MODEL                                                                                \
    "\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 16, "                  \
    "\"microbatch_size\": 2, \"vocabulary\": 100}, "                                               \
    "\"hardware\": {\"peak_flops\": 1e9, \"efficiency\": 0.5, \"memory_bytes\": 1e9, "             \
    "\"bandwidth\": 1e9, \"latency\": 0.01, \"tp_bandwidth\": 1e9, \"tp_latency\": 0.001}"

static int parse(bs_config *cfg, const char *text, bs_error *err)
{
    return bs_config_parse(cfg, text, "t.json", NULL, 0, err);
}

static int plan_of(bs_model_plan *plan, const char *text, bs_config *cfg)
{
    bs_model m;
    bs_error err = {{0}};
    bs_model_init(&m);
    int rc = parse(cfg, text, &err);
    if (!rc)
        rc = bs_model_parse(&m, text, "t.json", &err);
    if (!rc)
        rc = bs_model_plan_compute(plan, &m, cfg, "t.json", &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    bs_model_free(&m);
    return rc;
}

static void test_layer_formulas(void)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    if (plan_of(&plan,
                "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, " SMALL_MODEL "}",
                &cfg))
        return;
    /* Parameters per layer: Q and O h^2 each, K and V h*h_kv each (h_kv = h),
     * MLP 2*h*ffn: 2*4096 + 2*4096 + 2*64*256 = 49152 = 12h^2. */
    CHECK_NEAR(plan.layer_parameters, 49152, 0);
    /* Forward: 2 * tokens * params + 4*s^2*b*h = 2*32*49152 + 4*256*2*64
     * = 3145728 + 131072 = 3276800 (= 24bsh^2 + 4bs^2h). */
    CHECK_NEAR(plan.layer_forward_flops, 3276800, 0);
    /* Input gradient: the weight matmuls once more, attention core twice:
     * 3145728 + 262144 = 3407872. Weight gradient: 3145728. */
    CHECK_NEAR(plan.layer_input_grad_flops, 3407872, 0);
    CHECK_NEAR(plan.layer_weight_grad_flops, 3145728, 0);
    /* Activations, no recomputation: 34*s*b*h + 5*a*s^2*b
     * = 34*16*2*64 + 5*4*256*2 = 69632 + 10240 = 79872 bytes. */
    CHECK_NEAR(plan.layer_activation_bytes, 79872, 0);
    /* Message: s*b*h*2 = 16*2*64*2 = 4096 bytes. */
    CHECK_NEAR(plan.message_bytes, 4096, 0);
    CHECK_NEAR(plan.allreduce_ms, 0, 0); /* T = 1 */

    /* Two chunks of two layers. Chunk 0: 2 layers + embedding 100*64:
     * 98304 + 6400 = 104704 parameters; forward 2*3276800 = 6553600 FLOP =
     * 13.1072 ms. Chunk 1 adds the output layer: the same parameters
     * (a copy of the embedding), forward + 2*32*64*100 = 409600 FLOP:
     * 6963200 FLOP = 13.9264 ms; input gradient 2*3407872 + 409600 =
     * 7225344 FLOP = 14.450688 ms; weight gradient 2*3145728 + 409600 =
     * 6701056 FLOP = 13.402112 ms; activations 2*79872 + fp32 logits
     * 4*32*100 = 172544 bytes; chunk 0 keeps the embedding's 1-byte
     * dropout mask, tokens*h = 2048 bytes: 159744 + 2048 = 161792. */
    CHECK(plan.chunks == 2 && plan.chunk[0].layers == 2 && plan.chunk[1].layers == 2);
    CHECK_NEAR(plan.chunk[0].parameters, 104704, 0);
    CHECK_NEAR(plan.chunk[1].parameters, 104704, 0);
    CHECK_NEAR(plan.chunk[0].forward_ms, 13.1072, 1e-9);
    CHECK_NEAR(plan.chunk[1].forward_ms, 13.9264, 1e-9);
    CHECK_NEAR(plan.chunk[1].input_grad_ms, 14.450688, 1e-9);
    CHECK_NEAR(plan.chunk[1].weight_grad_ms, 13.402112, 1e-9);
    CHECK_NEAR(plan.chunk[0].activation_bytes, 161792, 0);
    CHECK_NEAR(plan.chunk[1].activation_bytes, 172544, 0);
    /* Mixed-precision Adam: weights 2 bytes, gradients 2 bytes, optimizer
     * 12 bytes per parameter: 209408, 209408, 1256448. */
    CHECK_NEAR(plan.device[0].weight_bytes, 209408, 0);
    CHECK_NEAR(plan.device[0].gradient_bytes, 209408, 0);
    CHECK_NEAR(plan.device[0].optimizer_bytes, 1256448, 0);
    CHECK_NEAR(plan.device[1].kv_cache_bytes, 0, 0);

    /* The config got the same numbers: per-chunk costs, the largest
     * device's bytes, the pipeline link. */
    CHECK(cfg.forward.count == 2 && cfg.backward.count == 2 && cfg.weight.count == 2);
    CHECK_NEAR(cfg.forward.v[1], 13.9264, 1e-9);
    CHECK_NEAR(cfg.backward.v[1], 14.450688, 1e-9);
    CHECK_NEAR(cfg.weight.v[0], 2 * 3145728 * 2e-6, 1e-9);
    CHECK_NEAR(cfg.activation_bytes, 172544, 0);
    CHECK_NEAR(cfg.weight_bytes, 209408, 0);
    CHECK_NEAR(cfg.message_bytes, 4096, 0);
    CHECK_NEAR(cfg.bandwidth, 1e9, 0);
    CHECK_NEAR(cfg.latency, 0.01, 0);
    bs_model_plan_free(&plan);
    bs_config_free(&cfg);
}

static void test_recompute_and_tp(void)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    /* Selective: 34sbh = 69632 bytes; the attention core (131072 FLOP) is
     * recomputed in the input gradient: 3407872 + 131072 = 3538944. */
    if (!plan_of(&plan,
                 "{\"stages\": 2, \"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, "
                 "\"sequence\": 16, \"microbatch_size\": 2, \"recompute\": \"selective\"}, "
                 "\"hardware\": {\"peak_flops\": 1e9}}",
                 &cfg)) {
        CHECK_NEAR(plan.layer_activation_bytes, 69632, 0);
        CHECK_NEAR(plan.layer_input_grad_flops, 3538944, 0);
        bs_model_plan_free(&plan);
    }
    /* Full: only the layer input, 2sbh = 4096 bytes; a whole forward is
     * repeated: 3407872 + 3276800 = 6684672. */
    if (!plan_of(&plan,
                 "{\"stages\": 2, \"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, "
                 "\"sequence\": 16, \"microbatch_size\": 2, \"recompute\": \"full\"}, "
                 "\"hardware\": {\"peak_flops\": 1e9}}",
                 &cfg)) {
        CHECK_NEAR(plan.layer_activation_bytes, 4096, 0);
        CHECK_NEAR(plan.layer_input_grad_flops, 6684672, 0);
        bs_model_plan_free(&plan);
    }
    /* T = 2: one ring all-reduce of 4096 bytes over 2 devices:
     * 2*(T-1)*0.001 + 2*(T-1)/T * 4096 / 1e9 * 1000 = 0.002 + 0.004096 ms.
     * Chunk 0's forward: 6553600 / 2 FLOP = 6.5536 ms, plus two
     * all-reduces per layer for 2 layers: 4 * 0.006096 = 0.024384 ms.
     * Input gradient: 2*3407872/2 FLOP = 6.815744 ms + 0.024384. Weight
     * gradient: no all-reduce, 2*3145728/2 FLOP = 6.291456 ms. Bytes:
     * activations and parameters halve. */
    if (!plan_of(&plan, "{\"stages\": 2, \"tensor_parallel\": 2, " SMALL_MODEL "}", &cfg)) {
        CHECK_NEAR(plan.allreduce_ms, 0.006096, 1e-12);
        CHECK_NEAR(plan.chunk[0].forward_ms, 6.5536 + 0.024384, 1e-9);
        CHECK_NEAR(plan.chunk[0].input_grad_ms, 6.815744 + 0.024384, 1e-9);
        CHECK_NEAR(plan.chunk[0].weight_grad_ms, 6.291456, 1e-9);
        CHECK_NEAR(plan.layer_activation_bytes, 79872 / 2, 0);
        CHECK_NEAR(plan.chunk[0].parameters, 104704 / 2, 0);
        CHECK_NEAR(plan.message_bytes, 4096, 0);
        bs_model_plan_free(&plan);
    }
    /* Inference (forward schedule), M = 4: no gradients, no optimizer
     * state, no kept activations; KV cache of 2 layers for all M*b = 8
     * sequences: 2 * (2*s*M*b*h_kv*2) = 2 * 2*16*8*64*2 = 65536 bytes. */
    if (!plan_of(&plan,
                 "{\"schedule\": \"forward\", \"stages\": 2, \"microbatches\": 4, " SMALL_MODEL "}",
                 &cfg)) {
        CHECK(!plan.training);
        CHECK_NEAR(plan.device[0].kv_cache_bytes, 65536, 0);
        CHECK_NEAR(plan.device[0].gradient_bytes, 0, 0);
        CHECK_NEAR(plan.device[0].optimizer_bytes, 0, 0);
        CHECK_NEAR(plan.device[0].activation_bytes, 0, 0);
        CHECK_NEAR(cfg.backward.v[0], 0, 0);
        bs_model_plan_free(&plan);
    }
    /* kv_heads = 1 of 4: K and V projections shrink to h*16 each:
     * 2*4096 + 2*64*16 + 2*64*256 = 8192 + 2048 + 32768 = 43008. */
    if (!plan_of(&plan,
                 "{\"stages\": 1, \"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, "
                 "\"kv_heads\": 1, \"sequence\": 16}, \"hardware\": {\"peak_flops\": 1e9}}",
                 &cfg)) {
        CHECK_NEAR(plan.layer_parameters, 43008, 0);
        bs_model_plan_free(&plan);
    }
    bs_config_free(&cfg);
}

static void test_partition_keys(void)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    /* Even split of 10 layers over 4 chunks: floor((i+1)*10/4) - floor(i*10/4). */
    if (!plan_of(&plan,
                 "{\"stages\": 4, \"model\": {\"layers\": 10, \"hidden\": 64, \"heads\": 4, "
                 "\"sequence\": 16}, \"hardware\": {\"peak_flops\": 1e9}}",
                 &cfg)) {
        CHECK(plan.chunk[0].layers == 2 && plan.chunk[1].layers == 3 && plan.chunk[2].layers == 2 &&
              plan.chunk[3].layers == 3);
        CHECK(plan.chunk[3].first_layer == 7);
        bs_model_plan_free(&plan);
    }
    if (!plan_of(&plan, "{\"stages\": 2, \"layers_per_stage\": [3, 1], " SMALL_MODEL "}", &cfg)) {
        CHECK(plan.chunk[0].layers == 3 && plan.chunk[1].layers == 1);
        CHECK_NEAR(cfg.forward.v[0], 3 * 3276800 * 2e-6, 1e-9);
        bs_model_plan_free(&plan);
    }
    /* balance: the output layer (a large vocabulary) makes the last chunk
     * heavy, so it gets fewer layers. Per layer 3276800 + 3407872 +
     * 3145728 = 9830400 FLOP; the output layer 3 * 2*32*64*5000 =
     * 61440000 FLOP, worth 6.25 layers: 12 layers over 3 chunks split as
     * [6, 5, 1] (slowest 6 layers) rather than [4, 4, 4] (4 + 6.25). */
    if (!plan_of(&plan,
                 "{\"stages\": 3, \"balance\": true, \"model\": {\"layers\": 12, \"hidden\": 64, "
                 "\"heads\": 4, \"sequence\": 16, \"microbatch_size\": 2, \"vocabulary\": 5000}, "
                 "\"hardware\": {\"peak_flops\": 1e9}}",
                 &cfg)) {
        int worst = plan.chunk[0].layers > plan.chunk[1].layers ? plan.chunk[0].layers
                                                                : plan.chunk[1].layers;
        CHECK_MSG(worst == 6 && plan.chunk[2].layers == 1, "split %d %d %d", plan.chunk[0].layers,
                  plan.chunk[1].layers, plan.chunk[2].layers);
        bs_model_plan_free(&plan);
    }
    bs_config_free(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = parse(&cfg, text, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, needle),
              "rc %d, message \"%s\", want \"%s\"", rc, err.message, needle);
    bs_config_free(&cfg);
}

static void test_errors(void)
{
    expect_error("{\"costs\": {\"forward\": 2}, " SMALL_MODEL "}",
                 "t.json: costs.forward: a config with a \"model\"");
    expect_error("{\"network\": {\"latency\": 2}, " SMALL_MODEL "}", "t.json: network.latency:");
    expect_error("{\"tensor_parallel\": 2}",
                 "t.json: tensor_parallel: only a config with a \"model\"");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": \"x\", \"heads\": 4, \"sequence\": 8}, "
                 "\"hardware\": {\"peak_flops\": 1}}",
                 "t.json: model.hidden: expected an integer from 1 to 10000000, got a string");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8}, "
                 "\"hardware\": {\"peak_flops\": 1}, \"tensor_parallel\": 3}",
                 "t.json: tensor_parallel: T = 3 must divide model.heads = 4");
    expect_error("{\"model\": {\"hidden\": 64, \"heads\": 4, \"sequence\": 8}, "
                 "\"hardware\": {\"peak_flops\": 1}}",
                 "t.json: model.layers: missing");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8}}",
                 "t.json: hardware: missing");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8, "
                 "\"depth\": 3}, \"hardware\": {\"peak_flops\": 1}}",
                 "t.json: model.depth: unknown key; expected one of layers, hidden");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8, "
                 "\"recompute\": \"some\"}, \"hardware\": {\"peak_flops\": 1}}",
                 "model.recompute: expected \"none\", \"selective\" or \"full\", got \"some\"");
    expect_error("{\"stages\": 2, \"layers_per_stage\": [1, 2, 1], " SMALL_MODEL "}",
                 "t.json: layers_per_stage: has 3 entries; expected P*V = 2");
    expect_error("{\"stages\": 2, \"layers_per_stage\": [1, 2], " SMALL_MODEL "}",
                 "t.json: layers_per_stage: sums to 3 layers; expected model.layers = 4");
    expect_error("{\"stages\": 2, \"layers_per_stage\": [4, 0], " SMALL_MODEL "}",
                 "t.json: layers_per_stage[1]: expected an integer from 1");
    expect_error("{\"stages\": 8, " SMALL_MODEL "}",
                 "t.json: model.layers: 4 layers cannot fill P*V = 8 model chunks");
    expect_error("{\"balance\": 1, " SMALL_MODEL "}", "t.json: balance: expected true or false");
    expect_error("{\"zero_stage\": 4, " SMALL_MODEL "}",
                 "t.json: zero_stage: expected an integer from 0 to 3, got 4");
    expect_error("{\"zero_stage\": \"1\", " SMALL_MODEL "}",
                 "t.json: zero_stage: expected an integer from 0 to 3, got a string");
    expect_error("{\"data_parallel\": 0, " SMALL_MODEL "}",
                 "t.json: data_parallel: expected an integer from 1 to 65536, got 0");
    expect_error("{\"data_parallel\": 1e300, " SMALL_MODEL "}",
                 "t.json: data_parallel: expected an integer from 1 to 65536");
    expect_error("{\"data_parallel\": 2.5, " SMALL_MODEL "}",
                 "t.json: data_parallel: expected an integer from 1 to 65536, got 2.5");
    expect_error("{\"data_parallel\": 2}", "t.json: data_parallel: only a config with a \"model\"");
    expect_error("{\"overlap_grad_reduce\": 1, " SMALL_MODEL "}",
                 "t.json: overlap_grad_reduce: expected true or false, got a number");
    expect_error(
        "{\"parallel_order\": \"pp-dp-tp\", " SMALL_MODEL "}",
        "t.json: parallel_order: expected \"tp-dp-pp\" or \"tp-pp-dp\", got another string");
    expect_error("{\"parallel_order\": \"\", " SMALL_MODEL "}",
                 "t.json: parallel_order: expected \"tp-dp-pp\" or \"tp-pp-dp\"");
    expect_error(
        "{\"tensor_parallel\": 2, \"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, "
        "\"sequence\": 8}, \"hardware\": {\"peak_flops\": 1, \"gpus_per_node\": 3}}",
        "t.json: hardware.gpus_per_node: 3 and tensor_parallel = 2 must divide one another");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8}, "
                 "\"hardware\": {\"peak_flops\": 1, \"node_bandwidth\": -1}}",
                 "t.json: hardware.node_bandwidth: expected a finite number >= 0, got -1");
    expect_error("{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8}, "
                 "\"hardware\": {\"peak_flops\": 1, \"memory_bandwidth\": \"fast\"}}",
                 "t.json: hardware.memory_bandwidth: expected a finite number >= 0, got a string");
    expect_error(
        "{\"model\": {\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 8}, "
        "\"hardware\": {\"peak_flops\": 1, \"efficiency_half_tokens\": 1e300}}",
        "t.json: hardware.efficiency_half_tokens: expected a finite number >= 0, got 1e+300");

    /* --set reaches the model keys. */
    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_override ov[] = {{"tensor_parallel", "2"}, {"model.microbatch_size", "4"}};
    int rc = bs_config_parse(&cfg, "{\"stages\": 2, " SMALL_MODEL "}", "t.json", ov, 2, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    /* b = 4 doubles the bytes of a message: 16*4*64*2. */
    CHECK_NEAR(cfg.message_bytes, 8192, 0);
    bs_override bad[] = {{"model.depth", "2"}};
    rc = bs_config_parse(&cfg, "{\"stages\": 2, " SMALL_MODEL "}", "t.json", bad, 1, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "model.depth: unknown key"), "%s",
              err.message);
    bs_config_free(&cfg);
}

/* The plan's placement is the program's, for every built-in schedule. */
static void test_placement(void)
{
    int built = 0, v_shaped = 0;
    for (size_t i = 0; i < bs_schedule_count(); i++) {
        const bs_schedule *s = bs_schedule_at(i);
        if (strcmp(s->name, "custom") == 0)
            continue;
        for (int v = 1; v <= 2; v++) {
            bs_config cfg;
            bs_program prog;
            bs_error err = {{0}};
            bs_config_init(&cfg);
            bs_program_init(&prog);
            snprintf(cfg.schedule, sizeof cfg.schedule, "%s", s->name);
            cfg.stages = 4;
            cfg.virtual_stages = v;
            cfg.microbatches = 8;
            if (bs_program_build(&prog, &cfg, &err) == BS_OK) {
                built++;
                int is_v = v == 2 && prog.stage_device[4] == 3;
                v_shaped += is_v;
                /* The record's v_shape is what decides the V placement. */
                if (v == 2)
                    CHECK_MSG(is_v == (s->v_shape != 0), "%s: program V-shaped %d, v_shape %d",
                              s->name, is_v, s->v_shape);
                for (int c = 0; c < prog.stages; c++)
                    CHECK_MSG(bs_model_chunk_device(&cfg, c) == prog.stage_device[c],
                              "%s V=%d chunk %d: plan %d, program %d", s->name, v, c,
                              bs_model_chunk_device(&cfg, c), prog.stage_device[c]);
            }
            bs_program_free(&prog);
            bs_config_free(&cfg);
        }
    }
    /* gpipe, 1f1b, pipedream, forward, zb-h1, zb-h2 at V = 1; interleaved,
     * zbv, dualpipev, v-min, v-half, looped-bfs at V = 2, four of them
     * V-shaped. */
    CHECK_MSG(built >= 10 && v_shaped >= 4, "built %d, V-shaped %d", built, v_shaped);
}

/* Memory of a simulated run: 1F1B at P = 2, M = 4 holds 2 micro-batches on
 * device 0 and 1 on device 1; PipeDream at P = 2 stashes one extra weight
 * version on device 0. */
static void test_memory(void)
{
    static const char *const schedules[] = {"1f1b", "pipedream"};
    for (int k = 0; k < 2; k++) {
        char text[1024];
        bs_config cfg;
        bs_model_plan plan;
        bs_context *ctx = NULL;
        const bs_result *res = NULL;
        bs_error err = {{0}};
        bs_config_init(&cfg);
        memset(&plan, 0, sizeof plan);
        snprintf(text, sizeof text,
                 "{\"schedule\": \"%s\", \"stages\": 2, \"microbatches\": 4, " SMALL_MODEL "}",
                 schedules[k]);
        if (plan_of(&plan, text, &cfg))
            continue;
        CHECK(bs_context_create(&ctx) == BS_OK);
        int rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
        CHECK_MSG(rc == BS_OK, "%s", err.message);
        if (rc == BS_OK) {
            bs_model_memory mm;
            bs_model_memory_of(&mm, &plan, res, 0);
            /* 2 micro-batches of chunk 0 (161792 bytes each); static
             * 209408 + 209408 + 1256448 = 1675264. */
            CHECK_NEAR(mm.activations, 2 * 161792, 0);
            CHECK_NEAR(mm.total, 2 * 161792 + 1675264 + mm.stashed_weights, 0);
            /* run --json reports the same figures. */
            CHECK(res->has_memory);
            CHECK_NEAR(res->device[0].memory.total, mm.total, 0);
            CHECK_NEAR(res->device[0].memory.other, mm.stashed_weights, 0);
            CHECK(res->device[0].memory.fits == 1); /* limit 1e9 */
            if (k == 0)
                CHECK_NEAR(mm.stashed_weights, 0, 0);
            else
                CHECK_NEAR(mm.stashed_weights, (res->device[0].weight_versions - 1) * 209408.0, 0);
            if (k == 1)
                CHECK(res->device[0].weight_versions == 2);
            bs_model_memory_of(&mm, &plan, res, 1);
            CHECK_NEAR(mm.activations, 172544, 0);
        }
        bs_context_free(&ctx);
        bs_model_plan_free(&plan);
        bs_config_free(&cfg);
    }
}

/* V placement: device 0 holds chunk 0 (embedding) and chunk 3 (logits),
 * device 1 chunks 1 and 2. One layer per chunk of the small model:
 *   chunk 0: 79872 + embedding dropout mask 32*64 = 81920 bytes,
 *   chunks 1, 2: 79872 bytes,
 *   chunk 3: 79872 + fp32 logits 4*32*100 = 92672 bytes.
 * In the order below device 0 runs 0F0, 0F1, 3F0, ...: at its peak it
 * holds two micro-batches of chunk 0 and one of chunk 3, 2*81920 + 92672 =
 * 256512 bytes, where the mean of its chunks would say 3/2 * (81920 +
 * 92672) = 261888. Device 1 (1F0, 2F0, 1F1, 2F1) holds 4 * 79872. */
static void test_v_placement_memory(void)
{
    const char *text =
        "{\"schedule\": \"custom\", \"stages\": 2, \"virtual_stages\": 2, "
        "\"microbatches\": 2, \"placement\": \"v\", "
        "\"order\": [[\"0F0\", \"0F1\", \"3F0\", \"3B0\", \"3F1\", \"3B1\", \"0B0\", \"0B1\"],"
        "            [\"1F0\", \"2F0\", \"1F1\", \"2F1\", \"2B0\", \"1B0\", \"2B1\", "
        "\"1B1\"]], " SMALL_MODEL "}";
    bs_config cfg;
    bs_context *ctx = NULL;
    const bs_result *res = NULL;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = parse(&cfg, text, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK && bs_context_create(&ctx) == BS_OK) {
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
        CHECK_MSG(rc == BS_OK, "%s", err.message);
        if (rc == BS_OK) {
            CHECK(res->has_memory);
            CHECK_NEAR(res->device[0].memory.activations, 256512, 1e-6);
            CHECK_NEAR(res->device[1].memory.activations, 4 * 79872, 1e-6);
            /* Static: chunks 0 and 3 each 49152 + 6400 parameters; chunks
             * 1 and 2 49152 each; 16 bytes per parameter in all. */
            CHECK_NEAR(res->device[0].memory.weights, 2 * 55552 * 2, 0);
            CHECK_NEAR(res->device[0].memory.total, 256512 + 2 * 55552 * 16, 1e-6);
            CHECK_NEAR(res->device[1].memory.total, 4 * 79872 + 2 * 49152 * 16, 1e-6);
        }
    }
    bs_context_free(&ctx);
    bs_config_free(&cfg);

    /* zbv places chunks the same way: device 0 never holds more than
     * M = 1 micro-batch of chunk 0 plus one of chunk 3. */
    bs_config_init(&cfg);
    rc = parse(&cfg,
               "{\"schedule\": \"zbv\", \"stages\": 2, \"virtual_stages\": 2, "
               "\"microbatches\": 1, " SMALL_MODEL "}",
               &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    if (rc == BS_OK && bs_context_create(&ctx) == BS_OK) {
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
        CHECK_MSG(rc == BS_OK, "%s", err.message);
        if (rc == BS_OK)
            CHECK_NEAR(res->device[0].memory.activations, 81920 + 92672, 1e-6);
    }
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

/* GPT-3 175B (L = 96, h = 12288, a = 96, s = 2048, v = 51200), selective
 * recomputation, b = 8, 1F1B over P = 8 stages of T = 8, M = 128. */
#define GPT3                                                                                       \
    "\"model\": {\"layers\": 96, \"hidden\": 12288, \"heads\": 96, \"sequence\": 2048, "           \
    "\"microbatch_size\": 8, \"vocabulary\": 51200, \"recompute\": \"selective\"}, "               \
    "\"hardware\": {\"peak_flops\": 312e12, \"efficiency\": 0.5, \"memory_bytes\": 85899345920}"

static const bs_result *run_text(bs_context *ctx, bs_config *cfg, const char *text)
{
    const bs_result *res = NULL;
    bs_error err = {{0}};
    int rc = parse(cfg, text, &err);
    if (!rc)
        rc = bs_context_run(ctx, cfg, NULL, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    return rc ? NULL : res;
}

/* Whole-device memory of GPT-3 175B layouts, by hand:
 *   layer parameters 12h^2 = 1811939328; per device (T = 8) 12 layers:
 *   2717908992, plus the embedding (device 0) or output layer (device 7)
 *   vh/T = 78643200: 2796552192 parameters; weights 2 bytes, gradients 2,
 *   optimizer 12: 5593104384, 5593104384, 33558626304.
 *   Activations per layer and micro-batch, selective: 34sbh/T =
 *   34*2048*8*12288/8 = 855638016; 12 layers 10267656192. Device 0 adds
 *   the embedding's dropout mask sbh/T = 25165824 and holds P = 8
 *   micro-batches under 1F1B: 8 * 10292822016 = 82342576128. Device 7
 *   adds fp32 logits 4sbv/T = 419430400 and holds 1: 10687086592. */
static void test_gpt3_memory(void)
{
    bs_context *ctx = NULL;
    bs_config cfg;
    bs_config_init(&cfg);
    if (bs_context_create(&ctx) != BS_OK)
        return;
    const bs_result *res =
        run_text(ctx, &cfg,
                 "{\"schedule\": \"1f1b\", \"stages\": 8, \"microbatches\": 128, "
                 "\"tensor_parallel\": 8, " GPT3 "}");
    if (res) {
        const bs_device_memory *m0 = &res->device[0].memory, *m7 = &res->device[7].memory;
        CHECK_NEAR(m0->weights, 5593104384.0, 0);
        CHECK_NEAR(m0->gradients, 5593104384.0, 0);
        CHECK_NEAR(m0->optimizer, 33558626304.0, 0);
        CHECK_NEAR(m0->activations, 82342576128.0, 1);
        CHECK_NEAR(m0->total, 5593104384.0 * 2 + 33558626304.0 + 82342576128.0, 1);
        CHECK(m0->fits == 0); /* 118.4 GiB > 80 GiB */
        CHECK_NEAR(m7->activations, 10687086592.0, 1);
        CHECK(m7->fits == 1);
        CHECK_NEAR(res->peak_memory, m0->total, 0);
    }
    /* The second layout: the same pipeline replicated D = 8 times (512
     * devices) with ZeRO-1: the optimizer state is split over D,
     * 33558626304 / 8 = 4194828288; weights and gradients stay. Device 0:
     * 5593104384 * 2 + 4194828288 + 82342576128 = 97723613184 bytes
     * (91.0 GiB, still over 80 GiB); device 1 holds 7 micro-batches of
     * 12 layers, 7 * 10267656192, and 2717908992 parameters:
     * 2717908992 * (2 + 2 + 12/8) + 71873593344 = 86822092800 bytes. */
    res = run_text(ctx, &cfg,
                   "{\"schedule\": \"1f1b\", \"stages\": 8, \"microbatches\": 16, "
                   "\"tensor_parallel\": 8, \"data_parallel\": 8, \"zero_stage\": 1, " GPT3 "}");
    if (res) {
        const bs_device_memory *m0 = &res->device[0].memory, *m1 = &res->device[1].memory;
        CHECK_NEAR(m0->optimizer, 4194828288.0, 0);
        CHECK_NEAR(m0->total, 97723613184.0, 1);
        CHECK_NEAR(m1->total, 86822092800.0, 1);
        CHECK(m0->fits == 0 && res->device[7].memory.fits == 1);
    }
    /* ZeRO-3 on the same layout: weights and gradients split over D too,
     * plus the largest layer gathered twice, 2 * 1811939328/8 * 2 =
     * 905969664 bytes: device 0 holds 2796552192 * 16/8 + 905969664 +
     * 82342576128 = 88841650176 bytes. */
    res = run_text(ctx, &cfg,
                   "{\"schedule\": \"1f1b\", \"stages\": 8, \"microbatches\": 16, "
                   "\"tensor_parallel\": 8, \"data_parallel\": 8, \"zero_stage\": 3, " GPT3 "}");
    if (res) {
        CHECK_NEAR(res->device[0].memory.other, 905969664.0, 0);
        CHECK_NEAR(res->device[0].memory.total, 88841650176.0, 1);
    }
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

/* Ring collectives against their closed forms. */
static void test_collective_times(void)
{
    /* One node: all-reduce of 1e9 bytes over D = 8 at 1e10 B/s, 0.01 ms a
     * step: 2*7/8 * 1e9/1e10 s = 175 ms, plus 2*7*0.01 = 0.14 ms. */
    bs_group g = {8, 0, 1e10, 0.01, 1e9, 0.5};
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, 1e9, &g), 175.14, 1e-9);
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_REDUCE_SCATTER, 1e9, &g), 87.57, 1e-9);
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_GATHER, 1e9, &g), 87.57, 1e-9);
    /* Every member on its own node: the same ring over the node link:
     * 2*7/8 * 1e9/1e9 s = 1750 ms + 14 * 0.5 = 1757 ms. */
    g.per_node = 1;
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, 1e9, &g), 1757, 1e-9);
    /* Two nodes of 4: inside, one ring phase over 4 (3/4 * 1e9/1e10 s =
     * 75 ms + 3 * 0.01); across, one phase of the 2.5e8-byte shard over 2
     * nodes (1/2 * 2.5e8/1e9 s = 125 ms + 0.5); twice for an all-reduce:
     * 2 * (75.03 + 125.5) = 401.06 ms. */
    g.per_node = 4;
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, 1e9, &g), 401.06, 1e-9);
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_REDUCE_SCATTER, 1e9, &g), 200.53, 1e-9);
    /* One member, or unlimited bandwidth and no latency: free. */
    g.size = 1;
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, 1e9, &g), 0, 0);
    bs_group free_link = {4, 0, 0, 0, 0, 0};
    CHECK_NEAR(bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, 1e9, &free_link), 0, 0);
}

/* ZeRO: 2 + 2 + 12 bytes per parameter, split over D by stage. Device 0
 * of the small model at P = 2 holds p = 104704 parameters (two layers and
 * the embedding), D = 4. */
static void test_zero_memory(void)
{
    static const double expect[4][3] = {
        /* weights, gradients, optimizer, in bytes per parameter */
        {2, 2, 12},
        {2, 2, 3},
        {2, 0.5, 3},
        {0.5, 0.5, 3},
    };
    const double p = 104704;
    for (int z = 0; z < 4; z++) {
        char text[1024];
        bs_config cfg;
        bs_context *ctx = NULL;
        bs_config_init(&cfg);
        snprintf(text, sizeof text,
                 "{\"stages\": 2, \"microbatches\": 4, \"data_parallel\": 4, \"zero_stage\": "
                 "%d, " SMALL_MODEL "}",
                 z);
        if (bs_context_create(&ctx) != BS_OK)
            break;
        const bs_result *res = run_text(ctx, &cfg, text);
        if (res) {
            const bs_device_memory *m = &res->device[0].memory;
            CHECK_NEAR(m->weights, expect[z][0] * p, 1e-6);
            CHECK_NEAR(m->gradients, expect[z][1] * p, 1e-6);
            CHECK_NEAR(m->optimizer, expect[z][2] * p, 1e-6);
            /* ZeRO-3 keeps the largest layer gathered twice: 2 * 49152 * 2
             * bytes (a layer is larger than the 6400-parameter embedding). */
            CHECK_NEAR(m->buffers, z == 3 ? 196608 : 0, 0);
            CHECK_NEAR(m->total,
                       m->weights + m->gradients + m->optimizer + m->activations + m->buffers,
                       1e-6);
        }
        bs_context_free(&ctx);
        bs_config_free(&cfg);
    }
}

/* The gradient all-reduce on the timeline: 1F1B, P = 2, M = 4, D = 2 on
 * one node (tp_bandwidth 1e9 B/s, tp_latency 0.001 ms). Device 0's chunk
 * has 104704 parameters, 209408 bytes of gradients: all-reduce 2*1/2 *
 * 209408/1e9 s = 0.209408 ms + 2 * 0.001 = 0.211408 ms; device 1's the
 * same. The compute is unchanged; device 0 ends last. */
static void test_dp_timeline(void)
{
    bs_context *ctx = NULL, *ctx0 = NULL;
    bs_config cfg, cfg0;
    bs_config_init(&cfg);
    bs_config_init(&cfg0);
    if (bs_context_create(&ctx) != BS_OK || bs_context_create(&ctx0) != BS_OK)
        goto done;
    const bs_result *base =
        run_text(ctx0, &cfg0, "{\"stages\": 2, \"microbatches\": 4, " SMALL_MODEL "}");
    if (!base)
        goto done;
    const double c = 0.211408, base_makespan = base->makespan;
    /* Without overlap: after device 0's last backward, c more. */
    const bs_result *res = run_text(ctx, &cfg,
                                    "{\"stages\": 2, \"microbatches\": 4, \"data_parallel\": 2, "
                                    "\"overlap_grad_reduce\": false, " SMALL_MODEL "}");
    if (res) {
        CHECK(res->collectives == 2);
        CHECK_NEAR(res->makespan, base->makespan + c, 1e-9);
        CHECK_NEAR(res->device[0].collective_time, c, 1e-9);
        CHECK_NEAR(res->busy, base->busy, 1e-9); /* collectives are not compute */
    }
    /* With overlap: device 0's last op is its last backward, from a to b,
     * two layers, so two buckets: the collective ends at max(a + B/2 + c,
     * b + c/2). */
    const bs_program *prog = base->timeline->program;
    size_t last = prog->device_first[1] - 1;
    double a = base->timeline->times[last].start, b = base->timeline->times[last].end;
    double expect_end = fmax(a + (b - a) / 2 + c, b + c / 2);
    res = run_text(ctx, &cfg,
                   "{\"stages\": 2, \"microbatches\": 4, \"data_parallel\": 2, "
                   "\"overlap_grad_reduce\": true, " SMALL_MODEL "}");
    if (res) {
        CHECK(res->collectives == 2);
        CHECK_NEAR(res->makespan, fmax(base->makespan, expect_end), 1e-9);
        CHECK(res->makespan < base->makespan + c);
    }
    /* Two iterations with an optimizer step: the step waits for the
     * collectives, so iteration 2 starts c later than without DP. */
    const bs_result *base2 = run_text(ctx0, &cfg0,
                                      "{\"stages\": 2, \"microbatches\": 4, \"iterations\": 2, "
                                      "\"costs\": {\"optimizer\": 1}, " SMALL_MODEL "}");
    double base2_makespan = base2 ? base2->makespan : 0;
    res = run_text(ctx, &cfg,
                   "{\"stages\": 2, \"microbatches\": 4, \"iterations\": 2, \"data_parallel\": 2, "
                   "\"costs\": {\"optimizer\": 1}, " SMALL_MODEL "}");
    if (res && base2) {
        CHECK(res->collectives == 4);
        CHECK_NEAR(res->makespan, base2_makespan + 2 * c, 1e-9);
    }
    /* ZeRO-2 keeps a gradient shard: every one of the 2 * 4 backwards
     * reduce-scatters its chunk's gradients, (D-1)/D * 209408 / 1e9 s +
     * 0.001 ms = 0.105704 ms each, so device 0's stream is busy 4 times
     * that. */
    res = run_text(ctx, &cfg,
                   "{\"stages\": 2, \"microbatches\": 4, \"data_parallel\": 2, "
                   "\"zero_stage\": 2, " SMALL_MODEL "}");
    if (res) {
        CHECK(res->collectives == 8);
        CHECK_NEAR(res->device[0].collective_time, 4 * 0.105704, 1e-9);
        CHECK_NEAR(res->makespan, base_makespan + 0.105704, 1e-9);
    }
    /* Inference has no gradients: no collective. */
    res = run_text(ctx, &cfg,
                   "{\"schedule\": \"forward\", \"stages\": 2, \"microbatches\": 4, "
                   "\"data_parallel\": 2, " SMALL_MODEL "}");
    if (res)
        CHECK(res->collectives == 0);
done:
    bs_context_free(&ctx);
    bs_context_free(&ctx0);
    bs_config_free(&cfg);
    bs_config_free(&cfg0);
}

/* Runs text with messages recorded; NULL (and a failed check) on error. */
static const bs_result *run_recorded(bs_context *ctx, bs_config *cfg, const char *text)
{
    const bs_result *res = NULL;
    bs_error err = {{0}};
    int rc = parse(cfg, text, &err);
    if (!rc)
        rc = bs_context_run(ctx, cfg, &(bs_run_options){1}, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    return rc ? NULL : res;
}

/* Topology: with T = 2 on 2-device nodes, pipeline device 1 is rank 2, on
 * the second node, so its messages use the node link: 0.5 ms + 4096 bytes
 * at 1e8 B/s = 0.04096 ms. On one 4-device node they use the pipeline
 * link: 0.01 ms + 4096 / 1e9 s = 0.014096 ms. */
static void test_pipeline_topology(void)
{
    bs_context *ctx = NULL;
    bs_config cfg;
    bs_config_init(&cfg);
    if (bs_context_create(&ctx) != BS_OK)
        return;
    static const struct {
        int per_node;
        double message_ms;
    } cases[] = {{2, 0.54096}, {4, 0.014096}, {0, 0.014096}};
    for (int k = 0; k < 3; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 1, "
                 "\"tensor_parallel\": 2, \"model\": {\"layers\": 4, \"hidden\": 64, "
                 "\"heads\": 4, \"sequence\": 16, \"microbatch_size\": 2}, \"hardware\": "
                 "{\"peak_flops\": 1e9, \"bandwidth\": 1e9, \"latency\": 0.01, "
                 "\"gpus_per_node\": %d, \"node_bandwidth\": 1e8, \"node_latency\": 0.5}}",
                 cases[k].per_node);
        const bs_result *res = run_recorded(ctx, &cfg, text);
        if (res && res->timeline->message_count > 0) {
            const bs_message *m = &res->timeline->messages[0];
            CHECK_NEAR(m->arrive - m->start, cases[k].message_ms, 1e-12);
        }
    }
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

/* The link model, blocking sends and the per-op overhead, on hand
 * configs: GPipe, P = 2, M = 2, F = 1 ms, B = 2 ms, latency 5 ms,
 * 1000 bytes at 1e6 B/s (1 ms). */
static void test_costs_measured(void)
{
    bs_context *ctx = NULL;
    bs_config cfg;
    bs_config_init(&cfg);
    if (bs_context_create(&ctx) != BS_OK)
        return;
#define HAND                                                                                       \
    "\"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 2, \"costs\": {\"forward\": 1, "    \
    "\"backward\": 2"
#define NET "\"network\": {\"latency\": 5, \"bandwidth\": 1e6, \"message_bytes\": 1000"
    /* Latency holds the link (default): F(0,0) ends at 1, its message
     * holds the link 1..7; F(0,1) ends at 2 and its message waits: 7..13. */
    const bs_result *res = run_recorded(ctx, &cfg, "{" HAND "}, " NET "}}");
    if (res && res->timeline->message_count >= 2) {
        CHECK_NEAR(res->timeline->messages[1].start, 7, 1e-12);
        CHECK_NEAR(res->timeline->messages[1].arrive, 13, 1e-12);
    }
    /* Only the transfer serialises: the link is busy 1..2, the second
     * message goes at 2 and arrives at 2 + 5 + 1 = 8. */
    res = run_recorded(ctx, &cfg, "{" HAND "}, " NET ", \"latency_holds_link\": false}}");
    if (res && res->timeline->message_count >= 2) {
        CHECK_NEAR(res->timeline->messages[1].start, 2, 1e-12);
        CHECK_NEAR(res->timeline->messages[1].arrive, 8, 1e-12);
    }
    /* Blocking: device 0 waits for its first message to arrive (at 7)
     * before its second forward, which then runs 7..8. */
    res = run_recorded(ctx, &cfg, "{" HAND "}, " NET ", \"blocking\": true}}");
    if (res) {
        const bs_program *prog = res->timeline->program;
        CHECK_NEAR(res->timeline->times[prog->device_first[0] + 1].start, 7, 1e-12);
    }
    /* Overhead: every op 0.5 ms longer; with free links GPipe's makespan
     * (M + P - 1)(F + B) becomes 3 * (1.5 + 2.5) = 12 ms. */
    res = run_recorded(ctx, &cfg, "{" HAND ", \"overhead\": 0.5}}");
    if (res)
        CHECK_NEAR(res->makespan, 12, 1e-12);
    bs_config_free(&cfg);
    bs_error err = {{0}};
    int rc = parse(&cfg, "{" HAND "}, " NET ", \"blocking\": \"yes\"}}", &err);
    CHECK_MSG(rc == BS_ERR_INVALID &&
                  strstr(err.message, "network.blocking: expected true or false, got a string"),
              "%s", err.message);
    rc = parse(&cfg, "{" HAND ", \"overhead\": -1}}", &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "costs.overhead: expected"), "%s",
              err.message);
#undef HAND
#undef NET
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

/* Roofline (hardware.memory_bandwidth): the small model's layer moves,
 * per matmul e(tk + kn + tn) bytes with t = 32: Q,K,V (k 64, n 192) 40960,
 * output projection 16384, MLP up and down 53248 each: 163840; attention
 * core e(2as^2b + 4th) = 2(4096 + 8192) = 24576. At 1e6 B/s every kernel
 * is memory-bound (the layer's 3276800 FLOP take 6.5536 ms, its bytes
 * 188.416 ms): chunk 0 (two layers) forward 2 * 188.416 = 376.832 ms,
 * input gradient 2 * (163840 + 2 * 24576) / 1e3 = 425.984 ms, weight
 * gradient 2 * 163.84 = 327.68 ms. At 1e18 B/s compute decides and the
 * times are those of the FLOP count. */
static void test_roofline(void)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    if (plan_of(&plan,
                "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, \"model\": "
                "{\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 16, "
                "\"microbatch_size\": 2, \"vocabulary\": 100}, \"hardware\": {\"peak_flops\": 1e9, "
                "\"efficiency\": 0.5, \"memory_bandwidth\": 1e6}}",
                &cfg) == BS_OK) {
        CHECK_NEAR(plan.chunk[0].forward_ms, 376.832, 1e-9);
        CHECK_NEAR(plan.chunk[0].input_grad_ms, 425.984, 1e-9);
        CHECK_NEAR(plan.chunk[0].weight_grad_ms, 327.68, 1e-9);
    }
    bs_model_plan_free(&plan);
    if (plan_of(&plan,
                "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, \"model\": "
                "{\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 16, "
                "\"microbatch_size\": 2, \"vocabulary\": 100}, \"hardware\": {\"peak_flops\": 1e9, "
                "\"efficiency\": 0.5, \"memory_bandwidth\": 1e18}}",
                &cfg) == BS_OK) {
        CHECK_NEAR(plan.chunk[0].forward_ms, 13.1072, 1e-9);
        CHECK_NEAR(plan.chunk[1].forward_ms, 13.9264, 1e-9);
        CHECK_NEAR(plan.chunk[1].input_grad_ms, 14.450688, 1e-9);
        CHECK_NEAR(plan.chunk[1].weight_grad_ms, 13.402112, 1e-9);
    }
    bs_model_plan_free(&plan);
    /* Efficiency curve: with half = s*b = 32 tokens the layer runs at half
     * the efficiency, so chunk 0's forward takes twice 13.1072 ms. */
    if (plan_of(&plan,
                "{\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, \"model\": "
                "{\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"sequence\": 16, "
                "\"microbatch_size\": 2, \"vocabulary\": 100}, \"hardware\": {\"peak_flops\": 1e9, "
                "\"efficiency\": 0.5, \"efficiency_half_tokens\": 32}}",
                &cfg) == BS_OK)
        CHECK_NEAR(plan.chunk[0].forward_ms, 2 * 13.1072, 1e-9);
    bs_model_plan_free(&plan);
    bs_config_free(&cfg);
}

/* Every split of n layers into k non-empty chunks, by recursion. */
static double brute(const double *cost, int n, int k, double first, double last, int from,
                    int chunk, double worst_so_far)
{
    if (chunk == k - 1) {
        double c = (from == 0 ? first : 0) + last;
        for (int i = from; i < n; i++)
            c += cost[i];
        return c > worst_so_far ? c : worst_so_far;
    }
    double best = 1e300;
    for (int end = from + 1; end <= n - (k - 1 - chunk); end++) {
        double c = from == 0 ? first : 0;
        for (int i = from; i < end; i++)
            c += cost[i];
        double w =
            brute(cost, n, k, first, last, end, chunk + 1, c > worst_so_far ? c : worst_so_far);
        if (w < best)
            best = w;
    }
    return best;
}

static void test_partition_brute_force(void)
{
    unsigned seed = 12345;
    int cases = 0;
    for (int n = 1; n <= 10; n++)
        for (int k = 1; k <= n && k <= 6; k++)
            for (int rep = 0; rep < 6; rep++) {
                double cost[10], first, last;
                int counts[10];
                for (int i = 0; i < n; i++) {
                    seed = seed * 1103515245u + 12345u;
                    /* Small integers make ties, where a wrong crossing shows. */
                    cost[i] =
                        rep < 3 ? (double)((seed >> 16) % 5 + 1) : (double)((seed >> 8) % 1000) / 7;
                }
                seed = seed * 1103515245u + 12345u;
                first = rep % 2 ? (double)((seed >> 16) % 7) : 0;
                last = rep % 3 ? (double)((seed >> 20) % 11) : 0;
                double got = bs_partition_balanced(counts, cost, n, k, first, last);
                double want = brute(cost, n, k, first, last, 0, 0, 0);
                CHECK_MSG(fabs(got - want) <= 1e-9 * (1 + want),
                          "n=%d k=%d rep=%d: got %g, brute force %g", n, k, rep, got, want);
                /* The counts returned achieve the value. */
                int sum = 0, at = 0;
                double worst = 0;
                for (int c = 0; c < k; c++) {
                    double w = (c == 0 ? first : 0) + (c == k - 1 ? last : 0);
                    CHECK(counts[c] >= 1);
                    for (int i = 0; i < counts[c]; i++)
                        w += cost[at + i];
                    at += counts[c];
                    sum += counts[c];
                    if (w > worst)
                        worst = w;
                }
                CHECK(sum == n);
                CHECK_NEAR(worst, got, 1e-9 * (1 + got));
                cases++;
            }
    CHECK(cases > 200);
}

int main(void)
{
    test_layer_formulas();
    test_recompute_and_tp();
    test_partition_keys();
    test_errors();
    test_placement();
    test_memory();
    test_v_placement_memory();
    test_gpt3_memory();
    test_collective_times();
    test_zero_memory();
    test_dp_timeline();
    test_pipeline_topology();
    test_costs_measured();
    test_roofline();
    test_partition_brute_force();
    return check_finish("model");
}
