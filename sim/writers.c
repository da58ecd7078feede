/*
 * writers.c - the table of output writers, chosen by name (like dav1d's
 * muxers). Adding a format is one write_*.c file and one row here.
 */
#include "internal.h"

#include <string.h>

static const bs_writer *const writers[] = {&bs_writer_table, &bs_writer_json, &bs_writer_trace};

const bs_writer *bs_writer_find(const char *name)
{
    for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++)
        if (strcmp(writers[i]->name, name) == 0)
            return writers[i];
    return NULL;
}
