/*
 * bench_inputs.c - the input paths stay linear (issue 11): each reader is
 * timed on an input of size n and of size 4n, and the benchmark fails when
 * the larger one takes more than 8 times as long (linear: about 4; the
 * pairwise duplicate check it replaced: 16). Inputs: an object of 10,000
 * keys (the most one object may hold) against 2,500; an inline order of
 * 400,000 actions against 100,000; 80,000 --set against 20,000; a
 * 16 MiB string value against 4 MiB. Each size is timed as the best of
 * five runs in CPU time, so that a busy machine inflates it as little as
 * possible.
 * Run with `meson test --benchmark bench_inputs` (docs/reliability.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "bubblesim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef char *(*make_fn)(size_t n, bs_override **ov, size_t *n_ov);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n - 1 distinct keys in one object, then the second-to-last again: a
 * pairwise check compares every key with every later one before it finds
 * the pair. */
static char *make_keys(size_t n, bs_override **ov, size_t *n_ov)
{
    char *text = malloc(n * 16 + 64);
    size_t at = (size_t)sprintf(text, "{\"costs\": {");
    for (size_t i = 0; i + 1 < n; i++)
        at += (size_t)sprintf(text + at, "\"k%zu\": 1, ", i);
    sprintf(text + at, "\"k%zu\": 2}}", n - 2);
    *ov = NULL;
    *n_ov = 0;
    return text;
}

static char *make_order(size_t n, bs_override **ov, size_t *n_ov)
{
    size_t mb = n / 2;
    char *text = malloc(n * 16 + 128);
    size_t at = (size_t)sprintf(text,
                                "{\"schedule\": \"custom\", \"stages\": 1, \"microbatches\": %zu, "
                                "\"order\": [[",
                                mb);
    for (size_t i = 0; i < mb; i++)
        at += (size_t)sprintf(text + at, "%s\"0F%zu\", \"0B%zu\"", i ? ", " : "", i, i);
    sprintf(text + at, "]]}");
    *ov = NULL;
    *n_ov = 0;
    return text;
}

static char *make_sets(size_t n, bs_override **ov, size_t *n_ov)
{
    static const char *const paths[] = {"microbatches", "costs.forward", "network.latency",
                                        "memory.kept_fraction"};
    *ov = malloc(n * sizeof **ov);
    for (size_t i = 0; i < n; i++)
        (*ov)[i] = (bs_override){paths[i % 4], i % 4 == 3 ? "0.5" : "3"};
    *n_ov = n;
    char *text = malloc(3);
    strcpy(text, "{}");
    return text;
}

/* A long string value (an unknown schedule, refused after the scan for
 * \u0000 and the "did you mean" comparison). */
static char *make_string(size_t n, bs_override **ov, size_t *n_ov)
{
    char *text = malloc(n + 64);
    size_t at = (size_t)sprintf(text, "{\"schedule\": \"");
    memset(text + at, 'g', n);
    sprintf(text + at + n, "\"}");
    *ov = NULL;
    *n_ov = 0;
    return text;
}

static double best_time(make_fn make, size_t n)
{
    bs_override *ov;
    size_t n_ov;
    char *text = make(n, &ov, &n_ov);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        bs_config cfg;
        bs_error err;
        bs_config_init(&cfg);
        double t0 = now();
        bs_config_parse(&cfg, text, "bench.json", ov, n_ov, &err);
        double t = now() - t0;
        bs_config_free(&cfg);
        if (t < best)
            best = t;
    }
    free(ov);
    free(text);
    return best;
}

int main(void)
{
    static const struct {
        const char *name;
        make_fn make;
        size_t n;
    } cases[] = {
        {"keys in one object", make_keys, 2500},
        {"inline order actions", make_order, 100000},
        {"--set overrides", make_sets, 20000},
        {"string value bytes", make_string, 4u << 20},
    };
    int failed = 0;
    printf("%-22s %10s %12s %10s %12s %7s\n", "input", "n", "time (ms)", "4n", "time (ms)",
           "ratio");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double small = best_time(cases[i].make, cases[i].n);
        double large = best_time(cases[i].make, 4 * cases[i].n);
        double ratio = large / (small > 1e-6 ? small : 1e-6);
        printf("%-22s %10zu %12.3f %10zu %12.3f %7.2f%s\n", cases[i].name, cases[i].n, small * 1e3,
               4 * cases[i].n, large * 1e3, ratio, ratio > 8 ? "  FAIL" : "");
        failed |= ratio > 8;
    }
    return failed;
}
