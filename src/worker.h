/* worker: one machine's load. N load threads, each a libuv loop with one LuaJIT state and a VU
 * scheduler, run the share of a scenario they are told to run (setup once, the load, teardown
 * once); what they measure leaves as serialized interval snapshots, one per thread per second. */
#ifndef PARROT_WORKER_H
#define PARROT_WORKER_H

#include <stddef.h>
#include <uv.h>

#include "http.h"
#include "luart.h"

typedef struct worker_plan {
    const char *script;        /* scenario path; NULL with overrides.url */
    luart_overrides overrides; /* pointers must outlive the worker */
    const char *const *env;    /* "NAME=value", NULL-terminated or NULL */
    int threads;               /* load threads, >= 1 */
    http_client_config http;   /* pointers must outlive the worker */
} worker_plan;

/* Everything is called on the owner's loop thread. */
typedef struct worker_events {
    /* An interval snapshot (stats_encode format) of one thread; valid during the call. */
    void (*on_snapshot)(void *ud, int thread, const char *buf, size_t len);
    /* A line for the user: a new distinct script error, a failure to start, ... */
    void (*on_message)(void *ud, const char *msg);
    /* The load started on every thread (after setup); t0 is uv_hrtime() seconds. */
    void (*on_started)(void *ud, double t0);
    /* Every thread ended and teardown ran. `failed` when the run could not start. */
    void (*on_done)(void *ud, int failed);
    void *ud;
} worker_events;

typedef struct worker worker;

/* Start the threads on `owner` (the caller's loop). Returns NULL with a reason in err. */
worker *worker_start(uv_loop_t *owner, const worker_plan *plan, const worker_events *ev, char *err,
                     size_t errlen);
/* Stop the load. Graceful: no new iterations; running ones get 2 s, then they are cut.
 * Hard: cut everything now. on_done follows either way. */
void worker_stop(worker *w, int hard);
/* Free after on_done (joins the threads). */
void worker_free(worker *w);

#endif
