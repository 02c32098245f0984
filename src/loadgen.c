/* loadgen: load threads.
 *
 * The owner (the worker's control loop) and each load thread talk through mailboxes: a
 * mutex-protected list plus a uv_async_t on the receiving loop. Threads load the scenario
 * (READY), run hooks on thread 0, run their slot of the load, and send a snapshot every second
 * and at the end of each phase. */
#include "loadgen.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "vu.h"

enum msg_type {
    /* owner -> thread */
    CMD_SETUP, CMD_START, CMD_TEARDOWN, CMD_STOP, CMD_KILL, CMD_QUIT, CMD_SHARE, CMD_ROWS,
    /* thread -> owner */
    EV_READY, EV_FAILED, EV_SETUP_DONE, EV_SNAPSHOT, EV_RUN_DONE, EV_TEARDOWN_DONE, EV_SCRIPT_ERROR,
    EV_ABORT_TEST, EV_ROWS
};

typedef struct msg {
    int type;
    int thread;
    double num;
    char *data; /* owned by the message, may be NULL */
    size_t len;
    struct msg *next;
} msg;

typedef struct mailbox {
    uv_mutex_t mu;
    msg *head, *tail;
    uv_async_t async; /* on the receiver's loop; data = the receiver */
} mailbox;

enum phase { PH_LOADING, PH_SETUP, PH_RUN, PH_TEARDOWN, PH_QUIT };

typedef struct lthread {
    loadgen *w;
    int index;
    uv_thread_t tid;
    uv_loop_t loop;
    lua_State *L;
    vu_sched *sched;
    int scenario_ref;
    mailbox inbox;
    uv_timer_t tick; /* snapshot every second */
    uv_timer_t cut;  /* end of the grace after a stop */
    int phase;
    char *hook_result; /* setup()'s JSON, until posted */
    double t0;
    int slot, nslots; /* this thread's global load slot among all slots of the cluster */
} lthread;

struct loadgen {
    uv_loop_t *owner;
    loadgen_plan plan;
    loadgen_events ev;
    mailbox inbox; /* thread -> owner */
    lthread *threads;
    int nthreads;
    int ready, run_done, failed;
    int slot, nslots;
    void *seen_errors; /* distinct script error first lines (a simple list) */
};

/* ---- mailboxes ---- */

static void mailbox_post(mailbox *mb, int type, int thread, double num, const char *data, size_t len)
{
    msg *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->type = type;
    m->thread = thread;
    m->num = num;
    if (data) {
        m->data = malloc(len + 1);
        if (!m->data) abort();
        memcpy(m->data, data, len);
        m->data[len] = 0;
        m->len = len;
    }
    uv_mutex_lock(&mb->mu);
    if (mb->tail) mb->tail->next = m;
    else mb->head = m;
    mb->tail = m;
    uv_mutex_unlock(&mb->mu);
    uv_async_send(&mb->async);
}

static msg *mailbox_take_all(mailbox *mb)
{
    uv_mutex_lock(&mb->mu);
    msg *m = mb->head;
    mb->head = mb->tail = NULL;
    uv_mutex_unlock(&mb->mu);
    return m;
}

static void msg_free(msg *m)
{
    free(m->data);
    free(m);
}

/* ---- load thread ---- */

static void post(lthread *t, int type, double num, const char *data, size_t len)
{
    mailbox_post(&t->w->inbox, type, t->index, num, data, len);
}

static void send_snapshot(lthread *t)
{
    stats *st = vu_sched_stats(t->sched);
    char *buf;
    size_t len;
    double now = (double)uv_hrtime() / 1e9;
    st->t_end_us = t->t0 > 0 && now > t->t0 ? (uint64_t)((now - t->t0) * 1e6) : 0;
    if (stats_encode(st, &buf, &len) == 0) {
        post(t, EV_SNAPSHOT, 0, buf, len);
        free(buf);
    }
    int64_t vus = st->vus;
    stats_reset(st);
    st->vus = st->vus_max = vus; /* gauges carry over into the next interval */
    st->t_start_us = st->t_end_us;
}

static void on_tick(uv_timer_t *h) { send_snapshot(h->data); }

/* The phase's last VU ended. */
static void on_sched_idle(vu_sched *s, void *ud)
{
    (void)s;
    lthread *t = ud;
    switch (t->phase) {
    case PH_SETUP:
        send_snapshot(t);
        post(t, EV_SETUP_DONE, 0, t->hook_result, t->hook_result ? strlen(t->hook_result) : 0);
        free(t->hook_result);
        t->hook_result = NULL;
        break;
    case PH_RUN:
        uv_timer_stop(&t->tick);
        uv_timer_stop(&t->cut);
        send_snapshot(t);
        post(t, EV_RUN_DONE, 0, NULL, 0);
        break;
    case PH_TEARDOWN:
        send_snapshot(t);
        post(t, EV_TEARDOWN_DONE, 0, NULL, 0);
        break;
    default:
        break;
    }
    t->phase = PH_LOADING;
}

static void on_script_error(vu_sched *s, const char *m, void *ud)
{
    (void)s;
    post(ud, EV_SCRIPT_ERROR, 0, m, strlen(m));
}

static void on_abort_test(vu_sched *s, const char *why, void *ud)
{
    (void)s;
    post(ud, EV_ABORT_TEST, 0, why, strlen(why));
}

/* runner.hook's `done(json)`: remember setup's result for the owner. */
static int l_hook_done(lua_State *L)
{
    lthread *t = lua_touserdata(L, lua_upvalueindex(1));
    free(t->hook_result);
    t->hook_result = lua_isstring(L, 1) ? strdup(lua_tostring(L, 1)) : NULL;
    return 0;
}

/* Call require("parrot.runner")[fn](scenario, arg...) — pushes the runner function and scenario. */
static void push_runner_call(lthread *t, const char *fn)
{
    lua_State *L = t->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parrot.runner");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->scenario_ref);
}

static void run_hook(lthread *t, const char *which, const char *data, int phase)
{
    char err[1024];
    t->phase = phase;
    push_runner_call(t, "hook");
    lua_pushstring(t->L, which);
    if (data) lua_pushstring(t->L, data);
    else lua_pushnil(t->L);
    lua_pushlightuserdata(t->L, t);
    lua_pushcclosure(t->L, l_hook_done, 1);
    if (luart_pcall(t->L, 4, 0, err, sizeof err) != 0) post(t, EV_SCRIPT_ERROR, 0, err, strlen(err));
    if (vu_sched_live(t->sched) == 0) on_sched_idle(t->sched, t); /* no hook to run */
}

static void start_run(lthread *t, double t0, const char *setup_json)
{
    char err[1024];
    lua_State *L = t->L;
    t->phase = PH_RUN;
    t->t0 = t0;
    push_runner_call(t, "start");
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, t->slot);
    lua_setfield(L, -2, "thread");
    lua_pushinteger(L, t->nslots);
    lua_setfield(L, -2, "threads");
    lua_pushnumber(L, t0);
    lua_setfield(L, -2, "t0");
    if (setup_json) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "cjson");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "decode");
        lua_remove(L, -2);
        lua_pushstring(L, setup_json);
        if (lua_pcall(L, 1, 1, 0) != 0) lua_pop(L, 1);
        else lua_setfield(L, -2, "setup");
    }
    uv_timer_start(&t->tick, on_tick, 1000, 1000);
    if (luart_pcall(L, 2, 0, err, sizeof err) != 0) post(t, EV_SCRIPT_ERROR, 0, err, strlen(err));
    if (vu_sched_live(t->sched) == 0) on_sched_idle(t->sched, t);
}

/* The cluster's slots changed: tell the runner (it re-reads its share every tick). */
static void set_share(lthread *t, const char *spec)
{
    char err[512];
    if (sscanf(spec, "%d %d", &t->slot, &t->nslots) != 2) return;
    if (t->phase != PH_RUN) return;
    lua_getglobal(t->L, "require");
    lua_pushliteral(t->L, "parrot.runner");
    lua_call(t->L, 1, 1);
    lua_getfield(t->L, -1, "share");
    lua_remove(t->L, -2);
    lua_pushinteger(t->L, t->slot);
    lua_pushinteger(t->L, t->nslots);
    if (luart_pcall(t->L, 2, 0, err, sizeof err) != 0) post(t, EV_SCRIPT_ERROR, 0, err, strlen(err));
}

/* parrot.cluster.rows(key, count): a unique data feeder asks the queen for `count` more rows; the
 * answer comes back on this thread as require("parrot.csv").lease(key, first, count). */
static int l_rows(lua_State *L)
{
    lthread *t = lua_touserdata(L, lua_upvalueindex(1));
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    post(t, EV_ROWS, luaL_checknumber(L, 2), key, n);
    return 0;
}

/* package.loaded["parrot.cluster"]: what the thread's Lua may ask of the cluster. */
static void open_cluster(lthread *t)
{
    lua_State *L = t->L;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, l_rows, 1);
    lua_setfield(L, -2, "rows");
    lua_setfield(L, -2, "parrot.cluster");
    lua_pop(L, 2);
}

/* The queen's answer to parrot.cluster.rows ("first count key"): the feeder takes the lease. */
static void give_rows(lthread *t, const char *spec)
{
    char err[512];
    long long first, count;
    int off = 0;
    if (!t->sched || sscanf(spec, "%lld %lld %n", &first, &count, &off) != 2 || !off) return;
    lua_State *L = t->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parrot.csv");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "lease");
    lua_remove(L, -2);
    lua_pushstring(L, spec + off);
    lua_pushnumber(L, (lua_Number)first);
    lua_pushnumber(L, (lua_Number)count);
    if (luart_pcall(L, 3, 0, err, sizeof err) != 0) post(t, EV_SCRIPT_ERROR, 0, err, strlen(err));
}

static void on_cut(uv_timer_t *h)
{
    lthread *t = h->data;
    vu_sched_kill_all(t->sched);
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void thread_inbox(uv_async_t *a)
{
    lthread *t = a->data;
    msg *m = mailbox_take_all(&t->inbox);
    while (m) {
        msg *next = m->next;
        switch (m->type) {
        case CMD_SETUP: run_hook(t, "setup", NULL, PH_SETUP); break;
        case CMD_START: start_run(t, m->num, m->data); break;
        case CMD_TEARDOWN: run_hook(t, "teardown", m->data, PH_TEARDOWN); break;
        case CMD_STOP:
            vu_sched_request_stop(t->sched);
            if (vu_sched_live(t->sched)) uv_timer_start(&t->cut, on_cut, 2000, 0);
            break;
        case CMD_KILL: vu_sched_kill_all(t->sched); break;
        case CMD_SHARE: set_share(t, m->data); break;
        case CMD_ROWS: give_rows(t, m->data); break;
        case CMD_QUIT:
            t->phase = PH_QUIT;
            uv_timer_stop(&t->tick);
            uv_timer_stop(&t->cut);
            uv_close((uv_handle_t *)&t->tick, close_cb);
            uv_close((uv_handle_t *)&t->cut, close_cb);
            uv_close((uv_handle_t *)&t->inbox.async, close_cb);
            vu_sched_free(t->sched);
            t->sched = NULL;
            break;
        }
        msg_free(m);
        m = next;
    }
}

static void thread_main(void *arg)
{
    lthread *t = arg;
    loadgen *w = t->w;
    char err[2048];
    uv_loop_init(&t->loop);
    uv_mutex_init(&t->inbox.mu);
    uv_async_init(&t->loop, &t->inbox.async, thread_inbox);
    t->inbox.async.data = t;
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_init(&t->loop, &t->cut);
    t->tick.data = t->cut.data = t;
    t->L = luart_new(w->plan.script, w->plan.env);
    if (t->L) open_cluster(t);
    vu_sched_config cfg = {.thread_index = t->slot, .thread_count = t->nslots, .http = &w->plan.http,
                           .on_idle = on_sched_idle, .on_script_error = on_script_error,
                           .on_abort_test = on_abort_test, .ud = t};
    t->sched = t->L ? vu_sched_new(&t->loop, t->L, &cfg, err, sizeof err) : NULL;
    if (!t->sched) {
        post(t, EV_FAILED, 0, err, strlen(err));
    } else if (luart_load(t->L, w->plan.script, &w->plan.overrides, err, sizeof err) != 0) {
        post(t, EV_FAILED, 0, err, strlen(err));
    } else {
        t->scenario_ref = luaL_ref(t->L, LUA_REGISTRYINDEX);
        post(t, EV_READY, 0, NULL, 0);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    if (t->sched) { /* left without CMD_QUIT (cannot happen today): free anyway */
        vu_sched_free(t->sched);
        uv_run(&t->loop, UV_RUN_DEFAULT);
    }
    if (t->L) lua_close(t->L);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    free(t->hook_result);
}

/* ---- owner side ---- */

static void broadcast(loadgen *w, int type, double num, const char *data)
{
    for (int i = 0; i < w->nthreads; i++)
        mailbox_post(&w->threads[i].inbox, type, i, num, data, data ? strlen(data) : 0);
}

typedef struct seen {
    struct seen *next;
    char line[];
} seen;

/* Show a script error once per distinct first line (each one is counted in the statistics). */
static void script_error(loadgen *w, const char *text)
{
    size_t n = strcspn(text, "\n");
    int i = 0;
    for (seen *s = w->seen_errors; s; s = s->next, i++)
        if (strlen(s->line) == n && !strncmp(s->line, text, n)) return;
    if (i >= 1000) return;
    seen *s = malloc(sizeof *s + n + 1);
    if (!s) return;
    memcpy(s->line, text, n);
    s->line[n] = 0;
    s->next = w->seen_errors;
    w->seen_errors = s;
    if (w->ev.on_message) {
        char buf[4096];
        snprintf(buf, sizeof buf, "script error (shown once, counted each time): %.*s", (int)n, text);
        w->ev.on_message(w->ev.ud, buf);
    }
}

static void owner_event(loadgen *w, msg *m)
{
    switch (m->type) {
    case EV_READY:
        if (++w->ready == w->nthreads && w->ev.on_ready) w->ev.on_ready(w->ev.ud, !w->failed, NULL);
        break;
    case EV_FAILED:
        if (!w->failed && w->ev.on_ready) w->ev.on_ready(w->ev.ud, 0, m->data);
        w->failed = 1;
        ++w->ready;
        break;
    case EV_SETUP_DONE:
        if (w->ev.on_hook_done) w->ev.on_hook_done(w->ev.ud, m->data);
        break;
    case EV_TEARDOWN_DONE:
        if (w->ev.on_hook_done) w->ev.on_hook_done(w->ev.ud, NULL);
        break;
    case EV_SNAPSHOT:
        if (w->ev.on_snapshot) w->ev.on_snapshot(w->ev.ud, m->thread, m->data, m->len);
        break;
    case EV_RUN_DONE:
        if (++w->run_done == w->nthreads && w->ev.on_run_done) w->ev.on_run_done(w->ev.ud);
        break;
    case EV_SCRIPT_ERROR: script_error(w, m->data); break;
    case EV_ABORT_TEST:
        if (w->ev.on_abort_test) w->ev.on_abort_test(w->ev.ud, m->data);
        break;
    case EV_ROWS:
        if (w->ev.on_rows) w->ev.on_rows(w->ev.ud, m->thread, m->data, (int64_t)m->num);
        break;
    }
}

static void owner_inbox(uv_async_t *a)
{
    loadgen *w = a->data;
    msg *m;
    while ((m = mailbox_take_all(&w->inbox))) {
        while (m) {
            msg *next = m->next;
            owner_event(w, m);
            msg_free(m);
            m = next;
        }
    }
}

loadgen *loadgen_start(uv_loop_t *owner, const loadgen_plan *plan, const loadgen_events *ev, char *err,
                       size_t errlen)
{
    loadgen *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->owner = owner;
    w->plan = *plan;
    w->ev = *ev;
    w->nthreads = plan->threads > 0 ? plan->threads : 1;
    w->slot = plan->slot;
    w->nslots = plan->nslots > 0 ? plan->nslots : w->nthreads;
    w->threads = calloc((size_t)w->nthreads, sizeof *w->threads);
    if (!w->threads) abort();
    uv_mutex_init(&w->inbox.mu);
    uv_async_init(owner, &w->inbox.async, owner_inbox);
    w->inbox.async.data = w;
    for (int i = 0; i < w->nthreads; i++) {
        lthread *t = &w->threads[i];
        t->w = w;
        t->index = i;
        t->slot = w->slot + i;
        t->nslots = w->nslots;
        t->scenario_ref = LUA_NOREF;
    }
    /* commands are only posted after READY, which a thread sends once its mailbox exists */
    for (int i = 0; i < w->nthreads; i++) {
        if (uv_thread_create(&w->threads[i].tid, thread_main, &w->threads[i]) != 0) {
            fprintf(stderr, "parrot: cannot start load thread %d\n", i);
            abort(); /* a partial start cannot be undone cleanly */
        }
    }
    return w;
}

void loadgen_hook(loadgen *w, const char *which, const char *data)
{
    int cmd = !strcmp(which, "setup") ? CMD_SETUP : CMD_TEARDOWN;
    mailbox_post(&w->threads[0].inbox, cmd, 0, 0, data, data ? strlen(data) : 0);
}

void loadgen_run(loadgen *w, double elapsed, const char *setup_json)
{
    w->run_done = 0;
    broadcast(w, CMD_START, (double)uv_hrtime() / 1e9 - elapsed, setup_json);
}

void loadgen_set_share(loadgen *w, int slot, int nslots)
{
    w->slot = slot;
    w->nslots = nslots;
    for (int i = 0; i < w->nthreads; i++) {
        char spec[64];
        int n = snprintf(spec, sizeof spec, "%d %d", slot + i, nslots);
        mailbox_post(&w->threads[i].inbox, CMD_SHARE, i, 0, spec, (size_t)n);
    }
}

void loadgen_rows(loadgen *w, int thread, const char *key, int64_t first, int64_t count)
{
    char *spec;
    if (thread < 0 || thread >= w->nthreads) return;
    int n = asprintf(&spec, "%lld %lld %s", (long long)first, (long long)count, key);
    if (n < 0) return;
    mailbox_post(&w->threads[thread].inbox, CMD_ROWS, thread, 0, spec, (size_t)n);
    free(spec);
}

void loadgen_stop(loadgen *w, int hard) { broadcast(w, hard ? CMD_KILL : CMD_STOP, 0, NULL); }

static void close_cb_owner(uv_handle_t *h) { free(h->data); }

void loadgen_free(loadgen *w)
{
    if (!w) return;
    broadcast(w, CMD_QUIT, 0, NULL);
    for (int i = 0; i < w->nthreads; i++) uv_thread_join(&w->threads[i].tid);
    for (seen *s = w->seen_errors; s;) {
        seen *n = s->next;
        free(s);
        s = n;
    }
    for (int i = 0; i < w->nthreads; i++) uv_mutex_destroy(&w->threads[i].inbox.mu);
    free(w->threads);
    /* drop what the threads posted last; the async handle frees the loadgen once closed */
    msg *m = mailbox_take_all(&w->inbox);
    while (m) {
        msg *next = m->next;
        msg_free(m);
        m = next;
    }
    uv_mutex_destroy(&w->inbox.mu);
    w->inbox.async.data = w;
    uv_close((uv_handle_t *)&w->inbox.async, close_cb_owner);
}
