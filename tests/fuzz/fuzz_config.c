/*
 * fuzz_config.c - libFuzzer target for the config reader and --set.
 *
 * Input layout: zero or more override lines "KEY=VALUE\n", then a line
 * holding only "---", then the config text. Without a "---" line the whole
 * input is config text. A config that parses is also simulated when it is
 * small (so the fuzzer explores the engine without spending its time on
 * large runs); every failure must come back as an error code with a message.
 *
 * Properties checked besides "no crash, no sanitizer report" (abort on
 * failure):
 *   - a config that parses holds no \u0000 escape in its text or in an
 *     override value that is JSON (the oracle here is a separate scan, not
 *     config.c's);
 *   - an inline order that parses became one row per device: no blank row
 *     and no '#' row, which the text reader would drop and so shift rows;
 *   - bs_config_apply_overrides agrees with bs_config_parse: it succeeds
 *     when the parse does, and its text, parsed without overrides, gives
 *     the same config (the --set paths are the same code for both);
 *   - bs_config_check_keys (a sweep's base, key by key) accepts whatever
 *     bs_config_parse accepts, and fails only with a message.
 */
#include "bubblesim.h"

#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 16
#define MAX_SIMULATED_OPS 20000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether text holds the JSON escape \u0000: a backslash-u-0000 preceded
 * by an even number of backslashes (an odd count escapes the backslash). */
static int has_nul_escape(const char *text)
{
    for (const char *p = strstr(text, "\\u0000"); p; p = strstr(p + 1, "\\u0000")) {
        size_t before = 0;
        while ((size_t)(p - text) > before && *(p - before - 1) == '\\')
            before++;
        if (before % 2 == 0)
            return 1;
    }
    return 0;
}

/* Every row of an inline order's text has an action: not blank, no '#'. */
static void check_rows(const bs_config *cfg)
{
    if (!cfg->order || strcmp(cfg->order_source, "order") != 0)
        return;
    for (const char *at = cfg->order; *at;) {
        size_t len = strcspn(at, "\n"), k = strspn(at, " \t\r");
        if (k >= len || at[k] == '#')
            abort(); /* a row the text reader would drop */
        at += len + (at[len] == '\n');
    }
}

static int same_values(const bs_values *a, const bs_values *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (memcmp(&a->v[i], &b->v[i], sizeof a->v[i]) != 0)
            return 0;
    return 1;
}

/* The overridden text gives the config the overrides gave. */
static void check_apply_overrides(const bs_config *cfg, const char *config, const bs_override *ov,
                                  size_t n)
{
    char *printed = NULL;
    bs_error err;
    if (bs_config_apply_overrides(config, "fuzz.json", ov, n, &printed, &err) != BS_OK)
        abort(); /* bs_config_parse accepted these overrides */
    bs_config again;
    bs_config_init(&again);
    if (bs_config_parse(&again, printed, "fuzz.json", NULL, 0, &err) != BS_OK ||
        strcmp(again.schedule, cfg->schedule) != 0 || again.stages != cfg->stages ||
        again.microbatches != cfg->microbatches || again.virtual_stages != cfg->virtual_stages ||
        again.iterations != cfg->iterations || !same_values(&again.forward, &cfg->forward) ||
        !same_values(&again.backward, &cfg->backward) ||
        !same_values(&again.weight, &cfg->weight) || (!again.order != !cfg->order) ||
        (again.order && strcmp(again.order, cfg->order) != 0))
        abort();
    bs_config_free(&again);
    bs_text_free(printed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    bs_override ov[MAX_OVERRIDES];
    size_t n = 0;
    char *config = text, *sep = strstr(text, "\n---\n");
    if (sep) {
        *sep = '\0';
        config = sep + 5;
        for (char *line = text; line && *line && n < MAX_OVERRIDES;) {
            char *next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                ov[n].path = line;
                ov[n].value = eq + 1;
                n++;
            }
            line = next;
        }
    }

    bs_config cfg;
    bs_error err = {{0}};
    bs_config_init(&cfg);
    int rc = bs_config_parse(&cfg, config, "fuzz.json", ov, n, &err);
    if (rc != BS_OK && !err.message[0])
        abort(); /* every failure says why */
    {
        bs_error kerr = {{0}};
        int keys_rc = bs_config_check_keys(config, "fuzz.json", ov, n, &kerr);
        if ((rc == BS_OK && keys_rc != BS_OK) || (keys_rc != BS_OK && !kerr.message[0]))
            abort();
    }
    if (rc == BS_OK) {
        if (has_nul_escape(config))
            abort();
        /* A --set value that is not JSON is taken as a plain string, in
         * which a backslash-u0000 is six ordinary characters. */
        for (size_t i = 0; i < n; i++) {
            cJSON *v = cJSON_ParseWithOpts(ov[i].value, NULL, 1);
            if (v && has_nul_escape(ov[i].value))
                abort();
            cJSON_Delete(v);
        }
        check_rows(&cfg);
        check_apply_overrides(&cfg, config, ov, n);
        double ops =
            3.0 * cfg.stages * cfg.virtual_stages * (double)cfg.microbatches * cfg.iterations;
        if (ops <= MAX_SIMULATED_OPS) {
            bs_context *ctx;
            const bs_result *res;
            if (bs_context_create(&ctx) == BS_OK) {
                if (bs_context_run(ctx, &cfg, &(bs_run_options){1}, &res, &err) == BS_OK &&
                    !(res->makespan >= 0))
                    abort(); /* a finished run always has a makespan */
                bs_context_free(&ctx);
            }
        }
    }
    bs_config_free(&cfg);
    free(text);
    return 0;
}
