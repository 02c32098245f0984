/* leases: the queen's counters behind parrot.csv's unique mode. A feeder (named by a key) asks for
 * rows and gets a range nobody else in the run gets, so no row is used twice across the cluster,
 * whoever joins or leaves; ranges are never taken back. */
#ifndef PARROT_LEASES_H
#define PARROT_LEASES_H

#include <stdint.h>

#define LEASES_MAX_KEYS 1024    /* distinct feeders in one run */
#define LEASES_MAX_KEY 512      /* bytes of a key */
#define LEASES_MAX_COUNT 100000 /* rows in one lease */

typedef struct lease lease;

typedef struct leases {
    lease *head; /* owned list, one entry per key */
    int n;
} leases; /* zeroed = empty */

/* Lease *count rows of `key` (clamped to 1..LEASES_MAX_COUNT; the count given is written back):
 * 0 and *first, the first row of [*first, *first + *count), which no earlier call got; -1 when
 * the key is empty or too long, or the table is full. */
int leases_take(leases *l, const char *key, int64_t *count, int64_t *first);
/* Forget every key: a new run starts from row 0 (and the end of the queen frees them). */
void leases_clear(leases *l);

#endif
