/*
 * compare.c - a config's prediction beside a measured trace: makespan, busy
 * and idle per rank, and every op's times (medians over the trace's steps),
 * with the run's own noise beside the error.
 *
 * The prediction is the engine's timeline of the config's program, one
 * iteration. A measured step runs from its first action (on any rank) to
 * its last compute op's end: the runtime's work before each op is part of
 * the step, as calibrate folds it into the start of each op's cost; its
 * work after the last op (gradient reduction, waits on sends) is not
 * modelled. The optimizer step is not part of a traced step, so optimizer
 * ops are left out of the predicted makespan.
 */
#include "bubblesim_measure.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { KINDS = 4 };

/* Contract in bubblesim_measure.h. */
void bs_comparison_free(bs_comparison **cmp)
{
    if (!cmp || !*cmp)
        return;
    bs_comparison *c = *cmp;
    bs_free(c->predicted_busy);
    bs_free(c->predicted_idle);
    bs_free(c->measured_busy);
    bs_free(c->measured_idle);
    bs_free(c->ops);
    free(c);
    *cmp = NULL;
}

/* The config must describe the traced run: same ranks, chunks, placement
 * and micro-batches, one iteration. */
static int check_shape(const bs_config *cfg, const bs_program *prog, const bs_trace *tr,
                       bs_error *err)
{
    if (cfg->stages != tr->ranks || prog->stages != tr->stages ||
        cfg->microbatches != tr->microbatches)
        return bs_fail(err, BS_ERR_INVALID,
                       "the config has P=%d, %d chunks, M=%d; the trace %d ranks, %d stages, "
                       "M=%d",
                       cfg->stages, prog->stages, cfg->microbatches, tr->ranks, tr->stages,
                       tr->microbatches);
    if (cfg->iterations != 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "iterations: the trace holds one iteration per step; compare needs "
                       "iterations = 1, got %d",
                       cfg->iterations);
    for (int s = 0; s < tr->stages; s++)
        if (prog->stage_device[s] != tr->placement[s])
            return bs_fail(err, BS_ERR_INVALID,
                           "chunk %d is on device %u in the config but on rank %u in the trace", s,
                           (unsigned)prog->stage_device[s], (unsigned)tr->placement[s]);
    return BS_OK;
}

/* max |x| over v with its sign, and the median of |x|. */
static void median_worst(const double *v, size_t n, double *scratch, double *median, double *worst)
{
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        scratch[i] = fabs(v[i]);
        if (fabs(v[i]) > fabs(w))
            w = v[i];
    }
    *median = n ? bs_median(scratch, n) : NAN;
    *worst = w;
}

/* splitmix64 (Steele, Lea and Flood): a small generator whose sequence is
 * fixed by its seed, so a sampled prediction is reproducible. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A uniform index in [0, count), count >= 1. */
static size_t random_index(uint64_t *state, size_t count)
{
    size_t k = (size_t)((double)(next_random(state) >> 11) * 0x1.0p-53 * (double)count);
    return k < count ? k : count - 1;
}

/* The noise trace must describe the same run as the compared one. */
static int check_noise_shape(const bs_trace *noise, const bs_trace *tr, bs_error *err)
{
    if (noise->ranks != tr->ranks || noise->stages != tr->stages ||
        noise->microbatches != tr->microbatches || noise->ops_per_step != tr->ops_per_step)
        return bs_fail(err, BS_ERR_INVALID,
                       "the noise trace has %d ranks, %d stages, M=%d and %zu ops per step; the "
                       "compared trace %d, %d, M=%d and %zu",
                       noise->ranks, noise->stages, noise->microbatches, noise->ops_per_step,
                       tr->ranks, tr->stages, tr->microbatches, tr->ops_per_step);
    for (int s = 0; s < tr->stages; s++)
        if (noise->placement[s] != tr->placement[s])
            return bs_fail(err, BS_ERR_INVALID,
                           "chunk %d is on rank %u in the noise trace but on rank %u in the "
                           "compared trace",
                           s, (unsigned)noise->placement[s], (unsigned)tr->placement[s]);
    return BS_OK;
}

/* The sampled prediction (contract at bs_compare_with): fills c->samples
 * and the sampled_* figures. map gives the program op of each trace op. */
static int sample_prediction(bs_comparison *c, const bs_program *prog, const bs_config *cfg,
                             const bs_trace *tr, const size_t *map, const bs_compare_options *opt,
                             bs_error *err)
{
    const bs_trace *nz = opt->noise;
    size_t n = tr->ops_per_step, cells = (size_t)tr->stages * KINDS;
    size_t samples = opt->samples > 0 ? (size_t)opt->samples : BS_COMPARE_DEFAULT_SAMPLES;
    int rc = BS_OK;
    bs_timeline tl;
    bs_timeline_init(&tl);
    if (opt->samples < 0 || opt->samples > BS_COMPARE_MAX_SAMPLES)
        return bs_fail(err, BS_ERR_INVALID, "samples: expected 1..%d, got %d",
                       BS_COMPARE_MAX_SAMPLES, opt->samples);
    /* Bounded work: a huge trace gets fewer default samples, and an
     * explicit count that would run for minutes is refused. */
    double runs_fit = floor(BS_COMPARE_MAX_OP_RUNS / (double)(n ? n : 1));
    if ((double)samples > runs_fit) {
        if (opt->samples > 0)
            return bs_fail(err, BS_ERR_INVALID,
                           "samples: %d runs of %zu ops exceed %.0e op runs; give at most %.0f",
                           opt->samples, n, BS_COMPARE_MAX_OP_RUNS, fmax(1.0, runs_fit));
        samples = (size_t)fmax(1.0, runs_fit);
    }
    if ((rc = check_noise_shape(nz, tr, err)) < 0)
        return rc;
    /* Per cell (chunk, kind): the noise ops of a step, as indices into the
     * step (every step runs the same ops in the same order), and the mean
     * of gap + duration over every step. */
    size_t *first = bs_zalloc_array(cells + 1, sizeof *first);
    size_t *members = bs_alloc_array(n, sizeof *members);
    size_t *fill = bs_zalloc_array(cells, sizeof *fill);
    double *mean = bs_zalloc_array(cells, sizeof *mean);
    double *cost = bs_alloc_array(n * (size_t)nz->steps, sizeof *cost);
    double *scale = bs_alloc_array(prog->op_count, sizeof *scale);
    double *span = bs_alloc_array(samples, sizeof *span);
    uint64_t state = opt->seed;
    if (!first || !members || !fill || !mean || !cost || !scale || !span) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        first[(size_t)nz->ops[i].stage * KINDS + nz->ops[i].kind + 1]++;
    for (size_t k = 0; k < cells; k++)
        first[k + 1] += first[k];
    for (size_t i = 0; i < n; i++) {
        size_t cell = (size_t)nz->ops[i].stage * KINDS + nz->ops[i].kind;
        members[first[cell] + fill[cell]++] = i;
    }
    for (size_t st = 0; st < (size_t)nz->steps; st++) {
        for (size_t i = 0; i < n; i++) {
            const bs_trace_op *op = &nz->ops[st * n + i];
            double x = fmax(0.0, bs_trace_gap(nz, st, i) + (op->end - op->start));
            cost[st * n + i] = x;
            mean[(size_t)op->stage * KINDS + op->kind] += x;
        }
    }
    for (size_t k = 0; k < cells; k++) {
        size_t count = first[k + 1] - first[k];
        if (count)
            mean[k] /= (double)count * (double)nz->steps;
    }
    for (size_t i = 0; i < n; i++) {
        size_t cell = (size_t)tr->ops[i].stage * KINDS + tr->ops[i].kind;
        if (first[cell + 1] == first[cell]) {
            rc = bs_fail(err, BS_ERR_INVALID, "the noise trace ran no %c op of chunk %u",
                         bs_op_letter(tr->ops[i].kind), (unsigned)tr->ops[i].stage);
            goto done;
        }
    }

    for (size_t i = 0; i < prog->op_count; i++)
        scale[i] = 1.0;
    for (size_t k = 0; k < samples; k++) {
        size_t st = k % (size_t)nz->steps;
        for (size_t i = 0; i < n; i++) {
            size_t cell = (size_t)tr->ops[i].stage * KINDS + tr->ops[i].kind;
            size_t count = first[cell + 1] - first[cell];
            size_t pick = st * n + members[first[cell] + random_index(&state, count)];
            scale[map[i]] = mean[cell] > 0 ? cost[pick] / mean[cell] : 1.0;
        }
        if ((rc = bs_engine_run_scaled(&tl, prog, cfg, 0, scale, err)) < 0)
            goto done;
        double end = 0.0;
        for (size_t i = 0; i < n; i++)
            end = fmax(end, tl.times[map[i]].end);
        span[k] = end;
    }
    c->samples = (int)samples;
    c->sampled_makespan = bs_median(span, samples); /* sorts span */
    c->sampled_low = span[(size_t)floor(0.1 * (double)(samples - 1) + 0.5)];
    c->sampled_high = span[(size_t)floor(0.9 * (double)(samples - 1) + 0.5)];
    c->sampled_error = (c->sampled_makespan - c->measured_makespan) / c->measured_makespan;
done:
    bs_free(first);
    bs_free(members);
    bs_free(fill);
    bs_free(mean);
    bs_free(cost);
    bs_free(scale);
    bs_free(span);
    bs_timeline_free(&tl);
    return rc;
}

/* Contract in bubblesim_measure.h. */
int bs_compare(bs_comparison **out, const bs_config *cfg, const bs_trace *tr, bs_error *err)
{
    return bs_compare_with(out, cfg, tr, NULL, err);
}

/* Contract in bubblesim_measure.h. */
int bs_compare_with(bs_comparison **out, const bs_config *cfg, const bs_trace *tr,
                    const bs_compare_options *opt, bs_error *err)
{
    int rc;
    bs_program prog;
    bs_timeline tl;
    bs_comparison *c = NULL;
    size_t *map = NULL; /* program op index of each trace op of a step */
    double *scratch = NULL, *step_span = NULL, *errs = NULL;
    bs_program_init(&prog);
    bs_timeline_init(&tl);
    *out = NULL;
    if ((rc = bs_program_build(&prog, cfg, err)) < 0 ||
        (rc = check_shape(cfg, &prog, tr, err)) < 0 ||
        (rc = bs_engine_run(&tl, &prog, cfg, 0, err)) < 0)
        goto error;

    size_t n = tr->ops_per_step, steps = (size_t)tr->steps;
    c = calloc(1, sizeof *c);
    map = bs_alloc_array(n, sizeof *map);
    scratch = bs_alloc_array(n > steps ? n : steps, sizeof *scratch);
    step_span = bs_alloc_array(steps, sizeof *step_span);
    errs = bs_alloc_array(n > steps ? n : steps, sizeof *errs);
    if (!c || !map || !scratch || !step_span || !errs)
        goto nomem;
    c->ranks = tr->ranks;
    c->steps = tr->steps;
    c->op_count = n;
    c->ops = bs_zalloc_array(n, sizeof *c->ops);
    c->predicted_busy = bs_zalloc_array((size_t)tr->ranks, sizeof(double));
    c->predicted_idle = bs_zalloc_array((size_t)tr->ranks, sizeof(double));
    c->measured_busy = bs_zalloc_array((size_t)tr->ranks, sizeof(double));
    c->measured_idle = bs_zalloc_array((size_t)tr->ranks, sizeof(double));
    if (!c->ops || !c->predicted_busy || !c->predicted_idle || !c->measured_busy ||
        !c->measured_idle)
        goto nomem;

    /* Match each traced op to the program's op of the same chunk,
     * micro-batch and kind on the same device. */
    {
        size_t cells = (size_t)tr->stages * (size_t)tr->microbatches * KINDS;
        size_t *where = bs_alloc_array(cells, sizeof *where);
        if (!where)
            goto nomem;
        for (size_t k = 0; k < cells; k++)
            where[k] = SIZE_MAX;
        size_t program_ops = 0;
        for (size_t i = 0; i < prog.op_count; i++) {
            const bs_op *op = &prog.ops[i];
            if (op->kind == BS_OP_OPTIMIZER)
                continue;
            program_ops++;
            where[((size_t)op->stage * (size_t)tr->microbatches + op->microbatch) * KINDS +
                  op->kind] = i;
        }
        for (size_t i = 0; i < n; i++) {
            const bs_trace_op *t = &tr->ops[i];
            map[i] = where[((size_t)t->stage * (size_t)tr->microbatches + t->microbatch) * KINDS +
                           t->kind];
            if (map[i] == SIZE_MAX) {
                char buf[48];
                bs_op op = {t->microbatch, t->stage, t->kind, 0};
                bs_free(where);
                rc = bs_fail(err, BS_ERR_INVALID,
                             "the trace ran %s, which the config's schedule does not have",
                             bs_op_format(&op, buf, sizeof buf));
                goto error;
            }
        }
        bs_free(where);
        if (program_ops != n) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "the config's schedule has %zu compute ops, the trace %zu per step",
                         program_ops, n);
            goto error;
        }
    }

    /* Prediction. */
    for (size_t i = 0; i < n; i++) {
        const bs_op_time *pt = &tl.times[map[i]];
        c->predicted_makespan = fmax(c->predicted_makespan, pt->end);
    }
    for (int r = 0; r < tr->ranks; r++) {
        for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++)
            c->predicted_busy[r] += tl.times[map[i]].end - tl.times[map[i]].start;
        c->predicted_idle[r] = c->predicted_makespan - c->predicted_busy[r];
    }

    /* Measurement: each step's makespan, then medians. */
    for (size_t st = 0; st < steps; st++) {
        const bs_trace_op *ops = tr->ops + st * n;
        double span = 0.0;
        for (size_t i = 0; i < n; i++)
            span = fmax(span, ops[i].end);
        step_span[st] = span;
    }
    memcpy(scratch, step_span, steps * sizeof *scratch);
    c->measured_makespan = bs_median(scratch, steps);
    c->measured_min = scratch[0];
    c->measured_max = scratch[steps - 1];
    if (!(c->measured_makespan > 0)) {
        rc = bs_fail(err, BS_ERR_INVALID, "the trace's median makespan is 0");
        goto error;
    }
    c->makespan_error = (c->predicted_makespan - c->measured_makespan) / c->measured_makespan;
    {
        double mean = 0.0, var = 0.0;
        for (size_t st = 0; st < steps; st++) {
            errs[st] =
                step_span[st] > 0 ? (c->predicted_makespan - step_span[st]) / step_span[st] : 0.0;
            mean += step_span[st] / (double)steps;
        }
        for (size_t st = 0; st < steps; st++)
            var += (step_span[st] - mean) * (step_span[st] - mean) / (double)steps;
        median_worst(errs, steps, scratch, &c->step_error_median, &c->step_error_worst);
        /* The median of signed errors says which way the prediction leans. */
        memcpy(scratch, errs, steps * sizeof *scratch);
        c->step_error_median = bs_median(scratch, steps);
        c->noise_spread = (c->measured_max - c->measured_min) / c->measured_makespan;
        c->noise_stdev = sqrt(var) / c->measured_makespan;
    }
    for (int r = 0; r < tr->ranks; r++) {
        double *busy = errs, *idle = scratch;
        for (size_t st = 0; st < steps; st++) {
            const bs_trace_op *ops = tr->ops + st * n;
            double b = 0.0;
            for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++)
                b += ops[i].end - ops[i].start;
            busy[st] = b;
            idle[st] = step_span[st] - b;
        }
        c->measured_busy[r] = bs_median(busy, steps);
        c->measured_idle[r] = bs_median(idle, steps);
    }
    for (int r = 0; r < tr->ranks; r++) {
        for (size_t i = tr->rank_first[r]; i < tr->rank_first[r + 1]; i++) {
            bs_compare_op *o = &c->ops[i];
            const bs_trace_op *t = &tr->ops[i];
            o->microbatch = t->microbatch;
            o->stage = t->stage;
            o->kind = t->kind;
            o->rank = r;
            o->predicted_start = tl.times[map[i]].start;
            o->predicted_end = tl.times[map[i]].end;
            double *dur = errs;
            for (size_t st = 0; st < steps; st++) {
                scratch[st] = tr->ops[st * n + i].start;
                dur[st] = tr->ops[st * n + i].end - tr->ops[st * n + i].start;
            }
            o->measured_start = bs_median(scratch, steps);
            double dmed = bs_median(dur, steps);
            for (size_t st = 0; st < steps; st++)
                scratch[st] = tr->ops[st * n + i].end;
            o->measured_end = bs_median(scratch, steps);
            o->end_error = o->predicted_end - o->measured_end;
            o->duration_error = (o->predicted_end - o->predicted_start) - dmed;
        }
    }
    for (size_t i = 0; i < n; i++)
        errs[i] = c->ops[i].end_error;
    median_worst(errs, n, scratch, &c->op_end_error_median, &c->op_end_error_worst);
    for (size_t i = 0; i < n; i++)
        errs[i] = c->ops[i].duration_error;
    median_worst(errs, n, scratch, &c->op_duration_error_median, &c->op_duration_error_worst);
    if (opt && opt->noise && (rc = sample_prediction(c, &prog, cfg, tr, map, opt, err)) < 0)
        goto error;
    rc = BS_OK;
    goto done;
nomem:
    rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
error:
    bs_comparison_free(&c);
done:
    bs_free(map);
    bs_free(scratch);
    bs_free(step_span);
    bs_free(errs);
    bs_timeline_free(&tl);
    bs_program_free(&prog);
    *out = c;
    return rc;
}

/* Contract in bubblesim_measure.h. */
double bs_comparison_judged_error(const bs_comparison *c)
{
    return c->samples > 0 ? c->sampled_error : c->makespan_error;
}

/* The judged error, in percent, is at most the tolerance. */
static int within(const bs_comparison *c, double tolerance)
{
    return fabs(bs_comparison_judged_error(c)) * 100.0 <= tolerance;
}

/* Contract in bubblesim_measure.h. */
int bs_comparison_write_table(FILE *out, const bs_comparison *c, double tolerance, bs_error *err)
{
    fprintf(out, "%-34s %12s %12s %9s\n", "", "predicted", "measured", "error");
    fprintf(out, "%-34s %12.3f %12.3f %+8.2f%%\n", "makespan (ms, median of steps)",
            c->predicted_makespan, c->measured_makespan, 100.0 * c->makespan_error);
    fprintf(out, "%-34s %12s %5.3f..%-6.3f %+8.2f%% median, %+.2f%% worst\n",
            "makespan per step (ms)", "", c->measured_min, c->measured_max,
            100.0 * c->step_error_median, 100.0 * c->step_error_worst);
    fprintf(out, "%-34s %12s %11.2f%% %9s (stdev %.2f%%, %d steps)\n",
            "run's own noise (max-min)/median", "", 100.0 * c->noise_spread, "",
            100.0 * c->noise_stdev, c->steps);
    for (int r = 0; r < c->ranks; r++) {
        char label[64];
        snprintf(label, sizeof label, "rank %d busy (ms)", r);
        fprintf(out, "%-34s %12.3f %12.3f %+8.3f ms\n", label, c->predicted_busy[r],
                c->measured_busy[r], c->predicted_busy[r] - c->measured_busy[r]);
        snprintf(label, sizeof label, "rank %d idle (ms)", r);
        fprintf(out, "%-34s %12.3f %12.3f %+8.3f ms\n", label, c->predicted_idle[r],
                c->measured_idle[r], c->predicted_idle[r] - c->measured_idle[r]);
    }
    fprintf(out, "%-34s %12s %12s %+8.3f ms median |err|, %+.3f ms worst\n", "op end time", "", "",
            c->op_end_error_median, c->op_end_error_worst);
    fprintf(out, "%-34s %12s %12s %+8.3f ms median |err|, %+.3f ms worst\n", "op duration", "", "",
            c->op_duration_error_median, c->op_duration_error_worst);
    if (c->samples > 0) {
        fprintf(out, "%-34s %12.3f %12.3f %+8.2f%%\n", "sampled makespan (ms, median)",
                c->sampled_makespan, c->measured_makespan, 100.0 * c->sampled_error);
        fprintf(out, "%-34s %5.3f..%-6.3f %12s %9s (%d runs with the measured variation)\n",
                "sampled 10th..90th percentile", c->sampled_low, c->sampled_high, "", "",
                c->samples);
    }
    fprintf(out, "%s: |%s error| %.2f%% %s tolerance %.2f%%\n",
            within(c, tolerance) ? "within" : "OUTSIDE",
            c->samples > 0 ? "sampled makespan" : "makespan",
            100.0 * fabs(bs_comparison_judged_error(c)), within(c, tolerance) ? "<=" : ">",
            tolerance);
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "write error");
    return BS_OK;
}

/* Contract in bubblesim_measure.h. */
int bs_comparison_write_json(FILE *out, const bs_comparison *c, double tolerance, bs_error *err)
{
    fprintf(out,
            "{\"ranks\": %d, \"steps\": %d, \"predicted_makespan\": %.17g, "
            "\"measured_makespan\": %.17g, \"measured_min\": %.17g, \"measured_max\": %.17g, "
            "\"makespan_error\": %.17g, \"step_error_median\": %.17g, "
            "\"step_error_worst\": %.17g, \"noise_spread\": %.17g, \"noise_stdev\": %.17g, "
            "\"tolerance_pct\": %.17g, \"within_tolerance\": %s,\n",
            c->ranks, c->steps, c->predicted_makespan, c->measured_makespan, c->measured_min,
            c->measured_max, c->makespan_error, c->step_error_median, c->step_error_worst,
            c->noise_spread, c->noise_stdev, tolerance, within(c, tolerance) ? "true" : "false");
    fprintf(out,
            " \"op_end_error_median\": %.17g, \"op_end_error_worst\": %.17g, "
            "\"op_duration_error_median\": %.17g, \"op_duration_error_worst\": %.17g,\n",
            c->op_end_error_median, c->op_end_error_worst, c->op_duration_error_median,
            c->op_duration_error_worst);
    if (c->samples > 0)
        fprintf(out,
                " \"samples\": %d, \"sampled_makespan\": %.17g, \"sampled_low\": %.17g, "
                "\"sampled_high\": %.17g, \"sampled_error\": %.17g, \"judged\": \"sampled\",\n",
                c->samples, c->sampled_makespan, c->sampled_low, c->sampled_high, c->sampled_error);
    else
        fputs(" \"samples\": 0, \"judged\": \"deterministic\",\n", out);
    fputs(" \"rank\": [", out);
    for (int r = 0; r < c->ranks; r++)
        fprintf(out,
                "%s\n  {\"rank\": %d, \"predicted_busy\": %.17g, \"predicted_idle\": %.17g, "
                "\"measured_busy\": %.17g, \"measured_idle\": %.17g}",
                r ? "," : "", r, c->predicted_busy[r], c->predicted_idle[r], c->measured_busy[r],
                c->measured_idle[r]);
    fputs("],\n \"ops\": [", out);
    for (size_t i = 0; i < c->op_count; i++) {
        const bs_compare_op *o = &c->ops[i];
        fprintf(out,
                "%s\n  {\"op\": \"%u%c%u\", \"rank\": %d, \"predicted_start\": %.17g, "
                "\"predicted_end\": %.17g, \"measured_start\": %.17g, \"measured_end\": %.17g, "
                "\"end_error\": %.17g, \"duration_error\": %.17g}",
                i ? "," : "", (unsigned)o->stage, bs_op_letter(o->kind), (unsigned)o->microbatch,
                o->rank, o->predicted_start, o->predicted_end, o->measured_start, o->measured_end,
                o->end_error, o->duration_error);
    }
    fputs("]}\n", out);
    if (ferror(out))
        return bs_fail(err, BS_ERR_IO, "write error");
    return BS_OK;
}
