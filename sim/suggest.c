/*
 * suggest.c - "did you mean" for misspelt names: a config key, a --set
 * path, a schedule name.
 *
 * A name is compared with each known name by the optimal string alignment
 * distance (insertions, deletions, substitutions and swaps of neighbours
 * each count one), case-insensitively so that "Stages" finds "stages". A
 * suggestion is made only when it is close: at most one edit for names of
 * up to four letters, else at most a third of the longer name, so "xyz"
 * suggests nothing rather than a random key.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Longer names are never a typo of a key (the longest key has 31
 * letters); skipping them keeps the cost bounded whatever the input. */
#define SUGGEST_MAX_LEN 48

void bs_suggest_init(bs_suggest *s, const char *word)
{
    s->word = word;
    s->best = NULL;
    s->distance = SUGGEST_MAX_LEN + 1;
}

static int lower(char c)
{
    return tolower((unsigned char)c);
}

/* Optimal string alignment distance of a (length n) and b (length m), both
 * at most SUGGEST_MAX_LEN; three rows of the usual table. */
static int distance(const char *a, size_t n, const char *b, size_t m)
{
    int rows[3][SUGGEST_MAX_LEN + 1];
    int *two_back = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cost = lower(a[i - 1]) != lower(b[j - 1]);
            int best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && two_back[j - 2] + 1 < best)
                best = two_back[j - 2] + 1;
            cur[j] = best;
        }
        int *t = two_back;
        two_back = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

void bs_suggest_consider(bs_suggest *s, const char *candidate)
{
    if (!s->word || !candidate)
        return;
    size_t n = strlen(s->word), m = strlen(candidate);
    if (n == 0 || n > SUGGEST_MAX_LEN || m > SUGGEST_MAX_LEN)
        return;
    size_t longer = n > m ? n : m;
    int limit = longer <= 4 ? 1 : (int)(longer / 3);
    int d = distance(s->word, n, candidate, m);
    if (d <= limit && d < s->distance) {
        s->distance = d;
        s->best = candidate;
    }
}

const char *bs_suggest_hint(const bs_suggest *s, char *buf, size_t size)
{
    if (!s->best)
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, "did you mean \"%s\"? ", s->best);
    return buf;
}
