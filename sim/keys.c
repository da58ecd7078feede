/*
 * keys.c - bs_config_key_at: every schema table's rows, one after another.
 * A module with a config section of its own adds one row to providers[]
 * (its row count and its describe function); the tables stay where the
 * keys are read, so a key cannot be accepted without being listed.
 */
#include "internal.h"

#include <string.h>

static const struct {
    size_t (*count)(void);
    void (*describe)(size_t i, bs_config_key *out);
} providers[] = {
    {bs_config_field_count, bs_config_field_describe},
    {bs_model_key_count, bs_model_key_describe},
    {bs_tune_key_count, bs_tune_key_describe},
};

#define N_PROVIDERS (sizeof providers / sizeof providers[0])

size_t bs_config_key_count(void)
{
    size_t n = 0;
    for (size_t p = 0; p < N_PROVIDERS; p++)
        n += providers[p].count();
    return n;
}

int bs_config_key_at(size_t i, bs_config_key *out)
{
    memset(out, 0, sizeof *out);
    for (size_t p = 0; p < N_PROVIDERS; p++) {
        size_t n = providers[p].count();
        if (i < n) {
            providers[p].describe(i, out);
            return BS_OK;
        }
        i -= n;
    }
    return BS_ERR_INVALID;
}
