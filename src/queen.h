/* queen: coordinates a run. It loads the scenario to learn its plan and thresholds, starts the
 * load, merges the interval snapshots into live progress and totals, stops the run (duration,
 * Ctrl-C, abort thresholds), and writes the summary and output files. */
#ifndef PARROT_QUEEN_H
#define PARROT_QUEEN_H

#include "http.h"
#include "luart.h"

typedef struct queen_options {
    const char *script;       /* scenario file, or NULL with overrides.url */
    luart_overrides overrides;
    const char *const *env;   /* -e NAME=value, NULL-terminated */
    int threads;              /* load threads, 0 = one per core */
    const char *const *outs;  /* --out files (.json, .csv), NULL-terminated */
    int quiet;                /* no live progress */
    http_client_config http;
} queen_options;

/* Run to the end; returns the exit code: 0 ok, 99 thresholds crossed, 2 bad scenario or usage,
 * 1 the run failed. */
int queen_run(const queen_options *o);

#endif
