/*
 * json_duplicates.c - refuses a key given twice in one JSON object, for the
 * config reader (sim/config.c) and the model reader (sim/model.c).
 *
 * cJSON keeps both copies of a repeated key and a lookup returns the first,
 * so a silent choice would hide a typo or a bad merge of two configs.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_at {
    const char *name;
    size_t index; /* position in the object, for the file's order */
} key_at;

static int compare_keys(const void *a, const void *b)
{
    const key_at *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Rejects a key that appears twice in one object: cJSON keeps both and a
 * silent choice would hide a typo. The keys are sorted (n log n), because
 * an object may hold any number of them (200,000 keys took 56 s when each
 * was compared with every other). Reports the duplicated key whose first
 * appearance comes first in the file, as a reader scanning it would. */
int bs_json_check_duplicates(const cJSON *obj, const char *prefix, const char *source,
                             bs_error *err)
{
    size_t n = 0, i = 0, best = SIZE_MAX;
    const char *twice = NULL;
    for (const cJSON *a = obj->child; a; a = a->next)
        n++;
    if (n < 2)
        return BS_OK;
    key_at *keys = bs_alloc_array(n, sizeof *keys);
    if (!keys)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory checking the keys of %s",
                       prefix ? prefix : "the config");
    for (const cJSON *a = obj->child; a; a = a->next, i++)
        keys[i] = (key_at){a->string ? a->string : "", i};
    qsort(keys, n, sizeof *keys, compare_keys);
    for (i = 1; i < n; i++)
        /* keys[i - 1] is its group's first appearance when the group starts there. */
        if (strcmp(keys[i - 1].name, keys[i].name) == 0 &&
            (i == 1 || strcmp(keys[i - 2].name, keys[i].name) != 0) && keys[i - 1].index < best) {
            best = keys[i - 1].index;
            twice = keys[i - 1].name;
        }
    int rc = BS_OK;
    if (twice)
        rc = bs_fail(err, BS_ERR_INVALID, "%s: %s%s%.128s: key appears more than once", source,
                     prefix ? prefix : "", prefix ? "." : "", twice);
    bs_free(keys);
    return rc;
}
