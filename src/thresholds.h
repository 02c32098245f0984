/* thresholds: pass/fail criteria on run statistics, as k6 has them. A threshold is a key
 * (`p95`, `errors.rate`, `checks.rate`, `rps`, `mean`, `NAME:p99`, ...) and an expression
 * ("< 250ms", "<= 1%", "> 100"), optionally aborting the run as soon as it is crossed. */
#ifndef PARROT_THRESHOLDS_H
#define PARROT_THRESHOLDS_H

#include <stddef.h>
#include "stats.h"

typedef struct threshold {
    char *key;       /* owned: "p95", "errors.rate", "home:p99", ... */
    char *expr;      /* owned: as written, e.g. "< 250ms" */
    int op;          /* internal */
    double value;    /* in the metric's unit (ms for latency, fraction for rates, req/s) */
    int abort;       /* stop the run as soon as it fails */
    int ok;          /* result of the last evaluation */
    double observed; /* metric value at the last evaluation */
    int nodata;      /* the last evaluation found nothing to measure (it passed, as in k6) */
    int warned;      /* the no-data warning was printed */
} threshold;

typedef struct thresholds {
    threshold *items; /* owned */
    size_t n;
    /* The plan's check (not a threshold: never fails a run): a closed model asked for
     * `plan_iterations` within a duration cap of `plan_cap_s`; the final evaluation warns when the
     * cap ended the run first. Set through the key THRESHOLDS_PLAN_KEY. */
    long plan_iterations;
    double plan_cap_s;
} thresholds;

/* thresholds_add(t, THRESHOLDS_PLAN_KEY, "N CAP_SECONDS", ...) records the plan's iteration
 * count and duration cap (parrot.load passes them this way with the scenario's thresholds). */
#define THRESHOLDS_PLAN_KEY "_plan.iterations"

/* Add one threshold; returns 0, or -1 with a one-line reason ("thresholds.p95: cannot read
 * '<< 3ms': expected OP NUMBER[unit]") in `err`. */
int thresholds_add(thresholds *t, const char *key, const char *expr, int abort, char *err, size_t errlen);
void thresholds_free(thresholds *t);
/* Evaluate every threshold (or only those with abort set) on the totals `s` over `duration_s`.
 * Returns the number that failed. The final evaluation (`only_abort` 0) also prints, once each,
 * a one-line warning on stderr for a threshold with no data (a typo in a name is the usual
 * cause) and for a run whose duration cap came before its planned iterations. */
int thresholds_eval(thresholds *t, const stats *s, double duration_s, int only_abort);

/* The observed value of `th` as a user reads it, into buf: "3.40ms", "0.52%", "411.5/s",
 * "1,234", or "no data" (a metric with nothing to measure passes its threshold). Returns buf. */
const char *thresholds_describe(const threshold *th, char *buf, size_t len);

#endif
