/*
 * model.c - costs, memory and messages of a transformer, from its
 * dimensions and the hardware (docs/model.md gives each formula and its
 * source).
 *
 * A config with a "model" object describes the pipeline by the model it
 * runs instead of by per-stage milliseconds. This module reads the model
 * keys (model, hardware, tensor_parallel, layers_per_stage, balance), splits
 * the layers over the P*V model chunks, and turns FLOP counts and byte
 * counts into the ordinary bs_config fields, so the schedules, the engine
 * and the metrics never know a model was involved:
 *
 *   costs.forward/backward/weight   one value per model chunk (model order):
 *                                   FLOPs / T / (peak * efficiency) plus the
 *                                   chunk's tensor-parallel all-reduces;
 *                                   backward is the input gradient only;
 *   memory.activation_bytes         the largest device's one micro-batch;
 *   memory.weight_bytes             the largest device's 16-bit weights;
 *   network.*                       the pipeline link and s*b*h*bytes.
 *
 * Invariants: every figure is per device, i.e. already divided by T (one
 * pipeline device is one of T tensor-parallel ranks); chunk 0 holds the
 * embedding and the last chunk the output layer and loss, so those two
 * chunks differ from the others; the plan's chunk placement is the one the
 * schedule's program uses (tests/test_model.c compares them).
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#define MODEL_MAX_LAYERS 100000
#define MODEL_MAX_DIM 10000000
/* The balanced split keeps one int per (chunk count, layer prefix). */
#define MODEL_MAX_BALANCE 10000000
/* The tensor-parallel all-reduces are part of a chunk's time when T > 1. */
#define T_SUFFIX(t) ((t) > 1 ? " + all-reduces over hardware.tp_bandwidth and tp_latency" : "")

/* --------------------------------------------------------- JSON reading */

typedef enum key_type { K_INT, K_NUMBER, K_RECOMPUTE, K_BOOL, K_ORDER } key_type;

typedef struct model_key {
    const char *section;
    const char *name;
    key_type type;
    size_t offset;
    double min;
    int min_exclusive;
    double max;
    int required;
    const char *description; /* one line, for `bubblesim help config` */
} model_key;

#define MOFF(member) offsetof(bs_model, member)

static const model_key model_keys[] = {
    {"model", "layers", K_INT, MOFF(layers), 1, 0, MODEL_MAX_LAYERS, 1, "transformer layers L"},
    {"model", "hidden", K_INT, MOFF(hidden), 1, 0, MODEL_MAX_DIM, 1, "hidden size h"},
    {"model", "heads", K_INT, MOFF(heads), 1, 0, MODEL_MAX_DIM, 1, "attention heads a"},
    {"model", "kv_heads", K_INT, MOFF(kv_heads), 1, 0, MODEL_MAX_DIM, 0,
     "key/value heads (grouped-query attention); default heads"},
    {"model", "ffn_hidden", K_INT, MOFF(ffn_hidden), 1, 0, MODEL_MAX_DIM, 0,
     "MLP inner size; default 4h"},
    {"model", "sequence", K_INT, MOFF(sequence), 1, 0, MODEL_MAX_DIM, 1,
     "sequence length s (tokens)"},
    {"model", "microbatch_size", K_INT, MOFF(microbatch_size), 1, 0, MODEL_MAX_DIM, 0,
     "sequences per micro-batch b"},
    {"model", "vocabulary", K_INT, MOFF(vocabulary), 0, 0, MODEL_MAX_DIM * 10.0, 0,
     "vocabulary size (embedding and output layer); 0 leaves them out"},
    {"model", "bytes_per_element", K_NUMBER, MOFF(bytes_per_element), 0, 1, 16, 0,
     "bytes per activation, weight and gradient element (2 = bf16)"},
    {"model", "optimizer_bytes_per_parameter", K_NUMBER, MOFF(optimizer_bytes_per_parameter), 0, 0,
     1024, 0, "optimizer state per parameter (mixed-precision Adam: 12)"},
    {"model", "recompute", K_RECOMPUTE, MOFF(recompute), 0, 0, 0, 0,
     "\"none\", \"selective\" or \"full\" activation recomputation"},
    {"hardware", "peak_flops", K_NUMBER, MOFF(peak_flops), 0, 1, 1e21, 1,
     "peak FLOP/s of one device"},
    {"hardware", "efficiency", K_NUMBER, MOFF(efficiency), 0, 1, 1, 0,
     "achievable fraction of peak_flops"},
    {"hardware", "memory_bytes", K_NUMBER, MOFF(memory_bytes), 0, 0, 1e18, 0,
     "memory of one device (bytes); 0 = not given"},
    {"hardware", "bandwidth", K_NUMBER, MOFF(bandwidth), 0, 0, 1e18, 0,
     "pipeline link bytes/s; 0 = unlimited"},
    {"hardware", "latency", K_NUMBER, MOFF(latency), 0, 0, 1e15, 0, "pipeline link latency (ms)"},
    {"hardware", "tp_bandwidth", K_NUMBER, MOFF(tp_bandwidth), 0, 0, 1e18, 0,
     "tensor-parallel link bytes/s; 0 = unlimited"},
    {"hardware", "tp_latency", K_NUMBER, MOFF(tp_latency), 0, 0, 1e15, 0,
     "tensor-parallel link latency (ms)"},
    {"hardware", "memory_bandwidth", K_NUMBER, MOFF(memory_bandwidth), 0, 0, 1e18, 0,
     "device memory bytes/s (HBM): roofline per kernel, and what decode steps read; 0 = FLOPs "
     "only"},
    {"hardware", "efficiency_half_tokens", K_NUMBER, MOFF(efficiency_half_tokens), 0, 0, 1e15, 0,
     "tokens per matmul (s*b) at half the efficiency; 0 = one efficiency"},
    {"hardware", "gpus_per_node", K_INT, MOFF(gpus_per_node), 0, 0, 65536, 0,
     "devices per node; 0 = all on one node"},
    {"hardware", "node_bandwidth", K_NUMBER, MOFF(node_bandwidth), 0, 0, 1e18, 0,
     "link between nodes, bytes/s per device; 0 = unlimited"},
    {"hardware", "node_latency", K_NUMBER, MOFF(node_latency), 0, 0, 1e15, 0,
     "latency per ring step between nodes (ms)"},
};

/* Top-level keys beside the model (section ""): the parallel layout. */
static const model_key layout_keys[] = {
    {"", "tensor_parallel", K_INT, MOFF(tensor_parallel), 1, 0, 4096, 0, NULL},
    {"", "data_parallel", K_INT, MOFF(data_parallel), 1, 0, 65536, 0, NULL},
    {"", "zero_stage", K_INT, MOFF(zero_stage), 0, 0, 3, 0, NULL},
    {"", "overlap_grad_reduce", K_BOOL, MOFF(overlap_grad_reduce), 0, 0, 0, 0, NULL},
    {"", "parallel_order", K_ORDER, MOFF(parallel_order), 0, 0, 0, 0, NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* "tune" belongs to the planner (sim/tune.c, `bubblesim tune`), which reads it; the
 * config reader only lets it through. */
static const char *const top_keys[] = {
    "model", "hardware",      "tensor_parallel", "layers_per_stage",    "balance",
    "tune",  "data_parallel", "zero_stage",      "overlap_grad_reduce", "parallel_order"};

int bs_model_is_key(const char *name)
{
    for (size_t i = 0; i < COUNT(top_keys); i++)
        if (strcmp(name, top_keys[i]) == 0)
            return 1;
    return 0;
}

void bs_model_suggest(bs_suggest *s, const char *section)
{
    if (!section) {
        for (size_t i = 0; i < COUNT(top_keys); i++)
            bs_suggest_consider(s, top_keys[i]);
        return;
    }
    for (size_t i = 0; i < COUNT(model_keys); i++)
        if (strcmp(model_keys[i].section, section) == 0)
            bs_suggest_consider(s, model_keys[i].name);
}

void bs_model_init(bs_model *m)
{
    memset(m, 0, sizeof *m);
    m->microbatch_size = 1;
    m->bytes_per_element = 2;
    m->optimizer_bytes_per_parameter = 12;
    m->recompute = BS_RECOMPUTE_NONE;
    m->efficiency = 1;
    m->tensor_parallel = 1;
    m->data_parallel = 1;
    m->parallel_order = BS_ORDER_TP_DP_PP;
}

void bs_model_free(bs_model *m)
{
    bs_free(m->layers_per_stage);
    bs_model_init(m);
}

static const char *want_text(const model_key *k, char *buf, size_t size)
{
    if (k->type == K_INT)
        snprintf(buf, size, "an integer from %.0f to %.0f", k->min, k->max);
    else if (k->max <= 1024)
        snprintf(buf, size, "a number %s %g and <= %g", k->min_exclusive ? ">" : ">=", k->min,
                 k->max);
    else
        snprintf(buf, size, "a finite number %s %g", k->min_exclusive ? ">" : ">=", k->min);
    return buf;
}

static int read_key(bs_model *m, const model_key *k, const cJSON *item, const char *source,
                    bs_error *err)
{
    char *base = (char *)m + k->offset, want[96];
    if (k->type == K_RECOMPUTE) {
        static const char *const names[] = {"none", "selective", "full"};
        if (cJSON_IsString(item))
            for (int i = 0; i < 3; i++)
                if (strcmp(item->valuestring, names[i]) == 0) {
                    *(int *)base = i;
                    return BS_OK;
                }
        if (cJSON_IsString(item))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.%s: expected \"none\", \"selective\" or \"full\", got \"%.64s\"",
                           source, k->section, k->name, item->valuestring);
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s.%s: expected \"none\", \"selective\" or \"full\", got %s", source,
                       k->section, k->name, bs_json_kind(item));
    }
    const char *dot = k->section[0] ? "." : "";
    if (k->type == K_BOOL) {
        if (!cJSON_IsBool(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s%s%s: expected true or false, got %s",
                           source, k->section, dot, k->name, bs_json_kind(item));
        *(int *)base = cJSON_IsTrue(item);
        return BS_OK;
    }
    if (k->type == K_ORDER) {
        static const char *const orders[] = {"tp-dp-pp", "tp-pp-dp"};
        for (int i = 0; i < 2 && cJSON_IsString(item); i++)
            if (strcmp(item->valuestring, orders[i]) == 0) {
                *(int *)base = i;
                return BS_OK;
            }
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s%s%s: expected \"tp-dp-pp\" or \"tp-pp-dp\", got %s", source,
                       k->section, dot, k->name,
                       cJSON_IsString(item) ? "another string" : bs_json_kind(item));
    }
    want_text(k, want, sizeof want);
    if (!cJSON_IsNumber(item))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s%s%s: expected %s, got %s", source, k->section,
                       dot, k->name, want, bs_json_kind(item));
    double x = item->valuedouble;
    int ok = isfinite(x) && (k->min_exclusive ? x > k->min : x >= k->min) && x <= k->max;
    if (!ok || (k->type == K_INT && x != floor(x)))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s%s%s: expected %s, got %g", source, k->section,
                       dot, k->name, want, x);
    if (k->type == K_INT)
        *(int *)base = (int)x;
    else
        *(double *)base = x;
    return BS_OK;
}

static int read_section(bs_model *m, const cJSON *root, const char *section, const char *source,
                        bs_error *err)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, section);
    int rc;
    if (!obj)
        return bs_fail(
            err, BS_ERR_INVALID,
            "%s: %s: missing; a config with a model needs a \"%s\" object (docs/model.md)", source,
            section, section);
    if (!cJSON_IsObject(obj))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an object, got %s", source, section,
                       bs_json_kind(obj));
    if ((rc = bs_json_check_duplicates(obj, section, source, err)))
        return rc;
    for (const cJSON *item = obj->child; item; item = item->next) {
        const model_key *k = NULL;
        for (size_t i = 0; i < COUNT(model_keys); i++)
            if (strcmp(model_keys[i].section, section) == 0 &&
                strcmp(model_keys[i].name, item->string) == 0)
                k = &model_keys[i];
        if (!k) {
            char keys[400];
            size_t n = 0;
            keys[0] = '\0';
            for (size_t i = 0; i < COUNT(model_keys) && n < sizeof keys; i++)
                if (strcmp(model_keys[i].section, section) == 0)
                    n += (size_t)snprintf(keys + n, sizeof keys - n, "%s%s", n ? ", " : "",
                                          model_keys[i].name);
            bs_suggest near;
            char hint[96];
            bs_suggest_init(&near, item->string);
            bs_model_suggest(&near, section);
            return bs_fail(err, BS_ERR_INVALID, "%s: %s.%.128s: unknown key; %sexpected one of %s",
                           source, section, item->string, bs_suggest_hint(&near, hint, sizeof hint),
                           keys);
        }
        if ((rc = read_key(m, k, item, source, err)))
            return rc;
    }
    /* A decode config's prompt (inference.prompt_tokens) is its sequence. */
    const cJSON *inference = cJSON_GetObjectItemCaseSensitive(root, "inference");
    int has_prompt = cJSON_GetObjectItemCaseSensitive(inference, "prompt_tokens") != NULL;
    for (size_t i = 0; i < COUNT(model_keys); i++)
        if (model_keys[i].required && strcmp(model_keys[i].section, section) == 0 &&
            !(has_prompt && strcmp(model_keys[i].name, "sequence") == 0) &&
            !cJSON_GetObjectItemCaseSensitive(obj, model_keys[i].name))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s.%s: missing; expected %s", source, section,
                           model_keys[i].name, want_text(&model_keys[i], (char[96]){0}, 96));
    return BS_OK;
}

static int read_layers_per_stage(bs_model *m, const cJSON *item, const char *source, bs_error *err)
{
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: layers_per_stage: expected a non-empty array of layer counts, one per "
                       "model chunk, got %s",
                       source, cJSON_IsArray(item) ? "an empty array" : bs_json_kind(item));
    size_t n = (size_t)cJSON_GetArraySize(item), i = 0;
    if (n > 65535)
        return bs_fail(err, BS_ERR_LIMIT, "%s: layers_per_stage: has %zu entries; at most 65535",
                       source, n);
    int *counts = bs_alloc_array(n, sizeof *counts);
    if (!counts)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    const cJSON *el;
    cJSON_ArrayForEach(el, item)
    {
        int rc = bs_json_array_int(el, 1, MODEL_MAX_LAYERS, "an integer", source,
                                   "layers_per_stage", i, &counts[i], err);
        if (rc) {
            bs_free(counts);
            return rc;
        }
        i++;
    }
    bs_free(m->layers_per_stage);
    m->layers_per_stage = counts;
    m->layers_per_stage_count = n;
    return BS_OK;
}

/* Reads every model key of root into m (initialised by the caller). */
static int read_model(bs_model *m, const cJSON *root, const char *source, bs_error *err)
{
    int rc;
    if ((rc = read_section(m, root, "model", source, err)) ||
        (rc = read_section(m, root, "hardware", source, err)))
        return rc;
    const cJSON *item;
    for (size_t i = 0; i < COUNT(layout_keys); i++)
        if ((item = cJSON_GetObjectItemCaseSensitive(root, layout_keys[i].name)) &&
            (rc = read_key(m, &layout_keys[i], item, source, err)))
            return rc;
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "balance"))) {
        if (!cJSON_IsBool(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: balance: expected true or false, got %s",
                           source, bs_json_kind(item));
        m->balance = cJSON_IsTrue(item);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "layers_per_stage"))) {
        if (m->balance)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: layers_per_stage: give either layers_per_stage or balance: true, "
                           "not both",
                           source);
        if ((rc = read_layers_per_stage(m, item, source, err)))
            return rc;
    }
    if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"),
                                          "kv_heads"))
        m->kv_heads = m->heads;
    if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"),
                                          "ffn_hidden")) {
        if (m->hidden > MODEL_MAX_DIM / 4)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: model.hidden: %d is too large for the default ffn_hidden = 4 * "
                           "hidden; give model.ffn_hidden",
                           source, m->hidden);
        m->ffn_hidden = 4 * m->hidden;
    }
    if (m->hidden % m->heads != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: model.heads: hidden = %d must be a multiple of heads = %d", source,
                       m->hidden, m->heads);
    if (m->kv_heads > m->heads || m->heads % m->kv_heads != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: model.kv_heads: heads = %d must be a multiple of kv_heads = %d", source,
                       m->heads, m->kv_heads);
    if (m->heads % m->tensor_parallel != 0)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: tensor_parallel: T = %d must divide model.heads = %d (each device "
                       "holds whole attention heads)",
                       source, m->tensor_parallel, m->heads);
    int T = m->tensor_parallel, g = m->gpus_per_node;
    if (g > 0 && (g >= T ? g % T != 0 : T % g != 0))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: hardware.gpus_per_node: %d and tensor_parallel = %d must divide one "
                       "another (tensor-parallel groups fill nodes first)",
                       source, g, T);
    return BS_OK;
}

int bs_model_parse(bs_model *m, const char *text, const char *source, bs_error *err)
{
    int rc;
    bs_model_free(m);
    cJSON *root = cJSON_Parse(text);
    if (!root)
        return bs_fail(err, BS_ERR_INVALID, "%s: config: JSON syntax error", source);
    if (!cJSON_IsObject(root) || !cJSON_GetObjectItemCaseSensitive(root, "model")) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "%s: model: missing; expected an object with the transformer's dimensions "
                     "(docs/model.md)",
                     source);
        goto error;
    }
    if ((rc = read_model(m, root, source, err)))
        goto error;
    cJSON_Delete(root);
    return BS_OK;
error:
    cJSON_Delete(root);
    bs_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ partition */

/* Chunk cost of layers [j, i) out of n: prefix sums plus the extras of the
 * first and last chunk. */
static double range_cost(const double *prefix, int j, int i, int n, double first_extra,
                         double last_extra)
{
    return prefix[i] - prefix[j] + (j == 0 ? first_extra : 0) + (i == n ? last_extra : 0);
}

/* Dynamic programme over prefixes: best[k][i] is the smallest slowest chunk
 * when the first i layers form k chunks (the last extra only counts at
 * i = n). For fixed k and i, best[k-1][j] grows with j while the cost of
 * the k-th chunk [j, i) shrinks, so the optimum sits where they cross: a
 * binary search finds it, O(chunks * layers * log layers) in all. */
double bs_partition_balanced(int *counts, const double *layer_cost, int layers, int chunks,
                             double first_extra, double last_extra)
{
    int n = layers, K = chunks;
    double answer = -1;
    double *prefix = NULL, *prev = NULL, *cur = NULL;
    int *cut = NULL;
    if (K < 1 || K > n)
        return -1;
    /* Two rows of best values suffice; the cuts are kept for every k to
     * rebuild the split. */
    if (!(prefix = bs_alloc_array((size_t)n + 1, sizeof *prefix)) ||
        !(prev = bs_alloc_array((size_t)n + 1, sizeof *prev)) ||
        !(cur = bs_alloc_array((size_t)n + 1, sizeof *cur)) ||
        !(cut = bs_alloc_array((size_t)(n + 1) * (size_t)(K + 1), sizeof *cut)))
        goto error;
    prefix[0] = 0;
    for (int i = 0; i < n; i++)
        prefix[i + 1] = prefix[i] + layer_cost[i];
#define CUT(k, i) cut[(size_t)(k) * (size_t)(n + 1) + (size_t)(i)]
    for (int i = 1; i <= n; i++) {
        cur[i] = range_cost(prefix, 0, i, n, first_extra, last_extra);
        CUT(1, i) = 0;
    }
    for (int k = 2; k <= K; k++) {
        double *swap = prev;
        prev = cur;
        cur = swap;
        for (int i = k; i <= n; i++) {
            /* j ranges over k-1 .. i-1; find the first j with
             * prev[j] >= cost(j, i), then look at it and its neighbours. */
            int lo = k - 1, hi = i - 1;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (prev[mid] >= range_cost(prefix, mid, i, n, first_extra, last_extra))
                    hi = mid;
                else
                    lo = mid + 1;
            }
            double chosen = DBL_MAX;
            int chosen_j = lo;
            for (int j = lo - 1; j <= lo + 1; j++) {
                if (j < k - 1 || j > i - 1)
                    continue;
                double a = prev[j], b = range_cost(prefix, j, i, n, first_extra, last_extra);
                double worst = a > b ? a : b;
                if (worst < chosen) {
                    chosen = worst;
                    chosen_j = j;
                }
            }
            cur[i] = chosen;
            CUT(k, i) = chosen_j;
        }
    }
    answer = cur[n];
    for (int k = K, i = n; k >= 1; k--) {
        int j = CUT(k, i);
        counts[k - 1] = i - j;
        i = j;
    }
#undef CUT
error:
    bs_free(prefix);
    bs_free(prev);
    bs_free(cur);
    bs_free(cut);
    return answer;
}

/* ----------------------------------------------------------------- plan */

int bs_model_chunk_device(const bs_config *cfg, int chunk)
{
    int p = cfg->stages;
    if (cfg->placement == BS_PLACEMENT_EXPLICIT && cfg->placement_map &&
        (size_t)chunk < cfg->placement_count)
        return cfg->placement_map[chunk];
    /* The V-shaped schedules (v_shape in their table record) place chunks s
     * and 2P-1-s on device s (their generators call bs_place_v); a test
     * checks this against the programs. */
    const bs_schedule *s = bs_schedule_find(cfg->schedule);
    int v_shape = cfg->placement == BS_PLACEMENT_V || (s && s->v_shape);
    if (v_shape && cfg->virtual_stages == 2)
        return chunk < p ? chunk : 2 * p - 1 - chunk;
    return chunk % p;
}

void bs_model_plan_free(bs_model_plan *plan)
{
    bs_free(plan->chunk);
    bs_free(plan->device);
    memset(plan, 0, sizeof *plan);
}

static double flops_to_ms(double flops, const bs_model *m)
{
    return flops / (m->peak_flops * m->efficiency) * 1000.0;
}

/* Roofline of one kernel: the longer of its compute and its memory
 * traffic (bytes read and written once) at hardware.memory_bandwidth. */
static double roofline_ms(const bs_model *m, double flops, double bytes)
{
    double compute = flops_to_ms(flops, m);
    double traffic = bytes / m->memory_bandwidth * 1000.0;
    return traffic > compute ? traffic : compute;
}

/* Per-device times of one layer (compute only, no all-reduces) under the
 * roofline: each matmul on its own, t = s*b tokens, dimensions divided by
 * T where Megatron splits them. A weight matmul t x k by k x n moves
 * e(tk + kn + tn) bytes, in the forward, the input gradient (dY W^T) and
 * the weight gradient (X^T dY) alike. The attention core (QK^T and AV,
 * unfused) writes and reads the a*s*s*b scores and reads Q, K, V and
 * writes its output: e(2as^2b + 4th)/T bytes; its backward twice that. */
static void layer_roofline(const bs_model *m, double T, double *fwd, double *input, double *wgt)
{
    double s = m->sequence, b = m->microbatch_size, h = m->hidden, e = m->bytes_per_element;
    double t = s * b, h_kv = h * m->kv_heads / m->heads, f = m->ffn_hidden, a = m->heads;
    const double mm[4][2] = {
        {h, (h + 2 * h_kv) / T}, /* Q, K, V */
        {h / T, h},              /* output projection */
        {h, f / T},              /* MLP up */
        {f / T, h},              /* MLP down */
    };
    double weights = 0;
    for (int i = 0; i < 4; i++) {
        double k = mm[i][0], n = mm[i][1];
        weights += roofline_ms(m, 2 * t * k * n, e * (t * k + k * n + t * n));
    }
    double core_flops = 4 * s * s * b * h / T, core_bytes = e * (2 * a * s * s * b + 4 * t * h) / T;
    double core = roofline_ms(m, core_flops, core_bytes);
    *fwd = weights + core;
    *input = weights + 2 * roofline_ms(m, core_flops, core_bytes);
    if (m->recompute == BS_RECOMPUTE_SELECTIVE)
        *input += core;
    else if (m->recompute == BS_RECOMPUTE_FULL)
        *input += *fwd;
    *wgt = weights;
}

int bs_model_plan_compute(bs_model_plan *plan, const bs_model *m, const bs_config *cfg,
                          const char *source, bs_error *err)
{
    int rc = BS_OK;
    /* hardware.efficiency_half_tokens: matmuls of few rows run below the
     * efficiency of large ones; every matmul of a layer has t = s*b rows,
     * so the whole layer runs at efficiency * t / (t + half). */
    bs_model curved = *m;
    if (m->efficiency_half_tokens > 0) {
        double t = (double)m->sequence * m->microbatch_size;
        curved.efficiency = m->efficiency * t / (t + m->efficiency_half_tokens);
        m = &curved;
    }
    int p = cfg->stages, n = cfg->stages * cfg->virtual_stages, T = m->tensor_parallel;
    double *layer_cost = NULL;
    int *counts = NULL;
    memset(plan, 0, sizeof *plan);
    const bs_schedule *sched = bs_schedule_find(cfg->schedule);
    plan->training = !(sched && (sched->flags & BS_PROGRAM_FORWARD_ONLY));
    plan->chunks = n;
    plan->devices = p;
    plan->tensor_parallel = T;
    plan->data_parallel = m->data_parallel;
    plan->zero_stage = m->zero_stage;
    /* Ranks are laid out tensor-parallel innermost, then data-parallel or
     * pipeline: the D replicas of a device are T (or T*P) ranks apart, so
     * gpus_per_node / stride of them share a node. */
    int D = m->data_parallel, g = m->gpus_per_node;
    long long stride = m->parallel_order == BS_ORDER_TP_DP_PP ? T : (long long)T * p;
    int dp_per_node = g <= 0 ? D : g >= stride ? (int)(g / stride < D ? g / stride : D) : 1;
    plan->dp_group = (bs_group){
        D, dp_per_node, m->tp_bandwidth, m->tp_latency, m->node_bandwidth, m->node_latency};
    /* A tensor-parallel group larger than a node crosses nodes too. */
    bs_group tp_group = {T,
                         g > 0 && g < T ? g : T,
                         m->tp_bandwidth,
                         m->tp_latency,
                         m->node_bandwidth,
                         m->node_latency};
    if (n > m->layers)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: model.layers: %d layers cannot fill P*V = %d model chunks (each needs "
                       "at least one layer)",
                       source, m->layers, n);
    if (!(plan->chunk = bs_zalloc_array((size_t)n, sizeof *plan->chunk)) ||
        !(plan->device = bs_zalloc_array((size_t)p, sizeof *plan->device)) ||
        !(counts = bs_alloc_array((size_t)n, sizeof *counts))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory planning the model");
        goto error;
    }

    /* One layer, one micro-batch (b sequences of s tokens), whole (T = 1). */
    double s = m->sequence, b = m->microbatch_size, h = m->hidden, e = m->bytes_per_element;
    double h_kv = h * m->kv_heads / m->heads, a = m->heads, vocab = m->vocabulary;
    double tokens = s * b;
    plan->layer_parameters = 2 * h * h + 2 * h * h_kv + 2 * h * m->ffn_hidden;
    double matmul = 2 * tokens * plan->layer_parameters; /* weights' matmuls, forward */
    double attention = 4 * s * s * b * h;                /* QK^T and AV, forward */
    plan->layer_forward_flops = matmul + attention;
    plan->layer_weight_grad_flops = matmul;
    plan->layer_input_grad_flops = matmul + 2 * attention;
    double act16; /* bytes of one layer at 16 bits, whole (T = 1) */
    switch (m->recompute) {
    case BS_RECOMPUTE_SELECTIVE:
        act16 = 34 * s * b * h;
        plan->layer_input_grad_flops += attention;
        break;
    case BS_RECOMPUTE_FULL:
        act16 = 2 * s * b * h;
        plan->layer_input_grad_flops += plan->layer_forward_flops;
        break;
    default:
        act16 = 34 * s * b * h + 5 * a * s * s * b;
        break;
    }
    plan->layer_activation_bytes = act16 * (e / 2) / T;
    plan->message_bytes = tokens * h * e;
    plan->allreduce_ms = bs_collective_ms(BS_COLLECTIVE_ALL_REDUCE, plan->message_bytes, &tp_group);
    /* Megatron's tensor parallelism: two all-reduces per layer in the
     * forward (attention and MLP outputs) and two in the input gradient;
     * full recomputation repeats the forward's two. */
    double ar_forward = 2 * plan->allreduce_ms;
    double ar_input = (m->recompute == BS_RECOMPUTE_FULL ? 4 : 2) * plan->allreduce_ms;
    double out_flops = 2 * tokens * h * vocab; /* logits; the same again for each gradient */

    /* Split the layers. */
    if (m->layers_per_stage) {
        size_t given = m->layers_per_stage_count;
        if (given != (size_t)n && !(cfg->virtual_stages == 1 && given == (size_t)p)) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: layers_per_stage: has %zu entries; expected P*V = %d (one per model "
                         "chunk, in model order)",
                         source, given, n);
            goto error;
        }
        long long sum = 0;
        for (int c = 0; c < n; c++)
            sum += counts[c] = m->layers_per_stage[c];
        if (sum != m->layers) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: layers_per_stage: sums to %lld layers; expected model.layers = %d",
                         source, sum, m->layers);
            goto error;
        }
    } else if (m->balance) {
        if (!(layer_cost = bs_alloc_array((size_t)m->layers, sizeof *layer_cost))) {
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory planning the model");
            goto error;
        }
        /* Balance the time a chunk keeps its device busy per micro-batch. */
        double per_layer = flops_to_ms(plan->layer_forward_flops / T, m) + ar_forward;
        double last = flops_to_ms(out_flops / T, m);
        double input_weight =
            flops_to_ms((plan->layer_input_grad_flops + plan->layer_weight_grad_flops) / T, m);
        if (m->memory_bandwidth > 0) {
            double lf, li, lw;
            layer_roofline(m, T, &lf, &li, &lw);
            per_layer = lf + ar_forward;
            input_weight = li + lw;
            last =
                roofline_ms(m, out_flops / T, e * (tokens * h + (h * vocab + tokens * vocab) / T));
        }
        if (plan->training) {
            per_layer += input_weight + ar_input;
            last *= 3;
        }
        for (int i = 0; i < m->layers; i++)
            layer_cost[i] = per_layer;
        if ((double)n * m->layers > MODEL_MAX_BALANCE) {
            rc = bs_fail(err, BS_ERR_LIMIT,
                         "%s: balance: P*V*layers = %.0f is too large to balance (limit %.0f); "
                         "give layers_per_stage instead",
                         source, (double)n * m->layers, (double)MODEL_MAX_BALANCE);
            goto error;
        }
        if (bs_partition_balanced(counts, layer_cost, m->layers, n, 0, last) < 0) {
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory balancing the layers");
            goto error;
        }
    } else {
        for (int c = 0; c < n; c++)
            counts[c] =
                (int)(((long long)(c + 1) * m->layers) / n - ((long long)c * m->layers) / n);
    }

    /* Per chunk, per device (everything divided by T). */
    int first_layer = 0;
    for (int c = 0; c < n; c++) {
        bs_model_chunk *ch = &plan->chunk[c];
        double l = counts[c];
        ch->first_layer = first_layer;
        ch->layers = counts[c];
        first_layer += counts[c];
        ch->device = bs_model_chunk_device(cfg, c);
        if (ch->device < 0 || ch->device >= p) {
            rc = bs_fail(err, BS_ERR_INVALID, "%s: placement: chunk %d has no device", source, c);
            goto error;
        }
        ch->forward_flops = l * plan->layer_forward_flops / T;
        ch->input_grad_flops = l * plan->layer_input_grad_flops / T;
        ch->weight_grad_flops = l * plan->layer_weight_grad_flops / T;
        ch->parameters = l * plan->layer_parameters / T;
        ch->activation_bytes = l * plan->layer_activation_bytes;
        if (c == 0 && vocab > 0) {
            /* The input embedding, and its dropout mask (one byte per
             * element), kept for the backward. */
            ch->parameters += vocab * h / T;
            ch->activation_bytes += tokens * h / T;
        }
        if (c == n - 1) {
            /* The output layer (a copy of the embedding, as in Megatron)
             * and the loss over fp32 logits. */
            ch->parameters += vocab * h / T;
            ch->forward_flops += out_flops / T;
            ch->input_grad_flops += out_flops / T;
            ch->weight_grad_flops += out_flops / T;
            ch->activation_bytes += 4 * tokens * vocab / T;
        }
        if (m->memory_bandwidth > 0) {
            /* Roofline: kernel by kernel (docs/model.md). */
            double lf, li, lw, out = 0;
            layer_roofline(m, T, &lf, &li, &lw);
            if (c == n - 1)
                out = roofline_ms(m, out_flops / T,
                                  e * (tokens * h + (h * vocab + tokens * vocab) / T));
            ch->forward_ms = l * lf + out + l * ar_forward;
            ch->input_grad_ms = l * li + out + l * ar_input;
            ch->weight_grad_ms = l * lw + out;
        } else {
            ch->forward_ms = flops_to_ms(ch->forward_flops, m) + l * ar_forward;
            ch->input_grad_ms = flops_to_ms(ch->input_grad_flops, m) + l * ar_input;
            ch->weight_grad_ms = flops_to_ms(ch->weight_grad_flops, m);
        }

        if (plan->training && D > 1) {
            /* ZeRO-0/1 all-reduce the gradients once per iteration (ZeRO-1
             * then updates its shard; the all-gather of the updated
             * parameters is charged with it: the volume of one all-reduce,
             * ZeRO §7). ZeRO-2/3 keep only a shard of the gradients, so
             * each micro-batch's gradients are reduce-scattered after its
             * backward. ZeRO-3 also gathers the parameters before every
             * forward and input gradient, prefetched so that the op lasts
             * the longer of its compute and its gather. */
            double bytes = ch->parameters * e;
            ch->grad_sync_ms = bs_collective_ms(m->zero_stage >= 2 ? BS_COLLECTIVE_REDUCE_SCATTER
                                                                   : BS_COLLECTIVE_ALL_REDUCE,
                                                bytes, &plan->dp_group);
            if (m->zero_stage >= 3) {
                ch->gather_ms = bs_collective_ms(BS_COLLECTIVE_ALL_GATHER, bytes, &plan->dp_group);
                ch->forward_ms = fmax(ch->forward_ms, ch->gather_ms);
                ch->input_grad_ms = fmax(ch->input_grad_ms, ch->gather_ms);
            }
        }
        bs_model_device *dv = &plan->device[ch->device];
        dv->parameters += ch->parameters;
        dv->activation_bytes += ch->activation_bytes;
        if (!plan->training)
            /* Keys and values of every sequence of the batch, all layers of
             * the chunk: 2 * s * (M * b) * h_kv elements per layer. */
            dv->kv_cache_bytes += l * 2 * s * b * cfg->microbatches * h_kv * e / T;
    }
    for (int d = 0; d < p; d++) {
        bs_model_device *dv = &plan->device[d];
        dv->weight_bytes = dv->parameters * e;
        if (plan->training) {
            /* ZeRO (Rajbhandari et al. 2020, §5): stage 1 shards the
             * optimizer state over D, stage 2 the gradients too, stage 3
             * the weights too; ZeRO-3 keeps the gathered parameters of the
             * largest layer twice (in use, and prefetched). */
            int z = m->zero_stage;
            dv->gradient_bytes = dv->parameters * e / (z >= 2 ? D : 1);
            dv->optimizer_bytes =
                dv->parameters * m->optimizer_bytes_per_parameter / (z >= 1 ? D : 1);
            if (z >= 3 && D > 1) {
                dv->weight_bytes /= D;
                dv->buffer_bytes = 2 * fmax(plan->layer_parameters, vocab * h) / T * e;
            }
        } else {
            dv->activation_bytes = 0; /* inference keeps no activations for a backward */
        }
    }
error:
    bs_free(layer_cost);
    bs_free(counts);
    if (rc)
        bs_model_plan_free(plan);
    return rc;
}

void bs_model_memory_of(bs_model_memory *out, const bs_model_plan *plan, const bs_result *res,
                        int device)
{
    memset(out, 0, sizeof *out);
    const bs_device_result *dr = &res->device[device];
    if (res->has_memory) {
        /* The run's own count (sim/metrics.c), so that tune's memory column
         * is the figure `bubblesim run --json` prints. */
        out->activations = dr->memory.activations;
        out->weights = dr->memory.weights;
        out->gradients = dr->memory.gradients;
        out->optimizer = dr->memory.optimizer;
        out->stashed_weights = dr->memory.stashed_weights;
        out->kv_cache = dr->memory.kv_cache;
        out->buffers = dr->memory.buffers;
        out->total = dr->memory.total;
        return;
    }
    /* A run without a memory plan: the plan's static bytes and the peak
     * count of micro-batches times the device's one-micro-batch bytes. */
    const bs_model_device *dv = &plan->device[device];
    out->weights = dv->weight_bytes;
    out->gradients = dv->gradient_bytes;
    out->optimizer = dv->optimizer_bytes;
    out->kv_cache = dv->kv_cache_bytes;
    out->buffers = dv->buffer_bytes;
    out->activations = dr->peak_activations * dv->activation_bytes;
    if (dr->weight_versions > 1)
        out->stashed_weights = (dr->weight_versions - 1) * dv->weight_bytes;
    out->total = out->activations + out->weights + out->gradients + out->optimizer +
                 out->stashed_weights + out->kv_cache + out->buffers;
}

/* ---------------------------------------------------------------- apply */

/* Keys a model replaces: giving both would leave two answers to one
 * question. */
static int refuse_conflicts(const cJSON *root, const char *source, bs_error *err)
{
    static const char *const taken[][2] = {
        {"costs", "forward"},           {"costs", "backward"},        {"costs", "weight"},
        {"memory", "activation_bytes"}, {"memory", "weight_bytes"},   {"network", "latency"},
        {"network", "bandwidth"},       {"network", "message_bytes"}, {"costs", "decode"},
    };
    for (size_t i = 0; i < COUNT(taken); i++) {
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, taken[i][0]);
        if (cJSON_IsObject(sec) && cJSON_GetObjectItemCaseSensitive(sec, taken[i][1]))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s.%s: a config with a \"model\" gets its costs, memory and "
                           "network from the model and hardware; remove %s.%s (costs.optimizer, "
                           "costs.overlap, costs.overhead, memory.kept_fraction, "
                           "network.blocking and network.latency_holds_link may stay)",
                           source, taken[i][0], taken[i][1], taken[i][0], taken[i][1]);
    }
    return BS_OK;
}

/* Hands the plan's whole-device memory to the metrics (cfg->device_plan):
 * static bytes per device, one micro-batch's activations per chunk. */
static int fill_device_plan(bs_config *cfg, const bs_model_plan *plan, const bs_model *m,
                            bs_error *err)
{
    bs_device_plan *mp = bs_device_plan_create(plan->devices, plan->chunks);
    if (!mp)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory planning the model's memory");
    mp->limit = m->memory_bytes;
    for (int d = 0; d < plan->devices; d++) {
        const bs_model_device *dv = &plan->device[d];
        mp->device[d] =
            (bs_device_static){dv->weight_bytes, dv->gradient_bytes, dv->optimizer_bytes,
                               dv->kv_cache_bytes, dv->buffer_bytes};
    }
    mp->overlap_grad_reduce = m->overlap_grad_reduce;
    mp->sync_per_microbatch = m->zero_stage >= 2;
    mp->node_bandwidth = m->node_bandwidth;
    mp->node_latency = m->node_latency;
    /* Pipeline device i is rank T*D*i (tp-dp-pp) or T*i (tp-pp-dp) of
     * replica 0; a boundary whose two devices fall on different nodes
     * sends over the node link. (Other replicas under tp-pp-dp may split
     * differently when P*T is not a multiple of a node; replica 0 stands
     * for all.) */
    if (m->gpus_per_node > 0) {
        double stride = m->parallel_order == BS_ORDER_TP_DP_PP
                            ? (double)m->tensor_parallel * m->data_parallel
                            : (double)m->tensor_parallel;
        for (int c = 0; c + 1 < plan->chunks; c++) {
            double a = floor(stride * plan->chunk[c].device / m->gpus_per_node);
            double b = floor(stride * plan->chunk[c + 1].device / m->gpus_per_node);
            mp->crosses_node[c] = a != b;
        }
    }
    for (int c = 0; c < plan->chunks; c++) {
        mp->chunk_activation[c] = plan->chunk[c].activation_bytes;
        mp->chunk_sync_ms[c] = plan->chunk[c].grad_sync_ms;
        /* One bucket per layer (Megatron's buckets are ~40M parameters;
         * a layer is coarser, so the overlap is, if anything, understated). */
        mp->chunk_buckets[c] = plan->chunk[c].layers;
    }
    bs_device_plan_free(cfg->device_plan);
    cfg->device_plan = mp;
    return BS_OK;
}

int bs_model_apply(bs_config *cfg, const cJSON *root, const char *source, bs_error *err)
{
    int rc;
    bs_model m;
    bs_model_plan plan;
    double *f = NULL, *bw = NULL, *w = NULL;
    memset(&plan, 0, sizeof plan);
    bs_model_init(&m);
    if (!cJSON_GetObjectItemCaseSensitive(root, "model")) {
        for (size_t i = 1; i < COUNT(top_keys); i++)
            if (cJSON_GetObjectItemCaseSensitive(root, top_keys[i]))
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: %s: only a config with a \"model\" object takes %s "
                               "(docs/model.md)",
                               source, top_keys[i], top_keys[i]);
        return BS_OK;
    }
    if ((rc = refuse_conflicts(root, source, err)) || (rc = read_model(&m, root, source, err)))
        goto error;
    const bs_schedule *sched = bs_schedule_find(cfg->schedule);
    int decode = sched && (sched->flags & BS_PROGRAM_DECODE_LOOP);
    if (decode && (rc = bs_model_decode_prompt(&m, cfg, root, source, err)))
        goto error;
    if (!bs_schedule_find(cfg->schedule) || cfg->stages < 1 || cfg->virtual_stages < 1 ||
        (long long)cfg->stages * cfg->virtual_stages > 65535) {
        rc = BS_OK; /* bs_config_check reports these */
        goto error;
    }
    if ((rc = bs_model_plan_compute(&plan, &m, cfg, source, err)))
        goto error;
    size_t n = (size_t)plan.chunks;
    if (!(f = bs_alloc_array(n, sizeof *f)) || !(bw = bs_alloc_array(n, sizeof *bw)) ||
        !(w = bs_alloc_array(n, sizeof *w))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    for (size_t c = 0; c < n; c++) {
        f[c] = plan.chunk[c].forward_ms;
        bw[c] = plan.training ? plan.chunk[c].input_grad_ms : 0;
        w[c] = plan.training ? plan.chunk[c].weight_grad_ms : 0;
        /* A tiny peak_flops or tp_bandwidth can push a derived time to
         * infinity, which the engine cannot order; refuse it here, where
         * the keys that made it are known. */
        double worst = fmax(f[c], fmax(bw[c], w[c]));
        if (!(plan.allreduce_ms <= BS_MAX_TIME_MS)) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: hardware.tp_bandwidth: one tensor-parallel all-reduce takes %g ms "
                         "(2(T-1) * hardware.tp_latency + 2(T-1)/T * activation bytes / "
                         "hardware.tp_bandwidth); expected a finite time of at most %g ms",
                         source, plan.allreduce_ms, BS_MAX_TIME_MS);
            goto error;
        }
        if (!(worst <= BS_MAX_TIME_MS)) {
            rc = bs_fail(err, BS_ERR_INVALID,
                         "%s: hardware.peak_flops: model chunk %zu takes %g ms per micro-batch "
                         "(from the model's FLOPs / (hardware.peak_flops * hardware.efficiency)"
                         "%s); expected a finite time of at most %g ms",
                         source, c, worst, T_SUFFIX(m.tensor_parallel), BS_MAX_TIME_MS);
            goto error;
        }
    }
    /* costs.* were refused above, so cfg's arrays are still the read-only
     * defaults, which are never freed. */
    cfg->forward = (bs_values){n, f};
    cfg->backward = (bs_values){n, bw};
    cfg->weight = (bs_values){n, w};
    f = bw = w = NULL;
    cfg->activation_bytes = 0;
    cfg->weight_bytes = 0;
    for (int d = 0; d < plan.devices; d++) {
        if (plan.device[d].activation_bytes > cfg->activation_bytes)
            cfg->activation_bytes = plan.device[d].activation_bytes;
        if (plan.device[d].weight_bytes > cfg->weight_bytes)
            cfg->weight_bytes = plan.device[d].weight_bytes;
    }
    cfg->latency = m.latency;
    cfg->bandwidth = m.bandwidth;
    cfg->message_bytes = plan.message_bytes;
    rc = decode ? bs_model_decode_costs(cfg, &m, &plan, source, err) : BS_OK;
    if (!rc)
        rc = fill_device_plan(cfg, &plan, &m, err);
error:
    bs_free(f);
    bs_free(bw);
    bs_free(w);
    bs_model_plan_free(&plan);
    bs_model_free(&m);
    return rc;
}

/* ------------------------------------------------------- key listing */

/* The model's top-level keys, read by hand in bs_model_parse. */
static const struct {
    const char *name, *type, *range, *description;
} model_top_keys[] = {
    {"tensor_parallel", "integer", "1 to 4096, dividing model.heads",
     "T, devices that share each layer (Megatron tensor parallelism)"},
    {"layers_per_stage", "array of integers", "P*V (or P) entries >= 1 summing to model.layers",
     "layers of each model chunk in model order"},
    {"balance", "boolean", "true or false",
     "choose the layer split that minimises the slowest chunk"},
    {"data_parallel", "integer", "1 to 65536",
     "D, replicas of the pipeline: devices = D x P x T (docs/model.md)"},
    {"zero_stage", "integer", "0 to 3",
     "ZeRO: shard optimizer state (1), gradients (2), weights (3) over D"},
    {"overlap_grad_reduce", "boolean", "true or false",
     "reduce gradients in per-layer buckets during the last backward"},
    {"parallel_order", "string", "\"tp-dp-pp\" or \"tp-pp-dp\"",
     "rank order, innermost first: which groups share a node"},
};

size_t bs_model_key_count(void)
{
    return COUNT(model_keys) + COUNT(model_top_keys);
}

void bs_model_key_describe(size_t i, bs_config_key *out)
{
    out->doc = "docs/model.md";
    if (i >= COUNT(model_keys)) {
        i -= COUNT(model_keys);
        snprintf(out->path, sizeof out->path, "%s", model_top_keys[i].name);
        snprintf(out->type, sizeof out->type, "%s", model_top_keys[i].type);
        snprintf(out->range, sizeof out->range, "%s", model_top_keys[i].range);
        out->description = model_top_keys[i].description;
        return;
    }
    const model_key *k = &model_keys[i];
    snprintf(out->path, sizeof out->path, "%s.%s", k->section, k->name);
    if (k->type == K_RECOMPUTE) {
        snprintf(out->type, sizeof out->type, "string");
        snprintf(out->range, sizeof out->range, "\"none\", \"selective\" or \"full\"");
    } else {
        snprintf(out->type, sizeof out->type, "%s%s", k->type == K_INT ? "integer" : "number",
                 k->required ? ", required" : "");
        bs_key_range_text(out->range, sizeof out->range, k->type == K_INT, k->min, k->min_exclusive,
                          k->max);
    }
    out->description = k->description;
}
