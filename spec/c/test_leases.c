/* test_leases: the queen's row counters behind parrot.csv's unique mode hand each asker a range
 * of rows no earlier asker got, per feeder key, and start over for a new run. */
#include "check.h"
#include "leases.h"

#include <string.h>

int main(void)
{
    leases l = {0};
    int64_t count = 10, first = -1;
    CHECK(leases_take(&l, "users.csv#1", &count, &first) == 0 && first == 0 && count == 10,
          "the first lease of a feeder starts at row 0");
    count = 5;
    CHECK(leases_take(&l, "users.csv#1", &count, &first) == 0 && first == 10 && count == 5,
          "the next one starts where it ended (rows 10-14), whoever asks");
    count = 3;
    CHECK(leases_take(&l, "items.csv#2", &count, &first) == 0 && first == 0, "each feeder key counts apart");
    count = 0;
    CHECK(leases_take(&l, "users.csv#1", &count, &first) == 0 && count == 1 && first == 15,
          "a count under 1 is taken as 1");
    count = 10 * (int64_t)LEASES_MAX_COUNT;
    CHECK(leases_take(&l, "users.csv#1", &count, &first) == 0 && count == LEASES_MAX_COUNT && first == 16,
          "a count over the cap is cut to %d", LEASES_MAX_COUNT);
    CHECK(leases_take(&l, "", &count, &first) == -1 && leases_take(&l, NULL, &count, &first) == -1,
          "an empty key is refused");
    char big[LEASES_MAX_KEY + 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(leases_take(&l, big, &count, &first) == -1, "a key over %d bytes is refused", LEASES_MAX_KEY);
    int refused = 0;
    for (int i = 0; i < LEASES_MAX_KEYS + 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "f%d", i);
        count = 1;
        refused += leases_take(&l, key, &count, &first) == -1;
    }
    CHECK(l.n == LEASES_MAX_KEYS && refused == 7, "at most %d keys a run (%d refused)", LEASES_MAX_KEYS,
          refused);
    leases_clear(&l);
    count = 4;
    CHECK(l.n == 0 && leases_take(&l, "users.csv#1", &count, &first) == 0 && first == 0,
          "a new run (leases_clear) starts over at row 0");
    leases_clear(&l);
    return check_done();
}
