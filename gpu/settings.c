/*
 * settings.c - the config's "gpu" section (see settings.h). Moved out of
 * cli/verify.c so that the reader is the library's, tested on the CPU.
 */
#include "settings.h"

#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char gpu_keys[] = "workload (\"calibrated\" or \"mlp\"), reps, warmup, tolerance, "
                               "device, mode (\"auto\" or \"streams\"), copy_cost (\"measured\" "
                               "or \"config\"), allocate_activations (true or false), mlp (an "
                               "object)";
static const char mlp_keys[] = "hidden, batch, layers_per_chunk, seed, lr";

void bs_gpu_settings_init(bs_gpu_settings *s)
{
    memset(s, 0, sizeof *s);
    bs_gpu_options_init(&s->gpu);
    s->tolerance = -1;
    s->copy_cost_measured = 1;
}

const char *bs_gpu_workload_name(bs_gpu_workload w)
{
    return w == BS_GPU_WORKLOAD_MLP ? "mlp" : "calibrated";
}

/* A whole number in [min, 1e6]: the bound keeps every count far from int
 * overflow whatever the JSON says. */
static int read_int(const cJSON *v, const char *src, const char *key, int min, int *out,
                    bs_error *err)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > 1e6)
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu.%s: expected an integer >= %d (at most 1e6)",
                       src, key, min);
    *out = (int)v->valuedouble;
    return BS_OK;
}

static int read_choice(const cJSON *v, const char *src, const char *key, const char *a,
                       const char *b, int *is_b, bs_error *err)
{
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, a) && strcmp(v->valuestring, b)))
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu.%s: expected \"%s\" or \"%s\"", src, key, a,
                       b);
    *is_b = strcmp(v->valuestring, b) == 0;
    return BS_OK;
}

/* Applies one gpu.mlp key. */
static int apply_mlp_key(bs_mlp_shape *m, const char *key, const cJSON *v, const char *src,
                         bs_error *err)
{
    char path[96];
    int n = 0, rc;
    if (strcmp(key, "lr") == 0) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e6)
            return bs_fail(err, BS_ERR_INVALID, "%s: gpu.mlp.lr: expected a number in [0, 1e6]",
                           src);
        m->lr = v->valuedouble;
        return BS_OK;
    }
    if (strcmp(key, "hidden") && strcmp(key, "batch") && strcmp(key, "layers_per_chunk") &&
        strcmp(key, "seed"))
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu.mlp.%.64s: unknown key; expected one of %s",
                       src, key, mlp_keys);
    snprintf(path, sizeof path, "mlp.%s", key);
    if ((rc = read_int(v, src, path, strcmp(key, "seed") ? 1 : 0, &n, err)))
        return rc;
    if (strcmp(key, "hidden") == 0)
        m->hidden = n;
    else if (strcmp(key, "batch") == 0)
        m->batch = n;
    else if (strcmp(key, "seed") == 0)
        m->seed = (uint32_t)n;
    else if (n > 1024)
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu.mlp.layers_per_chunk: expected at most 1024",
                       src);
    else
        m->layers = n;
    return BS_OK;
}

/* Applies one gpu key; src names the file or the --set option. */
static int apply_key(bs_gpu_settings *s, const char *key, const cJSON *v, const char *src,
                     bs_error *err)
{
    int flag = 0, rc = BS_OK;
    if (strncmp(key, "mlp.", 4) == 0)
        return apply_mlp_key(&s->gpu.mlp, key + 4, v, src, err);
    if (strcmp(key, "mlp") == 0) {
        if (!cJSON_IsObject(v))
            return bs_fail(err, BS_ERR_INVALID, "%s: gpu.mlp: expected an object with keys %s", src,
                           mlp_keys);
        for (const cJSON *item = v->child; item && !rc; item = item->next)
            rc = apply_mlp_key(&s->gpu.mlp, item->string, item, src, err);
    } else if (strcmp(key, "workload") == 0) {
        if (!(rc = read_choice(v, src, key, "calibrated", "mlp", &flag, err)))
            s->gpu.workload = flag ? BS_GPU_WORKLOAD_MLP : BS_GPU_WORKLOAD_CALIBRATED;
    } else if (strcmp(key, "reps") == 0) {
        rc = read_int(v, src, key, 1, &s->gpu.reps, err);
    } else if (strcmp(key, "warmup") == 0) {
        rc = read_int(v, src, key, 0, &s->gpu.warmup, err);
    } else if (strcmp(key, "device") == 0) {
        rc = read_int(v, src, key, 0, &s->gpu.device, err);
    } else if (strcmp(key, "tolerance") == 0) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1000)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: gpu.tolerance: expected a percentage in (0, 1000]", src);
        s->tolerance = v->valuedouble;
    } else if (strcmp(key, "mode") == 0) {
        if (!(rc = read_choice(v, src, key, "auto", "streams", &flag, err)))
            s->gpu.force_streams = flag;
    } else if (strcmp(key, "copy_cost") == 0) {
        if (!(rc = read_choice(v, src, key, "config", "measured", &flag, err)))
            s->copy_cost_measured = flag;
    } else if (strcmp(key, "allocate_activations") == 0) {
        if (!cJSON_IsBool(v))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: gpu.allocate_activations: expected true or false", src);
        s->gpu.allocate_activations = cJSON_IsTrue(v);
    } else {
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu.%.64s: unknown key; expected one of %s", src,
                       key, gpu_keys);
    }
    return rc;
}

int bs_gpu_settings_check(const cJSON *gpu, const char *src, bs_error *err)
{
    bs_gpu_settings scratch;
    int rc = BS_OK;
    bs_gpu_settings_init(&scratch);
    if (!cJSON_IsObject(gpu))
        return bs_fail(err, BS_ERR_INVALID, "%s: gpu: expected an object with keys %s", src,
                       gpu_keys);
    for (const cJSON *item = gpu->child; item && !rc; item = item->next)
        rc = apply_key(&scratch, item->string, item, src, err);
    return rc;
}

int bs_gpu_settings_set(bs_gpu_settings *s, const char *key, const char *value, bs_error *err)
{
    cJSON *v = cJSON_Parse(value);
    if (!v)
        v = cJSON_CreateString(value);
    if (!v)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    int rc = apply_key(s, key, v, "--set", err);
    cJSON_Delete(v);
    return rc;
}

int bs_gpu_config_load(bs_config *cfg, bs_gpu_settings *s, const char *path, const bs_override *ov,
                       size_t n_ov, bs_error *err)
{
    char *text = NULL, *rest = NULL;
    int rc = bs_read_text_file(path, &text, err);
    if (rc)
        return rc;
    cJSON *root = cJSON_Parse(text);
    if (root && cJSON_IsObject(root)) {
        cJSON *gpu = cJSON_DetachItemFromObjectCaseSensitive(root, "gpu");
        if (gpu && !cJSON_IsObject(gpu))
            rc = bs_fail(err, BS_ERR_INVALID, "%s: gpu: expected an object with keys %s", path,
                         gpu_keys);
        for (cJSON *item = gpu ? gpu->child : NULL; item && !rc; item = item->next)
            rc = apply_key(s, item->string, item, path, err);
        cJSON_Delete(gpu);
        if (!rc && !(rest = cJSON_PrintUnformatted(root)))
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
    }
    /* Syntax errors and non-objects: the core parser reports them with line
     * and column, so it gets the original text. */
    if (!rc)
        rc = bs_config_parse(cfg, rest ? rest : text, path, ov, n_ov, err);
    cJSON_Delete(root);
    free(rest);
    bs_text_free(text);
    return rc;
}

int bs_gpu_settings_finish(bs_gpu_settings *s, const char *path, bs_error *err)
{
    int mlp = s->gpu.workload == BS_GPU_WORKLOAD_MLP;
    if (s->tolerance < 0)
        s->tolerance = mlp ? 5.0 : 2.0;
    if (mlp && !s->gpu.allocate_activations)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: gpu.allocate_activations: the mlp workload keeps real activations in "
                       "the stage pools; false is for the calibrated workload only",
                       path);
    return BS_OK;
}
