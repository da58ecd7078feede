/*
 * alloc.c - the one place the library allocates memory and formats errors.
 *
 * Every array size is a product of configuration values, so every
 * allocation checks the multiplication for overflow first; a size that does
 * not fit in size_t is treated exactly like an allocation failure.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int mul_overflows(size_t count, size_t size)
{
    return size != 0 && count > SIZE_MAX / size;
}

void *bs_alloc_array(size_t count, size_t size)
{
    if (mul_overflows(count, size))
        return NULL;
    return malloc(count && size ? count * size : 1);
}

void *bs_zalloc_array(size_t count, size_t size)
{
    if (mul_overflows(count, size))
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

int bs_realloc_array(void **p, size_t count, size_t size)
{
    if (mul_overflows(count, size))
        return -1;
    void *q = realloc(*p, count && size ? count * size : 1);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

void bs_free(void *p)
{
    free(p);
}

void bs_text_free(char *text)
{
    free(text);
}

int bs_fail(bs_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        /* Messages echo names and values from the input; a control byte
         * (an escape sequence, a line break) would reach the user's
         * terminal or split a log line, so it is shown as '?'. */
        for (char *c = err->message; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    return code;
}
