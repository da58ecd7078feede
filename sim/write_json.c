/*
 * write_json.c - the result as one JSON object (the `--json` output and the
 * contract other tools read). Keys are documented in docs/config.md and
 * docs/metrics.md; null stands for "no closed form".
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

static cJSON *number_or_null(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static int add(cJSON *obj, const char *key, cJSON *item)
{
    return item && cJSON_AddItemToObject(obj, key, item) ? 0 : -1;
}

/* One device's whole memory in bytes (docs/model.md); "fits" is null when
 * no hardware.memory_bytes was given. NULL on allocation failure. */
static cJSON *memory_object(const bs_device_memory *m)
{
    cJSON *o = cJSON_CreateObject();
    int bad = !o;
    if (bad)
        return NULL;
    bad |= add(o, "weights", cJSON_CreateNumber(m->weights));
    bad |= add(o, "gradients", cJSON_CreateNumber(m->gradients));
    bad |= add(o, "optimizer", cJSON_CreateNumber(m->optimizer));
    bad |= add(o, "activations", cJSON_CreateNumber(m->activations));
    bad |= add(o, "other", cJSON_CreateNumber(m->other));
    bad |= add(o, "total", cJSON_CreateNumber(m->total));
    bad |= add(o, "fits", m->fits < 0 ? cJSON_CreateNull() : cJSON_CreateBool(m->fits));
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Builds the result object; NULL on allocation failure. */
static cJSON *result_object(const bs_result *res)
{
    cJSON *o = cJSON_CreateObject(), *formula = NULL, *devices = NULL;
    int bad = !o;
    if (bad)
        return NULL;
    bad |= add(o, "schedule", cJSON_CreateString(res->schedule));
    bad |= add(o, "stages", cJSON_CreateNumber(res->stages));
    bad |= add(o, "microbatches", cJSON_CreateNumber(res->microbatches));
    bad |= add(o, "virtual_stages", cJSON_CreateNumber(res->virtual_stages));
    bad |= add(o, "iterations", cJSON_CreateNumber(res->iterations));
    bad |= add(o, "makespan", cJSON_CreateNumber(res->makespan));
    bad |= add(o, "iteration_time", cJSON_CreateNumber(res->iteration_time));
    bad |= add(o, "busy", cJSON_CreateNumber(res->busy));
    bad |= add(o, "idle", cJSON_CreateNumber(res->idle));
    bad |= add(o, "bubble_ratio", cJSON_CreateNumber(res->bubble_ratio));
    bad |= add(o, "bubble_over_ideal", cJSON_CreateNumber(res->bubble_over_ideal));
    bad |= add(o, "span_bubble_ratio", cJSON_CreateNumber(res->span_bubble_ratio));
    bad |= add(o, "peak_activations", cJSON_CreateNumber(res->peak_activations));
    bad |= add(o, "peak_activation_bytes", cJSON_CreateNumber(res->peak_activation_bytes));
    bad |= add(o, "weight_versions", cJSON_CreateNumber(res->weight_versions));
    bad |= add(o, "max_staleness", cJSON_CreateNumber(res->max_staleness));
    if (res->formula.valid) {
        formula = cJSON_CreateObject();
        bad |= add(o, "formula", formula);
        if (formula) {
            bad |= add(formula, "makespan", cJSON_CreateNumber(res->formula.makespan));
            bad |= add(formula, "bubble_ratio", cJSON_CreateNumber(res->formula.bubble_ratio));
            bad |= add(formula, "bubble_over_ideal",
                       cJSON_CreateNumber(res->formula.bubble_over_ideal));
            bad |=
                add(formula, "peak_activations", cJSON_CreateNumber(res->formula.peak_activations));
            bad |= add(formula, "weight_versions", number_or_null(res->formula.weight_versions));
        }
    } else {
        bad |= add(o, "formula", cJSON_CreateNull());
    }
    if (res->inference.valid) { /* decode: serving figures, ms (docs/inference.md) */
        const bs_inference_result *in = &res->inference;
        cJSON *inf = cJSON_CreateObject();
        bad |= add(o, "inference", inf);
        if (inf) {
            bad |= add(inf, "prefill_time", cJSON_CreateNumber(in->prefill_time));
            bad |= add(inf, "time_to_first_token", cJSON_CreateNumber(in->time_to_first_token));
            bad |= add(inf, "time_per_output_token", cJSON_CreateNumber(in->time_per_output_token));
            bad |= add(inf, "tokens_per_second", cJSON_CreateNumber(in->tokens_per_second));
            bad |= add(inf, "generated_tokens", cJSON_CreateNumber(in->generated_tokens));
            bad |= add(inf, "formula_time_per_output_token",
                       res->formula.valid ? cJSON_CreateNumber(res->formula.time_per_output_token)
                                          : cJSON_CreateNull());
        }
    }
    if (res->has_memory) {
        bad |= add(o, "peak_memory", cJSON_CreateNumber(res->peak_memory));
        bad |= add(o, "collectives", cJSON_CreateNumber((double)res->collectives));
        bad |=
            add(o, "memory_limit",
                res->memory_limit > 0 ? cJSON_CreateNumber(res->memory_limit) : cJSON_CreateNull());
    }
    bad |= add(o, "messages", cJSON_CreateNumber((double)res->messages));
    bad |= add(o, "message_bytes", cJSON_CreateNumber(res->message_bytes));
    devices = cJSON_CreateArray();
    bad |= add(o, "devices", devices);
    for (int d = 0; devices && d < res->devices; d++) {
        const bs_device_result *dr = &res->device[d];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(devices, e)) {
            cJSON_Delete(e);
            bad = 1;
            break;
        }
        bad |= add(e, "device", cJSON_CreateNumber(d));
        bad |= add(e, "busy", cJSON_CreateNumber(dr->busy));
        bad |= add(e, "idle", cJSON_CreateNumber(dr->idle));
        bad |= add(e, "bubble_ratio", cJSON_CreateNumber(dr->bubble_ratio));
        bad |= add(e, "span", cJSON_CreateNumber(dr->span));
        bad |= add(e, "span_bubble_ratio", cJSON_CreateNumber(dr->span_bubble_ratio));
        bad |= add(e, "peak_activations", cJSON_CreateNumber(dr->peak_activations));
        bad |= add(e, "peak_activation_bytes", cJSON_CreateNumber(dr->peak_activation_bytes));
        bad |= add(e, "formula_peak_activations", number_or_null(dr->formula_peak_activations));
        bad |= add(e, "weight_versions", cJSON_CreateNumber(dr->weight_versions));
        bad |= add(e, "weight_version_bytes", cJSON_CreateNumber(dr->weight_version_bytes));
        bad |= add(e, "max_staleness", cJSON_CreateNumber(dr->max_staleness));
        bad |= add(e, "messages_sent", cJSON_CreateNumber((double)dr->messages_sent));
        bad |= add(e, "message_bytes_sent", cJSON_CreateNumber(dr->message_bytes_sent));
        if (res->inference.valid)
            bad |= add(e, "kv_cache_bytes", cJSON_CreateNumber(dr->kv_cache_bytes));
        if (res->has_memory) {
            bad |= add(e, "collective_time", cJSON_CreateNumber(dr->collective_time));
            bad |= add(e, "memory", memory_object(&dr->memory));
        }
    }
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* cJSON indents with tabs and writes ":\t"; people read two spaces and ": "
 * more easily. Raw tabs occur nowhere else: cJSON escapes them in strings. */
static int put_with_spaces(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        int ok = *c != '\t'                 ? fputc(*c, out) != EOF
                 : c > text && c[-1] == ':' ? fputc(' ', out) != EOF
                                            : fputs("  ", out) >= 0;
        if (!ok)
            return -1;
    }
    return 0;
}

static int write_json(FILE *out, const bs_result *res, const bs_config *cfg, bs_error *err)
{
    (void)cfg;
    cJSON *o = result_object(res);
    if (!o)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory writing JSON");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory writing JSON");
    int ok = put_with_spaces(out, text) == 0 && fputc('\n', out) != EOF;
    cJSON_free(text);
    return ok ? BS_OK : bs_fail(err, BS_ERR_IO, "cannot write JSON output");
}

const bs_writer bs_writer_json = {"json", "json", write_json};
