/* worker: the control loop of a load process.
 *
 * Everything the worker does is driven by messages from the queen: RUN (prepare, setup, start,
 * teardown), SET_LOAD, STOP, HANDBRAKE, ACK. The control loop owns the DEALER socket and the
 * heartbeats, so a load thread stuck in Lua or in a GC pause never makes the worker look dead.
 * What the worker reports in a run (snapshots, HAVE, SETUP, DONE, its STOP) is numbered with one
 * sequence that never restarts within a run and kept until the queen acknowledges it; what stays
 * unacknowledged for RESEND_MS (a link that dropped and came back underneath ZeroMQ, a queen
 * that lost us for a while) or meets a WELCOME of the same queen is sent again, in order. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bundle.h"
#include "bundle_cache.h"
#include "loadgen.h"
#include "wire.h"
#include "zsock.h"

#define HEARTBEAT_MS 1000
#define QUEEN_SILENT_MS 6000 /* no word from the queen (it beats every 2 s) this long: stop the load */
#define RESEND_MS 3500       /* unacknowledged this long (acks come every 2 s): send again */
#define MAX_MSG_BYTES ((int64_t)WIRE_MAX_FRAME + 4096) /* ZMQ_MAXMSGSIZE: a bundle and headroom */

enum run_code { RUN_PREPARE = 0, RUN_SETUP = 1, RUN_START = 2, RUN_TEARDOWN = 3 };
enum run_state { RS_NONE = 0, RS_PREPARING = 1, RS_RUNNING = 2, RS_DONE = 3 }; /* HELLO's code */

/* A numbered message kept until acknowledged: its encoded frame, sent again as it is. */
typedef struct pending {
    uint64_t run, seq, sent_ms;
    char *frame;
    size_t len;
    struct pending *next;
} pending;

typedef struct worker {
    uv_loop_t *loop;
    const worker_options *o;
    void *zctx;
    void *sock;
    zsock *z;
    char id[128];
    int threads;
    uv_timer_t beat;
    uv_signal_t sigint, sigterm;
    uv_async_t quit; /* worker_thread_stop */
    uint64_t epoch;  /* the queen we are welcomed by; 0 = none yet */
    uint64_t last_heard_ms;
    uint64_t last_sent_ms; /* any message tells the queen we live: heartbeats only fill silences */
    int welcomed;
    /* the current run */
    wire_msg run; /* the PREPARE message: strings the loadgen points into */
    int have_run;
    loadgen *lg;
    int lg_ready;
    int running; /* the load runs (between START and on_run_done) */
    int bundle_tries;
    char bundle_dir[4096];
    char script[4096 + 1100];
    const char **env, **headers, **resolve;
    int dump_left;
    uint64_t seq, seq_epoch, seq_run; /* the last number given in run seq_run of queen seq_epoch */
    uint64_t last_run;                /* the highest run the current queen dispatched */
    uint64_t last_beat_ms;            /* when on_beat last ran (a late one: we were stopped) */
    int run_state;                    /* enum run_state */
    pending *unacked, *unacked_tail;
    uint64_t malformed;      /* messages from the queen dropped as malformed */
    unsigned malformed_said; /* kinds logged (wire_err_once) */
    int quitting;
    int runs_done;
    curve_monitor *mon;
} worker;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void say(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(worker *w, const char *fmt, ...)
{
    if (w->o->quiet) return;
    char ts[32];
    time_t t = time(NULL);
    strftime(ts, sizeof ts, "%H:%M:%S", localtime(&t));
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] worker %s: ", ts, w->id);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void send_msg(worker *w, const wire_msg *m)
{
    char *buf;
    size_t len;
    if (wire_encode(m, &buf, &len) != 0) return;
    w->last_sent_ms = uv_hrtime() / 1000000;
    if (zsock_send(w->z, NULL, 0, buf, len) != 0 && errno != EAGAIN)
        say(w, "cannot send %s: %s", wire_type_name(m->type), zmq_strerror(errno));
    free(buf);
}

static void send_simple(worker *w, int type)
{
    wire_msg m = {.type = type, .epoch = w->epoch, .run = w->have_run ? w->run.run : 0};
    send_msg(w, &m);
}

static void send_hello(worker *w)
{
    size_t n = 0;
    char **hashes = bundle_cache_list(&n);
    int holds = w->epoch && w->seq_epoch == w->epoch && w->seq_run;
    wire_msg m = {.type = WIRE_HELLO,
                  .id = w->id,
                  .threads = w->threads,
                  .hashes = hashes,
                  .nhashes = n,
                  .epoch = w->epoch,
                  .run = holds ? w->seq_run : 0,
                  .code = holds ? w->run_state : 0};
    send_msg(w, &m);
    for (size_t i = 0; hashes && hashes[i]; i++)
        free(hashes[i]);
    free(hashes);
}

static void send_log(worker *w, const char *text, int error)
{
    wire_msg m = {.type = WIRE_LOG, .text = (char *)text, .code = error, .run = w->have_run ? w->run.run : 0};
    send_msg(w, &m);
}

/* ---- numbered messages ---- */

/* Number `m` in the current run, keep it until acknowledged and send it. */
static void send_numbered(worker *w, wire_msg *m)
{
    m->run = w->seq_run;
    m->seq = ++w->seq;
    pending *p = calloc(1, sizeof *p);
    if (!p || wire_encode(m, &p->frame, &p->len) != 0) { /* its number must not become a gap */
        say(w, "cannot encode %s: not sent", wire_type_name(m->type));
        w->seq--;
        free(p);
        return;
    }
    p->run = m->run;
    p->seq = m->seq;
    p->sent_ms = now_ms();
    if (w->unacked_tail)
        w->unacked_tail->next = p;
    else
        w->unacked = p;
    w->unacked_tail = p;
    w->last_sent_ms = p->sent_ms;
    if (zsock_send(w->z, NULL, 0, p->frame, p->len) != 0 && errno != EAGAIN)
        say(w, "cannot send %s: %s", wire_type_name(m->type), zmq_strerror(errno));
}

/* Send every unacknowledged message again, oldest first (the queen drops what it has). */
static void resend_unacked(worker *w)
{
    uint64_t now = now_ms();
    for (pending *p = w->unacked; p; p = p->next) {
        p->sent_ms = now;
        if (zsock_send(w->z, NULL, 0, p->frame, p->len) != 0) break; /* no link yet: next time */
        w->last_sent_ms = now;
    }
}

/* Forget what the queen has (`run` up to `upto`) and everything of other runs. */
static void drop_unacked(worker *w, uint64_t run, uint64_t upto)
{
    pending **pp = &w->unacked;
    while (*pp) {
        pending *p = *pp;
        if (p->run != run || p->seq <= upto) {
            *pp = p->next;
            free(p->frame);
            free(p);
        } else {
            pp = &p->next;
        }
    }
    w->unacked_tail = NULL;
    for (pending *p = w->unacked; p; p = p->next)
        w->unacked_tail = p;
}

static void on_snapshot(void *ud, int thread, const char *buf, size_t len)
{
    worker *w = ud;
    wire_msg m = {.type = WIRE_STATS, .slot = thread, .data = (char *)buf, .data_len = len};
    send_numbered(w, &m);
}

/* ---- the load ---- */

static void free_run(worker *w)
{
    if (w->lg) loadgen_free(w->lg);
    w->lg = NULL;
    w->lg_ready = w->running = 0;
    if (w->have_run) wire_msg_free(&w->run);
    w->have_run = 0;
    w->run_state = RS_NONE;
    free(w->env), free(w->headers), free(w->resolve);
    w->env = w->headers = w->resolve = NULL;
}

static void on_ready(void *ud, int ok, const char *msg)
{
    worker *w = ud;
    if (!ok) {
        char line[4096];
        snprintf(line, sizeof line, "cannot load the scenario: %s", msg ? msg : "?");
        send_log(w, line, 1);
        wire_msg m = {.type = WIRE_DONE, .code = 2};
        send_numbered(w, &m);
        return;
    }
    w->lg_ready = 1;
    wire_msg m = {.type = WIRE_HAVE, .hash = w->run.hash, .version = w->run.version};
    send_numbered(w, &m);
}

/* A line for the user (a script error, a load thread stuck in Lua): to the queen, and here. */
static void on_message(void *ud, const char *msg)
{
    worker *w = ud;
    say(w, "%s", msg);
    send_log(w, msg, 1);
}

static void on_hook_done(void *ud, const char *json)
{
    worker *w = ud;
    wire_msg m = {.type = WIRE_SETUP, .setup = (char *)json, .code = 0};
    send_numbered(w, &m);
}

/* The scenario wants the whole test to end: ask the queen (a worker's STOP carries the reason). */
static void on_abort_test(void *ud, const char *why)
{
    worker *w = ud;
    wire_msg m = {.type = WIRE_STOP, .text = (char *)why};
    send_numbered(w, &m);
}

static void on_run_done(void *ud)
{
    worker *w = ud;
    w->running = 0;
    w->run_state = RS_DONE;
    wire_msg m = {.type = WIRE_DONE, .code = 0};
    send_numbered(w, &m);
}

/* A data feeder or counter of a load thread wants positions of the run: the queen leases them
 * (WIRE_ROWS back). */
static void on_rows(void *ud, int thread, const char *key, int64_t count)
{
    worker *w = ud;
    wire_msg m = {.type = WIRE_ROWS, .run = w->run.run, .text = (char *)key, .code = thread, .count = count};
    send_msg(w, &m);
}

static const char **list_of(char **v, size_t n)
{
    const char **l = calloc(n + 1, sizeof *l);
    if (!l) abort();
    for (size_t i = 0; i < n; i++)
        l[i] = v[i];
    return l;
}

/* Start the load threads on the bundle now at hand (they report on_ready). */
static void start_loadgen(worker *w)
{
    wire_msg *r = &w->run;
    w->env = list_of(r->env, r->nenv);
    w->headers = list_of(r->headers, r->nheaders);
    w->resolve = list_of(r->resolve, r->nresolve);
    w->dump_left = (int)r->dump;
    loadgen_plan plan = {
        .script = r->script ? w->script : NULL,
        .overrides = {.url = r->url,
                      .method = r->method,
                      .body = r->body,
                      .headers = w->headers,
                      .vus = (int)r->vus,
                      .rate = r->rate,
                      .duration = r->duration,
                      .iterations = (long)r->iterations,
                      .insecure = r->insecure},
        .env = w->env,
        .threads = w->threads,
        .http = {.insecure = r->insecure,
                 .proxy = r->proxy,
                 .resolve = w->resolve,
                 .sources = w->o->sources,
                 .dump_left = &w->dump_left},
        .slot = (int)r->slot,
        .nslots = (int)r->nslots,
        .alone = !strncmp(w->o->queen, "inproc://", 9),
    };
    loadgen_events ev = {.on_ready = on_ready,
                         .on_snapshot = on_snapshot,
                         .on_message = on_message,
                         .on_hook_done = on_hook_done,
                         .on_run_done = on_run_done,
                         .on_abort_test = on_abort_test,
                         .on_rows = on_rows,
                         .ud = w};
    char err[512];
    w->lg = loadgen_start(w->loop, &plan, &ev, err, sizeof err);
    if (!w->lg) send_log(w, err, 1);
}

/* The bundle of the current run is in the cache at `dir`: point the script there. */
static void bundle_ready(worker *w, const char *dir)
{
    snprintf(w->bundle_dir, sizeof w->bundle_dir, "%s", dir);
    snprintf(w->script, sizeof w->script, "%s/%s", dir, w->run.script);
    start_loadgen(w);
}

static void on_prepare(worker *w, wire_msg *m)
{
    free_run(w);
    w->run = *m; /* take ownership of the strings */
    memset(m, 0, sizeof *m);
    w->have_run = 1;
    w->run_state = RS_PREPARING;
    if (w->seq_epoch != w->epoch || w->seq_run != w->run.run) { /* a new run: a new sequence */
        w->seq_epoch = w->epoch;
        w->seq_run = w->run.run;
        w->seq = 0;
        drop_unacked(w, w->seq_run, 0);
    } /* else the same run again (the queen lost us for a while): numbers go on where they were */
    w->bundle_tries = 0;
    say(w, "run %llu: slots %lld-%lld of %lld", (unsigned long long)w->run.run, (long long)w->run.slot,
        (long long)(w->run.slot + w->threads - 1), (long long)w->run.nslots);
    if (!w->run.hash) { /* --url: nothing to fetch */
        start_loadgen(w);
        return;
    }
    char dir[4096];
    if (bundle_cache_get(w->run.hash, dir, sizeof dir)) {
        bundle_ready(w, dir);
        return;
    }
    wire_msg get = {.type = WIRE_BUNDLE_GET, .hash = w->run.hash, .run = w->run.run};
    send_msg(w, &get);
}

static void on_bundle(worker *w, wire_msg *m)
{
    if (!w->have_run || !w->run.hash || !m->hash || strcmp(m->hash, w->run.hash)) return;
    bundle b;
    char err[512], dir[4096];
    if (bundle_decode(&b, m->data, m->data_len, w->run.hash, err, sizeof err) != 0 ||
        bundle_cache_put(&b, dir, sizeof dir, err, sizeof err) != 0) {
        char line[700];
        snprintf(line, sizeof line, "bundle %.12s refused: %s", w->run.hash, err);
        send_log(w, line, 1);
        if (++w->bundle_tries < 3) {
            wire_msg get = {.type = WIRE_BUNDLE_GET, .hash = w->run.hash, .run = w->run.run};
            send_msg(w, &get);
        } else { /* give up, and say so: the queen must not wait for a HAVE that never comes */
            say(w, "%s; giving up on run %llu", line, (unsigned long long)w->run.run);
            wire_msg done = {.type = WIRE_DONE, .code = 3};
            send_numbered(w, &done);
        }
        return;
    }
    bundle_free(&b);
    bundle_ready(w, dir);
}

static void on_run(worker *w, wire_msg *m)
{
    if (m->code == RUN_PREPARE) {
        on_prepare(w, m);
        return;
    }
    if (!w->have_run || m->run != w->run.run || !w->lg || !w->lg_ready) return;
    switch (m->code) {
    case RUN_SETUP:
        loadgen_hook(w->lg, "setup", NULL);
        break;
    case RUN_START:
        if (w->running) break; /* a repeated START (the queen took us back): the load runs */
        if (m->slot != w->run.slot || m->nslots != w->run.nslots) {
            w->run.slot = m->slot;
            w->run.nslots = m->nslots;
            loadgen_set_share(w->lg, (int)m->slot, (int)m->nslots);
        }
        w->running = 1;
        w->run_state = RS_RUNNING;
        loadgen_run(w->lg, m->elapsed, m->setup, m->duration);
        break;
    case RUN_TEARDOWN:
        loadgen_hook(w->lg, "teardown", m->setup);
        break;
    }
}

static void handbrake(worker *w)
{
    if (w->lg) loadgen_stop(w->lg, 1);
    free_run(w);
    drop_unacked(w, 0, UINT64_MAX);
}

/* Dispatches come from the queen that welcomed us, in the order of its run counter: a RUN of
 * another epoch or of an older run is stale (a queued message of a queen gone, a reordering). */
static int dispatch_current(worker *w, const wire_msg *m)
{
    if (!w->welcomed || m->epoch != w->epoch) return 0;
    if (m->type == WIRE_RUN) {
        if (m->run < w->last_run) return 0;
        w->last_run = m->run;
    } else if (m->type != WIRE_HANDBRAKE && m->run < w->last_run) {
        return 0;
    }
    return 1;
}

static void on_welcome(worker *w, const wire_msg *m)
{
    if (w->epoch && m->epoch != w->epoch) {
        say(w, "the queen restarted (new epoch): dropping the old run");
        handbrake(w);
        w->last_run = 0;
    }
    if (!w->welcomed) say(w, "joined the queen at %s", w->o->queen);
    w->epoch = m->epoch;
    w->welcomed = 1;
    resend_unacked(w); /* the same queen: what it may have missed (it drops duplicates) */
}

static void on_set_load(worker *w, const wire_msg *m)
{
    if (!w->have_run || m->run != w->run.run || !w->lg) return;
    if (m->slot == w->run.slot && m->nslots == w->run.nslots) return;
    w->run.slot = m->slot;
    w->run.nslots = m->nslots;
    loadgen_set_share(w->lg, (int)m->slot, (int)m->nslots);
    say(w, "share changed: slots %lld-%lld of %lld", (long long)m->slot,
        (long long)(m->slot + w->threads - 1), (long long)m->nslots);
}

static void on_stop(worker *w, const wire_msg *m)
{
    if (!w->have_run || m->run != w->run.run) return;
    if (w->running && w->lg)
        loadgen_stop(w->lg, m->code == 1);
    else if (m->code == 2) { /* the run is over: free the threads */
        free_run(w);
        w->runs_done++;
        /* the embedded worker stays until worker_thread_stop: its owner sends to a live loop */
    }
}

/* Count a message from the queen that was dropped, and say so once per kind. */
static void count_malformed(worker *w, const char *kind, const char *why)
{
    w->malformed++;
    if (wire_err_once(&w->malformed_said, kind))
        say(w, "dropped a malformed message from the queen (%s): %s; further ones of this kind are counted",
            kind, why);
}

static void on_bad_frames(zsock *z, const char *peer, size_t peerlen, int frames, void *ud)
{
    (void)z, (void)peer, (void)peerlen;
    char why[64];
    snprintf(why, sizeof why, "%d parts instead of 1", frames);
    count_malformed(ud, "frames", why);
}

/* A frame from the queen. */
static void on_frame(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len, void *ud)
{
    (void)z, (void)peer, (void)peerlen;
    worker *w = ud;
    wire_msg m;
    char err[256];
    if (wire_decode(buf, len, &m, err, sizeof err) != 0) {
        count_malformed(w, wire_err_kind(err), err);
        return;
    }
    w->last_heard_ms = now_ms();
    int current = dispatch_current(w, &m);
    switch (m.type) {
    case WIRE_WELCOME:
        on_welcome(w, &m);
        break;
    case WIRE_REHELLO:
        w->welcomed = 0;
        send_hello(w);
        break;
    case WIRE_HEARTBEAT:
        if (w->epoch && m.epoch && m.epoch != w->epoch) { /* a new queen that never welcomed us */
            w->welcomed = 0;
            send_hello(w);
        } else if (m.run && m.seq) {
            drop_unacked(w, m.run, m.seq); /* the queen's heartbeat acknowledges what it has */
        }
        break;
    case WIRE_RUN:
        if (current) on_run(w, &m);
        break;
    case WIRE_BUNDLE:
        on_bundle(w, &m);
        break;
    case WIRE_SET_LOAD:
        if (current) on_set_load(w, &m);
        break;
    case WIRE_STOP:
        if (current) on_stop(w, &m);
        break;
    case WIRE_HANDBRAKE:
        if (!current) break;
        say(w, "handbrake: all load stopped");
        handbrake(w);
        break;
    case WIRE_ACK:
        drop_unacked(w, m.run, m.seq);
        break;
    case WIRE_ROWS:
        if (w->have_run && m.run == w->run.run && w->lg && m.text)
            loadgen_rows(w->lg, (int)m.code, m.text, m.first, m.count);
        break;
    case WIRE_RELOAD:
    case WIRE_PAUSE:
    case WIRE_RESUME:
        send_log(w, "this worker does not support RELOAD, PAUSE or RESUME yet", 0);
        break;
    default:
        break;
    }
    wire_msg_free(&m);
}

static void on_beat(uv_timer_t *h)
{
    worker *w = h->data;
    uint64_t now = now_ms();
    /* a late beat means this process was stopped (SIGSTOP, a frozen VM): the queen's words may
     * wait unread in the socket, so it is not the queen that was silent */
    if (w->last_beat_ms && now - w->last_beat_ms > 2 * HEARTBEAT_MS) w->last_heard_ms = now;
    w->last_beat_ms = now;
    if (!w->welcomed) {
        send_hello(w);
        return;
    }
    if (now - w->last_heard_ms > QUEEN_SILENT_MS) {
        say(w, "the queen is silent: stopping the load and waiting for it");
        if (w->lg) loadgen_stop(w->lg, 1);
        free_run(w); /* what it did not acknowledge is kept: the same queen gets it when back */
        w->welcomed = 0;
        send_hello(w);
        return;
    }
    if (w->unacked && now - w->unacked->sent_ms >= RESEND_MS) resend_unacked(w);
    if (now - w->last_sent_ms >= HEARTBEAT_MS - 100) send_simple(w, WIRE_HEARTBEAT);
}

static void shutdown_worker(worker *w)
{
    if (w->quitting++) return;
    if (w->malformed)
        say(w, "%llu malformed messages from the queen were dropped", (unsigned long long)w->malformed);
    send_simple(w, WIRE_BYE);
    handbrake(w);
    uv_stop(w->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    shutdown_worker(h->data);
}

static void on_quit(uv_async_t *a) { shutdown_worker(a->data); }

static void close_cb(uv_handle_t *h) { (void)h; }

/* A handshake line from the monitor thread: stderr is safe to write from there. */
static void on_handshake(void *ud, const char *line, int ok)
{
    worker *w = ud;
    if (!ok || !w->o->quiet) fprintf(stderr, "parrot worker %s: %s\n", w->id, line);
}

/* CURVE: this worker's pair, pinning the queen's key. 0 or -1 with a message printed. */
static int secure(worker *w)
{
    char err[512], qkey[CURVE_KEY_LEN + 1];
    curve_keys k;
    if (curve_load(w->o->keys_dir, &k, err, sizeof err) != 0 ||
        curve_read_public(w->o->queen_key, qkey, err, sizeof err) != 0) {
        fprintf(stderr, "parrot worker: %s\n", err);
        return -1;
    }
    if (curve_client(w->sock, &k, qkey) != 0) {
        fprintf(stderr, "parrot worker: cannot enable CURVE: %s\n", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Set up the socket and handles of `w` on `loop`; 0 or -1 with a message printed. */
static int worker_open(worker *w, uv_loop_t *loop)
{
    w->loop = loop;
    w->threads = w->o->threads > 0 ? w->o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (w->threads < 1) w->threads = 1;
    char host[64] = "worker";
    gethostname(host, sizeof host - 1);
    if (w->o->name)
        snprintf(w->id, sizeof w->id, "%s", w->o->name);
    else
        snprintf(w->id, sizeof w->id, "%s-%d", host, (int)getpid());
    w->sock = zmq_socket(w->zctx, ZMQ_DEALER);
    char rid[160];
    snprintf(rid, sizeof rid, "%s#%08lx", w->id, (unsigned long)(uv_hrtime() ^ (uint64_t)getpid() << 20));
    zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, rid, strlen(rid));
    int linger = 500, ivl = 200, ivlmax = 2000, immediate = 1;
    int64_t maxmsg = MAX_MSG_BYTES;
    /* queue nothing for a queen that is not there: heartbeats would pile up, and snapshots are
     * kept (and re-sent) by us until acknowledged anyway */
    zmq_setsockopt(w->sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivlmax, sizeof ivlmax);
    zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (w->o->keys_dir && secure(w) != 0) {
        zmq_close(w->sock);
        return -1;
    }
    /* every worker watches its handshakes: a keyless one meeting a keyed queen says so too */
    if (strncmp(w->o->queen, "inproc://", 9))
        w->mon =
            curve_monitor_start(w->zctx, w->sock, w->o->keys_dir ? 0 : CURVE_MON_KEYLESS, on_handshake, w);
    if (zmq_connect(w->sock, w->o->queen) != 0) {
        fprintf(stderr, "parrot worker: cannot connect to %s: %s\n", w->o->queen, zmq_strerror(errno));
        zmq_close(w->sock);
        return -1;
    }
    w->z = zsock_attach(loop, w->sock, 0, on_frame, w);
    zsock_on_bad(w->z, on_bad_frames);
    uv_timer_init(loop, &w->beat);
    w->beat.data = w;
    uv_timer_start(&w->beat, on_beat, HEARTBEAT_MS, HEARTBEAT_MS);
    send_hello(w);
    return 0;
}

static void worker_close(worker *w)
{
    free_run(w);
    drop_unacked(w, 0, UINT64_MAX);
    uv_close((uv_handle_t *)&w->beat, close_cb);
    zsock_detach(w->z);
    uv_run(w->loop, UV_RUN_NOWAIT);
    if (w->mon) curve_monitor_stop(w->mon);
    zmq_close(w->sock);
}

int worker_main(const worker_options *o)
{
    worker w;
    memset(&w, 0, sizeof w);
    w.o = o;
    w.zctx = zmq_ctx_new();
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (worker_open(&w, &loop) != 0) return 2;
    uv_signal_init(&loop, &w.sigint);
    uv_signal_init(&loop, &w.sigterm);
    w.sigint.data = w.sigterm.data = &w;
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    say(&w, "%d load threads, connecting to %s", w.threads, o->queen);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.sigint, close_cb);
    uv_close((uv_handle_t *)&w.sigterm, close_cb);
    worker_close(&w);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    zmq_ctx_term(w.zctx);
    return 0;
}

struct worker_thread {
    worker w;
    worker_options o;
    uv_thread_t tid;
    uv_loop_t loop;
    int started;
};

static void thread_main(void *arg)
{
    worker_thread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t->w.quit, close_cb);
    worker_close(&t->w);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
}

worker_thread *worker_thread_start(void *zctx, const worker_options *o, char *err, size_t errlen)
{
    worker_thread *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->o = *o;
    t->w.o = &t->o;
    t->w.zctx = zctx;
    uv_loop_init(&t->loop);
    if (worker_open(&t->w, &t->loop) != 0) {
        snprintf(err, errlen, "cannot connect the embedded worker to %s", o->queen);
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    uv_async_init(&t->loop, &t->w.quit, on_quit);
    t->w.quit.data = &t->w;
    if (uv_thread_create(&t->tid, thread_main, t) != 0) abort();
    return t;
}

void worker_thread_stop(worker_thread *t)
{
    if (!t) return;
    uv_async_send(&t->w.quit);
    uv_thread_join(&t->tid);
    free(t);
}
