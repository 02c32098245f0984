/* worker: one machine's load process as the queen sees it. A control loop holds the DEALER
 * socket (HELLO, heartbeats, bundles, snapshots with sequence numbers, re-sends after a
 * reconnect) and drives a loadgen of N load threads with the share the queen assigns. */
#ifndef PARROT_WORKER_H
#define PARROT_WORKER_H

#include "curve.h"
#include "http.h"

typedef struct worker_options {
    const char *queen;          /* endpoint: tcp://HOST:PORT or inproc://... */
    const char *name;           /* NULL: hostname-pid */
    int threads;                /* load threads, 0 = one per core */
    const char *const *sources; /* --source addresses, NULL-terminated or NULL */
    const char *keys_dir;       /* --keys DIR: this worker's CURVE pair (NULL: no CURVE) */
    const char *queen_key;      /* --queen-key KEY|FILE: the queen's public key to pin */
    int quiet;
} worker_options;

/* `parrot worker`: runs until SIGINT/SIGTERM; returns the exit code. */
int worker_main(const worker_options *o);

/* The worker of `parrot run`: the same code on its own thread, over `zctx` (the queen's ZeroMQ
 * context, for inproc://). Returns NULL with a reason in err. */
typedef struct worker_thread worker_thread;
worker_thread *worker_thread_start(void *zctx, const worker_options *o, char *err, size_t errlen);
/* Ask it to leave and join it. */
void worker_thread_stop(worker_thread *t);

#endif
