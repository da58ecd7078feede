/*
 * json_read.c - small helpers for reading cJSON values with messages that
 * name the key, and for describing a key's range: shared by the config
 * reader (config.c), the model reader (model.c) and the planner (tune.c). A
 * leaf of its own, so that config.c (which calls the model reader) and
 * model.c do not depend on each other.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>

const char *bs_json_kind(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an invalid value";
}

int bs_json_array_int(const cJSON *el, int lo, int hi, const char *what, const char *source,
                      const char *path, size_t index, int *value, bs_error *err)
{
    double x = cJSON_IsNumber(el) ? el->valuedouble : NAN;
    if (x >= lo && x <= hi && x == floor(x)) {
        *value = (int)x;
        return BS_OK;
    }
    if (cJSON_IsNumber(el))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s[%zu]: expected %s from %d to %d, got %g",
                       source, path, index, what, lo, hi, x);
    return bs_fail(err, BS_ERR_INVALID, "%s: %s[%zu]: expected %s from %d to %d, got %s", source,
                   path, index, what, lo, hi, bs_json_kind(el));
}

/* Shared by the tables: "1 to 4096", ">= 0", "> 0 and <= 1". */
void bs_key_range_text(char *buf, size_t size, int integer, double min, int min_exclusive,
                       double max)
{
    if (integer && max < 2147483647.0)
        snprintf(buf, size, "%.0f to %.0f", min, max);
    else if (integer)
        snprintf(buf, size, ">= %.0f", min);
    else if (max <= 1024)
        snprintf(buf, size, "%s %g and <= %g", min_exclusive ? ">" : ">=", min, max);
    else
        snprintf(buf, size, "%s %g", min_exclusive ? ">" : ">=", min);
}
