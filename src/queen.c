/* queen: the coordinator of a run.
 *
 * One run goes: wait for the expected workers -> RUN/prepare to each (they fetch the bundle if
 * they lack it and load the scenario, then say HAVE) -> RUN/setup to the first worker (setup()
 * runs once; its JSON comes back in SETUP) -> RUN/start to every worker with its slots -> the
 * workers send STATS each second and DONE when their share ended -> RUN/teardown to one worker ->
 * STOP to all -> summary. What a worker reports is numbered (wire.h): the queen takes it strictly
 * in order, acknowledges the highest seq up to which it has everything and refuses a message past
 * a gap (the worker sends it again), so no interval is lost or counted twice. A worker that joins
 * mid-run is prepared and started at the current elapsed time while the others shed load
 * (SET_LOAD); a worker that leaves or misses heartbeats has its slots taken by the others, and
 * one that comes back in the same run keeps its numbering and is counted once. */
#include "queen.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "queen_int.h"
#include "wire.h"

static double now_s(void) { return (double)uv_hrtime() / 1e9; }
static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* A line for the user, clearing the progress line first. */
void queen_say(queen *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (q->tty && !q->o->quiet) fputs("\r\033[K", stderr);
    fputs("parrot: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
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
    queen_say(q, "[%s] %s", ts, line);
}

/* ---- sending ---- */

static void send_to(queen *q, qworker *w, const wire_msg *m)
{
    char *buf;
    size_t len;
    if (wire_encode(m, &buf, &len) != 0) return;
    if (zsock_send(q->z, w->peer, w->peerlen, buf, len) != 0) {
        unsigned bit = 1u << (m->type & 31);
        if (!(w->send_said & bit)) { /* once per worker and message type */
            w->send_said |= bit;
            const char *why = errno == EHOSTUNREACH ? "it is not connected right now"
                              : errno == EAGAIN     ? "its queue is full"
                                                    : zmq_strerror(errno);
            queen_say(
                q, "cannot send %s to worker %s: %s (dropped; further failures of this kind are not shown)",
                wire_type_name(m->type), w->name, why);
        }
    }
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
    wire_msg m = {.type = WIRE_RUN,
                  .code = code,
                  .epoch = q->epoch,
                  .run = q->run_id,
                  .slot = w->slot,
                  .nslots = nslots,
                  .elapsed = elapsed,
                  .setup = q->setup_json};
    if (code == RUN_START) m.duration = q->planned_s + q->graceful_s; /* the load's latest end */
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
        for (n = 0; o->env && o->env[n]; n++) {
        }
        m.env = (char **)o->env, m.nenv = n;
        for (n = 0; o->overrides.headers && o->overrides.headers[n]; n++) {
        }
        m.headers = (char **)o->overrides.headers, m.nheaders = n;
        for (n = 0; o->http.resolve && o->http.resolve[n]; n++) {
        }
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
            wire_msg m = {
                .type = WIRE_SET_LOAD, .epoch = q->epoch, .run = q->run_id, .slot = w->slot, .nslots = n};
            send_to(q, w, &m);
            (void)moved;
        }
    }
}

/* ---- statistics ---- */

static int64_t worker_vus(const qworker *w, int peak)
{
    int64_t n = 0;
    for (int i = 0; i < QW_THREADS && i < w->threads; i++)
        n += peak ? w->vus_max[i] : w->vus[i];
    return n;
}

/* One worker thread's interval: added to this second, its gauges kept. The
 * snapshot is checked once and then only its non-empty buckets are added (no dense merges), with
 * one scratch `stats` reused: a queen merges thousands of these a second. */
static void merge_snapshot(queen *q, qworker *w, int thread, const char *buf, size_t len)
{
    stats *const dsts[] = {q->interval}; /* the totals take each second whole (close_interval) */
    if (stats_decode_merge_into(dsts, 1, q->scratch, buf, len, &q->all_owed) != 0) {
        q->malformed++;
        if (wire_err_once(&q->malformed_said, "snapshot"))
            queen_say(q, "dropped a malformed statistics snapshot from %s; further ones are counted",
                      w->name);
        return;
    }
    int t = thread >= 0 && thread < QW_THREADS ? thread : QW_THREADS - 1;
    w->vus[t] = q->scratch->vus;
    q->vus_max_sum += q->scratch->vus_max - w->vus_max[t];
    w->vus_max[t] = q->scratch->vus_max;
    if (q->vus_max_sum > q->vus_peak) q->vus_peak = q->vus_max_sum;
}

/* The second's `all` complete: snapshots that left it out (their request names add up to it) were
 * added into the names only, and their histograms go into `all` here, once a second. */
static void interval_settle(queen *q)
{
    if (q->all_owed) stats_all_add_requests(q->interval);
    q->all_owed = 0;
}

/* Empty the second for the next one (whose `all` is owed again, see interval_settle). */
static void interval_reset(queen *q)
{
    stats_reset(q->interval);
    q->all_owed = 1;
}

/* Close one second: a series row, the progress line. */
static void close_interval(queen *q, double interval_s)
{
    interval_settle(q);
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
    interval_reset(q);
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
    q->all_owed = 1;
    if (q->tsr) {
        tsreport_free(q->tsr);
        q->tsr = tsreport_new();
    }
    q->nrows = 0;
    q->vus_peak = 0;
    q->vus_max_sum = 0;
    q->took_part = q->lost = 0;
    q->started = q->aborted = q->interrupted = q->failed = q->signals = q->script_aborted = q->run_failed = 0;
    q->stop_at = 0;
    q->setup_w = NULL;
    free(q->setup_json);
    q->setup_json = NULL;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        w->in_run = w->lost_in_run = 0;
        memset(w->vus, 0, sizeof w->vus);
        memset(w->vus_max, 0, sizeof w->vus_max);
        if (w->state != W_LOST) w->state = W_IDLE;
    }
    q->phase = Q_WAITING;
    queen_say(q, "press Enter to run %s again, or q and Enter to quit", q->name);
}

/* The exit code of a run that ended: 2 the scenario could not load, 1 the run could not go on
 * before it started, else the summary's. */
static int run_code(queen *q)
{
    if (q->failed && !q->started) return 2;
    if (q->run_failed && !q->started) return 1;
    return summarize(q);
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
            wire_msg m = {.type = w->state == W_RUNNING ? WIRE_HANDBRAKE : WIRE_STOP,
                          .epoch = q->epoch,
                          .run = q->run_id,
                          .code = 2};
            send_to(q, w, &m);
        }
    }
    if (q->started) {
        double last = q->t_end - q->t0 - (double)q->nrows;
        if (q->interval->requests || q->interval->iterations || last > 0.2)
            close_interval(q, last > 0.05 ? last : 1.0);
        if (!q->o->quiet && q->tty) fputs("\n", stderr);
    }
    interval_settle(q);
    stats_merge(q->total, q->interval); /* whatever came after the last second (setup, ...) */
    interval_reset(q);
    if (q->stdin_on && q->o->serve && !q->quit) {
        q->last_code = run_code(q);
        reset_for_next(q);
        return;
    }
    uv_stop(&q->loop);
}

/* The run cannot go on: one line, and the run ends (exit 1 when it had not started). */
static void fail_run(queen *q, const char *line)
{
    queen_say(q, "%s", line);
    q->run_failed = 1;
    finish(q);
}

static int live_workers(queen *q)
{
    int known = 0;
    for (int i = 0; i < q->nworkers; i++)
        known += q->workers[i].state != W_LOST;
    return known;
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
        if (q->phase == Q_WAITING)
            uv_stop(&q->loop);
        else
            stop_run(q, 0);
    } else if (n > 0 && q->phase == Q_WAITING) {
        if (live_workers(q))
            begin_run(q);
        else
            queen_say(q, "no worker has joined yet");
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

/* `w` takes part in the current run: counted once in `workers`, its numbering started. */
static void enlist(queen *q, qworker *w)
{
    w->in_run = 1;
    if (w->counted_run != q->run_id) {
        w->counted_run = q->run_id;
        q->took_part++;
    }
    if (w->seq_run != q->run_id) {
        w->seq_run = q->run_id;
        w->last_seq = 0;
    }
}

static void begin_run(queen *q)
{
    q->run_id++;
    q->runs_begun++;
    q->phase = Q_PREPARE;
    leases_clear(&q->leases);
    q->phase_ms = now_ms();
    q->setup_w = NULL;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->state == W_LOST) continue;
        enlist(q, w);
        w->state = W_PREPARING;
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
        for (int i = 0; i < q->nworkers; i++)
            nw += q->workers[i].in_run && q->workers[i].state != W_LOST;
        queen_say(q, "running %s for %.0fs on %d worker%s (%d load threads)", q->name, q->planned_s, nw,
                  nw > 1 ? "s" : "", total_slots(q));
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

/* setup() runs on one ready worker of the run (again on another when that one is lost). */
static void run_setup(queen *q)
{
    qworker *w = NULL;
    for (int i = 0; i < q->nworkers && !w; i++)
        if (q->workers[i].in_run && q->workers[i].state == W_READY) w = &q->workers[i];
    if (!w) return;
    q->phase = Q_SETUP;
    q->phase_ms = now_ms();
    q->setup_w = w;
    send_run(q, w, RUN_SETUP, 0, total_slots(q));
}

static void maybe_prepared(queen *q)
{
    if (q->phase != Q_PREPARE) return;
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].in_run && q->workers[i].state == W_PREPARING) return;
    run_setup(q);
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

/* `w` leaves the current run without having run it (it could not get ready): the others go on. */
static void sit_out(queen *q, qworker *w, const char *why)
{
    event(q, "worker %s %s: it sits this run out", w->name, why);
    w->in_run = 0;
    w->state = W_IDLE;
    if (w->counted_run == q->run_id) {
        w->counted_run = 0;
        q->took_part--;
    }
    wire_msg m = {.type = WIRE_STOP, .epoch = q->epoch, .run = q->run_id, .code = 2};
    send_to(q, w, &m);
    if (!first_in_run(q)) {
        fail_run(q, "no worker of the run could get ready: the run fails");
        return;
    }
    rebalance(q, NULL);
    maybe_prepared(q);
}

static void worker_lost(queen *q, qworker *w, const char *why)
{
    if (w->state == W_LOST) return;
    int was_in_run = w->in_run && q->phase != Q_WAITING && q->phase != Q_DONE;
    w->state = W_LOST;
    memset(w->vus, 0, sizeof w->vus);
    q->vus_max_sum -= worker_vus(w, 1);
    memset(w->vus_max, 0, sizeof w->vus_max);
    if (was_in_run) {
        q->lost++;
        w->lost_in_run = 1;
    }
    event(q, "worker %s %s%s", w->name, why, was_in_run ? "; its share goes to the others" : "");
    if (!was_in_run) return;
    if (!first_in_run(q)) {
        if (q->started) {
            queen_say(q, "every worker of the run is gone: ending it with what they reported");
            finish(q);
        } else {
            fail_run(q, "every worker of the run is gone before it started: the run fails");
        }
        return;
    }
    rebalance(q, NULL);
    if (q->phase == Q_SETUP && q->setup_w == w) {
        run_setup(q);
        if (q->setup_w != w) event(q, "setup() runs again, on worker %s", q->setup_w->name);
    }
    maybe_prepared(q);
    maybe_all_done(q);
}

/* ---- the worker table ---- */

static uint32_t peer_hash(const char *peer, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)peer[i]) * 16777619u;
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
    while (q->windex[i])
        i = (i + 1) & (WORKER_INDEX - 1);
    q->windex[i] = (int)(w - q->workers) + 1;
}

/* ---- worker messages ---- */

static int run_active(queen *q)
{
    return q->phase == Q_PREPARE || q->phase == Q_SETUP || q->phase == Q_RUN || q->phase == Q_TEARDOWN;
}

/* `w` is ready (its HAVE was taken): a late joiner starts at once, the others shed load. */
static void worker_ready(queen *q, qworker *w)
{
    w->state = W_READY;
    w->ready_run = q->run_id;
    if (q->phase == Q_RUN) {
        rebalance(q, w);
        w->state = W_RUNNING;
        send_run(q, w, RUN_START, now_s() - q->t0, total_slots(q));
        event(q, "worker %s takes slots %d-%d of %d", w->name, w->slot, w->slot + w->threads - 1,
              total_slots(q));
    }
    maybe_prepared(q);
}

/* A worker that was lost comes back in the same run (it said so in its HELLO): it keeps its
 * numbering and is counted once; one that kept running goes on with a share again. */
static void worker_back(queen *q, qworker *w, int code)
{
    enlist(q, w);
    if (w->lost_in_run) {
        w->lost_in_run = 0;
        q->lost--;
    }
    if (code >= 2 && w->done_run == q->run_id) { /* its DONE was taken before it was lost */
        w->state = W_FINISHED;
        event(q, "worker %s is back; its share had ended", w->name);
        maybe_all_done(q);
    } else if (code >= 2) { /* it kept running (or finished: its DONE comes in order) */
        w->state = W_RUNNING;
        rebalance(q, NULL);
        event(q, "worker %s is back and still running; slots %d-%d of %d", w->name, w->slot,
              w->slot + w->threads - 1, total_slots(q));
    } else if (code == 1 && w->ready_run == q->run_id) {
        event(q, "worker %s is back, ready", w->name);
        worker_ready(q, w);
    } else if (code == 1) {
        w->state = W_PREPARING; /* its HAVE comes */
        event(q, "worker %s is back, preparing", w->name);
    } else { /* it dropped the run: prepare it again, its numbers go on */
        w->state = W_PREPARING;
        w->slot = total_slots(q) - w->threads;
        send_run(q, w, RUN_PREPARE, 0, total_slots(q));
        event(q, "worker %s is back", w->name);
    }
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
    snprintf(w->name, sizeof w->name, "%s", m->id ? m->id : "?");
    w->threads = m->threads > 0 && m->threads < 4096 ? (int)m->threads : 1;
    w->last_seen_ms = now_ms();
    send_to(q, w, &welcome);
    if (run_active(q) && m->epoch == q->epoch && m->run == q->run_id && w->seq_run == q->run_id) {
        worker_back(q, w, (int)m->code);
        return;
    }
    w->in_run = 0;
    int known = live_workers(q);
    event(q, "worker %s joined (%d threads); %d connected", w->name, w->threads, known);
    /* only the first run starts by itself; with --serve the next ones wait for Enter */
    if (q->phase == Q_WAITING && !q->runs_begun && known >= (q->o->expect > 0 ? q->o->expect : 1)) {
        begin_run(q);
    } else if (q->phase == Q_RUN || q->phase == Q_PREPARE || q->phase == Q_SETUP) {
        enlist(q, w); /* joins the running test: prepared now, started once it has the bundle */
        w->state = W_PREPARING;
        w->slot = total_slots(q) - w->threads;
        send_run(q, w, RUN_PREPARE, 0, total_slots(q));
    }
}

static void on_have(queen *q, qworker *w, wire_msg *m)
{
    if (m->run != q->run_id || w->state != W_PREPARING) return;
    worker_ready(q, w);
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
        if (!q->failed) queen_say(q, "worker %s could not start the run", w->name);
        q->failed = 1;
        w->state = W_LOST;
        if (!first_in_run(q) || q->phase == Q_PREPARE || q->phase == Q_SETUP) finish(q);
        return;
    }
    if (m->code == 3) { /* could not get the bundle */
        if (w->state == W_PREPARING) sit_out(q, w, "could not get the bundle");
        return;
    }
    w->done_run = q->run_id;
    if (w->state == W_RUNNING) w->state = W_FINISHED;
    maybe_all_done(q);
}

/* Count a message that was dropped, and say so once per kind. */
static void count_malformed(queen *q, const char *kind, const char *why)
{
    q->malformed++;
    if (wire_err_once(&q->malformed_said, kind))
        queen_say(q, "dropped a malformed message (%s: %s); further ones of this kind are counted", kind,
                  why);
}

static void on_bad_frames(zsock *z, const char *peer, size_t peerlen, int frames, void *ud)
{
    (void)z, (void)peer, (void)peerlen;
    char why[64];
    snprintf(why, sizeof why, "%d parts instead of 1 after the identity", frames - 1);
    count_malformed(ud, "frames", why);
}

/* A numbered message is taken only in order: 0 for a duplicate, another run's, or one past a gap
 * (refused: the worker sends everything unacknowledged again, in order). */
static int in_order(queen *q, qworker *w, const wire_msg *m)
{
    if (!m->seq) return m->run == q->run_id; /* not numbered (tools) */
    if (m->run != q->run_id || w->seq_run != q->run_id) return 0;
    if (m->seq != w->last_seq + 1) return 0;
    w->last_seq = m->seq; /* acknowledged by the next heartbeat: one message a second, not one each */
    return 1;
}

/* A message from a worker we know (and have not lost). */
static void on_worker_msg(queen *q, qworker *w, wire_msg *m)
{
    w->last_seen_ms = now_ms();
    if (WIRE_IS_NUMBERED(m->type) && !in_order(q, w, m)) return;
    switch (m->type) {
    case WIRE_BUNDLE_GET:
        if (q->have_bundle && m->hash && !strcmp(m->hash, q->b.hash)) {
            wire_msg b = {
                .type = WIRE_BUNDLE, .hash = q->b.hash, .data = q->bundle_buf, .data_len = q->bundle_len};
            send_to(q, w, &b);
        }
        break;
    case WIRE_HAVE:
        on_have(q, w, m);
        break;
    case WIRE_SETUP:
        on_setup(q, w, m);
        break;
    case WIRE_STATS:
        if (m->data && m->seq) merge_snapshot(q, w, (int)m->slot, m->data, m->data_len);
        break;
    case WIRE_DONE:
        on_done(q, w, m);
        break;
    case WIRE_LOG:
        if (m->text) {
            if (q->o->bind)
                queen_say(q, "%s: %s", w->name, m->text);
            else
                queen_say(q, "%s", m->text);
        }
        break;
    case WIRE_BYE:
        worker_lost(q, w, "left");
        break;
    case WIRE_ROWS: /* a feeder's or counter's next positions: a range no one else gets this run */
        if (m->run == q->run_id && w->in_run) {
            wire_msg r = {
                .type = WIRE_ROWS, .run = m->run, .text = m->text, .code = m->code, .count = m->count};
            if (leases_take(&q->leases, m->text, &r.count, &r.first) < 0) r.count = 0; /* refused */
            send_to(q, w, &r);
        }
        break;
    case WIRE_STOP: /* the scenario asked to end the test (parrot.abort_test) */
        if ((q->phase == Q_RUN || q->phase == Q_SETUP) && !q->aborted) {
            q->aborted = q->interrupted = q->script_aborted = 1;
            queen_say(q, "the scenario ended the test: %s", m->text ? m->text : "abort_test");
            stop_run(q, 0);
        }
        break;
    default:
        break;
    }
}

static void on_frame(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len, void *ud)
{
    (void)z;
    queen *q = ud;
    wire_msg m;
    char err[256];
    if (wire_decode(buf, len, &m, err, sizeof err) != 0) {
        count_malformed(q, wire_err_kind(err), err);
        return;
    }
    qworker *w = find_worker(q, peer, peerlen);
    if (m.type == WIRE_HELLO) {
        on_hello(q, peer, peerlen, &m);
    } else if (!w || w->state == W_LOST) {
        wire_msg re = {.type = WIRE_REHELLO, .epoch = q->epoch};
        send_peer(q, peer, peerlen, &re);
    } else {
        on_worker_msg(q, w, &m);
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
        queen_say(q, "an abort threshold was crossed: stopping the run");
        stop_run(q, 0);
    }
    double elapsed = now_s() - q->t0;
    if (!q->stop_at && elapsed > q->planned_s + q->graceful_s + 30) {
        queen_say(q, "the run is overdue: cutting it");
        stop_run(q, 1);
    }
    if (q->stop_at && now_s() > q->stop_at) {
        queen_say(q, "workers did not finish in time: ending with what they reported");
        finish(q);
    }
}

/* Preparing and setup() do not wait forever for workers that say nothing. */
static void check_phase_timeouts(queen *q)
{
    uint64_t age = now_ms() - q->phase_ms;
    if (q->phase == Q_PREPARE && age > PREPARE_TIMEOUT_MS) {
        char why[96];
        snprintf(why, sizeof why, "did not get ready within %d s (no HAVE)", PREPARE_TIMEOUT_MS / 1000);
        for (int i = 0; i < q->nworkers && q->phase == Q_PREPARE; i++)
            if (q->workers[i].in_run && q->workers[i].state == W_PREPARING) sit_out(q, &q->workers[i], why);
    } else if (q->phase == Q_SETUP && age > SETUP_TIMEOUT_MS) {
        char line[256];
        snprintf(line, sizeof line, "setup() did not finish within %d s on worker %s: the run fails",
                 SETUP_TIMEOUT_MS / 1000, q->setup_w ? q->setup_w->name : "?");
        fail_run(q, line);
    }
}

/* Each beat: workers silent too long are lost, and every BEATS_PER_HEARTBEAT-th worker (a
 * different share each beat) gets its heartbeat: with a thousand workers the queen sends 500 a
 * second, not 1,000, and each worker still hears from it every 2 s, acknowledgements included. */
static void on_beat(uv_timer_t *h)
{
    queen *q = h->data;
    uint64_t now = now_ms();
    q->beats++;
    for (int i = 0; i < q->nworkers; i++) {
        qworker *w = &q->workers[i];
        if (w->state == W_LOST) continue;
        if (now - w->last_seen_ms > LOST_AFTER_MS) {
            worker_lost(q, w, "missed 3 heartbeats");
            continue;
        }
        if (((unsigned)i + q->beats) % BEATS_PER_HEARTBEAT) continue;
        /* the heartbeat acknowledges every numbered message of the run up to last_seq */
        wire_msg hb = {.type = WIRE_HEARTBEAT,
                       .epoch = q->epoch,
                       .run = q->run_id,
                       .seq = w->seq_run == q->run_id ? w->last_seq : 0};
        send_to(q, w, &hb);
    }
    if (q->stop_at && now_s() > q->stop_at && q->phase != Q_DONE) finish(q);
    check_phase_timeouts(q);
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
        wire_msg m = {.type = WIRE_STOP, .epoch = q->epoch, .run = q->run_id, .code = hard};
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
        queen_say(q, "stopping (in-flight requests get 2 s; press Ctrl-C again to cut them now)");
        stop_run(q, 0);
    } else if (q->signals == 2) {
        stop_run(q, 1);
    } else {
        finish(q);
    }
}

/* ---- setup ---- */

static void close_cb(uv_handle_t *h) { (void)h; }

static int summarize(queen *q)
{
    int code = 0;
    q->total->vus_max = q->vus_peak;
    double dur = q->started ? q->t_end - q->t0 : 0;
    int bad = thresholds_eval(&q->th, q->total, dur, 0);
    report r = {.scenario = q->name,
                .total = q->total,
                .rows = q->rows,
                .nrows = q->nrows,
                .workers = q->took_part,
                .workers_lost = q->lost,
                .threads = total_slots(q),
                .duration_s = dur,
                .thresholds = &q->th,
                .interrupted = q->interrupted,
                .wire_errors = q->malformed};
    report_summary(stdout, &r);
    if (q->tsr) tsreport_print(stdout, q->tsr, q->total, dur);
    fflush(stdout);
    if (queen_write_outputs(q, &r) || q->script_aborted || q->run_failed) code = 1;
    if (bad) code = 99;
    return code;
}

/* Ctrl-C or SIGTERM before the loop's handlers exist (loading the scenario, hashing its bundle):
 * remembered, and acted on as soon as they do, so the run still ends with its summary. */
static volatile sig_atomic_t early_signal;
static void on_early_signal(int signum) { early_signal = signum; }

static void catch_early_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_early_signal;
    sigemptyset(&sa.sa_mask);
    early_signal = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The timers, signals and either the embedded worker (parrot run) or the queen's terminal. 0, or
 * 1 when the embedded worker could not start. */
static int start_handles(queen *q, const char *endpoint)
{
    const queen_options *o = q->o;
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
        worker_options wo = {.queen = endpoint,
                             .name = "local",
                             .threads = o->threads,
                             .sources = o->http.sources,
                             .quiet = 1};
        char err[256];
        q->embedded = worker_thread_start(q->zctx, &wo, err, sizeof err);
        if (!q->embedded) {
            fprintf(stderr, "parrot: %s\n", err);
            return 1;
        }
        if (early_signal) on_signal(&q->sigint, early_signal);
        return 0;
    }
    queen_say(q, "queen listening on %s; waiting for %d worker%s", endpoint, o->expect > 0 ? o->expect : 1,
              o->expect > 1 ? "s" : "");
    if (isatty(0) && uv_tty_init(&q->loop, &q->in, 0, 1) == 0) {
        q->in.data = q;
        uv_read_start((uv_stream_t *)&q->in, on_alloc, on_stdin);
        q->stdin_on = 1;
        queen_say(q, "press Enter to start with the workers connected so far");
    }
    if (early_signal) on_signal(&q->sigint, early_signal);
    return 0;
}

int queen_run(const queen_options *o)
{
    queen *q = calloc(1, sizeof *q);
    if (!q) return 1;
    q->o = o;
    q->tty = isatty(2);
    q->epoch = queen_new_epoch();
    q->workers = calloc(MAX_WORKERS, sizeof *q->workers);
    catch_early_signals();
    int code = queen_check_options(o);
    if (!code) code = queen_load_plan(q);
    if (!code) code = queen_build_bundle(q);
    if (code) goto out_early;
    q->total = stats_new();
    q->interval = stats_new();
    q->all_owed = 1;
    q->scratch = stats_new();
    if (o->tsung_report) q->tsr = tsreport_new();
    uv_loop_init(&q->loop);
    q->zctx = zmq_ctx_new();
    char endpoint[128];
    if (o->bind)
        snprintf(endpoint, sizeof endpoint, "%s", o->bind);
    else
        snprintf(endpoint, sizeof endpoint, "inproc://parrot-queen-%llx", (unsigned long long)q->epoch);
    code = queen_open_socket(q, endpoint, on_frame, on_bad_frames);
    if (!code) {
        code = start_handles(q, endpoint);
        if (!code) {
            uv_run(&q->loop, UV_RUN_DEFAULT);
            if (q->phase == Q_WAITING && q->o->serve && q->stdin_on)
                code = q->last_code; /* quit between runs */
            else
                code = run_code(q);
        }
        uv_close((uv_handle_t *)&q->tick, close_cb);
        uv_close((uv_handle_t *)&q->beat, close_cb);
        uv_close((uv_handle_t *)&q->sigint, close_cb);
        uv_close((uv_handle_t *)&q->sigterm, close_cb);
        if (q->stdin_on || q->in.type == UV_TTY) uv_close((uv_handle_t *)&q->in, close_cb);
    }
    /* let the last STOPs leave before the embedded worker and the socket go */
    for (int i = 0; i < 5; i++)
        uv_run(&q->loop, UV_RUN_NOWAIT);
    if (q->embedded) worker_thread_stop(q->embedded);
    queen_close_socket(q);
    if (q->z) zsock_detach(q->z);
    uv_run(&q->loop, UV_RUN_DEFAULT);
    if (q->sock) zmq_close(q->sock);
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
    for (int i = 0; i < q->nfiles; i++)
        free(q->files[i]);
    free(q->files);
    free(q->rows);
    free(q->workers);
    free(q);
    return code;
}
