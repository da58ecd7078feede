/*
 * bench_phases.c - where a run's time goes, per simulated op: building the
 * program (generating it and the validator's structure pass, which is also
 * timed alone), the engine, the metrics.
 *
 * Usage: bench_phases [SCHEDULE P V M REPS]; without arguments it measures
 * 1F1B at P=64 for M = 64, 4096 and 65536 (about 8e3, 5e5 and 8e6 ops),
 * best of REPS runs per phase. A benchmark (`meson test --benchmark`): it
 * reports, it does not judge. docs/performance.md explains the figures.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int measure(const char *schedule, int p, int v, int m, int reps)
{
    bs_config cfg;
    bs_program prog;
    bs_timeline tl;
    bs_result res;
    bs_error err;
    int rc = 0;
    bs_config_init(&cfg);
    bs_program_init(&prog);
    bs_timeline_init(&tl);
    memset(&res, 0, sizeof res);
    snprintf(cfg.schedule, sizeof cfg.schedule, "%s", schedule);
    cfg.stages = p;
    cfg.virtual_stages = v;
    cfg.microbatches = m;
    double best[4] = {1e300, 1e300, 1e300, 1e300};
    for (int r = 0; r < reps && !rc; r++) {
        double t0 = now();
        rc = bs_program_build_unchecked(&prog, &cfg, &err); /* includes the structure pass */
        double t1 = now();
        rc = rc ? rc : bs_program_validate_structure(&prog, &err);
        double t2 = now();
        rc = rc ? rc : bs_engine_run(&tl, &prog, &cfg, 0, &err);
        double t3 = now();
        rc = rc ? rc : bs_metrics_compute(&res, &tl, &cfg, &err);
        double t4 = now();
        double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
        for (int k = 0; k < 4; k++)
            if (d[k] < best[k])
                best[k] = d[k];
    }
    if (rc) {
        fprintf(stderr, "bench_phases: %s\n", err.message);
    } else {
        double n = (double)prog.op_count;
        printf("%-12s P=%-3d V=%d M=%-6d %9zu ops  ns/op: build %5.1f (validation alone %4.1f)  "
               "engine %5.1f  metrics %5.1f  total %5.1f\n",
               schedule, p, v, m, prog.op_count, best[0] * 1e9 / n, best[1] * 1e9 / n,
               best[2] * 1e9 / n, best[3] * 1e9 / n, (best[0] + best[2] + best[3]) * 1e9 / n);
    }
    bs_result_free(&res);
    bs_timeline_free(&tl);
    bs_program_free(&prog);
    bs_config_free(&cfg);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 6)
        return measure(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc != 1) {
        fprintf(stderr, "usage: bench_phases [SCHEDULE P V M REPS]\n");
        return 2;
    }
    int rc = 0;
    rc |= measure("1f1b", 64, 1, 64, 9);
    rc |= measure("1f1b", 64, 1, 4096, 7);
    rc |= measure("1f1b", 64, 1, 65536, 3);
    return rc;
}
