/* queen_plan: what the queen prepares before any worker joins: the plan read from the scenario
 * on its own Lua state, the bundle and its version, the ROUTER socket with CURVE, the ZAP handler
 * and the handshake monitor (whose refusals are said once each on the queen's loop). */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "queen_int.h"
#include "wire.h"

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
    lua_pop(L, 3);
    lua_getfield(L, -1, "stages"); /* stages: their highest target */
    for (int i = 1; lua_istable(L, -1); i++) {
        lua_rawgeti(L, -1, i);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        lua_getfield(L, -1, "target");
        if (lua_isnumber(L, -1) && (long)lua_tonumber(L, -1) > *planned_vus)
            *planned_vus = (long)lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
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

int queen_load_plan(queen *q)
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

int queen_build_bundle(queen *q)
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

/* ---- handshakes: lines from the monitor and ZAP threads, said on the loop once each ---- */

static uint32_t line_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* On the loop: say each waiting line that was not said before. */
static void on_hs_lines(uv_async_t *a)
{
    queen *q = a->data;
    char lines[HS_LINES][512];
    uv_mutex_lock(&q->hs_mu);
    int n = q->hs_n;
    memcpy(lines, q->hs_lines, sizeof lines[0] * (size_t)n);
    q->hs_n = 0;
    uv_mutex_unlock(&q->hs_mu);
    for (int i = 0; i < n; i++) {
        uint32_t h = line_hash(lines[i]);
        int said = 0;
        for (int k = 0; k < q->hs_nsaid && !said; k++)
            said = q->hs_said[k] == h;
        if (said) continue;
        if (q->hs_nsaid < HS_SAID) q->hs_said[q->hs_nsaid++] = h;
        queen_say(q, "%s", lines[i]);
    }
}

/* From the monitor or ZAP thread: queue a line for the loop. */
static void hs_push(queen *q, const char *line)
{
    uv_mutex_lock(&q->hs_mu);
    if (q->hs_n < HS_LINES) snprintf(q->hs_lines[q->hs_n++], sizeof q->hs_lines[0], "%s", line);
    uv_mutex_unlock(&q->hs_mu);
    uv_async_send(&q->hs_async);
}

static void on_handshake(void *ud, const char *line, int ok)
{
    if (!ok) hs_push(ud, line);
}

static void on_deny(void *ud, const char *key)
{
    queen *q = ud;
    char line[512];
    if (key[0] == '(')
        snprintf(line, sizeof line, "refused a worker %s: it needs --keys DIR --queen-key KEY", key);
    else
        snprintf(line, sizeof line, "refused a worker whose key %s is not in %s (add it to admit the worker)",
                 key, q->o->allow_file);
    hs_push(q, line);
}

static void hs_closed(uv_handle_t *h) { (void)h; }

/* Bind the ROUTER (with CURVE and the ZAP handler when keys are given). */
int queen_open_socket(queen *q, const char *endpoint, zsock_msg_cb cb, zsock_bad_cb bad)
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
    if (o->bind) { /* handshake lines reach the loop through this */
        uv_mutex_init(&q->hs_mu);
        uv_async_init(&q->loop, &q->hs_async, on_hs_lines);
        q->hs_async.data = q;
        q->hs_on = 1;
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
        q->zap = curve_zap_start(q->zctx, o->allow_file, on_deny, q, err, sizeof err);
        if (!q->zap) {
            fprintf(stderr, "parrot queen: %s\n", err);
            return 2;
        }
    }
    q->sock = zmq_socket(q->zctx, ZMQ_ROUTER);
    int one = 1, linger = 1000, hwm = 100000;
    int64_t maxmsg = (int64_t)WIRE_MAX_FRAME + 4096; /* what a peer may make us allocate */
    zmq_setsockopt(q->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(q->sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(q->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(q->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(q->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(q->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (o->keys_dir && curve_server(q->sock, &q->keys) != 0) {
        fprintf(stderr, "parrot queen: cannot enable CURVE: %s\n", zmq_strerror(errno));
        return 2;
    }
    if (o->bind)
        q->mon = curve_monitor_start(
            q->zctx, q->sock, CURVE_MON_SERVER | (o->keys_dir ? 0 : CURVE_MON_KEYLESS), on_handshake, q);
    if (zmq_bind(q->sock, endpoint) != 0) {
        fprintf(stderr, "parrot queen: cannot bind %s: %s\n", endpoint, zmq_strerror(errno));
        return 2;
    }
    q->z = zsock_attach(&q->loop, q->sock, 1, cb, q);
    zsock_on_bad(q->z, bad);
    return 0;
}

void queen_close_socket(queen *q)
{
    if (q->mon) curve_monitor_stop(q->mon);
    q->mon = NULL;
    if (q->zap) curve_zap_stop(q->zap);
    q->zap = NULL;
    if (q->hs_on) {
        uv_close((uv_handle_t *)&q->hs_async, hs_closed);
        uv_mutex_destroy(&q->hs_mu); /* the threads that pushed lines are gone */
        q->hs_on = 0;
    }
}

int queen_write_outputs(queen *q, const report *r)
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

uint64_t queen_new_epoch(void)
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

/* Options of `parrot run` that belong to each worker, not to a cluster's queen: refused with a
 * line saying where they go (the queen would otherwise ignore them). */
int queen_check_options(const queen_options *o)
{
    if (!o->bind) return 0;
    if (o->threads) {
        fprintf(stderr, "parrot queen: --threads is a worker option: give each worker its own "
                        "(parrot worker --threads N)\n");
        return 2;
    }
    if (o->http.sources && o->http.sources[0]) {
        fprintf(stderr, "parrot queen: --source is a worker option: the addresses are each machine's own "
                        "(parrot worker --source A[,B...])\n");
        return 2;
    }
    if (o->serve && !isatty(0)) {
        fprintf(stderr, "parrot queen: --serve needs a terminal (Enter starts each run); without one, start "
                        "a queen for each run\n");
        return 2;
    }
    return 0;
}
