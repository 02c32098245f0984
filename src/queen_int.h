/* queen_int: the queen's state, shared by the two files of the queen module (queen.c runs the
 * test over the wire; queen_plan.c reads the plan, builds the bundle and opens the socket).
 * Nothing outside the queen module includes this header: queen.h is the module's surface. */
#ifndef PARROT_QUEEN_INT_H
#define PARROT_QUEEN_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <uv.h>

#include "bundle.h"
#include "curve.h"
#include "leases.h"
#include "queen.h"
#include "report.h"
#include "stats.h"
#include "thresholds.h"
#include "tsreport.h"
#include "worker.h"
#include "zsock.h"

#define MAX_WORKERS 4096
#define WORKER_INDEX (2 * MAX_WORKERS) /* slots of the peer -> worker index, a power of two */
#define QW_THREADS 256                 /* load threads per worker whose gauges are tracked apart */
#define HEARTBEAT_MS 1000              /* the beat: lost workers and timeouts are checked on each */
#define BEATS_PER_HEARTBEAT 2          /* a worker gets a HEARTBEAT (its acknowledgements) every 2nd beat */
#define LOST_AFTER_MS 3500             /* three missed heartbeats */
#define STOP_GRACE_S 10.0              /* after a stop, how long to wait for the workers' last snapshots */
#define PREPARE_TIMEOUT_MS 60000 /* a worker not ready (bundle fetched, scenario loaded) by then sits out */
#define SETUP_TIMEOUT_MS 300000  /* setup() that has not answered by then fails the run */
#define HS_LINES 16              /* handshake lines waiting for the loop */
#define HS_SAID 64               /* distinct handshake lines remembered (each is said once) */

enum run_code { RUN_PREPARE = 0, RUN_SETUP = 1, RUN_START = 2, RUN_TEARDOWN = 3 };
enum qphase { Q_WAITING, Q_PREPARE, Q_SETUP, Q_RUN, Q_TEARDOWN, Q_DONE };
enum wstate { W_IDLE, W_PREPARING, W_READY, W_RUNNING, W_FINISHED, W_LOST };

typedef struct qworker {
    char peer[256]; /* the ROUTER identity: one per worker process (it picks it at start) */
    size_t peerlen;
    char name[128];
    int threads;
    uint64_t last_seen_ms;
    int state;  /* enum wstate */
    int in_run; /* takes part in the current run */
    int slot;
    uint64_t seq_run;     /* the run last_seq belongs to: kept while the worker is lost and back */
    uint64_t last_seq;    /* every numbered message up to this one was taken (and is acknowledged) */
    uint64_t ready_run;   /* the run whose HAVE was taken */
    uint64_t done_run;    /* the run whose DONE was taken */
    uint64_t counted_run; /* the run in whose `workers` it is counted (once) */
    int lost_in_run;      /* counted in `workers_lost` of the current run */
    unsigned send_said;   /* message types whose send failure was logged (bit per type) */
    int64_t vus[QW_THREADS], vus_max[QW_THREADS]; /* latest gauges per load thread */
} qworker;

typedef struct queen {
    uv_loop_t loop;
    const queen_options *o;
    void *zctx, *sock;
    zsock *z;
    curve_zap *zap;
    curve_monitor *mon;
    curve_keys keys;
    uint64_t epoch, run_id;
    int phase;
    uint64_t phase_ms; /* when the prepare or setup phase began (their timeouts) */
    qworker *setup_w;  /* the worker running setup() */
    qworker *workers;
    int nworkers;
    int windex[WORKER_INDEX]; /* peer hash -> worker index + 1; 0 = empty */
    int64_t vus_max_sum;      /* sum of the latest per-thread VU peaks of live workers */
    int took_part, lost;
    bundle b;
    int have_bundle;
    char *bundle_buf;
    size_t bundle_len;
    char version[65];
    char script_name[1024];
    char *setup_json;
    leases leases; /* the current run's feeders and counters: positions leased so far */
    char **files;  /* the scenario's `files = {...}`: extra bundle members (owned) */
    int nfiles;
    worker_thread *embedded;
    thresholds th;
    char name[256];
    double planned_s, graceful_s;
    stats *total, *interval;
    stats *scratch; /* one snapshot at a time (merge_snapshot) */
    int all_owed;   /* interval->all lacks its request names' histograms (interval_settle) */
    tsreport *tsr;  /* --tsung-report: Tsung's 10-second windows */
    report_row *rows;
    size_t nrows, caprows;
    int64_t vus_peak;
    double t0, t_end, stop_at;
    uv_timer_t tick, beat;
    unsigned beats; /* on_beat's count: which workers get their heartbeat on this one */
    uv_signal_t sigint, sigterm;
    int signals, interrupted, aborted, failed, started;
    int run_failed;     /* the run could not go on (no worker left, a timeout): exit 1 */
    int script_aborted; /* parrot.abort_test: the run fails (exit 1) unless a threshold says 99 */
    int tty;
    uint64_t malformed;      /* messages dropped as malformed ("wire_errors" in the summary) */
    unsigned malformed_said; /* kinds logged (wire_err_once) */
    uv_tty_t in;             /* the queen's terminal, when stdin is one (cluster mode) */
    int stdin_on, quit, last_code;
    int runs_begun; /* --serve: only the first run starts by itself (--expect reached) */
    /* handshake lines from the monitor and ZAP threads, said on the loop, each once */
    uv_async_t hs_async;
    uv_mutex_t hs_mu;
    int hs_on;
    char hs_lines[HS_LINES][512];
    int hs_n;
    uint32_t hs_said[HS_SAID];
    int hs_nsaid;
} queen;

/* queen.c */
/* A line for the user, clearing the progress line first. */
void queen_say(queen *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* queen_plan.c */
/* Refuse (with one line, exit code 2) the options of `parrot run` that belong to each worker, and
 * --serve without a terminal. 0 when the options are fine. */
int queen_check_options(const queen_options *o);
/* Load the scenario on the queen's own state (errors before any load): name, duration,
 * thresholds, files. 0, or the exit code (2 a bad scenario) with the error printed. */
int queen_load_plan(queen *q);
/* The scenario's bundle and its version; 0 or an exit code with the error printed. */
int queen_build_bundle(queen *q);
/* Bind the ROUTER at `endpoint` (CURVE and the ZAP handler with keys; the handshake monitor on a
 * cluster) and drive it with `cb`; 0 or an exit code with the error printed. */
int queen_open_socket(queen *q, const char *endpoint, zsock_msg_cb cb, zsock_bad_cb bad);
/* Stop the handshake monitor and ZAP handler (before the socket and context close). */
void queen_close_socket(queen *q);
/* Write the --out files; 1 when one could not be written (said). */
int queen_write_outputs(queen *q, const report *r);
uint64_t queen_new_epoch(void);

#endif
