/* loadgen: load threads.
 *
 * The owner (the worker's control loop) and each load thread talk through mailboxes: a
 * mutex-protected list plus a uv_async_t on the receiving loop. Threads load the scenario
 * (READY), run hooks on thread 0, run their slot of the load, and send a snapshot every second
 * and at the end of each phase.
 *
 * A thread stuck in Lua (a VU in an endless loop) never returns to its loop, so it can neither
 * read its mailbox nor stop. Each loop bumps a liveness counter (a 200 ms timer); the owner's
 * watch notices a counter that stood still for a second, finds where with a count hook set from
 * its own thread (lua_sethook may be called from another thread) or, for a loop the JIT compiled
 * (compiled code never calls hooks), with the place of the last trace compiled, and says so once.
 * When the load must stop, the hook raises an error in the stuck VU; a compiled loop is left by a
 * signal that jumps out of the thread's loop (its Lua state is then abandoned, never touched
 * again). Joining waits a bounded time: a thread that still does not return is left behind. */
#include "loadgen.h"

#include <lauxlib.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "vu.h"

#define PULSE_MS 200         /* a load thread's loop bumps its liveness counter this often */
#define WATCH_MS 250         /* the owner looks at the counters this often */
#define STUCK_MS 1000        /* a counter standing still this long: the thread is stuck */
#define ESCAPE_AFTER_MS 1000 /* a kill the hook could not do (compiled code): the signal, after this */
#define QUIT_WAIT_MS 4000    /* loadgen_free waits this long for threads, then leaves them behind */
#define ESCAPE_SIGNAL SIGUSR2
#define END_SLACK_MS 3000 /* past the load's planned end (and the 2 s cut), stuck threads are stopped */

enum msg_type {
    /* owner -> thread */
    CMD_SETUP,
    CMD_START,
    CMD_TEARDOWN,
    CMD_STOP,
    CMD_KILL,
    CMD_QUIT,
    CMD_SHARE,
    CMD_ROWS,
    /* thread -> owner */
    EV_READY,
    EV_FAILED,
    EV_SETUP_DONE,
    EV_SNAPSHOT,
    EV_RUN_DONE,
    EV_TEARDOWN_DONE,
    EV_SCRIPT_ERROR,
    EV_ABORT_TEST,
    EV_ROWS
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
    /* liveness, shared with the owner */
    uv_timer_t pulse; /* bumps `alive` */
    atomic_uint_fast64_t alive;
    atomic_int exited;       /* thread_main returned (or is about to) */
    atomic_int inbox_ready;  /* inbox.async exists: commands may be posted */
    atomic_int kill;         /* the owner wants the stuck VU dead: the hook raises an error */
    atomic_int can_escape;   /* inside the part a signal may jump out of */
    atomic_int escape_armed; /* the owner sent the signal on purpose */
    uv_mutex_t hook_mu;      /* guards lua_live (L may be hooked), where, trace_where */
    int lua_live;
    char where[256];       /* file:line the hook found */
    char trace_where[256]; /* the loop the JIT compiled last */
    sigjmp_buf escape;
    /* the owner's view (owner thread only) */
    uint64_t seen_alive, seen_ms, kill_ms;
    int hooked, reported, escaped, gone, run_done;
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
    void *seen_errors;    /* distinct script error first lines (a simple list) */
    uv_timer_t watch;     /* the liveness watch, on the owner's loop */
    int running;          /* between loadgen_run and the last EV_RUN_DONE */
    int stopping;         /* a stop or quit was asked: stuck VUs are killed */
    atomic_int abandoned; /* threads were left behind: they must not post to the owner */
    int closed;           /* owner handles closed (loadgen_free) */
    uint64_t end_ms;      /* the load's latest end (loadgen_run's end_s), 0: none */
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
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
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
    if (atomic_load(&t->w->abandoned)) return;    /* the owner went on without us */
    int can = atomic_exchange(&t->can_escape, 0); /* never jump out while holding the mutex */
    mailbox_post(&t->w->inbox, type, t->index, num, data, len);
    atomic_store(&t->can_escape, can);
}

/* ---- liveness (load thread side) ---- */

static _Thread_local lthread *tls_thread; /* the load thread running here, for the hook and signal */

/* Back in the loop: the thread is alive; a kill asked while it was stuck is over. */
static void on_pulse(uv_timer_t *h)
{
    lthread *t = h->data;
    atomic_fetch_add(&t->alive, 1);
    if (atomic_load(&t->kill)) {
        int can = atomic_exchange(&t->can_escape, 0);
        uv_mutex_lock(&t->hook_mu);
        if (t->lua_live) lua_sethook(t->L, NULL, 0, 0);
        atomic_store(&t->kill, 0);
        uv_mutex_unlock(&t->hook_mu);
        atomic_store(&t->can_escape, can);
    }
}

/* `where` without the directory of the scenario (the bundle's place in the cache), which Lua
 * may have shortened to "...tail". */
static const char *short_where(const loadgen *w, const char *where)
{
    const char *script = w->plan.script, *slash = script ? strrchr(script, '/') : NULL;
    if (!slash) return where;
    size_t dir = (size_t)(slash - script) + 1;
    if (!strncmp(where, script, dir)) return where + dir;
    const char *file = strrchr(where, '/'); /* "...abc/stuck.lua:9" from a long path */
    return !strncmp(where, "...", 3) && file ? file + 1 : where;
}

/* The count hook the owner sets on a stuck thread: note where, then leave (or kill the VU). */
static void stuck_hook(lua_State *L, lua_Debug *ar)
{
    lthread *t = tls_thread;
    char where[256] = "?";
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(where, sizeof where, "%s:%d", ar->short_src, ar->currentline);
    if (!t) return;
    int can = atomic_exchange(&t->can_escape, 0);
    uv_mutex_lock(&t->hook_mu);
    snprintf(t->where, sizeof t->where, "%s", where);
    int kill = atomic_load(&t->kill);
    if (!kill) lua_sethook(L, NULL, 0, 0);
    uv_mutex_unlock(&t->hook_mu);
    atomic_store(&t->can_escape, can);
    if (kill)
        luaL_error(L, "stopped: this virtual user kept its load thread busy for over a second (at %s)",
                   short_where(t->w, where));
}

/* The JIT's trace events: remember where the last compiled trace starts (the loop a stuck
 * thread most likely spins in, since compiled code never calls hooks). */
static int l_trace_at(lua_State *L)
{
    lthread *t = lua_touserdata(L, lua_upvalueindex(1));
    const char *at = luaL_checkstring(L, 1);
    int can = atomic_exchange(&t->can_escape, 0);
    uv_mutex_lock(&t->hook_mu);
    snprintf(t->trace_where, sizeof t->trace_where, "%s", at);
    uv_mutex_unlock(&t->hook_mu);
    atomic_store(&t->can_escape, can);
    return 0;
}

static const char trace_watch_lua[] =
    "local at = ...\n"
    "local ok, ju = pcall(require, 'jit.util')\n"
    "if not ok or not jit or not jit.attach then return end\n"
    "local pend\n"
    "jit.attach(function(what, tr, func, pc)\n"
    "  if what == 'start' then\n"
    "    local i = ju.funcinfo(func, pc)\n"
    "    pend = i and i.source and (i.source:gsub('^@', '') .. ':' .. tostring(i.currentline)) or nil\n"
    "  elseif what == 'stop' and pend then at(pend); pend = nil end\n"
    "end, 'trace')\n";

static void watch_traces(lthread *t)
{
    if (luaL_loadbuffer(t->L, trace_watch_lua, sizeof trace_watch_lua - 1, "=parrot.tracewatch") != 0) {
        lua_pop(t->L, 1);
        return;
    }
    lua_pushlightuserdata(t->L, t);
    lua_pushcclosure(t->L, l_trace_at, 1);
    if (lua_pcall(t->L, 1, 0, 0) != 0) lua_pop(t->L, 1);
}

/* The owner's signal to a thread stuck in compiled code: jump out of its loop for good. */
static void on_escape_signal(int sig)
{
    (void)sig;
    lthread *t = tls_thread;
    if (t && atomic_load(&t->can_escape) && atomic_load(&t->escape_armed)) {
        atomic_store(&t->can_escape, 0);
        siglongjmp(t->escape, 1);
    }
}

static void install_escape(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_escape_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(ESCAPE_SIGNAL, &sa, NULL);
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
    if (data)
        lua_pushstring(t->L, data);
    else
        lua_pushnil(t->L);
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
        if (lua_pcall(L, 1, 1, 0) != 0)
            lua_pop(L, 1);
        else
            lua_setfield(L, -2, "setup");
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

/* parrot.cluster.rows(key, count): a data feeder or counter asks the queen for `count` more
 * positions of `key` (rows of a unique feeder, positions of a sequential one, user ids); the
 * answer comes back on this thread as require("parrot.csv").lease(key, first, count). */
static int l_rows(lua_State *L)
{
    lthread *t = lua_touserdata(L, lua_upvalueindex(1));
    size_t n;
    const char *key = luaL_checklstring(L, 1, &n);
    post(t, EV_ROWS, luaL_checknumber(L, 2), key, n);
    return 0;
}

/* package.loaded["parrot.cluster"]: what the thread's Lua may ask of the cluster; `alone` is true
 * in the worker of `parrot run`, which no other worker can join. */
static void open_cluster(lthread *t)
{
    lua_State *L = t->L;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, l_rows, 1);
    lua_setfield(L, -2, "rows");
    lua_pushboolean(L, t->w->plan.alone);
    lua_setfield(L, -2, "alone");
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
    on_pulse(&t->pulse); /* back in the loop: alive, and a kill hook must not touch what follows */
    msg *m = mailbox_take_all(&t->inbox);
    while (m) {
        msg *next = m->next;
        switch (m->type) {
        case CMD_SETUP:
            run_hook(t, "setup", NULL, PH_SETUP);
            break;
        case CMD_START:
            start_run(t, m->num, m->data);
            break;
        case CMD_TEARDOWN:
            run_hook(t, "teardown", m->data, PH_TEARDOWN);
            break;
        case CMD_STOP:
            vu_sched_request_stop(t->sched);
            if (vu_sched_live(t->sched)) uv_timer_start(&t->cut, on_cut, 2000, 0);
            break;
        case CMD_KILL:
            vu_sched_kill_all(t->sched);
            break;
        case CMD_SHARE:
            set_share(t, m->data);
            break;
        case CMD_ROWS:
            give_rows(t, m->data);
            break;
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

/* Load the scenario and run the loop until CMD_QUIT: the part a stuck thread may be jumped out of. */
static void thread_body(lthread *t)
{
    loadgen *w = t->w;
    char err[2048];
    vu_sched_config cfg = {.thread_index = t->slot,
                           .thread_count = t->nslots,
                           .http = &w->plan.http,
                           .on_idle = on_sched_idle,
                           .on_script_error = on_script_error,
                           .on_abort_test = on_abort_test,
                           .ud = t};
    t->sched = t->L ? vu_sched_new(&t->loop, t->L, &cfg, err, sizeof err) : NULL;
    if (!t->sched) {
        post(t, EV_FAILED, 0, err, strlen(err));
    } else if (luart_load(t->L, w->plan.script, &w->plan.overrides, err, sizeof err) != 0) {
        post(t, EV_FAILED, 0, err, strlen(err));
    } else {
        t->scenario_ref = luaL_ref(t->L, LUA_REGISTRYINDEX);
        post(t, EV_READY, 0, NULL, 0);
    }
    atomic_fetch_add(&t->alive, 1);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

static int run_escapable(lthread *t)
{
    if (sigsetjmp(t->escape, 1)) return 1;
    atomic_store(&t->can_escape, 1);
    thread_body(t);
    atomic_store(&t->can_escape, 0);
    return 0;
}

static void thread_main(void *arg)
{
    lthread *t = arg;
    loadgen *w = t->w;
    tls_thread = t;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->inbox.async, thread_inbox);
    t->inbox.async.data = t;
    atomic_store(&t->inbox_ready, 1);
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_init(&t->loop, &t->cut);
    uv_timer_init(&t->loop, &t->pulse);
    t->tick.data = t->cut.data = t->pulse.data = t;
    uv_timer_start(&t->pulse, on_pulse, PULSE_MS, PULSE_MS);
    uv_unref((uv_handle_t *)&t->pulse); /* the pulse alone does not keep the loop alive */
    t->L = luart_new(w->plan.script, w->plan.env);
    if (t->L) {
        uv_mutex_lock(&t->hook_mu);
        t->lua_live = 1;
        uv_mutex_unlock(&t->hook_mu);
        watch_traces(t);
        open_cluster(t);
    }
    if (run_escapable(t)) { /* jumped out of compiled code: the state and loop stay as they were */
        atomic_store(&t->exited, 1);
        return;
    }
    if (t->sched) { /* left without CMD_QUIT (cannot happen today): free anyway */
        vu_sched_free(t->sched);
        uv_run(&t->loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&t->pulse, close_cb); /* unref'd: it beat until the loop ended */
    uv_mutex_lock(&t->hook_mu);                   /* from here on the owner leaves L alone */
    t->lua_live = 0;
    if (t->L) lua_sethook(t->L, NULL, 0, 0);
    uv_mutex_unlock(&t->hook_mu);
    if (t->L) lua_close(t->L);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    free(t->hook_result);
    atomic_store(&t->exited, 1);
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

/* Thread `t`'s share of the run ended (it said so, or it is gone). */
static void thread_run_done(loadgen *w, lthread *t)
{
    if (t->run_done || !w->running) return;
    t->run_done = 1;
    if (++w->run_done == w->nthreads) {
        w->running = 0;
        if (w->ev.on_run_done) w->ev.on_run_done(w->ev.ud);
    }
}

static void say_thread(loadgen *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say_thread(loadgen *w, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w->ev.on_message) w->ev.on_message(w->ev.ud, line);
}

/* Set the count hook on a stuck thread (from the owner's thread). */
static void hook_thread(lthread *t, int kill)
{
    uv_mutex_lock(&t->hook_mu);
    if (t->lua_live) {
        if (kill) atomic_store(&t->kill, 1);
        lua_sethook(t->L, stuck_hook, LUA_MASKCOUNT, 1000);
    }
    uv_mutex_unlock(&t->hook_mu);
}

/* Where a stuck thread spins: the hook's file:line, else the loop the JIT compiled last. */
static void stuck_where(lthread *t, char *out, size_t len)
{
    uv_mutex_lock(&t->hook_mu);
    if (t->where[0] && strcmp(t->where, "?"))
        snprintf(out, len, "at %s", short_where(t->w, t->where));
    else if (t->trace_where[0])
        snprintf(out, len, "at %s (in compiled code: the loop the JIT compiled last)",
                 short_where(t->w, t->trace_where));
    else
        snprintf(out, len, "at a place Lua could not tell");
    uv_mutex_unlock(&t->hook_mu);
}

/* The stuck VU of an abandoned thread counts as a script error, in a last snapshot of that
 * thread (whose gauges are then zero: it runs no VU any more). */
static void count_abandoned(loadgen *w, lthread *t)
{
    stats *st = stats_new();
    char *buf;
    size_t len;
    if (!st) return;
    stats_error(st, ERR_SCRIPT);
    if (stats_encode(st, &buf, &len) == 0) {
        if (w->ev.on_snapshot) w->ev.on_snapshot(w->ev.ud, t->index, buf, len);
        free(buf);
    }
    stats_free(st);
}

/* One look at thread `t`: a counter that stood still for STUCK_MS is reported once; while the
 * load stops, its VU is killed by the hook, and a compiled loop is jumped out of by the signal. */
static void watch_thread(loadgen *w, lthread *t, uint64_t now)
{
    if (t->gone) return;
    if (atomic_load(&t->exited)) {
        t->gone = 1;
        thread_run_done(w, t);
        return;
    }
    uint64_t alive = atomic_load(&t->alive);
    if (alive != t->seen_alive) {
        if (t->reported)
            say_thread(w, "load thread %d is responsive again after %.1f s", t->index,
                       (now - t->seen_ms) / 1000.0);
        t->seen_alive = alive;
        t->seen_ms = now;
        t->hooked = t->reported = 0;
        t->kill_ms = 0;
        uv_mutex_lock(&t->hook_mu);
        t->where[0] = 0;
        uv_mutex_unlock(&t->hook_mu);
        return;
    }
    uint64_t stuck = now - t->seen_ms;
    if (stuck < STUCK_MS) return;
    if (!t->hooked) {
        t->hooked = 1;
        hook_thread(t, 0);
    } else if (!t->reported && stuck >= STUCK_MS + WATCH_MS) {
        char where[320];
        stuck_where(t, where, sizeof where);
        t->reported = 1;
        say_thread(w,
                   "load thread %d is stuck in Lua %s: it has not returned to its loop for %.1f s (a virtual "
                   "user in an endless loop?); it is stopped when the load stops",
                   t->index, where, stuck / 1000.0);
    }
    if (!w->stopping) return;
    if (!t->kill_ms) {
        t->kill_ms = now;
        hook_thread(t, 1);
    } else if (now - t->kill_ms >= ESCAPE_AFTER_MS && !t->escaped && atomic_load(&t->can_escape)) {
        t->escaped = 1;
        atomic_store(&t->escape_armed, 1);
        pthread_kill(t->tid, ESCAPE_SIGNAL);
        char where[320];
        stuck_where(t, where, sizeof where);
        say_thread(w, "load thread %d was stuck %s and is abandoned (its Lua state stays in memory)",
                   t->index, where);
        count_abandoned(w, t);
    }
}

static void on_watch(uv_timer_t *h)
{
    loadgen *w = h->data;
    uint64_t now = uv_hrtime() / 1000000;
    if (w->running && w->end_ms && now > w->end_ms) w->stopping = 1; /* over time: as if stopped */
    for (int i = 0; i < w->nthreads; i++)
        watch_thread(w, &w->threads[i], now);
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
        thread_run_done(w, &w->threads[m->thread]);
        break;
    case EV_SCRIPT_ERROR:
        script_error(w, m->data);
        break;
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
    static pthread_once_t escape_once = PTHREAD_ONCE_INIT;
    pthread_once(&escape_once, install_escape);
    uint64_t now = uv_hrtime() / 1000000;
    for (int i = 0; i < w->nthreads; i++) {
        lthread *t = &w->threads[i];
        t->w = w;
        t->index = i;
        t->slot = w->slot + i;
        t->nslots = w->nslots;
        t->scenario_ref = LUA_NOREF;
        t->seen_ms = now;
        uv_mutex_init(&t->hook_mu);
        uv_mutex_init(&t->inbox.mu);
    }
    uv_timer_init(owner, &w->watch);
    w->watch.data = w;
    uv_timer_start(&w->watch, on_watch, WATCH_MS, WATCH_MS);
    uv_unref((uv_handle_t *)&w->watch);
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

void loadgen_run(loadgen *w, double elapsed, const char *setup_json, double end_s)
{
    w->run_done = 0;
    w->running = 1;
    w->stopping = 0;
    double left = end_s - elapsed;
    w->end_ms =
        end_s > 0 ? uv_hrtime() / 1000000 + (uint64_t)((left > 0 ? left : 0) * 1000) + END_SLACK_MS : 0;
    for (int i = 0; i < w->nthreads; i++) {
        w->threads[i].run_done = w->threads[i].gone;
        w->run_done += w->threads[i].gone;
    }
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

void loadgen_stop(loadgen *w, int hard)
{
    w->stopping = 1;
    broadcast(w, hard ? CMD_KILL : CMD_STOP, 0, NULL);
}

/* The loadgen is freed once both of its owner handles (inbox.async, watch) are closed. */
static void close_cb_owner(uv_handle_t *h)
{
    loadgen *w = h->data;
    if (++w->closed == 2) free(w);
}
static void close_cb_keep(uv_handle_t *h) { (void)h; }

/* Wait (bounded) for every thread to return, killing and jumping out of stuck ones on the way;
 * returns how many are left behind (they never return: the loadgen must not be freed). */
static int wait_threads(loadgen *w)
{
    uint64_t t0 = uv_hrtime() / 1000000, now = t0;
    for (;;) {
        int left = 0;
        for (int i = 0; i < w->nthreads; i++) {
            watch_thread(w, &w->threads[i], now);
            left += !atomic_load(&w->threads[i].exited);
        }
        if (!left || now - t0 >= QUIT_WAIT_MS) return left;
        uv_sleep(20);
        now = uv_hrtime() / 1000000;
    }
}

void loadgen_free(loadgen *w)
{
    if (!w) return;
    for (int i = 0; i < w->nthreads; i++) /* a thread just started makes its mailbox first */
        for (int k = 0;
             k < 500 && !atomic_load(&w->threads[i].inbox_ready) && !atomic_load(&w->threads[i].exited); k++)
            uv_sleep(2);
    w->stopping = 1;
    for (int i = 0; i < w->nthreads; i++)
        if (atomic_load(&w->threads[i].inbox_ready) && !w->threads[i].escaped)
            mailbox_post(&w->threads[i].inbox, CMD_QUIT, i, 0, NULL, 0);
    int left = wait_threads(w);
    uv_timer_stop(&w->watch);
    if (left) { /* they may wake up one day: everything they touch stays allocated */
        atomic_store(&w->abandoned, 1);
        for (int i = 0; i < w->nthreads; i++)
            if (!atomic_load(&w->threads[i].exited)) {
                say_thread(
                    w, "load thread %d does not stop: it is left behind (restart this worker to free it)", i);
                pthread_detach(w->threads[i].tid);
            }
        uv_close((uv_handle_t *)&w->watch, close_cb_keep);
        uv_close((uv_handle_t *)&w->inbox.async, close_cb_keep);
        return;
    }
    for (int i = 0; i < w->nthreads; i++)
        uv_thread_join(&w->threads[i].tid);
    for (seen *s = w->seen_errors; s;) {
        seen *n = s->next;
        free(s);
        s = n;
    }
    for (int i = 0; i < w->nthreads; i++) {
        uv_mutex_destroy(&w->threads[i].inbox.mu);
        uv_mutex_destroy(&w->threads[i].hook_mu);
    }
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
    uv_close((uv_handle_t *)&w->watch, close_cb_owner);
}
