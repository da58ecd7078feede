/*
 * test_gpu_plan.c - the GPU plan (gpu/plan.c) against the program and the
 * simulator, for every seed schedule at small P and M: per-queue kernel order
 * equals the program's, one copy per simulated message, every wait after its
 * record, allocs and frees balanced with the simulator's peak, and a broken
 * plan is caught by bs_gpu_plan_check.
 */
#include "check.h"
#include "plan.h"

#include <stdlib.h>
#include <string.h>

typedef struct scenario {
    const char *schedule;
    int p, m, v, iterations;
    double optimizer;
    double kept; /* memory.kept_fraction; 0 in a scenario list means the default */
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
    if (s->kept > 0)
        cfg->kept_fraction = s->kept > 1 ? 0 : s->kept; /* 2 stands for 0 */
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
            want += c->ops; /* an overlapped pair covers two ops */
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

/* Every copy names the op that reads its message: on the copy's
 * destination device, the next stage's forward (for a forward's output)
 * or the previous stage's backward or input gradient, same micro-batch. */
static void check_consumers(const bs_gpu_plan *plan, const bs_program *prog, const char *name)
{
    size_t bad = 0;
    for (size_t i = 0; i < plan->cmd_count; i++) {
        const bs_gpu_cmd *c = &plan->cmds[i];
        if (c->kind != BS_GPU_COPY)
            continue;
        const bs_op *from = &prog->ops[c->op];
        int forward = from->kind == BS_OP_FORWARD;
        if (c->consumer == UINT32_MAX || c->consumer >= prog->op_count) {
            bad++;
            continue;
        }
        const bs_op *to = &prog->ops[c->consumer];
        int kind_ok = forward ? to->kind == BS_OP_FORWARD
                              : (to->kind == BS_OP_BACKWARD || to->kind == BS_OP_INPUT_GRAD);
        bad += !kind_ok || to->microbatch != from->microbatch ||
               to->stage != from->stage + (forward ? 1 : -1) ||
               c->consumer < prog->device_first[c->dst] ||
               c->consumer >= prog->device_first[c->dst + 1];
    }
    CHECK_MSG(bad == 0, "%s: %zu copies name a wrong consumer", name, bad);
}

/* Runs every check on one configuration. With optional set, a schedule
 * that refuses the configuration is skipped (returns 0) rather than failed. */
static int run_scenario(const scenario *s, int optional)
{
    int ran = 0;
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
    if (rc && optional)
        goto done;
    CHECK_MSG(rc == BS_OK, "%s: simulate: %s", name, err.message);
    rc = rc ? rc : bs_program_build(&prog, &cfg, &err);
    rc = rc ? rc : bs_gpu_plan_build(&plan, &prog, &cfg, &err);
    CHECK_MSG(rc == BS_OK, "%s: plan: %s", name, err.message);
    if (rc)
        goto done;

    ran = 1;
    rc = bs_gpu_plan_check(&plan, &prog, &err);
    CHECK_MSG(rc == BS_OK, "%s: check: %s", name, err.message);
    check_order(&plan, &prog, name);
    check_events(&plan, name);
    check_consumers(&plan, &prog, name);
    size_t covered = 0;
    for (size_t i = 0; i < plan.cmd_count; i++)
        covered += plan.cmds[i].kind == BS_GPU_KERNEL ? plan.cmds[i].ops : 0;
    CHECK_MSG(covered == prog.op_count, "%s: kernels cover %zu ops of %zu", name, covered,
              prog.op_count);
    CHECK_MSG(plan.copies == res->messages, "%s: %zu copies, simulated %llu messages", name,
              plan.copies, (unsigned long long)res->messages);
    CHECK_MSG(plan.allocs == plan.frees, "%s: %zu allocs, %zu frees", name, plan.allocs,
              plan.frees);
    double peak[64];
    CHECK(bs_gpu_plan_peak_live(&plan, peak, NULL, &err) == BS_OK);
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
    /* Under ideal stream semantics the plan reproduces the engine's timeline
     * op for op: no wait lost, no extra serialisation. */
    bs_timeline sim;
    bs_timeline_init(&sim);
    double message_time =
        cfg.latency + (cfg.bandwidth > 0 ? cfg.message_bytes / cfg.bandwidth * 1000 : 0);
    CHECK(bs_gpu_plan_simulate(&plan, &prog, message_time, &sim, &err) == BS_OK);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < prog.op_count; i++)
        if (fabs(sim.times[i].start - res->timeline->times[i].start) > 1e-9 ||
            fabs(sim.times[i].end - res->timeline->times[i].end) > 1e-9)
            first = differ++ ? first : i;
    CHECK_MSG(differ == 0,
              "%s: %zu ops differ from the engine, first op %zu: plan %g..%g, engine %g..%g", name,
              differ, first, sim.times[first].start, sim.times[first].end,
              res->timeline->times[first].start, res->timeline->times[first].end);
    CHECK(sim.messages_sent == res->messages);
    bs_timeline_free(&sim);
    /* Rebuilding into the same plan gives the same commands. */
    size_t count = plan.cmd_count;
    CHECK(bs_gpu_plan_build(&plan, &prog, &cfg, &err) == BS_OK && plan.cmd_count == count);
done:
    bs_gpu_plan_free(&plan);
    bs_program_free(&prog);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
    return ran;
}

/* A hand-made 1F1B case with its plan spelled out command by command. */
static void check_small_by_hand(void)
{
    scenario s = {"gpipe", 2, 1, 1, 1, 0, 0};
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

/* A config the GPU run cannot follow is refused by the plan with the key
 * that sets the rule (refused non-NULL); any other one plans a run whose
 * ideal-stream timeline is the engine's, op for op. */
static void check_timing_rule(const char *json, const char *refused)
{
    bs_config cfg;
    bs_program prog;
    bs_gpu_plan plan;
    bs_context *ctx = NULL;
    const bs_result *res = NULL;
    bs_timeline sim;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_program_init(&prog);
    bs_gpu_plan_init(&plan);
    bs_timeline_init(&sim);
    int rc = bs_config_parse(&cfg, json, "rule.json", NULL, 0, &err);
    CHECK_MSG(rc == BS_OK, "%s: %s", json, err.message);
    /* The engine runs it either way: the refusal is the GPU check's. */
    if (!rc && !(rc = bs_context_create(&ctx)))
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
    CHECK_MSG(rc == BS_OK, "%s: %s", json, err.message);
    rc = rc ? rc : bs_program_build(&prog, &cfg, &err);
    if (!rc)
        rc = bs_gpu_plan_build(&plan, &prog, &cfg, &err);
    if (refused) {
        CHECK_MSG(rc == BS_ERR_INVALID && strncmp(err.message, refused, strlen(refused)) == 0 &&
                      strstr(err.message, "to verify") != NULL,
                  "%s: rc %d, %s", json, rc, err.message);
        goto done;
    }
    CHECK_MSG(rc == BS_OK, "%s: %s", json, err.message);
    if (rc)
        goto done;
    double message_time =
        cfg.latency + (cfg.bandwidth > 0 ? cfg.message_bytes / cfg.bandwidth * 1000 : 0);
    CHECK(bs_gpu_plan_simulate(&plan, &prog, message_time, &sim, &err) == BS_OK);
    size_t differ = 0;
    for (size_t i = 0; i < prog.op_count; i++)
        differ += fabs(sim.times[i].start - res->timeline->times[i].start) > 1e-9 ||
                  fabs(sim.times[i].end - res->timeline->times[i].end) > 1e-9;
    CHECK_MSG(differ == 0, "%s: %zu ops differ from the engine", json, differ);
done:
    bs_timeline_free(&sim);
    bs_gpu_plan_free(&plan);
    bs_program_free(&prog);
    bs_context_free(&ctx);
    bs_config_free(&cfg);
}

#define RULE_BASE "\"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8"
#define RULE_MODEL                                                                                 \
    "\"model\": {\"layers\": 8, \"hidden\": 64, \"heads\": 4, \"sequence\": 32, "                  \
    "\"vocabulary\": 1000}, \"hardware\": {\"peak_flops\": 1e12, \"efficiency\": 0.5, "            \
    "\"bandwidth\": 1e9, \"latency\": 0.01, \"tp_bandwidth\": 1e10, \"tp_latency\": 0.002, "       \
    "\"node_bandwidth\": 1e8, \"node_latency\": 0.5, "

static void check_timing_rules(void)
{
    check_timing_rule("{" RULE_BASE ", \"costs\": {\"overhead\": 0.05}}", "costs.overhead:");
    check_timing_rule("{" RULE_BASE ", \"network\": {\"blocking\": true}}", "network.blocking:");
    check_timing_rule("{" RULE_BASE ", \"network\": {\"latency_holds_link\": false}}",
                      "network.latency_holds_link:");
    /* Their defaults, written out, plan as before. */
    check_timing_rule("{" RULE_BASE ", \"costs\": {\"overhead\": 0}, \"network\": {\"blocking\": "
                      "false, \"latency_holds_link\": true, \"latency\": 0.1}}",
                      NULL);
    /* Two GPUs per node: the boundary between devices 1 and 2 uses the
     * node link; four per node keep the pipeline on one node. */
    check_timing_rule("{" RULE_BASE ", " RULE_MODEL "\"gpus_per_node\": 2}}",
                      "hardware.gpus_per_node:");
    check_timing_rule("{" RULE_BASE ", " RULE_MODEL "\"gpus_per_node\": 4}}", NULL);
    /* Two replicas: gradient all-reduces the GPU run does not do; an
     * inference schedule has none, so the forward one plans. */
    check_timing_rule("{" RULE_BASE ", " RULE_MODEL "\"gpus_per_node\": 0}, \"data_parallel\": 2}",
                      "data_parallel:");
    check_timing_rule("{\"schedule\": \"forward\", \"stages\": 4, \"microbatches\": 8, " RULE_MODEL
                      "\"gpus_per_node\": 0}, \"data_parallel\": 2}",
                      NULL);
}

int main(void)
{
    static const scenario scenarios[] = {
        {"gpipe", 2, 4, 1, 1, 0, 0},       {"gpipe", 4, 8, 1, 2, 0.5, 0},
        {"1f1b", 2, 3, 1, 1, 0, 0},        {"1f1b", 4, 8, 1, 1, 0, 0},
        {"1f1b", 8, 8, 1, 2, 0.25, 0},     {"1f1b", 3, 2, 1, 2, 0, 0},
        {"pipedream", 2, 4, 1, 1, 0, 0},   {"pipedream", 4, 8, 1, 2, 0, 0},
        {"interleaved", 2, 4, 2, 1, 0, 0}, {"interleaved", 4, 8, 2, 1, 0, 0},
        {"interleaved", 4, 8, 3, 2, 1, 0}, {"forward", 2, 4, 1, 1, 0, 0},
        {"forward", 8, 8, 1, 1, 0, 0},     {"1f1b", 1, 4, 1, 2, 1, 0},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        run_scenario(&scenarios[i], 0);
    /* Every schedule in the table, at the shapes it accepts, so a schedule
     * added later is planned and checked too. */
    static const int shapes[][4] = {{2, 4, 1, 1}, {4, 8, 1, 2},  {2, 4, 2, 1},
                                    {4, 8, 2, 1}, {4, 16, 1, 1}, {3, 6, 1, 2}};
    for (size_t k = 0; k < bs_schedule_count(); k++) {
        int covered = 0;
        for (size_t i = 0; i < 2 * sizeof shapes / sizeof shapes[0]; i++) {
            const int *sh = shapes[i / 2];
            scenario sc = {bs_schedule_at(k)->name, sh[0], sh[1], sh[2], sh[3], i % 2 ? 0.5 : 0, 0};
            covered += run_scenario(&sc, 1);
        }
        printf("%-14s planned and checked at %d of %zu configurations\n", bs_schedule_at(k)->name,
               covered, 2 * sizeof shapes / sizeof shapes[0]);
    }
    /* Split backwards: the activation comes in two parts whose shares follow
     * memory.kept_fraction, including the ends 0 (2 here) and 1. */
    if (bs_schedule_find("zb-h1")) {
        static const double kept[] = {2, 0.25, 1};
        for (size_t i = 0; i < 3; i++) {
            scenario sc = {"zb-h1", 4, 8, 1, 1, 0, kept[i]};
            CHECK(run_scenario(&sc, 0));
        }
    }
    check_small_by_hand();
    check_timing_rules();
    return check_finish("gpu_plan");
}
