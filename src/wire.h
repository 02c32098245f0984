/* wire: the messages between the queen (ROUTER) and workers (DEALER), encoded with msgpack.
 * Every message is one frame: [protocol version, type, {field: value, ...}]. Decoding trusts
 * nothing: a wrong version, type, shape or size is refused with a reason, never a crash. */
#ifndef PARROT_WIRE_H
#define PARROT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_MAX_FRAME (80u * 1024 * 1024) /* a bundle (64 MB) plus headroom */
#define WIRE_MAX_LIST 4096                 /* entries in a string list */

enum wire_type {
    WIRE_HELLO = 1,  /* w->q: id, threads, hashes (bundles cached), epoch (last queen seen), run and
                        code (the run it holds from that queen: 1 preparing, 2 running, 3 done) */
    WIRE_WELCOME,    /* q->w: epoch, heartbeat (seconds) */
    WIRE_REHELLO,    /* q->w: introduce yourself again (unknown worker) */
    WIRE_HEARTBEAT,  /* both ways: epoch; q->w may carry run, seq: acknowledged snapshots (as ACK) */
    WIRE_BUNDLE_GET, /* w->q: hash */
    WIRE_BUNDLE,     /* q->w: hash, data (bundle_encode format) */
    WIRE_HAVE,       /* w->q: hash (this bundle is ready) */
    WIRE_RUN,        /* q->w: epoch, run, code (0 prepare: hash, version, script, overrides...;
                        1 setup; 2 start: slot, nslots, elapsed, setup, duration = the load's
                        latest end in seconds; 3 teardown) */
    WIRE_RELOAD,     /* q->w: run, hash, version, script */
    WIRE_SET_LOAD,   /* q->w: run, slot, nslots (the share changed) */
    WIRE_PAUSE,      /* q->w: run */
    WIRE_RESUME,     /* q->w: run */
    WIRE_STOP,       /* q->w: run, code (0 graceful, 1 hard, 2 run over); w->q: run, text (the
                        scenario ended the test: parrot.abort_test) */
    WIRE_HANDBRAKE,  /* q->w: stop everything now, forget queued commands */
    WIRE_STATS,      /* w->q: run, seq, data (stats_encode format) */
    WIRE_ACK,        /* q->w: run, seq (every numbered message up to seq arrived, none missing);
                        the queen sends these inside its heartbeats, every 2 s to each worker */
    WIRE_BYE,        /* w->q: the worker leaves */
    WIRE_SETUP,      /* w->q: run, setup (JSON result of setup()) ; q->w: run, setup */
    WIRE_DONE,       /* w->q: run, seq, code (0 done, 2 could not load the scenario, 3 could not
                        get the bundle) */
    WIRE_LOG,        /* w->q: text (a line for the user), code (1 = error) */
    WIRE_ROWS,       /* w->q: run, text (the key of a data feeder or counter), code (the load
                        thread), count (positions wanted); q->w: the same with count (positions
                        leased) and first (the first of the lease, a range nobody else in the run
                        gets) */
    WIRE_TYPES
};
const char *wire_type_name(int type); /* "HELLO", ...; "?" when unknown */

/* A worker numbers what it reports in a run (STATS, HAVE, SETUP, DONE and its STOP) with one
 * sequence, 1, 2, 3, ... that never restarts within a run of a queen's epoch. The queen acts on
 * them strictly in that order, acknowledges the highest seq up to which it has everything, and
 * drops duplicates; the worker re-sends what stays unacknowledged. A message with seq 0 is not
 * numbered (tools) and is taken as it comes. */
#define WIRE_IS_NUMBERED(type)                                                                               \
    ((type) == WIRE_STATS || (type) == WIRE_HAVE || (type) == WIRE_SETUP || (type) == WIRE_DONE ||           \
     (type) == WIRE_STOP)

/* One message: the fields a type uses are set, the rest stay zero/NULL. Owned strings. */
typedef struct wire_msg {
    int type;
    char *id; /* worker name */
    int64_t threads;
    char **hashes; /* NULL-terminated list */
    size_t nhashes;
    uint64_t epoch; /* queen start id */
    uint64_t run;   /* run id (epoch-ordered counter) */
    uint64_t seq;   /* snapshot sequence number */
    char *hash;     /* bundle content hash (hex) */
    char *version;  /* bundle version (hex) */
    char *script;   /* entry file inside the bundle, or NULL with url */
    char *data;     /* bytes (bundle, snapshot); may hold NULs */
    size_t data_len;
    int64_t slot, nslots; /* this worker's first load slot and the total slots */
    double elapsed;       /* seconds since the run started at the queen */
    double heartbeat;     /* heartbeat interval, seconds */
    char *setup;          /* setup()'s JSON */
    char *text;           /* log line */
    int64_t code;
    /* the run's overrides (as parrot run's options) */
    char *url, *method, *body, *proxy;
    char **env, **headers, **resolve; /* NULL-terminated lists */
    size_t nenv, nheaders, nresolve;
    int64_t vus, iterations, dump;
    double rate, duration;
    int insecure;
    int64_t first, count; /* ROWS: a lease of rows [first, first + count) */
} wire_msg;

/* Encode into a malloc'ed buffer. Returns 0, or -1 (unknown type, out of memory). */
int wire_encode(const wire_msg *m, char **out, size_t *outlen);
/* Decode `len` bytes into *m (zeroed first). Returns 0, or -1 with a one-line reason in err
 * ("unknown protocol version 7", "field 'slot' is not an integer", ...); *m is then empty. */
int wire_decode(const char *buf, size_t len, wire_msg *m, char *err, size_t errlen);
void wire_msg_free(wire_msg *m); /* frees the owned fields, leaves *m zeroed */
/* The kind of a wire_decode reason, to count and log each kind once: "size", "encoding",
 * "version", "type" or "field". */
const char *wire_err_kind(const char *err);
/* 1 the first time `kind` (a wire_err_kind name, or "frames" for a message of the wrong shape) is
 * seen in *seen (a bit set the caller keeps, zero at first), else 0: each kind is logged once. */
int wire_err_once(unsigned *seen, const char *kind);

#endif
