/* report: the progress line, the end-of-run summary table and the summary.json / series.csv
 * files. Every number comes from a `stats` (or a row made from one); nothing here changes them.
 * Latencies are kept in microseconds by stats and shown in milliseconds (or µs / s when apt). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A formatted value returned by value, so it can be used inline in a printf argument list. */
typedef struct cell {
    char s[48];
} cell;

/* a, sep and b joined into one cell (cut at the cell's size). */
static cell cell_join(const char *a, const char *sep, const char *b)
{
    cell c;
    const char *parts[3] = {a, sep, b};
    size_t o = 0;
    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; *p && o + 1 < sizeof c.s; p++)
            c.s[o++] = *p;
    c.s[o] = '\0';
    return c;
}

/* The six latency figures of a histogram, in ms; NaN when it is empty. */
typedef struct lat_set {
    double mean, p50, p90, p95, p99, max;
} lat_set;

static lat_set lat_from_hist(const stats_hist *h, double scale)
{
    if (!h || stats_hist_count(h) == 0) return (lat_set){NAN, NAN, NAN, NAN, NAN, NAN};
    return (lat_set){
        .mean = stats_hist_mean(h) / scale,
        .p50 = (double)stats_hist_percentile(h, 50) / scale,
        .p90 = (double)stats_hist_percentile(h, 90) / scale,
        .p95 = (double)stats_hist_percentile(h, 95) / scale,
        .p99 = (double)stats_hist_percentile(h, 99) / scale,
        .max = (double)stats_hist_max(h) / scale,
    };
}

/* A trend's figures in the user's unit: count, mean, min and max are exact; the percentiles come
 * from its histogram (values stored *1000 and clamped into 0.001 .. 3,600,000) and are kept
 * within [min, max], so a trend whose values all lie outside that range still reads right. */
typedef struct trend_set {
    double count, mean, min, p50, p90, p95, p99, max;
} trend_set;

static trend_set trend_from_entry(const stats_entry *e)
{
    if (!e->count) return (trend_set){0, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    lat_set l = lat_from_hist(e->hist, 1000.0);
    double p[4] = {l.p50, l.p90, l.p95, l.p99};
    for (int i = 0; i < 4; i++)
        p[i] = isnan(p[i]) ? NAN : p[i] < e->min ? e->min : p[i] > e->max ? e->max : p[i];
    return (trend_set){.count = (double)e->count,
                       .mean = e->sum / (double)e->count,
                       .min = e->min,
                       .p50 = p[0],
                       .p90 = p[1],
                       .p95 = p[2],
                       .p99 = p[3],
                       .max = e->max};
}

/* ---- number formatting ------------------------------------------------------------------- */

static cell fmt_count(uint64_t v)
{
    char digits[32];
    cell c;
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) c.s[o++] = ',';
        c.s[o++] = digits[i];
    }
    c.s[o] = '\0';
    return c;
}

/* A latency in ms as a person reads it: 850µs, 1.21ms, 34.5ms, 250ms, 1.52s, 2.5m; "-" for NaN. */
static cell fmt_ms(double ms)
{
    cell c;
    if (isnan(ms))
        snprintf(c.s, sizeof c.s, "-");
    else if (ms < 1.0)
        snprintf(c.s, sizeof c.s, "%.0f\xc2\xb5s", ms * 1000.0);
    else if (ms < 10.0)
        snprintf(c.s, sizeof c.s, "%.2fms", ms);
    else if (ms < 100.0)
        snprintf(c.s, sizeof c.s, "%.1fms", ms);
    else if (ms < 1000.0)
        snprintf(c.s, sizeof c.s, "%.0fms", ms);
    else if (ms < 60000.0)
        snprintf(c.s, sizeof c.s, "%.2fs", ms / 1000.0);
    else
        snprintf(c.s, sizeof c.s, "%.1fm", ms / 60000.0);
    return c;
}

/* Elapsed time: "12s", "5m03s", "1h02m03s"; with `tenths`, "12.3s" under a minute. */
static cell fmt_elapsed(double s, int tenths)
{
    cell c;
    if (isnan(s) || s < 0) s = 0;
    uint64_t t = (uint64_t)(s + 0.5);
    if (s < 60 && tenths)
        snprintf(c.s, sizeof c.s, "%.1fs", s);
    else if (t < 60)
        snprintf(c.s, sizeof c.s, "%llus", (unsigned long long)t);
    else if (t < 3600)
        snprintf(c.s, sizeof c.s, "%llum%02llus", (unsigned long long)(t / 60), (unsigned long long)(t % 60));
    else
        snprintf(c.s, sizeof c.s, "%lluh%02llum%02llus", (unsigned long long)(t / 3600),
                 (unsigned long long)(t / 60 % 60), (unsigned long long)(t % 60));
    return c;
}

static cell fmt_bytes(double b)
{
    static const char *units[] = {"kB", "MB", "GB", "TB", "PB"};
    cell c;
    if (isnan(b)) b = 0;
    if (b < 1000) {
        snprintf(c.s, sizeof c.s, "%.0f B", b);
        return c;
    }
    int u = 0;
    for (b /= 1000; b >= 1000 && u < 4; u++)
        b /= 1000;
    snprintf(c.s, sizeof c.s, b < 100 ? "%.1f %s" : "%.0f %s", b, units[u]);
    return c;
}

/* A rate per second: "9,123" from 100 up, "12.5" below; "-" for NaN. */
static cell fmt_rate(double r)
{
    cell c;
    if (isnan(r))
        snprintf(c.s, sizeof c.s, "-");
    else if (r >= 100)
        c = fmt_count((uint64_t)(r + 0.5));
    else
        snprintf(c.s, sizeof c.s, "%.1f", r);
    return c;
}

static cell fmt_pct(uint64_t part, uint64_t whole)
{
    cell c;
    snprintf(c.s, sizeof c.s, "%.2f%%", whole ? 100.0 * (double)part / (double)whole : 0.0);
    return c;
}

/* "12 (0.10%)", or "0" when nothing failed. */
static cell fmt_errors(uint64_t errors, uint64_t count)
{
    cell c = fmt_count(errors);
    size_t o = strlen(c.s);
    if (errors)
        snprintf(c.s + o, sizeof c.s - o, " (%.2f%%)",
                 count ? 100.0 * (double)errors / (double)count : 100.0);
    return c;
}

/* A user-unit value (custom trends and counters): integers with separators, else 2 decimals. */
static cell fmt_value(double v)
{
    cell c;
    if (isnan(v))
        snprintf(c.s, sizeof c.s, "-");
    else if (fabs(v) < 1e15 && v == floor(v)) {
        c = cell_join(v < 0 ? "-" : "", "", fmt_count((uint64_t)fabs(v)).s);
    } else if (fabs(v) >= 1e6)
        snprintf(c.s, sizeof c.s, "%.4g", v);
    else
        snprintf(c.s, sizeof c.s, "%.2f", v);
    return c;
}

/* ---- terminal text: display widths, truncation, alignment -------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not start one. */
static int utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        unsigned lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        unsigned lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Columns a string takes on a terminal (one per code point; good enough for names). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* Copy `name` into buf for a terminal: control characters and broken UTF-8 become '?', and a
 * name wider than `width` keeps its start and its end around "..." (URLs differ at both). */
static void name_fit(const char *name, size_t width, char *buf, size_t len)
{
    char clean[1024];
    size_t o = 0, cp[1024], ncp = 0; /* cp[i]: byte offset of code point i in clean */
    const unsigned char *p = (const unsigned char *)name;
    while (*p && o + 5 < sizeof clean && ncp < 1024) {
        int n = utf8_len(p);
        cp[ncp++] = o;
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
            clean[o++] = '?', p += n ? n : 1;
        else
            memcpy(clean + o, p, (size_t)n), o += (size_t)n, p += n;
    }
    clean[o] = '\0';
    if (ncp <= width || width < 5) {
        snprintf(buf, len, "%s", clean);
        return;
    }
    size_t keep = width - 3, tail = keep / 3, head = keep - tail;
    snprintf(buf, len, "%.*s...%s", (int)cp[head], clean, clean + cp[ncp - tail]);
}

/* Print `s` padded to `width` columns, right-aligned or left-aligned. */
static void put_cell(FILE *f, const char *s, size_t width, int right)
{
    size_t w = text_width(s);
    if (right)
        for (; w < width; w++)
            fputc(' ', f);
    fputs(s, f);
    if (!right)
        for (; w < width; w++)
            fputc(' ', f);
}

static size_t term_width(FILE *f)
{
    struct winsize ws;
    const char *env = getenv("COLUMNS");
    size_t w = 120;
    if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        w = ws.ws_col;
    else if (env && atoi(env) > 0)
        w = (size_t)atoi(env);
    return w < 60 ? 60 : w > 400 ? 400 : w;
}

/* ---- entries ----------------------------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
    const stats_entry *x = *(const stats_entry *const *)a, *y = *(const stats_entry *const *)b;
    return strcmp(x->name, y->name);
}

/* The entries of one kind sorted by name (malloc'ed array the caller frees; NULL when none). */
static const stats_entry **entries_sorted(const stats *s, int kind, size_t *n)
{
    const stats_entry **v = NULL;
    *n = 0;
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].kind == kind) (*n)++;
    if (*n == 0 || !(v = malloc(*n * sizeof *v))) return *n = 0, NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].kind == kind) v[k++] = &s->entries[i];
    qsort(v, k, sizeof *v, entry_cmp);
    return v;
}

static double per_second(double v, double duration_s) { return duration_s > 0 ? v / duration_s : NAN; }

/* ---- rows and the progress line ---------------------------------------------------------- */

/* Latencies of a second without requests are 0 (with requests == 0 saying why), so consumers of
 * rows (CSV, dashboards) never meet a NaN. */
report_row report_row_make(const stats *iv, double t, double interval_s)
{
    report_row r = {.t = t,
                    .vus = iv->vus,
                    .requests = iv->requests,
                    .errors = iv->request_errors,
                    .bytes_in = iv->bytes_in};
    r.rps = interval_s > 0 ? (double)iv->requests / interval_s : 0;
    if (iv->all && stats_hist_count(iv->all) > 0) {
        r.p50 = (double)stats_hist_percentile(iv->all, 50) / 1000.0;
        r.p95 = (double)stats_hist_percentile(iv->all, 95) / 1000.0;
        r.p99 = (double)stats_hist_percentile(iv->all, 99) / 1000.0;
    }
    return r;
}

/* "12s/30s", "30s/30s +2s stopping" once the planned duration is over (the graceful stop), or
 * "12s" for a run without a planned duration. */
static cell progress_clock(double t, double duration_s)
{
    cell c;
    if (duration_s <= 0) return fmt_elapsed(t, 0);
    if (t >= duration_s + 0.5) {
        cell d = fmt_elapsed(duration_s, 0);
        c = cell_join(d.s, "/", d.s);
        return cell_join(c.s, " +", cell_join(fmt_elapsed(t - duration_s, 0).s, " ", "stopping").s);
    }
    return cell_join(fmt_elapsed(t, 0).s, "/", fmt_elapsed(duration_s, 0).s);
}

/* Fields are padded by display width (µs is one column, two bytes), so lines printed one per
 * second keep their columns. */
void report_progress(FILE *f, const report_row *row, double duration_s, int tty)
{
    int none = row->requests == 0;
    char vus[24];
    snprintf(vus, sizeof vus, "%lld", (long long)row->vus);
    const struct {
        const char *label;
        cell v;
        size_t width;
    } fields[] = {
        {"vus", cell_join(vus, "", ""), 4},        {"rps", fmt_rate(row->rps), 6},
        {"p50", fmt_ms(none ? NAN : row->p50), 6}, {"p95", fmt_ms(none ? NAN : row->p95), 6},
        {"p99", fmt_ms(none ? NAN : row->p99), 6},
    };
    fputs(tty ? "\r\033[K  " : "  ", f);
    put_cell(f, progress_clock(row->t, duration_s).s, 7, 0);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fprintf(f, "  %s ", fields[i].label);
        put_cell(f, fields[i].v.s, fields[i].width, 1);
    }
    fprintf(f, "  err %s (%s)%s", fmt_count(row->errors).s, fmt_pct(row->errors, row->requests).s,
            tty ? "" : "\n");
    fflush(f);
}

/* ---- the summary ------------------------------------------------------------------------- */

/* The request/transaction table's columns after the name, in order. On a narrow terminal the
 * optional ones (mean, p90, max) go first so the name keeps room. */
enum { COL_COUNT, COL_RATE, COL_MEAN, COL_P50, COL_P90, COL_P95, COL_P99, COL_MAX, COL_ERRORS, NCOLS };
static const struct column {
    const char *head;
    size_t width;
    int optional;
} columns[NCOLS] = {
    {"count", 9, 0}, {"req/s", 7, 0}, {"mean", 7, 1}, {"p50", 7, 0},     {"p90", 7, 1},
    {"p95", 7, 0},   {"p99", 7, 0},   {"max", 7, 1},  {"errors", 13, 0},
};
#define NAME_MIN_W 20 /* drop optional columns before the name gets narrower than this */

/* "  LABEL       item   item ..." wrapped at the terminal width under the first item. */
static void summary_items(FILE *f, const char *label, const cell *items, size_t n, size_t width,
                          const char *gap)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = text_width(items[i].s);
        if (col == 0 || col + strlen(gap) + len > width) {
            fprintf(f, "%s  %-10s  %s", col ? "\n" : "", col ? "" : label, items[i].s);
            col = 14 + len;
        } else {
            fprintf(f, "%s%s", gap, items[i].s);
            col += strlen(gap) + len;
        }
    }
    if (col) fputc('\n', f);
}

/* "  LABEL       200: 1,234   404: 2" */
static void summary_pairs(FILE *f, const char *label, const char **keys, const uint64_t *vals, size_t n,
                          size_t width)
{
    cell items[600];
    for (size_t i = 0; i < n && i < 600; i++)
        items[i] = cell_join(keys[i], ": ", fmt_count(vals[i]).s);
    summary_items(f, label, items, n < 600 ? n : 600, width, "   ");
}

static void summary_header(FILE *f, const report *r, size_t width)
{
    const stats *s = r->total;
    double d = r->duration_s;
    fprintf(f, "\n  scenario    %s\n", r->scenario ? r->scenario : "(unnamed)");
    fprintf(f, "  duration    %-10s  workers %d", fmt_elapsed(d, 1).s, r->workers);
    if (r->workers_lost) fprintf(f, " (%d lost)", r->workers_lost);
    fprintf(f, "   threads %d\n\n", r->threads);
    fprintf(f, "  requests    %-12s %10s/s   errors %s\n", fmt_count(s->requests).s,
            fmt_rate(per_second((double)s->requests, d)).s, fmt_errors(s->request_errors, s->requests).s);
    fprintf(f, "  iterations  %-12s %10s/s   dropped %s\n", fmt_count(s->iterations).s,
            fmt_rate(per_second((double)s->iterations, d)).s, fmt_count(s->dropped).s);
    fprintf(f, "  data in     %-12s %10s/s\n", fmt_bytes((double)s->bytes_in).s,
            fmt_bytes(per_second((double)s->bytes_in, d)).s);
    fprintf(f, "  data out    %-12s %10s/s\n", fmt_bytes((double)s->bytes_out).s,
            fmt_bytes(per_second((double)s->bytes_out, d)).s);
    fprintf(f, "  vus         max %lld\n", (long long)s->vus_max);
    lat_set l = lat_from_hist(s->all, 1000.0);
    const char *names[6] = {"mean", "p50", "p90", "p95", "p99", "max"};
    double vals[6] = {l.mean, l.p50, l.p90, l.p95, l.p99, l.max};
    cell items[6];
    for (int i = 0; i < 6; i++)
        items[i] = cell_join(names[i], " ", fmt_ms(vals[i]).s);
    summary_items(f, "latency", items, 6, width, "  ");
}

/* One row of the request/transaction table, only the columns in `shown`. */
static void table_row(FILE *f, const char *name, size_t nw, const int *shown, uint64_t count, uint64_t errors,
                      const stats_hist *h, double duration_s)
{
    char nb[512];
    lat_set l = lat_from_hist(h, 1000.0);
    cell v[NCOLS] = {
        [COL_COUNT] = fmt_count(count),
        [COL_RATE] = fmt_rate(per_second((double)count, duration_s)),
        [COL_MEAN] = fmt_ms(l.mean),
        [COL_P50] = fmt_ms(l.p50),
        [COL_P90] = fmt_ms(l.p90),
        [COL_P95] = fmt_ms(l.p95),
        [COL_P99] = fmt_ms(l.p99),
        [COL_MAX] = fmt_ms(l.max),
        [COL_ERRORS] = fmt_errors(errors, count),
    };
    name_fit(name, nw, nb, sizeof nb);
    fputs("  ", f);
    put_cell(f, nb, nw, 0);
    for (int i = 0; i < NCOLS; i++) {
        if (!shown[i]) continue;
        fputs("  ", f);
        put_cell(f, v[i].s, columns[i].width, 1);
    }
    fputc('\n', f);
}

/* Pick the columns that fit `width` with a name column of at least NAME_MIN_W; returns the
 * width left for the name. */
static size_t columns_fit(size_t width, int *shown)
{
    static const int drop_order[] = {COL_MEAN, COL_P90, COL_MAX};
    size_t fixed = 2;
    for (int i = 0; i < NCOLS; i++)
        shown[i] = 1, fixed += 2 + columns[i].width;
    for (size_t k = 0; k < 3 && fixed + NAME_MIN_W > width; k++) {
        shown[drop_order[k]] = 0;
        fixed -= 2 + columns[drop_order[k]].width;
    }
    return width > fixed + 12 ? width - fixed : 12;
}

/* The per-name table for STATS_REQUEST or STATS_TRANSACTION, with an "(all)" row for requests
 * when there is more than one name. */
static void summary_table(FILE *f, const report *r, int kind, size_t width)
{
    int shown[NCOLS];
    size_t n, nw = 11, room = columns_fit(width, shown);
    const stats_entry **v = entries_sorted(r->total, kind, &n);
    if (!n) return;
    for (size_t i = 0; i < n; i++)
        if (text_width(v[i]->name) > nw) nw = text_width(v[i]->name);
    if (nw > room) nw = room;
    fputs("\n  ", f);
    put_cell(f, kind == STATS_REQUEST ? "request" : "transaction", nw, 0);
    for (int i = 0; i < NCOLS; i++) {
        if (!shown[i]) continue;
        fputs("  ", f);
        put_cell(f, columns[i].head, columns[i].width, 1);
    }
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
        table_row(f, v[i]->name, nw, shown, v[i]->count, v[i]->errors, v[i]->hist, r->duration_s);
    if (kind == STATS_REQUEST && n > 1)
        table_row(f, "(all)", nw, shown, r->total->requests, r->total->request_errors, r->total->all,
                  r->duration_s);
    free(v);
}

/* "  errors      tls: 2       (certificate verify failed (https://x/))": one line per kind with
 * the first message seen of that kind, cut to the terminal's width. */
static void summary_errors(FILE *f, const stats *s, size_t width)
{
    cell kinds[ERR_KINDS];
    size_t kw = 0;
    for (int k = 1; k < ERR_KINDS; k++) {
        kinds[k] = cell_join(stats_err_name(k), ": ", fmt_count(s->errors_by_kind[k]).s);
        if (s->errors_by_kind[k] && text_width(kinds[k].s) > kw) kw = text_width(kinds[k].s);
    }
    int first = 1;
    for (int k = 1; k < ERR_KINDS; k++) {
        if (!s->errors_by_kind[k]) continue;
        fprintf(f, "  %-10s  ", first ? "errors" : "");
        first = 0;
        if (!s->err_sample[k]) {
            fprintf(f, "%s\n", kinds[k].s);
            continue;
        }
        char sb[512];
        size_t room = width > 14 + kw + 4 + 20 ? width - 14 - kw - 4 : 20;
        name_fit(s->err_sample[k], room, sb, sizeof sb);
        put_cell(f, kinds[k].s, kw, 0);
        fprintf(f, "  (%s)\n", sb);
    }
}

static void summary_status_errors(FILE *f, const stats *s, size_t width)
{
    const char *keys[600];
    char names[600][12];
    uint64_t vals[600];
    size_t n = 0;
    for (int code = 1; code < 600; code++)
        if (s->status[code]) {
            snprintf(names[n], sizeof names[n], "%d", code);
            keys[n] = names[n], vals[n++] = s->status[code];
        }
    if (s->status[0]) keys[n] = "none", vals[n++] = s->status[0];
    if (n) fputc('\n', f);
    summary_pairs(f, "status", keys, vals, n, width);
    summary_errors(f, s, width);
}

static void summary_checks(FILE *f, const report *r, size_t width)
{
    size_t n;
    const stats_entry **v = entries_sorted(r->total, STATS_CHECK, &n);
    const stats *s = r->total;
    if (!n && !s->checks_passed && !s->checks_failed) return;
    fprintf(f, "\n  checks      %s (%s/%s)\n",
            fmt_pct(s->checks_passed, s->checks_passed + s->checks_failed).s, fmt_count(s->checks_passed).s,
            fmt_count(s->checks_passed + s->checks_failed).s);
    size_t nw = 8;
    for (size_t i = 0; i < n; i++)
        if (text_width(v[i]->name) > nw) nw = text_width(v[i]->name);
    if (nw > width - 40) nw = width - 40;
    for (size_t i = 0; i < n; i++) {
        char nb[512];
        uint64_t all = v[i]->count + v[i]->errors;
        name_fit(v[i]->name, nw, nb, sizeof nb);
        fprintf(f, "    %-4s  ", v[i]->errors ? "FAIL" : "ok");
        put_cell(f, nb, nw, 0);
        fprintf(f, "  %8s  (%s/%s)\n", fmt_pct(v[i]->count, all).s, fmt_count(v[i]->count).s,
                fmt_count(all).s);
    }
    free(v);
}

/* Items after a name already printed up to column `col`, two spaces apart, wrapping at `width`
 * to continue under the first item. */
static void put_items(FILE *f, const cell *items, size_t n, size_t col, size_t width)
{
    size_t at = col;
    for (size_t i = 0; i < n; i++) {
        size_t w = text_width(items[i].s);
        if (i > 0 && at + 2 + w > width) {
            fprintf(f, "\n%*s", (int)col, "");
            at = col;
        } else if (i > 0) {
            fputs("  ", f);
            at += 2;
        }
        fputs(items[i].s, f);
        at += w;
    }
    fputc('\n', f);
}

static void summary_custom(FILE *f, const report *r, size_t width)
{
    size_t nc, nt, nw = 8;
    const stats_entry **c = entries_sorted(r->total, STATS_COUNTER, &nc);
    const stats_entry **t = entries_sorted(r->total, STATS_TREND, &nt);
    for (size_t i = 0; i < nc; i++)
        nw = text_width(c[i]->name) > nw ? text_width(c[i]->name) : nw;
    for (size_t i = 0; i < nt; i++)
        nw = text_width(t[i]->name) > nw ? text_width(t[i]->name) : nw;
    if (nw > width / 3) nw = width / 3;
    if (nc || nt) fputs("\n  custom\n", f);
    for (size_t i = 0; i < nc; i++) {
        char nb[512];
        name_fit(c[i]->name, nw, nb, sizeof nb);
        fputs("    counter  ", f);
        put_cell(f, nb, nw, 0);
        fprintf(f, "  sum %s  rate %s/s\n", fmt_value(c[i]->sum).s,
                fmt_rate(per_second(c[i]->sum, r->duration_s)).s);
    }
    for (size_t i = 0; i < nt; i++) {
        char nb[512];
        trend_set l = trend_from_entry(t[i]);
        name_fit(t[i]->name, nw, nb, sizeof nb);
        fputs("    trend    ", f);
        put_cell(f, nb, nw, 0);
        fputs("  ", f);
        cell items[] = {
            cell_join("count", " ", fmt_count(t[i]->count).s), cell_join("mean", " ", fmt_value(l.mean).s),
            cell_join("min", " ", fmt_value(l.min).s),         cell_join("p50", " ", fmt_value(l.p50).s),
            cell_join("p95", " ", fmt_value(l.p95).s),         cell_join("max", " ", fmt_value(l.max).s)};
        put_items(f, items, sizeof items / sizeof items[0], 13 + nw + 2, width);
    }
    free(c);
    free(t);
}

static void summary_thresholds(FILE *f, const thresholds *th, size_t width)
{
    size_t kw = 8, ew = 6;
    if (!th || !th->n) return;
    for (size_t i = 0; i < th->n; i++) {
        if (text_width(th->items[i].key) > kw) kw = text_width(th->items[i].key);
        if (text_width(th->items[i].expr) > ew) ew = text_width(th->items[i].expr);
    }
    if (kw > width / 2) kw = width / 2;
    if (ew > 20) ew = 20;
    fputs("\n  thresholds\n", f);
    for (size_t i = 0; i < th->n; i++) {
        char kb[512], eb[128], ob[64];
        name_fit(th->items[i].key, kw, kb, sizeof kb);
        name_fit(th->items[i].expr, ew, eb, sizeof eb);
        fprintf(f, "    %-4s  ", th->items[i].nodata ? "none" : th->items[i].ok ? "ok" : "FAIL");
        put_cell(f, kb, kw, 0);
        fputs("  ", f);
        put_cell(f, eb, ew, 0);
        fprintf(f, "  %s%s\n", thresholds_describe(&th->items[i], ob, sizeof ob),
                th->items[i].abort ? "  (aborts)" : "");
    }
}

void report_summary(FILE *f, const report *r)
{
    size_t width = term_width(f);
    summary_header(f, r, width);
    summary_table(f, r, STATS_REQUEST, width);
    summary_table(f, r, STATS_TRANSACTION, width);
    summary_status_errors(f, r->total, width);
    summary_checks(f, r, width);
    summary_custom(f, r, width);
    summary_thresholds(f, r->thresholds, width);
    if (r->interrupted)
        fprintf(f, "\n  interrupted after %s: these numbers cover the run up to the stop\n",
                fmt_elapsed(r->duration_s, 1).s);
    if (r->wire_errors)
        fprintf(f, "\n  wire errors %llu malformed messages were dropped by the queen\n",
                (unsigned long long)r->wire_errors);
    fputc('\n', f);
    fflush(f);
}

/* ---- files ------------------------------------------------------------------------------- */

/* A JSON string: quotes, backslashes and control characters escaped; broken UTF-8 becomes
 * U+FFFD so the file always parses. */
static void json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', f);
    while (*p) {
        int n = utf8_len(p);
        if (n == 0)
            fputs("\\ufffd", f), p++;
        else if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p++);
        else if (*p == '\n')
            fputs("\\n", f), p++;
        else if (*p == '\t')
            fputs("\\t", f), p++;
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p++);
        else
            fwrite(p, 1, (size_t)n, f), p += n;
    }
    fputc('"', f);
}

/* A JSON number: null when not finite; '.' as the decimal point whatever the locale. */
static void json_num(FILE *f, double v)
{
    char b[64];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    snprintf(b, sizeof b, "%.10g", v);
    for (char *c = b; *c; c++)
        if (*c == ',') *c = '.';
    fputs(b, f);
}

/* Object members: each helper prints the separator kept in *sep, then `"key":value`. */
static void jkey(FILE *f, const char **sep, const char *key)
{
    fputs(*sep, f);
    json_str(f, key);
    fputc(':', f);
    *sep = ",";
}
static void jnum(FILE *f, const char **sep, const char *key, double v) { jkey(f, sep, key), json_num(f, v); }
static void juint(FILE *f, const char **sep, const char *key, uint64_t v)
{
    jkey(f, sep, key);
    fprintf(f, "%llu", (unsigned long long)v);
}

static void json_lat(FILE *f, const stats_hist *h)
{
    const char *sep = "";
    lat_set l = lat_from_hist(h, 1000.0);
    fputc('{', f);
    jnum(f, &sep, "mean", l.mean), jnum(f, &sep, "p50", l.p50), jnum(f, &sep, "p90", l.p90);
    jnum(f, &sep, "p95", l.p95), jnum(f, &sep, "p99", l.p99), jnum(f, &sep, "max", l.max);
    fputc('}', f);
}

static void json_totals(FILE *f, const report *r)
{
    const stats *s = r->total;
    const char *sep = "";
    fputs("{", f);
    juint(f, &sep, "requests", s->requests), juint(f, &sep, "errors", s->request_errors);
    jnum(f, &sep, "rps", per_second((double)s->requests, r->duration_s));
    juint(f, &sep, "bytes_in", s->bytes_in), juint(f, &sep, "bytes_out", s->bytes_out);
    juint(f, &sep, "iterations", s->iterations);
    juint(f, &sep, "checks_passed", s->checks_passed), juint(f, &sep, "checks_failed", s->checks_failed);
    juint(f, &sep, "dropped", s->dropped);
    jkey(f, &sep, "vus_max");
    fprintf(f, "%lld}", (long long)s->vus_max);
}

/* "requests" / "transactions": {NAME: {"count","errors","rps","latency_ms"}}. */
static void json_named(FILE *f, const report *r, int kind)
{
    size_t n;
    const stats_entry **v = entries_sorted(r->total, kind, &n);
    const char *sep = "";
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        const char *in = "";
        fputs(sep, f), fputs("\n    ", f), sep = "";
        jkey(f, &sep, v[i]->name);
        fputc('{', f);
        juint(f, &in, "count", v[i]->count), juint(f, &in, "errors", v[i]->errors);
        jnum(f, &in, "rps", per_second((double)v[i]->count, r->duration_s));
        jkey(f, &in, "latency_ms");
        json_lat(f, v[i]->hist);
        fputc('}', f);
    }
    fputc('}', f);
    free(v);
}

static void json_checks(FILE *f, const report *r)
{
    size_t n;
    const stats_entry **v = entries_sorted(r->total, STATS_CHECK, &n);
    const char *sep = "";
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        const char *in = "";
        jkey(f, &sep, v[i]->name);
        fputc('{', f);
        juint(f, &in, "passed", v[i]->count), juint(f, &in, "failed", v[i]->errors);
        fputc('}', f);
    }
    fputc('}', f);
    free(v);
}

static void json_custom(FILE *f, const report *r)
{
    size_t nc, nt;
    const stats_entry **c = entries_sorted(r->total, STATS_COUNTER, &nc);
    const stats_entry **t = entries_sorted(r->total, STATS_TREND, &nt);
    const char *sep = "";
    fputc('{', f);
    for (size_t i = 0; i < nc; i++) {
        const char *in = ",";
        jkey(f, &sep, c[i]->name);
        fputs("{\"type\":\"counter\"", f);
        jnum(f, &in, "value", c[i]->sum), jnum(f, &in, "rate", per_second(c[i]->sum, r->duration_s));
        fputc('}', f);
    }
    for (size_t i = 0; i < nt; i++) {
        const char *in = ",";
        trend_set l = trend_from_entry(t[i]);
        jkey(f, &sep, t[i]->name);
        fputs("{\"type\":\"trend\"", f);
        juint(f, &in, "count", t[i]->count);
        jnum(f, &in, "mean", l.mean), jnum(f, &in, "min", l.min), jnum(f, &in, "p50", l.p50);
        jnum(f, &in, "p90", l.p90), jnum(f, &in, "p95", l.p95), jnum(f, &in, "p99", l.p99);
        jnum(f, &in, "max", l.max);
        fputc('}', f);
    }
    fputc('}', f);
    free(c);
    free(t);
}

static void json_status_errors(FILE *f, const stats *s)
{
    const char *sep = "";
    fputs(",\n  \"status\":{", f);
    for (int code = 1; code < 600; code++) {
        char k[12];
        snprintf(k, sizeof k, "%d", code);
        if (s->status[code]) juint(f, &sep, k, s->status[code]);
    }
    fputs("},\n  \"errors_by_kind\":{", f);
    sep = "";
    for (int k = 1; k < ERR_KINDS; k++)
        if (s->errors_by_kind[k]) juint(f, &sep, stats_err_name(k), s->errors_by_kind[k]);
    fputs("},\n  \"errors_sample\":{", f);
    sep = "";
    for (int k = 1; k < ERR_KINDS; k++)
        if (s->errors_by_kind[k] && s->err_sample[k])
            jkey(f, &sep, stats_err_name(k)), json_str(f, s->err_sample[k]);
    fputc('}', f);
}

static void json_thresholds_series(FILE *f, const report *r)
{
    const char *sep = "";
    fputs(",\n  \"thresholds\":[", f);
    for (size_t i = 0; r->thresholds && i < r->thresholds->n; i++) {
        const threshold *th = &r->thresholds->items[i];
        const char *in = "";
        fprintf(f, "%s\n    {", sep);
        jkey(f, &in, "key"), json_str(f, th->key);
        jkey(f, &in, "expr"), json_str(f, th->expr);
        jkey(f, &in, "ok"), fputs(th->ok ? "true" : "false", f);
        jnum(f, &in, "observed", th->observed);
        if (th->nodata) jkey(f, &in, "no_data"), fputs("true", f);
        fputc('}', f);
        sep = ",";
    }
    fputs("],\n  \"series\":[", f);
    sep = "";
    for (size_t i = 0; i < r->nrows; i++) {
        const report_row *w = &r->rows[i];
        const char *in = "";
        fprintf(f, "%s\n    {", sep);
        jnum(f, &in, "t", w->t), jkey(f, &in, "vus"), fprintf(f, "%lld", (long long)w->vus);
        jnum(f, &in, "rps", w->rps), juint(f, &in, "requests", w->requests);
        juint(f, &in, "errors", w->errors), jnum(f, &in, "p50", w->p50);
        jnum(f, &in, "p95", w->p95), jnum(f, &in, "p99", w->p99);
        juint(f, &in, "bytes_in", w->bytes_in);
        fputc('}', f);
        sep = ",";
    }
    fputs("]", f);
}

static void json_write(FILE *f, const report *r)
{
    fputs("{\n  \"scenario\":", f);
    json_str(f, r->scenario);
    fputs(",\n  \"totals\":", f);
    json_totals(f, r);
    fputs(",\n  \"latency_ms\":", f);
    json_lat(f, r->total->all);
    fputs(",\n  \"requests\":", f);
    json_named(f, r, STATS_REQUEST);
    fputs(",\n  \"transactions\":", f);
    json_named(f, r, STATS_TRANSACTION);
    fputs(",\n  \"checks\":", f);
    json_checks(f, r);
    fputs(",\n  \"custom\":", f);
    json_custom(f, r);
    json_status_errors(f, r->total);
    fprintf(f,
            ",\n  \"workers\":%d,\n  \"workers_lost\":%d,\n  \"threads\":%d,\n  \"duration_s\":", r->workers,
            r->workers_lost, r->threads);
    json_num(f, r->duration_s);
    fprintf(f, ",\n  \"interrupted\":%s", r->interrupted ? "true" : "false");
    fprintf(f, ",\n  \"wire_errors\":%llu", (unsigned long long)r->wire_errors);
    json_thresholds_series(f, r);
    fputs("\n}\n", f);
}

/* A CSV number: empty when not finite, '.' as the decimal point. */
static void csv_num(FILE *f, double v)
{
    if (isfinite(v)) json_num(f, v);
}

static void csv_write(FILE *f, const report *r)
{
    fputs("t,vus,rps,requests,errors,p50,p95,p99,bytes_in\n", f);
    for (size_t i = 0; i < r->nrows; i++) {
        const report_row *w = &r->rows[i];
        csv_num(f, w->t);
        fprintf(f, ",%lld,", (long long)w->vus);
        csv_num(f, w->rps);
        fprintf(f, ",%llu,%llu,", (unsigned long long)w->requests, (unsigned long long)w->errors);
        csv_num(f, w->p50), fputc(',', f), csv_num(f, w->p95), fputc(',', f), csv_num(f, w->p99);
        fprintf(f, ",%llu\n", (unsigned long long)w->bytes_in);
    }
}

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

int report_out_check(const char *path, char *err, size_t errlen)
{
    if (!has_ext(path, ".json") && !has_ext(path, ".csv")) {
        snprintf(err, errlen, "--out %s: unknown file type (use .json for the summary, .csv for the series)",
                 path);
        return -1;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--out %s: no directory %s", path, dir);
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(err, errlen, "--out %s: directory %s is not writable", path, dir);
        return -1;
    }
    if (stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || access(path, W_OK) != 0)) {
        snprintf(err, errlen, "--out %s: %s", path,
                 S_ISDIR(st.st_mode) ? "is a directory" : "is not writable");
        return -1;
    }
    return 0;
}

int report_write(const char *path, const report *r)
{
    int json = has_ext(path, ".json"), csv = has_ext(path, ".csv");
    if (!json && !csv) {
        errno = EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    if (json)
        json_write(f, r);
    else
        csv_write(f, r);
    int bad = ferror(f), saved = errno;
    if (fclose(f) != 0 || bad) {
        if (bad) errno = saved ? saved : EIO;
        return -1;
    }
    return 0;
}
