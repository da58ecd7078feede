/*
 * test_tune.c - the planner through its library interface (sim/tune.h):
 * the best is the fastest fitting candidate, the front is a true Pareto
 * front, pruning and thread count change nothing in the ranking, a config
 * where nothing fits fails with the closest candidate named, and bad input
 * fails cleanly. (tests/cli_tune.sh checks the same search against an
 * exhaustive `bubblesim run`.)
 */
#include "check.h"
#include "tune.h"

#include <string.h>

static const char small[] =
    "{\"schedule\": \"1f1b\","
    " \"model\": {\"layers\": 8, \"hidden\": 64, \"heads\": 4, \"sequence\": 32,"
    "            \"vocabulary\": 1000},"
    " \"hardware\": {\"peak_flops\": 1e12, \"efficiency\": 0.5, \"bandwidth\": 1e10,"
    "               \"latency\": 0.001, \"tp_bandwidth\": 1e10, \"tp_latency\": 0.002},"
    " \"tune\": {\"devices\": 4, \"global_batch\": 8, \"memory_limit\": 1e12,"
    "          \"tensor_parallel\": [1, 2, 4], \"virtual_stages\": [1, 2, 4],"
    "          \"microbatch_sizes\": [1, 2, 4, 8]}}";

static bs_tune *run(const char *text, const bs_override *ov, size_t n_ov, int jobs, int prune,
                    int *rc, bs_error *err)
{
    bs_tune *t = NULL;
    bs_tune_options opts;
    bs_tune_options_init(&opts);
    opts.jobs = jobs;
    opts.prune = prune;
    opts.top = 3;
    CHECK(bs_tune_create(&t) == BS_OK);
    *rc = bs_tune_run(t, text, "small.json", ov, n_ov, &opts, err);
    return t;
}

static void test_ranking(void)
{
    bs_error err = {{0}};
    int rc;
    bs_tune *t = run(small, NULL, 0, 1, 0, &rc, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    const bs_tune_info *info = bs_tune_get_info(t);
    CHECK(info->devices == 4 && info->global_batch == 8);
    CHECK(info->candidates == bs_tune_candidate_count(t));
    size_t total = 0, fits = 0;
    double fastest = INFINITY;
    for (int s = 0; s < BS_TUNE_STATUS_COUNT; s++)
        total += info->count[s];
    CHECK(total == info->candidates);
    CHECK(info->count[BS_TUNE_PRUNED] == 0); /* no pruning asked */
    for (size_t i = 0; i < bs_tune_candidate_count(t); i++) {
        const bs_tune_candidate *c = bs_tune_candidate_at(t, i);
        /* devices = D x P x T; global batch = D x b x M */
        CHECK(c->data_parallel * c->stages * c->tensor_parallel == 4);
        CHECK(c->data_parallel * c->microbatch_size * c->microbatches == 8);
        CHECK(c->data_parallel > 1 || c->zero_stage == 0);
        if (c->status == BS_TUNE_FITS || c->status == BS_TUNE_OVER_MEMORY) {
            /* the bounds hold */
            CHECK_MSG(c->time_bound <= c->time * (1 + 1e-9), "%g > %g", c->time_bound, c->time);
            CHECK_MSG(c->memory_bound <= c->memory * (1 + 1e-9), "%g > %g", c->memory_bound,
                      c->memory);
        }
        if (c->status == BS_TUNE_FITS) {
            fits++;
            if (c->time < fastest)
                fastest = c->time;
        }
    }
    CHECK(fits > 20);
    CHECK(bs_tune_best_count(t) == fits);
    CHECK(bs_tune_best(t, 0)->time == fastest);
    for (size_t i = 1; i < bs_tune_best_count(t); i++)
        CHECK(bs_tune_best(t, i - 1)->time <= bs_tune_best(t, i)->time);
    CHECK(bs_tune_best(t, fits) == NULL);
    /* The front: memory rising, time falling, nothing fitting dominates. */
    size_t nf = bs_tune_front_count(t);
    CHECK(nf >= 1);
    CHECK(bs_tune_front(t, nf - 1)->time == fastest);
    for (size_t i = 0; i < nf; i++) {
        const bs_tune_candidate *f = bs_tune_front(t, i);
        if (i) {
            CHECK(bs_tune_front(t, i - 1)->memory <= f->memory);
            CHECK(bs_tune_front(t, i - 1)->time > f->time);
        }
        for (size_t k = 0; k < bs_tune_best_count(t); k++) {
            const bs_tune_candidate *q = bs_tune_best(t, k);
            CHECK(!(q->time <= f->time && q->memory <= f->memory &&
                    (q->time < f->time || q->memory < f->memory)));
        }
    }
    /* Pruned, on 4 threads: the same best 3 and the same front. */
    bs_tune *p = run(small, NULL, 0, 4, 1, &rc, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    for (size_t i = 0; i < 3; i++)
        CHECK(bs_tune_best(p, i)->time == bs_tune_best(t, i)->time &&
              strcmp(bs_tune_best(p, i)->schedule, bs_tune_best(t, i)->schedule) == 0);
    CHECK(bs_tune_front_count(p) == nf);
    for (size_t i = 0; i < nf && i < bs_tune_front_count(p); i++)
        CHECK(bs_tune_front(p, i)->time == bs_tune_front(t, i)->time);
    char label[160];
    CHECK(strstr(bs_tune_describe(bs_tune_best(t, 0), label, sizeof label), " P=") != NULL);
    /* A tune object runs once. */
    bs_tune_options o;
    bs_tune_options_init(&o);
    CHECK(bs_tune_run(t, small, "small.json", NULL, 0, &o, &err) == BS_ERR_INTERNAL);
    bs_tune_free(&t);
    bs_tune_free(&p);
    CHECK(t == NULL);
    bs_tune_free(&t); /* NULL is fine */
}

static void test_failures(void)
{
    bs_error err = {{0}};
    int rc;
    /* Nothing fits in 1 MB: the message names the closest candidate. */
    bs_override tiny = {"tune.memory_limit", "1e6"};
    bs_tune *t = run(small, &tiny, 1, 2, 1, &rc, &err);
    CHECK(rc == BS_ERR_INVALID);
    CHECK_MSG(strstr(err.message, "small.json: no configuration fits") != NULL, "%s", err.message);
    CHECK(bs_tune_best_count(t) == 0 && bs_tune_candidate_count(t) > 0);
    bs_tune_free(&t);
    /* Bad values name the key. */
    static const struct {
        const char *path, *value, *expect;
    } bad[] = {
        {"tune.devices", "0", "tune.devices"},
        {"tune.devices", "\"4\"", "tune.devices"},
        {"tune.global_batch", "1e300", "tune.global_batch"},
        {"tune.memory_limit", "-1", "tune.memory_limit"},
        {"tune.schedules", "[\"custom\"]", "tune.schedules[0]"},
        {"tune.virtual_stages", "[]", "tune.virtual_stages"},
        {"tune.bogus", "1", "tune.bogus"},
        {"tune.data_parallel", "[3]", "tune.data_parallel[0]: D = 3 does not divide tune.devices"},
        {"tune.data_parallel", "[0]", "tune.data_parallel[0]: expected an integer from 1"},
        {"tune.zero_stages", "[4]", "tune.zero_stages[0]: expected an integer from 0 to 3, got 4"},
        {"tune.recompute", "[\"most\"]", "tune.recompute[0]: expected"},
        {"tune.recompute", "\"full\"", "tune.recompute: expected an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bs_override ov = {bad[i].path, bad[i].value};
        t = run(small, &ov, 1, 1, 1, &rc, &err);
        CHECK_MSG(rc == BS_ERR_INVALID && strstr(err.message, bad[i].expect), "%s=%s: %d %s",
                  bad[i].path, bad[i].value, rc, err.message);
        bs_tune_free(&t);
    }
    t = run("{\"model\": ", NULL, 0, 1, 1, &rc, &err);
    CHECK(rc == BS_ERR_INVALID);
    bs_tune_free(&t);
    CHECK(strcmp(bs_tune_status_name(BS_TUNE_FITS), "fits") == 0);
    CHECK(strcmp(bs_tune_status_name(99), "?") == 0);
}

/* Every simulated candidate, D > 1 ones included, is what a separate
 * run of the config with its overrides gives: time per iteration and the
 * peak device's whole memory (run --json's peak_memory). */
static void test_candidates_are_runs(void)
{
    static const char *const rec[] = {"none", "selective", "full"};
    bs_error err = {{0}};
    int rc, checked = 0, with_dp = 0;
    bs_tune *t = run(small, NULL, 0, 1, 0, &rc, &err);
    CHECK_MSG(rc == BS_OK, "%s", err.message);
    bs_context *ctx = NULL;
    CHECK(bs_context_create(&ctx) == BS_OK);
    double best_run = INFINITY;
    for (size_t i = 0; ctx && i < bs_tune_candidate_count(t); i++) {
        const bs_tune_candidate *c = bs_tune_candidate_at(t, i);
        if (c->status != BS_TUNE_FITS && c->status != BS_TUNE_OVER_MEMORY)
            continue;
        char P[16], M[16], V[16], T[16], b[16], D[16], Z[16];
        snprintf(P, sizeof P, "%d", c->stages);
        snprintf(M, sizeof M, "%d", c->microbatches);
        snprintf(V, sizeof V, "%d", c->virtual_stages);
        snprintf(T, sizeof T, "%d", c->tensor_parallel);
        snprintf(b, sizeof b, "%d", c->microbatch_size);
        snprintf(D, sizeof D, "%d", c->data_parallel);
        snprintf(Z, sizeof Z, "%d", c->zero_stage);
        bs_override ov[] = {{"schedule", c->schedule},
                            {"stages", P},
                            {"microbatches", M},
                            {"virtual_stages", V},
                            {"tensor_parallel", T},
                            {"model.microbatch_size", b},
                            {"data_parallel", D},
                            {"zero_stage", Z},
                            {"model.recompute", rec[c->recompute]}};
        bs_config cfg;
        const bs_result *res = NULL;
        bs_config_init(&cfg);
        rc = bs_config_parse(&cfg, small, "small.json", ov, 9, &err);
        if (!rc)
            rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
        CHECK_MSG(rc == BS_OK, "%s", err.message);
        if (!rc) {
            CHECK_NEAR(res->iteration_time, c->time, 0);
            CHECK_NEAR(res->peak_memory, c->memory, 0);
            checked++;
            with_dp += c->data_parallel > 1;
            if (c->status == BS_TUNE_FITS && res->iteration_time < best_run)
                best_run = res->iteration_time;
        }
        bs_config_free(&cfg);
    }
    CHECK(checked > 50 && with_dp > 20);
    CHECK(bs_tune_best_count(t) > 0 && bs_tune_best(t, 0)->time == best_run);
    bs_context_free(&ctx);
    bs_tune_free(&t);
}

int main(void)
{
    test_candidates_are_runs();
    test_ranking();
    test_failures();
    return check_finish("tune");
}
