/* queen: the coordinator of a run (today with an in-process worker). */
#include "queen.h"

#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "report.h"
#include "stats.h"
#include "thresholds.h"
#include "worker.h"

#define MAX_SOURCES 1024

typedef struct queen {
    uv_loop_t loop;
    const queen_options *o;
    worker *w;
    thresholds th;
    char name[256];
    double planned_s; /* the load's planned duration */
    stats *total, *interval;
    int64_t vus[MAX_SOURCES], vus_max[MAX_SOURCES]; /* latest gauges per source (thread) */
    int nsources;
    report_row *rows;
    size_t nrows, caprows;
    int64_t vus_peak;
    double t0, t_end;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    int signals;
    int interrupted, aborted, failed, started;
    int tty;
} queen;

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static void on_snapshot(void *ud, int src, const char *buf, size_t len)
{
    queen *q = ud;
    stats *s = stats_new();
    if (stats_decode_merge(s, buf, len) != 0) {
        fprintf(stderr, "parrot: dropped a malformed statistics snapshot\n");
        stats_free(s);
        return;
    }
    if (src >= 0 && src < MAX_SOURCES) {
        q->vus[src] = s->vus;
        q->vus_max[src] = s->vus_max;
        if (src >= q->nsources) q->nsources = src + 1;
        int64_t peak = 0;
        for (int i = 0; i < q->nsources; i++) peak += q->vus_max[i];
        if (peak > q->vus_peak) q->vus_peak = peak;
    }
    stats_merge(q->interval, s);
    stats_merge(q->total, s);
    stats_free(s);
}

static void on_message(void *ud, const char *msg)
{
    queen *q = ud;
    if (q->tty && !q->o->quiet) fputs("\r\033[K", stderr);
    fprintf(stderr, "parrot: %s\n", msg);
}

/* Close one second: a series row, the progress line, abort thresholds. */
static void close_interval(queen *q, double interval_s)
{
    double t = now_s() - q->t0;
    report_row row = report_row_make(q->interval, t, interval_s);
    int64_t vus = 0;
    for (int i = 0; i < q->nsources; i++) vus += q->vus[i];
    row.vus = vus;
    if (q->nrows == q->caprows) {
        q->caprows = q->caprows ? q->caprows * 2 : 64;
        q->rows = realloc(q->rows, q->caprows * sizeof *q->rows);
        if (!q->rows) abort();
    }
    q->rows[q->nrows++] = row;
    if (!q->o->quiet) report_progress(stderr, &row, q->planned_s, q->tty);
    stats_reset(q->interval);
}

static void on_tick(uv_timer_t *h)
{
    queen *q = h->data;
    close_interval(q, 1.0);
    q->total->vus_max = q->vus_peak;
    if (!q->aborted && thresholds_eval(&q->th, q->total, now_s() - q->t0, 1) > 0) {
        q->aborted = q->interrupted = 1;
        on_message(q, "an abort threshold was crossed: stopping the run");
        worker_stop(q->w, 0);
    }
}

static void on_started(void *ud, double t0)
{
    queen *q = ud;
    q->t0 = t0;
    q->started = 1;
    uv_timer_start(&q->tick, on_tick, 1150, 1000); /* just after the threads' snapshots */
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void on_done(void *ud, int failed)
{
    queen *q = ud;
    q->failed = failed;
    q->t_end = now_s();
    uv_timer_stop(&q->tick);
    if (q->started) {
        double last = q->t_end - q->t0 - (double)q->nrows;
        if (q->interval->requests || q->interval->iterations || last > 0.2) close_interval(q, last > 0.05 ? last : 1.0);
        if (!q->o->quiet && q->tty) fputs("\n", stderr);
    }
    uv_close((uv_handle_t *)&q->tick, close_cb);
    uv_close((uv_handle_t *)&q->sigint, close_cb);
    uv_close((uv_handle_t *)&q->sigterm, close_cb);
}

static void on_signal(uv_signal_t *h, int signum)
{
    queen *q = h->data;
    (void)signum;
    q->interrupted = 1;
    if (++q->signals == 1) {
        on_message(q, "stopping (in-flight requests get 2 s; press Ctrl-C again to cut them now)");
        worker_stop(q->w, 0);
    } else {
        worker_stop(q->w, 1);
    }
}

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
    *planned_vus = (long)(lua_isnumber(L, -2) ? lua_tonumber(L, -2) : lua_tonumber(L, -1));
    lua_pop(L, 3);
    lua_getfield(L, -1, "_thresholds");
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "key");
        lua_getfield(L, -2, "expr");
        lua_getfield(L, -3, "abort");
        int rc = thresholds_add(&q->th, lua_tostring(L, -3), lua_tostring(L, -2), lua_toboolean(L, -1), err, sizeof err);
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

int queen_run(const queen_options *o)
{
    queen q;
    memset(&q, 0, sizeof q);
    q.o = o;
    q.tty = isatty(2);
    char err[4096];
    lua_State *L = luart_new(o->script, o->env);
    if (!L) return 1;
    if (luart_load(L, o->script, &o->overrides, err, sizeof err) != 0) {
        fprintf(stderr, "parrot: %s\n", err);
        lua_close(L);
        return 2;
    }
    long planned_vus = 0;
    if (read_plan(&q, L, &planned_vus) != 0) {
        thresholds_free(&q.th);
        lua_close(L);
        return 2;
    }
    lua_close(L);
    warn_fd_limit(planned_vus);
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    q.total = stats_new();
    q.interval = stats_new();
    uv_loop_init(&q.loop);
    uv_timer_init(&q.loop, &q.tick);
    q.tick.data = &q;
    uv_signal_init(&q.loop, &q.sigint);
    uv_signal_init(&q.loop, &q.sigterm);
    q.sigint.data = q.sigterm.data = &q;
    uv_signal_start(&q.sigint, on_signal, SIGINT);
    uv_signal_start(&q.sigterm, on_signal, SIGTERM);
    worker_plan plan = {.script = o->script, .overrides = o->overrides, .env = o->env, .threads = threads,
                        .http = o->http};
    worker_events ev = {.on_snapshot = on_snapshot, .on_message = on_message, .on_started = on_started,
                        .on_done = on_done, .ud = &q};
    if (!o->quiet)
        fprintf(stderr, "parrot: running %s for %.0fs on %d thread%s\n", q.name, q.planned_s, threads,
                threads > 1 ? "s" : "");
    q.w = worker_start(&q.loop, &plan, &ev, err, sizeof err);
    if (!q.w) {
        fprintf(stderr, "parrot: %s\n", err);
        return 1;
    }
    uv_run(&q.loop, UV_RUN_DEFAULT);
    worker_free(q.w);
    int code = 0;
    if (q.failed) {
        code = 2;
    } else {
        q.total->vus_max = q.vus_peak;
        double dur = q.t_end - q.t0;
        int bad = thresholds_eval(&q.th, q.total, dur, 0);
        report r = {.scenario = q.name, .total = q.total, .rows = q.rows, .nrows = q.nrows, .workers = 1,
                    .threads = threads, .duration_s = dur, .thresholds = &q.th, .interrupted = q.interrupted};
        report_summary(stdout, &r);
        fflush(stdout);
        if (write_outputs(&q, &r)) code = 1;
        if (bad) code = 99;
    }
    uv_loop_close(&q.loop);
    stats_free(q.total);
    stats_free(q.interval);
    thresholds_free(&q.th);
    free(q.rows);
    return code;
}
