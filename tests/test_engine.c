/*
 * test_engine.c - the engine and validator on cases worked out by hand:
 * uneven stages, latency, a busy link, flushes with an optimizer step,
 * PipeDream's stream and staleness, per-chunk cost arrays, deadlocks and
 * structural errors.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

static const double tol = 1e-12;

static void set_values(bs_values *v, size_t n, const double *x)
{
    static double store[8][16];
    static int next;
    double *dst = store[next++ % 8];
    memcpy(dst, x, n * sizeof *x);
    *v = (bs_values){n, dst};
}

/* Finds the op (kind, stage, mb) in the program; -1 if absent. */
static long find_op(const bs_program *prog, int kind, int stage, uint32_t mb)
{
    for (size_t i = 0; i < prog->op_count; i++)
        if (prog->ops[i].kind == kind && prog->ops[i].stage == stage &&
            prog->ops[i].microbatch == mb)
            return (long)i;
    return -1;
}

#define CHECK_OP(res, k, s, mb, t0, t1)                                                            \
    do {                                                                                           \
        const bs_timeline *tl_ = (res)->timeline;                                                  \
        long i_ = find_op(tl_->program, k, s, mb);                                                 \
        CHECK_MSG(i_ >= 0, "op %d s%d m%d missing", k, s, mb);                                     \
        if (i_ >= 0) {                                                                             \
            CHECK_NEAR(tl_->times[i_].start, t0, tol);                                             \
            CHECK_NEAR(tl_->times[i_].end, t1, tol);                                               \
        }                                                                                          \
    } while (0)

static void uneven_with_latency(bs_context *ctx)
{
    /* P=2, M=1, forward [1,3], backward [2,4], latency 0.5:
     * F0 [0,1] -> arrives 1.5 -> F1 [1.5,4.5], B1 [4.5,8.5] -> arrives 9 -> B0 [9,11]. */
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "gpipe");
    cfg.stages = 2;
    cfg.microbatches = 1;
    set_values(&cfg.forward, 2, (double[]){1, 3});
    set_values(&cfg.backward, 2, (double[]){2, 4});
    cfg.latency = 0.5;
    const bs_result *r;
    bs_error err = {{0}};
    CHECK_MSG(bs_context_run(ctx, &cfg, &(bs_run_options){1}, &r, &err) == BS_OK, "%s",
              err.message);
    CHECK_NEAR(r->makespan, 11, tol);
    CHECK_OP(r, BS_OP_FORWARD, 0, 0, 0, 1);
    CHECK_OP(r, BS_OP_FORWARD, 1, 0, 1.5, 4.5);
    CHECK_OP(r, BS_OP_BACKWARD, 1, 0, 4.5, 8.5);
    CHECK_OP(r, BS_OP_BACKWARD, 0, 0, 9, 11);
    CHECK_NEAR(r->device[0].busy, 3, tol);
    CHECK_NEAR(r->device[1].busy, 7, tol);
    CHECK_NEAR(r->bubble_ratio, 1 - 10.0 / 22, tol);
    CHECK_NEAR(r->bubble_over_ideal, 12.0 / 10, tol);
    CHECK(r->formula.valid == 0); /* uneven costs, latency: no closed form */
    CHECK(r->messages == 2 && r->timeline->message_count == 2);
    const bs_message *msg = &r->timeline->messages[0];
    CHECK_NEAR(msg->ready, 1, tol);
    CHECK_NEAR(msg->arrive, 1.5, tol);
    CHECK(msg->src == 0 && msg->dst == 1);
    CHECK(r->timeline->program->ops[msg->consumer_op].stage == 1);
}

static void busy_link(bs_context *ctx)
{
    /* Forward-only P=2, M=2, F=1, 1000-byte messages at 1e6 B/s (1 ms) plus
     * latency 0.5: message 0 holds the link [1, 2.5]; message 1 is ready at 2
     * but waits for the link until 2.5 and arrives at 4. Device 1 runs
     * [2.5, 3.5] and [4, 5]. */
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "forward");
    cfg.stages = 2;
    cfg.microbatches = 2;
    cfg.latency = 0.5;
    cfg.bandwidth = 1e6;
    cfg.message_bytes = 1000;
    const bs_result *r;
    bs_error err = {{0}};
    CHECK_MSG(bs_context_run(ctx, &cfg, &(bs_run_options){1}, &r, &err) == BS_OK, "%s",
              err.message);
    CHECK_OP(r, BS_OP_FORWARD, 1, 0, 2.5, 3.5);
    CHECK_OP(r, BS_OP_FORWARD, 1, 1, 4, 5);
    CHECK_NEAR(r->makespan, 5, tol);
    CHECK_NEAR(r->timeline->messages[1].start, 2.5, tol);
    CHECK(r->message_bytes == 2000);
    CHECK(r->peak_activations == 0); /* inference keeps nothing for a backward */
}

static void flush_with_optimizer(bs_context *ctx)
{
    /* 1F1B P=2 M=2 F=B=1, optimizer 0.5, two iterations: each iteration takes
     * (M+P-1)(F+B) = 6, then the barrier and 0.5 of optimizer: 13 in all. */
    bs_config cfg;
    bs_config_init(&cfg);
    cfg.stages = 2;
    cfg.microbatches = 2;
    cfg.iterations = 2;
    cfg.optimizer = 0.5;
    set_values(&cfg.backward, 1, (double[]){1});
    const bs_result *r;
    bs_error err = {{0}};
    CHECK_MSG(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK, "%s", err.message);
    CHECK_NEAR(r->makespan, 13, tol);
    CHECK_NEAR(r->iteration_time, 6.5, tol);
    CHECK_OP(r, BS_OP_OPTIMIZER, 0, 0, 6, 6.5);
    CHECK_OP(r, BS_OP_FORWARD, 0, 2, 6.5, 7.5);
    CHECK(r->formula.valid == 0); /* the optimizer step is outside the closed form */
}

static void pipedream_stream(bs_context *ctx)
{
    /* PipeDream P=4, M=4, 2 iterations is 1F1B over 8 micro-batches with no
     * flush: makespan (8+3)*3 = 33; device 0 keeps 4 versions, staleness 3;
     * iteration time is the gap between the two iterations' last backwards. */
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "pipedream");
    cfg.microbatches = 4;
    cfg.iterations = 2;
    cfg.weight_bytes = 100;
    const bs_result *r;
    bs_error err = {{0}};
    CHECK_MSG(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK, "%s", err.message);
    CHECK_NEAR(r->makespan, 33, tol);
    CHECK(r->device[0].weight_versions == 4 && r->device[0].max_staleness == 3);
    CHECK(r->device[3].weight_versions == 1 && r->device[3].max_staleness == 0);
    CHECK_NEAR(r->device[0].weight_version_bytes, 400, tol);
    /* Device 0 finishes B(m3) at 3*... : iteration ends are the last
     * backward of micro-batches 3 and 7 on device 0. */
    const bs_timeline *tl = r->timeline;
    double end3 = tl->times[find_op(tl->program, BS_OP_BACKWARD, 0, 3)].end;
    double end7 = tl->times[find_op(tl->program, BS_OP_BACKWARD, 0, 7)].end;
    CHECK_NEAR(r->iteration_time, end7 - end3, tol);
}

static void chunk_cost_arrays(bs_context *ctx)
{
    /* Interleaved P=2 V=2 M=2 with backward 0: a P*V array gives per-chunk
     * costs in model order (chunks 0, 2 on device 0; 1, 3 on device 1); a
     * P array splits each device's cost over its V chunks. */
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "interleaved");
    cfg.stages = 2;
    cfg.microbatches = 2;
    cfg.virtual_stages = 2;
    set_values(&cfg.forward, 4, (double[]){1, 2, 3, 4});
    set_values(&cfg.backward, 1, (double[]){0});
    const bs_result *r;
    bs_error err = {{0}};
    CHECK_MSG(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK, "%s", err.message);
    CHECK_NEAR(r->device[0].busy, 2 * (1 + 3), tol);
    CHECK_NEAR(r->device[1].busy, 2 * (2 + 4), tol);
    set_values(&cfg.forward, 2, (double[]){2, 4});
    CHECK_MSG(bs_context_run(ctx, &cfg, NULL, &r, &err) == BS_OK, "%s", err.message);
    CHECK_NEAR(r->device[0].busy, 2 * 2, tol);
    CHECK_NEAR(r->device[1].busy, 2 * 4, tol);
    CHECK(r->formula.valid == 0);
}

/* A hand-written two-device program: each device's list as (kind, stage, mb). */
static int validate_lists(const int (*d0)[3], size_t n0, const int (*d1)[3], size_t n1,
                          bs_error *err)
{
    bs_program prog;
    bs_program_init(&prog);
    uint16_t placement[2] = {0, 1};
    size_t first[3] = {0, n0, n0 + n1};
    bs_op ops[32];
    for (size_t i = 0; i < n0 + n1; i++) {
        const int *o = i < n0 ? d0[i] : d1[i - n0];
        ops[i] = (bs_op){(uint32_t)o[2], (uint16_t)o[1], (uint8_t)o[0], 0};
    }
    prog.devices = 2;
    prog.stages = 2;
    prog.chunks_per_device = 1;
    prog.microbatches = 2;
    prog.per_iteration = 2;
    prog.stage_device = placement;
    prog.ops = ops;
    prog.op_count = n0 + n1;
    prog.device_first = first;
    return bs_program_validate(&prog, err);
}

static void validator(void)
{
    enum { F = BS_OP_FORWARD, B = BS_OP_BACKWARD };
    bs_error err = {{0}};
    /* Device 0 waits for the gradient of m0 before sending m1 forward, while
     * device 1 runs m1 first: a cycle. */
    const int d0[][3] = {{F, 0, 0}, {B, 0, 0}, {F, 0, 1}, {B, 0, 1}};
    const int d1[][3] = {{F, 1, 1}, {B, 1, 1}, {F, 1, 0}, {B, 1, 0}};
    int rc = validate_lists(d0, 4, d1, 4, &err);
    CHECK_MSG(rc == BS_ERR_DEADLOCK, "rc %d: %s", rc, err.message);
    CHECK_MSG(strstr(err.message, "cycle") && strstr(err.message, "B(s0,m0) on device 0") &&
                  strstr(err.message, "F(s1,m1) on device 1"),
              "%s", err.message);
    /* The same lists in a feasible order pass. */
    const int ok1[][3] = {{F, 1, 0}, {B, 1, 0}, {F, 1, 1}, {B, 1, 1}};
    CHECK(validate_lists(d0, 4, ok1, 4, &err) == BS_OK);
    /* Structural errors name device, position and op. */
    const int twice[][3] = {{F, 0, 0}, {F, 0, 0}, {B, 0, 0}, {F, 0, 1}, {B, 0, 1}};
    rc = validate_lists(twice, 5, ok1, 4, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "device 0, position 1") &&
                  strstr(err.message, "second forward"),
              "%s", err.message);
    const int early[][3] = {{B, 0, 0}, {F, 0, 0}, {F, 0, 1}, {B, 0, 1}};
    rc = validate_lists(early, 4, ok1, 4, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "backward before its forward"), "%s",
              err.message);
    const int wrong_device[][3] = {{F, 1, 0}, {B, 0, 0}, {F, 0, 1}, {B, 0, 1}};
    rc = validate_lists(wrong_device, 4, ok1, 4, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "placed on device 1"), "%s", err.message);
    const int missing[][3] = {{F, 0, 0}, {B, 0, 0}, {F, 0, 1}};
    rc = validate_lists(missing, 3, ok1, 4, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, "micro-batch 1: no backward"), "%s",
              err.message);
}

int main(void)
{
    bs_context *ctx;
    if (bs_context_create(&ctx))
        return 1;
    uneven_with_latency(ctx);
    busy_link(ctx);
    flush_with_optimizer(ctx);
    pipedream_stream(ctx);
    chunk_cost_arrays(ctx);
    validator();
    bs_context_free(&ctx);
    return check_finish("engine");
}
