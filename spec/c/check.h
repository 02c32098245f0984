/* check.h: the C unit tests' tiny harness. Each CHECK prints a TAP line ("ok - ..." or
 * "not ok - ... at file:line"); spec/run.sh counts them. main() ends with `return check_done();`. */
#ifndef PARROT_CHECK_H
#define PARROT_CHECK_H
#include <stdio.h>

static int check_failed_n, check_passed_n;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        int check_ok_ = !!(cond);                                                                            \
        if (check_ok_) {                                                                                     \
            check_passed_n++;                                                                                \
            printf("ok - ");                                                                                 \
        } else {                                                                                             \
            check_failed_n++;                                                                                \
            printf("not ok - ");                                                                             \
        }                                                                                                    \
        printf(__VA_ARGS__);                                                                                 \
        if (!check_ok_) printf("  (%s:%d: %s)", __FILE__, __LINE__, #cond);                                  \
        printf("\n");                                                                                        \
        fflush(stdout);                                                                                      \
    } while (0)

static inline int check_done(void) { return check_failed_n ? 1 : 0; }
#endif
