/* vu: virtual users as Lua coroutines on one libuv loop.
 *
 * A VU runs until it calls a parking primitive (core.request, core.sleep); the primitive starts
 * the operation and yields. Completions never resume a coroutine directly: they put the VU on the
 * ready queue, which a uv_check (after I/O) and a uv_idle (when woken by a timer) drain. So a VU is
 * never resumed from inside the call that made it yield, and the http client is never re-entered
 * from its own callback. Every suspended coroutine is anchored in the registry until it ends. */
#include "vu.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "url.h"

enum vu_state { VU_READY, VU_RUNNING, VU_WAIT_HTTP, VU_WAIT_TIMER, VU_PARKED };

#define PARKED_KEY "parrot.parked" /* registry: coroutine -> lightuserdata VU, while parked */

#define VU_MAX_EXPECT 16
#define VU_MAX_HEADERS 128

#define VU_NAME_CACHE 64
typedef struct name_slot {
    const char *ptr;
    int kind, id;
} name_slot;

typedef struct vu {
    vu_sched *s;
    lua_State *co;   /* the coroutine; anchored by `ref` */
    int ref;         /* registry reference to the coroutine */
    int state;       /* enum vu_state */
    int queued;      /* on the ready queue */
    int nargs;       /* values already on co's stack for the next resume */
    http_pool *pool; /* this VU's connections and cookies; created on first request */
    timer_entry timer;
    http_res *res; /* a finished response waiting to be handed to Lua */
    int res_failed;
    uint64_t intended_ns; /* the iteration's intended start, for its next request (rate model); 0: none */
    /* the request in flight */
    int name_id;
    int nexpect;
    short expect[VU_MAX_EXPECT];
    struct vu *next_ready;
    struct vu *prev, *next; /* live list */
} vu;

struct vu_sched {
    uv_loop_t *loop;
    lua_State *L;
    vu_sched_config cfg;
    timers *tm;
    http_client *http;
    stats *st;
    uv_check_t check;
    uv_idle_t idle;
    int idle_on;
    vu *ready_head, *ready_tail;
    vu *live;
    int nlive;
    int stopping;
    vu *current;                    /* the VU being resumed, NULL outside resumes */
    int vus_active;                 /* session VUs (as the runner reports them) */
    name_slot names[VU_NAME_CACHE]; /* see name_id */
    int closing;
    int res_mt[2]; /* registry refs of RES_MT and RES_MT_INLINE: no name lookup per response */
};

/* Response userdata; Lua values (status, body, headers...) are made only when read. A response
 * up to RES_INLINE_MAX bytes is copied into the userdata itself (the struct, then its head, body,
 * URL and error message): the GC sees its real size and frees it without a finalizer.
 * A larger one stays in C (`res` owned, freed by __gc). Read headers tables are cached in a
 * weak-keyed table, not in the userdata. */
typedef struct lres {
    http_res *res; /* &inl when inline, else owned */
    int failed;
    http_res inl; /* only in inline responses */
} lres;

#define RES_INLINE_MAX (1u << 20)
#define RES_MT "parrot.response"                /* a response kept in C: has __gc */
#define RES_MT_INLINE "parrot.response.inline"  /* a response inside its userdata: no __gc */
#define HEADERS_CACHE "parrot.response.headers" /* weak keys: response -> its headers table */

static void vu_end(vu *v);

/* ---- ready queue ---- */

static void process_ready(vu_sched *s);

static void on_check(uv_check_t *h) { process_ready(h->data); }
static void on_idle(uv_idle_t *h) { process_ready(h->data); }

static void enqueue(vu *v)
{
    vu_sched *s = v->s;
    if (v->queued) return;
    v->queued = 1;
    v->state = VU_READY;
    v->next_ready = NULL;
    if (s->ready_tail)
        s->ready_tail->next_ready = v;
    else
        s->ready_head = v;
    s->ready_tail = v;
    if (!s->idle_on) {
        uv_idle_start(&s->idle, on_idle);
        s->idle_on = 1;
    }
}

/* Copy n bytes to *at and move *at past them; returns where they went. */
static char *stow(char **at, const char *src, size_t n)
{
    char *dst = *at;
    memcpy(dst, src, n);
    *at += n;
    return dst;
}

/* A copy of `res` inside a new userdata (see lres), pointers moved to the copy; the caller frees
 * `res`. */
static lres *push_inline(lua_State *L, const http_res *res)
{
    size_t hlen = res->head ? res->head_len + 1 : 0;
    size_t blen = res->body ? res->body_len + 1 : 0;
    size_t ulen = res->url ? strlen(res->url) + 1 : 0;
    size_t elen = res->errmsg[0] ? strlen(res->errmsg) + 1 : 0;
    lres *r = lua_newuserdata(L, sizeof *r + hlen + blen + ulen + elen);
    char *p = (char *)(r + 1);
    r->inl = *res;
    if (hlen) r->inl.head = stow(&p, res->head, hlen);
    if (blen) r->inl.body = stow(&p, res->body, blen);
    if (ulen) r->inl.url = stow(&p, res->url, ulen);
    if (elen) r->inl.errmsg = stow(&p, res->errmsg, elen);
    r->res = &r->inl;
    return r;
}

static void push_response(lua_State *L, vu *v)
{
    http_res *res = v->res;
    size_t size = res->head_len + (res->body ? res->body_len : 0);
    lres *r;
    if (size <= RES_INLINE_MAX) {
        r = push_inline(L, res);
        http_res_free(res);
        lua_rawgeti(L, LUA_REGISTRYINDEX, v->s->res_mt[1]);
    } else {
        r = lua_newuserdata(L, offsetof(lres, inl));
        r->res = res;
        lua_rawgeti(L, LUA_REGISTRYINDEX, v->s->res_mt[0]);
    }
    r->failed = v->res_failed;
    v->res = NULL;
    lua_setmetatable(L, -2);
}

static void report_error(vu_sched *s, lua_State *co, const char *msg)
{
    luaL_traceback(s->L, co, msg ? msg : "error", 1);
    const char *tb = lua_tostring(s->L, -1);
    if (s->cfg.on_script_error) s->cfg.on_script_error(s, tb, s->cfg.ud);
    stats_error_sample(s->st, ERR_SCRIPT, tb);
    lua_pop(s->L, 1);
    stats_error(s->st, ERR_SCRIPT);
}

/* Resume `v` with what it waited for. Ends the VU when its coroutine returns or fails. */
static void vu_resume(vu *v)
{
    vu_sched *s = v->s;
    int nargs = v->nargs;
    v->nargs = 0;
    if (v->res) { /* core.request's results: the response and its status */
        int status = v->res->status;
        push_response(v->co, v);
        lua_pushinteger(v->co, status);
        nargs = 2;
    }
    v->state = VU_RUNNING;
    s->current = v;
    int rc = lua_resume(v->co, nargs);
    s->current = NULL;
    if (rc == LUA_YIELD) {
        if (v->state == VU_RUNNING) { /* a bare coroutine.yield(): run again on the next turn */
            lua_settop(v->co, 0);
            enqueue(v);
        }
        return;
    }
    if (rc != 0) report_error(s, v->co, lua_tostring(v->co, -1));
    vu_end(v);
}

static void process_ready(vu_sched *s)
{
    vu *q = s->ready_head; /* VUs queued while we run wait for the next turn */
    s->ready_head = s->ready_tail = NULL;
    while (q) {
        vu *v = q;
        q = v->next_ready;
        v->next_ready = NULL;
        v->queued = 0;
        vu_resume(v);
    }
    if (!s->ready_head && s->idle_on) {
        uv_idle_stop(&s->idle);
        s->idle_on = 0;
    }
}

/* ---- VU lifetime ---- */

static vu *vu_new(vu_sched *s, lua_State *L)
{
    vu *v = calloc(1, sizeof *v);
    if (!v) luaL_error(L, "out of memory");
    v->s = s;
    v->co = lua_newthread(L); /* fn, co */
    lua_pushvalue(L, -2);     /* fn, co, fn */
    lua_xmove(L, v->co, 1);   /* fn, co */
    v->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    v->timer.data = v;
    v->next = s->live;
    if (s->live) s->live->prev = v;
    s->live = v;
    s->nlive++;
    return v;
}

/* Free a VU: its connections close, its coroutine is released. Never called while it runs. */
static void vu_end(vu *v)
{
    vu_sched *s = v->s;
    timers_del(s->tm, &v->timer);
    if (v->state == VU_PARKED) {
        lua_getfield(s->L, LUA_REGISTRYINDEX, PARKED_KEY);
        lua_pushthread(v->co);
        lua_xmove(v->co, s->L, 1);
        lua_pushnil(s->L);
        lua_rawset(s->L, -3);
        lua_pop(s->L, 1);
    }
    if (v->pool) http_pool_free(v->pool);
    if (v->res) http_res_free(v->res);
    luaL_unref(s->L, LUA_REGISTRYINDEX, v->ref);
    if (v->prev)
        v->prev->next = v->next;
    else
        s->live = v->next;
    if (v->next) v->next->prev = v->prev;
    s->nlive--;
    free(v);
    if (s->nlive == 0 && !s->closing && s->cfg.on_idle) s->cfg.on_idle(s, s->cfg.ud);
}

void vu_sched_spawn(vu_sched *s) { enqueue(vu_new(s, s->L)); }

int vu_sched_live(const vu_sched *s) { return s->nlive; }
void vu_sched_request_stop(vu_sched *s) { s->stopping = 1; }
stats *vu_sched_stats(vu_sched *s) { return s->st; }
timers *vu_sched_timers(vu_sched *s) { return s->tm; }

void vu_sched_kill_all(vu_sched *s)
{
    s->stopping = 1;
    for (vu *v = s->ready_head; v; v = v->next_ready)
        v->queued = 0;
    s->ready_head = s->ready_tail = NULL;
    int was_closing = s->closing;
    s->closing = 1; /* one on_idle at the end, not one per VU */
    while (s->live) {
        if (s->live->state == VU_WAIT_HTTP) stats_error(s->st, ERR_CANCELLED);
        vu_end(s->live);
    }
    s->closing = was_closing;
    s->vus_active = 0;
    if (!s->closing && s->cfg.on_idle) s->cfg.on_idle(s, s->cfg.ud);
}

/* ---- Lua primitives (parrot.core) ---- */

static vu_sched *sched_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static vu *current_vu(lua_State *L, const char *what)
{
    vu_sched *s = sched_of(L);
    if (!s->current || s->current->co != L)
        luaL_error(L, "%s can only be used inside a virtual user (a session, setup or teardown)", what);
    return s->current;
}

static void on_http_done(http_res *res, void *ud)
{
    vu *v = ud;
    vu_sched *s = v->s;
    int ok_status = 0;
    if (v->nexpect) {
        for (int i = 0; i < v->nexpect; i++)
            ok_status |= v->expect[i] == res->status;
    } else {
        ok_status = res->status > 0 && res->status < 400;
    }
    int err = res->err;
    if (err == ERR_CANCELLED) {
        stats_error(s->st, ERR_CANCELLED);
    } else {
        if (err == ERR_NONE && !ok_status) err = ERR_STATUS;
        stats_request(s->st, v->name_id, res->latency_us, res->status, err, res->bytes_in, res->bytes_out);
        if (err == ERR_STATUS && !s->st->err_sample[ERR_STATUS]) {
            char m[STATS_SAMPLE_MAX];
            snprintf(m, sizeof m, "status %d (%s)", res->status, res->url ? res->url : "");
            stats_error_sample(s->st, ERR_STATUS, m);
        } else if (err != ERR_NONE) {
            stats_error_sample(s->st, err, res->errmsg);
        }
    }
    v->res = res;
    v->res_failed = err != ERR_NONE;
    enqueue(v);
}

/* stats_name_id through a small cache keyed by the name's address: Lua strings are interned, so
 * a scenario that repeats a name passes the same pointer, and the entry's own name confirms the
 * hit (a freed string whose address was reused by another name simply misses). */
static int name_id(vu_sched *s, const char *name, int kind)
{
    stats *st = s->st;
    uintptr_t h = (uintptr_t)name;
    name_slot *e = &s->names[((h >> 4) ^ (h >> 12) ^ (unsigned)kind) % VU_NAME_CACHE];
    if (e->ptr == name && e->kind == kind && e->id >= 0 && (size_t)e->id < st->nentries &&
        st->entries[e->id].kind == kind && !strcmp(st->entries[e->id].name, name))
        return e->id;
    int id = stats_name_id(st, name, kind);
    *e = (name_slot){.ptr = name, .kind = kind, .id = id};
    return id;
}

/* expect: a status or an array of them. */
static void read_expect(lua_State *L, int i, vu *v)
{
    if (lua_istable(L, i)) {
        for (int k = 1; k <= VU_MAX_EXPECT; k++) {
            lua_rawgeti(L, i, k);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            v->expect[v->nexpect++] = (short)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    } else if (lua_isnumber(L, i)) {
        v->expect[v->nexpect++] = (short)lua_tointeger(L, i);
    }
}

/* tls = {cert, key, ca}: the strings stay alive, held by that table. */
static void read_tls(lua_State *L, int i, http_req *req)
{
    if (!lua_istable(L, i)) return;
    const char **dst[] = {&req->tls_cert, &req->tls_key, &req->tls_ca};
    const char *keys[] = {"cert", "key", "ca"};
    for (int k = 0; k < 3; k++) {
        lua_getfield(L, i, keys[k]);
        *dst[k] = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }
}

/* Seconds at stack index i as microseconds; 0 (the client's default) unless a positive number. */
static uint64_t arg_us(lua_State *L, int i)
{
    if (lua_type(L, i) != LUA_TNUMBER) return 0;
    double sec = lua_tonumber(L, i);
    if (!(sec > 0)) return 0;
    return sec > 86400.0 * 365 ? (uint64_t)(86400.0 * 365 * 1e6) : (uint64_t)(sec * 1e6);
}

/* core.request's flags (see there). */
enum { RQ_INSECURE = 1, RQ_DISCARD_BODY = 2, RQ_COMPRESSION = 4, RQ_NO_COOKIES = 8, RQ_HTTP10 = 16 };

/* core.request(method, url, headers, body, name, start, flags, timeout, connect_timeout, max_body,
 *              tls, expect) -> response, status (yields; status is 0 when no response came).
 * headers: nil or a flat array {name1, value1, name2, value2, ...}; body: nil or a string; name:
 * the statistics name (default: the URL); start: the intended start (core.now() seconds) or nil;
 * flags: RQ_* added up (nil: none); timeout, connect_timeout: seconds (nil: the client's);
 * max_body: bytes kept; tls: {cert, key, ca} file names; expect: the statuses that are not
 * failures (a number or an array). The arguments after `flags` may be left out: the options come
 * as arguments, not in a table, because this runs for every request. */
static int l_request(lua_State *L)
{
    vu *v = current_vu(L, "http requests");
    vu_sched *s = v->s;
    http_req req = {0};
    http_header hdrs[VU_MAX_HEADERS];
    req.method = luaL_checkstring(L, 1);
    req.url = luaL_checkstring(L, 2);
    if (lua_istable(L, 3)) {
        size_t n = lua_objlen(L, 3);
        if (n / 2 > VU_MAX_HEADERS) return luaL_error(L, "too many headers (%d at most)", VU_MAX_HEADERS);
        for (size_t i = 0; i < n; i += 2) {
            lua_rawgeti(L, 3, (int)i + 1);
            lua_rawgeti(L, 3, (int)i + 2);
            http_header *h = &hdrs[i / 2];
            h->name = lua_tolstring(L, -2, &h->name_len);
            h->value = lua_tolstring(L, -1, &h->value_len);
            lua_pop(L, 2); /* strings are held by the headers table */
            if (!h->name || !h->value) return luaL_error(L, "header names and values must be strings");
            req.nheaders++;
        }
        req.headers = hdrs;
    }
    if (!lua_isnoneornil(L, 4)) req.body = luaL_checklstring(L, 4, &req.body_len);
    const char *name = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : NULL;
    v->nexpect = 0;
    if (lua_type(L, 6) == LUA_TNUMBER && lua_tonumber(L, 6) > 0)
        req.start_ns = (uint64_t)(lua_tonumber(L, 6) * 1e9);
    else
        req.start_ns = v->intended_ns;
    int flags = (int)lua_tointeger(L, 7);
    req.insecure = (flags & RQ_INSECURE) != 0;
    req.discard_body = (flags & RQ_DISCARD_BODY) != 0;
    req.compression = (flags & RQ_COMPRESSION) != 0;
    req.no_cookies = (flags & RQ_NO_COOKIES) != 0;
    req.http10 = (flags & RQ_HTTP10) != 0;
    if (lua_gettop(L) > 7) {
        req.timeout_us = arg_us(L, 8);
        req.connect_timeout_us = arg_us(L, 9);
        if (lua_type(L, 10) == LUA_TNUMBER && lua_tonumber(L, 10) > 0)
            req.max_body = (size_t)lua_tonumber(L, 10);
        if (!lua_isnoneornil(L, 11)) read_tls(L, 11, &req);
        if (!lua_isnoneornil(L, 12)) read_expect(L, 12, v);
    }
    v->intended_ns = 0;
    v->name_id = name_id(s, name ? name : req.url, STATS_REQUEST);
    if (!v->pool && !(v->pool = http_pool_new(s->http))) return luaL_error(L, "out of memory");
    if (http_request(v->pool, &req, on_http_done, v) != 0)
        return luaL_error(L, "one request at a time per virtual user");
    v->state = VU_WAIT_HTTP;
    return lua_yield(L, 0);
}

static void on_timer(timer_entry *e) { enqueue(e->data); }

/* core.sleep(seconds) (yields) */
static int l_sleep(lua_State *L)
{
    vu *v = current_vu(L, "sleep and think");
    double sec = luaL_checknumber(L, 1);
    if (!(sec >= 0)) sec = 0;
    if (sec > 86400 * 365) sec = 86400 * 365;
    v->timer.cb = on_timer;
    v->state = VU_WAIT_TIMER;
    timers_add(v->s->tm, &v->timer, uv_hrtime() + (uint64_t)(sec * 1e9));
    return lua_yield(L, 0);
}

/* core.spawn(fn): a new coroutine with its own connections and cookies, started on the next turn. */
static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    enqueue(vu_new(sched_of(L), L));
    return 0;
}

/* core.park() -> value: wait until another coroutine calls core.wake(this coroutine, value). */
static int l_park(lua_State *L)
{
    vu *v = current_vu(L, "park");
    lua_getfield(L, LUA_REGISTRYINDEX, PARKED_KEY);
    lua_pushthread(L);
    lua_pushlightuserdata(L, v);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    v->state = VU_PARKED;
    return lua_yield(L, 0);
}

/* core.kill(co): end the virtual user running coroutine `co` now (a request in flight is counted
 * as cancelled), as graceful_stop does on a ramp-down; false when no such VU lives. A VU cannot
 * kill itself. */
static int l_kill(lua_State *L)
{
    vu_sched *s = sched_of(L);
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_State *co = lua_tothread(L, 1);
    vu *v = s->live;
    while (v && v->co != co)
        v = v->next;
    if (!v || v == s->current) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (v->queued) { /* off the ready queue first */
        vu *prev = NULL;
        for (vu *q = s->ready_head; q; prev = q, q = q->next_ready)
            if (q == v) {
                if (prev)
                    prev->next_ready = q->next_ready;
                else
                    s->ready_head = q->next_ready;
                if (s->ready_tail == q) s->ready_tail = prev;
                break;
            }
        v->queued = 0;
    }
    if (v->state == VU_WAIT_HTTP) stats_error(s->st, ERR_CANCELLED);
    vu_end(v);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.wake(co, value) -> true if `co` was parked (it resumes on the next turn with `value`). */
static int l_wake(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_settop(L, 2);
    lua_getfield(L, LUA_REGISTRYINDEX, PARKED_KEY);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    vu *v = lua_touserdata(L, -1);
    if (!v) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_xmove(L, v->co, 1);
    v->nargs = 1;
    enqueue(v);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.kill_others(): end every VU but the caller now (the end of graceful_stop). */
static int l_kill_others(lua_State *L)
{
    vu_sched *s = sched_of(L);
    vu *me = s->current;
    for (vu *v = s->ready_head; v; v = v->next_ready)
        v->queued = 0; /* `me` runs: not queued */
    s->ready_head = s->ready_tail = NULL;
    vu *v = s->live;
    while (v) {
        vu *next = v->next;
        if (v != me) {
            if (v->state == VU_WAIT_HTTP) stats_error(s->st, ERR_CANCELLED);
            vu_end(v);
        }
        v = next;
    }
    s->vus_active = 0;
    s->st->vus = 0;
    return 0;
}

/* core.intend(seconds | nil): the current VU's next request measures its latency from this
 * intended start (core.now() clock) instead of from when it is sent; kept per VU, so a VU that
 * pauses before its first request does not lend its start to others. */
static int l_intend(lua_State *L)
{
    vu *v = current_vu(L, "core.intend");
    double t = luaL_optnumber(L, 1, 0);
    v->intended_ns = t > 0 ? (uint64_t)(t * 1e9) : 0;
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, (double)uv_hrtime() / 1e9);
    return 1;
}

static int l_live(lua_State *L)
{
    lua_pushinteger(L, sched_of(L)->nlive);
    return 1;
}

static int l_stopping(lua_State *L)
{
    lua_pushboolean(L, sched_of(L)->stopping);
    return 1;
}

static int l_thread(lua_State *L)
{
    vu_sched *s = sched_of(L);
    lua_pushinteger(L, s->cfg.thread_index);
    lua_pushinteger(L, s->cfg.thread_count);
    return 2;
}

static int l_check(lua_State *L)
{
    vu_sched *s = sched_of(L);
    const char *name = luaL_checkstring(L, 1);
    stats_check(s->st, name_id(s, name, STATS_CHECK), lua_toboolean(L, 2));
    return 0;
}

static int l_transaction(lua_State *L)
{
    vu_sched *s = sched_of(L);
    const char *name = luaL_checkstring(L, 1);
    double sec = luaL_checknumber(L, 2);
    uint64_t us = sec > 0 ? (uint64_t)(sec * 1e6) : 0;
    stats_transaction(s->st, name_id(s, name, STATS_TRANSACTION), us, lua_toboolean(L, 3));
    return 0;
}

/* core.iteration([t0]) -> now, stopping: one iteration done; with t0 (core.now() seconds, its
 * start) its duration goes into the iteration_duration trend, in milliseconds. Returns the clock it
 * read (core.now()) and core.stopping(), so that a VU looping over iterations needs no other call. */
static int l_iteration(lua_State *L)
{
    vu_sched *s = sched_of(L);
    double now = (double)uv_hrtime() / 1e9;
    s->st->iterations++;
    if (lua_type(L, 1) == LUA_TNUMBER)
        stats_trend_add(s->st, name_id(s, "iteration_duration", STATS_TREND),
                        (now - lua_tonumber(L, 1)) * 1000.0);
    lua_pushnumber(L, now);
    lua_pushboolean(L, s->stopping);
    return 2;
}

static int l_dropped(lua_State *L)
{
    sched_of(L)->st->dropped += (uint64_t)luaL_optinteger(L, 1, 1);
    return 0;
}

static int l_vus(lua_State *L)
{
    vu_sched *s = sched_of(L);
    s->vus_active += (int)luaL_checkinteger(L, 1);
    s->st->vus = s->vus_active;
    if (s->vus_active > s->st->vus_max) s->st->vus_max = s->vus_active; /* this interval's peak */
    return 0;
}

static int l_counter(lua_State *L)
{
    vu_sched *s = sched_of(L);
    stats_counter_add(s->st, name_id(s, luaL_checkstring(L, 1), STATS_COUNTER), luaL_optnumber(L, 2, 1));
    return 0;
}

static int l_trend(lua_State *L)
{
    vu_sched *s = sched_of(L);
    stats_trend_add(s->st, name_id(s, luaL_checkstring(L, 1), STATS_TREND), luaL_checknumber(L, 2));
    return 0;
}

/* core.abort_test(why): end the whole test (every worker), as Tsung's abort_test and k6's
 * test.abort(); this thread stops starting iterations at once. */
static int l_abort_test(lua_State *L)
{
    vu_sched *s = sched_of(L);
    s->stopping = 1;
    if (s->cfg.on_abort_test) s->cfg.on_abort_test(s, luaL_optstring(L, 1, "the scenario asked"), s->cfg.ud);
    return 0;
}

static int l_script_error(lua_State *L)
{
    vu_sched *s = sched_of(L);
    if (s->cfg.on_script_error) s->cfg.on_script_error(s, luaL_checkstring(L, 1), s->cfg.ud);
    stats_error(s->st, ERR_SCRIPT);
    stats_error_sample(s->st, ERR_SCRIPT, luaL_checkstring(L, 1));
    return 0;
}

/* Parts of a URL the cookie jar needs: host, path, secure. Returns 0 or raises. */
static void cookie_target(lua_State *L, int idx, url *u)
{
    char err[128];
    if (url_parse(luaL_checkstring(L, idx), u, err, sizeof err) != 0) luaL_error(L, "%s", err);
}

static cookie_jar *current_jar(lua_State *L)
{
    vu *v = current_vu(L, "cookies");
    if (!v->pool && !(v->pool = http_pool_new(v->s->http))) luaL_error(L, "out of memory");
    return http_pool_cookies(v->pool);
}

/* core.cookie(url, name) -> value or nil: the cookie this VU would send to url. */
static int l_cookie(lua_State *L)
{
    cookie_jar *j = current_jar(L);
    url u;
    cookie_target(L, 1, &u);
    const char *path = u.target;
    char p[1024];
    size_t q = strcspn(path, "?");
    snprintf(p, sizeof p, "%.*s", (int)(q < sizeof p ? q : sizeof p - 1), path);
    const char *val = cookie_jar_get(j, u.host, p, luaL_checkstring(L, 2), (int64_t)time(NULL));
    url_free(&u);
    if (val)
        lua_pushstring(L, val);
    else
        lua_pushnil(L);
    return 1;
}

/* core.cookie_add(domain, path, name, value) */
static int l_cookie_add(lua_State *L)
{
    cookie_jar *j = current_jar(L);
    cookie_jar_add(j, luaL_checkstring(L, 1), luaL_optstring(L, 2, "/"), luaL_checkstring(L, 3),
                   luaL_checkstring(L, 4));
    return 0;
}

static int l_cookies_clear(lua_State *L)
{
    cookie_jar_clear(current_jar(L));
    return 0;
}

/* A saved jar (core.cookies_save) is a userdata that owns its copy of the cookies. */
#define JAR_MT "parrot.cookie_jar"

static int jar_gc(lua_State *L)
{
    cookie_jar **saved = luaL_checkudata(L, 1, JAR_MT);
    cookie_jar_free(*saved);
    *saved = NULL;
    return 0;
}

/* core.cookies_save() -> a copy of this VU's jar, for core.cookies_restore. */
static int l_cookies_save(lua_State *L)
{
    cookie_jar *j = current_jar(L), **saved = lua_newuserdata(L, sizeof *saved);
    *saved = NULL;
    luaL_getmetatable(L, JAR_MT);
    lua_setmetatable(L, -2);
    if (!(*saved = cookie_jar_new()) || cookie_jar_copy(*saved, j) != 0) luaL_error(L, "out of memory");
    return 1;
}

/* core.cookies_restore(saved): this VU's jar holds what it held when saved, and nothing else. */
static int l_cookies_restore(lua_State *L)
{
    cookie_jar **saved = luaL_checkudata(L, 1, JAR_MT);
    if (cookie_jar_copy(current_jar(L), *saved) != 0) luaL_error(L, "out of memory");
    return 0;
}

/* core.close_connections([origin_url]): close this VU's idle connections, or only those to one origin
 * (scheme, host and port of the URL); cookies are kept. */
static int l_close_connections(lua_State *L)
{
    vu *v = current_vu(L, "close_connections");
    if (lua_isnoneornil(L, 1)) {
        if (v->pool) http_pool_close_idle(v->pool);
    } else {
        const char *origin = luaL_checkstring(L, 1);
        if (v->pool && http_pool_close_idle_to(v->pool, origin) < 0)
            return luaL_error(L, "close_connections: not a URL: %s", origin);
    }
    return 0;
}

/* ---- response userdata ---- */

/* The response at index 1. Metamethods get one from the VM (the metatables are protected by
 * __metatable); methods such as r:header check what they were given. */
static lres *res_of(lua_State *L) { return lua_touserdata(L, 1); }

static lres *check_res(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, RES_MT_INLINE);
        int ok = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (!ok) {
            luaL_getmetatable(L, RES_MT);
            ok = lua_rawequal(L, -1, -2);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (ok) return lua_touserdata(L, 1);
    }
    luaL_typerror(L, 1, "response");
    return NULL;
}

static int res_gc(lua_State *L)
{
    lres *r = res_of(L);
    if (r->res) http_res_free(r->res);
    r->res = NULL;
    return 0;
}

static int headers_index(lua_State *L)
{
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    if (!k || n > 256) return 0;
    char low[257];
    for (size_t i = 0; i < n; i++)
        low[i] = (char)((k[i] >= 'A' && k[i] <= 'Z') ? k[i] + 32 : k[i]);
    lua_pushlstring(L, low, n);
    lua_rawget(L, 1);
    return 1;
}

/* Build the headers table once: lowercase names, repeated headers joined with ", ". */
static void push_headers(lua_State *L, lres *r)
{
    luaL_getmetatable(L, HEADERS_CACHE);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1); /* cache */
    http_res *res = r->res;
    lua_createtable(L, 0, 8);
    size_t pos = 0;
    http_header hd;
    while (http_head_next(res->head, res->head_len, &pos, &hd)) {
        char low[256];
        size_t n = hd.name_len < sizeof low ? hd.name_len : sizeof low;
        for (size_t k = 0; k < n; k++) {
            char c = hd.name[k];
            low[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        lua_pushlstring(L, low, n);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isstring(L, -1)) {
            lua_pushstring(L, ", ");
            lua_pushlstring(L, hd.value, hd.value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, hd.value, hd.value_len);
        }
        lua_rawset(L, -3);
    }
    luaL_getmetatable(L, "parrot.headers");
    lua_setmetatable(L, -2); /* cache, headers */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

static void push_timings(lua_State *L, const http_res *res)
{
    lua_createtable(L, 0, 8);
#define T(f)                                                                                                 \
    lua_pushnumber(L, (double)res->f##_us / 1000.0);                                                         \
    lua_setfield(L, -2, #f)
    T(dns);
    T(connect);
    T(tls);
    T(send);
    T(ttfb);
    T(total);
    T(latency);
#undef T
}

/* r.head: the status line and headers exactly as received, the empty line that ends them
 * included; "" when no response came. */
static void push_head(lua_State *L, const http_res *res)
{
    if (res->status && res->head)
        lua_pushlstring(L, res->head, res->head_len);
    else
        lua_pushliteral(L, "");
}

static int res_index(lua_State *L)
{
    lres *r = res_of(L);
    const char *k = luaL_checkstring(L, 2);
    http_res *res = r->res;
    if (!strcmp(k, "status"))
        lua_pushinteger(L, res->status);
    else if (!strcmp(k, "body")) {
        if (res->body)
            lua_pushlstring(L, res->body, res->body_len);
        else if (res->err || res->body_bytes)
            lua_pushnil(L);
        else
            lua_pushliteral(L, "");
    } else if (!strcmp(k, "headers"))
        push_headers(L, r);
    else if (!strcmp(k, "ok"))
        lua_pushboolean(L, !r->failed);
    else if (!strcmp(k, "error")) {
        if (res->err)
            lua_pushstring(L, res->errmsg[0] ? res->errmsg : stats_err_name(res->err));
        else if (r->failed)
            lua_pushfstring(L, "status %d", res->status);
        else
            lua_pushnil(L);
    } else if (!strcmp(k, "error_kind")) {
        if (r->failed)
            lua_pushstring(L, stats_err_name(res->err ? res->err : ERR_STATUS));
        else
            lua_pushnil(L);
    } else if (!strcmp(k, "truncated"))
        lua_pushboolean(L, res->truncated);
    else if (!strcmp(k, "timings"))
        push_timings(L, res);
    else if (!strcmp(k, "url"))
        lua_pushstring(L, res->url ? res->url : "");
    else if (!strcmp(k, "bytes"))
        lua_pushnumber(L, (double)res->body_bytes);
    else if (!strcmp(k, "reused"))
        lua_pushboolean(L, res->reused);
    else if (!strcmp(k, "proto"))
        lua_pushstring(L, res->http_minor ? "HTTP/1.1" : "HTTP/1.0");
    else if (!strcmp(k, "reason")) {
        size_t n;
        const char *reason = http_res_reason(res, &n);
        lua_pushlstring(L, reason, n);
    } else if (!strcmp(k, "head"))
        push_head(L, res);
    else {
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1)); /* methods */
    }
    return 1;
}

/* r:header(name) -> first value or nil, without building the headers table. */
static int res_header(lua_State *L)
{
    lres *r = check_res(L);
    size_t n;
    const char *v = http_res_header(r->res, luaL_checkstring(L, 2), &n);
    if (v)
        lua_pushlstring(L, v, n);
    else
        lua_pushnil(L);
    return 1;
}

static int res_tostring(lua_State *L)
{
    lres *r = res_of(L);
    lua_pushfstring(L, "response %d %s", r->res->status, r->res->url ? r->res->url : "");
    return 1;
}

/* package.preload["parrot.core"] */
static int open_core(lua_State *L)
{
    vu_sched *s = lua_touserdata(L, lua_upvalueindex(1));
    static const luaL_Reg fns[] = {{"request", l_request},
                                   {"sleep", l_sleep},
                                   {"spawn", l_spawn},
                                   {"now", l_now},
                                   {"intend", l_intend},
                                   {"live", l_live},
                                   {"stopping", l_stopping},
                                   {"thread", l_thread},
                                   {"check", l_check},
                                   {"transaction", l_transaction},
                                   {"iteration", l_iteration},
                                   {"dropped", l_dropped},
                                   {"vus", l_vus},
                                   {"counter", l_counter},
                                   {"trend", l_trend},
                                   {"script_error", l_script_error},
                                   {"cookie", l_cookie},
                                   {"cookie_add", l_cookie_add},
                                   {"cookies_clear", l_cookies_clear},
                                   {"cookies_save", l_cookies_save},
                                   {"cookies_restore", l_cookies_restore},
                                   {"close_connections", l_close_connections},
                                   {"park", l_park},
                                   {"wake", l_wake},
                                   {"kill", l_kill},
                                   {"kill_others", l_kill_others},
                                   {"abort_test", l_abort_test},
                                   {NULL, NULL}};
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, s);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    /* response methods: C ones here, Lua adds json/match/xpath (parrot/http.lua) */
    lua_newtable(L);
    lua_pushcfunction(L, res_header);
    lua_setfield(L, -2, "header");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "response_methods");
    for (int inl = 0; inl <= 1; inl++) {
        luaL_newmetatable(L, inl ? RES_MT_INLINE : RES_MT); /* methods, mt */
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, res_index, 1);
        lua_setfield(L, -2, "__index");
        if (!inl) {
            lua_pushcfunction(L, res_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_pushcfunction(L, res_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "parrot.response");
        lua_setfield(L, -2, "__metatable");
        s->res_mt[inl] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, HEADERS_CACHE); /* a weak-keyed table kept in the registry */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    luaL_newmetatable(L, JAR_MT);
    lua_pushcfunction(L, jar_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, JAR_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_newmetatable(L, "parrot.headers");
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    return 1;
}

vu_sched *vu_sched_new(uv_loop_t *loop, lua_State *L, const vu_sched_config *cfg, char *err, size_t errlen)
{
    vu_sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->L = L;
    s->cfg = *cfg;
    for (int i = 0; i < VU_NAME_CACHE; i++)
        s->names[i].id = -1;
    s->st = stats_new();
    s->tm = timers_new(loop);
    http_client_config none = {0};
    s->http = http_client_new(loop, s->tm, cfg->http ? cfg->http : &none, err, errlen);
    if (!s->st || !s->tm || !s->http) {
        if (s->st) stats_free(s->st);
        if (s->tm) timers_free(s->tm);
        free(s);
        return NULL;
    }
    uv_check_init(loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, on_check);
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, PARKED_KEY);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, open_core, 1);
    lua_setfield(L, -2, "parrot.core");
    lua_pop(L, 2);
    return s;
}

/* The uv handles live inside the scheduler: free it when the last one has closed. */
static void on_handle_closed(uv_handle_t *h)
{
    vu_sched *s = h->data;
    if (--s->closing == 0) free(s);
}

void vu_sched_free(vu_sched *s)
{
    if (!s) return;
    s->closing = 1;
    vu_sched_kill_all(s);
    http_client_free(s->http);
    timers_free(s->tm);
    stats_free(s->st);
    s->closing = 2; /* counts the handles still to close */
    uv_close((uv_handle_t *)&s->check, on_handle_closed);
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
}
