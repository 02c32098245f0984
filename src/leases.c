/* leases: one counter per key, in a short list (a scenario has a handful of unique feeders). */
#include "leases.h"

#include <stdlib.h>
#include <string.h>

struct lease {
    lease *next;
    int64_t next_row; /* the first row not leased yet */
    char key[];
};

int leases_take(leases *l, const char *key, int64_t *count, int64_t *first)
{
    size_t klen = key ? strnlen(key, LEASES_MAX_KEY + 1) : 0;
    if (klen == 0 || klen > LEASES_MAX_KEY) return -1;
    lease *e = l->head;
    while (e && strcmp(e->key, key))
        e = e->next;
    if (!e) {
        if (l->n >= LEASES_MAX_KEYS || !(e = calloc(1, sizeof *e + klen + 1))) return -1;
        memcpy(e->key, key, klen + 1);
        e->next = l->head;
        l->head = e;
        l->n++;
    }
    if (*count < 1) *count = 1;
    if (*count > LEASES_MAX_COUNT) *count = LEASES_MAX_COUNT;
    if (e->next_row > INT64_MAX - *count) return -1; /* cannot happen at 100k rows a call */
    *first = e->next_row;
    e->next_row += *count;
    return 0;
}

void leases_clear(leases *l)
{
    while (l->head) {
        lease *e = l->head;
        l->head = e->next;
        free(e);
    }
    l->n = 0;
}
