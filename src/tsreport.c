/* tsreport: Tsung-style statistics over 10-second windows: the samples (request, page, session,
 * connect, tr_*), network throughput (size_rcv, size_sent), counters, gauges (users, connected),
 * errors (error_*) and HTTP status codes, in the tables of tsung_stats.pl's report. */
#include "tsreport.h"

#include <stdlib.h>
#include <string.h>

#define TS_WINDOW_S 10

typedef struct tsrow {
    char name[128];
    double hi_mean, lo_mean, hi_rate; /* ms, ms, per second; over closed windows */
    int windows;                      /* closed windows in which it had samples */
} tsrow;

struct tsreport {
    stats *win; /* the open window */
    int secs;
    tsrow *rows; /* owned: samples, counters ("#" + name), size_rcv and size_sent by name */
    size_t nrows, cap;
    double status_hi_rate[600];
    double connected, connected_max; /* Tsung's `connected` gauge: the running sum of its counter */
};

tsreport *tsreport_new(void)
{
    tsreport *t = calloc(1, sizeof *t);
    if (!t || !(t->win = stats_new())) abort();
    return t;
}

void tsreport_free(tsreport *t)
{
    if (!t) return;
    stats_free(t->win);
    free(t->rows);
    free(t);
}

static tsrow *row_of(tsreport *t, const char *name)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].name, name)) return &t->rows[i];
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = realloc(t->rows, t->cap * sizeof *t->rows);
        if (!t->rows) abort();
    }
    tsrow *r = &t->rows[t->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

/* The histogram behind a Tsung sample name in `s` (NULL when it has none): "request" is every
 * request; page, session and connect are trends the Tsung runtime records; tr_* transactions. */
static const stats_hist *sample_of(const stats *s, const char *name)
{
    if (!strcmp(name, "request")) return s->all;
    for (size_t i = 0; i < s->nentries; i++) {
        const stats_entry *e = &s->entries[i];
        if (strcmp(e->name, name)) continue;
        if (e->kind == STATS_TREND || e->kind == STATS_TRANSACTION) return e->hist;
    }
    return NULL;
}

static int is_sample(const stats_entry *e)
{
    if (e->kind == STATS_TRANSACTION) return !strncmp(e->name, "tr_", 3);
    return e->kind == STATS_TREND &&
           (!strcmp(e->name, "page") || !strcmp(e->name, "session") || !strcmp(e->name, "connect"));
}

/* The highest 10-second rate of counters and of the bytes received and sent. */
static void close_counters(tsreport *t)
{
    char name[140];
    for (size_t k = 0; k < t->win->nentries; k++) {
        const stats_entry *e = &t->win->entries[k];
        if (e->kind != STATS_COUNTER) continue;
        snprintf(name, sizeof name, "#%s", e->name);
        tsrow *r = row_of(t, name);
        if (e->sum / TS_WINDOW_S > r->hi_rate) r->hi_rate = e->sum / TS_WINDOW_S;
    }
    tsrow *in = row_of(t, "size_rcv"), *out = row_of(t, "size_sent");
    if ((double)t->win->bytes_in / TS_WINDOW_S > in->hi_rate)
        in->hi_rate = (double)t->win->bytes_in / TS_WINDOW_S;
    if ((double)t->win->bytes_out / TS_WINDOW_S > out->hi_rate)
        out->hi_rate = (double)t->win->bytes_out / TS_WINDOW_S;
}

static void close_window(tsreport *t)
{
    close_counters(t);
    const char *fixed[] = {"request"};
    for (size_t k = 0; k < 1 + t->win->nentries; k++) {
        const char *name;
        if (k == 0)
            name = fixed[0];
        else if (is_sample(&t->win->entries[k - 1]))
            name = t->win->entries[k - 1].name;
        else
            continue;
        const stats_hist *h = sample_of(t->win, name);
        uint64_t n = h ? stats_hist_count(h) : 0;
        if (!n) continue;
        tsrow *r = row_of(t, name);
        double mean = stats_hist_mean(h) / 1000.0, rate = (double)n / TS_WINDOW_S;
        if (!r->windows || mean > r->hi_mean) r->hi_mean = mean;
        if (!r->windows || mean < r->lo_mean) r->lo_mean = mean;
        if (rate > r->hi_rate) r->hi_rate = rate;
        r->windows++;
    }
    for (int c = 1; c < 600; c++) {
        double rate = (double)t->win->status[c] / TS_WINDOW_S;
        if (rate > t->status_hi_rate[c]) t->status_hi_rate[c] = rate;
    }
    stats_reset(t->win);
    t->secs = 0;
}

void tsreport_add(tsreport *t, const stats *second)
{
    for (size_t i = 0; i < second->nentries; i++)
        if (second->entries[i].kind == STATS_COUNTER && !strcmp(second->entries[i].name, "connected"))
            t->connected += second->entries[i].sum;
    if (t->connected > t->connected_max) t->connected_max = t->connected;
    stats_merge(t->win, second);
    if (++t->secs == TS_WINDOW_S) close_window(t);
}

static void print_sample(FILE *f, const tsreport *t, const stats *total, const char *name, double dur)
{
    const stats_hist *h = sample_of(total, name);
    uint64_t n = h ? stats_hist_count(h) : 0;
    if (!n) return;
    const tsrow *r = NULL;
    for (size_t i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].name, name)) r = &t->rows[i];
    char hi[32] = "-", lo[32] = "-", hr[32] = "-";
    if (r && r->windows) {
        snprintf(hi, sizeof hi, "%.2f msec", r->hi_mean);
        snprintf(lo, sizeof lo, "%.2f msec", r->lo_mean);
        snprintf(hr, sizeof hr, "%.1f / sec", r->hi_rate);
    }
    fprintf(f, "  %-20s %16s %16s %14s %12.2f / sec %10.2f msec %10llu\n", name, hi, lo, hr,
            dur > 0 ? (double)n / dur : 0, stats_hist_mean(h) / 1000.0, (unsigned long long)n);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* tsung_stats.pl's sizes: 1023 B, 1.50 KB, 2.00 MB... */
static void format_size(char *buf, size_t n, double v, const char *unit)
{
    static const char *const pre[] = {"", "K", "M", "G"};
    int i = 0;
    while (v >= 1024 && i < 3)
        v /= 1024, i++;
    if (i)
        snprintf(buf, n, "%.2f %s%s", v, pre[i], unit);
    else
        snprintf(buf, n, "%.0f %s", v, unit);
}

static double hi_rate_of(const tsreport *t, const char *name)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].name, name)) return t->rows[i].hi_rate;
    return 0;
}

/* Network throughput: the highest 10-second rate in bits a second, the total in bytes. */
static void print_throughput(FILE *f, const tsreport *t, const stats *total, double dur)
{
    (void)dur;
    char rate[40], sum[40];
    fprintf(f, "\n  %-28s %18s %14s\n", "Name", "Highest Rate", "Total");
    const char *names[] = {"size_rcv", "size_sent"};
    const uint64_t totals[] = {total->bytes_in, total->bytes_out};
    for (int i = 0; i < 2; i++) {
        format_size(rate, sizeof rate, hi_rate_of(t, names[i]) * 8, "bits");
        format_size(sum, sizeof sum, (double)totals[i], "B");
        fprintf(f, "  %-28s %13s/sec %14s\n", names[i], rate, sum);
    }
}

/* The counters (errors = 0) or the error_* counters (errors = 1), by name; `connected` is a
 * gauge and goes in the table of maxima. */
static void print_counters(FILE *f, const tsreport *t, const stats *total, double dur, int errors)
{
    const char **names = calloc(total->nentries + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; names && i < total->nentries; i++) {
        const stats_entry *e = &total->entries[i];
        if (e->kind != STATS_COUNTER || !strcmp(e->name, "connected")) continue;
        if (!strncmp(e->name, "error", 5) == !!errors) names[n++] = e->name;
    }
    if (n) qsort(names, n, sizeof *names, cmp_str);
    if (n && errors) fprintf(f, "\n  Errors\n  %-28s %18s %12s\n", "Name", "Highest Rate", "Total number");
    if (n && !errors)
        fprintf(f, "\n  %-28s %18s %18s %12s\n", "Name", "Highest Rate", "Mean Rate", "Total number");
    for (size_t i = 0; i < n; i++) {
        char key[140];
        snprintf(key, sizeof key, "#%s", names[i]);
        double sum = 0;
        for (size_t j = 0; j < total->nentries; j++)
            if (total->entries[j].kind == STATS_COUNTER && !strcmp(total->entries[j].name, names[i]))
                sum = total->entries[j].sum;
        if (errors)
            fprintf(f, "  %-28s %12.1f / sec %12.0f\n", names[i], hi_rate_of(t, key), sum);
        else
            fprintf(f, "  %-28s %12.1f / sec %12.2f / sec %12.0f\n", names[i], hi_rate_of(t, key),
                    dur > 0 ? sum / dur : 0, sum);
    }
    free(names);
}

void tsreport_print(FILE *f, const tsreport *t, const stats *total, double dur)
{
    fprintf(f, "\n  Tsung report (10-second windows; a last partial window is not counted in them)\n\n");
    fprintf(f, "  %-20s %16s %16s %14s %18s %15s %10s\n", "Name", "highest 10sec mean", "lowest 10sec mean",
            "Highest Rate", "Mean Rate", "Mean", "Count");
    const char *fixed[] = {"connect", "page", "request", "session"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        print_sample(f, t, total, fixed[i], dur);
    const char **tr = calloc(total->nentries + 1, sizeof *tr);
    size_t ntr = 0;
    for (size_t i = 0; tr && i < total->nentries; i++)
        if (total->entries[i].kind == STATS_TRANSACTION && !strncmp(total->entries[i].name, "tr_", 3))
            tr[ntr++] = total->entries[i].name;
    if (ntr) qsort(tr, ntr, sizeof *tr, cmp_str);
    if (ntr) fprintf(f, "\n  Transactions\n");
    for (size_t i = 0; i < ntr; i++)
        print_sample(f, t, total, tr[i], dur);
    free(tr);
    print_throughput(f, t, total, dur);
    print_counters(f, t, total, dur, 0);
    fprintf(f, "\n  %-28s %12s\n", "Name", "Max");
    fprintf(f, "  %-28s %12.0f\n", "connected", t->connected_max);
    fprintf(f, "  %-28s %12lld\n", "users", (long long)total->vus_max);
    print_counters(f, t, total, dur, 1);
    fprintf(f, "\n  %-20s %14s %18s %10s\n", "Code", "Highest Rate", "Mean Rate", "Total number");
    for (int c = 1; c < 600; c++) {
        if (!total->status[c]) continue;
        fprintf(f, "  %-20d %8.1f / sec %12.2f / sec %10llu\n", c, t->status_hi_rate[c],
                dur > 0 ? (double)total->status[c] / dur : 0, (unsigned long long)total->status[c]);
    }
}
