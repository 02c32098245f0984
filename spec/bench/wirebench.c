/* wirebench: N simulated workers in one process, speaking the worker side of the wire to a queen,
 * so the queen's cost of merging statistics can be measured without N real workers.
 * Each worker is a DEALER (own routing id) that answers RUN like a worker with one load thread
 * and sends one prebuilt snapshot (20 names x ~100 latencies) per second; it never sends HTTP. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "stats.h"
#include "wire.h"

#define NAMES 20
#define PER_NAME 100
#define SNAPSHOTS 8 /* distinct prebuilt snapshots, reused round robin */
#define RUN_START 2

typedef struct snapshot {
    char *buf; /* stats_encode bytes, owned */
    size_t len;
    uint64_t requests;
} snapshot;

/* One simulated worker; owned by the thread that owns its socket. */
typedef struct sim {
    void *sock;
    int index;
    uint64_t epoch, run;
    uint64_t seq, sent; /* snapshots sent in the current run */
    int64_t start_ms;   /* when RUN/start arrived; 0 = not running */
    int64_t next_beat_ms, next_stats_ms;
    int stagger_ms;    /* snapshots of the workers are spread over the second */
    double duration_s; /* the run's duration: --duration, else the RUN's */
    int done, over;    /* DONE sent; STOP code 2 received */
    int dirty;         /* sent since the last drain */
    uint64_t acked;    /* highest snapshot the queen acknowledged (ACK, or a heartbeat's seq) */
} sim;

typedef struct slice {
    pthread_t tid;
    sim *sims;
    int n;
    uint64_t snapshots, requests, acks, bad; /* results; snapshots and acks also read live */
    int finished;                            /* the thread ended */
    char *buf;                               /* receive buffer, owned */
    int rescan;                              /* timers changed: scan before sleeping */
} slice;

static void *g_ctx;
static const char *g_queen = "tcp://127.0.0.1:5555";
static int g_workers = 1000, g_threads = 2;
static double g_duration = 0; /* 0: take the RUN's */
static double g_linger = 15;  /* seconds to wait for STOP after DONE */
static snapshot g_snaps[SNAPSHOTS];
static volatile int g_started;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A realistic interval of one load thread: 20 names, ~100 requests each over 1..50 ms. */
static void snapshot_build(snapshot *sn, unsigned seed)
{
    stats *s = stats_new();
    char name[64];
    for (int i = 0; i < NAMES; i++) {
        snprintf(name, sizeof name, "GET /api/resource/%02d", i);
        int id = stats_name_id(s, name, STATS_REQUEST);
        int n = PER_NAME - 5 + (int)(rand_r(&seed) % 11);
        for (int k = 0; k < n; k++) {
            uint64_t us = 1000 + (uint64_t)(rand_r(&seed) % 49000);
            int bad = rand_r(&seed) % 100 == 0;
            stats_request(s, id, us, bad ? 500 : 200, bad ? ERR_STATUS : ERR_NONE, 512, 128);
        }
    }
    s->iterations = s->requests / NAMES;
    s->vus = s->vus_max = 10;
    s->t_start_us = 0;
    s->t_end_us = 1000000;
    if (stats_encode(s, &sn->buf, &sn->len) != 0) {
        fprintf(stderr, "wirebench: cannot encode a snapshot\n");
        exit(1);
    }
    sn->requests = s->requests;
    stats_free(s);
}

static void sim_send(sim *w, const wire_msg *m)
{
    char *buf;
    size_t len;
    if (wire_encode(m, &buf, &len) != 0) return;
    if (zmq_send(w->sock, buf, len, ZMQ_DONTWAIT) < 0 && errno != EAGAIN)
        fprintf(stderr, "wirebench: worker %d cannot send %s: %s\n", w->index, wire_type_name(m->type),
                zmq_strerror(errno));
    w->dirty = 1;
    free(buf);
}

static void sim_hello(sim *w)
{
    char id[64];
    snprintf(id, sizeof id, "wirebench-%d", w->index);
    wire_msg m = {.type = WIRE_HELLO, .id = id, .threads = 1, .epoch = w->epoch};
    sim_send(w, &m);
}

static void sim_on_run(sim *w, const wire_msg *m)
{
    w->run = m->run;
    if (m->code == 0) { /* prepare: nothing to fetch with --url; the overrides come only here */
        w->duration_s = g_duration > 0 ? g_duration : m->duration > 0 ? m->duration : 10;
        wire_msg r = {.type = WIRE_HAVE, .run = m->run, .hash = m->hash, .version = m->version};
        sim_send(w, &r);
    } else if (m->code == 1 || m->code == 3) { /* setup / teardown: no hook */
        wire_msg r = {.type = WIRE_SETUP, .run = m->run, .code = 0};
        sim_send(w, &r);
    } else if (m->code == RUN_START) {
        if (w->duration_s <= 0) w->duration_s = g_duration > 0 ? g_duration : 10;
        w->start_ms = now_ms();
        w->seq = w->sent = 0;
        w->done = 0;
        w->next_stats_ms = w->start_ms + 1000 - w->stagger_ms;
        if (!g_started) {
            g_started = 1;
            printf("wirebench: run %llu started\n", (unsigned long long)m->run);
            fflush(stdout);
        }
    }
}

static void sim_on_frame(slice *sl, sim *w, const char *buf, size_t len)
{
    wire_msg m;
    char err[256];
    if (wire_decode(buf, len, &m, err, sizeof err) != 0) {
        if (!sl->bad++) fprintf(stderr, "wirebench: malformed message from the queen: %s\n", err);
        return;
    }
    switch (m.type) {
    case WIRE_WELCOME:
        w->epoch = m.epoch;
        break;
    case WIRE_REHELLO:
        sim_hello(w);
        break;
    case WIRE_RUN:
        sim_on_run(w, &m);
        sl->rescan = 1; /* new timers */
        break;
    case WIRE_ACK: /* acknowledgements are cumulative: count what is new */
    case WIRE_HEARTBEAT:
        if (m.run == w->run && m.seq > w->acked) {
            __atomic_fetch_add(&sl->acks, m.seq - w->acked, __ATOMIC_RELAXED);
            w->acked = m.seq;
        }
        break;
    case WIRE_STOP:
        if (m.code == 2)
            w->over = 1;
        else if (w->start_ms && !w->done) { /* stopped early: finish now */
            wire_msg d = {.type = WIRE_DONE, .run = w->run, .seq = ++w->seq, .code = 0}; /* numbered after the snapshots */
            sim_send(w, &d);
            w->done = 1;
        }
        break;
    default:
        break;
    }
    wire_msg_free(&m);
}

/* Timers of one worker; returns the next time it needs attention. */
static int64_t sim_tick(slice *sl, sim *w, int64_t now)
{
    if (now >= w->next_beat_ms) {
        wire_msg hb = {.type = WIRE_HEARTBEAT, .epoch = w->epoch, .run = w->run};
        sim_send(w, &hb);
        w->next_beat_ms = now + 1000;
    }
    int64_t next = w->next_beat_ms;
    if (!w->start_ms || w->done) return next;
    if (now >= w->next_stats_ms) {
        const snapshot *sn = &g_snaps[(w->index + w->seq) % SNAPSHOTS];
        wire_msg m = {.type = WIRE_STATS,
                      .run = w->run,
                      .seq = ++w->seq,
                      .slot = 0,
                      .data = sn->buf,
                      .data_len = sn->len};
        sim_send(w, &m);
        w->sent++;
        __atomic_fetch_add(&sl->snapshots, 1, __ATOMIC_RELAXED);
        sl->requests += sn->requests;
        w->next_stats_ms += 1000;
        if ((double)w->sent >= w->duration_s) {
            wire_msg d = {.type = WIRE_DONE, .run = w->run, .seq = ++w->seq, .code = 0}; /* numbered after the snapshots */
            sim_send(w, &d);
            w->done = 1;
            return next;
        }
    }
    return next < w->next_stats_ms ? next : w->next_stats_ms;
}

/* Receive everything waiting on w's socket. ZMQ_FD is edge-triggered: this runs after every
 * wake-up of its fd and after every send (sim_send marks the socket dirty). */
static void sim_drain(slice *sl, sim *w)
{
    w->dirty = 0;
    for (;;) {
        int ev = 0;
        size_t sz = sizeof ev;
        if (zmq_getsockopt(w->sock, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN)) return;
        int len;
        while ((len = zmq_recv(w->sock, sl->buf, WIRE_MAX_FRAME, ZMQ_DONTWAIT)) >= 0)
            sim_on_frame(sl, w, sl->buf, (size_t)len > WIRE_MAX_FRAME ? WIRE_MAX_FRAME : (size_t)len);
    }
}

static void slice_open(slice *sl, int epfd)
{
    int64_t t0 = now_ms();
    for (int i = 0; i < sl->n; i++) {
        sim *w = &sl->sims[i];
        char rid[64];
        int linger = 0, hwm = 10000, fd;
        size_t sz = sizeof fd;
        w->sock = zmq_socket(g_ctx, ZMQ_DEALER);
        if (!w->sock) {
            fprintf(stderr, "wirebench: socket %d: %s\n", w->index, zmq_strerror(errno));
            exit(1);
        }
        snprintf(rid, sizeof rid, "wirebench-%d#%d", w->index, (int)getpid());
        zmq_setsockopt(w->sock, ZMQ_ROUTING_ID, rid, strlen(rid));
        zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_connect(w->sock, g_queen) != 0) {
            fprintf(stderr, "wirebench: cannot connect to %s: %s\n", g_queen, zmq_strerror(errno));
            exit(1);
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)i};
        if (zmq_getsockopt(w->sock, ZMQ_FD, &fd, &sz) != 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fprintf(stderr, "wirebench: cannot watch socket %d: %s\n", w->index, strerror(errno));
            exit(1);
        }
        w->next_beat_ms = t0 + 1000 + w->stagger_ms;
        sim_hello(w);
    }
}

static void *slice_main(void *arg)
{
    slice *sl = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event *evs = calloc((size_t)sl->n, sizeof *evs);
    sl->buf = malloc(WIRE_MAX_FRAME);
    if (epfd < 0 || !evs || !sl->buf) abort();
    slice_open(sl, epfd);
    int64_t over_since = 0, next = 0, sweep = now_ms() + 1000;
    for (;;) {
        int64_t now = now_ms();
        if (now >= next || sl->rescan) { /* timers: heartbeats, snapshots, DONE */
            int over = 0, done = 0;
            sl->rescan = 0;
            next = now + 1000;
            for (int i = 0; i < sl->n; i++) {
                int64_t t = sim_tick(sl, &sl->sims[i], now);
                if (t < next) next = t;
                over += sl->sims[i].over;
                done += sl->sims[i].done;
            }
            if (over == sl->n) break;
            if (done == sl->n && !over_since) over_since = now;
            if (over_since && now - over_since > (int64_t)(g_linger * 1000)) {
                fprintf(stderr, "wirebench: %d of %d workers never got the run's end\n", sl->n - over, sl->n);
                break;
            }
        }
        int all = now >= sweep; /* a safety net against a missed edge */
        if (all) sweep = now + 1000;
        for (int i = 0; i < sl->n; i++)
            if (all || sl->sims[i].dirty) sim_drain(sl, &sl->sims[i]);
        now = now_ms();
        int timeout = next > now && !sl->rescan ? (int)(next - now) : 0;
        int k = epoll_wait(epfd, evs, sl->n, timeout);
        if (k < 0 && errno != EINTR) {
            fprintf(stderr, "wirebench: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int j = 0; j < k; j++)
            sim_drain(sl, &sl->sims[evs[j].data.u32]);
    }
    for (int i = 0; i < sl->n; i++)
        zmq_close(sl->sims[i].sock);
    close(epfd);
    free(evs);
    free(sl->buf);
    __atomic_store_n(&sl->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wirebench [--queen ENDPOINT] [--workers N] [--duration S] [--threads T] [--linger S]\n"
            "  --queen ENDPOINT   the queen's ROUTER (default tcp://127.0.0.1:5555)\n"
            "  --workers N        simulated workers, one DEALER each (default 1000)\n"
            "  --duration S       seconds of snapshots before DONE (default: the run's)\n"
            "  --threads T        threads, each owning a slice of the sockets (default 2)\n"
            "  --linger S         after DONE, how long to wait for the queen's STOP (default 15)\n"
            "Prints progress lines (snapshots sent and acknowledged) every 0.5 s, and the\n"
            "snapshots and requests sent once the queen ends the run.\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
        if (!v) usage();
        if (!strcmp(a, "--queen"))
            g_queen = v;
        else if (!strcmp(a, "--workers"))
            g_workers = atoi(v);
        else if (!strcmp(a, "--duration"))
            g_duration = atof(v);
        else if (!strcmp(a, "--threads"))
            g_threads = atoi(v);
        else if (!strcmp(a, "--linger"))
            g_linger = atof(v);
        else
            usage();
        i++;
    }
    if (g_workers < 1 || g_threads < 1) usage();
    if (g_threads > g_workers) g_threads = g_workers;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int i = 0; i < SNAPSHOTS; i++)
        snapshot_build(&g_snaps[i], 1234u + (unsigned)i);
    g_ctx = zmq_ctx_new();
    zmq_ctx_set(g_ctx, ZMQ_MAX_SOCKETS, g_workers + 64);
    zmq_ctx_set(g_ctx, ZMQ_IO_THREADS, 2);
    sim *sims = calloc((size_t)g_workers, sizeof *sims);
    slice *sl = calloc((size_t)g_threads, sizeof *sl);
    if (!sims || !sl) abort();
    for (int i = 0; i < g_workers; i++) {
        sims[i].index = i;
        sims[i].stagger_ms = (int)((int64_t)i * 100 / g_workers) * 10; /* 10 ms steps */
    }
    for (int t = 0, at = 0; t < g_threads; t++) {
        int n = g_workers / g_threads + (t < g_workers % g_threads);
        sl[t].sims = sims + at;
        sl[t].n = n;
        at += n;
        if (pthread_create(&sl[t].tid, NULL, slice_main, &sl[t]) != 0) {
            fprintf(stderr, "wirebench: cannot start a thread\n");
            return 1;
        }
    }
    /* progress every half second: the queen acknowledges a snapshot once merged, so acked/s is
     * its merge rate and sent - acked its backlog */
    for (int fin = 0; fin < g_threads;) {
        usleep(500000);
        uint64_t sent = 0, acked = 0;
        fin = 0;
        for (int t = 0; t < g_threads; t++) {
            sent += __atomic_load_n(&sl[t].snapshots, __ATOMIC_RELAXED);
            acked += __atomic_load_n(&sl[t].acks, __ATOMIC_RELAXED);
            fin += __atomic_load_n(&sl[t].finished, __ATOMIC_ACQUIRE);
        }
        printf("wirebench: progress ms %lld sent %llu acked %llu\n", (long long)now_ms(),
               (unsigned long long)sent, (unsigned long long)acked);
        fflush(stdout);
    }
    uint64_t snaps = 0, reqs = 0, acks = 0, bad = 0;
    for (int t = 0; t < g_threads; t++) {
        pthread_join(sl[t].tid, NULL);
        snaps += sl[t].snapshots, reqs += sl[t].requests, acks += sl[t].acks, bad += sl[t].bad;
    }
    size_t bytes = 0;
    for (int i = 0; i < SNAPSHOTS; i++)
        bytes += g_snaps[i].len;
    printf("wirebench: workers %d snapshots %llu requests %llu acks %llu malformed %llu snapshot_bytes %zu\n",
           g_workers, (unsigned long long)snaps, (unsigned long long)reqs, (unsigned long long)acks,
           (unsigned long long)bad, bytes / SNAPSHOTS);
    for (int i = 0; i < SNAPSHOTS; i++)
        free(g_snaps[i].buf);
    free(sims);
    free(sl);
    zmq_ctx_term(g_ctx);
    return 0;
}
