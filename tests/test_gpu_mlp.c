/*
 * test_gpu_mlp.c - the mlp workload's plain-C half (gpu/mlp.c), on the CPU:
 *  - the layer's reference math against values worked out by hand;
 *  - the sizes: the plan's per-stage pool peak, in bytes, equals the
 *    simulator's peak_activation_bytes once memory.activation_bytes comes
 *    from the mlp shape, and every message is one batch x hidden tensor;
 *  - PipeDream's weight-version bookkeeping against the simulator's
 *    weight_versions and max_staleness for small P and M;
 *  - the whole plan run with real numbers (bs_mlp_cpu_check): pipelined
 *    weight gradients equal the sequential reference, every backward reads
 *    its forward's weight version, and a plan that frees an activation too
 *    early is caught.
 */
#include "check.h"
#include "mlp.h"

#include <stdlib.h>
#include <string.h>

/* The hand-worked layer: 2 rows, width 2.
 *   x = [[1, 2], [-1, 3]], w = [[1, -1], [-2, 2]]
 *   x w = [[1 - 4, -1 + 4], [-1 - 6, 1 + 6]] = [[-3, 3], [-7, 7]]
 *   y = relu(x w) = [[0, 3], [0, 7]]
 *   g = [[1, 1], [2, -1]] (gradient of y): dz = g .* (y > 0) = [[0, 1], [0, -1]]
 *   dx = dz w^T: dx[r][i] = sum_j dz[r][j] w[i][j]
 *      row 0: [0*1 + 1*(-1), 0*(-2) + 1*2] = [-1, 2]
 *      row 1: [(-1)*(-1), (-1)*2] = [1, -2]
 *   dw = x^T dz: dw[i][j] = sum_r x[r][i] dz[r][j]
 *      dw[0] = [1*0 + (-1)*0, 1*1 + (-1)*(-1)] = [0, 2]
 *      dw[1] = [2*0 + 3*0, 2*1 + 3*(-1)] = [0, -1]
 *   accumulated onto all ones: [[1, 3], [1, 0]]. */
static void test_hand_layer(void)
{
    const float x[] = {1, 2, -1, 3}, w[] = {1, -1, -2, 2}, g[] = {1, 1, 2, -1};
    const float want_y[] = {0, 3, 0, 7}, want_dz[] = {0, 1, 0, -1}, want_dx[] = {-1, 2, 1, -2};
    const float want_dw[] = {0, 2, 0, -1}, want_acc[] = {1, 3, 1, 0};
    float y[4], dz[4], dx[4], dw[4], acc[4] = {1, 1, 1, 1};
    bs_mlp_ref_forward(y, x, w, 2, 2, 2);
    bs_mlp_ref_mask(dz, g, y, 4);
    bs_mlp_ref_input_grad(dx, dz, w, 2, 2, 2);
    bs_mlp_ref_weight_grad(dw, x, dz, 2, 2, 2, 0);
    bs_mlp_ref_weight_grad(acc, x, dz, 2, 2, 2, 1);
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(y[i], want_y[i], 0);
        CHECK_NEAR(dz[i], want_dz[i], 0);
        CHECK_NEAR(dx[i], want_dx[i], 0);
        CHECK_NEAR(dw[i], want_dw[i], 0);
        CHECK_NEAR(acc[i], want_acc[i], 0);
    }
    /* A rectangular case: x 1 x 3, w 3 x 2; x w = [1*1 + 2*0 + 3*1, 1*2 + 2*1
     * + 3*(-1)] = [4, 1]. */
    const float x3[] = {1, 2, 3}, w32[] = {1, 2, 0, 1, 1, -1};
    float y2[2];
    bs_mlp_ref_forward(y2, x3, w32, 1, 3, 2);
    CHECK_NEAR(y2[0], 4, 0);
    CHECK_NEAR(y2[1], 1, 0);
    CHECK_NEAR(bs_mlp_rel_err(want_dw, want_dw, 4, NULL), 0, 0);
    double scale = 0;
    CHECK_NEAR(bs_mlp_rel_err(want_acc, want_dw, 4, &scale), 1.0 / 2.0, 1e-12); /* 1 / 2 */
    CHECK_NEAR(scale, 2, 0);
    /* The fill is the same function on CPU and GPU: within its scale, not
     * constant. */
    float r0 = bs_mlp_random(1, 2, 3, 0.5f), r1 = bs_mlp_random(1, 2, 4, 0.5f);
    CHECK(r0 >= -0.5f && r0 < 0.5f && r0 != r1);
}

typedef struct scenario {
    const char *schedule;
    int p, m, v, iterations;
} scenario;

static int setup(bs_config *cfg, bs_program *prog, bs_gpu_plan *plan, const scenario *s,
                 const bs_mlp_shape *shape, bs_error *err)
{
    int rc;
    bs_config_init(cfg);
    snprintf(cfg->schedule, sizeof cfg->schedule, "%s", s->schedule);
    cfg->stages = s->p;
    cfg->microbatches = s->m;
    cfg->virtual_stages = s->v;
    cfg->iterations = s->iterations;
    if ((rc = bs_program_build(prog, cfg, err)) ||
        (rc = bs_mlp_apply_sizes(cfg, shape, prog, err)) ||
        (rc = bs_gpu_plan_build(plan, prog, cfg, err)))
        return rc;
    return bs_gpu_plan_check(plan, prog, err);
}

/* Sizes: plan pool peaks and messages against the simulator. */
static void test_sizes(void)
{
    const scenario list[] = {{"gpipe", 2, 4, 1, 1},       {"1f1b", 4, 8, 1, 1},
                             {"interleaved", 2, 4, 2, 1}, {"zb-h1", 3, 6, 1, 1},
                             {"pipedream", 3, 6, 1, 1},   {"forward", 3, 4, 1, 1},
                             {"dualpipev", 2, 8, 2, 1},   {"1f1b", 2, 4, 1, 2}};
    bs_mlp_shape shape;
    bs_mlp_shape_init(&shape);
    shape.hidden = 48;
    shape.batch = 20;
    shape.layers = 3;
    for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) {
        const scenario *s = &list[k];
        bs_config cfg;
        bs_program prog;
        bs_gpu_plan plan;
        bs_context *ctx = NULL;
        const bs_result *res = NULL;
        bs_error err = {{0}};
        bs_mlp_sizes sz;
        bs_program_init(&prog);
        bs_gpu_plan_init(&plan);
        int rc = setup(&cfg, &prog, &plan, s, &shape, &err);
        CHECK_MSG(rc == BS_OK, "%s: %s", s->schedule, err.message);
        rc = rc ? rc : bs_context_create(&ctx);
        rc = rc ? rc : bs_context_run(ctx, &cfg, NULL, &res, &err);
        CHECK_MSG(rc == BS_OK, "%s: simulate: %s", s->schedule, err.message);
        int split = bs_mlp_program_splits(&prog);
        CHECK(bs_mlp_sizes_compute(&sz, &shape, s->v, split, &err) == BS_OK);
        CHECK_NEAR(sz.tensor_bytes, 20.0 * 48 * 4, 0);
        CHECK_NEAR(sz.chunk_bytes, (split ? 6 : 3) * 20.0 * 48 * 4, 0);
        CHECK_MSG(split ==
                      (strcmp(s->schedule, "zb-h1") == 0 || strcmp(s->schedule, "dualpipev") == 0),
                  "%s: split %d", s->schedule, split);
        if (!rc) {
            double peak[16], peak_bytes[16];
            CHECK(bs_gpu_plan_peak_live(&plan, peak, peak_bytes, &err) == BS_OK);
            for (int d = 0; d < s->p; d++) {
                /* Bytes the pool holds at its peak, walked from the plan's
                 * allocs and frees, against the simulator's figure. */
                double live = 0, high = 0;
                for (size_t i = 0; i < plan.cmd_count; i++) {
                    const bs_gpu_cmd *c = &plan.cmds[i];
                    if (c->queue != (uint32_t)d)
                        continue;
                    if (c->kind == BS_GPU_ALLOC && (live += c->bytes) > high)
                        high = live;
                    else if (c->kind == BS_GPU_FREE)
                        live -= c->bytes;
                }
                CHECK_MSG(fabs(high - res->device[d].peak_activation_bytes) < 1e-6,
                          "%s P=%d: device %d pool peak %.0f bytes, simulator %.0f", s->schedule,
                          s->p, d, high, res->device[d].peak_activation_bytes);
                CHECK_NEAR(high, peak[d] * sz.chunk_bytes, 1e-6);
                CHECK_NEAR(high, peak_bytes[d], 1e-6);
            }
            CHECK_NEAR(res->message_bytes, (double)res->messages * sz.tensor_bytes, 1e-6);
            CHECK_NEAR(cfg.message_bytes, sz.tensor_bytes, 0);
        }
        bs_context_free(&ctx);
        bs_gpu_plan_free(&plan);
        bs_program_free(&prog);
        bs_config_free(&cfg);
    }
}

/* PipeDream's slots and staleness against the simulator's weight versions. */
static void test_versions(void)
{
    for (int p = 1; p <= 4; p++)
        for (int m = 1; m <= 9; m += 2) {
            scenario s = {"pipedream", p, m, 1, 1};
            bs_config cfg;
            bs_program prog;
            bs_context *ctx = NULL;
            const bs_result *res = NULL;
            bs_mlp_versions v;
            bs_error err = {{0}};
            bs_config_init(&cfg);
            bs_program_init(&prog);
            bs_mlp_versions_init(&v);
            snprintf(cfg.schedule, sizeof cfg.schedule, "%s", s.schedule);
            cfg.stages = p;
            cfg.microbatches = m;
            int rc = bs_program_build(&prog, &cfg, &err);
            rc = rc ? rc : bs_mlp_versions_build(&v, &prog, &err);
            rc = rc ? rc : bs_context_create(&ctx);
            rc = rc ? rc : bs_context_run(ctx, &cfg, NULL, &res, &err);
            CHECK_MSG(rc == BS_OK, "pipedream P=%d M=%d: %s", p, m, err.message);
            if (!rc) {
                CHECK(v.active);
                CHECK_MSG(v.max_slots == res->weight_versions,
                          "pipedream P=%d M=%d: %d slots, simulator %d weight versions", p, m,
                          v.max_slots, res->weight_versions);
                CHECK_MSG((int)v.max_staleness == res->max_staleness,
                          "pipedream P=%d M=%d: staleness %u, simulator %d", p, m, v.max_staleness,
                          res->max_staleness);
                for (int d = 0; d < p; d++)
                    CHECK_MSG(v.slots[d] == res->device[d].weight_versions,
                              "pipedream P=%d M=%d: stage %d %d slots, simulator %d", p, m, d,
                              v.slots[d], res->device[d].weight_versions);
                /* Every backward reads its forward's version, from the same
                 * slot. */
                size_t bad = 0;
                for (size_t i = 0; i < prog.op_count; i++) {
                    const bs_op *op = &prog.ops[i];
                    if (op->kind != BS_OP_BACKWARD)
                        continue;
                    for (size_t j = 0; j < i; j++)
                        if (prog.ops[j].kind == BS_OP_FORWARD && prog.ops[j].stage == op->stage &&
                            prog.ops[j].microbatch == op->microbatch)
                            bad += v.version[j] != v.version[i] || v.slot[j] != v.slot[i];
                }
                CHECK_MSG(bad == 0, "pipedream P=%d M=%d: %zu backwards off their version", p, m,
                          bad);
            }
            bs_context_free(&ctx);
            bs_mlp_versions_free(&v);
            bs_program_free(&prog);
            bs_config_free(&cfg);
        }
    /* A synchronous schedule has one version in one slot. */
    bs_config cfg;
    bs_program prog;
    bs_mlp_versions v;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    bs_program_init(&prog);
    bs_mlp_versions_init(&v);
    CHECK(bs_program_build(&prog, &cfg, &err) == BS_OK);
    CHECK(bs_mlp_versions_build(&v, &prog, &err) == BS_OK);
    CHECK(!v.active && v.max_slots == 1 && v.max_staleness == 0);
    bs_mlp_versions_free(&v);
    bs_program_free(&prog);
    bs_config_free(&cfg);
}

/* The plan run with real numbers against the sequential reference. */
static void test_numerics(void)
{
    const scenario list[] = {{"gpipe", 3, 4, 1, 1},       {"1f1b", 4, 6, 1, 1},
                             {"interleaved", 2, 4, 2, 1}, {"zb-h1", 3, 5, 1, 1},
                             {"dualpipev", 2, 4, 2, 1},   {"1f1b", 2, 3, 1, 2},
                             {"pipedream", 3, 6, 1, 1},   {"forward", 2, 3, 1, 1}};
    bs_mlp_shape shape;
    bs_mlp_shape_init(&shape);
    shape.hidden = 16;
    shape.batch = 6;
    shape.layers = 2;
    for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) {
        const scenario *s = &list[k];
        bs_config cfg;
        bs_program prog;
        bs_gpu_plan plan;
        bs_mlp_numerics n;
        bs_error err = {{0}};
        bs_program_init(&prog);
        bs_gpu_plan_init(&plan);
        bs_mlp_numerics_init(&n);
        int rc = setup(&cfg, &prog, &plan, s, &shape, &err);
        rc = rc ? rc : bs_mlp_cpu_check(&n, &plan, &prog, &shape, 1e12, &err);
        CHECK_MSG(rc == BS_OK && n.checked, "%s P=%d: %s", s->schedule, s->p, err.message);
        if (!rc && strcmp(s->schedule, "pipedream") == 0) {
            CHECK(n.versioned && n.stash_ok);
            uint32_t newest = 0;
            for (uint32_t i = 0; i < n.pairs; i++)
                newest = n.forward_version[i] > newest ? n.forward_version[i] : newest;
            CHECK_MSG(newest > 0, "pipedream: every forward used version 0");
        } else if (!rc && strcmp(s->schedule, "forward") != 0) {
            CHECK(!n.versioned && n.stash_ok);
            CHECK_MSG(n.worst_rel_err <= 1e-5, "%s P=%d: relative error %g", s->schedule, s->p,
                      n.worst_rel_err);
            CHECK_MSG(n.grad_scale > 1e-3, "%s P=%d: gradients all but zero (%g)", s->schedule,
                      s->p, n.grad_scale);
        }
        /* A plan that frees an activation early fails the CPU run. */
        if (!rc && strcmp(s->schedule, "gpipe") == 0) {
            bs_gpu_plan broken = plan;
            bs_gpu_cmd *copy = malloc(plan.cmd_count * sizeof *copy);
            memcpy(copy, plan.cmds, plan.cmd_count * sizeof *copy);
            broken.cmds = copy;
            /* Free the first activation right after it is allocated. */
            for (size_t i = 0; i + 1 < plan.cmd_count; i++)
                if (copy[i].kind == BS_GPU_ALLOC) {
                    for (size_t j = i + 1; j < plan.cmd_count; j++)
                        if (copy[j].kind == BS_GPU_FREE && copy[j].stage == copy[i].stage &&
                            copy[j].microbatch == copy[i].microbatch) {
                            bs_gpu_cmd f = copy[j];
                            memmove(&copy[i + 2], &copy[i + 1], (j - i - 1) * sizeof *copy);
                            copy[i + 1] = f;
                            break;
                        }
                    break;
                }
            bs_mlp_numerics m2;
            bs_mlp_numerics_init(&m2);
            CHECK(bs_mlp_cpu_check(&m2, &broken, &prog, &shape, 1e12, &err) == BS_ERR_INTERNAL);
            CHECK(strstr(err.message, "does not exist") != NULL);
            bs_mlp_numerics_free(&m2);
            free(copy);
            /* Too large for the CPU: reported, not run. */
            CHECK(bs_mlp_cpu_check(&m2, &plan, &prog, &shape, 10, &err) == BS_OK);
            CHECK(!m2.checked && m2.why_not[0]);
            bs_mlp_numerics_free(&m2);
        }
        bs_mlp_numerics_free(&n);
        bs_gpu_plan_free(&plan);
        bs_program_free(&prog);
        bs_config_free(&cfg);
    }
}

int main(void)
{
    test_hand_layer();
    test_sizes();
    test_versions();
    test_numerics();
    return check_finish("gpu_mlp");
}
