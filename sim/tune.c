/*
 * tune.c - the planner's search (tune.h): enumerate schedule x T x D x P x
 * V x micro-batch size x ZeRO stage x recomputation, screen each candidate
 * against the schedule's constraints and closed-form bounds, simulate the
 * rest, rank them.
 *
 * Search: candidates a schedule refuses are dropped with the reason; the
 * rest get closed-form lower bounds on time per iteration and on peak
 * memory (see bounds()). Candidates whose memory bound exceeds the limit are
 * never simulated. The others are simulated in order of their time bound,
 * in batches of TUNE_BATCH; before a batch starts, a candidate is skipped
 * when its time bound exceeds the N-th best time found so far AND an
 * already simulated fitting point dominates its (time, memory) bounds: then
 * it can be neither in the best N nor on the Pareto front. Decisions use
 * only finished batches, so the result does not depend on the number of
 * threads. Without pruning everything is simulated, to check the bounds.
 */
#include "tune.h"

#include "internal.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_BATCH 16
#define TUNE_MAX_LIST 64
#define GIB (1024.0 * 1024.0 * 1024.0)

/* What to search: the "tune" object with its defaults filled in. */
typedef struct tune_spec {
    int devices, global_batch, use_all_devices;
    double memory_limit;
    const bs_schedule *schedules[TUNE_MAX_LIST];
    int n_schedules;
    int tps[TUNE_MAX_LIST], n_tps;
    int vs[TUNE_MAX_LIST], n_vs;
    int mbs[TUNE_MAX_LIST], n_mbs;
    int objective, decode;                       /* BS_TUNE_*; searching decode schedules */
    int dps[TUNE_MAX_LIST], n_dps;               /* D */
    int zeros[TUNE_MAX_LIST], n_zeros;           /* ZeRO stages */
    int recomputes[TUNE_MAX_LIST], n_recomputes; /* BS_RECOMPUTE_* */
} tune_spec;

struct bs_tune {
    const char *source;
    char *base_text; /* the config without "tune" and "sweep" */
    bs_model model;
    tune_spec spec;
    bs_tune_info info;
    bs_tune_candidate *cand;
    size_t n_cand;
    bs_tune_candidate **best, **front; /* ranked fitting candidates */
    size_t n_best, n_front;
    int ran;
    /* The batch being simulated, and the workers' share of it. */
    bs_tune_candidate **batch;
    size_t batch_len, next;
    pthread_mutex_t lock;
};

static const char *const status_names[BS_TUNE_STATUS_COUNT] = {
    "refused", "over_memory_bound", "pruned", "pending", "fits", "over_memory", "failed"};

const char *bs_tune_status_name(int status)
{
    return status >= 0 && status < BS_TUNE_STATUS_COUNT ? status_names[status] : "?";
}

void bs_tune_options_init(bs_tune_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->top = 10;
    opts->jobs = 1;
    opts->prune = 1;
}

int bs_tune_create(bs_tune **out)
{
    bs_tune *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return BS_ERR_NOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return BS_ERR_NOMEM;
    }
    bs_model_init(&t->model);
    *out = t;
    return BS_OK;
}

void bs_tune_free(bs_tune **tune)
{
    bs_tune *t = tune ? *tune : NULL;
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->cand);
    free(t->best);
    free(t->front);
    free(t->batch);
    cJSON_free(t->base_text);
    bs_model_free(&t->model);
    free(t);
    *tune = NULL;
}

const bs_tune_info *bs_tune_get_info(const bs_tune *tune)
{
    return &tune->info;
}

size_t bs_tune_candidate_count(const bs_tune *tune)
{
    return tune->n_cand;
}

const bs_tune_candidate *bs_tune_candidate_at(const bs_tune *tune, size_t i)
{
    return i < tune->n_cand ? &tune->cand[i] : NULL;
}

size_t bs_tune_best_count(const bs_tune *tune)
{
    return tune->n_best;
}

const bs_tune_candidate *bs_tune_best(const bs_tune *tune, size_t i)
{
    return i < tune->n_best ? tune->best[i] : NULL;
}

size_t bs_tune_front_count(const bs_tune *tune)
{
    return tune->n_front;
}

const bs_tune_candidate *bs_tune_front(const bs_tune *tune, size_t i)
{
    return i < tune->n_front ? tune->front[i] : NULL;
}

static const char *const recompute_names[] = {"none", "selective", "full"};

const char *bs_tune_describe(const bs_tune_candidate *c, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s P=%d T=%d V=%d b=%d M=%d", c->schedule, c->stages,
                     c->tensor_parallel, c->virtual_stages, c->microbatch_size, c->microbatches);
    if (n >= 0 && (size_t)n < size && c->data_parallel > 1)
        n += snprintf(buf + n, size - (size_t)n, " D=%d ZeRO=%d", c->data_parallel, c->zero_stage);
    if (n >= 0 && (size_t)n < size && c->recompute > 0 && c->recompute < 3)
        snprintf(buf + n, size - (size_t)n, " recompute=%s", recompute_names[c->recompute]);
    return buf;
}

/* ------------------------------------------------------------ the spec */

/* The keys of the "tune" object (docs/tune.md). */
static const struct {
    const char *name, *type, *range, *description;
} tune_keys[] = {
    {"devices", "integer, required", "1 to 16777216", "devices to use (D * P * T)"},
    {"global_batch", "integer, required", "1 to 1073741823", "sequences per iteration (D * b * M)"},
    {"memory_limit", "number", "> 0 and <= 1e18",
     "bytes per device; default hardware.memory_bytes"},
    {"schedules", "array of strings", "built-in schedule names, not custom",
     "schedules to search; default every one of the config's kind (training or inference)"},
    {"tensor_parallel", "array of integers", "1 to 4096",
     "T values to search; default powers of 2 up to 8 dividing heads and devices"},
    {"virtual_stages", "array of integers", "1 to 256", "V values to search; default [1, 2, 4]"},
    {"microbatch_sizes", "array of integers", ">= 1",
     "b values to search; default powers of 2 up to 32 dividing global_batch"},
    {"use_all_devices", "boolean", "true or false",
     "require D * P * T = devices (false: at most devices); default true"},
    {"data_parallel", "array of integers", "1 to 65536, dividing devices",
     "D values to search; default every divisor of devices"},
    {"zero_stages", "array of integers", "0 to 3",
     "ZeRO stages to search when D > 1; default [0, 1, 2, 3]"},
    {"recompute", "array of strings", "\"none\", \"selective\", \"full\"",
     "recomputation to search; default the model's own"},
    {"objective", "string", "\"time\", \"latency\", \"throughput\"",
     "what to minimise: time per iteration; decode: time per output token, or ms per token "
     "(most tokens/s)"},
};

#define TUNE_N_KEYS (sizeof tune_keys / sizeof tune_keys[0])

size_t bs_tune_key_count(void)
{
    return TUNE_N_KEYS;
}

void bs_tune_key_describe(size_t i, bs_config_key *out)
{
    snprintf(out->path, sizeof out->path, "tune.%s", tune_keys[i].name);
    snprintf(out->type, sizeof out->type, "%s", tune_keys[i].type);
    snprintf(out->range, sizeof out->range, "%s", tune_keys[i].range);
    out->description = tune_keys[i].description;
    out->doc = "docs/tune.md";
}

static int spec_int(const cJSON *item, const char *path, const char *source, int min, int max,
                    int *out, bs_error *err)
{
    double x = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!cJSON_IsNumber(item) || !(x >= min && x <= max) || x != floor(x)) {
        if (cJSON_IsNumber(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an integer from %d to %d, got %g",
                           source, path, min, max, x);
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an integer from %d to %d, got %s",
                       source, path, min, max,
                       cJSON_IsString(item)  ? "a string"
                       : cJSON_IsArray(item) ? "an array"
                                             : "another type");
    }
    *out = (int)x;
    return BS_OK;
}

static int spec_int_list(const cJSON *obj, const char *key, const char *source, int min, int max,
                         int *out, int *n, bs_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key), *el;
    char path[96];
    if (!item)
        return BS_OK;
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0 ||
        cJSON_GetArraySize(item) > TUNE_MAX_LIST)
        return bs_fail(err, BS_ERR_INVALID, "%s: tune.%s: expected an array of 1 to %d integers",
                       source, key, TUNE_MAX_LIST);
    *n = 0;
    cJSON_ArrayForEach(el, item)
    {
        int rc;
        snprintf(path, sizeof path, "tune.%s[%d]", key, *n);
        if ((rc = spec_int(el, path, source, min, max, &out[*n], err)))
            return rc;
        (*n)++;
    }
    return BS_OK;
}

/* The data-parallel dimensions: tune.data_parallel (default: every
 * divisor of tune.devices), tune.zero_stages (default 0-3) and
 * tune.recompute (default: the model's own). */
static int read_spec_3d(tune_spec *sp, const cJSON *tune, const bs_model *m, const char *source,
                        bs_error *err)
{
    int rc;
    for (int d = 1; d <= sp->devices && sp->n_dps < TUNE_MAX_LIST; d++)
        if (sp->devices % d == 0)
            sp->dps[sp->n_dps++] = d;
    for (int z = 0; z <= 3; z++)
        sp->zeros[sp->n_zeros++] = z;
    sp->recomputes[0] = m->recompute;
    sp->n_recomputes = 1;
    if ((rc = spec_int_list(tune, "data_parallel", source, 1, 65536, sp->dps, &sp->n_dps, err)) ||
        (rc = spec_int_list(tune, "zero_stages", source, 0, 3, sp->zeros, &sp->n_zeros, err)))
        return rc;
    for (int i = 0; i < sp->n_dps; i++)
        if (sp->devices % sp->dps[i] != 0)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.data_parallel[%d]: D = %d does not divide tune.devices = %d "
                           "(devices = D x P x T)",
                           source, i, sp->dps[i], sp->devices);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(tune, "recompute"), *el;
    if (item) {
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0 || cJSON_GetArraySize(item) > 3)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.recompute: expected an array of 1 to 3 of \"none\", "
                           "\"selective\", \"full\"",
                           source);
        sp->n_recomputes = 0;
        cJSON_ArrayForEach(el, item)
        {
            int k = 0;
            while (k < 3 &&
                   !(cJSON_IsString(el) && strcmp(el->valuestring, recompute_names[k]) == 0))
                k++;
            if (k == 3)
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: tune.recompute[%d]: expected \"none\", \"selective\" or "
                               "\"full\"",
                               source, sp->n_recomputes);
            sp->recomputes[sp->n_recomputes++] = k;
        }
    }
    return BS_OK;
}

static int read_spec(tune_spec *sp, const cJSON *tune, const bs_model *m, const bs_config *base,
                     const char *source, bs_error *err)
{

    int rc;
    memset(sp, 0, sizeof *sp);
    sp->use_all_devices = 1;
    if (!tune)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune: missing; expected an object with devices, global_batch and "
                       "optionally memory_limit (docs/tune.md)",
                       source);
    if (!cJSON_IsObject(tune))
        return bs_fail(err, BS_ERR_INVALID, "%s: tune: expected an object", source);
    for (const cJSON *item = tune->child; item; item = item->next) {
        size_t i = 0;
        while (i < TUNE_N_KEYS && strcmp(tune_keys[i].name, item->string) != 0)
            i++;
        if (i == TUNE_N_KEYS) {
            bs_suggest near;
            char hint[96];
            bs_suggest_init(&near, item->string);
            for (size_t k = 0; k < TUNE_N_KEYS; k++)
                bs_suggest_consider(&near, tune_keys[k].name);
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.%.128s: unknown key; %sexpected one of devices, "
                           "global_batch, memory_limit, schedules, tensor_parallel, "
                           "virtual_stages, microbatch_sizes, use_all_devices, data_parallel, "
                           "zero_stages, recompute, objective",
                           source, item->string, bs_suggest_hint(&near, hint, sizeof hint));
        }
    }
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(tune, "devices");
    if (!item)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune.devices: missing; expected the number of "
                       "devices to use",
                       source);
    if ((rc = spec_int(item, "tune.devices", source, 1, 4096 * 4096, &sp->devices, err)))
        return rc;
    if (!(item = cJSON_GetObjectItemCaseSensitive(tune, "global_batch")))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune.global_batch: missing; expected the sequences per iteration",
                       source);
    if ((rc = spec_int(item, "tune.global_batch", source, 1, INT_MAX / 2, &sp->global_batch, err)))
        return rc;
    sp->memory_limit = m->memory_bytes;
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "memory_limit"))) {
        if (!cJSON_IsNumber(item) || !(item->valuedouble > 0 && item->valuedouble <= 1e18))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.memory_limit: expected a number of bytes > 0", source);
        sp->memory_limit = item->valuedouble;
    }
    if (!(sp->memory_limit > 0))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune.memory_limit: missing; give it, or hardware.memory_bytes", source);
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "use_all_devices"))) {
        if (!cJSON_IsBool(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: tune.use_all_devices: expected true or false",
                           source);
        sp->use_all_devices = cJSON_IsTrue(item);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "schedules"))) {
        const cJSON *el;
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0 ||
            cJSON_GetArraySize(item) > TUNE_MAX_LIST)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.schedules: expected an array of schedule names", source);
        cJSON_ArrayForEach(el, item)
        {
            const bs_schedule *s = cJSON_IsString(el) ? bs_schedule_find(el->valuestring) : NULL;
            if (!s || strcmp(s->name, "custom") == 0) {
                bs_suggest near;
                char hint[96] = "";
                bs_suggest_init(&near, cJSON_IsString(el) ? el->valuestring : NULL);
                for (size_t k = 0; k < bs_schedule_count(); k++)
                    if (strcmp(bs_schedule_at(k)->name, "custom") != 0)
                        bs_suggest_consider(&near, bs_schedule_at(k)->name);
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: tune.schedules[%d]: %sexpected the name of a built-in "
                               "schedule (bubblesim --help lists them; custom cannot be tuned)",
                               source, sp->n_schedules, bs_suggest_hint(&near, hint, sizeof hint));
            }
            sp->schedules[sp->n_schedules++] = s;
        }
    } else {
        /* The config's own kind of work: inference tunes the forward
         * schedule (a prefill) or decode, training every training schedule. */
        const bs_schedule *own = bs_schedule_find(base->schedule);
        int inference = own && (own->flags & BS_PROGRAM_FORWARD_ONLY);
        int decode = own && (own->flags & BS_PROGRAM_DECODE_LOOP);
        for (size_t i = 0; i < bs_schedule_count() && sp->n_schedules < TUNE_MAX_LIST; i++) {
            const bs_schedule *s = bs_schedule_at(i);
            if (strcmp(s->name, "custom") == 0 ||
                inference != ((s->flags & BS_PROGRAM_FORWARD_ONLY) != 0) ||
                decode != ((s->flags & BS_PROGRAM_DECODE_LOOP) != 0))
                continue;
            sp->schedules[sp->n_schedules++] = s;
        }
    }
    /* Decode is ranked by its serving figures; a mix of decode and other
     * schedules would compare unlike times. */
    int n_decode = 0;
    for (int i = 0; i < sp->n_schedules; i++)
        n_decode += (sp->schedules[i]->flags & BS_PROGRAM_DECODE_LOOP) != 0;
    if (n_decode && n_decode != sp->n_schedules)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune.schedules: decode cannot be ranked beside other schedules (its "
                       "figures are per token); search it alone",
                       source);
    sp->decode = n_decode > 0;
    sp->objective = BS_TUNE_TIME;
    if ((item = cJSON_GetObjectItemCaseSensitive(tune, "objective"))) {
        static const char *const names[] = {"time", "latency", "throughput"};
        int k = 0;
        while (k < 3 && !(cJSON_IsString(item) && strcmp(item->valuestring, names[k]) == 0))
            k++;
        if (k == 3)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.objective: expected \"time\", \"latency\" or "
                           "\"throughput\"",
                           source);
        if (k != BS_TUNE_TIME && !sp->decode)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: tune.objective: %s ranks decode runs (time per output token, "
                           "tokens/s); set schedule to decode with an inference section "
                           "(docs/inference.md)",
                           source, names[k]);
        sp->objective = k;
    } else if (sp->decode) {
        sp->objective = BS_TUNE_LATENCY;
    }
    /* Tensor parallelism needs a fast link: by default at most 8 devices
     * (one NVLink domain of a typical server). */
    for (int t = 1; t <= 8 && t <= sp->devices; t *= 2)
        if (m->heads % t == 0 && sp->devices % t == 0)
            sp->tps[sp->n_tps++] = t;
    sp->vs[0] = 1, sp->vs[1] = 2, sp->vs[2] = 4, sp->n_vs = 3;
    for (int b = 1; b <= 32 && b <= sp->global_batch; b *= 2)
        if (sp->global_batch % b == 0)
            sp->mbs[sp->n_mbs++] = b;
    if ((rc = spec_int_list(tune, "tensor_parallel", source, 1, 4096, sp->tps, &sp->n_tps, err)) ||
        (rc = spec_int_list(tune, "virtual_stages", source, 1, 256, sp->vs, &sp->n_vs, err)) ||
        (rc = spec_int_list(tune, "microbatch_sizes", source, 1, INT_MAX / 2, sp->mbs, &sp->n_mbs,
                            err)))
        return rc;
    return read_spec_3d(sp, tune, m, source, err);
}

/* --------------------------------------------------------- a candidate */

#define CAND_OVERRIDES 9

typedef struct cand_text {
    char P[16], M[16], V[16], T[16], b[16], D[16], Z[16];
    bs_override ov[CAND_OVERRIDES];
} cand_text;

/* The overrides that turn the base config into candidate c. */
static void candidate_overrides(cand_text *t, const bs_tune_candidate *c)
{
    snprintf(t->P, sizeof t->P, "%d", c->stages);
    snprintf(t->M, sizeof t->M, "%d", c->microbatches);
    snprintf(t->V, sizeof t->V, "%d", c->virtual_stages);
    snprintf(t->T, sizeof t->T, "%d", c->tensor_parallel);
    snprintf(t->b, sizeof t->b, "%d", c->microbatch_size);
    t->ov[0] = (bs_override){"schedule", c->schedule};
    t->ov[1] = (bs_override){"stages", t->P};
    t->ov[2] = (bs_override){"microbatches", t->M};
    t->ov[3] = (bs_override){"virtual_stages", t->V};
    t->ov[4] = (bs_override){"tensor_parallel", t->T};
    t->ov[5] = (bs_override){"model.microbatch_size", t->b};
    snprintf(t->D, sizeof t->D, "%d", c->data_parallel);
    snprintf(t->Z, sizeof t->Z, "%d", c->zero_stage);
    t->ov[6] = (bs_override){"data_parallel", t->D};
    t->ov[7] = (bs_override){"zero_stage", t->Z};
    t->ov[8] = (bs_override){"model.recompute", recompute_names[c->recompute]};
}

/* The config and the model plan of candidate c. */
static int candidate_config(const bs_tune *st, const bs_tune_candidate *c, bs_config *cfg,
                            bs_model_plan *plan, bs_error *err)
{
    cand_text t;
    int rc;
    candidate_overrides(&t, c);
    if ((rc = bs_config_parse(cfg, st->base_text, st->source, t.ov, CAND_OVERRIDES, err)))
        return rc;
    bs_model m = st->model; /* shallow: layers_per_stage is NULL in tune */
    m.tensor_parallel = c->tensor_parallel;
    m.microbatch_size = c->microbatch_size;
    m.data_parallel = c->data_parallel;
    m.zero_stage = c->zero_stage;
    m.recompute = c->recompute;
    int decode = (bs_schedule_find(c->schedule)->flags & BS_PROGRAM_DECODE_LOOP) != 0;
    if (decode)
        m.sequence = cfg->prompt_tokens; /* as bs_model_apply does */
    if ((rc = bs_model_plan_compute(plan, &m, cfg, st->source, err)))
        return rc;
    /* The plan's KV cache at decode's context (and cfg's decode costs,
     * which bs_config_parse computed the same way). */
    return decode ? bs_model_decode_costs(cfg, &m, plan, st->source, err) : BS_OK;
}

/* The cheapest a decode step of chunk k can be: at its first context. */
static double decode_step_min(const bs_config *cfg, int k)
{
    double c = cfg->prompt_tokens + 1.0;
    double compute = cfg->decode.v[k] + cfg->decode_per_token.v[k] * c;
    double memory = cfg->decode_memory.v[k] + cfg->decode_memory_per_token.v[k] * c;
    return compute > memory ? compute : memory;
}

/* Lower bounds, from the plan alone:
 *   time:   device d cannot start before the first micro-batch's forward has
 *           passed every chunk ahead of its first chunk, and then has M
 *           micro-batches of its own work (forward, input and weight
 *           gradients; times costs.overlap, the most overlapping saves);
 *           messages and the optimizer only add. With several iterations the
 *           steady state can hide the fill, so no time bound is used.
 *   memory: weights, gradients, optimizer state and KV cache, plus in
 *           training one chunk's activations: every device holds at least
 *           one forward's activations until its backward. */
static void bounds(bs_tune_candidate *c, const bs_config *cfg, const bs_model_plan *plan,
                   int objective)
{
    double time = 0, memory = 0, ring = 0;
    int decode = cfg->decode_memory.count == (size_t)plan->chunks && cfg->output_tokens > 0;
    for (int d = 0; d < plan->devices; d++) {
        double head = INFINITY, work = 0, before = 0, steps = 0;
        for (int k = 0; k < plan->chunks; k++) {
            const bs_model_chunk *ch = &plan->chunk[k];
            if (ch->device == d) {
                if (before < head)
                    head = before;
                work += ch->forward_ms;
                if (plan->training)
                    work += ch->input_grad_ms + ch->weight_grad_ms;
                if (decode)
                    steps += decode_step_min(cfg, k);
            }
            before += ch->forward_ms;
        }
        if (!isfinite(head))
            head = 0;
        /* Decode: every device also runs M (T - 1) decode steps. */
        double t =
            head + (work * cfg->overlap + steps * (cfg->output_tokens - 1.0)) * cfg->microbatches;
        ring += steps;
        if (t > time)
            time = t;
        const bs_model_device *dv = &plan->device[d];
        double mem = dv->weight_bytes + dv->gradient_bytes + dv->optimizer_bytes +
                     dv->kv_cache_bytes + dv->buffer_bytes +
                     (plan->training ? dv->activation_bytes / cfg->virtual_stages : 0);
        if (mem > memory)
            memory = mem;
    }
    c->time_bound = cfg->iterations == 1 ? time : 0;
    /* Decode objectives: a token of one micro-batch passes every chunk
     * (latency); the makespan bound spread over every token (throughput). */
    if (decode && objective == BS_TUNE_LATENCY)
        c->time_bound = cfg->output_tokens > 1 ? ring : 0;
    else if (decode && objective == BS_TUNE_THROUGHPUT)
        c->time_bound =
            time / ((double)cfg->microbatches * cfg->sequences_per_microbatch * cfg->output_tokens);
    c->memory_bound = memory;
}

/* Simulates candidate c: time per iteration and the peak device's memory. */
static void simulate(const bs_tune *st, bs_tune_candidate *c, bs_context *ctx)
{
    bs_config cfg;
    bs_model_plan plan;
    bs_error err = {{0}};
    const bs_result *res = NULL;
    bs_config_init(&cfg);
    memset(&plan, 0, sizeof plan);
    int rc = candidate_config(st, c, &cfg, &plan, &err);
    if (!rc)
        rc = bs_context_run(ctx, &cfg, NULL, &res, &err);
    if (rc) {
        c->status = BS_TUNE_FAILED;
        snprintf(c->note, sizeof c->note, "%.190s", err.message);
    } else {
        c->time = res->iteration_time;
        c->bubble = res->bubble_ratio;
        if (res->inference.valid) {
            c->time_per_output_token = res->inference.time_per_output_token;
            c->tokens_per_second = res->inference.tokens_per_second;
            if (st->spec.objective == BS_TUNE_LATENCY)
                c->time = c->time_per_output_token;
            else if (st->spec.objective == BS_TUNE_THROUGHPUT)
                c->time = res->makespan / res->inference.generated_tokens;
        }
        c->memory = -1;
        for (int d = 0; d < res->devices; d++) {
            bs_model_memory mm;
            bs_model_memory_of(&mm, &plan, res, d);
            if (mm.total > c->memory) {
                c->memory = mm.total;
                c->parts = mm;
                c->peak_device = d;
            }
        }
        c->status = c->memory <= st->spec.memory_limit ? BS_TUNE_FITS : BS_TUNE_OVER_MEMORY;
        if (c->time > 0) {
            double devices = (double)c->data_parallel * c->stages * c->tensor_parallel;
            /* Decode keeps the simulation's generated tokens per second. */
            if (!res->inference.valid)
                c->tokens_per_second = st->info.tokens_per_iteration / (c->time / 1000);
            double flops = st->info.flops_per_iteration;
            if (bs_schedule_find(c->schedule)->flags & BS_PROGRAM_FORWARD_ONLY)
                flops /= 3; /* inference: the forward only */
            c->mfu = flops / (c->time / 1000) / (devices * st->model.peak_flops);
        }
    }
    bs_model_plan_free(&plan);
    bs_config_free(&cfg);
}

static void *worker(void *arg)
{
    bs_tune *st = arg;
    bs_context *ctx = NULL;
    if (bs_context_create(&ctx) != BS_OK)
        ctx = NULL;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        size_t k = st->next < st->batch_len ? st->next++ : SIZE_MAX;
        pthread_mutex_unlock(&st->lock);
        if (k == SIZE_MAX)
            break;
        bs_tune_candidate *c = st->batch[k];
        if (!ctx) {
            c->status = BS_TUNE_FAILED;
            snprintf(c->note, sizeof c->note, "out of memory");
            continue;
        }
        simulate(st, c, ctx);
    }
    bs_context_free(&ctx);
    return NULL;
}

/* ------------------------------------------------------------- ranking */

/* The sort keys compare candidates of one array, so ties fall back to the
 * address: enumeration order. */
static int by_address(const bs_tune_candidate *x, const bs_tune_candidate *y)
{
    return x < y ? -1 : 1;
}

static int by_time_bound(const void *a, const void *b)
{
    const bs_tune_candidate *x = *(bs_tune_candidate *const *)a;
    const bs_tune_candidate *y = *(bs_tune_candidate *const *)b;
    if (x->time_bound != y->time_bound)
        return x->time_bound < y->time_bound ? -1 : 1;
    return by_address(x, y);
}

static int by_time(const void *a, const void *b)
{
    const bs_tune_candidate *x = *(bs_tune_candidate *const *)a;
    const bs_tune_candidate *y = *(bs_tune_candidate *const *)b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    return by_address(x, y);
}

static int by_memory(const void *a, const void *b)
{
    const bs_tune_candidate *x = *(bs_tune_candidate *const *)a;
    const bs_tune_candidate *y = *(bs_tune_candidate *const *)b;
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return by_address(x, y);
}

/* The Pareto front of fits[n] into front (n_front set): sorts fits by
 * memory, then keeps each point faster than every smaller one. */
static size_t pareto_front(bs_tune_candidate **front, bs_tune_candidate **fits, size_t n)
{
    size_t n_front = 0;
    double fastest = INFINITY;
    qsort(fits, n, sizeof *fits, by_memory);
    for (size_t i = 0; i < n; i++)
        if (fits[i]->time < fastest) {
            fastest = fits[i]->time;
            front[n_front++] = fits[i];
        }
    return n_front;
}

/* Whether the bounds of c show it can be neither among the best `top` of
 * the fitting points found so far (the N-th best time is nth_best) nor on
 * their time-memory Pareto front. Checking the front suffices: a fitting
 * point that dominates c's bounds is itself dominated by (or equal to) a
 * point of the front, which then dominates them too. */
static int can_prune(const bs_tune_candidate *c, bs_tune_candidate *const *front, size_t n_front,
                     double nth_best)
{
    if (!(c->time_bound > nth_best))
        return 0;
    for (size_t i = 0; i < n_front; i++) {
        const bs_tune_candidate *q = front[i];
        if (q->time <= c->time_bound && q->memory <= c->memory_bound &&
            (q->time < c->time_bound || q->memory < c->memory_bound))
            return 1;
    }
    return 0;
}

/* -------------------------------------------------------------- search */

/* Reads the model and the "tune" object of text into st; keeps the config
 * without "tune" as the base every candidate overrides. */
static int load(bs_tune *st, const char *text, const char *path, const bs_override *ov, size_t n_ov,
                bs_error *err)
{
    int rc = BS_OK;
    cJSON *root = NULL, *tune = NULL;
    char *full = NULL;
    bs_config base;
    bs_config_init(&base);
    /* bs_config_parse reports syntax errors with line and column, and bad
     * override paths; the model and "tune" sections are read from the same
     * text with the overrides in. */
    if ((rc = bs_config_parse(&base, text, path, ov, n_ov, err)) ||
        (rc = bs_config_apply_overrides(text, path, ov, n_ov, &full, err)))
        goto error;
    if (!(root = cJSON_Parse(full))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    if ((rc = bs_model_parse(&st->model, full, path, err)))
        goto error;
    tune = cJSON_DetachItemFromObjectCaseSensitive(root, "tune");
    if (st->model.layers_per_stage) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "%s: layers_per_stage: tune chooses P and V, so it cannot keep a fixed "
                     "split; remove layers_per_stage (and set balance: true to balance)",
                     path);
        goto error;
    }
    if ((rc = read_spec(&st->spec, tune, &st->model, &base, path, err)))
        goto error;
    if (!(st->base_text = cJSON_PrintUnformatted(root)))
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
error:
    bs_text_free(full);
    cJSON_Delete(root);
    cJSON_Delete(tune);
    bs_config_free(&base);
    return rc;
}

/* Appends one candidate (zeroed but for the dimensions) to st->cand. */
static int add_candidate(bs_tune *st, const bs_tune_candidate *dims, bs_error *err)
{
    if (st->n_cand >= BS_TUNE_MAX_CANDIDATES)
        return bs_fail(err, BS_ERR_LIMIT,
                       "%s: tune: more than %d candidates; narrow the "
                       "search (tune.schedules, tune.tensor_parallel, ...)",
                       st->source, BS_TUNE_MAX_CANDIDATES);
    if (st->n_cand % 1024 == 0 &&
        bs_realloc_array((void **)&st->cand, st->n_cand + 1024, sizeof *st->cand))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    st->cand[st->n_cand++] = *dims;
    return BS_OK;
}

/* Every combination of the searched dimensions, one loop per dimension.
 * P ranges over what the devices allow: P * T = devices, or at most
 * devices when tune.use_all_devices is false. */
static int enumerate(bs_tune *st, bs_error *err)
{
    const tune_spec *sp = &st->spec;
    int rc;
    st->n_cand = 0;
    for (int s = 0; s < sp->n_schedules; s++)
        for (int ti = 0; ti < sp->n_tps; ti++)
            for (int di = 0; di < sp->n_dps; di++) {
                int T = sp->tps[ti], D = sp->dps[di];
                /* bubblesim simulates at most 4096 stages. */
                for (int P = 1; P <= 4096 && (long long)P * T * D <= sp->devices; P++) {
                    if (sp->use_all_devices && (long long)P * T * D != sp->devices)
                        continue;
                    for (int vi = 0; vi < sp->n_vs; vi++)
                        for (int bi = 0; bi < sp->n_mbs; bi++) {
                            long long per_step = (long long)D * sp->mbs[bi];
                            if (sp->global_batch % per_step != 0)
                                continue;
                            for (int zi = 0; zi < sp->n_zeros; zi++) {
                                /* With one replica the ZeRO stages are alike. */
                                if (D == 1 && sp->zeros[zi] != 0)
                                    continue;
                                for (int ri = 0; ri < sp->n_recomputes; ri++) {
                                    bs_tune_candidate c;
                                    memset(&c, 0, sizeof c);
                                    c.schedule = sp->schedules[s]->name;
                                    c.tensor_parallel = T;
                                    c.stages = P;
                                    c.virtual_stages = sp->vs[vi];
                                    c.microbatch_size = sp->mbs[bi];
                                    c.microbatches = (int)(sp->global_batch / per_step);
                                    c.data_parallel = D;
                                    c.zero_stage = sp->zeros[zi];
                                    c.recompute = sp->recomputes[ri];
                                    if ((rc = add_candidate(st, &c, err)))
                                        return rc;
                                }
                            }
                        }
                }
            }
    if (st->n_cand == 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tune: nothing to search: no P (1 to 4096), T (tune.tensor_parallel) "
                       "and D (tune.data_parallel) give D*P*T = tune.devices = %d, or no D*b "
                       "(tune.microbatch_sizes) divides tune.global_batch = %d",
                       st->source, sp->devices, sp->global_batch);
    return BS_OK;
}

/* Checks each candidate without simulating it: the config and the
 * schedule's constraints, then the bounds. */
static void screen(bs_tune *st)
{
    for (size_t i = 0; i < st->n_cand; i++) {
        bs_tune_candidate *c = &st->cand[i];
        bs_config cfg;
        bs_model_plan plan;
        bs_error err = {{0}};
        bs_config_init(&cfg);
        memset(&plan, 0, sizeof plan);
        int rc = candidate_config(st, c, &cfg, &plan, &err);
        if (!rc)
            rc = bs_schedule_find(c->schedule)->check(&cfg, &err);
        if (rc) {
            c->status = BS_TUNE_REFUSED;
            /* Drop the file name: every row has the same. */
            const char *msg = err.message;
            size_t n = strlen(st->source);
            if (strncmp(msg, st->source, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                msg += n + 2;
            snprintf(c->note, sizeof c->note, "%.190s", msg);
        } else {
            bounds(c, &cfg, &plan, st->spec.objective);
            c->status =
                c->memory_bound > st->spec.memory_limit ? BS_TUNE_MEMORY_BOUND : BS_TUNE_PENDING;
        }
        bs_model_plan_free(&plan);
        bs_config_free(&cfg);
    }
}

/* Simulates the screened candidates in order of their time bound, batch by
 * batch on opts->jobs threads, pruning between batches. */
static int search(bs_tune *st, const bs_tune_options *opts, bs_error *err)
{
    bs_tune_candidate **order = NULL, **fits = NULL, **front = NULL;
    size_t n_order = 0, n_fits = 0, n_front = 0, simulated = 0;
    size_t top = (size_t)opts->top;
    int prune = opts->prune, rc = BS_OK;
    if (!(order = bs_alloc_array(st->n_cand + 1, sizeof *order)) ||
        !(fits = bs_alloc_array(st->n_cand + 1, sizeof *fits)) ||
        !(front = bs_alloc_array(st->n_cand + 1, sizeof *front)) ||
        !(st->batch = bs_alloc_array(TUNE_BATCH, sizeof *st->batch))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    for (size_t i = 0; i < st->n_cand; i++)
        if (st->cand[i].status == BS_TUNE_PENDING ||
            (!prune && st->cand[i].status == BS_TUNE_MEMORY_BOUND))
            order[n_order++] = &st->cand[i];
    qsort(order, n_order, sizeof *order, by_time_bound);
    for (size_t at = 0; at < n_order;) {
        double nth_best = INFINITY;
        if (prune && n_fits >= top) {
            qsort(fits, n_fits, sizeof *fits, by_time);
            nth_best = fits[top - 1]->time;
            n_front = pareto_front(front, fits, n_fits);
        }
        st->batch_len = 0;
        while (at < n_order && st->batch_len < TUNE_BATCH) {
            bs_tune_candidate *c = order[at++];
            if (prune && can_prune(c, front, n_front, nth_best))
                c->status = BS_TUNE_PRUNED;
            else
                st->batch[st->batch_len++] = c;
        }
        st->next = 0;
        int n_threads = opts->jobs < (int)st->batch_len ? opts->jobs : (int)st->batch_len;
        int started = 0;
        pthread_t threads[BS_TUNE_MAX_JOBS];
        for (; started < n_threads - 1; started++)
            if (pthread_create(&threads[started], NULL, worker, st) != 0)
                break;
        worker(st); /* this thread works too, so a failed pthread_create only slows */
        for (int k = 0; k < started; k++)
            pthread_join(threads[k], NULL);
        for (size_t k = 0; k < st->batch_len; k++) {
            simulated++;
            if (st->batch[k]->status == BS_TUNE_FITS)
                fits[n_fits++] = st->batch[k];
        }
        if (opts->progress) {
            double best = INFINITY;
            for (size_t k = 0; k < n_fits; k++)
                if (fits[k]->time < best)
                    best = fits[k]->time;
            opts->progress(opts->user, at, n_order, simulated, n_fits, best);
        }
    }
error:
    free(order);
    free(fits);
    free(front);
    free(st->batch);
    st->batch = NULL;
    return rc;
}

/* Ranks the fitting candidates and the front; when none fits, says what
 * comes closest. */
static int rank(bs_tune *st, bs_error *err)
{
    bs_tune_info *info = &st->info;
    for (size_t i = 0; i < st->n_cand; i++)
        info->count[st->cand[i].status]++;
    if (!(st->best = bs_alloc_array(st->n_cand + 1, sizeof *st->best)) ||
        !(st->front = bs_alloc_array(st->n_cand + 1, sizeof *st->front)))
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < st->n_cand; i++)
        if (st->cand[i].status == BS_TUNE_FITS)
            st->best[st->n_best++] = &st->cand[i];
    if (st->n_best == 0) {
        double least = INFINITY;
        const bs_tune_candidate *which = NULL;
        for (size_t i = 0; i < st->n_cand; i++) {
            const bs_tune_candidate *c = &st->cand[i];
            double m = c->status == BS_TUNE_OVER_MEMORY    ? c->memory
                       : c->status == BS_TUNE_MEMORY_BOUND ? c->memory_bound
                                                           : INFINITY;
            if (m < least) {
                least = m;
                which = c;
            }
        }
        if (!which)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: no configuration to try: the schedules refuse all %zu candidates "
                           "(first reason: %s)",
                           st->source, st->n_cand, st->n_cand ? st->cand[0].note : "none");
        char label[160];
        bs_tune_describe(which, label, sizeof label);
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: no configuration fits in %.2f GiB per device: of the %zu that the "
                       "schedules accept, the smallest needs at least %.2f GiB (%s); add "
                       "devices, raise tune.memory_limit, or %s",
                       st->source, st->spec.memory_limit / GIB,
                       st->n_cand - info->count[BS_TUNE_REFUSED], least / GIB, label,
                       bs_schedule_find(which->schedule)->flags & BS_PROGRAM_FORWARD_ONLY
                           ? "shorten the batch or the sequence (the KV cache grows with both)"
                           : "recompute activations (model.recompute)");
    }
    bs_tune_candidate **by_mem = bs_alloc_array(st->n_best, sizeof *by_mem);
    if (!by_mem)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    memcpy(by_mem, st->best, st->n_best * sizeof *by_mem);
    qsort(st->best, st->n_best, sizeof *st->best, by_time);
    st->n_front = pareto_front(st->front, by_mem, st->n_best);
    free(by_mem);
    return BS_OK;
}

int bs_tune_check(const char *text, const char *source, const bs_override *overrides,
                  size_t n_overrides, bs_error *err)
{
    bs_tune *t = NULL;
    int rc = bs_tune_create(&t);
    if (rc)
        return bs_fail(err, rc, "out of memory");
    t->source = source;
    rc = load(t, text, source, overrides, n_overrides, err);
    bs_tune_free(&t);
    return rc;
}

int bs_tune_run(bs_tune *tune, const char *text, const char *source, const bs_override *overrides,
                size_t n_overrides, const bs_tune_options *opts, bs_error *err)
{
    bs_tune_options o;
    int rc;
    if (tune->ran)
        return bs_fail(err, BS_ERR_INTERNAL, "bs_tune_run: a tune object runs once");
    tune->ran = 1;
    o = *opts;
    if (o.top < 1 || o.jobs < 1 || o.jobs > BS_TUNE_MAX_JOBS)
        return bs_fail(err, BS_ERR_INVALID, "tune: top must be >= 1 and jobs from 1 to %d",
                       BS_TUNE_MAX_JOBS);
    tune->source = source;
    if ((rc = load(tune, text, source, overrides, n_overrides, err)) || (rc = enumerate(tune, err)))
        return rc;
    tune->info.devices = tune->spec.devices;
    tune->info.global_batch = tune->spec.global_batch;
    tune->info.memory_limit = tune->spec.memory_limit;
    tune->info.tokens_per_iteration = (double)tune->spec.global_batch * tune->model.sequence;
    {
        /* Model FLOPs of one sequence, forward and both gradients, without
         * recomputation (docs/model.md): 3 (L (2 s N + 4 s^2 h) + 2 s h v). */
        const bs_model *m = &tune->model;
        double s = m->sequence, h = m->hidden, h_kv = h * m->kv_heads / m->heads;
        double n = 2 * h * h + 2 * h * h_kv + 2 * h * m->ffn_hidden;
        tune->info.flops_per_iteration =
            (double)tune->spec.global_batch * 3 *
            (m->layers * (2 * s * n + 4 * s * s * h) + 2 * s * h * m->vocabulary);
    }
    tune->info.candidates = tune->n_cand;
    tune->info.objective = tune->spec.objective;
    tune->info.decode = tune->spec.decode;
    screen(tune);
    if ((rc = search(tune, &o, err)))
        return rc;
    return rank(tune, err);
}
