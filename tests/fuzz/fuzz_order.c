/*
 * fuzz_order.c - libFuzzer target for the custom schedule text reader
 * (sim/order_text.c through sim/schedule_custom.c).
 *
 * Input layout: an optional header line "P M V ITERATIONS PLACEMENT UPDATES"
 * (PLACEMENT: looped, v, or e followed by one device digit per chunk;
 * UPDATES: flush, no-flush or per-backward), then the PyTorch pipelining
 * text (one row per device). Without a header, the first row that does not
 * parse as one is order text and P=2, M=2, V=1, one iteration, looped, flush.
 *
 * Each input is built, validated and simulated. Two properties are checked
 * on top of "no crash, no sanitizer report":
 *   - a failure always leaves a message in the error record;
 *   - a program that runs, written back with bs_order_write and read again,
 *     gives the same op list (the reader and the writer are inverses).
 */
#include "bubblesim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int clamp(int x, int lo, int hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Reads the header line into cfg; returns how many bytes it used (0: no
 * header). */
static size_t read_header(bs_config *cfg, const char *text)
{
    int p, m, v, it;
    char placement[40] = "", updates[16] = "";
    const char *eol = strchr(text, '\n');
    if (!eol || sscanf(text, "%d %d %d %d %39s %15s", &p, &m, &v, &it, placement, updates) != 6)
        return 0;
    cfg->stages = clamp(p, 1, 16);
    cfg->microbatches = clamp(m, 1, 16);
    cfg->virtual_stages = clamp(v, 1, 4);
    cfg->iterations = clamp(it, 1, 3);
    if (strcmp(placement, "v") == 0) {
        cfg->placement = BS_PLACEMENT_V;
    } else if (placement[0] == 'e') {
        size_t n = strlen(placement + 1);
        cfg->placement_map = malloc((n ? n : 1) * sizeof *cfg->placement_map);
        if (cfg->placement_map) {
            for (size_t i = 0; i < n; i++)
                cfg->placement_map[i] = (uint16_t)((unsigned char)placement[1 + i] % 16u);
            cfg->placement_count = n;
            cfg->placement = BS_PLACEMENT_EXPLICIT;
        }
    }
    if (strcmp(updates, "no-flush") == 0)
        cfg->updates = BS_UPDATES_NO_FLUSH;
    else if (strcmp(updates, "per-backward") == 0)
        cfg->updates = BS_UPDATES_PER_BACKWARD;
    return (size_t)(eol + 1 - text);
}

/* The round trip: the written text of a program, read back under the same
 * config, is the same program. */
static void check_round_trip(const bs_config *cfg, const bs_program *prog)
{
    char *written = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&written, &len);
    if (!f)
        return;
    bs_error err;
    int rc = bs_order_write(f, prog, prog->per_iteration, &err);
    fclose(f);
    if (rc != BS_OK) {
        free(written);
        return;
    }
    bs_config again;
    bs_config_init(&again);
    if (bs_config_copy(&again, cfg, &err) != BS_OK) {
        free(written);
        return;
    }
    free(again.order);
    again.order = written; /* owned by `again` now */
    bs_context *ctx;
    const bs_result *res;
    if (bs_context_create(&ctx) == BS_OK) {
        if (bs_context_run(ctx, &again, NULL, &res, &err) != BS_OK)
            abort(); /* a written program must read back */
        const bs_program *back = res->timeline->program;
        if (back->op_count != prog->op_count ||
            memcmp(back->ops, prog->ops, prog->op_count * sizeof *prog->ops) != 0)
            abort();
        bs_context_free(&ctx);
    }
    bs_config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    bs_config cfg;
    bs_config_init(&cfg);
    strcpy(cfg.schedule, "custom");
    cfg.stages = 2;
    cfg.microbatches = 2;
    size_t skip = read_header(&cfg, text);
    cfg.order = malloc(strlen(text + skip) + 1);
    if (!cfg.order) {
        bs_config_free(&cfg);
        free(text);
        return 0;
    }
    strcpy(cfg.order, text + skip);
    snprintf(cfg.order_source, sizeof cfg.order_source, "fuzz.txt");

    bs_context *ctx;
    const bs_result *res;
    bs_error err;
    if (bs_context_create(&ctx) == BS_OK) {
        err.message[0] = '\0';
        int rc = bs_context_run(ctx, &cfg, &(bs_run_options){1}, &res, &err);
        if (rc != BS_OK && err.message[0] == '\0')
            abort(); /* every failure says why */
        if (rc == BS_OK) {
            if (!(res->makespan >= 0))
                abort();
            check_round_trip(&cfg, res->timeline->program);
        }
        bs_context_free(&ctx);
    }
    bs_config_free(&cfg);
    free(text);
    return 0;
}
