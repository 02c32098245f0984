/* report: what a run tells its user: the live progress line each second, the final summary on
 * the terminal, and the output files (summary.json, series.csv). It only reads statistics. */
#ifndef PARROT_REPORT_H
#define PARROT_REPORT_H

#include <stdio.h>
#include "stats.h"
#include "thresholds.h"

typedef struct report_row { /* one second of the run */
    double t;               /* seconds since start, at the end of the second */
    int64_t vus;
    double rps;
    uint64_t requests, errors;
    double p50, p95, p99; /* ms */
    uint64_t bytes_in;
} report_row;

typedef struct report {
    const char *scenario;   /* name */
    const stats *total;     /* everything since the start */
    const report_row *rows; /* one per second */
    size_t nrows;
    int workers, workers_lost;
    int threads;
    double duration_s;
    const thresholds *thresholds; /* may be NULL */
    int interrupted;              /* stopped by Ctrl-C / SIGTERM / an abort threshold */
    uint64_t wire_errors;         /* malformed messages the queen dropped (shown when non-zero) */
} report;

/* Build the row for one interval (`iv` = what arrived during that second). */
report_row report_row_make(const stats *iv, double t, double interval_s);
/* The progress line: "  12s  vus 50  rps 9123  p50 1.2ms  p95 3.4ms  p99 8.0ms  errors 0".
 * `tty`: redraw one line (\r, clear); else one line per call. */
void report_progress(FILE *f, const report_row *row, double duration_s, int tty);
/* The end-of-run summary (per request name: count, req/s, mean, p50, p90, p95, p99, max, errors;
 * transactions; status codes; error kinds; checks; custom metrics; thresholds). */
void report_summary(FILE *f, const report *r);
/* Before a run: can `path` be written as an output file (a known extension, an existing writable
 * directory, not a directory or a read-only file itself)? 0, or -1 with a one-line reason. */
int report_out_check(const char *path, char *err, size_t errlen);
/* Write by extension: ".json" -> summary.json layout, ".csv" -> series. Returns 0 or -1 with errno. */
int report_write(const char *path, const report *r);

#endif
