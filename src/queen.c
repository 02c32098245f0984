/* queen: the coordinator of a run.
 *
 * One run goes: wait for the expected workers -> RUN/prepare to each (they fetch the bundle if
 * they lack it and load the scenario, then say HAVE) -> RUN/setup to the first worker (setup()
 * runs once; its JSON comes back in SETUP) -> RUN/start to every worker with its slots -> the
 * workers send STATS each second (acknowledged, de-duplicated by sequence number) and DONE when
 * their share ended -> RUN/teardown to one worker -> STOP to all -> summary. A worker that joins
 * mid-run is prepared and started at the current elapsed time while the others shed load
 * (SET_LOAD); a worker that leaves or misses heartbeats has its slots taken by the others. */
#include "queen.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bundle.h"
#include "curve.h"
#include "leases.h"
#include "report.h"
#include "stats.h"
#include "thresholds.h"
#include "tsreport.h"
#include "wire.h"
#include "worker.h"
#include "zsock.h"

#define MAX_WORKERS 4096
#define WORKER_INDEX (2 * MAX_WORKERS) /* slots of the peer -> worker index, a power of two */
#define QW_THREADS 256 /* load threads per worker whose gauges are tracked apart */
#define HEARTBEAT_MS 1000
#define LOST_AFTER_MS 3500 /* three missed heartbeats */
#define STOP_GRACE_S 10.0  /* after a stop, how long to wait for the workers' last snapshots */

enum run_code { RUN_PREPARE = 0, RUN_SETUP = 1, RUN_START = 2, RUN_TEARDOWN = 3 };
enum qphase { Q_WAITING, Q_PREPARE, Q_SETUP, Q_RUN, Q_TEARDOWN, Q_DONE };
enum wstate { W_IDLE, W_PREPARING, W_READY, W_RUNNING, W_FINISHED, W_LOST };

typedef struct qworker {
    char peer[256];
    size_t peerlen;
    char name[128];
    int threads;
    uint64_t last_seen_ms;
    int state;       /* enum wstate */
    int in_run;      /* takes part in the current run */
    int slot;
    uint64_t last_seq; /* highest snapshot merged for the current run */
    uint64_t ack_seq;  /* highest snapshot received in the run: acknowledged with the heartbeat */
    int64_t vus[QW_THREADS], vus_max[QW_THREADS]; /* latest gauges per load thread */
} qworker;

typedef struct queen {
    uv_loop_t loop;
    const queen_options *o;
    void *zctx, *sock;
    zsock *z;
    curve_zap *zap;
    curve_keys keys;
    uint64_t epoch, run_id;
    int phase;
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
    leases leases; /* the current run's unique data feeders: rows leased so far */
    char **files; /* the scenario's `files = {...}`: extra bundle members (owned) */
    int nfiles;
    worker_thread *embedded;
    thresholds th;
    char name[256];
    double planned_s, graceful_s;
    stats *total, *interval;
    stats *scratch; /* one snapshot at a time (merge_snapshot) */
    tsreport *tsr; /* --tsung-report: Tsung's 10-second windows */
    report_row *rows;
    size_t nrows, caprows;
    int64_t vus_peak;
    double t0, t_end, stop_at;
    uv_timer_t tick, beat;
    uv_signal_t sigint, sigterm;
    int signals, interrupted, aborted, failed, started;
    int script_aborted; /* parrot.abort_test: the run fails (exit 1) unless a threshold says 99 */
    int tty;
    uint64_t malformed;
    uv_tty_t in;    /* the queen's terminal, when stdin is one (cluster mode) */
    int stdin_on, quit, last_code;
} queen;

static double now_s(void) { return (double)uv_hrtime() / 1e9; }
static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* A line for the user, clearing the progress line first. */
static void say(queen *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(queen *q, const char *fmt, ...)
{
    if (q->tty && !q->o->quiet) fputs("\r\033[K", stderr);
    fputs("parrot: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A cluster event, with a timestamp (not for the embedded worker of parrot run). */
static void event(queen *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(queen *q, const char *fmt, ...)
{
    if (!q->o->bind) return;
    char ts[32], line[1024];
    time_t t = time(NULL);
    strftime(ts, sizeof ts, "%H:%M:%S", localtime(&t));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say(q, "[%s] %s", ts, line);
}

/* ---- sending ---- */

static void send_to(queen *q, qworker *w, const wire_msg *m)
{
    char *buf;
    size_t len;
    if (wire_encode(m, &buf, &len) != 0) return;
    if (zsock_send(q->z, w->peer, w->peerlen, buf, len) != 0 && errno != EAGAIN && errno != EHOSTUNREACH)
        say(q, "cannot send %s to %s: %s", wire_type_name(m->type), w->name, zmq_strerror(errno));
    free(buf);
}

static void send_peer(queen *q, const char *peer, size_t peerlen, const wire_msg *m)
{
    char *buf;
    size_t len;
    if (wire_encode(m, &buf, &len) != 0) return;
    zsock_send(q->z, peer, peerlen, buf, len);
    free(buf);
}

/* The RUN message for `w`: everything a worker needs to run its share. */
static void send_run(queen *q, qworker *w, int code, double elapsed, int nslots)
{
    const queen_options *o = q->o;
    wire_msg m = {.type = WIRE_RUN, .code = code, .epoch = q->epoch, .run = q->run_id, .slot = w->slot,
                  .nslots = nslots, .elapsed = elapsed, .setup = q->setup_json};
    if (code == RUN_PREPARE) {
        if (q->have_bundle) {
            m.hash = q->b.hash;
            m.version = q->version;
            m.script = q->script_name;
        }
        m.url = (char *)o->overrides.url;
        m.method = (char *)o->overrides.method;
        m.body = (char *)o->overrides.body;
        m.proxy = (char *)o->http.proxy;
        m.vus = o->overrides.vus;
        m.rate = o->overrides.rate;
        m.duration = o->overrides.duration;
        m.iterations = o->overrides.iterations;
        m.insecure = o->overrides.insecure || o->http.insecure;
        m.dump = o->http.dump_left ? *o->http.dump_left : 0;
        size_t n;
        for (n = 0; o->env && o->env[n]; n++) {}
        m.env = (char **)o->env, m.nenv = n;
        for (n = 0; o->overrides.headers && o->overrides.headers[n]; n++) {}
        m.headers = (char **)o->overrides.headers, m.nheaders = n;
        for (n = 0; o->http.resolve && o->http.resolve[n]; n++) {}
        m.resolve = (char **)o->http.resolve, m.nresolve = n;
    }
    send_to(q, w, &m);
}

/* ---- shares ---- */

static int total_slots(queen *q)
{
    int n = 0;
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].in_run && q->workers[i].state != W_LOST) n += q->workers[i].threads;
    return n;
}

/* Give the run's workers consecutive slots, in the order they joined; tell the running ones. */
static void rebalance(queen *q, qworker *except)
{
    int slot = 0, n = total_slots(q);
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (!w->in_run || w->state == W_LOST) continue;
        int moved = w->slot != slot;
        w->slot = slot;
        slot += w->threads;
        if (w != except && (w->state == W_RUNNING || w->state == W_FINISHED)) {
            wire_msg m = {.type = WIRE_SET_LOAD, .run = q->run_id, .slot = w->slot, .nslots = n};
            send_to(q, w, &m);
            (void)moved;
        }
    }
}

/* ---- statistics ---- */

static int64_t worker_vus(const qworker *w, int peak)
{
    int64_t n = 0;
    for (int i = 0; i < QW_THREADS && i < w->threads; i++) n += peak ? w->vus_max[i] : w->vus[i];
    return n;
}

/* One worker thread's interval: added to this second, its gauges kept. The
 * snapshot is checked once and then only its non-empty buckets are added (no dense merges), with
 * one scratch `stats` reused: a queen merges thousands of these a second. */
static void merge_snapshot(queen *q, qworker *w, int thread, const char *buf, size_t len)
{
    stats *const dsts[] = {q->interval}; /* the totals take each second whole (close_interval) */
    if (stats_decode_merge_into(dsts, 1, q->scratch, buf, len) != 0) {
        if (!q->malformed++) say(q, "dropped a malformed statistics snapshot from %s", w->name);
        return;
    }
    int t = thread >= 0 && thread < QW_THREADS ? thread : QW_THREADS - 1;
    w->vus[t] = q->scratch->vus;
    q->vus_max_sum += q->scratch->vus_max - w->vus_max[t];
    w->vus_max[t] = q->scratch->vus_max;
    if (q->vus_max_sum > q->vus_peak) q->vus_peak = q->vus_max_sum;
}

/* Close one second: a series row, the progress line. */
static void close_interval(queen *q, double interval_s)
{
    double t = now_s() - q->t0;
    report_row row = report_row_make(q->interval, t, interval_s);
    int64_t vus = 0;
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].state != W_LOST) vus += worker_vus(&q->workers[i], 0);
    row.vus = vus;
    if (q->nrows == q->caprows) {
        q->caprows = q->caprows ? q->caprows * 2 : 64;
        q->rows = realloc(q->rows, q->caprows * sizeof *q->rows);
        if (!q->rows) abort();
    }
    q->rows[q->nrows++] = row;
    if (!q->o->quiet) report_progress(stderr, &row, q->planned_s, q->tty);
    if (q->tsr) tsreport_add(q->tsr, q->interval);
    stats_merge(q->total, q->interval); /* one dense merge a second, not one per snapshot */
    stats_reset(q->interval);
}

/* ---- the run ---- */

static void stop_run(queen *q, int hard);
static void on_tick(uv_timer_t *h);

static int summarize(queen *q);
static void begin_run(queen *q);

/* --serve: forget the last run (its workers stay) and wait for the terminal's word. */
static void reset_for_next(queen *q)
{
    stats_free(q->total);
    stats_free(q->interval);
    q->total = stats_new();
    q->interval = stats_new();
    if (q->tsr) {
        tsreport_free(q->tsr);
        q->tsr = tsreport_new();
    }
    q->nrows = 0;
    q->vus_peak = 0;
    q->vus_max_sum = 0;
    q->took_part = q->lost = 0;
    q->started = q->aborted = q->interrupted = q->failed = q->signals = q->script_aborted = 0;
    q->stop_at = 0;
    free(q->setup_json);
    q->setup_json = NULL;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        w->in_run = 0;
        memset(w->vus, 0, sizeof w->vus);
        memset(w->vus_max, 0, sizeof w->vus_max);
        if (w->state != W_LOST) w->state = W_IDLE;
    }
    q->phase = Q_WAITING;
    say(q, "press Enter to run %s again, or q and Enter to quit", q->name);
}

static void finish(queen *q)
{
    if (q->phase == Q_DONE || q->phase == Q_WAITING) {
        if (q->phase == Q_WAITING) uv_stop(&q->loop);
        return;
    }
    q->phase = Q_DONE;
    q->t_end = now_s();
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->in_run && w->state != W_LOST) {
            /* a worker still busy (a cut run) gets the handbrake: all load stops, nothing queued stays */
            wire_msg m = {.type = w->state == W_RUNNING ? WIRE_HANDBRAKE : WIRE_STOP, .run = q->run_id, .code = 2};
            send_to(q, w, &m);
        }
    }
    if (q->started) {
        double last = q->t_end - q->t0 - (double)q->nrows;
        if (q->interval->requests || q->interval->iterations || last > 0.2)
            close_interval(q, last > 0.05 ? last : 1.0);
        if (!q->o->quiet && q->tty) fputs("\n", stderr);
    }
    stats_merge(q->total, q->interval); /* whatever came after the last second (setup, ...) */
    stats_reset(q->interval);
    if (q->stdin_on && q->o->serve && !q->quit) {
        q->last_code = q->failed && !q->started ? 2 : summarize(q);
        reset_for_next(q);
        return;
    }
    uv_stop(&q->loop);
}

/* A line from the queen's terminal: Enter starts (or restarts) with the workers at hand. */
static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    queen *q = s->data;
    if (n < 0) {
        uv_read_stop(s);
        q->stdin_on = 0;
    } else if (n > 0 && (buf->base[0] == 'q' || buf->base[0] == 'Q')) {
        q->quit = 1;
        if (q->phase == Q_WAITING) uv_stop(&q->loop);
        else stop_run(q, 0);
    } else if (n > 0 && q->phase == Q_WAITING) {
        int known = 0;
        for (int i = 0; i < q->nworkers; i++) known += q->workers[i].state != W_LOST;
        if (known) begin_run(q);
        else say(q, "no worker has joined yet");
    }
    free(buf->base);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(hint);
    buf->len = buf->base ? hint : 0;
}

static qworker *first_in_run(queen *q)
{
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].in_run && q->workers[i].state != W_LOST) return &q->workers[i];
    return NULL;
}

static void begin_run(queen *q)
{
    q->run_id++;
    q->phase = Q_PREPARE;
    leases_clear(&q->leases);
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->state == W_LOST) continue;
        w->in_run = 1;
        w->state = W_PREPARING;
        w->last_seq = w->ack_seq = 0;
        q->took_part++;
    }
    rebalance(q, NULL);
    int n = total_slots(q);
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].in_run) send_run(q, &q->workers[i], RUN_PREPARE, 0, n);
}

static void start_load(queen *q)
{
    if (!q->o->quiet) {
        int nw = 0;
        for (int i = 0; i < q->nworkers; i++) nw += q->workers[i].in_run && q->workers[i].state != W_LOST;
        say(q, "running %s for %.0fs on %d worker%s (%d load threads)", q->name, q->planned_s, nw, nw > 1 ? "s" : "",
            total_slots(q));
    }
    q->phase = Q_RUN;
    q->t0 = now_s();
    q->started = 1;
    int n = total_slots(q);
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->in_run && w->state == W_READY) {
            w->state = W_RUNNING;
            send_run(q, w, RUN_START, 0, n);
        }
    }
    uv_timer_start(&q->tick, on_tick, 1150, 1000); /* just after the workers' snapshots */
}

static void maybe_prepared(queen *q)
{
    if (q->phase != Q_PREPARE) return;
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].in_run && q->workers[i].state == W_PREPARING) return;
    qworker *w = first_in_run(q);
    if (!w) return;
    q->phase = Q_SETUP;
    send_run(q, w, RUN_SETUP, 0, total_slots(q));
}

static void maybe_all_done(queen *q)
{
    if (q->phase != Q_RUN) return;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->in_run && (w->state == W_RUNNING || w->state == W_READY || w->state == W_PREPARING)) return;
    }
    qworker *w = NULL;
    for (int i = 0; i < q->nworkers && !w; i++)
        if (q->workers[i].in_run && q->workers[i].state == W_FINISHED) w = &q->workers[i];
    if (!w) {
        finish(q);
        return;
    }
    q->phase = Q_TEARDOWN;
    send_run(q, w, RUN_TEARDOWN, 0, total_slots(q));
}

static void worker_lost(queen *q, qworker *w, const char *why)
{
    if (w->state == W_LOST) return;
    int was_in_run = w->in_run && q->phase != Q_WAITING && q->phase != Q_DONE;
    w->state = W_LOST;
    memset(w->vus, 0, sizeof w->vus);
    q->vus_max_sum -= worker_vus(w, 1);
    memset(w->vus_max, 0, sizeof w->vus_max);
    if (was_in_run) q->lost++;
    event(q, "worker %s %s%s", w->name, why, was_in_run ? "; its share goes to the others" : "");
    if (!was_in_run) return;
    if (!first_in_run(q)) {
        say(q, "every worker of the run is gone: ending it with what they reported");
        q->failed = q->started ? 0 : 1;
        finish(q);
        return;
    }
    rebalance(q, NULL);
    maybe_prepared(q);
    maybe_all_done(q);
}

static uint32_t peer_hash(const char *peer, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)peer[i]) * 16777619u;
    return h;
}

/* The worker behind a ROUTER identity: an open-addressing index (every message asks, and a
 * queen may have thousands of workers). */
static qworker *find_worker(queen *q, const char *peer, size_t peerlen)
{
    for (uint32_t i = peer_hash(peer, peerlen) & (WORKER_INDEX - 1);; i = (i + 1) & (WORKER_INDEX - 1)) {
        int slot = q->windex[i];
        if (!slot) return NULL;
        qworker *w = &q->workers[slot - 1];
        if (w->peerlen == peerlen && !memcmp(w->peer, peer, peerlen)) return w;
    }
}

static void index_worker(queen *q, qworker *w)
{
    uint32_t i = peer_hash(w->peer, w->peerlen) & (WORKER_INDEX - 1);
    while (q->windex[i]) i = (i + 1) & (WORKER_INDEX - 1);
    q->windex[i] = (int)(w - q->workers) + 1;
}

static void on_hello(queen *q, const char *peer, size_t peerlen, wire_msg *m)
{
    qworker *w = find_worker(q, peer, peerlen);
    wire_msg welcome = {.type = WIRE_WELCOME, .epoch = q->epoch, .heartbeat = HEARTBEAT_MS / 1000.0};
    if (w && w->state != W_LOST) { /* a reconnect: it re-sends what we did not acknowledge */
        w->last_seen_ms = now_ms();
        send_to(q, w, &welcome);
        return;
    }
    if (!w) {
        if (q->nworkers >= MAX_WORKERS || peerlen > sizeof w->peer) return;
        w = &q->workers[q->nworkers++];
        memset(w, 0, sizeof *w);
        memcpy(w->peer, peer, peerlen);
        w->peerlen = peerlen;
        index_worker(q, w);
    }
    w->state = W_IDLE;
    w->in_run = 0;
    snprintf(w->name, sizeof w->name, "%s", m->id ? m->id : "?");
    w->threads = m->threads > 0 && m->threads < 4096 ? (int)m->threads : 1;
    w->last_seen_ms = now_ms();
    send_to(q, w, &welcome);
    int known = 0;
    for (int i = 0; i < q->nworkers; i++) known += q->workers[i].state != W_LOST;
    event(q, "worker %s joined (%d threads); %d connected", w->name, w->threads, known);
    if (q->phase == Q_WAITING && known >= (q->o->expect > 0 ? q->o->expect : 1)) {
        begin_run(q);
    } else if (q->phase == Q_RUN || q->phase == Q_PREPARE || q->phase == Q_SETUP) {
        w->in_run = 1; /* joins the running test: prepared now, started once it has the bundle */
        w->state = W_PREPARING;
        w->last_seq = w->ack_seq = 0;
        q->took_part++;
        w->slot = total_slots(q) - w->threads;
        send_run(q, w, RUN_PREPARE, 0, total_slots(q));
    }
}

static void on_have(queen *q, qworker *w, wire_msg *m)
{
    if (m->run != q->run_id || w->state != W_PREPARING) return;
    w->state = W_READY;
    if (q->phase == Q_RUN) { /* a late joiner: the others shed load, it takes its share */
        rebalance(q, w);
        w->state = W_RUNNING;
        send_run(q, w, RUN_START, now_s() - q->t0, total_slots(q));
        event(q, "worker %s takes slots %d-%d of %d", w->name, w->slot, w->slot + w->threads - 1,
              total_slots(q));
    }
    maybe_prepared(q);
}

static void on_setup(queen *q, qworker *w, wire_msg *m)
{
    (void)w;
    if (m->run != q->run_id) return;
    if (q->phase == Q_SETUP) {
        free(q->setup_json);
        q->setup_json = m->setup ? strdup(m->setup) : NULL;
        start_load(q);
    } else if (q->phase == Q_TEARDOWN) {
        finish(q);
    }
}

static void on_done(queen *q, qworker *w, wire_msg *m)
{
    if (m->run != q->run_id) return;
    if (m->code == 2) { /* could not load the scenario */
        if (!q->failed) say(q, "worker %s could not start the run", w->name);
        q->failed = 1;
        w->state = W_LOST;
        if (!first_in_run(q) || q->phase == Q_PREPARE || q->phase == Q_SETUP) finish(q);
        return;
    }
    if (w->state == W_RUNNING) w->state = W_FINISHED;
    maybe_all_done(q);
}

static void on_frame(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len, void *ud)
{
    (void)z;
    queen *q = ud;
    wire_msg m;
    char err[256];
    if (wire_decode(buf, len, &m, err, sizeof err) != 0) {
        if (!q->malformed++) say(q, "dropped a malformed message (%s); further ones are counted", err);
        return;
    }
    qworker *w = find_worker(q, peer, peerlen);
    if (m.type == WIRE_HELLO) {
        on_hello(q, peer, peerlen, &m);
    } else if (!w || w->state == W_LOST) {
        wire_msg re = {.type = WIRE_REHELLO, .epoch = q->epoch};
        send_peer(q, peer, peerlen, &re);
    } else {
        w->last_seen_ms = now_ms();
        switch (m.type) {
        case WIRE_BUNDLE_GET:
            if (q->have_bundle && m.hash && !strcmp(m.hash, q->b.hash)) {
                wire_msg b = {.type = WIRE_BUNDLE, .hash = q->b.hash, .data = q->bundle_buf,
                              .data_len = q->bundle_len};
                send_to(q, w, &b);
            }
            break;
        case WIRE_HAVE: on_have(q, w, &m); break;
        case WIRE_SETUP: on_setup(q, w, &m); break;
        case WIRE_STATS:
            if (m.run == q->run_id && m.seq > w->last_seq && m.data) {
                w->last_seq = m.seq;
                merge_snapshot(q, w, (int)m.slot, m.data, m.data_len);
            }
            /* acknowledged by the next heartbeat (run, seq): one message a second, not one each */
            if (m.run == q->run_id && m.seq > w->ack_seq) w->ack_seq = m.seq;
            break;
        case WIRE_DONE: on_done(q, w, &m); break;
        case WIRE_LOG:
            if (m.text) {
                if (q->o->bind) say(q, "%s: %s", w->name, m.text);
                else say(q, "%s", m.text);
            }
            break;
        case WIRE_BYE: worker_lost(q, w, "left"); break;
        case WIRE_ROWS: /* a unique data feeder's next rows: a range no one else gets this run */
            if (m.run == q->run_id && w->in_run) {
                wire_msg r = {
                    .type = WIRE_ROWS, .run = m.run, .text = m.text, .code = m.code, .count = m.count};
                if (leases_take(&q->leases, m.text, &r.count, &r.first) < 0) r.count = 0; /* refused */
                send_to(q, w, &r);
            }
            break;
        case WIRE_STOP: /* the scenario asked to end the test (parrot.abort_test) */
            if (m.run == q->run_id && (q->phase == Q_RUN || q->phase == Q_SETUP) && !q->aborted) {
                q->aborted = q->interrupted = q->script_aborted = 1;
                say(q, "the scenario ended the test: %s", m.text ? m.text : "abort_test");
                stop_run(q, 0);
            }
            break;
        default: break;
        }
    }
    wire_msg_free(&m);
}

/* ---- timers and signals ---- */

static void on_tick(uv_timer_t *h)
{
    queen *q = h->data;
    if (q->phase != Q_RUN && q->phase != Q_TEARDOWN) return;
    close_interval(q, 1.0);
    q->total->vus_max = q->vus_peak;
    if (!q->aborted && q->phase == Q_RUN && thresholds_eval(&q->th, q->total, now_s() - q->t0, 1) > 0) {
        q->aborted = q->interrupted = 1;
        say(q, "an abort threshold was crossed: stopping the run");
        stop_run(q, 0);
    }
    double elapsed = now_s() - q->t0;
    if (!q->stop_at && elapsed > q->planned_s + q->graceful_s + 30) {
        say(q, "the run is overdue: cutting it");
        stop_run(q, 1);
    }
    if (q->stop_at && now_s() > q->stop_at) {
        say(q, "workers did not finish in time: ending with what they reported");
        finish(q);
    }
}

static void on_beat(uv_timer_t *h)
{
    queen *q = h->data;
    uint64_t now = now_ms();
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->state == W_LOST) continue;
        if (now - w->last_seen_ms > LOST_AFTER_MS) {
            worker_lost(q, w, "missed 3 heartbeats");
            continue;
        }
        /* the heartbeat acknowledges every snapshot of the run up to ack_seq */
        wire_msg hb = {.type = WIRE_HEARTBEAT, .epoch = q->epoch, .run = q->run_id, .seq = w->ack_seq};
        send_to(q, w, &hb);
    }
    if (q->stop_at && now_s() > q->stop_at && q->phase != Q_DONE) finish(q);
}

static void stop_run(queen *q, int hard)
{
    if (q->phase == Q_WAITING || q->phase == Q_DONE) {
        finish(q);
        return;
    }
    if (!q->stop_at) q->stop_at = now_s() + STOP_GRACE_S;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (!w->in_run || w->state == W_LOST) continue;
        wire_msg m = {.type = WIRE_STOP, .run = q->run_id, .code = hard};
        send_to(q, w, &m);
    }
    if (q->phase == Q_PREPARE || q->phase == Q_SETUP) finish(q);
}

static void on_signal(uv_signal_t *h, int signum)
{
    queen *q = h->data;
    (void)signum;
    q->interrupted = 1;
    if (++q->signals == 1) {
        say(q, "stopping (in-flight requests get 2 s; press Ctrl-C again to cut them now)");
        stop_run(q, 0);
    } else if (q->signals == 2) {
        stop_run(q, 1);
    } else {
        finish(q);
    }
}

/* ---- setup ---- */

/* The scenario's name, planned duration, planned VUs and thresholds, from the queen's own state. */
static int read_plan(queen *q, lua_State *L, long *planned_vus)
{
    char err[512];
    lua_getfield(L, -1, "name");
    snprintf(q->name, sizeof q->name, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "scenario");
    lua_pop(L, 1);
    lua_getfield(L, -1, "_duration");
    q->planned_s = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "load");
    lua_getfield(L, -1, "vus");
    lua_getfield(L, -2, "max_users");
    lua_getfield(L, -3, "graceful_stop");
    *planned_vus = (long)(lua_isnumber(L, -3) ? lua_tonumber(L, -3) : lua_tonumber(L, -2));
    q->graceful_s = lua_tonumber(L, -1);
    lua_pop(L, 4);
    lua_getfield(L, -1, "files");
    if (lua_istable(L, -1)) {
        int nf = (int)lua_objlen(L, -1);
        q->files = calloc((size_t)nf + 1, sizeof *q->files);
        if (!q->files) abort();
        for (int i = 1; i <= nf; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_isstring(L, -1)) q->files[q->nfiles++] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "_thresholds");
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "key");
        lua_getfield(L, -2, "expr");
        lua_getfield(L, -3, "abort");
        int rc = thresholds_add(&q->th, lua_tostring(L, -3), lua_tostring(L, -2), lua_toboolean(L, -1), err,
                                sizeof err);
        lua_pop(L, 4);
        if (rc != 0) {
            fprintf(stderr, "parrot: %s: %s\n", q->o->script ? q->o->script : "scenario", err);
            lua_pop(L, 1);
            return -1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

static void warn_fd_limit(long planned_vus)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) { /* take what we may */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (planned_vus > 0 && (rlim_t)planned_vus + 64 > rl.rlim_cur)
        fprintf(stderr,
                "parrot: warning: %ld VUs may each hold a connection but only %lu file descriptors are "
                "allowed (ulimit -n); requests past that fail as fd_limit\n",
                planned_vus, (unsigned long)rl.rlim_cur);
}

/* Load the scenario on the queen's own state: errors (file:line) before any load. */
static int load_plan(queen *q)
{
    char err[4096];
    long planned_vus = 0;
    lua_State *L = luart_new(q->o->script, q->o->env);
    if (!L) return 1;
    if (luart_load(L, q->o->script, &q->o->overrides, err, sizeof err) != 0) {
        fprintf(stderr, "parrot: %s\n", err);
        lua_close(L);
        return 2;
    }
    int rc = read_plan(q, L, &planned_vus);
    lua_close(L);
    if (rc != 0) return 2;
    if (!q->o->bind) warn_fd_limit(planned_vus);
    return 0;
}

static int build_bundle(queen *q)
{
    char err[1024];
    if (!q->o->script) return 0;
    if (bundle_build(&q->b, q->o->script, (const char *const *)q->files, 0, err, sizeof err) != 0) {
        fprintf(stderr, "parrot: %s\n", err);
        return 2;
    }
    q->have_bundle = 1;
    bundle_version(&q->b, q->epoch, q->version);
    if (bundle_encode(&q->b, &q->bundle_buf, &q->bundle_len) != 0) {
        fprintf(stderr, "parrot: cannot encode the bundle\n");
        return 1;
    }
    const char *slash = strrchr(q->o->script, '/');
    snprintf(q->script_name, sizeof q->script_name, "%s", slash ? slash + 1 : q->o->script);
    return 0;
}

static int is_loopback(const char *ep)
{
    if (!strncmp(ep, "inproc://", 9) || !strncmp(ep, "ipc://", 6)) return 1;
    if (strncmp(ep, "tcp://", 6)) return 0;
    const char *h = ep + 6;
    return !strncmp(h, "127.", 4) || !strncmp(h, "localhost:", 10) || !strncmp(h, "[::1]:", 6);
}

/* Bind the ROUTER (with CURVE and the ZAP handler when keys are given). */
static int open_socket(queen *q, const char *endpoint)
{
    const queen_options *o = q->o;
    char err[512];
    if (o->bind && !o->keys_dir && !is_loopback(endpoint) && !o->insecure_bind) {
        fprintf(stderr,
                "parrot queen: refusing to bind %s without keys: anyone who reaches it could make workers "
                "run code (use --keys DIR --allow FILE, or --insecure on a trusted network)\n",
                endpoint);
        return 2;
    }
    if (o->keys_dir) {
        if (curve_load(o->keys_dir, &q->keys, err, sizeof err) != 0) {
            fprintf(stderr, "parrot queen: %s\n", err);
            return 2;
        }
        if (!o->allow_file) {
            fprintf(stderr, "parrot queen: --keys needs --allow FILE (the worker public keys to admit)\n");
            return 2;
        }
        q->zap = curve_zap_start(q->zctx, o->allow_file, NULL, NULL, err, sizeof err);
        if (!q->zap) {
            fprintf(stderr, "parrot queen: %s\n", err);
            return 2;
        }
    }
    q->sock = zmq_socket(q->zctx, ZMQ_ROUTER);
    int one = 1, linger = 1000, hwm = 100000;
    zmq_setsockopt(q->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(q->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(q->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(q->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(q->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (o->keys_dir && curve_server(q->sock, &q->keys) != 0) {
        fprintf(stderr, "parrot queen: cannot enable CURVE: %s\n", zmq_strerror(errno));
        return 2;
    }
    if (zmq_bind(q->sock, endpoint) != 0) {
        fprintf(stderr, "parrot queen: cannot bind %s: %s\n", endpoint, zmq_strerror(errno));
        return 2;
    }
    q->z = zsock_attach(&q->loop, q->sock, 1, on_frame, q);
    return 0;
}

static int write_outputs(queen *q, const report *r)
{
    int bad = 0;
    for (int i = 0; q->o->outs && q->o->outs[i]; i++) {
        if (report_write(q->o->outs[i], r) != 0) {
            fprintf(stderr, "parrot: cannot write %s: %s (use a .json or .csv file name)\n", q->o->outs[i],
                    strerror(errno));
            bad = 1;
        }
    }
    return bad;
}

static uint64_t new_epoch(void)
{
    uint64_t e = (uint64_t)time(NULL) << 24;
    FILE *f = fopen("/dev/urandom", "rb");
    uint32_t r = 0;
    if (f) {
        if (fread(&r, sizeof r, 1, f) != 1) r = 0;
        fclose(f);
    }
    return e ^ (r & 0xffffff) ^ (uint64_t)getpid();
}

static void close_cb(uv_handle_t *h) { (void)h; }

static int summarize(queen *q)
{
    int code = 0;
    q->total->vus_max = q->vus_peak;
    double dur = q->started ? q->t_end - q->t0 : 0;
    int bad = thresholds_eval(&q->th, q->total, dur, 0);
    report r = {.scenario = q->name, .total = q->total, .rows = q->rows, .nrows = q->nrows,
                .workers = q->took_part, .workers_lost = q->lost, .threads = total_slots(q), .duration_s = dur,
                .thresholds = &q->th, .interrupted = q->interrupted};
    report_summary(stdout, &r);
    if (q->tsr) tsreport_print(stdout, q->tsr, q->total, dur);
    fflush(stdout);
    if (write_outputs(q, &r) || q->script_aborted) code = 1;
    if (bad) code = 99;
    return code;
}

int queen_run(const queen_options *o)
{
    queen *q = calloc(1, sizeof *q);
    if (!q) return 1;
    q->o = o;
    q->tty = isatty(2);
    q->epoch = new_epoch();
    q->workers = calloc(MAX_WORKERS, sizeof *q->workers);
    int code = load_plan(q);
    if (!code) code = build_bundle(q);
    if (code) goto out_early;
    q->total = stats_new();
    q->interval = stats_new();
    q->scratch = stats_new();
    if (o->tsung_report) q->tsr = tsreport_new();
    uv_loop_init(&q->loop);
    q->zctx = zmq_ctx_new();
    char endpoint[128];
    if (o->bind) snprintf(endpoint, sizeof endpoint, "%s", o->bind);
    else snprintf(endpoint, sizeof endpoint, "inproc://parrot-queen-%llx", (unsigned long long)q->epoch);
    code = open_socket(q, endpoint);
    if (!code) {
        uv_timer_init(&q->loop, &q->tick);
        uv_timer_init(&q->loop, &q->beat);
        q->tick.data = q->beat.data = q;
        uv_timer_start(&q->beat, on_beat, HEARTBEAT_MS, HEARTBEAT_MS);
        uv_signal_init(&q->loop, &q->sigint);
        uv_signal_init(&q->loop, &q->sigterm);
        q->sigint.data = q->sigterm.data = q;
        uv_signal_start(&q->sigint, on_signal, SIGINT);
        uv_signal_start(&q->sigterm, on_signal, SIGTERM);
        if (!o->bind) {
            worker_options wo = {.queen = endpoint, .name = "local", .threads = o->threads,
                                 .sources = o->http.sources, .quiet = 1};
            char err[256];
            q->embedded = worker_thread_start(q->zctx, &wo, err, sizeof err);
            if (!q->embedded) {
                fprintf(stderr, "parrot: %s\n", err);
                code = 1;
            }
        } else {
            say(q, "queen listening on %s; waiting for %d worker%s", endpoint, o->expect > 0 ? o->expect : 1,
                o->expect > 1 ? "s" : "");
            if (isatty(0) && uv_tty_init(&q->loop, &q->in, 0, 1) == 0) {
                q->in.data = q;
                uv_read_start((uv_stream_t *)&q->in, on_alloc, on_stdin);
                q->stdin_on = 1;
                say(q, "press Enter to start with the workers connected so far");
            } else if (o->serve) {
                say(q, "--serve needs a terminal to be told when to run again: this queen runs once");
            }
        }
        if (!code) {
            uv_run(&q->loop, UV_RUN_DEFAULT);
            if (q->phase == Q_WAITING && q->o->serve && q->stdin_on) code = q->last_code; /* quit between runs */
            else if (q->failed && !q->started) code = 2;
            else code = summarize(q);
        }
        uv_close((uv_handle_t *)&q->tick, close_cb);
        uv_close((uv_handle_t *)&q->beat, close_cb);
        uv_close((uv_handle_t *)&q->sigint, close_cb);
        uv_close((uv_handle_t *)&q->sigterm, close_cb);
        if (q->stdin_on || q->in.type == UV_TTY) uv_close((uv_handle_t *)&q->in, close_cb);
    }
    /* let the last STOPs leave before the embedded worker and the socket go */
    for (int i = 0; i < 5; i++) uv_run(&q->loop, UV_RUN_NOWAIT);
    if (q->embedded) worker_thread_stop(q->embedded);
    if (q->z) zsock_detach(q->z);
    uv_run(&q->loop, UV_RUN_DEFAULT);
    if (q->sock) zmq_close(q->sock);
    if (q->zap) curve_zap_stop(q->zap);
    zmq_ctx_term(q->zctx);
    uv_loop_close(&q->loop);
    stats_free(q->total);
    stats_free(q->interval);
    stats_free(q->scratch);
    tsreport_free(q->tsr);
out_early:
    thresholds_free(&q->th);
    if (q->have_bundle) bundle_free(&q->b);
    free(q->bundle_buf);
    free(q->setup_json);
    leases_clear(&q->leases);
    for (int i = 0; i < q->nfiles; i++) free(q->files[i]);
    free(q->files);
    free(q->rows);
    free(q->workers);
    free(q);
    return code;
}
