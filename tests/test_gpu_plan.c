/*
 * test_gpu_plan.c - the GPU plan (gpu/plan.c) against the program and the
 * simulator, for every seed schedule at small P and M: per-queue kernel order
 * equals the program's, one copy per simulated message, every wait after its
 * record, allocs and frees balanced with the simulator's peak, and a broken
 * plan is caught by bs_gpu_plan_check.
 */
#include "check.h"
#include "plan.h"

#include <string.h>

typedef struct scenario {
    const char *schedule;
    int p, m, v, iterations;
    double optimizer;
} scenario;

static void build_config(bs_config *cfg, const scenario *s)
{
    bs_config_init(cfg);
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", s->schedule);
    cfg->stages = s->p;
    cfg->microbatches = s->m;
    cfg->virtual_stages = s->v;
    cfg->iterations = s->iterations;
    cfg->optimizer = s->optimizer;
    cfg->activation_bytes = 4096;
    cfg->message_bytes = 1024;
    cfg->latency = 0.01;
}

/* Restricted to stage queue d, the kernels are device d's ops in order. */
static void check_order(const bs_gpu_plan *plan, const bs_program *prog, const char *name)
{
    for (int d = 0; d < prog->devices; d++) {
        size_t want = prog->device_first[d], mismatches = 0;
        for (size_t i = 0; i < plan->cmd_count; i++) {
            const bs_gpu_cmd *c = &plan->cmds[i];
            if (c->queue != (uint32_t)d || c->kind != BS_GPU_KERNEL)
                continue;
            const bs_op *op = &prog->ops[want];
            if (want >= prog->device_first[d + 1] || c->op != want || c->stage != op->stage ||
                c->microbatch != op->microbatch || c->op_kind != op->kind)
                mismatches++;
            want++;
        }
        CHECK_MSG(mismatches == 0 && want == prog->device_first[d + 1],
                  "%s: device %d kernel order differs from the program", name, d);
    }
}

/* Every wait is issued after the record of its event, by another queue. */
static void check_events(const bs_gpu_plan *plan, const char *name)
{
    unsigned char *recorded = calloc(plan->event_count + 1, 1);
    size_t bad = 0;
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        if (c->kind == BS_GPU_RECORD) {
            bad += recorded[c->event] != 0;
            recorded[c->event] = 1;
        } else if (c->kind == BS_GPU_WAIT) {
            bad += !recorded[c->event] || plan->event_queue[c->event] == c->queue;
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu waits before their record or double records", name, bad);
    free(recorded);
}

static void run_scenario(const scenario *s)
{
    char name[96];
    snprintf(name, sizeof name, "%s P=%d M=%d V=%d it=%d", s->schedule, s->p, s->m, s->v,
             s->iterations);
    bs_config cfg;
    build_config(&cfg, s);
    bs_context *ctx = NULL;
    bs_program prog;
    bs_gpu_plan plan;
    bs_error err = {{0}};
    const bs_result *res = NULL;
    bs_program_init(&prog);
    bs_gpu_plan_init(&plan);
    int rc = bs_context_create(&ctx);
    if (!rc)
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s: simulate: %s", name, err.message);
    rc = rc ? rc : bs_program_build(&prog, &cfg, &err);
    rc = rc ? rc : bs_gpu_plan_build(&plan, &prog, &cfg, &err);
    CHECK_MSG(rc == BS_OK, "%s: plan: %s", name, err.message);
    if (rc)
        goto done;

    rc = bs_gpu_plan_check(&plan, &prog, &err);
    CHECK_MSG(rc == BS_OK, "%s: check: %s", name, err.message);
    check_order(&plan, &prog, name);
    check_events(&plan, name);
    CHECK_MSG(plan.kernels == prog.op_count, "%s: %zu kernels for %zu ops", name, plan.kernels,
              prog.op_count);
    CHECK_MSG(plan.copies == res->messages, "%s: %zu copies, simulated %llu messages", name,
              plan.copies, (unsigned long long)res->messages);
    CHECK_MSG(plan.allocs == plan.frees, "%s: %zu allocs, %zu frees", name, plan.allocs,
              plan.frees);
    double peak[64];
    CHECK(bs_gpu_plan_peak_live(&plan, peak, &err) == BS_OK);
    for (int d = 0; d < s->p; d++)
        CHECK_MSG(fabs(peak[d] - res->device[d].peak_activations * s->v) < 1e-9,
                  "%s: device %d plan peak %g chunks, simulator %g micro-batches x V=%d", name, d,
                  peak[d], res->device[d].peak_activations, s->v);
    /* Kernel durations are the config's costs: busy time per device agrees. */
    for (int d = 0; d < s->p; d++) {
        double busy = 0;
        for (size_t i = 0; i < plan.cmd_count; i++)
            if (plan.cmds[i].kind == BS_GPU_KERNEL && plan.cmds[i].queue == (uint32_t)d)
                busy += plan.cmds[i].duration;
        CHECK_NEAR(busy, res->device[d].busy, 1e-9);
    }
    /* Rebuilding into the same plan gives the same commands. */
    size_t count = plan.cmd_count;
    CHECK(bs_gpu_plan_build(&plan, &prog, &cfg, &err) == BS_OK && plan.cmd_count == count);
done:
    bs_gpu_plan_free(&plan);
    bs_program_free(&prog);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

/* A hand-made 1F1B case with its plan spelled out command by command. */
static void check_small_by_hand(void)
{
    scenario s = {"gpipe", 2, 1, 1, 1, 0};
    bs_config cfg;
    build_config(&cfg, &s);
    bs_program prog;
    bs_gpu_plan plan;
    bs_error err = {{0}};
    bs_program_init(&prog);
    bs_gpu_plan_init(&plan);
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);
    CHECK(bs_gpu_plan_build(&plan, &prog, &cfg, &err) == BS_OK);
    /* Device 0: alloc, F(s0,m0), record e0; link 0 (0->1): wait e0, copy, record e1;
     * device 1: alloc, wait e1, F(s1,m0), B(s1,m0), free, record e2;
     * link 1 (1->0): wait e2, copy, record e3; device 0: wait e3, B(s0,m0), free. */
    static const struct {
        int kind, queue;
    } want[] = {{BS_GPU_ALLOC, 0},  {BS_GPU_KERNEL, 0}, {BS_GPU_RECORD, 0}, {BS_GPU_WAIT, 2},
                {BS_GPU_COPY, 2},   {BS_GPU_RECORD, 2}, {BS_GPU_ALLOC, 1},  {BS_GPU_WAIT, 1},
                {BS_GPU_KERNEL, 1}, {BS_GPU_KERNEL, 1}, {BS_GPU_FREE, 1},   {BS_GPU_RECORD, 1},
                {BS_GPU_WAIT, 3},   {BS_GPU_COPY, 3},   {BS_GPU_RECORD, 3}, {BS_GPU_WAIT, 0},
                {BS_GPU_KERNEL, 0}, {BS_GPU_FREE, 0}};
    size_t n = sizeof want / sizeof want[0];
    CHECK_MSG(plan.cmd_count == n, "hand case: %zu commands, want %zu", plan.cmd_count, n);
    for (size_t i = 0; i < n && i < plan.cmd_count; i++)
        CHECK_MSG(plan.cmds[i].kind == want[i].kind &&
                      plan.cmds[i].queue == (uint32_t)want[i].queue,
                  "hand case: command %zu is kind %u on queue %u", i, plan.cmds[i].kind,
                  plan.cmds[i].queue);
    CHECK(plan.links == 2 && plan.link_src[0] == 0 && plan.link_dst[0] == 1);
    CHECK(plan.event_count == 4);
    CHECK_NEAR(plan.cmds[4].bytes, 1024, 0);
    CHECK_NEAR(plan.cmds[0].bytes, 4096, 0);

    /* The checker catches a wait moved before its record, a dropped copy and
     * two kernels swapped. */
    bs_gpu_cmd saved = plan.cmds[2];
    plan.cmds[2] = plan.cmds[3];
    plan.cmds[3] = saved;
    CHECK(bs_gpu_plan_check(&plan, &prog, &err) == BS_ERR_INTERNAL);
    CHECK_MSG(strstr(err.message, "not recorded before") != NULL, "%s", err.message);
    plan.cmds[3] = plan.cmds[2];
    plan.cmds[2] = saved;
    CHECK(bs_gpu_plan_check(&plan, &prog, &err) == BS_OK);
    plan.cmds[13].kind = BS_GPU_RECORD;
    plan.cmds[13].event = 3;
    CHECK(bs_gpu_plan_check(&plan, &prog, &err) == BS_ERR_INTERNAL);
    CHECK(bs_gpu_plan_build(&plan, &prog, &cfg, &err) == BS_OK);
    saved = plan.cmds[8];
    plan.cmds[8] = plan.cmds[9];
    plan.cmds[9] = saved;
    CHECK(bs_gpu_plan_check(&plan, &prog, &err) == BS_ERR_INTERNAL);
    CHECK_MSG(strstr(err.message, "next op") != NULL, "%s", err.message);

    bs_gpu_plan_free(&plan);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

int main(void)
{
    static const scenario scenarios[] = {
        {"gpipe", 2, 4, 1, 1, 0},       {"gpipe", 4, 8, 1, 2, 0.5},
        {"1f1b", 2, 3, 1, 1, 0},        {"1f1b", 4, 8, 1, 1, 0},
        {"1f1b", 8, 8, 1, 2, 0.25},     {"1f1b", 3, 2, 1, 2, 0},
        {"pipedream", 2, 4, 1, 1, 0},   {"pipedream", 4, 8, 1, 2, 0},
        {"interleaved", 2, 4, 2, 1, 0}, {"interleaved", 4, 8, 2, 1, 0},
        {"interleaved", 4, 8, 3, 2, 1}, {"forward", 2, 4, 1, 1, 0},
        {"forward", 8, 8, 1, 1, 0},     {"1f1b", 1, 4, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        run_scenario(&scenarios[i]);
    check_small_by_hand();
    return check_finish("gpu_plan");
}
