/* worker: load threads and their orchestration.
 *
 * The owner (the caller's loop) and each load thread talk through mailboxes: a mutex-protected
 * list plus a uv_async_t on the receiving loop. The owner walks the run through its phases:
 * every thread loaded the scenario (READY) -> thread 0 runs setup() -> every thread runs its
 * share -> thread 0 runs teardown() -> threads quit. Snapshots flow from threads to the owner
 * every second and at the end of each phase. */
#include "worker.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "vu.h"

enum msg_type {
    /* owner -> thread */
    CMD_SETUP, CMD_START, CMD_TEARDOWN, CMD_STOP, CMD_KILL, CMD_QUIT,
    /* thread -> owner */
    EV_READY, EV_FAILED, EV_SETUP_DONE, EV_SNAPSHOT, EV_RUN_DONE, EV_TEARDOWN_DONE, EV_SCRIPT_ERROR
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
    worker *w;
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
} lthread;

struct worker {
    uv_loop_t *owner;
    worker_plan plan;
    worker_events ev;
    mailbox inbox; /* thread -> owner */
    lthread *threads;
    int nthreads;
    int ready, run_done, failed;
    int phase;
    int stopping;
    int joined; /* 1: threads joined, 2: on_done called */
    char *setup_json;
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
    lua_pushinteger(L, t->index);
    lua_setfield(L, -2, "thread");
    lua_pushinteger(L, t->w->nthreads);
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
    worker *w = t->w;
    char err[2048];
    uv_loop_init(&t->loop);
    uv_mutex_init(&t->inbox.mu);
    uv_async_init(&t->loop, &t->inbox.async, thread_inbox);
    t->inbox.async.data = t;
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_init(&t->loop, &t->cut);
    t->tick.data = t->cut.data = t;
    t->L = luart_new(w->plan.script, w->plan.env);
    vu_sched_config cfg = {.thread_index = t->index, .thread_count = w->nthreads, .http = &w->plan.http,
                           .on_idle = on_sched_idle, .on_script_error = on_script_error, .ud = t};
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

static void broadcast(worker *w, int type, double num, const char *data)
{
    for (int i = 0; i < w->nthreads; i++)
        mailbox_post(&w->threads[i].inbox, type, i, num, data, data ? strlen(data) : 0);
}

typedef struct seen {
    struct seen *next;
    unsigned long count;
    char line[];
} seen;

/* Print a script error once per distinct first line. */
static void script_error(worker *w, const char *text)
{
    size_t n = strcspn(text, "\n");
    int i = 0;
    for (seen *s = w->seen_errors; s; s = s->next, i++) {
        if (strlen(s->line) == n && !strncmp(s->line, text, n)) {
            s->count++;
            return;
        }
    }
    if (i >= 1000) return;
    seen *s = malloc(sizeof *s + n + 1);
    if (!s) return;
    memcpy(s->line, text, n);
    s->line[n] = 0;
    s->count = 1;
    s->next = w->seen_errors;
    w->seen_errors = s;
    if (w->ev.on_message) {
        char buf[4096];
        snprintf(buf, sizeof buf, "script error (shown once, counted each time): %.*s", (int)n, text);
        w->ev.on_message(w->ev.ud, buf);
    }
}

/* The run is over: threads quit (they free their VUs and states), the owner joins them. */
static void finish(worker *w)
{
    if (w->phase == PH_QUIT) return;
    w->phase = PH_QUIT;
    broadcast(w, CMD_QUIT, 0, NULL);
    for (int i = 0; i < w->nthreads; i++) uv_thread_join(&w->threads[i].tid);
    w->joined = 1;
}

static void owner_event(worker *w, msg *m)
{
    switch (m->type) {
    case EV_READY:
        if (++w->ready == w->nthreads && !w->failed) {
            if (w->stopping) finish(w);
            else {
                w->phase = PH_SETUP;
                mailbox_post(&w->threads[0].inbox, CMD_SETUP, 0, 0, NULL, 0);
            }
        }
        break;
    case EV_FAILED:
        if (!w->failed && w->ev.on_message) w->ev.on_message(w->ev.ud, m->data);
        w->failed = 1;
        if (++w->ready == w->nthreads) finish(w);
        break;
    case EV_SETUP_DONE: {
        free(w->setup_json);
        w->setup_json = m->data;
        m->data = NULL;
        if (w->stopping) {
            finish(w);
            break;
        }
        w->phase = PH_RUN;
        double t0 = (double)uv_hrtime() / 1e9 + 0.01;
        if (w->ev.on_started) w->ev.on_started(w->ev.ud, t0);
        broadcast(w, CMD_START, t0, w->setup_json);
        break;
    }
    case EV_SNAPSHOT:
        if (w->ev.on_snapshot) w->ev.on_snapshot(w->ev.ud, m->thread, m->data, m->len);
        break;
    case EV_RUN_DONE:
        if (++w->run_done == w->nthreads) {
            w->phase = PH_TEARDOWN;
            mailbox_post(&w->threads[0].inbox, CMD_TEARDOWN, 0, 0, w->setup_json,
                         w->setup_json ? strlen(w->setup_json) : 0);
        }
        break;
    case EV_TEARDOWN_DONE: finish(w); break;
    case EV_SCRIPT_ERROR: script_error(w, m->data); break;
    }
}

static void owner_inbox(uv_async_t *a)
{
    worker *w = a->data;
    msg *m;
    while ((m = mailbox_take_all(&w->inbox))) {
        while (m) {
            msg *next = m->next;
            owner_event(w, m);
            msg_free(m);
            m = next;
        }
    }
    if (w->joined == 1) { /* snapshots the threads sent before quitting were handled above */
        w->joined = 2;
        uv_close((uv_handle_t *)&w->inbox.async, close_cb);
        if (w->ev.on_done) w->ev.on_done(w->ev.ud, w->failed);
    }
}

worker *worker_start(uv_loop_t *owner, const worker_plan *plan, const worker_events *ev, char *err, size_t errlen)
{
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->owner = owner;
    w->plan = *plan;
    w->ev = *ev;
    w->nthreads = plan->threads > 0 ? plan->threads : 1;
    w->threads = calloc((size_t)w->nthreads, sizeof *w->threads);
    uv_mutex_init(&w->inbox.mu);
    uv_async_init(owner, &w->inbox.async, owner_inbox);
    w->inbox.async.data = w;
    for (int i = 0; i < w->nthreads; i++) {
        lthread *t = &w->threads[i];
        t->w = w;
        t->index = i;
        t->scenario_ref = LUA_NOREF;
    }
    /* each thread inits its own mailbox async before any command can be posted to it: commands
     * are only posted after READY, which the thread sends after that */
    for (int i = 0; i < w->nthreads; i++) {
        if (uv_thread_create(&w->threads[i].tid, thread_main, &w->threads[i]) != 0) {
            snprintf(err, errlen, "cannot start load thread %d", i);
            abort(); /* partial starts are not recoverable here */
        }
    }
    return w;
}

void worker_stop(worker *w, int hard)
{
    if (w->phase == PH_QUIT) return;
    if (!w->stopping) w->stopping = 1;
    if (w->phase == PH_RUN || w->phase == PH_SETUP || w->phase == PH_TEARDOWN)
        broadcast(w, hard ? CMD_KILL : CMD_STOP, 0, NULL);
}

void worker_free(worker *w)
{
    if (!w) return;
    for (seen *s = w->seen_errors; s;) {
        seen *n = s->next;
        free(s);
        s = n;
    }
    for (int i = 0; i < w->nthreads; i++) uv_mutex_destroy(&w->threads[i].inbox.mu);
    uv_mutex_destroy(&w->inbox.mu);
    free(w->threads);
    free(w->setup_json);
    free(w);
}
