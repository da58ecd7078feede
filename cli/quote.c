/*
 * quote.c - shell words and gnuplot file names (see quote.h).
 */
#include "quote.h"

#include <string.h>

long cli_shell_quote(char *buf, size_t size, const char *s)
{
    size_t n = 0;
    if (size == 0)
        return -1;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 >= size)                                                                         \
            goto too_long;                                                                         \
        buf[n++] = (c);                                                                            \
    } while (0)
    PUT('\'');
    for (; *s; s++) {
        if (*s == '\'') { /* close the quote, an escaped quote, reopen */
            PUT('\'');
            PUT('\\');
            PUT('\'');
            PUT('\'');
        } else {
            PUT(*s);
        }
    }
    PUT('\'');
#undef PUT
    buf[n] = '\0';
    return (long)n;
too_long:
    buf[0] = '\0';
    return -1;
}

long cli_gnuplot_path(char *buf, size_t size, const char *path)
{
    size_t len = strlen(path);
    int prefix = path[0] != '/';
    if (len == 0 || size == 0 || len + (prefix ? 2 : 0) + 1 > size) {
        if (size)
            buf[0] = '\0';
        return -1;
    }
    if (prefix)
        memcpy(buf, "./", 2);
    memcpy(buf + (prefix ? 2 : 0), path, len + 1);
    return (long)(len + (prefix ? 2 : 0));
}
