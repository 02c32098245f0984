/* tsreport: the `--tsung-report` section, laid out like the tables of Tsung's report: for request,
 * page, session, connect and each tr_ transaction the highest and lowest 10-second mean, the
 * highest and mean rate, the mean and the count; then network throughput (size_rcv, size_sent),
 * counters, the maxima of users and connected, the error_* counters and HTTP status codes. */
#ifndef PARROT_TSREPORT_H
#define PARROT_TSREPORT_H

#include <stdio.h>

#include "stats.h"

typedef struct tsreport tsreport;

tsreport *tsreport_new(void);
void tsreport_free(tsreport *t);
/* Add one second of the run (what the workers reported in it). Every ten seconds a window
 * closes; as in tsung_stats.pl, a last partial window does not count for the 10-second columns. */
void tsreport_add(tsreport *t, const stats *second);
/* The section, for the totals `total` over `duration_s`. */
void tsreport_print(FILE *f, const tsreport *t, const stats *total, double duration_s);

#endif
