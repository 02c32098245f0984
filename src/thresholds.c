/* thresholds: parse "OP NUMBER[unit]" expressions on named metrics and evaluate them on totals.
 * A key is resolved again at each evaluation (a name lookup and a table scan), which keeps
 * `struct threshold` free of internals and costs nothing next to a once-a-second evaluation. */
#include "thresholds.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_LT = 1, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };

enum metric {
    M_MEAN,
    M_P50,
    M_P90,
    M_P95,
    M_P99,
    M_MAX,
    M_COUNT,
    M_ERRORS_RATE,
    M_RPS,
    M_CHECKS_RATE,
    M_ITERATIONS,
    M_REQUESTS,
};

/* How a metric's expression is read and its value shown. */
enum unit_class { U_MS, U_RATE, U_PER_S, U_NUMBER };

static const struct metric_def {
    const char *name;
    int metric;
    int unit;
    int global;   /* allowed as a bare key ("p95") */
    int per_name; /* allowed after "NAME:" */
} metric_defs[] = {
    {"mean", M_MEAN, U_MS, 1, 1},
    {"p50", M_P50, U_MS, 1, 1},
    {"p90", M_P90, U_MS, 1, 1},
    {"p95", M_P95, U_MS, 1, 1},
    {"p99", M_P99, U_MS, 1, 1},
    {"max", M_MAX, U_MS, 1, 1},
    {"count", M_COUNT, U_NUMBER, 0, 1},
    {"errors.rate", M_ERRORS_RATE, U_RATE, 1, 1},
    {"rps", M_RPS, U_PER_S, 1, 1},
    {"checks.rate", M_CHECKS_RATE, U_RATE, 1, 0},
    {"iterations", M_ITERATIONS, U_NUMBER, 1, 0},
    {"requests", M_REQUESTS, U_NUMBER, 1, 0},
};
#define NMETRICS (sizeof metric_defs / sizeof metric_defs[0])

/* A key split into its parts: `name` (not NUL-terminated, NULL for a global key) and its metric. */
typedef struct key_ref {
    const char *name;
    size_t namelen;
    const struct metric_def *def;
} key_ref;

/* Resolve "p95" or "NAME:p95" (the last ':' splits, so names may hold colons). 0 or -1. */
static int key_resolve(const char *key, key_ref *k)
{
    const char *colon = strrchr(key, ':');
    const char *mname = colon ? colon + 1 : key;
    k->name = colon ? key : NULL;
    k->namelen = colon ? (size_t)(colon - key) : 0;
    k->def = NULL;
    if (colon && k->namelen == 0) return -1;
    for (size_t i = 0; i < NMETRICS; i++) {
        const struct metric_def *d = &metric_defs[i];
        if (strcmp(d->name, mname) != 0) continue;
        if (colon ? !d->per_name : !d->global) return -1;
        k->def = d;
        return 0;
    }
    return -1;
}

static const char *op_read(const char *p, int *op)
{
    static const struct {
        const char *s;
        int op;
    } ops[] = {
        {"<=", OP_LE}, {">=", OP_GE}, {"==", OP_EQ}, {"!=", OP_NE}, {"<", OP_LT}, {">", OP_GT},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].s);
        if (strncmp(p, ops[i].s, n) == 0) {
            *op = ops[i].op;
            return p + n;
        }
    }
    return NULL;
}

/* Convert `v` written with `unit` ("" when none) into the metric's unit. Returns 0, or -1 with
 * a hint in `why`. */
static int unit_apply(const struct metric_def *d, const char *unit, double *v, const char **why)
{
    switch (d->unit) {
    case U_MS:
        *why = "a latency takes a duration (us, ms, s, m; bare numbers are ms)";
        if (!*unit || !strcmp(unit, "ms")) return 0;
        if (!strcmp(unit, "us") || !strcmp(unit, "\xc2\xb5s")) return *v /= 1000.0, 0;
        if (!strcmp(unit, "s")) return *v *= 1000.0, 0;
        if (!strcmp(unit, "m")) return *v *= 60000.0, 0;
        return -1;
    case U_RATE:
        *why = "a rate takes a percentage or a fraction (< 1% or < 0.01)";
        if (!strcmp(unit, "%")) return *v /= 100.0, 0;
        if (*unit) return -1;
        if (*v > 1.0) *why = "a rate is a fraction from 0 to 1; write a percentage with %";
        return *v > 1.0 ? -1 : 0;
    case U_PER_S:
        *why = "rps takes a number of requests per second (> 100 or > 100/s)";
        return (!*unit || !strcmp(unit, "/s")) ? 0 : -1;
    default:
        *why = "a count takes a plain number";
        return *unit ? -1 : 0;
    }
}

/* Read "OP NUMBER[unit]" for metric `d`. Returns 0, or -1 with a message in err. */
static int expr_parse(const char *key, const struct metric_def *d, const char *expr, int *op, double *value,
                      char *err, size_t errlen)
{
    const char *p = expr, *why = "expected OP NUMBER[unit], e.g. < 250ms, <= 1%, > 100";
    char unit[8];
    size_t ul = 0;
    while (isspace((unsigned char)*p))
        p++;
    p = op_read(p, op);
    if (!p) goto bad;
    char *end;
    *value = strtod(p, &end);
    if (end == p || !isfinite(*value)) goto bad;
    p = end;
    while (isspace((unsigned char)*p))
        p++;
    while (*p && !isspace((unsigned char)*p) && ul + 1 < sizeof unit)
        unit[ul++] = *p++;
    unit[ul] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    if (*p) goto bad;
    if (unit_apply(d, unit, value, &why) == 0) return 0;
bad:
    snprintf(err, errlen, "thresholds.%s: cannot read '%s': %s", key, expr, why);
    return -1;
}

/* THRESHOLDS_PLAN_KEY's "N CAP_SECONDS". */
static int plan_add(thresholds *t, const char *expr, char *err, size_t errlen)
{
    long n;
    double cap;
    if (!expr || sscanf(expr, "%ld %lf", &n, &cap) != 2 || n < 0 || !(cap >= 0)) {
        snprintf(err, errlen, "%s: expected 'ITERATIONS CAP_SECONDS', not '%s'", THRESHOLDS_PLAN_KEY,
                 expr ? expr : "");
        return -1;
    }
    t->plan_iterations = n;
    t->plan_cap_s = cap;
    return 0;
}

int thresholds_add(thresholds *t, const char *key, const char *expr, int abort, char *err, size_t errlen)
{
    key_ref k;
    if (key && !strcmp(key, THRESHOLDS_PLAN_KEY)) return plan_add(t, expr, err, errlen);
    if (!key || key_resolve(key, &k) != 0) {
        snprintf(err, errlen,
                 "unknown threshold key '%s' (use p95, errors.rate, checks.rate, rps, NAME:p99, ...)",
                 key ? key : "");
        return -1;
    }
    int op;
    double value;
    if (expr_parse(key, k.def, expr ? expr : "", &op, &value, err, errlen) != 0) return -1;
    threshold *items = realloc(t->items, (t->n + 1) * sizeof *items);
    if (!items) {
        snprintf(err, errlen, "thresholds.%s: out of memory", key);
        return -1;
    }
    t->items = items;
    threshold *th = &items[t->n];
    *th = (threshold){.key = strdup(key),
                      .expr = strdup(expr),
                      .op = op,
                      .value = value,
                      .abort = abort ? 1 : 0,
                      .ok = 1,
                      .observed = NAN};
    if (!th->key || !th->expr) {
        free(th->key);
        free(th->expr);
        snprintf(err, errlen, "thresholds.%s: out of memory", key);
        return -1;
    }
    t->n++;
    return 0;
}

void thresholds_free(thresholds *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].key);
        free(t->items[i].expr);
    }
    free(t->items);
    t->items = NULL;
    t->n = 0;
    t->plan_iterations = 0;
    t->plan_cap_s = 0;
}

/* The request entry called `name`, else the transaction entry; NULL when never seen. */
static const stats_entry *entry_find(const stats *s, const char *name, size_t len)
{
    const stats_entry *tx = NULL;
    for (size_t i = 0; i < s->nentries; i++) {
        const stats_entry *e = &s->entries[i];
        if (strncmp(e->name, name, len) != 0 || e->name[len] != '\0') continue;
        if (e->kind == STATS_REQUEST) return e;
        if (e->kind == STATS_TRANSACTION) tx = e;
    }
    return tx;
}

static double hist_metric(const stats_hist *h, int m)
{
    if (!h || stats_hist_count(h) == 0) return NAN;
    switch (m) {
    case M_MEAN:
        return stats_hist_mean(h) / 1000.0;
    case M_P50:
        return (double)stats_hist_percentile(h, 50) / 1000.0;
    case M_P90:
        return (double)stats_hist_percentile(h, 90) / 1000.0;
    case M_P95:
        return (double)stats_hist_percentile(h, 95) / 1000.0;
    case M_P99:
        return (double)stats_hist_percentile(h, 99) / 1000.0;
    default:
        return (double)stats_hist_max(h) / 1000.0;
    }
}

static double ratio(uint64_t part, uint64_t whole) { return whole ? (double)part / (double)whole : NAN; }

/* The metric's current value, NaN when it has no data. Metrics that mean nothing on an empty
 * set (latencies, rates, rps without a duration) have no data and their thresholds PASS, as in
 * k6: a threshold on a name never requested is not a failure of the system under test, and the
 * summary shows "no data" so the user sees the typo. Counts are always defined (0 is data). */
static double metric_observe(const stats *s, const key_ref *k, double duration_s)
{
    int m = k->def->metric;
    double per_s = duration_s > 0 ? 1.0 / duration_s : NAN;
    if (k->name) {
        const stats_entry *e = entry_find(s, k->name, k->namelen);
        uint64_t count = e ? e->count : 0, errors = e ? e->errors : 0;
        if (m == M_COUNT) return (double)count;
        if (m == M_ERRORS_RATE) return ratio(errors, count);
        if (m == M_RPS) return (double)count * per_s;
        return hist_metric(e ? e->hist : NULL, m);
    }
    switch (m) {
    case M_ERRORS_RATE:
        return ratio(s->request_errors, s->requests);
    case M_CHECKS_RATE:
        return ratio(s->checks_passed, s->checks_passed + s->checks_failed);
    case M_RPS:
        return (double)s->requests * per_s;
    case M_ITERATIONS:
        return (double)s->iterations;
    case M_REQUESTS:
        return (double)s->requests;
    default:
        return hist_metric(s->all, m);
    }
}

static int op_holds(int op, double a, double b)
{
    switch (op) {
    case OP_LT:
        return a < b;
    case OP_LE:
        return a <= b;
    case OP_GT:
        return a > b;
    case OP_GE:
        return a >= b;
    case OP_EQ:
        return a == b;
    default:
        return a != b;
    }
}

/* The warning for a threshold that measured nothing: a name that never ran, or no requests. */
static void warn_nodata(threshold *th, const key_ref *k)
{
    if (th->warned) return;
    th->warned = 1;
    if (k->name)
        fprintf(stderr,
                "parrot: warning: threshold '%s' has no data: no request or transaction named '%.*s' ran "
                "(a typo?); it passes\n",
                th->key, (int)k->namelen, k->name);
    else
        fprintf(stderr, "parrot: warning: threshold '%s' has no data (nothing to measure); it passes\n",
                th->key);
}

/* The plan's check: the duration cap ended a closed run before its iterations were done. */
static void warn_plan(thresholds *t, const stats *s, double duration_s)
{
    if (!t->plan_iterations || s->iterations >= (uint64_t)t->plan_iterations) return;
    if (duration_s < t->plan_cap_s - 0.01) return; /* stopped early (Ctrl-C, abort): not the cap */
    fprintf(stderr,
            "parrot: warning: the run reached its duration cap (%gs) after %llu of its %ld iterations; "
            "give a longer duration to run them all\n",
            t->plan_cap_s, (unsigned long long)s->iterations, t->plan_iterations);
    t->plan_iterations = 0; /* once */
}

int thresholds_eval(thresholds *t, const stats *s, double duration_s, int only_abort)
{
    int failed = 0;
    for (size_t i = 0; i < t->n; i++) {
        threshold *th = &t->items[i];
        key_ref k;
        if (only_abort && !th->abort) continue;
        if (key_resolve(th->key, &k) != 0) continue; /* cannot happen: checked at add time */
        th->observed = metric_observe(s, &k, duration_s);
        th->nodata = isnan(th->observed);
        th->ok = th->nodata ? 1 : op_holds(th->op, th->observed, th->value);
        if (!th->ok) failed++;
        if (th->nodata && !only_abort) warn_nodata(th, &k);
    }
    if (!only_abort) warn_plan(t, s, duration_s);
    return failed;
}

static void fmt_thousands(char *buf, size_t len, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < len) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

const char *thresholds_describe(const threshold *th, char *buf, size_t len)
{
    key_ref k;
    double v = th->observed;
    if (isnan(v) || key_resolve(th->key, &k) != 0) {
        snprintf(buf, len, "no data");
        return buf;
    }
    switch (k.def->unit) {
    case U_MS:
        if (v < 1.0)
            snprintf(buf, len, "%.0f\xc2\xb5s", v * 1000.0);
        else if (v < 1000.0)
            snprintf(buf, len, "%.2fms", v);
        else
            snprintf(buf, len, "%.2fs", v / 1000.0);
        break;
    case U_RATE:
        snprintf(buf, len, "%.2f%%", v * 100.0);
        break;
    case U_PER_S:
        snprintf(buf, len, "%.1f/s", v);
        break;
    default:
        fmt_thousands(buf, len, (uint64_t)(v < 0 ? 0 : v));
        break;
    }
    return buf;
}
