/*
 * fuzz_config.c - libFuzzer target for the config reader and --set.
 *
 * Input layout: zero or more override lines "KEY=VALUE\n", then a line
 * holding only "---", then the config text. Without a "---" line the whole
 * input is config text. A config that parses is also simulated when it is
 * small (so the fuzzer explores the engine without spending its time on
 * large runs); every failure must come back as an error code with a message.
 * The key-by-key check bs_config_check_keys runs on every input too.
 */
#include "bubblesim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 16
#define MAX_SIMULATED_OPS 20000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    bs_error err;
    bs_config_init(&cfg);
    int parsed = bs_config_parse(&cfg, config, "fuzz.json", ov, n, &err) == BS_OK;
    /* The key-by-key check (a sweep's base) accepts whatever the full parse
     * accepts, and fails only with a message. */
    err.message[0] = '\0';
    int keys_rc = bs_config_check_keys(config, "fuzz.json", ov, n, &err);
    if ((parsed && keys_rc != BS_OK) || (keys_rc != BS_OK && !err.message[0]))
        abort();
    if (parsed) {
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
