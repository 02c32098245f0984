/* test_thresholds: how a scenario's `thresholds = { p95 = "< 250ms", ... }` is read and judged.
 * Every key and unit a user can write, the one-line errors for what they cannot, and evaluation
 * on statistics recorded the way the engine records them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "thresholds.h"

static char err[256];

static int add(thresholds *t, const char *key, const char *expr)
{
    err[0] = '\0';
    return thresholds_add(t, key, expr, 0, err, sizeof err);
}

/* The value a threshold was read as, in the metric's unit (ms, fraction, req/s, count). */
static double value_of(const char *key, const char *expr)
{
    thresholds t = {0};
    double v = add(&t, key, expr) == 0 ? t.items[0].value : NAN;
    thresholds_free(&t);
    return v;
}

static void test_parse_units(void)
{
    CHECK(value_of("p95", "< 250ms") == 250, "p95 < 250ms is 250 ms");
    CHECK(value_of("p95", "< 250") == 250, "a bare latency is in ms");
    CHECK(value_of("p99", "<= 1.5s") == 1500, "seconds convert to ms");
    CHECK(value_of("max", "< 2m") == 120000, "minutes convert to ms");
    CHECK(value_of("mean", "< 500us") == 0.5, "microseconds convert to ms");
    CHECK(value_of("p50", "< 500\xc2\xb5s") == 0.5, "µs is accepted too");
    CHECK(value_of("p90", "  <   3ms  ") == 3, "spaces around the parts are fine");
    CHECK(value_of("errors.rate", "< 1%") == 0.01, "a percentage becomes a fraction");
    CHECK(value_of("errors.rate", "< 0.01") == 0.01, "a bare rate is a fraction");
    CHECK(value_of("checks.rate", ">= 99.5%") == 0.995, "checks.rate is a pass rate");
    CHECK(value_of("rps", "> 100") == 100, "rps takes a plain number");
    CHECK(value_of("rps", "> 100/s") == 100, "rps may say /s");
    CHECK(value_of("iterations", ">= 10") == 10, "iterations is a count");
    CHECK(value_of("requests", "== 1000") == 1000, "requests is a count");
    CHECK(value_of("home:p99", "< 400ms") == 400, "NAME:p99");
    CHECK(value_of("home:count", "> 5") == 5, "NAME:count");
    CHECK(value_of("home:errors.rate", "< 5%") == 0.05, "NAME:errors.rate");
    CHECK(value_of("home:rps", ">= 2") == 2, "NAME:rps");
    CHECK(value_of("GET http://h:8080/x:mean", "< 9ms") == 9, "a name may hold colons");
}

static void test_parse_ops(void)
{
    const char *ops[] = {"<", "<=", ">", ">=", "==", "!="};
    thresholds t = {0};
    int good = 1;
    for (size_t i = 0; i < 6; i++) {
        char expr[16];
        snprintf(expr, sizeof expr, "%s 5ms", ops[i]);
        good &= add(&t, "p95", expr) == 0;
    }
    CHECK(good && t.n == 6, "every operator is accepted: < <= > >= == !=");
    CHECK(!strcmp(t.items[1].key, "p95") && !strcmp(t.items[1].expr, "<= 5ms"),
          "key and expression are kept as written");
    thresholds_free(&t);
    CHECK(t.n == 0 && t.items == NULL, "thresholds_free leaves an empty set");
}

static void test_parse_errors(void)
{
    thresholds t = {0};
    CHECK(add(&t, "p95", "<< 3ms") == -1 &&
              !strcmp(err, "thresholds.p95: cannot read '<< 3ms': "
                           "expected OP NUMBER[unit], e.g. < 250ms, <= 1%, > 100"),
          "a bad operator names the key and the expression: %s", err);
    CHECK(add(&t, "p95", "250ms") == -1, "an expression needs an operator");
    CHECK(add(&t, "p95", "< ms") == -1, "an expression needs a number");
    CHECK(add(&t, "p95", "< 3 ms extra") == -1, "trailing words are refused");
    CHECK(add(&t, "p95", "< nan") == -1 && add(&t, "p95", "< inf") == -1, "the number must be finite");
    CHECK(add(&t, "p95", "< 3xs") == -1 && strstr(err, "a latency takes a duration"),
          "an unknown unit says which units fit: %s", err);
    CHECK(add(&t, "p95", "< 1%") == -1, "a latency does not take %%");
    CHECK(add(&t, "errors.rate", "< 5ms") == -1 && strstr(err, "thresholds.errors.rate: cannot read '< 5ms'"),
          "a rate does not take a duration: %s", err);
    CHECK(add(&t, "errors.rate", "< 5") == -1 && strstr(err, "percentage with %"),
          "a rate over 1 is refused with a hint to write %%: %s", err);
    CHECK(add(&t, "rps", "> 5ms") == -1, "rps does not take a duration");
    CHECK(add(&t, "iterations", "> 5%") == -1, "a count does not take %%");
    CHECK(add(&t, "p97", "< 1ms") == -1 &&
              !strcmp(err,
                      "unknown threshold key 'p97' (use p95, errors.rate, checks.rate, rps, NAME:p99, ...)"),
          "an unknown key lists the known ones: %s", err);
    CHECK(add(&t, "home:p97", "< 1ms") == -1 && strstr(err, "'home:p97'"), "an unknown NAME:METRIC");
    CHECK(add(&t, "home:checks.rate", "> 1%") == -1, "checks.rate is global only");
    CHECK(add(&t, ":p95", "< 1ms") == -1, "NAME:METRIC needs a name");
    CHECK(add(&t, "count", "> 1") == -1, "count needs a name (use requests)");
    CHECK(add(&t, "p95", "") == -1 && add(&t, "p95", NULL) == -1, "an empty expression is an error");
    CHECK(t.n == 0, "nothing is added on error");
    thresholds_free(&t);
}

/* home: 96 requests at 500 us and 4 at 1000 us, 3 of them failed (200 OK otherwise);
 * slow: 10 requests at 250 ms; checkout: a transaction; 9 of 10 checks passed. */
static stats *make_stats(void)
{
    stats *s = stats_new();
    int home = stats_name_id(s, "home", STATS_REQUEST), slow = stats_name_id(s, "slow", STATS_REQUEST);
    for (int i = 0; i < 100; i++)
        stats_request(s, home, i < 96 ? 500 : 1000, i < 3 ? 500 : 200, i < 3 ? ERR_STATUS : ERR_NONE, 100,
                      10);
    for (int i = 0; i < 10; i++)
        stats_request(s, slow, 250000, 200, ERR_NONE, 100, 10);
    int tx = stats_name_id(s, "checkout", STATS_TRANSACTION);
    stats_transaction(s, tx, 2000000, 0);
    stats_transaction(s, tx, 2000000, 1);
    int ck = stats_name_id(s, "home is up", STATS_CHECK);
    for (int i = 0; i < 10; i++)
        stats_check(s, ck, i != 0);
    s->iterations = 42;
    return s;
}

/* Evaluate one threshold on `s` over `dur` seconds: 1 passed, 0 failed. */
static int passes(const stats *s, double dur, const char *key, const char *expr)
{
    thresholds t = {0};
    if (add(&t, key, expr) != 0) return -1;
    int failed = thresholds_eval(&t, s, dur, 0);
    int ok = t.items[0].ok;
    thresholds_free(&t);
    return failed == 0 && ok;
}

static void test_eval(void)
{
    stats *s = make_stats();
    CHECK(passes(s, 10, "home:p95", "<= 500us") == 1, "home:p95 <= 500us passes on its boundary");
    CHECK(passes(s, 10, "home:p95", "< 500us") == 0, "home:p95 < 500us fails on its boundary");
    CHECK(passes(s, 10, "home:p99", "<= 1ms") == 1 && passes(s, 10, "home:p99", "< 1ms") == 0,
          "home:p99 is 1 ms");
    CHECK(passes(s, 10, "p95", "< 251ms") == 1 && passes(s, 10, "p95", "< 249ms") == 0,
          "p95 over all requests is the slow name's 250 ms");
    CHECK(passes(s, 10, "max", "> 249ms") == 1, "max over all requests");
    CHECK(passes(s, 10, "home:mean", "> 0.5ms") == 1 && passes(s, 10, "home:mean", "< 0.6ms") == 1,
          "home:mean is 0.52 ms");
    CHECK(passes(s, 10, "errors.rate", "< 2%") == 0 && passes(s, 10, "errors.rate", "< 3%") == 1,
          "errors.rate is 3 of 110 (2.7%%)");
    CHECK(passes(s, 10, "home:errors.rate", "<= 3%") == 1 && passes(s, 10, "home:errors.rate", "< 0.03") == 0,
          "home:errors.rate is exactly 3%%");
    CHECK(passes(s, 10, "checks.rate", ">= 90%") == 1 && passes(s, 10, "checks.rate", "> 0.9") == 0,
          "checks.rate is the pass rate, 9 of 10");
    CHECK(passes(s, 10, "rps", ">= 11") == 1 && passes(s, 10, "rps", "> 11") == 0,
          "rps is 110 requests over 10 s");
    CHECK(passes(s, 5, "rps", "== 22"), "rps follows the duration given");
    CHECK(passes(s, 10, "home:rps", "== 10") && passes(s, 10, "home:count", "== 100"),
          "home:rps, home:count");
    CHECK(passes(s, 10, "requests", "== 110") && passes(s, 10, "iterations", "== 42"),
          "requests, iterations");
    CHECK(passes(s, 10, "checkout:p95", "< 2.01s") && passes(s, 10, "checkout:errors.rate", "== 50%"),
          "a transaction name works like a request name");
    CHECK(passes(s, 10, "ghost:p95", "< 1ms") == 1, "a name never requested has no data and passes");
    CHECK(passes(s, 10, "ghost:count", "> 0") == 0, "a count on a name never requested is 0");
    CHECK(passes(s, 0, "rps", "> 1000") == 1, "rps without a duration has no data and passes");
    stats_free(s);

    stats *empty = stats_new();
    CHECK(passes(empty, 10, "p95", "< 1ms") && passes(empty, 10, "errors.rate", "< 1%") &&
              passes(empty, 10, "checks.rate", "> 99%"),
          "latency and rates pass when nothing was recorded");
    stats_free(empty);
}

static void test_only_abort_and_describe(void)
{
    stats *s = make_stats();
    thresholds t = {0};
    char buf[64];
    thresholds_add(&t, "p95", "< 1ms", 0, err, sizeof err);
    thresholds_add(&t, "errors.rate", "< 1%", 1, err, sizeof err);
    thresholds_add(&t, "ghost:p99", "< 1ms", 1, err, sizeof err);
    CHECK(t.n == 3 && t.items[1].abort && !t.items[0].abort, "abort is kept per threshold");
    CHECK(thresholds_eval(&t, s, 10, 1) == 1, "only_abort evaluates only the aborting ones");
    CHECK(t.items[0].ok == 1 && isnan(t.items[0].observed), "the others keep their last result");
    CHECK(t.items[1].ok == 0, "errors.rate < 1%% crossed");
    CHECK(thresholds_eval(&t, s, 10, 0) == 2, "a full evaluation counts every failure");
    thresholds_describe(&t.items[0], buf, sizeof buf);
    CHECK(!strncmp(buf, "250.", 4) && !strcmp(buf + strlen(buf) - 2, "ms"), "describe p95: %s", buf);
    CHECK(!strcmp(thresholds_describe(&t.items[1], buf, sizeof buf), "2.73%"), "describe a rate: %s", buf);
    CHECK(!strcmp(thresholds_describe(&t.items[2], buf, sizeof buf), "no data"), "describe no data: %s", buf);
    thresholds_free(&t);
    thresholds_add(&t, "rps", "> 1", 0, err, sizeof err);
    thresholds_add(&t, "requests", "> 1", 0, err, sizeof err);
    thresholds_add(&t, "home:p95", "> 1", 0, err, sizeof err);
    thresholds_eval(&t, s, 10, 0);
    CHECK(!strcmp(thresholds_describe(&t.items[0], buf, sizeof buf), "11.0/s"), "describe rps: %s", buf);
    CHECK(!strcmp(thresholds_describe(&t.items[1], buf, sizeof buf), "110"), "describe a count: %s", buf);
    CHECK(!strcmp(thresholds_describe(&t.items[2], buf, sizeof buf), "500\xc2\xb5s"), "describe µs: %s", buf);
    thresholds_free(&t);
    stats_free(s);
}

/* What thresholds_eval printed on stderr (caller frees). */
static char *eval_stderr(thresholds *t, const stats *s, double dur, int only_abort, int *failed)
{
    char path[] = "/tmp/parrot-test-thresholds-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    *failed = thresholds_eval(t, s, dur, only_abort);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *buf = calloc(1, 4096);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, 4095);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

/* A threshold that measured nothing passes, as in k6, but is marked and warned about once:
 * a typo in a request name must not pass unseen. */
static void test_nodata_warning(void)
{
    stats *s = make_stats();
    thresholds t = {0};
    int failed;
    add(&t, "ghost:p99", "< 1ms");
    add(&t, "home:p95", "< 1s");
    char *out = eval_stderr(&t, s, 10, 1, &failed);
    CHECK(!*out, "the per-second evaluation of abort thresholds warns of nothing: [%s]", out);
    free(out);
    out = eval_stderr(&t, s, 10, 0, &failed);
    CHECK(failed == 0 && t.items[0].ok && t.items[0].nodata && !t.items[1].nodata,
          "no data: passes, marked nodata");
    CHECK(strstr(out,
                 "warning: threshold 'ghost:p99' has no data: no request or transaction named 'ghost' ran") &&
              !strchr(strchr(out, '\n') + 1, '\n'),
          "one warning line names the threshold and the name: [%.*s]", (int)strcspn(out, "\n"), out);
    free(out);
    out = eval_stderr(&t, s, 10, 0, &failed);
    CHECK(!*out, "the warning is printed once");
    free(out);
    thresholds_free(&t);
    stats_free(s);
}

/* parrot.load passes the closed model's iterations and duration cap: a run that reached the cap
 * first gets a warning (never a failure); a run stopped early does not. */
static void test_plan_iterations(void)
{
    stats *s = make_stats();
    thresholds t = {0};
    int failed;
    CHECK(add(&t, THRESHOLDS_PLAN_KEY, "30 2") == 0 && t.n == 0 && t.plan_iterations == 30 &&
              t.plan_cap_s == 2,
          "the plan is recorded, not listed as a threshold");
    CHECK(add(&t, THRESHOLDS_PLAN_KEY, "lots") == -1, "a malformed plan is refused: %s", err);
    s->iterations = 4;
    char *out = eval_stderr(&t, s, 1.2, 0, &failed);
    CHECK(!*out, "stopped before the cap (Ctrl-C, an abort): no warning [%s]", out);
    free(out);
    out = eval_stderr(&t, s, 2.4, 0, &failed);
    CHECK(failed == 0 && strstr(out, "reached its duration cap (2s) after 4 of its 30 iterations"),
          "the cap came first: one warning, no failure [%.*s]", (int)strcspn(out, "\n"), out);
    free(out);
    s->iterations = 30;
    thresholds_free(&t);
    add(&t, THRESHOLDS_PLAN_KEY, "30 2");
    out = eval_stderr(&t, s, 2.4, 0, &failed);
    CHECK(!*out, "every iteration ran: no warning");
    free(out);
    thresholds_free(&t);
    stats_free(s);
}

int main(void)
{
    test_parse_units();
    test_parse_ops();
    test_parse_errors();
    test_eval();
    test_only_abort_and_describe();
    test_nodata_warning();
    test_plan_iterations();
    return check_done();
}
