/*
 * fuzz_quote.c - libFuzzer target for the quoting that carries file names
 * and titles to gnuplot and to the NAME.sh script beside every chart
 * (cli/quote.c). The input, up to its first NUL, is one name. Properties:
 *   - cli_shell_quote's word, read back by the POSIX shell's quoting rules
 *     (single quotes take every byte literally; outside them only the
 *     escaped quote \' occurs), is exactly the name, and nothing outside
 *     the quotes could expand ($, `, globs, white space, a newline);
 *   - cli_gnuplot_path's name is the path behind "./" (or the absolute path
 *     itself), so it never starts with a byte gnuplot treats specially
 *     ('<', '|', '$', '-', '+', '~');
 *   - both refuse, with an empty buffer, a result that does not fit.
 * A broken property aborts.
 */
#include "quote.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reads a shell word made only of '...' runs and \' escapes into out;
 * returns its length, or -1 on any other byte outside the quotes. */
static long shell_unquote(const char *word, char *out)
{
    size_t n = 0;
    int quoted = 0;
    for (const char *p = word; *p; p++) {
        if (quoted) {
            if (*p == '\'')
                quoted = 0;
            else
                out[n++] = *p;
        } else if (*p == '\'') {
            quoted = 1;
        } else if (*p == '\\' && p[1] == '\'') {
            out[n++] = '\'';
            p++;
        } else {
            return -1; /* an unquoted byte: the shell could expand it */
        }
    }
    if (quoted)
        return -1;
    out[n] = '\0';
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *name = malloc(len + 1), *word = malloc(4 * len + 3), *back = malloc(4 * len + 3);
    char *path = malloc(len + 3), small[8];
    if (!name || !word || !back || !path)
        abort();
    memcpy(name, data, len);
    name[len] = '\0';

    long w = cli_shell_quote(word, 4 * len + 3, name);
    if (w < 0 || (size_t)w != strlen(word))
        abort();
    if (shell_unquote(word, back) != (long)len || memcmp(back, name, len) != 0)
        abort();
    if (cli_shell_quote(small, sizeof small, name) < 0 ? small[0] != '\0'
                                                       : strlen(small) >= sizeof small)
        abort();

    long g = cli_gnuplot_path(path, len + 3, name);
    if (len == 0) {
        if (g != -1)
            abort();
    } else {
        const char *rest = name[0] == '/' ? path : path + 2;
        if (g < 0 || (name[0] != '/' && memcmp(path, "./", 2) != 0) || strcmp(rest, name) != 0 ||
            strchr("<|$-+~", path[0]) != NULL)
            abort();
    }
    free(name);
    free(word);
    free(back);
    free(path);
    return 0;
}
