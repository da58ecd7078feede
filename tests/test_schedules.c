/*
 * test_schedules.c - op orders of each seed schedule for small P and M,
 * against orders written out by hand (from the seed's diagrams and
 * ../shared/reference/schedules.md), and the constraints each refuses.
 * Interleaved is also checked op by op against Megatron's table of virtual
 * micro-batches, computed here straight from its definition, for every
 * accepted (P, V, M, N) with P <= 5 and M <= 3P + 2, over two iterations.
 */
#include "bubblesim.h"
#include "check.h"

#include <string.h>

/* Device d's ops as "F0.0 B0.1 ..." (stage.microbatch), or OPTi. */
static const char *device_order(const bs_program *prog, int d, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = prog->device_first[d]; i < prog->device_first[d + 1] && n < size; i++) {
        const bs_op *op = &prog->ops[i];
        const char *k = "FBIWO";
        if (op->kind == BS_OP_OPTIMIZER)
            n += (size_t)snprintf(buf + n, size - n, "%sOPT%u", n ? " " : "", op->microbatch);
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%c%u.%u", n ? " " : "", k[op->kind],
                                  op->stage, op->microbatch);
    }
    return buf;
}

static int build(bs_program *prog, const char *schedule, int p, int m, int v, int iterations,
                 double optimizer, bs_error *err)
{
    bs_config cfg;
    bs_config_init(&cfg);
    snprintf(cfg.schedule, sizeof cfg.schedule, "%s", schedule);
    cfg.stages = p;
    cfg.microbatches = m;
    cfg.virtual_stages = v;
    cfg.iterations = iterations;
    cfg.optimizer = optimizer;
    int rc = bs_program_build(prog, &cfg, err);
    bs_config_free(&cfg);
    return rc;
}

static void expect_order(const char *schedule, int p, int m, int v, int iterations,
                         double optimizer, int device, const char *want)
{
    bs_program prog;
    bs_error err = {{0}};
    char got[4096];
    bs_program_init(&prog);
    int rc = build(&prog, schedule, p, m, v, iterations, optimizer, &err);
    CHECK_MSG(rc == BS_OK, "%s P=%d M=%d V=%d: %s", schedule, p, m, v, err.message);
    if (rc == BS_OK) {
        device_order(&prog, device, got, sizeof got);
        CHECK_MSG(strcmp(got, want) == 0, "%s P=%d M=%d V=%d device %d:\n  got  %s\n  want %s",
                  schedule, p, m, v, device, got, want);
    }
    bs_program_free(&prog);
}

static void expect_refused(const char *schedule, int p, int m, int v, const char *needle)
{
    bs_program prog;
    bs_error err = {{0}};
    bs_program_init(&prog);
    int rc = build(&prog, schedule, p, m, v, 1, 0, &err);
    CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, needle),
              "%s P=%d M=%d V=%d: rc %d, message \"%s\", expected to contain \"%s\"", schedule, p,
              m, v, rc, err.message, needle);
    bs_program_free(&prog);
}

/* Megatron's table read directly: virtual micro-batch k of an iteration is
 * (micro-batch, chunk) in forward order. Groups of n micro-batches (the
 * last holds the rest); within a group, every chunk runs the whole group. */
static void megatron_entry(uint32_t k, uint32_t m, uint32_t n, uint32_t v, uint32_t *mb,
                           uint32_t *chunk)
{
    uint32_t full_groups = (m - 1) / n, full = full_groups * n * v;
    if (k < full) {
        *chunk = k % (n * v) / n;
        *mb = k / (n * v) * n + k % n;
    } else {
        uint32_t last = m - full_groups * n;
        *chunk = (k - full) / last;
        *mb = full_groups * n + (k - full) % last;
    }
}

/* Every device's interleaved order, op by op, against the table: warm-up
 * min(2(P-r-1) + (V-1)N, MV) forwards, then one backward per step, each
 * preceded by the next forward while any is left; backwards take the
 * table's chunks reversed. Returns the number of programs compared. */
static int check_interleaved_table(void)
{
    int programs = 0;
    for (uint32_t p = 2; p <= 5; p++)
        for (uint32_t v = 2; v <= 4; v++)
            for (uint32_t m = p; m <= 3 * p + 2; m++)
                for (uint32_t n = p; n <= m; n++) {
                    if (m % n != 0 && m % n < p)
                        continue; /* refused, tested above */
                    bs_program prog;
                    bs_error err = {{0}};
                    bs_config cfg;
                    bs_program_init(&prog);
                    bs_config_init(&cfg);
                    snprintf(cfg.schedule, sizeof cfg.schedule, "interleaved");
                    cfg.stages = (int)p;
                    cfg.microbatches = (int)m;
                    cfg.virtual_stages = (int)v;
                    cfg.group_size = (int)n;
                    cfg.iterations = 2;
                    int rc = bs_program_build(&prog, &cfg, &err);
                    CHECK_MSG(rc == BS_OK, "P=%u V=%u M=%u N=%u: %s", p, v, m, n, err.message);
                    for (uint32_t r = 0; rc == BS_OK && r < p; r++) {
                        uint32_t total = m * v, w = 2 * (p - r - 1) + (v - 1) * n;
                        uint32_t warmup = w < total ? w : total;
                        size_t i = prog.device_first[r];
                        int bad = 0;
                        for (uint32_t it = 0; it < 2 && !bad; it++) {
                            uint32_t fwd = 0, mb, chunk;
                            for (uint32_t step = 0; step < 2 * total && !bad; step++) {
                                int forward =
                                    step < warmup || (fwd < total && (step - warmup) % 2 == 0);
                                uint32_t k = forward ? fwd++ : step - fwd;
                                megatron_entry(k, m, n, v, &mb, &chunk);
                                uint32_t stage = (forward ? chunk : v - 1 - chunk) * p + r;
                                const bs_op *op =
                                    i < prog.device_first[r + 1] ? &prog.ops[i++] : NULL;
                                bad = !op ||
                                      op->kind != (forward ? BS_OP_FORWARD : BS_OP_BACKWARD) ||
                                      op->stage != stage || op->microbatch != it * m + mb;
                                CHECK_MSG(!bad,
                                          "P=%u V=%u M=%u N=%u device %u iteration %u step %u", p,
                                          v, m, n, r, it, step);
                            }
                            if (it == 0 && !bad)
                                i++; /* the flush between iterations */
                        }
                        CHECK(bad || i == prog.device_first[r + 1]);
                    }
                    programs++;
                    bs_config_free(&cfg);
                    bs_program_free(&prog);
                }
    return programs;
}

int main(void)
{
    /* GPipe: all forwards, then all backwards in micro-batch order. */
    expect_order("gpipe", 2, 3, 1, 1, 0, 0, "F0.0 F0.1 F0.2 B0.0 B0.1 B0.2");
    expect_order("gpipe", 2, 3, 1, 1, 0, 1, "F1.0 F1.1 F1.2 B1.0 B1.1 B1.2");

    /* 1F1B, the seed's P=4 M=8 diagram (0-based): warm-up P-r-1 forwards. */
    expect_order("1f1b", 4, 8, 1, 1, 0, 0,
                 "F0.0 F0.1 F0.2 F0.3 B0.0 F0.4 B0.1 F0.5 B0.2 F0.6 B0.3 F0.7 B0.4 B0.5 B0.6 B0.7");
    expect_order("1f1b", 4, 8, 1, 1, 0, 1,
                 "F1.0 F1.1 F1.2 B1.0 F1.3 B1.1 F1.4 B1.2 F1.5 B1.3 F1.6 B1.4 F1.7 B1.5 B1.6 B1.7");
    expect_order("1f1b", 4, 8, 1, 1, 0, 3,
                 "F3.0 B3.0 F3.1 B3.1 F3.2 B3.2 F3.3 B3.3 F3.4 B3.4 F3.5 B3.5 F3.6 B3.6 F3.7 B3.7");
    /* Fewer micro-batches than the warm-up: all forwards, then all backwards. */
    expect_order("1f1b", 4, 2, 1, 1, 0, 0, "F0.0 F0.1 B0.0 B0.1");
    /* Two iterations: a flush (optimizer barrier) between them; none after the
     * last when the optimizer costs nothing, one when it does. */
    expect_order("1f1b", 2, 2, 1, 2, 0, 0, "F0.0 F0.1 B0.0 B0.1 OPT0 F0.2 F0.3 B0.2 B0.3");
    expect_order("1f1b", 2, 2, 1, 2, 0.5, 1, "F1.0 B1.0 F1.1 B1.1 OPT0 F1.2 B1.2 F1.3 B1.3 OPT1");

    /* PipeDream: 1F1B over one stream of M * iterations, no flush. */
    expect_order("pipedream", 2, 2, 1, 2, 0, 0, "F0.0 F0.1 B0.0 F0.2 B0.1 F0.3 B0.2 B0.3");

    /* Interleaved, the reference example P=2 M=4 V=2, device 0 (chunks 0 and
     * 1 of device 0 are stages 0 and 2). */
    expect_order("interleaved", 2, 4, 2, 1, 0, 0,
                 "F0.0 F0.1 F2.0 F2.1 F0.2 B2.0 F0.3 B2.1 F2.2 B0.0 F2.3 B0.1 B2.2 B2.3 B0.2 "
                 "B0.3");
    /* Device 1 (stages 1 and 3): warm-up (V-1)N = 2. */
    expect_order("interleaved", 2, 4, 2, 1, 0, 1,
                 "F1.0 F1.1 F3.0 B3.0 F3.1 B3.1 F1.2 B1.0 F1.3 B1.1 F3.2 B3.2 F3.3 B3.3 B1.2 "
                 "B1.3");

    /* Forward-only: forwards in order, the stream continuing over iterations. */
    expect_order("forward", 3, 2, 1, 2, 0, 2, "F2.0 F2.1 F2.2 F2.3");
    /* Interleaved forward (looped: device 1 holds stages 1 and 3): groups
     * of P = 2 micro-batches, chunk by chunk, the last group what is left. */
    expect_order("forward", 2, 5, 2, 1, 0, 1, "F1.0 F1.1 F3.0 F3.1 F1.2 F1.3 F3.2 F3.3 F1.4 F3.4");

    /* Refusals, each with its reason. */
    expect_refused("interleaved", 4, 8, 1, "V >= 2");
    expect_refused("interleaved", 1, 8, 2, "at least 2 devices");
    /* M < P runs as PyTorch runs it (issue 14; tests/test_interleaved_zb.c);
     * an explicit group size below P is still refused there. */
    expect_refused("interleaved", 4, 6, 2, "last group of 2");
    expect_refused("gpipe", 4, 8, 2, "one model chunk per device");
    expect_refused("1f1b", 4, 8, 2, "one model chunk per device");
    expect_refused("pipedream", 4, 8, 2, "one model chunk per device");

    /* Interleaved with a group size other than P follows Megatron's table:
     * P=2, N=3, M=5, V=2 -> virtual micro-batches (m,c): (0,0)(1,0)(2,0)
     * (0,1)(1,1)(2,1)(3,0)(4,0)(3,1)(4,1); device 1 warms up (V-1)N = 3. */
    {
        bs_program prog;
        bs_error err = {{0}};
        bs_config cfg;
        char got[4096];
        bs_program_init(&prog);
        bs_config_init(&cfg);
        snprintf(cfg.schedule, sizeof cfg.schedule, "interleaved");
        cfg.stages = 2;
        cfg.microbatches = 5;
        cfg.virtual_stages = 2;
        cfg.group_size = 3;
        int rc = bs_program_build(&prog, &cfg, &err);
        CHECK_MSG(rc == BS_OK, "%s", err.message);
        if (rc == BS_OK) {
            device_order(&prog, 1, got, sizeof got);
            const char *want = "F1.0 F1.1 F1.2 F3.0 B3.0 F3.1 B3.1 F3.2 B3.2 F1.3 B1.0 F1.4 "
                               "B1.1 F3.3 B1.2 F3.4 B3.3 B3.4 B1.3 B1.4";
            CHECK_MSG(strcmp(got, want) == 0, "group 3:\n  got  %s\n  want %s", got, want);
        }
        bs_config_free(&cfg);
        bs_program_free(&prog);
    }
    CHECK(check_interleaved_table() > 100);
    return check_finish("schedules");
}
