/*
 * bench_zb_auto.c - how long zb-auto takes to search its order: the
 * heuristic's 8 variants and the fixed family, each timed by the engine,
 * then the program written and validated (bs_program_build).
 *
 * Usage: bench_zb_auto [P M REPS]; default P=16, M=256 (issue 14's target:
 * under 1 s), best of REPS = 5 builds, uneven per-stage costs and a message
 * time, at limits P and 2P. Exits 1 when the best build takes 1 s or more.
 */
#include "bubblesim.h"

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

int main(int argc, char **argv)
{
    int p = argc > 2 ? atoi(argv[1]) : 16, m = argc > 2 ? atoi(argv[2]) : 256;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (p < 1 || p > 4096 || m < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_zb_auto [P M REPS]\n");
        return 2;
    }
    double *f = malloc(3 * (size_t)p * sizeof *f);
    if (!f)
        return 1;
    for (int j = 0; j < p; j++) {
        f[j] = 1.0 + 0.1 * (j % 3);          /* forward */
        f[p + j] = 1.1 + 0.05 * (j % 5);     /* input gradient */
        f[2 * p + j] = 0.7 + 0.02 * (j % 7); /* weight gradient */
    }
    int rc = 0;
    for (int twice = 0; twice < 2 && !rc; twice++) {
        bs_config cfg;
        bs_program prog;
        bs_error err;
        bs_config_init(&cfg);
        bs_program_init(&prog);
        snprintf(cfg.schedule, sizeof cfg.schedule, "zb-auto");
        cfg.stages = p;
        cfg.microbatches = m;
        cfg.forward = (bs_values){(size_t)p, f};
        cfg.backward = (bs_values){(size_t)p, f + p};
        cfg.weight = (bs_values){(size_t)p, f + 2 * p};
        cfg.latency = 0.05;
        cfg.limit_activations = twice ? 2.0 * p : p;
        double best = 1e300;
        for (int r = 0; r < reps && !rc; r++) {
            double t0 = now();
            rc = bs_program_build(&prog, &cfg, &err);
            double t = now() - t0;
            if (t < best)
                best = t;
        }
        if (rc)
            fprintf(stderr, "bench_zb_auto: %s\n", err.message);
        else
            printf("zb-auto P=%d M=%d limit %gP: order built in %.3f ms (best of %d), %zu ops\n", p,
                   m, cfg.limit_activations / p, best * 1e3, reps, prog.op_count);
        if (!rc && best >= 1.0)
            rc = 1;
        bs_program_free(&prog);
    }
    free(f);
    return rc ? 1 : 0;
}
