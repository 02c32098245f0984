/* queen: coordinates a run over the wire. It builds the scenario's bundle, binds a ROUTER,
 * waits for workers, splits the load between them in proportion to their threads, merges their
 * interval snapshots into live progress and totals, and prints the summary and output files.
 * `parrot run` is a queen with one embedded worker over inproc://, the same code as a cluster. */
#ifndef PARROT_QUEEN_H
#define PARROT_QUEEN_H

#include "http.h"
#include "luart.h"

typedef struct queen_options {
    const char *script; /* scenario file, or NULL with overrides.url */
    luart_overrides overrides;
    const char *const *env;  /* -e NAME=value, NULL-terminated */
    int threads;             /* the embedded worker's load threads, 0 = one per core */
    const char *const *outs; /* --out files (.json, .csv), NULL-terminated */
    int quiet;               /* no live progress */
    int tsung_report;        /* --tsung-report: add a section laid out like Tsung's report */
    http_client_config http; /* insecure, proxy, resolve, dump: shipped to workers; sources: local */
    /* cluster */
    const char *bind;       /* NULL: embedded worker over inproc (parrot run) */
    int expect;             /* workers to wait for before starting (default 1) */
    const char *keys_dir;   /* --keys DIR: the queen's CURVE pair */
    const char *allow_file; /* --allow FILE: admitted worker public keys */
    int insecure_bind;      /* --insecure: allow a non-loopback bind without keys */
    int serve;              /* --serve: stay up between runs (the terminal starts the next) */
} queen_options;

/* Run to the end; returns the exit code: 0 ok, 99 thresholds crossed, 2 bad scenario or usage,
 * 1 the run failed. */
int queen_run(const queen_options *o);

#endif
