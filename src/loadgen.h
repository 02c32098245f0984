/* loadgen: the load threads of one worker. Each thread is a libuv loop with one LuaJIT state
 * and a VU scheduler running its slot of the scenario; the owner (the worker's control loop)
 * tells them to run a hook, start, change share or stop, and hears back through callbacks. */
#ifndef PARROT_LOADGEN_H
#define PARROT_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "luart.h"

typedef struct loadgen_plan {
    const char *script;        /* scenario path; NULL with overrides.url */
    luart_overrides overrides; /* pointers must outlive the loadgen */
    const char *const *env;    /* "NAME=value", NULL-terminated or NULL */
    int threads;               /* load threads, >= 1 */
    http_client_config http;   /* pointers must outlive the loadgen */
    int slot, nslots;          /* this worker's first load slot among all the cluster's slots */
    int alone;                 /* the only worker its queen can have (parrot run): positions and ids
                                  over the run are this process's (parrot.cluster.alone) */
} loadgen_plan;

/* Called on the owner's loop thread. */
typedef struct loadgen_events {
    /* Every thread loaded the scenario (ok), or one could not (msg says why). */
    void (*on_ready)(void *ud, int ok, const char *msg);
    /* An interval snapshot (stats_encode format) of one thread; valid during the call. */
    void (*on_snapshot)(void *ud, int thread, const char *buf, size_t len);
    /* A line for the user: a new distinct script error, ... */
    void (*on_message)(void *ud, const char *msg);
    /* A hook ended; `json` is setup()'s result (NULL when none). */
    void (*on_hook_done)(void *ud, const char *json);
    /* Every thread's share of the load ended (final snapshots were delivered before). */
    void (*on_run_done)(void *ud);
    /* The scenario asked to end the whole test (parrot.abort_test), saying why. */
    void (*on_abort_test)(void *ud, const char *why);
    /* A data feeder or counter of `thread` (named by `key`) wants `count` more positions of the
     * run (answer with loadgen_rows). */
    void (*on_rows)(void *ud, int thread, const char *key, int64_t count);
    void *ud;
} loadgen_events;

typedef struct loadgen loadgen;

/* Start the threads; they load the scenario and report on_ready. NULL with a reason in err. */
loadgen *loadgen_start(uv_loop_t *owner, const loadgen_plan *plan, const loadgen_events *ev, char *err,
                       size_t errlen);
/* Run "setup" or "teardown" (with setup's JSON) on the first thread; on_hook_done follows. */
void loadgen_hook(loadgen *g, const char *which, const char *data);
/* Start the load as if it had started `elapsed` seconds ago; on_run_done follows. `end_s` (0: none)
 * is when the load ends at the latest, in seconds from the start (duration plus graceful stop):
 * a thread stuck past it is stopped as if the load had been stopped. */
void loadgen_run(loadgen *g, double elapsed, const char *setup_json, double end_s);
/* The share changed: this worker now holds slots [slot, slot + threads) of nslots. */
void loadgen_set_share(loadgen *g, int slot, int nslots);
/* The queen leased positions [first, first + count) of `key` to `thread` (count 0: refused). */
void loadgen_rows(loadgen *g, int thread, const char *key, int64_t first, int64_t count);
/* Graceful: no new iterations, running ones get 2 s, then they are cut. Hard: cut now. */
void loadgen_stop(loadgen *g, int hard);
/* Quit and join the threads (the owner's loop must not be inside a loadgen callback). */
void loadgen_free(loadgen *g);

#endif
