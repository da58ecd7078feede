/*
 * formula.c - closed forms from the literature, for uniform costs and free
 * communication, so that formula and simulation can stand side by side.
 *
 * Notation: P devices, M micro-batches per iteration, V chunks per device,
 * F, B, W the forward, input-gradient and weight-gradient time of one
 * micro-batch on one whole device stage, T = F + B + W.
 *
 *   gpipe, 1f1b   makespan (M + P - 1) T per iteration,
 *                 bubble (idle over total) (P - 1) / (M + P - 1);
 *                 peak activations M (gpipe), min(P - r, M) (1f1b).
 *   pipedream     1f1b over M' = M * iterations micro-batches without a flush;
 *                 weight versions 1 + min(P - 1, floor(M'/2)) at the peak
 *                 (P - r on device r once M' >= 2(P - r - 1)),
 *                 staleness min(P - r - 1, M' - 1).
 *   interleaved   makespan M T + (P - 1) T / V per iteration;
 *                 peak chunks min(2(P - r - 1) + (V - 1) N + 1, M V) on device r.
 *                 Derived for groups of N = P with M a multiple of P; other
 *                 groupings get no closed form.
 *   forward       makespan M' F + (P - 1) F / V (M' = M * iterations); with
 *                 V > 1 for groups of N = P and M a multiple of P; bubble
 *                 over ideal (P - 1) / (M' V); no activations kept.
 *   zb-h1         makespan M T + (P - 1) max(F, F + B - W) per iteration, for
 *                 W <= F and M >= P (the paper's (P - 1)(F + B - W) where
 *                 B >= W; the last device always waits (P - 1) F); peak
 *                 (P - r) + r k on device r, k being memory.kept_fraction
 *                 (r activations wait for their W).
 *   zb-h2         one iteration, M >= 2P - 1: makespan M T + (P - 1) max(F,
 *                 F + B - 2W) (the fill skew (P - 1) F remains at F = B = W,
 *                 where the per-device span has no bubble); peak
 *                 (2P - 1 - 2r) + 2r k.
 *   zbv           one iteration, M >= 2P - 1, F = B = W: makespan
 *                 M T + (P - 1) F / 2; peak P (2P chunks) on every device.
 *   looped-bfs    M >= P: makespan M T + (P - 1) T / V per iteration; peak M.
 *   decode        prefill cost F equal to the decode step's d (whole device
 *                 stage), T output tokens, no context-dependent costs: a
 *                 token takes max(P, M) d per micro-batch (the device's M d
 *                 of work, or the ring's P d); makespan T M d + (P - 1) d / V
 *                 when M >= P (M a multiple of P with V > 1: the prefill's
 *                 groups of P), T P d + (M - 1) d / V when M < P.
 *   dualpipev     no closed form here: the simulation is the answer.
 * These were derived from the orders and checked against the engine over
 * grids of P, M and costs (tests/test_zb.c).
 *
 * Where the assumptions fail (uneven stages, latency, bandwidth, an
 * optimizer step) f->valid is 0: the simulation is the only answer.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* The one value of v when every entry is equal, else NAN. A per-chunk array
 * is scaled to a whole device stage. */
static double uniform_value(const bs_values *v, const bs_config *cfg)
{
    for (size_t i = 1; i < v->count; i++)
        if (v->v[i] != v->v[0])
            return NAN;
    size_t chunks = (size_t)cfg->stages * (size_t)cfg->virtual_stages;
    int per_chunk = v->count == chunks && v->count != (size_t)cfg->stages && v->count != 1;
    return per_chunk ? v->v[0] * cfg->virtual_stages : v->v[0];
}

void bs_formula_compute(bs_formula *f, double *per_device_peak, const bs_config *cfg)
{
    memset(f, 0, sizeof *f);
    int p = cfg->stages, v = cfg->virtual_stages;
    double m = cfg->microbatches, iters = cfg->iterations;
    double fw = uniform_value(&cfg->forward, cfg), bw = uniform_value(&cfg->backward, cfg),
           ww = uniform_value(&cfg->weight, cfg);
    const bs_schedule *s = bs_schedule_find(cfg->schedule);
    int forward_only = s && (s->flags & BS_PROGRAM_FORWARD_ONLY);
    if (forward_only) /* inference never runs a backward: its costs do not matter */
        bw = ww = 0;
    if (!s || isnan(fw) || isnan(bw) || isnan(ww) || !bs_config_network_free(cfg) ||
        cfg->optimizer != 0 || s->check(cfg, NULL) != BS_OK)
        return;
    double t = fw + bw + ww, bubble_time = (p - 1) * t, busy;
    double peak = 0, versions = 1;
    const char *name = s->name;
    if (strcmp(name, "gpipe") == 0 || strcmp(name, "1f1b") == 0) {
        busy = m * t;
        f->makespan = iters * (busy + bubble_time);
        for (int r = 0; r < p; r++) {
            double pr = name[0] == 'g' ? m : fmin(p - r, m);
            if (per_device_peak)
                per_device_peak[r] = pr;
            peak = fmax(peak, pr);
        }
    } else if (strcmp(name, "pipedream") == 0) {
        double mt = m * iters;
        busy = mt * t;
        f->makespan = busy + bubble_time;
        for (int r = 0; r < p; r++) {
            double pr = fmin(p - r, mt);
            if (per_device_peak)
                per_device_peak[r] = pr;
            peak = fmax(peak, pr);
        }
        /* Device r warms up with w = min(P-r-1, M') forwards on version 0 and
         * then has s = M'-w steady steps; after the i-th steady backward
         * min(i+1, w) stashed versions and the new current one are alive.
         * Without a steady step, the drain still keeps version 0 beside the
         * new one once two micro-batches are in flight. Over all devices
         * this peaks at 1 + min(P-1, floor(M'/2)). */
        versions = 0;
        for (int r = 0; r < p; r++) {
            double w = fmin(p - r - 1, mt), steady = mt - w;
            double live = steady >= 1 ? 1 + fmin(w, steady) : 1 + (w >= 2);
            versions = fmax(versions, live);
        }
    } else if (strcmp(name, "interleaved") == 0) {
        int n = cfg->group_size > 0 ? cfg->group_size : p;
        if (n != p || cfg->microbatches % p != 0)
            return;
        busy = m * t;
        f->makespan = iters * (busy + bubble_time / v);
        for (int r = 0; r < p; r++) {
            double pr = fmin(2.0 * (p - r - 1) + (double)(v - 1) * n + 1, m * v) / v;
            if (per_device_peak)
                per_device_peak[r] = pr;
            peak = fmax(peak, pr);
        }
    } else if (strcmp(name, "forward") == 0) {
        /* With V > 1 the fill is (P - 1) chunks of F / V, and there is no
         * other bubble when the groups hold P micro-batches each. */
        int n = cfg->group_size > 0 ? cfg->group_size : p;
        if (v > 1 && (n != p || cfg->microbatches % p != 0))
            return;
        double mt = m * iters;
        busy = mt * fw;
        f->makespan = busy + (p - 1) * fw / v;
        if (per_device_peak)
            for (int r = 0; r < p; r++)
                per_device_peak[r] = 0;
    } else if (strcmp(name, "decode") == 0) {
        double d = cfg->decode.count ? uniform_value(&cfg->decode, cfg) : NAN;
        int n = cfg->group_size > 0 ? cfg->group_size : p;
        double tk = cfg->output_tokens;
        if (isnan(d) || d != fw || cfg->decode_per_token.count || cfg->decode_memory.count ||
            cfg->decode_memory_per_token.count || n != p ||
            (v > 1 && m >= p && cfg->microbatches % p != 0))
            return;
        busy = tk * m * fw;
        f->makespan = m >= p ? busy + (p - 1) * d / v : tk * p * d + (m - 1) * d / v;
        /* The steady period is max(P, M) d. The mean over micro-batches of
         * (last - first token) / (T - 1) also holds the switch from the
         * prefill's order to the decode order: with V > 1 and M >= P,
         * micro-batch g P + i of prefill group g gets its first token at
         * ((g + 1) P V + i) d / V and its last at ((T - 1) M V + (V - 1) M +
         * g P + i + P) d / V, which averages to the extra term below. */
        f->time_per_output_token = tk > 1 ? fmax(p, m) * d : 0;
        if (tk > 1 && v > 1 && m >= p)
            f->time_per_output_token += (v - 1.0) * (m - p) * d / (2.0 * v * (tk - 1));
        if (per_device_peak)
            for (int r = 0; r < p; r++)
                per_device_peak[r] = 0;
    } else if (strcmp(name, "zb-h1") == 0) {
        /* The weight gradients fill the cool-down only while W <= F. */
        if (ww > fw || m < p)
            return;
        busy = m * t;
        f->makespan = iters * (busy + (p - 1) * fmax(fw, fw + bw - ww));
        for (int r = 0; r < p; r++) {
            double pr = (p - r) + r * cfg->kept_fraction;
            if (per_device_peak)
                per_device_peak[r] = pr;
            peak = fmax(peak, pr);
        }
    } else if (strcmp(name, "zb-h2") == 0) {
        /* No flush: later iterations overlap, so only one has a closed form. */
        if (iters != 1 || m < 2 * p - 1)
            return;
        busy = m * t;
        f->makespan = busy + (p - 1) * fmax(fw, fw + bw - 2 * ww);
        for (int r = 0; r < p; r++) {
            double pr = (2 * p - 1 - 2 * r) + 2 * r * cfg->kept_fraction;
            if (per_device_peak)
                per_device_peak[r] = pr;
            peak = fmax(peak, pr);
        }
    } else if (strcmp(name, "zbv") == 0) {
        if (iters != 1 || m < 2 * p - 1 || fw != bw || bw != ww)
            return;
        busy = m * t;
        f->makespan = busy + (p - 1) * fw / 2;
        peak = p;
        if (per_device_peak)
            for (int r = 0; r < p; r++)
                per_device_peak[r] = p;
    } else if (strcmp(name, "looped-bfs") == 0) {
        if (m < p)
            return;
        busy = m * t;
        f->makespan = iters * (busy + bubble_time / v);
        peak = m;
        if (per_device_peak)
            for (int r = 0; r < p; r++)
                per_device_peak[r] = m;
    } else {
        return;
    }
    double total_busy = iters * busy;
    if (strcmp(name, "pipedream") == 0 || strcmp(name, "forward") == 0 ||
        strcmp(name, "decode") == 0)
        total_busy = busy;
    f->valid = 1;
    f->bubble_ratio = 1.0 - total_busy / f->makespan;
    f->bubble_over_ideal = (f->makespan - total_busy) / total_busy;
    f->peak_activations = peak;
    f->weight_versions = versions;
}
