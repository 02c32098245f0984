/* test_stats: histograms (precision, merging, lazy memory), named entries and name folding,
 * and the msgpack encoding, including buffers that must be refused. */
#include "check.h"
#include "stats.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----
 * CHECK evaluates its condition twice, so every call with an effect happens before it. */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void) /* xorshift64*: the same numbers on every run */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static double unit(void) { return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0; } /* (0,1) */

static double gauss(void) { return sqrt(-2 * log(unit())) * cos(2 * M_PI * unit()); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile of sorted values, by the histogram's definition: the value at rank
 * ceil(p% of n). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n / 100.0);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static int close_enough(uint64_t got, uint64_t exact)
{
    double diff = fabs((double)got - (double)exact);
    return diff <= (double)exact * 0.001 + 1;
}

static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100};
#define NPCTS (sizeof pcts / sizeof *pcts)

static int hist_equal(const stats_hist *a, const stats_hist *b)
{
    if (stats_hist_count(a) != stats_hist_count(b) || stats_hist_min(a) != stats_hist_min(b) ||
        stats_hist_max(a) != stats_hist_max(b) || stats_hist_mean(a) != stats_hist_mean(b))
        return 0;
    for (double p = 0; p <= 100; p += 0.25)
        if (stats_hist_percentile(a, p) != stats_hist_percentile(b, p)) return 0;
    for (size_t i = 0; i < NPCTS; i++)
        if (stats_hist_percentile(a, pcts[i]) != stats_hist_percentile(b, pcts[i])) return 0;
    return 1;
}

/* The same values rank by rank (for histograms of up to a few thousand values): the same slots. */
static int hist_same(const stats_hist *a, const stats_hist *b)
{
    uint64_t n = stats_hist_count(a);
    if (!hist_equal(a, b)) return 0;
    for (uint64_t r = 1; r <= n; r++)
        if (stats_hist_percentile(a, 100.0 * ((double)r - 0.5) / (double)n) !=
            stats_hist_percentile(b, 100.0 * ((double)r - 0.5) / (double)n))
            return 0;
    return 1;
}

static const stats_entry *find_entry(const stats *s, const char *name, int kind)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].kind == kind && strcmp(s->entries[i].name, name) == 0) return &s->entries[i];
    return NULL;
}

static int entries_equal(const stats *a, const stats *b) /* every non-empty entry of a is in b */
{
    for (size_t i = 0; i < a->nentries; i++) {
        const stats_entry *x = &a->entries[i], *y = find_entry(b, x->name, x->kind);
        if (!y || x->count != y->count || x->errors != y->errors || x->sum != y->sum) return 0;
        if (x->kind == STATS_TREND && x->count && (x->min != y->min || x->max != y->max)) return 0;
        if ((x->hist == NULL) != (y->hist == NULL) || (x->hist && !hist_equal(x->hist, y->hist))) return 0;
    }
    return 1;
}

static int globals_equal(const stats *a, const stats *b)
{
    return memcmp(a->status, b->status, sizeof a->status) == 0 &&
           memcmp(a->errors_by_kind, b->errors_by_kind, sizeof a->errors_by_kind) == 0 &&
           a->requests == b->requests && a->request_errors == b->request_errors &&
           a->bytes_in == b->bytes_in && a->bytes_out == b->bytes_out && a->iterations == b->iterations &&
           a->dropped == b->dropped && a->checks_passed == b->checks_passed &&
           a->checks_failed == b->checks_failed && a->vus == b->vus && a->vus_max == b->vus_max &&
           a->t_start_us == b->t_start_us && a->t_end_us == b->t_end_us && hist_equal(a->all, b->all);
}

static int stats_empty(const stats *s)
{
    stats *fresh = stats_new();
    int r = s->nentries == 0 && globals_equal(s, fresh);
    stats_free(fresh);
    return r;
}

/* ---- histograms ---- */

static void test_hist_basics(void)
{
    stats_hist *h = stats_hist_new();
    CHECK(stats_hist_count(h) == 0 && stats_hist_min(h) == 0 && stats_hist_max(h) == 0 &&
              stats_hist_mean(h) == 0 && stats_hist_percentile(h, 50) == 0,
          "an empty histogram reports 0 for count, min, max, mean and percentiles");

    for (uint64_t v = 1; v < 2048; v++)
        stats_hist_record(h, v);
    int exact = 1;
    for (uint64_t v = 1; v < 2048; v++)
        if (stats_hist_percentile(h, 100.0 * ((double)v - 0.5) / 2047.0) != v) exact = 0;
    CHECK(exact, "values below 2048 us are kept exactly: recording 1..2047 gives percentile k/2047 = k");
    CHECK(stats_hist_mean(h) == 1024.0, "the mean is exact: 1..2047 averages 1024");
    CHECK(stats_hist_percentile(h, 0) == 1 && stats_hist_percentile(h, 100) == 2047,
          "p0 is the min and p100 the max");

    stats_hist_reset(h);
    stats_hist_record(h, 0);
    stats_hist_record(h, 10ULL * STATS_HIST_MAX_US);
    CHECK(stats_hist_min(h) == STATS_HIST_MIN_US && stats_hist_max(h) == STATS_HIST_MAX_US,
          "values outside 1 us .. 1 h are clamped into it (0 -> 1 us, 10 h -> 1 h)");
    CHECK(stats_hist_percentile(h, 99.9) == STATS_HIST_MAX_US,
          "a percentile never reports above the max, even in the coarsest bucket");

    stats_hist_reset(h);
    stats_hist_record(h, 123456);
    CHECK(stats_hist_percentile(h, 1) == 123456 && stats_hist_percentile(h, 50) == 123456,
          "a single value is every percentile exactly (kept within min and max)");

    stats_hist_reset(h);
    stats_hist_record_n(h, 5000, 3000000000ULL);
    stats_hist_record_n(h, 5000, 3000000000ULL);
    stats_hist_record_n(h, 9000, 1);
    CHECK(stats_hist_count(h) == 6000000001ULL && stats_hist_percentile(h, 99.99) == 5003 &&
              stats_hist_max(h) == 9000,
          "a bucket counts past 2^32 (6e9 values of 5 ms; p99.99 = 5003, the bucket's top)");
    stats_hist_free(h);
}

typedef double (*dist_fn)(void);
static double d_uniform_small(void) { return 1 + unit() * 999; }      /* 1 us .. 1 ms */
static double d_log_uniform(void) { return exp(unit() * log(1e7)); }  /* 1 us .. 10 s */
static double d_lognormal(void) { return 5000 * exp(0.6 * gauss()); } /* around 5 ms */
static double d_exponential(void) { return -50000 * log(unit()); }    /* mean 50 ms */
static double d_bimodal(void)
{
    double x = unit() < 0.9 ? 2000 + 300 * gauss() : 800000 + 1e5 * gauss();
    return x < 1 ? 1 : x;
}

static void test_hist_percentiles(void)
{
    static const struct {
        const char *name;
        dist_fn f;
    } dists[] = {
        {"uniform 1 us..1 ms", d_uniform_small}, {"log-uniform 1 us..10 s", d_log_uniform},
        {"lognormal around 5 ms", d_lognormal},  {"exponential, mean 50 ms", d_exponential},
        {"bimodal 2 ms / 800 ms", d_bimodal},
    };
    const size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    for (size_t d = 0; d < sizeof dists / sizeof *dists; d++) {
        stats_hist *h = stats_hist_new();
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            double x = dists[d].f();
            v[i] = x < 1 ? 1 : x > 1e10 ? 10000000000ULL : (uint64_t)x;
            sum += (double)v[i];
            stats_hist_record(h, v[i]);
        }
        qsort(v, n, sizeof *v, cmp_u64);
        static const double want[] = {50, 90, 99, 99.9, 100};
        int ok = 1;
        for (size_t k = 0; k < 5; k++) {
            uint64_t got = stats_hist_percentile(h, want[k]), ex = exact_percentile(v, n, want[k]);
            if (!close_enough(got, ex)) {
                ok = 0;
                printf("# %s p%g: got %llu, exact %llu\n", dists[d].name, want[k], (unsigned long long)got,
                       (unsigned long long)ex);
            }
        }
        CHECK(ok, "%s: p50/p90/p99/p99.9/max of 100k values are within 0.1%% (+1 us) of the sorted truth",
              dists[d].name);
        CHECK(stats_hist_min(h) == v[0] && stats_hist_max(h) == v[n - 1] &&
                  fabs(stats_hist_mean(h) - sum / (double)n) < 1e-6 * sum / (double)n,
              "%s: min, max and mean are exact", dists[d].name);
        stats_hist_free(h);
    }
    free(v);
}

static void test_hist_merge(void)
{
    stats_hist *a = stats_hist_new(), *b = stats_hist_new(), *all = stats_hist_new();
    for (int i = 0; i < 50000; i++) {
        uint64_t x = (uint64_t)d_log_uniform(), y = (uint64_t)d_lognormal();
        stats_hist_record(a, x);
        stats_hist_record(b, y);
        stats_hist_record(all, x);
        stats_hist_record(all, y);
    }
    stats_hist_merge(a, b);
    CHECK(hist_equal(a, all), "merging two histograms gives the histogram of all their values");
    stats_hist *empty = stats_hist_new();
    stats_hist_merge(a, empty);
    CHECK(hist_equal(a, all), "merging an empty histogram changes nothing");
    stats_hist_merge(empty, all);
    CHECK(hist_equal(empty, all), "merging into an empty histogram copies it");
    stats_hist_free(a);
    stats_hist_free(b);
    stats_hist_free(all);
    stats_hist_free(empty);
}

static void test_hist_memory(void)
{
    stats_hist *h = stats_hist_new();
    size_t bare = stats_hist_memory(h);
    CHECK(bare < 1024, "a new histogram holds no counters yet (%zu bytes)", bare);
    for (int i = 0; i < 100000; i++)
        stats_hist_record(h, 1000 + rng() % 1001);
    size_t used = stats_hist_memory(h);
    CHECK(used <= bare + 2 * 1024 * 4,
          "values between 1 ms and 2 ms touch at most 2 buckets of 1024 counters (%zu bytes)", used);
    stats_hist_reset(h);
    stats_hist_record(h, 1500);
    CHECK(stats_hist_memory(h) == used, "a reset keeps the buckets, so the next interval does not allocate");
    for (uint64_t v = 1; v <= STATS_HIST_MAX_US; v *= 2)
        stats_hist_record(h, v);
    stats_hist_record(h, STATS_HIST_MAX_US);
    size_t most = stats_hist_memory(h);
    CHECK(most <= bare + 23 * 1024 * 4,
          "every power of two from 1 us to 1 h costs at most 23 buckets (%zu bytes)", most);
    stats_hist_free(h);
}

/* ---- named entries ---- */

static void test_entries(void)
{
    stats *s = stats_new();
    int home = stats_name_id(s, "home", STATS_REQUEST);
    int item = stats_name_id(s, "item", STATS_REQUEST);
    CHECK(home != item && stats_name_id(s, "home", STATS_REQUEST) == home,
          "a name keeps its id; different names get different ids");
    CHECK(stats_name_id(s, "home", STATS_TRANSACTION) != home,
          "the same name of another kind is another entry");

    stats_request(s, home, 1200, 200, ERR_NONE, 5000, 100);
    stats_request(s, home, 3400, 503, ERR_STATUS, 200, 100);
    stats_request(s, item, 900, 0, ERR_TIMEOUT, 0, 80);
    stats_request(s, item, 800, 777, ERR_NONE, 10, 80);
    const stats_entry *e = &s->entries[home];
    CHECK(e->count == 2 && e->errors == 1 && stats_hist_count(e->hist) == 2 &&
              stats_hist_max(e->hist) == 3400,
          "stats_request counts into the name: 2 requests, 1 error, latencies in its histogram");
    CHECK(s->requests == 4 && s->request_errors == 2 && stats_hist_count(s->all) == 4 &&
              stats_hist_min(s->all) == 800,
          "and into the totals: 4 requests, 2 errors, every latency in `all`");
    CHECK(s->status[200] == 1 && s->status[503] == 1 && s->status[0] == 2,
          "statuses are counted by code; no response and out-of-range codes count under 0");
    CHECK(s->errors_by_kind[ERR_STATUS] == 1 && s->errors_by_kind[ERR_TIMEOUT] == 1 &&
              s->errors_by_kind[ERR_NONE] == 0,
          "errors are counted by kind");
    CHECK(s->bytes_in == 5210 && s->bytes_out == 360, "bytes in and out add up");

    int ok = stats_name_id(s, "home is up", STATS_CHECK);
    stats_check(s, ok, 1);
    stats_check(s, ok, 1);
    stats_check(s, ok, 0);
    CHECK(s->entries[ok].count == 2 && s->entries[ok].errors == 1 && s->checks_passed == 2 &&
              s->checks_failed == 1 && s->entries[ok].hist == NULL,
          "a check counts passes in count and failures in errors");

    int tx = stats_name_id(s, "checkout", STATS_TRANSACTION);
    stats_transaction(s, tx, 250000, 0);
    stats_transaction(s, tx, 400000, 1);
    CHECK(s->entries[tx].count == 2 && s->entries[tx].errors == 1 &&
              stats_hist_max(s->entries[tx].hist) == 400000,
          "a transaction records its duration and whether it failed");

    int ctr = stats_name_id(s, "items bought", STATS_COUNTER);
    stats_counter_add(s, ctr, 2);
    stats_counter_add(s, ctr, 0.5);
    CHECK(s->entries[ctr].sum == 2.5 && s->entries[ctr].count == 2, "a counter sums its values");

    int tr = stats_name_id(s, "queue ms", STATS_TREND);
    stats_trend_add(s, tr, 1.5);
    stats_trend_add(s, tr, -3);
    CHECK(s->entries[tr].count == 2 && stats_hist_max(s->entries[tr].hist) == 1500 &&
              stats_hist_min(s->entries[tr].hist) == 1,
          "a trend's histogram keeps value * 1000 (1.5 -> 1500), clamped into range (-3 -> 1)");

    stats_error(s, ERR_SCRIPT);
    CHECK(s->errors_by_kind[ERR_SCRIPT] == 1 && s->request_errors == 2,
          "stats_error counts an error that belongs to no request");
    CHECK(strcmp(stats_err_name(ERR_NONE), "none") == 0 &&
              strcmp(stats_err_name(ERR_TOO_LARGE), "too_large") == 0 &&
              strcmp(stats_err_name(ERR_URL), "url") == 0 &&
              strcmp(stats_err_name(ERR_FD_LIMIT), "fd_limit") == 0,
          "error kinds have short names: none, too_large, fd_limit, url, ...");

    size_t n = s->nentries;
    stats_reset(s);
    CHECK(s->nentries == n && stats_name_id(s, "home", STATS_REQUEST) == home &&
              s->entries[home].count == 0 && stats_hist_count(s->entries[home].hist) == 0 &&
              s->requests == 0 && s->status[200] == 0,
          "stats_reset zeroes every value and keeps names and ids");

    char longname[3000];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    int lid = stats_name_id(s, longname, STATS_REQUEST);
    CHECK(strlen(s->entries[lid].name) == STATS_NAME_MAX && stats_name_id(s, longname, STATS_REQUEST) == lid,
          "a name longer than STATS_NAME_MAX is cut, and the cut name keeps its id");
    stats_free(s);
}

static void test_folding(void)
{
    stats *s = stats_new();
    s->max_names = 5;
    FILE *tmp = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int ids[10];
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "/item/%d", i);
        ids[i] = stats_name_id(s, name, STATS_REQUEST);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char warning[512] = "";
    rewind(tmp);
    size_t got = fread(warning, 1, sizeof warning - 1, tmp);
    warning[got] = '\0';
    fclose(tmp);

    int other = stats_name_id(s, STATS_OTHER_NAME, STATS_REQUEST);
    int folded = 1;
    for (int i = 5; i < 10; i++)
        folded &= ids[i] == other;
    CHECK(folded && ids[4] != other && s->nentries == 6,
          "past max_names (5) distinct names, the rest fold into 'other': 6 entries for 10 names");
    CHECK(s->folded_warned && strstr(warning, "distinct request names; the rest are counted as 'other'") &&
              strchr(warning, '\n') == strrchr(warning, '\n'),
          "folding warns once on stderr: %.60s...", warning);
    int again = stats_name_id(s, "/item/2", STATS_REQUEST), check9 = stats_name_id(s, "/item/9", STATS_CHECK);
    CHECK(again == ids[2], "names seen before the limit keep their ids");
    CHECK(check9 != other, "the limit is per kind: a check may still use a new name");
    stats_free(s);
}

/* ---- merging and encoding ---- */

/* A realistic interval: a few names of every kind, every global set. */
static stats *sample_stats(int seed)
{
    rng_state = 0x1234567ULL + (uint64_t)seed;
    stats *s = stats_new();
    const char *names[] = {"home", "item", "search", "login", "héllo wörld"};
    for (int i = 0; i < 20000; i++) {
        int id = stats_name_id(s, names[rng() % 5], STATS_REQUEST);
        int err = rng() % 50 == 0 ? (int)(1 + rng() % (ERR_KINDS - 1)) : ERR_NONE;
        stats_request(s, id, (uint64_t)d_bimodal(), err ? 500 : 200, err, 1000 + rng() % 5000, 200);
    }
    int tx = stats_name_id(s, "checkout", STATS_TRANSACTION);
    for (int i = 0; i < 300; i++)
        stats_transaction(s, tx, (uint64_t)d_exponential(), i % 7 == 0);
    int ck = stats_name_id(s, "status is 200", STATS_CHECK);
    for (int i = 0; i < 100; i++)
        stats_check(s, ck, i % 10 != 0);
    stats_counter_add(s, stats_name_id(s, "bought", STATS_COUNTER), 12.25);
    int tr = stats_name_id(s, "queue", STATS_TREND);
    for (int i = 0; i < 100; i++)
        stats_trend_add(s, tr, unit() * 100 - 10);
    stats_error(s, ERR_SCRIPT);
    stats_error_sample(s, ERR_SCRIPT, "scenario.lua:12: attempt to index a nil value");
    s->iterations = 700 + (uint64_t)seed;
    s->dropped = 3;
    s->vus = 50;
    s->vus_max = 64;
    s->t_start_us = 1000000 * (uint64_t)(seed + 1);
    s->t_end_us = s->t_start_us + 1000000;
    return s;
}

/* The first message of each error kind is kept as its sample, for the summary. */
static void test_error_samples(void)
{
    stats *a = stats_new(), *b = stats_new(), *total = stats_new();
    stats_error_sample(a, ERR_TLS, "certificate verify failed (https://x.test/)");
    stats_error_sample(a, ERR_TLS, "a later tls error");
    stats_error_sample(a, ERR_NONE, "not an error");
    stats_error_sample(a, ERR_KINDS, "out of range");
    CHECK(a->err_sample[ERR_TLS] &&
              !strcmp(a->err_sample[ERR_TLS], "certificate verify failed (https://x.test/)"),
          "the first message of a kind is kept, later ones are not");
    CHECK(!a->err_sample[ERR_NONE], "ERR_NONE and kinds out of range keep nothing");
    char longmsg[600];
    memset(longmsg, 'x', sizeof longmsg);
    longmsg[sizeof longmsg - 1] = 0;
    stats_error_sample(b, ERR_SCRIPT, "f.lua:3: boom\nstack traceback:\n\t[C]: in ?");
    stats_error_sample(b, ERR_TIMEOUT, longmsg);
    stats_error_sample(b, ERR_TLS, "another tls error");
    CHECK(!strcmp(b->err_sample[ERR_SCRIPT], "f.lua:3: boom"), "a sample is the message's first line");
    CHECK(strlen(b->err_sample[ERR_TIMEOUT]) == STATS_SAMPLE_MAX, "a long message is cut at %d bytes",
          STATS_SAMPLE_MAX);
    stats_merge(total, a);
    stats_merge(total, b);
    CHECK(!strcmp(total->err_sample[ERR_TLS], "certificate verify failed (https://x.test/)") &&
              !strcmp(total->err_sample[ERR_SCRIPT], "f.lua:3: boom"),
          "a merge keeps the destination's first sample and adds the kinds it lacked");
    char *buf;
    size_t len;
    CHECK(stats_encode(b, &buf, &len) == 0, "samples encode");
    stats *d = stats_new();
    CHECK(stats_decode_merge(d, buf, len) == 0 && d->err_sample[ERR_SCRIPT] &&
              !strcmp(d->err_sample[ERR_SCRIPT], "f.lua:3: boom") &&
              !strcmp(d->err_sample[ERR_TLS], "another tls error"),
          "and travel in snapshots");
    free(buf);
    stats_reset(total);
    CHECK(!total->err_sample[ERR_TLS] && !total->err_sample[ERR_SCRIPT], "stats_reset forgets them");
    stats_free(a), stats_free(b), stats_free(total), stats_free(d);
}

/* Trends keep exact min, max and sum across merges and the wire. */
static void test_trend_exact(void)
{
    stats *s = stats_new();
    int tr = stats_name_id(s, "queue ms", STATS_TREND);
    stats_trend_add(s, tr, 1.5);
    stats_trend_add(s, tr, -3);
    CHECK(s->entries[tr].min == -3 && s->entries[tr].max == 1.5 && s->entries[tr].sum == -1.5,
          "and its exact min, max and sum beside it (-3, 1.5, -1.5)");
    stats_trend_add(s, tr, 12500000);
    stats_trend_add(s, tr, NAN);
    stats_trend_add(s, tr, INFINITY);
    CHECK(s->entries[tr].count == 3 && s->entries[tr].max == 12500000 &&
              s->entries[tr].sum == 12500000 - 1.5 &&
              stats_hist_max(s->entries[tr].hist) == STATS_HIST_MAX_US,
          "a value past the histogram's hour counts exactly in count, sum and max; NaN and inf are ignored");
    stats_free(s);

    stats *a = stats_new(), *b = stats_new(), *total = stats_new();
    int ta = stats_name_id(a, "t", STATS_TREND), tb = stats_name_id(b, "t", STATS_TREND);
    stats_trend_add(a, ta, -5), stats_trend_add(a, ta, 10);
    stats_trend_add(b, tb, 12500000), stats_trend_add(b, tb, 0.25);
    stats_name_id(total, "t", STATS_TREND); /* an entry with nothing yet */
    stats_merge(total, b);
    stats_merge(total, a);
    const stats_entry *e = find_entry(total, "t", STATS_TREND);
    CHECK(e->count == 4 && e->min == -5 && e->max == 12500000 && e->sum == 12500005.25,
          "merged: count 4, min -5, max 12,500,000, exact sum");
    char *buf;
    size_t len;
    stats_encode(total, &buf, &len);
    stats *d = stats_new();
    CHECK(stats_decode_merge(d, buf, len) == 0 && entries_equal(total, d), "min and max travel");
    free(buf);
    stats_free(a), stats_free(b), stats_free(total), stats_free(d);
}

static void test_merge(void)
{
    stats *a = sample_stats(1), *b = sample_stats(2), *total = stats_new();
    stats_merge(total, a);
    stats_merge(total, b);
    const stats_entry *ta = find_entry(a, "home", STATS_REQUEST), *tb = find_entry(b, "home", STATS_REQUEST),
                      *tt = find_entry(total, "home", STATS_REQUEST);
    stats_hist *both = stats_hist_new();
    stats_hist_merge(both, ta->hist);
    stats_hist_merge(both, tb->hist);
    CHECK(tt && tt->count == ta->count + tb->count && tt->errors == ta->errors + tb->errors &&
              hist_equal(tt->hist, both),
          "stats_merge adds entries by name: counts, errors and histograms");
    CHECK(total->requests == a->requests + b->requests &&
              total->status[200] == a->status[200] + b->status[200] && total->vus == 100 &&
              total->vus_max == 128 && total->iterations == 1403,
          "stats_merge adds global counters, and gauges add up across sources");
    CHECK(total->t_start_us == 2000000 && total->t_end_us == 4000000,
          "the merged interval spans both intervals");
    CHECK(find_entry(total, "bought", STATS_COUNTER)->sum == 24.5, "counters add their sums");
    stats_hist_free(both);
    stats_free(a);
    stats_free(b);
    stats_free(total);
}

static void test_roundtrip(void)
{
    stats *s = sample_stats(3);
    stats_name_id(s, "never used", STATS_REQUEST);
    char *buf;
    size_t len;
    int r = stats_encode(s, &buf, &len);
    CHECK(r == 0 && len > 0, "stats_encode makes a msgpack buffer (%zu bytes)", len);
    stats *d = stats_new();
    r = stats_decode_merge(d, buf, len);
    CHECK(r == 0, "stats_decode_merge accepts it");
    CHECK(globals_equal(s, d), "the round trip keeps every global counter, status, error kind and `all`");
    CHECK(entries_equal(d, s) && find_entry(d, "héllo wörld", STATS_REQUEST) &&
              find_entry(d, "queue", STATS_TREND),
          "and every entry: names (UTF-8 too), kinds, counts, errors, sums, histograms");
    CHECK(find_entry(d, "never used", STATS_REQUEST) == NULL && d->nentries == s->nentries - 1,
          "entries with nothing recorded do not travel");
    r = stats_decode_merge(d, buf, len);
    CHECK(r == 0 && d->requests == 2 * s->requests &&
              find_entry(d, "home", STATS_REQUEST)->count == 2 * find_entry(s, "home", STATS_REQUEST)->count,
          "decoding twice merges twice (the queen drops duplicate snapshots, not stats)");

    stats *small = stats_new();
    int h1 = stats_name_id(small, "a", STATS_REQUEST), h2 = stats_name_id(small, "b", STATS_REQUEST);
    for (int i = 0; i < 3000; i++)
        stats_request(small, i % 3 ? h1 : h2, 1 + rng() % 60000, 200, ERR_NONE, 0, 0);
    stats_transaction(small, stats_name_id(small, "tx", STATS_TRANSACTION), 777777, 0);
    char *sbuf;
    size_t slen;
    stats_encode(small, &sbuf, &slen);
    stats *d4 = stats_new();
    r = stats_decode_merge(d4, sbuf, slen);
    CHECK(r == 0 && hist_same(small->all, d4->all) && entries_equal(small, d4),
          "`all` (the sum of the request names) is rebuilt slot by slot from them (%zu bytes)", slen);
    free(sbuf);
    stats_request(small, -1, 5, 200, ERR_NONE, 0, 0); /* counted in `all` only */
    stats_encode(small, &sbuf, &slen);
    stats *d5 = stats_new();
    r = stats_decode_merge(d5, sbuf, slen);
    CHECK(r == 0 && hist_same(small->all, d5->all) && stats_hist_min(d5->all) == 5,
          "an `all` that is not that sum travels whole (%zu bytes)", slen);
    free(sbuf);
    stats_free(small);
    stats_free(d4);
    stats_free(d5);

    stats *empty = stats_new();
    char *ebuf;
    size_t elen;
    stats_encode(empty, &ebuf, &elen);
    stats *d2 = stats_new();
    r = stats_decode_merge(d2, ebuf, elen);
    CHECK(r == 0 && stats_empty(d2) && elen < 64,
          "an empty interval encodes small (%zu bytes) and decodes to nothing", elen);
    free(ebuf);
    stats_free(empty);
    stats_free(d2);

    stats *big = stats_new();
    int id = stats_name_id(big, "wide", STATS_REQUEST);
    stats_hist_record_n(big->entries[id].hist, 3000, 5000000000ULL);
    big->entries[id].count = 5000000000ULL;
    char *bbuf;
    size_t blen;
    stats_encode(big, &bbuf, &blen);
    stats *d3 = stats_new();
    r = stats_decode_merge(d3, bbuf, blen);
    CHECK(r == 0 && entries_equal(big, d3), "bucket counts past 2^32 travel at full precision");
    free(bbuf);
    stats_free(big);
    stats_free(d3);
    free(buf);
    stats_free(s);
    stats_free(d);
}

/* The queen's way: one scratch reused for every snapshot, each added into the second's stats. */
static void test_merge_into(void)
{
    stats *wide = stats_new(), *small = sample_stats(5);
    for (int k = 0; k < 3; k++) { /* 3 x 24,000 buckets: more than the scratch keeps between calls */
        char name[16];
        snprintf(name, sizeof name, "wide%d", k);
        int id = stats_name_id(wide, name, STATS_REQUEST);
        for (uint64_t v = 1; v <= 24000; v++)
            stats_request(wide, id, v, 200, ERR_NONE, 0, 0);
    }
    char *wbuf, *sbuf;
    size_t wlen, slen;
    stats_encode(wide, &wbuf, &wlen);
    stats_encode(small, &sbuf, &slen);
    stats *second = stats_new(), *total = stats_new(), *scratch = stats_new();
    stats *const dsts[] = {second, total};
    int r = stats_decode_merge_into(dsts, 2, scratch, wbuf, wlen, NULL);
    r |= stats_decode_merge_into(dsts, 2, scratch, sbuf, slen, NULL);
    r |= stats_decode_merge_into(dsts, 1, scratch, wbuf, wlen, NULL);
    stats *want = stats_new();
    stats_merge(want, wide);
    stats_merge(want, small);
    CHECK(r == 0 && hist_equal(total->all, want->all) && entries_equal(want, total) && scratch->vus == 0 &&
              scratch->requests == wide->requests,
          "snapshots of 72,000 buckets and of a few merge into several destinations through one scratch, "
          "which holds the last snapshot's counters");
    stats_merge(want, wide);
    CHECK(hist_equal(second->all, want->all) && entries_equal(want, second) &&
              second->requests == want->requests,
          "and the scratch let go of the big list and decodes the next snapshots the same");
    free(wbuf);
    free(sbuf);
    stats_free(wide);
    stats_free(small);
    stats_free(second);
    stats_free(total);
    stats_free(scratch);
    stats_free(want);
}

/* The queen owes a second's `all` the histograms of the request names of the snapshots that left
 * it out, and pays once a second (stats_all_add_requests); one that carries its `all` settles first. */
static void test_all_owed(void)
{
    stats *a = sample_stats(6), *b = sample_stats(7), *odd = stats_new();
    int id = stats_name_id(odd, "odd", STATS_REQUEST);
    stats_request(odd, id, 4000, 200, ERR_NONE, 0, 0);
    stats_request(odd, -1, 9, 200, ERR_NONE, 0, 0); /* counted in `all` only: it travels whole */
    char *abuf, *bbuf, *obuf;
    size_t alen, blen, olen;
    stats_encode(a, &abuf, &alen);
    stats_encode(b, &bbuf, &blen);
    stats_encode(odd, &obuf, &olen);
    stats *d = stats_new(), *scratch = stats_new(), *want = stats_new();
    stats *const dsts[] = {d};
    int owed = 1;
    int r = stats_decode_merge_into(dsts, 1, scratch, abuf, alen, &owed);
    r |= stats_decode_merge_into(dsts, 1, scratch, bbuf, blen, &owed);
    CHECK(r == 0 && owed == 1 && stats_hist_count(d->all) == 0 && d->requests == a->requests + b->requests,
          "while `all` is owed, snapshots that left it out add into their names only");
    stats_all_add_requests(d);
    stats_merge(want, a);
    stats_merge(want, b);
    CHECK(hist_same(d->all, want->all) && entries_equal(want, d),
          "paying the debt makes `all` whole, slot by slot");

    stats_reset(d);
    stats_reset(want);
    owed = 1;
    r = stats_decode_merge_into(dsts, 1, scratch, abuf, alen, &owed);
    r |= stats_decode_merge_into(dsts, 1, scratch, obuf, olen, &owed);
    int settled = owed == 0;
    r |= stats_decode_merge_into(dsts, 1, scratch, bbuf, blen, &owed);
    stats_merge(want, a);
    stats_merge(want, odd);
    stats_merge(want, b);
    CHECK(
        r == 0 && settled && owed == 0 && hist_same(d->all, want->all) && entries_equal(want, d),
        "a snapshot that carries its own `all` settles the debt first, and later ones add into `all` again");
    free(abuf);
    free(bbuf);
    free(obuf);
    stats_free(a);
    stats_free(b);
    stats_free(odd);
    stats_free(d);
    stats_free(scratch);
    stats_free(want);
}

/* Hand-made buffers in the wire layout, each with one thing wrong. */
enum flaw {
    OK_BUF,
    OK_V1,
    OK_ALL_LEFT_OUT,
    BAD_VERSION,
    V1_ALL_LEFT_OUT,
    COUNT_ONE_APART,

    BAD_SLOT,
    BAD_KIND,
    LONG_NAME,
    BAD_COUNT,
    BAD_STATUS,
    STR_FOR_INT,
    NO_HIST,
    OK_SAMPLES,
    BAD_SAMPLE_KIND,
    MINMAX_ON_REQUEST
};

/* A HIST of `count` values in the one slot `slot_gap`, all 700 us, with the slot list of format
 * version 2 (ITEM = gap * 2 + 1: one value) or 1 ([gap, count]); `apart`: version 2 with the
 * count written apart (gap * 2, 1), which only counts of 2 or more may use. */
static void pack_hist1(msgpack_packer *pk, uint64_t slot_gap, uint64_t count, int version, int apart)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_uint64(pk, count);
    msgpack_pack_uint64(pk, 700); /* min */
    msgpack_pack_uint64(pk, 700); /* max */
    msgpack_pack_uint64(pk, 700);
    if (version == 1 || apart) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, version == 1 ? slot_gap : slot_gap * 2);
        msgpack_pack_uint64(pk, 1);
    } else {
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, slot_gap * 2 + 1);
    }
}

static msgpack_sbuffer pack_flawed(enum flaw f)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int samples = f == OK_SAMPLES || f == BAD_SAMPLE_KIND;
    msgpack_pack_array(&pk, samples ? 7 : 6);
    int version = f == OK_V1 || f == V1_ALL_LEFT_OUT ? 1 : 2;
    msgpack_pack_uint64(&pk, f == BAD_VERSION ? 3 : (uint64_t)version);
    msgpack_pack_array(&pk, 12);
    for (int i = 0; i < 12; i++) {
        if (i == 2 && f == STR_FOR_INT)
            msgpack_pack_str_with_body(&pk, "1", 1);
        else
            msgpack_pack_uint64(&pk, i == 2);
    }
    msgpack_pack_array(&pk, ERR_KINDS);
    for (int i = 0; i < ERR_KINDS; i++)
        msgpack_pack_uint64(&pk, 0);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, f == BAD_STATUS ? 600 : 200);
    msgpack_pack_uint64(&pk, 1);
    if (f == OK_ALL_LEFT_OUT || f == V1_ALL_LEFT_OUT)
        msgpack_pack_nil(&pk);
    else
        pack_hist1(&pk, 700, 1, version, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, f == MINMAX_ON_REQUEST ? 8 : 6);
    static char name[STATS_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    msgpack_pack_str_with_body(&pk, name, f == LONG_NAME ? STATS_NAME_MAX + 1 : 4);
    msgpack_pack_uint64(&pk, f == BAD_KIND ? STATS_KINDS : STATS_REQUEST);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_double(&pk, 0);
    if (f == NO_HIST)
        msgpack_pack_nil(&pk);
    else
        pack_hist1(&pk, f == BAD_SLOT ? 23 * 1024 : 700, f == BAD_COUNT ? 2 : 1, version,
                   f == COUNT_ONE_APART);
    if (f == MINMAX_ON_REQUEST) msgpack_pack_double(&pk, 0.7), msgpack_pack_double(&pk, 0.7);
    if (samples) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, f == BAD_SAMPLE_KIND ? ERR_KINDS : ERR_TLS);
        msgpack_pack_str_with_body(&pk, "bad certificate", 15);
    }
    return sb;
}

/* The optional parts of the layout (error samples) decode from a hand-made buffer too. */
static void test_optional_parts(void)
{
    stats *d = stats_new();
    msgpack_sbuffer good = pack_flawed(OK_SAMPLES);
    CHECK(stats_decode_merge(d, good.data, good.size) == 0 && d->err_sample[ERR_TLS] &&
              !strcmp(d->err_sample[ERR_TLS], "bad certificate"),
          "the optional error samples decode");
    msgpack_sbuffer_destroy(&good);
    stats_free(d);
}

/* Each flaw of pack_flawed and what it stands for. */
static const struct flawed {
    enum flaw f;
    const char *what;
} flaws[] = {
    {BAD_VERSION, "an unknown format version"},
    {V1_ALL_LEFT_OUT, "version 1 without `all`"},
    {COUNT_ONE_APART, "a count of 1 written apart (version 2 writes it in the item)"},
    {BAD_SLOT, "a bucket index out of range"},
    {BAD_KIND, "an unknown entry kind"},
    {LONG_NAME, "a name over STATS_NAME_MAX bytes"},
    {BAD_COUNT, "bucket counts that do not add up"},
    {BAD_STATUS, "a status code of 600"},
    {STR_FOR_INT, "a string where a number belongs"},
    {NO_HIST, "a request entry without histogram"},
    {BAD_SAMPLE_KIND, "an error sample of an unknown kind"},
    {MINMAX_ON_REQUEST, "min/max on a request entry"},
};

static void test_malformed(void)
{
    stats *d = stats_new();
    msgpack_sbuffer good = pack_flawed(OK_BUF);
    int r = stats_decode_merge(d, good.data, good.size);
    CHECK(r == 0 && d->requests == 1 && d->status[200] == 1 &&
              stats_hist_percentile(find_entry(d, "nnnn", STATS_REQUEST)->hist, 50) == 700,
          "a hand-made buffer in the documented layout decodes");
    msgpack_sbuffer_destroy(&good);
    stats_free(d);

    d = stats_new();
    good = pack_flawed(OK_V1);
    r = stats_decode_merge(d, good.data, good.size);
    CHECK(r == 0 && d->requests == 1 && stats_hist_count(d->all) == 1 &&
              stats_hist_percentile(find_entry(d, "nnnn", STATS_REQUEST)->hist, 50) == 700,
          "a version 1 buffer (older workers: [gap, count] pairs, `all` always there) decodes");
    msgpack_sbuffer_destroy(&good);
    stats_free(d);

    d = stats_new();
    good = pack_flawed(OK_ALL_LEFT_OUT);
    r = stats_decode_merge(d, good.data, good.size);
    CHECK(r == 0 && stats_hist_count(d->all) == 1 && stats_hist_percentile(d->all, 50) == 700,
          "a buffer without `all` decodes, `all` rebuilt from the request entries");
    msgpack_sbuffer_destroy(&good);
    stats_free(d);

    d = stats_new();
    for (size_t i = 0; i < sizeof flaws / sizeof *flaws; i++) {
        msgpack_sbuffer sb = pack_flawed(flaws[i].f);
        r = stats_decode_merge(d, sb.data, sb.size);
        CHECK(r == -1, "a buffer with %s is refused", flaws[i].what);
        msgpack_sbuffer_destroy(&sb);
    }
    CHECK(stats_empty(d), "refused buffers leave the destination untouched");

    stats *s = sample_stats(4);
    char *buf;
    size_t len;
    stats_encode(s, &buf, &len);
    /* A container header that promises 4 billion items must not make the decoder allocate them. */
    static const char huge[] = {(char)0x96, 1, (char)0xdd, (char)0xff, (char)0xff, (char)0xff, (char)0xff};
    r = stats_decode_merge(d, huge, sizeof huge);
    CHECK(r == -1,
          "an array header claiming 4 billion items in a 7-byte buffer is refused without allocating");
    int all_refused = 1;
    for (size_t cut = 0; cut < len; cut++)
        all_refused &= stats_decode_merge(d, buf, cut) == -1;
    CHECK(all_refused && stats_empty(d), "a valid encoding cut at every length (0..%zu) is refused", len - 1);

    char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    r = stats_decode_merge(d, longer, len + 1);
    CHECK(r == -1, "trailing bytes after the encoding are refused");
    free(longer);

    char *noise = malloc(4096);
    int refused = 1;
    for (int i = 0; i < 20000; i++) {
        size_t n = rng() % 4096;
        for (size_t k = 0; k < n; k++)
            noise[k] = (char)rng();
        if (i % 2) noise[0] = (char)0x96, noise[1] = (char)(1 + i / 2 % 2); /* looks like version 1 or 2 */
        refused &= stats_decode_merge(d, noise, n) == -1;
    }
    CHECK(refused && stats_empty(d), "20000 buffers of random bytes are refused");
    free(noise);

    char *mut = malloc(len);
    int survived = 1;
    for (int i = 0; i < 20000; i++) {
        memcpy(mut, buf, len);
        for (int k = 0; k < 1 + (int)(rng() % 3); k++)
            mut[rng() % len] ^= (char)(1u << (rng() % 8));
        stats *m = stats_new();
        int r = stats_decode_merge(m, mut, len);
        survived &= r == 0 || (r == -1 && stats_empty(m));
        if (r == 0) survived &= stats_hist_percentile(m->all, 99) <= stats_hist_max(m->all);
        stats_free(m);
    }
    CHECK(survived, "20000 encodings with flipped bits decode or are refused whole, never crash");
    free(mut);
    free(buf);
    stats_free(s);
    r = stats_decode_merge(d, NULL, 0);
    CHECK(r == -1, "a NULL buffer is refused");
    stats_free(d);
}

static void bench_request(void)
{
    stats *s = stats_new();
    int id = stats_name_id(s, "home", STATS_REQUEST);
    const int n = 5000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        stats_request(s, id, 500 + (uint64_t)(i & 0xffff), 200, ERR_NONE, 1000, 100);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
    printf("# stats_request: %.1f ns per call\n", ns);
    CHECK(s->requests == (uint64_t)n, "5M requests recorded on the hot path");
    stats_free(s);
}

int main(void)
{
    test_hist_basics();
    test_hist_percentiles();
    test_hist_merge();
    test_hist_memory();
    test_folding();
    test_entries();
    test_merge();
    test_error_samples();
    test_trend_exact();
    test_roundtrip();
    test_merge_into();
    test_all_owed();
    test_optional_parts();
    test_malformed();
    bench_request();
    return check_done();
}
