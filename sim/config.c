/*
 * config.c - where JSON configs are parsed and checked.
 *
 * A config is read in three steps:
 *   1. the text is parsed with cJSON (syntax errors carry line and column);
 *   2. --set overrides are written into the JSON tree, so an override is
 *      checked exactly like the same key written in the file;
 *   3. the tree is walked against the schema table below: every key must be
 *      known, of the right type and in range; then bs_config_check compares
 *      values with each other (array lengths against P and V, size limits).
 *
 * Every message starts with the source (file name) and the key path, and
 * says what was expected, so the CLI can print it as is.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BS_MAX_STAGES 4096
#define BS_MAX_CHUNKS 65535
#define BS_MAX_CONFIG_BYTES (64u << 20)
#define BS_MAX_OBJECT_KEYS 10000

/* F_PLACEMENT: "looped", "v" or an array stage -> device; F_ORDER: per-device
 * arrays of action strings; F_ORDER_FILE: a PyTorch pipelining text file,
 * relative to the config file's directory. */
typedef enum field_type {
    F_STRING,
    F_INT,
    F_NUMBER,
    F_VALUES,
    F_PLACEMENT,
    F_ORDER,
    F_ORDER_FILE,
    F_UPDATES,
    F_BOOL /* true or false, into an int */
} field_type;

typedef struct field {
    const char *section; /* NULL for top level */
    const char *name;
    field_type type;
    size_t offset;
    double min;        /* smallest allowed value */
    int min_exclusive; /* value must be strictly greater than min */
    double max;
    const char *description; /* one line, for `bubblesim help config` */
} field;

#define OFF(member) offsetof(bs_config, member)

static const field fields[] = {
    {NULL, "schedule", F_STRING, OFF(schedule), 0, 0, 0,
     "the schedule: a name `bubblesim --help` lists"},
    {NULL, "stages", F_INT, OFF(stages), 1, 0, BS_MAX_STAGES,
     "P, the pipeline depth: number of devices"},
    {NULL, "microbatches", F_INT, OFF(microbatches), 1, 0, INT_MAX,
     "M, micro-batches per iteration"},
    {NULL, "virtual_stages", F_INT, OFF(virtual_stages), 1, 0, 256,
     "V, model chunks per device (interleaved: >= 2)"},
    {NULL, "iterations", F_INT, OFF(iterations), 1, 0, INT_MAX,
     "training iterations run back to back"},
    {NULL, "group_size", F_INT, OFF(group_size), 0, 0, INT_MAX,
     "interleaved, forward, decode prefill: micro-batches per group; 0 means P"},
    {"costs", "forward", F_VALUES, OFF(forward), 0, 1, 1e15,
     "F (ms): forward time of one micro-batch on one device stage; a number, or P or P*V of them"},
    {"costs", "backward", F_VALUES, OFF(backward), 0, 0, 1e15,
     "B (ms): input-gradient time; a number, or P or P*V of them"},
    {"costs", "weight", F_VALUES, OFF(weight), 0, 0, 1e15,
     "W (ms): weight-gradient time (0: backward is one op of B + W)"},
    {"costs", "optimizer", F_NUMBER, OFF(optimizer), 0, 0, 1e15,
     "optimizer step (ms) on every device at each flush"},
    {"costs", "overlap", F_NUMBER, OFF(overlap), 0, 1, 1,
     "an overlapped forward+backward pair takes (F + B) * overlap"},
    {"costs", "overhead", F_NUMBER, OFF(overhead), 0, 0, 1e15,
     "fixed time (ms) added to every forward, backward and gradient op "
     "(0 unless measured: model.md)"},
    {"memory", "kept_fraction", F_NUMBER, OFF(kept_fraction), 0, 0, 1,
     "split backward: share of a chunk's activations kept from I until W"},
    {"memory", "limit_activations", F_NUMBER, OFF(limit_activations), 0, 0, 1e9,
     "zb-auto: most activations a device may hold (peak_activations units); 0 means P"},
    {NULL, "placement", F_PLACEMENT, OFF(placement), 0, 0, 0,
     "custom: \"looped\", \"v\" or one device number per model chunk"},
    {NULL, "order", F_ORDER, OFF(order), 0, 0, 0,
     "custom: one array of PyTorch action strings per device"},
    {NULL, "order_file", F_ORDER_FILE, OFF(order), 0, 0, 0,
     "custom: the order as a PyTorch pipelining text file (relative to the config)"},
    {NULL, "updates", F_UPDATES, OFF(updates), 0, 0, 0,
     "custom: \"flush\", \"no-flush\" or \"per-backward\""},
    {"memory", "activation_bytes", F_NUMBER, OFF(activation_bytes), 0, 0, 1e18,
     "activations of one micro-batch on one whole device stage (bytes)"},
    {"memory", "weight_bytes", F_NUMBER, OFF(weight_bytes), 0, 0, 1e18,
     "weights of one whole device stage (bytes)"},
    {"network", "latency", F_NUMBER, OFF(latency), 0, 0, 1e15, "fixed time of every message (ms)"},
    {"network", "bandwidth", F_NUMBER, OFF(bandwidth), 0, 0, 1e18,
     "bytes/s of each directed link; 0 = unlimited"},
    {"network", "message_bytes", F_NUMBER, OFF(message_bytes), 0, 0, 1e18,
     "size of one activation or gradient message (bytes)"},
    {"network", "blocking", F_BOOL, OFF(blocking), 0, 0, 1,
     "true: a send holds its device until the message has arrived"},
    {"network", "latency_holds_link", F_BOOL, OFF(latency_holds_link), 0, 0, 1,
     "true (default): latency occupies the link; false: only bytes/bandwidth do"},
    {"limits", "max_ops", F_NUMBER, OFF(max_ops), 0, 0, 1e15,
     "the most ops one run may hold; 0 = 1e8"},
    {"limits", "max_memory", F_NUMBER, OFF(max_memory), 0, 0, 1e18,
     "the most memory (bytes) one run may need; 0 = 8 GiB"},
    /* Decode (sim/schedule_decode.c, docs/inference.md). */
    {"costs", "decode", F_VALUES, OFF(decode), 0, 1, 1e15,
     "decode (ms): one decode step of one micro-batch on one device stage; a number, or P or P*V"},
    {"inference", "prompt_tokens", F_INT, OFF(prompt_tokens), 1, 0, 100000000,
     "decode: prompt length in tokens (the prefill's sequence)"},
    {"inference", "output_tokens", F_INT, OFF(output_tokens), 1, 0, 100000000,
     "decode: tokens each sequence generates, the prefill's first one included"},
};

static const char *const sections[] = {"costs", "memory", "network", "limits", "inference"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ defaults */

/* Read-only: a caller that writes through a default array faults at once
 * instead of silently changing the defaults of every later config. */
static const double default_forward = 1.0, default_backward = 2.0, default_weight = 0.0;

static void values_free(bs_values *v)
{
    bs_free(v->v);
    v->v = NULL;
    v->count = 0;
}

static int values_set_scalar(bs_values *v, double x)
{
    double *p = bs_alloc_array(1, sizeof *p);
    if (!p)
        return BS_ERR_NOMEM;
    values_free(v);
    p[0] = x;
    v->v = p;
    v->count = 1;
    return BS_OK;
}

void bs_config_init(bs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->schedule, "1f1b");
    cfg->stages = 4;
    cfg->microbatches = 8;
    cfg->virtual_stages = 1;
    cfg->iterations = 1;
    /* Defaults point at static storage until the first set; count 1 with
     * v == &default_x is recognised by bs_config_free and never freed. */
    cfg->forward = (bs_values){1, (double *)&default_forward};
    cfg->backward = (bs_values){1, (double *)&default_backward};
    cfg->weight = (bs_values){1, (double *)&default_weight};
    cfg->kept_fraction = BS_DEFAULT_KEPT_FRACTION;
    cfg->overlap = 1.0;
    cfg->latency_holds_link = 1;
    cfg->placement = BS_PLACEMENT_LOOPED;
}

static int is_default_storage(const bs_values *v)
{
    return v->v == &default_forward || v->v == &default_backward || v->v == &default_weight;
}

void bs_config_free(bs_config *cfg)
{
    bs_values *all[] = {&cfg->forward,
                        &cfg->backward,
                        &cfg->weight,
                        &cfg->decode,
                        &cfg->decode_per_token,
                        &cfg->decode_memory,
                        &cfg->decode_memory_per_token,
                        &cfg->kv_cache_bytes};
    for (size_t i = 0; i < COUNT(all); i++)
        if (!is_default_storage(all[i]))
            bs_free(all[i]->v);
    bs_free(cfg->placement_map);
    bs_free(cfg->order);
    bs_device_plan_free(cfg->device_plan);
    bs_config_init(cfg);
}

int bs_config_copy(bs_config *dst, const bs_config *src, bs_error *err)
{
    bs_config tmp = *src;
    bs_values *all[] = {&tmp.forward,
                        &tmp.backward,
                        &tmp.weight,
                        &tmp.decode,
                        &tmp.decode_per_token,
                        &tmp.decode_memory,
                        &tmp.decode_memory_per_token,
                        &tmp.kv_cache_bytes};
    for (size_t i = 0; i < COUNT(all); i++) {
        if (is_default_storage(all[i]) || !all[i]->v)
            continue;
        double *p = bs_alloc_array(all[i]->count, sizeof *p);
        if (!p) {
            for (size_t j = 0; j < i; j++)
                if (!is_default_storage(all[j]))
                    bs_free(all[j]->v);
            return bs_fail(err, BS_ERR_NOMEM, "out of memory copying a config");
        }
        memcpy(p, all[i]->v, all[i]->count * sizeof *p);
        all[i]->v = p;
    }
    tmp.placement_map = NULL;
    tmp.order = NULL;
    tmp.device_plan = NULL;
    if ((src->device_plan && !(tmp.device_plan = bs_device_plan_copy(src->device_plan))) ||
        (src->placement_map &&
         !(tmp.placement_map = bs_alloc_array(src->placement_count, sizeof *tmp.placement_map))) ||
        (src->order && !(tmp.order = bs_alloc_array(strlen(src->order) + 1, 1)))) {
        for (size_t j = 0; j < COUNT(all); j++)
            if (!is_default_storage(all[j]))
                bs_free(all[j]->v);
        bs_free(tmp.placement_map);
        bs_device_plan_free(tmp.device_plan);
        return bs_fail(err, BS_ERR_NOMEM, "out of memory copying a config");
    }
    if (src->placement_map)
        memcpy(tmp.placement_map, src->placement_map,
               src->placement_count * sizeof *tmp.placement_map);
    if (src->order)
        strcpy(tmp.order, src->order);
    bs_config_free(dst);
    *dst = tmp;
    return BS_OK;
}

/* --------------------------------------------------------- JSON parsing */

static void where_in_text(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Copies the raw JSON string text at p (up to its closing quote, at most
 * size - 1 bytes) for a message, with bytes that are not printable ASCII
 * shown as '?'. */
static void quote_raw(const char *p, char *buf, size_t size)
{
    size_t n = 0;
    for (; *p && *p != '"' && n + 1 < size; p++) {
        if (*p == '\\' && p[1])
            buf[n++] = *p++;
        if (n + 1 < size)
            buf[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    }
    buf[n] = '\0';
}

/* cJSON decodes "\u0000" into a NUL byte and then every C string reading
 * the value stops there: "gpipe\u0000junk" would run as gpipe and the key
 * "stages\u0000junk" would set stages. So the raw text of a document that
 * cJSON accepted is scanned once (linear) for that escape, inside keys and
 * string values alike, and refused with the line and the key. The file
 * reader runs the same scan, so that the sections other modules parse
 * themselves (sweep, tune, gpu) are covered too. what: "config", or NULL. */
static int refuse_nul_escapes(const char *text, const char *what, const char *source, bs_error *err)
{
    const char *string_start = NULL, *key_start = NULL;
    for (const char *p = text; *p; p++) {
        if (!string_start) {
            if (*p == '"')
                string_start = p + 1;
            continue;
        }
        if (*p == '"') {
            const char *q = p + 1;
            while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                q++;
            if (*q == ':')
                key_start = string_start;
            string_start = NULL;
            continue;
        }
        if (*p != '\\' || !p[1])
            continue;
        p++;
        if (*p != 'u' || strncmp(p + 1, "0000", 4) != 0)
            continue;
        /* The string holds a NUL: a key when a ':' follows it. */
        const char *end = p;
        while (*end && *end != '"')
            end += (*end == '\\' && end[1]) ? 2 : 1;
        const char *q = *end ? end + 1 : end;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        int line, col;
        char name[72];
        where_in_text(text, p - 1, &line, &col);
        if (*q == ':') {
            quote_raw(string_start, name, sizeof name);
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s%sline %d, column %d: the key \"%s\" holds \\u0000 (a NUL "
                           "character); keys and strings must not contain NUL",
                           source, what ? what : "", what ? ": " : "", line, col, name);
        }
        if (key_start)
            quote_raw(key_start, name, sizeof name);
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s%sline %d, column %d: the string value%s%s%s holds \\u0000 (a NUL "
                       "character); keys and strings must not contain NUL",
                       source, what ? what : "", what ? ": " : "", line, col,
                       key_start ? " of \"" : "", key_start ? name : "", key_start ? "\"" : "");
    }
    return BS_OK;
}

/* Every object holds at most BS_MAX_OBJECT_KEYS keys: a config has a few
 * dozen, and the bound keeps each key lookup (one per --set) short whatever
 * the file holds. Walks the whole tree once; cJSON bounds its depth. */
static int refuse_huge_objects(const cJSON *item, const char *name, const char *what,
                               const char *source, bs_error *err)
{
    size_t n = 0;
    for (const cJSON *c = item->child; c; c = c->next) {
        n++;
        int rc = refuse_huge_objects(c, cJSON_IsObject(item) ? c->string : name, what, source, err);
        if (rc)
            return rc;
    }
    if (cJSON_IsObject(item) && n > BS_MAX_OBJECT_KEYS)
        return bs_fail(err, BS_ERR_LIMIT, "%s: %s: %.64s: an object with %zu keys; at most %d",
                       source, what, name, n, BS_MAX_OBJECT_KEYS);
    return BS_OK;
}

static cJSON *parse_json(const char *text, const char *what, const char *source, bs_error *err,
                         int *code)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        if (!at)
            at = end ? end : text;
        int line, col;
        where_in_text(text, at, &line, &col);
        *code = bs_fail(err, BS_ERR_INVALID, "%s: %s: JSON syntax error at line %d, column %d",
                        source, what, line, col);
        return NULL;
    }
    if ((*code = refuse_nul_escapes(text, what, source, err)) ||
        (*code = refuse_huge_objects(root, "the top-level object", what, source, err))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static const field *find_field(const char *section, const char *name)
{
    for (size_t i = 0; i < COUNT(fields); i++) {
        const field *f = &fields[i];
        if (((section == NULL) == (f->section == NULL)) &&
            (!section || strcmp(section, f->section) == 0) && strcmp(name, f->name) == 0)
            return f;
    }
    return NULL;
}

static int is_section(const char *name)
{
    for (size_t i = 0; i < COUNT(sections); i++)
        if (strcmp(name, sections[i]) == 0)
            return 1;
    return 0;
}

/* Lists the keys allowed in a section (NULL: top level) into buf. */
static const char *allowed_keys(const char *section, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < COUNT(fields) && n < size; i++) {
        const field *f = &fields[i];
        if ((section == NULL) != (f->section == NULL))
            continue;
        if (section && strcmp(section, f->section) != 0)
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", f->name);
    }
    if (!section)
        for (size_t i = 0; i < COUNT(sections) && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, ", %s", sections[i]);
    return buf;
}

static const char *schedule_names(char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < bs_schedule_count() && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", bs_schedule_at(i)->name);
    return buf;
}

/* 'did you mean "KEY"? ' for an unknown key of section (NULL: top level),
 * or "" when no known key is close. */
static const char *key_hint(const char *section, const char *name, char *buf, size_t size)
{
    bs_suggest near;
    bs_suggest_init(&near, name);
    for (size_t i = 0; i < COUNT(fields); i++)
        if ((section == NULL) == (fields[i].section == NULL) &&
            (!section || strcmp(section, fields[i].section) == 0))
            bs_suggest_consider(&near, fields[i].name);
    if (!section) {
        for (size_t i = 0; i < COUNT(sections); i++)
            bs_suggest_consider(&near, sections[i]);
        bs_suggest_consider(&near, "sweep");
    }
    if (!section || bs_model_is_key(section))
        bs_model_suggest(&near, section);
    return bs_suggest_hint(&near, buf, size);
}

/* The same for a schedule name. */
static const char *schedule_hint(const char *name, char *buf, size_t size)
{
    bs_suggest near;
    bs_suggest_init(&near, name);
    for (size_t i = 0; i < bs_schedule_count(); i++)
        bs_suggest_consider(&near, bs_schedule_at(i)->name);
    return bs_suggest_hint(&near, buf, size);
}

/* ----------------------------------------------------- typed field reads */

static int range_ok(const field *f, double x)
{
    if (f->min_exclusive ? !(x > f->min) : !(x >= f->min))
        return 0;
    return x <= f->max;
}

static const char *range_text(const field *f, char *buf, size_t size)
{
    if (f->type == F_INT) {
        if (f->max >= INT_MAX)
            snprintf(buf, size, "an integer from %.0f to 2147483647 (2^31-1)", f->min);
        else
            snprintf(buf, size, "an integer from %.0f to %.0f", f->min, f->max);
    } else if (f->max < 1e6) {
        snprintf(buf, size, "a number %s %g and <= %g", f->min_exclusive ? ">" : ">=", f->min,
                 f->max);
    } else {
        snprintf(buf, size, "a finite number %s %g", f->min_exclusive ? ">" : ">=", f->min);
    }
    return buf;
}

static int read_number(const field *f, const cJSON *item, const char *path, const char *source,
                       double *out, bs_error *err)
{
    char want[96];
    range_text(f, want, sizeof want);
    if (!cJSON_IsNumber(item))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got %s", source, path, want,
                       bs_json_kind(item));
    double x = item->valuedouble;
    if (!isfinite(x) || !range_ok(f, x))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got %g", source, path, want, x);
    if (f->type == F_INT && x != floor(x))
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got %g", source, path, want, x);
    *out = x;
    return BS_OK;
}

/* ------------------------------------------- placement and custom order */

static int read_placement(bs_config *cfg, const cJSON *item, const char *path, const char *source,
                          bs_error *err)
{
    static const char want[] = "\"looped\", \"v\" or a non-empty array of device numbers, one "
                               "per model chunk";
    if (cJSON_IsString(item)) {
        int kind;
        if (strcmp(item->valuestring, "looped") == 0)
            kind = BS_PLACEMENT_LOOPED;
        else if (strcmp(item->valuestring, "v") == 0)
            kind = BS_PLACEMENT_V;
        else
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got \"%.64s\"", source, path,
                           want, item->valuestring);
        bs_free(cfg->placement_map);
        cfg->placement_map = NULL;
        cfg->placement_count = 0;
        cfg->placement = kind;
        return BS_OK;
    }
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got %s", source, path, want,
                       cJSON_IsArray(item) ? "an empty array" : bs_json_kind(item));
    size_t n = (size_t)cJSON_GetArraySize(item), i = 0;
    if (n > BS_MAX_CHUNKS)
        return bs_fail(err, BS_ERR_LIMIT, "%s: %s: has %zu entries; the limit is %d model chunks",
                       source, path, n, BS_MAX_CHUNKS);
    uint16_t *map = bs_alloc_array(n, sizeof *map);
    if (!map)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    const cJSON *el;
    cJSON_ArrayForEach(el, item)
    {
        int device, rc = bs_json_array_int(el, 0, BS_MAX_STAGES - 1, "a device number", source,
                                           path, i, &device, err);
        if (rc) {
            bs_free(map);
            return rc;
        }
        map[i++] = (uint16_t)device;
    }
    bs_free(cfg->placement_map);
    cfg->placement_map = map;
    cfg->placement_count = n;
    cfg->placement = BS_PLACEMENT_EXPLICIT;
    return BS_OK;
}

/* Inline order: [["0F0", "", "0B0"], [...]] becomes the PyTorch text form,
 * one comma-separated row per device, so one reader serves both. */
static int read_order(bs_config *cfg, const cJSON *item, const char *path, const char *source,
                      bs_error *err)
{
    static const char want[] = "an array with one array of action strings per device, such as "
                               "[[\"0F0\", \"\", \"0B0\"], [\"1F0\", \"1B0\"]]";
    if (cfg->order)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: give either order or order_file, not both",
                       source, path);
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected %s, got %s", source, path, want,
                       cJSON_IsArray(item) ? "an empty array" : bs_json_kind(item));
    size_t len = 1, d = 0;
    const cJSON *row, *el;
    cJSON_ArrayForEach(row, item)
    {
        if (!cJSON_IsArray(row))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s[%zu]: expected an array of action strings (\"0F0\", \"2I0\", "
                           "\"(0F7;7B3)\", \"\" for an idle slot), got %s",
                           source, path, d, bs_json_kind(row));
        size_t k = 0;
        cJSON_ArrayForEach(el, row)
        {
            if (!cJSON_IsString(el) && !cJSON_IsNull(el))
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: %s[%zu][%zu]: expected an action string such as \"0F0\", "
                               "got %s",
                               source, path, d, k, bs_json_kind(el));
            if (cJSON_IsString(el)) {
                if (strpbrk(el->valuestring, ",\n\r\""))
                    return bs_fail(err, BS_ERR_INVALID,
                                   "%s: %s[%zu][%zu]: action \"%.64s\" contains a comma, quote or "
                                   "line break; give one action per string",
                                   source, path, d, k, el->valuestring);
                /* The text reader skips a '#' line as a comment: inline,
                 * that would drop the row and shift the later ones. */
                const char *c = el->valuestring + strspn(el->valuestring, " \t");
                if (*c == '#')
                    return bs_fail(err, BS_ERR_INVALID,
                                   "%s: %s[%zu][%zu]: \"%.64s\" is not an action; an inline "
                                   "order has no comments",
                                   source, path, d, k, el->valuestring);
                len += strlen(el->valuestring);
            }
            len += 1;
            k++;
        }
        len += 2; /* the line break, and a comma for a row of idle slots */
        d++;
    }
    if (len > BS_MAX_CONFIG_BYTES)
        return bs_fail(err, BS_ERR_LIMIT, "%s: %s: larger than %u MiB", source, path,
                       BS_MAX_CONFIG_BYTES >> 20);
    char *text = bs_alloc_array(len, 1), *at;
    if (!text)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");
    at = text;
    cJSON_ArrayForEach(row, item)
    {
        int first = 1;
        char *row_start = at;
        cJSON_ArrayForEach(el, row)
        {
            if (!first)
                *at++ = ',';
            first = 0;
            if (cJSON_IsString(el)) {
                size_t n = strlen(el->valuestring);
                memcpy(at, el->valuestring, n);
                at += n;
            }
        }
        /* The text reader skips blank lines, so a row of one idle slot or
         * none ([], [null], [""], [" "]) would vanish and every later row
         * would move to the device before it. Written as two idle slots it
         * stays in place: the device's row, with no action (right for a
         * device that owns no model chunk, else the program check names
         * what the device misses). */
        const char *c = row_start;
        while (c < at && (*c == ' ' || *c == '\t'))
            c++;
        if (c == at) {
            at = row_start;
            *at++ = ',';
        }
        *at++ = '\n';
    }
    *at = '\0';
    cfg->order = text;
    cfg->order_from_file = 0;
    snprintf(cfg->order_source, sizeof cfg->order_source, "%s", path);
    return BS_OK;
}

/* What a non-regular file is, for the refusal message. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

/* Only regular files are read: a FIFO without a writer, a terminal or a
 * socket would block forever, and a device may never end. The file is
 * opened with O_NONBLOCK so that opening a FIFO does not wait for a writer,
 * then fstat decides on the object actually opened (no race between a stat
 * and the open). "-" is an ordinary file name here, not standard input. */
int bs_read_text_file(const char *file, char **out, bs_error *err)
{
    int rc = BS_OK;
    size_t cap = 4096, len = 0;
    char *text = NULL;
    struct stat st;
    *out = NULL;
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return bs_fail(err, BS_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = bs_fail(err, BS_ERR_IO, "%s: cannot stat: %s", file, strerror(errno));
        goto error;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: is %s; expected a regular file", file,
                     file_kind(st.st_mode));
        goto error;
    }
    if ((unsigned long long)st.st_size >= BS_MAX_CONFIG_BYTES) {
        rc = bs_fail(err, BS_ERR_LIMIT, "%s: larger than %u MiB; not a text input?", file,
                     BS_MAX_CONFIG_BYTES >> 20);
        goto error;
    }
    if (!(text = bs_alloc_array(cap, 1))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory reading %s", file);
        goto error;
    }
    for (;;) {
        if (len + 1 >= cap) {
            /* The file may grow while it is read: the limit holds anyway. */
            if (cap >= BS_MAX_CONFIG_BYTES) {
                rc = bs_fail(err, BS_ERR_LIMIT, "%s: larger than %u MiB; not a text input?", file,
                             BS_MAX_CONFIG_BYTES >> 20);
                goto error;
            }
            if (bs_realloc_array((void **)&text, cap * 2, 1)) {
                rc = bs_fail(err, BS_ERR_NOMEM, "out of memory reading %s", file);
                goto error;
            }
            cap *= 2;
        }
        ssize_t got = read(fd, text + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = bs_fail(err, BS_ERR_IO, "%s: read error: %s", file, strerror(errno));
            goto error;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        rc = bs_fail(err, BS_ERR_INVALID,
                     "%s: contains a NUL byte at offset %zu; expected JSON or "
                     "text",
                     file, strlen(text));
        goto error;
    }
    /* A JSON escape for NUL reads back as a shorter string; refused here
     * for every caller (text that is not JSON holds none inside quotes). */
    if ((rc = refuse_nul_escapes(text, NULL, file, err)))
        goto error;
    close(fd);
    *out = text;
    return BS_OK;
error:
    close(fd);
    bs_free(text);
    return rc;
}

/* order_file names a file relative to the directory of the config file
 * that mentions it (or to the working directory for a config without one). */
static int read_order_file(bs_config *cfg, const cJSON *item, const char *path, const char *source,
                           bs_error *err)
{
    if (cfg->order)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: give either order or order_file, not both",
                       source, path);
    if (!cJSON_IsString(item) || !item->valuestring[0])
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s: expected the name of a PyTorch pipelining schedule text file, "
                       "got %s",
                       source, path, cJSON_IsString(item) ? "an empty string" : bs_json_kind(item));
    char file[sizeof cfg->order_source];
    const char *slash = strrchr(source, '/');
    int n;
    if (item->valuestring[0] == '/' || !slash)
        n = snprintf(file, sizeof file, "%s", item->valuestring);
    else
        n = snprintf(file, sizeof file, "%.*s/%s", (int)(slash - source), source,
                     item->valuestring);
    if (n < 0 || (size_t)n >= sizeof file)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: file name too long", source, path);
    char *text = NULL;
    bs_error why;
    int rc = bs_read_text_file(file, &text, &why);
    if (rc)
        /* why names the file; the config and key say where it came from. */
        return bs_fail(err, rc, "%s: %s: %s", source, path, why.message);
    cfg->order = text;
    cfg->order_from_file = 1;
    snprintf(cfg->order_source, sizeof cfg->order_source, "%s", file);
    return BS_OK;
}

static int read_field(bs_config *cfg, const field *f, const cJSON *item, const char *path,
                      const char *source, bs_error *err)
{
    char *base = (char *)cfg + f->offset;
    double x;
    int rc;
    switch (f->type) {
    case F_STRING: {
        char names[256];
        if (!cJSON_IsString(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected a schedule name (%s), got %s",
                           source, path, schedule_names(names, sizeof names), bs_json_kind(item));
        if (!bs_schedule_find(item->valuestring)) {
            char hint[96];
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: unknown schedule \"%.64s\"; %sexpected one of %s", source, path,
                           item->valuestring, schedule_hint(item->valuestring, hint, sizeof hint),
                           schedule_names(names, sizeof names));
        }
        snprintf(base, BS_NAME_MAX, "%s", item->valuestring);
        return BS_OK;
    }
    case F_INT:
        if ((rc = read_number(f, item, path, source, &x, err)))
            return rc;
        *(int *)base = (int)x;
        return BS_OK;
    case F_NUMBER:
        if ((rc = read_number(f, item, path, source, &x, err)))
            return rc;
        *(double *)base = x;
        return BS_OK;
    case F_VALUES: {
        bs_values *v = (bs_values *)base;
        if (cJSON_IsNumber(item)) {
            if ((rc = read_number(f, item, path, source, &x, err)))
                return rc;
            if (!is_default_storage(v))
                values_free(v);
            v->v = NULL;
            v->count = 0;
            if (values_set_scalar(v, x))
                return bs_fail(err, BS_ERR_NOMEM, "out of memory");
            return BS_OK;
        }
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) == 0) {
            char want[96];
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: expected %s or a non-empty array of them, got %s", source, path,
                           range_text(f, want, sizeof want),
                           cJSON_IsArray(item) ? "an empty array" : bs_json_kind(item));
        }
        size_t n = (size_t)cJSON_GetArraySize(item);
        double *p = bs_alloc_array(n, sizeof *p);
        if (!p)
            return bs_fail(err, BS_ERR_NOMEM, "out of memory");
        size_t i = 0;
        const cJSON *el;
        cJSON_ArrayForEach(el, item)
        {
            char elpath[160];
            snprintf(elpath, sizeof elpath, "%s[%zu]", path, i);
            if ((rc = read_number(f, el, elpath, source, &p[i], err))) {
                bs_free(p);
                return rc;
            }
            i++;
        }
        if (!is_default_storage(v))
            values_free(v);
        v->v = p;
        v->count = n;
        return BS_OK;
    }
    case F_BOOL:
        if (!cJSON_IsBool(item))
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected true or false, got %s", source,
                           path, bs_json_kind(item));
        *(int *)base = cJSON_IsTrue(item);
        return BS_OK;
    case F_PLACEMENT:
        return read_placement(cfg, item, path, source, err);
    case F_ORDER:
        return read_order(cfg, item, path, source, err);
    case F_ORDER_FILE:
        return read_order_file(cfg, item, path, source, err);
    case F_UPDATES: {
        static const char *const names[] = {"flush", "no-flush", "per-backward"};
        for (int k = 0; cJSON_IsString(item) && k < 3; k++)
            if (strcmp(item->valuestring, names[k]) == 0) {
                cfg->updates = k;
                return BS_OK;
            }
        if (cJSON_IsString(item))
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: %s: expected \"flush\", \"no-flush\" or \"per-backward\", got "
                           "\"%.64s\"",
                           source, path, item->valuestring);
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s: expected \"flush\", \"no-flush\" or \"per-backward\", got %s",
                       source, path, bs_json_kind(item));
    }
    }
    return bs_fail(err, BS_ERR_INTERNAL, "unknown field type");
}

static int read_object(bs_config *cfg, const cJSON *obj, const char *section, const char *source,
                       bs_error *err)
{
    int rc = bs_json_check_duplicates(obj, section, source, err);
    if (rc)
        return rc;
    for (const cJSON *item = obj->child; item; item = item->next) {
        char path[128], keys[256];
        snprintf(path, sizeof path, "%s%s%s", section ? section : "", section ? "." : "",
                 item->string);
        if (!section && is_section(item->string)) {
            if (!cJSON_IsObject(item))
                return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an object, got %s", source,
                               path, bs_json_kind(item));
            if ((rc = read_object(cfg, item, item->string, source, err)))
                return rc;
            continue;
        }
        if (!section && strcmp(item->string, "sweep") == 0)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: sweep: this config describes a sweep; run it with `bubblesim "
                           "sweep %s` (or remove \"sweep\" to run the base configuration)",
                           source, source);
        if (!section && bs_model_is_key(item->string))
            continue; /* bs_model_apply reads the model keys (sim/model.c) */
        const field *f = find_field(section, item->string);
        if (!f) {
            char hint[96];
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: unknown key; %sexpected one of %s", source,
                           path, key_hint(section, item->string, hint, sizeof hint),
                           allowed_keys(section, keys, sizeof keys));
        }
        if ((rc = read_field(cfg, f, item, path, source, err)))
            return rc;
    }
    return BS_OK;
}

/* ------------------------------------------------------------- overrides */

static int apply_override(cJSON *root, const bs_override *ov, const char *source, bs_error *err)
{
    char path[128], keys[256], hint[96];
    if (!ov->path || !*ov->path)
        return bs_fail(err, BS_ERR_INVALID,
                       "--set: expected KEY=VALUE with a key path such as "
                       "costs.forward, got an empty key");
    /* Every key path is short ("memory.activation_bytes"); a long one is a
     * mistake, named by its start and its length rather than echoed whole. */
    if (strlen(ov->path) >= sizeof path)
        return bs_fail(err, BS_ERR_INVALID,
                       "--set %.40s...: the key path has %zu characters; key paths such as "
                       "costs.forward have at most %zu (see docs/config.md for the keys)",
                       ov->path, strlen(ov->path), sizeof path - 1);
    snprintf(path, sizeof path, "%s", ov->path);
    char *dot = strchr(path, '.');
    const char *section = NULL, *name = path;
    if (dot) {
        *dot = '\0';
        section = path;
        name = dot + 1;
        if (!is_section(section) && !bs_model_is_key(section)) {
            bs_suggest near;
            bs_suggest_init(&near, section);
            for (size_t i = 0; i < COUNT(sections); i++)
                bs_suggest_consider(&near, sections[i]);
            bs_suggest_consider(&near, "model");
            bs_suggest_consider(&near, "hardware");
            return bs_fail(err, BS_ERR_INVALID,
                           "--set %s: unknown section \"%s\"; %sexpected one "
                           "of costs, memory, network, limits, model, hardware",
                           ov->path, section, bs_suggest_hint(&near, hint, sizeof hint));
        }
    }
    /* A whole section may be set too: --set 'costs={"forward": 2}'. */
    /* Model keys (model.*, hardware.*, tensor_parallel, ...) are checked by
     * bs_model_apply once the overrides are in. */
    if (!find_field(section, name) && (section || !is_section(name)) &&
        !bs_model_is_key(section ? section : name))
        return bs_fail(err, BS_ERR_INVALID, "--set %s: unknown key; %sexpected one of %s", ov->path,
                       key_hint(section, name, hint, sizeof hint),
                       allowed_keys(section, keys, sizeof keys));

    /* The whole value must be JSON ("4x" is not 4); otherwise it is a string,
     * so schedule=1f1b and schedule=gpipe both name schedules. */
    cJSON *value = cJSON_ParseWithOpts(ov->value ? ov->value : "", NULL, 1);
    int rc;
    char where[160];
    snprintf(where, sizeof where, "--set %s", ov->path);
    if (value && ((rc = refuse_nul_escapes(ov->value, "value", where, err)) ||
                  (rc = refuse_huge_objects(value, "the value", "value", where, err)))) {
        cJSON_Delete(value);
        return rc;
    }
    if (!value)
        value = cJSON_CreateString(ov->value ? ov->value : "");
    if (!value)
        return bs_fail(err, BS_ERR_NOMEM, "out of memory");

    cJSON *parent = root;
    if (section) {
        parent = cJSON_GetObjectItemCaseSensitive(root, section);
        if (!parent) {
            parent = cJSON_AddObjectToObject(root, section);
        } else if (!cJSON_IsObject(parent)) {
            cJSON_Delete(value);
            return bs_fail(err, BS_ERR_INVALID, "%s: %s: expected an object, got %s", source,
                           section, bs_json_kind(parent));
        }
        if (!parent) {
            cJSON_Delete(value);
            return bs_fail(err, BS_ERR_NOMEM, "out of memory");
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(parent, name))
        cJSON_ReplaceItemInObjectCaseSensitive(parent, name, value);
    else
        cJSON_AddItemToObject(parent, name, value);
    return BS_OK;
}

/* The config's JSON object with the overrides written in; NULL and *rc set
 * on failure. The caller deletes it. */
static cJSON *parse_with_overrides(const char *text, const char *source,
                                   const bs_override *overrides, size_t n_overrides, bs_error *err,
                                   int *rc)
{
    cJSON *root = parse_json(text, "config", source, err, rc);
    if (!root)
        return NULL;
    if (!cJSON_IsObject(root)) {
        *rc = bs_fail(err, BS_ERR_INVALID, "%s: expected a JSON object at the top, got %s", source,
                      bs_json_kind(root));
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < n_overrides; i++)
        if ((*rc = apply_override(root, &overrides[i], source, err))) {
            cJSON_Delete(root);
            return NULL;
        }
    return root;
}

/* ------------------------------------------------------------ public API */

int bs_config_parse(bs_config *cfg, const char *text, const char *source,
                    const bs_override *overrides, size_t n_overrides, bs_error *err)
{
    int rc = BS_OK;
    bs_config tmp;
    bs_config_init(&tmp);
    bs_config_free(cfg);
    cJSON *root = parse_with_overrides(text, source, overrides, n_overrides, err, &rc);
    if (!root)
        goto error;
    if ((rc = read_object(&tmp, root, NULL, source, err)))
        goto error;
    /* The V-shaped schedules run two chunks per device: V = 2 when the
     * config has no virtual_stages (another value is still refused by their
     * check, bs_check_v_shape). Which schedules are V-shaped is their table
     * record's v_shape. */
    if (!cJSON_GetObjectItemCaseSensitive(root, "virtual_stages")) {
        const bs_schedule *shape = bs_schedule_find(tmp.schedule);
        if (shape && shape->v_shape)
            tmp.virtual_stages = 2;
    }
    if ((rc = bs_model_apply(&tmp, root, source, err)))
        goto error;
    if ((rc = bs_config_check(&tmp, source, err)))
        goto error;
    cJSON_Delete(root);
    *cfg = tmp;
    return BS_OK;
error:
    cJSON_Delete(root);
    bs_config_free(&tmp);
    return rc;
}

int bs_config_check_keys(const char *text, const char *source, const bs_override *overrides,
                         size_t n_overrides, bs_error *err)
{
    int rc = BS_OK;
    char *printed = NULL;
    bs_config tmp;
    bs_model m;
    bs_config_init(&tmp);
    bs_model_init(&m);
    cJSON *root = parse_with_overrides(text, source, overrides, n_overrides, err, &rc);
    if (!root)
        goto error;
    if ((rc = read_object(&tmp, root, NULL, source, err)))
        goto error;
    if (!bs_schedule_find(tmp.schedule)) {
        rc = bs_fail(err, BS_ERR_INVALID, "%s: schedule: unknown schedule \"%s\"", source,
                     tmp.schedule);
        goto error;
    }
    /* The model's keys alone; the plan (which needs P and V) is left out. */
    if (cJSON_GetObjectItemCaseSensitive(root, "model")) {
        if (!(printed = cJSON_PrintUnformatted(root))) {
            rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
            goto error;
        }
        rc = bs_model_parse(&m, printed, source, err);
    }
error:
    cJSON_free(printed);
    cJSON_Delete(root);
    bs_model_free(&m);
    bs_config_free(&tmp);
    return rc;
}

int bs_config_apply_overrides(const char *text, const char *source, const bs_override *overrides,
                              size_t n_overrides, char **out, bs_error *err)
{
    int rc = BS_OK;
    char *printed = NULL;
    *out = NULL;
    cJSON *root = parse_with_overrides(text, source, overrides, n_overrides, err, &rc);
    if (!root)
        goto error;
    /* Copied so that the caller frees it where the library allocates. */
    size_t len;
    if (!(printed = cJSON_PrintUnformatted(root)) ||
        !(*out = bs_alloc_array((len = strlen(printed)) + 1, 1))) {
        rc = bs_fail(err, BS_ERR_NOMEM, "out of memory");
        goto error;
    }
    memcpy(*out, printed, len + 1);
error:
    cJSON_free(printed);
    cJSON_Delete(root);
    return rc;
}

int bs_config_load(bs_config *cfg, const char *path, const bs_override *overrides,
                   size_t n_overrides, bs_error *err)
{
    char *text = NULL;
    int rc = bs_read_text_file(path, &text, err);
    if (rc == BS_OK)
        rc = bs_config_parse(cfg, text, path, overrides, n_overrides, err);
    bs_free(text);
    return rc;
}

static int check_values(const bs_values *v, const char *path, const bs_config *cfg,
                        const char *source, bs_error *err)
{
    size_t p = (size_t)cfg->stages, pv = p * (size_t)cfg->virtual_stages;
    if (v->count == 0 || !v->v)
        return bs_fail(err, BS_ERR_INVALID, "%s: %s: no value given", source, path);
    if (v->count != 1 && v->count != p && v->count != pv)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: %s: has %zu values; expected 1, P=%zu (one per device stage) or "
                       "P*V=%zu (one per model chunk)",
                       source, path, v->count, p, pv);
    return BS_OK;
}

/* Every time the engine adds up must be finite and at most BS_MAX_TIME_MS:
 * the costs (a library caller may fill them directly, a model derives them)
 * and the message time, latency + bytes / bandwidth, which overflows for a
 * tiny bandwidth and large messages although each key is in range. */
static int check_derived_times(const bs_config *cfg, const char *source, bs_error *err)
{
    const struct {
        const bs_values *v;
        const char *path;
    } costs[] = {{&cfg->forward, "costs.forward"},
                 {&cfg->backward, "costs.backward"},
                 {&cfg->weight, "costs.weight"},
                 /* decode: by hand, or a model's terms (sim/model_decode.c) */
                 {&cfg->decode, "costs.decode"},
                 {&cfg->decode_per_token, "costs.decode (per context token)"},
                 {&cfg->decode_memory, "costs.decode (memory traffic)"},
                 {&cfg->decode_memory_per_token, "costs.decode (memory per context token)"}};
    for (size_t k = 0; k < COUNT(costs); k++)
        for (size_t i = 0; i < costs[k].v->count; i++) {
            double x = costs[k].v->v[i];
            if (!(x >= 0 && x <= BS_MAX_TIME_MS))
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: %s[%zu]: %g ms; expected a finite time from 0 to %g ms", source,
                               costs[k].path, i, x, BS_MAX_TIME_MS);
        }
    if (!(cfg->optimizer >= 0 && cfg->optimizer <= BS_MAX_TIME_MS) ||
        !(cfg->overlap > 0 && cfg->overlap <= 1))
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: costs.optimizer / costs.overlap: %g ms / %g; expected a finite time "
                       "from 0 to %g ms and an overlap in (0, 1]",
                       source, cfg->optimizer, cfg->overlap, BS_MAX_TIME_MS);
    if (!bs_config_network_free(cfg)) {
        double t = bs_message_time(cfg);
        if (!(t >= 0 && t <= BS_MAX_TIME_MS))
            return bs_fail(
                err, BS_ERR_INVALID,
                "%s: network.bandwidth: one message takes network.latency + 1000 * "
                "network.message_bytes / network.bandwidth = %g + 1000 * %g / %g = %g ms "
                "(with a model: hardware.latency, hardware.bandwidth and the model's "
                "activation size); expected a finite time of at most %g ms",
                source, cfg->latency, cfg->message_bytes, cfg->bandwidth, t, BS_MAX_TIME_MS);
    }
    return BS_OK;
}

int bs_config_check(const bs_config *cfg, const char *source, bs_error *err)
{
    int rc;
    if (!source)
        source = "config";
    if (!bs_schedule_find(cfg->schedule)) {
        char hint[96];
        size_t n = strlen(schedule_hint(cfg->schedule, hint, sizeof hint));
        if (n)
            hint[n - 1] = '\0'; /* the hint's trailing space */
        return bs_fail(err, BS_ERR_INVALID, "%s: schedule: unknown schedule \"%.64s\"%s%s", source,
                       cfg->schedule, n ? "; " : "", hint);
    }
    if (cfg->stages < 1 || cfg->stages > BS_MAX_STAGES)
        return bs_fail(err, BS_ERR_INVALID, "%s: stages: expected an integer from 1 to %d, got %d",
                       source, BS_MAX_STAGES, cfg->stages);
    if (cfg->microbatches < 1 || cfg->virtual_stages < 1 || cfg->iterations < 1)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: microbatches, virtual_stages and iterations must be >= 1", source);
    if ((long long)cfg->stages * cfg->virtual_stages > BS_MAX_CHUNKS)
        return bs_fail(err, BS_ERR_LIMIT,
                       "%s: virtual_stages: P*V = %lld model chunks exceeds the limit of %d",
                       source, (long long)cfg->stages * cfg->virtual_stages, BS_MAX_CHUNKS);
    if (strcmp(cfg->schedule, "custom") != 0 && cfg->placement != BS_PLACEMENT_LOOPED)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: placement: only the custom schedule takes a placement; %s places its "
                       "chunks itself",
                       source, cfg->schedule);
    if (strcmp(cfg->schedule, "custom") != 0 && cfg->updates != BS_UPDATES_FLUSH)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: updates: only the custom schedule takes updates; %s decides itself",
                       source, cfg->schedule);
    if (strcmp(cfg->schedule, "custom") != 0 && cfg->order)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: order: only the custom schedule reads an order; schedule is \"%s\"",
                       source, cfg->schedule);
    if (cfg->placement == BS_PLACEMENT_V && cfg->virtual_stages != 2)
        return bs_fail(err, BS_ERR_INVALID,
                       "%s: placement: \"v\" puts chunks s and 2P-1-s on device s and needs "
                       "virtual_stages = 2, got %d",
                       source, cfg->virtual_stages);
    if (cfg->placement == BS_PLACEMENT_EXPLICIT) {
        size_t chunks = (size_t)cfg->stages * (size_t)cfg->virtual_stages;
        if (cfg->placement_count != chunks)
            return bs_fail(err, BS_ERR_INVALID,
                           "%s: placement: has %zu entries; expected one device per model chunk, "
                           "P*V = %zu",
                           source, cfg->placement_count, chunks);
        for (size_t i = 0; i < chunks; i++)
            if (cfg->placement_map[i] >= cfg->stages)
                return bs_fail(err, BS_ERR_INVALID,
                               "%s: placement[%zu]: device %u does not exist (stages = %d)", source,
                               i, cfg->placement_map[i], cfg->stages);
    }
    if ((rc = check_values(&cfg->forward, "costs.forward", cfg, source, err)) ||
        (rc = check_values(&cfg->backward, "costs.backward", cfg, source, err)) ||
        (rc = check_values(&cfg->weight, "costs.weight", cfg, source, err)))
        return rc;
    if (cfg->decode.count && (rc = check_values(&cfg->decode, "costs.decode", cfg, source, err)))
        return rc;
    if ((rc = check_derived_times(cfg, source, err)))
        return rc;
    const bs_schedule *s = bs_schedule_find(cfg->schedule);
    /* A decode program has one item per (micro-batch, output token): the
     * prefill and T - 1 decode steps (sim/schedule_decode.c). */
    double items = (s->flags & BS_PROGRAM_DECODE_LOOP) && cfg->output_tokens > 0
                       ? (double)cfg->output_tokens
                       : 1.0;
    double mb_total = (double)cfg->microbatches * cfg->iterations * items;
    if (mb_total > (double)UINT32_MAX / 2)
        return bs_fail(err, BS_ERR_LIMIT,
                       "%s: %s: M*%s = %.0f micro-batches exceeds the limit of %u", source,
                       items > 1 ? "inference.output_tokens" : "iterations",
                       items > 1 ? "output_tokens" : "iterations", mb_total, UINT32_MAX / 2);
    double ops = 3.0 * cfg->stages * cfg->virtual_stages * mb_total;
    ops = ops / 3.0 * s->ops_per_chunk_microbatch;
    double max_ops = cfg->max_ops > 0 ? cfg->max_ops : BS_DEFAULT_MAX_OPS;
    if (ops > max_ops)
        return bs_fail(err, BS_ERR_LIMIT,
                       "%s: microbatches: P*V*M*iterations*%u = %.0f ops exceeds the limit of "
                       "%.0f ops (limits.max_ops)",
                       source, s->ops_per_chunk_microbatch, ops, max_ops);
    /* Memory is linear in the ops and the (stage, micro-batch) pairs. */
    double pairs = (double)cfg->stages * cfg->virtual_stages * mb_total;
    double bytes = ops * BS_BYTES_PER_OP + pairs * BS_BYTES_PER_PAIR;
    double max_memory = cfg->max_memory > 0 ? cfg->max_memory : BS_DEFAULT_MAX_MEMORY;
    if (bytes > max_memory)
        return bs_fail(err, BS_ERR_LIMIT,
                       "%s: microbatches: %.0f ops and %.0f stage/micro-batch pairs need about "
                       "%.0f bytes (%.0f per op, %.0f per pair), which exceeds the limit of %.0f "
                       "bytes (limits.max_memory)",
                       source, ops, pairs, bytes, BS_BYTES_PER_OP, BS_BYTES_PER_PAIR, max_memory);
    return BS_OK;
}

int bs_config_network_free(const bs_config *cfg)
{
    return cfg->latency == 0 && (cfg->bandwidth == 0 || cfg->message_bytes == 0);
}

/* ------------------------------------------------------- per-chunk costs */

static int resolve_one(double **out, const bs_values *v, int p, int vstages,
                       const uint16_t *stage_device)
{
    size_t n = (size_t)p * (size_t)vstages;
    double *c = bs_alloc_array(n, sizeof *c);
    if (!c)
        return -1;
    for (size_t s = 0; s < n; s++) {
        size_t device = stage_device ? stage_device[s] : s % (size_t)p;
        if (v->count == 0 || !v->v)
            c[s] = 0; /* an optional cost that was not given */
        else if (v->count == 1)
            c[s] = v->v[0] / vstages;
        else if (v->count == (size_t)p)
            c[s] = v->v[device] / vstages; /* a device's cost, shared by its V chunks */
        else
            c[s] = v->v[s];
    }
    *out = c;
    return 0;
}

int bs_chunk_costs_resolve(bs_chunk_costs *costs, const bs_config *cfg,
                           const uint16_t *stage_device, bs_error *err)
{
    int p = cfg->stages, v = cfg->virtual_stages;
    memset(costs, 0, sizeof *costs);
    if (resolve_one(&costs->forward, &cfg->forward, p, v, stage_device) ||
        resolve_one(&costs->backward, &cfg->backward, p, v, stage_device) ||
        resolve_one(&costs->weight, &cfg->weight, p, v, stage_device) ||
        resolve_one(&costs->decode, &cfg->decode, p, v, stage_device) ||
        resolve_one(&costs->decode_per_token, &cfg->decode_per_token, p, v, stage_device) ||
        resolve_one(&costs->decode_memory, &cfg->decode_memory, p, v, stage_device) ||
        resolve_one(&costs->decode_memory_per_token, &cfg->decode_memory_per_token, p, v,
                    stage_device)) {
        bs_chunk_costs_free(costs);
        return bs_fail(err, BS_ERR_NOMEM, "out of memory resolving stage costs");
    }
    costs->optimizer = cfg->optimizer;
    costs->decode_grows = cfg->decode_per_token.count > 0 || cfg->decode_memory.count > 0 ||
                          cfg->decode_memory_per_token.count > 0;
    size_t n = (size_t)cfg->stages * (size_t)cfg->virtual_stages;
    costs->uniform = 1;
    for (size_t s = 1; s < n; s++)
        if (costs->forward[s] != costs->forward[0] || costs->backward[s] != costs->backward[0] ||
            costs->weight[s] != costs->weight[0])
            costs->uniform = 0;
    return BS_OK;
}

void bs_chunk_costs_free(bs_chunk_costs *costs)
{
    bs_free(costs->forward);
    bs_free(costs->backward);
    bs_free(costs->weight);
    bs_free(costs->decode);
    bs_free(costs->decode_per_token);
    bs_free(costs->decode_memory);
    bs_free(costs->decode_memory_per_token);
    memset(costs, 0, sizeof *costs);
}

/* ------------------------------------------------------- key listing */

size_t bs_config_field_count(void)
{
    return COUNT(fields);
}

void bs_config_field_describe(size_t i, bs_config_key *out)
{
    static const char *const types[] = {
        [F_STRING] = "string",
        [F_INT] = "integer",
        [F_NUMBER] = "number",
        [F_VALUES] = "number or array of numbers",
        [F_PLACEMENT] = "string or array of integers",
        [F_ORDER] = "array of arrays of strings",
        [F_ORDER_FILE] = "string (file name)",
        [F_UPDATES] = "string",
        [F_BOOL] = "boolean",
    };
    const field *f = &fields[i];
    snprintf(out->path, sizeof out->path, "%s%s%s", f->section ? f->section : "",
             f->section ? "." : "", f->name);
    snprintf(out->type, sizeof out->type, "%s", types[f->type]);
    if (f->type == F_INT || f->type == F_NUMBER || f->type == F_VALUES)
        bs_key_range_text(out->range, sizeof out->range, f->type == F_INT, f->min, f->min_exclusive,
                          f->max);
    else if (f->type == F_BOOL)
        snprintf(out->range, sizeof out->range, "true or false");
    else
        snprintf(out->range, sizeof out->range, "see the description");
    out->description = f->description;
    out->doc = "docs/config.md";
}
