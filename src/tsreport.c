/* tsreport: Tsung-style statistics over 10-second windows. */
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
    tsrow *rows; /* owned */
    size_t nrows, cap;
    double status_hi_rate[600];
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

static void close_window(tsreport *t)
{
    const char *fixed[] = {"request"};
    for (size_t k = 0; k < 1 + t->win->nentries; k++) {
        const char *name;
        if (k == 0) name = fixed[0];
        else if (is_sample(&t->win->entries[k - 1])) name = t->win->entries[k - 1].name;
        else continue;
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

void tsreport_print(FILE *f, const tsreport *t, const stats *total, double dur)
{
    fprintf(f, "\n  Tsung report (10-second windows; a last partial window is not counted in them)\n\n");
    fprintf(f, "  %-20s %16s %16s %14s %18s %15s %10s\n", "Name", "highest 10sec mean", "lowest 10sec mean",
            "Highest Rate", "Mean Rate", "Mean", "Count");
    const char *fixed[] = {"connect", "page", "request", "session"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) print_sample(f, t, total, fixed[i], dur);
    const char **tr = calloc(total->nentries + 1, sizeof *tr);
    size_t ntr = 0;
    for (size_t i = 0; tr && i < total->nentries; i++)
        if (total->entries[i].kind == STATS_TRANSACTION && !strncmp(total->entries[i].name, "tr_", 3))
            tr[ntr++] = total->entries[i].name;
    if (ntr) qsort(tr, ntr, sizeof *tr, cmp_str);
    for (size_t i = 0; i < ntr; i++) print_sample(f, t, total, tr[i], dur);
    free(tr);
    fprintf(f, "\n  %-20s %14s %18s %10s\n", "Code", "Highest Rate", "Mean Rate", "Total number");
    for (int c = 1; c < 600; c++) {
        if (!total->status[c]) continue;
        fprintf(f, "  %-20d %8.1f / sec %12.2f / sec %10llu\n", c, t->status_hi_rate[c],
                dur > 0 ? (double)total->status[c] / dur : 0, (unsigned long long)total->status[c]);
    }
    int header = 0;
    for (size_t i = 0; i < total->nentries; i++) {
        const stats_entry *e = &total->entries[i];
        if (e->kind != STATS_COUNTER) continue;
        if (!header++) fprintf(f, "\n  %-20s %18s %12s\n", "Name", "Mean Rate", "Total number");
        fprintf(f, "  %-20s %12.2f / sec %12.0f\n", e->name, dur > 0 ? e->sum / dur : 0, e->sum);
    }
}
