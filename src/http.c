/* http: the HTTP/1.1 exchange on top of conn: pools of keep-alive connections per origin, request
 * building, response parsing with llhttp, body decoding, cookies, timeouts and the one callback
 * per request. The parse half (llhttp callbacks, body, zlib) is at the end of this file. */
#include "http.h"

#include <llhttp.h>
#include <mbedtls/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conn.h"
#include "http_msg.h"
#include "dns.h"
#include "stats.h"
#include "tls.h"
#include "url.h"

#define USER_AGENT "loadParrot/0.1"
#define DUMP_BODY_MAX 1024
#define POOL_MAX_IDLE 16 /* kept-alive connections per pool (a VU visiting many origins) */

struct http_client {
    uv_loop_t *loop;
    timers *tm;
    http_client_config cfg; /* copy; its strings belong to the caller */
    conn_ctx cx;            /* owns dns, tls, sources, rbuf */
    url proxy[2];           /* [0] for http, [1] for https; host[0] == 0: none (targets owned) */
    char *no_proxy;         /* owned copy, or NULL */
};

/* A growing string; kept by its pool between requests so formatting one allocates nothing. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

/* One kept connection with its parser. Owned by its pool: in `idle` or as `active`. */
typedef struct pconn {
    struct pconn *next;
    http_pool *p;
    conn *c;   /* closed and dropped with the pconn */
    char *key; /* owned: origin key */
    llhttp_t parser;
    unsigned requests; /* exchanges started on it */
} pconn;

struct http_pool {
    http_client *c;
    cookie_jar *jar; /* owned */
    pconn *idle;     /* owned list */
    pconn *active;   /* owned: the connection of the request in flight */
    timer_entry tmr; /* the deferred delivery */
    /* The request timeout, disarmed lazily: it stays queued after a request ends, and when it fires
     * early (an earlier request's deadline) it moves on to `deadline`. No heap work per request. */
    timer_entry tmo;
    uint64_t deadline;
    /* The request in flight (busy). Everything here is owned by the pool until delivery. */
    int busy, finished, in_request;
    http_done_cb cb;
    void *ud;
    http_res *res;
    url u;           /* the request's URL, parsed; kept while requests name the same URL */
    char *u_src;     /* owned: the string `u` was parsed from, NULL when `u` is not valid */
    const char *key; /* the connection key: points into keyb */
    char *tls_ca, *tls_cert, *tls_key;
    conn_target tgt; /* strings point into u, the client's proxy and the tls_* copies */
    conn_out *out;   /* one reference */
    unsigned http10 : 1, no_cookies : 1, dump : 1;
    uint64_t t0, start_ns, t_send, t_sent, t_first;
    uint64_t t_read;    /* the clock when the bytes being parsed were read; 0 outside ev_data */
    uint64_t in0, out0; /* active connection's byte counters when it was taken */
    int retried, got_bytes, reused;
    http_msg msg;    /* the response reader, reused */
    sbuf head, keyb; /* owned scratch: the request head and the connection key, reused */
    /* What the head in `head` was built from, so a VU repeating a request reuses it as it is:
     * valid only for a head without cookies, built from the URL in u_src. */
    int head_valid, u_same;
    char head_method[16];
    size_t head_body_len;
    unsigned head_has_body : 1, head_http10 : 1, head_compr : 1;
    sbuf hsig;          /* the request's headers, as (length, bytes) pairs */
    conn_out *out_head; /* one reference: `head` ready to send, when it has no body */
};

static void call_finish(http_pool *p, int kind, const char *fmt, ...);
static void on_timeout(timer_entry *e);
static void call_send(http_pool *p);
static void call_open(http_pool *p);

/* ---- client ---- */

/* Parse a proxy URL ("host:port" gets http://) into u. */
static int proxy_parse(const char *s, url *u, char *err, size_t errlen)
{
    char buf[600];
    if (!strstr(s, "://")) {
        snprintf(buf, sizeof buf, "http://%s", s);
        s = buf;
    }
    if (url_parse(s, u, err, errlen) < 0) return -1;
    if (u->tls) {
        snprintf(err, errlen, "proxy %s: only http:// proxies are supported", s);
        url_free(u);
        return -1;
    }
    return 0;
}

static const char *getenv_any(const char *upper, const char *lower)
{
    const char *v = getenv(lower);
    if (!v || !*v) v = getenv(upper);
    return v && *v ? v : NULL;
}

static int client_proxies(http_client *c, char *err, size_t errlen)
{
    const char *hp = c->cfg.proxy ? c->cfg.proxy : getenv_any("HTTP_PROXY", "http_proxy");
    const char *sp = c->cfg.proxy ? c->cfg.proxy : getenv_any("HTTPS_PROXY", "https_proxy");
    if (hp && proxy_parse(hp, &c->proxy[0], err, errlen) < 0) return -1;
    if (sp && proxy_parse(sp, &c->proxy[1], err, errlen) < 0) return -1;
    const char *np = c->cfg.no_proxy ? c->cfg.no_proxy : getenv_any("NO_PROXY", "no_proxy");
    if (np && !(c->no_proxy = strdup(np))) return -1;
    return 0;
}

static int client_sources(http_client *c, char *err, size_t errlen)
{
    size_t n = 0;
    while (c->cfg.sources && c->cfg.sources[n])
        n++;
    if (!n) return 0;
    c->cx.sources = calloc(n, sizeof *c->cx.sources);
    if (!c->cx.sources) return -1;
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        const char *s = c->cfg.sources[i];
        size_t l = strlen(s);
        if (l >= 2 && s[0] == '[' && s[l - 1] == ']') s++, l -= 2;
        snprintf(ip, sizeof ip, "%.*s", (int)l, s);
        struct sockaddr_storage *ss = &c->cx.sources[i];
        if (uv_ip4_addr(ip, 0, (struct sockaddr_in *)ss) && uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)ss)) {
            snprintf(err, errlen, "bad source address \"%s\": want an IPv4 or IPv6 literal",
                     c->cfg.sources[i]);
            return -1;
        }
    }
    c->cx.nsources = n;
    return 0;
}

http_client *http_client_new(uv_loop_t *loop, timers *tm, const http_client_config *cfg, char *err,
                             size_t errlen)
{
    http_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    static const http_client_config none;
    c->loop = loop, c->tm = tm;
    c->cfg = cfg ? *cfg : none;
    c->cx.loop = loop, c->cx.tm = tm;
    c->cx.connect_timeout_ns = (c->cfg.connect_timeout_us ? c->cfg.connect_timeout_us : 10000000ULL) * 1000;
    c->cx.rbuf_len = 65536;
    err[0] = '\0';
    uint64_t ttl = c->cfg.dns_ttl_us ? c->cfg.dns_ttl_us : HTTP_DNS_TTL_US;
    if (!(c->cx.rbuf = malloc(c->cx.rbuf_len)) || client_sources(c, err, errlen) < 0 ||
        client_proxies(c, err, errlen) < 0 ||
        !(c->cx.dns = dns_cache_new(loop, ttl * 1000, c->cfg.resolve, err, errlen)) ||
        !(c->cx.tls = tls_client_new(c->cfg.ca_file, c->cfg.insecure, err, errlen))) {
        if (!err[0]) snprintf(err, errlen, "out of memory");
        http_client_free(c);
        return NULL;
    }
    return c;
}

void http_client_free(http_client *c)
{
    if (!c) return;
    dns_cache_free(c->cx.dns);
    tls_client_free(c->cx.tls);
    free(c->cx.sources);
    free(c->cx.rbuf);
    url_free(&c->proxy[0]);
    url_free(&c->proxy[1]);
    free(c->no_proxy);
    free(c);
}

void http_client_stats(const http_client *c, http_conn_stats *s)
{
    s->connections = c->cx.connections;
    s->tls_handshakes = c->cx.tls_handshakes;
    s->tls_resumed = c->cx.tls_resumed;
}

/* NO_PROXY: comma/space separated hosts or domain suffixes (leading dot optional), or "*". */
static int no_proxy_match(const char *list, const char *host)
{
    if (!list) return 0;
    size_t hl = strlen(host);
    const char *s = list;
    while (*s) {
        s += strspn(s, ", \t");
        size_t n = strcspn(s, ", \t");
        if (!n) break;
        const char *e = s;
        size_t el = n;
        if (el == 1 && *e == '*') return 1;
        if (*e == '.') e++, el--;
        if (el && (hl == el || (hl > el && host[hl - el - 1] == '.')) && !strncasecmp(host + hl - el, e, el))
            return 1;
        s += n;
    }
    return 0;
}

/* ---- pools and their connections ---- */

http_pool *http_pool_new(http_client *c)
{
    http_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->c = c;
    if (!(p->jar = cookie_jar_new())) {
        free(p);
        return NULL;
    }
    p->tmr.data = p->tmo.data = p;
    p->tmo.cb = on_timeout;
    return p;
}

cookie_jar *http_pool_cookies(http_pool *p) { return p->jar; }

static void pconn_drop(pconn *pc)
{
    if (!pc) return;
    conn_close(pc->c);
    free(pc->key);
    free(pc);
}

static void idle_remove(http_pool *p, pconn *pc)
{
    for (pconn **pp = &p->idle; *pp; pp = &(*pp)->next)
        if (*pp == pc) {
            *pp = pc->next;
            return;
        }
}

/* Keep at most POOL_MAX_IDLE idle connections: the least recently used go. */
static void idle_trim(http_pool *p)
{
    size_t n = 0;
    for (pconn **pp = &p->idle; *pp; pp = &(*pp)->next)
        if (++n == POOL_MAX_IDLE) {
            while ((*pp)->next) {
                pconn *old = (*pp)->next;
                (*pp)->next = old->next;
                pconn_drop(old);
            }
            return;
        }
}

void http_pool_close_idle(http_pool *p)
{
    while (p->idle) {
        pconn *pc = p->idle;
        p->idle = pc->next;
        pconn_drop(pc);
    }
}

int http_pool_close_idle_to(http_pool *p, const char *origin_url)
{
    url u;
    char err[200], prefix[600];
    if (url_parse(origin_url, &u, err, sizeof err) < 0) return -1;
    /* a connection key starts "p|host|port" or "s|host|port" (see conn_key) */
    int n = snprintf(prefix, sizeof prefix, "%s|%s|%d", u.tls ? "s" : "p", u.host, u.port);
    url_free(&u);
    if (n < 0 || (size_t)n >= sizeof prefix) return -1;
    for (pconn **pp = &p->idle; *pp;) {
        pconn *pc = *pp;
        if (!strncmp(pc->key, prefix, (size_t)n) && (pc->key[n] == '\0' || pc->key[n] == '|')) {
            *pp = pc->next;
            pconn_drop(pc);
        } else {
            pp = &pc->next;
        }
    }
    return 0;
}

/* Release what the request in flight owns, except `res`. */
static void call_release(http_pool *p)
{
    timers_del(p->c->tm, &p->tmr);
    pconn_drop(p->active);
    p->active = NULL;
    conn_out_release(p->out);
    p->out = NULL;
    free(p->tls_ca), free(p->tls_cert), free(p->tls_key);
    p->tls_ca = p->tls_cert = p->tls_key = NULL;
    p->key = NULL;
    http_msg_finish(&p->msg);
}

void http_pool_free(http_pool *p)
{
    if (!p) return;
    if (p->busy) {
        call_release(p);
        http_res_free(p->res);
    }
    timers_del(p->c->tm, &p->tmo);
    http_msg_free(&p->msg);
    http_pool_close_idle(p);
    cookie_jar_free(p->jar);
    conn_out_release(p->out_head);
    free(p->head.p);
    free(p->keyb.p);
    free(p->hsig.p);
    url_free(&p->u);
    free(p->u_src);
    free(p);
}

/* ---- connection events ---- */

static void account_bytes(http_pool *p)
{
    if (!p->active) return;
    uint64_t in, out;
    conn_get_bytes(p->active->c, &in, &out);
    p->res->bytes_in += in - p->in0;
    p->res->bytes_out += out - p->out0;
    p->in0 = in, p->out0 = out;
}

static void ev_ready(conn *c, void *ud)
{
    (void)c;
    pconn *pc = ud;
    http_pool *p = pc->p;
    conn_times t;
    conn_get_times(pc->c, &t);
    p->res->dns_us = t.dns_ns / 1000;
    p->res->connect_us = t.connect_ns / 1000;
    p->res->tls_us = t.tls_ns / 1000;
    call_send(p);
}

static void ev_sent(conn *c, void *ud, int status)
{
    (void)c, (void)status;
    pconn *pc = ud;
    if (pc->p->active == pc && !pc->p->t_sent) pc->p->t_sent = uv_hrtime();
}

static void ev_fail(conn *c, void *ud, int kind, const char *msg)
{
    (void)c;
    pconn *pc = ud;
    http_pool *p = pc->p;
    if (p->active != pc) { /* cannot happen: only the active connection is being established */
        idle_remove(p, pc);
        pconn_drop(pc);
        return;
    }
    account_bytes(p);
    call_finish(p, kind, "%s", msg);
}

/* The active connection broke before the response was complete. */
static void conn_lost(http_pool *p, int uverr)
{
    if (p->reused && !p->got_bytes && !p->retried) {
        /* The server closed the kept-alive connection while it sat idle: try once more, fresh. */
        account_bytes(p);
        pconn_drop(p->active);
        p->active = NULL;
        p->retried = 1;
        call_open(p);
        return;
    }
    account_bytes(p);
    if (uverr)
        call_finish(p, ERR_RESET, "%s (%s)", uv_strerror(uverr), conn_peer(p->active->c));
    else
        call_finish(p, ERR_RESET, "connection closed %s (%s)",
                    p->got_bytes ? "mid-response" : "before any response", conn_peer(p->active->c));
}

static void ev_end(conn *c, void *ud, int uverr)
{
    (void)c;
    pconn *pc = ud;
    http_pool *p = pc->p;
    if (p->active != pc) { /* an idle connection closed by the server */
        idle_remove(p, pc);
        pconn_drop(pc);
        return;
    }
    if (uverr == 0 && p->got_bytes && !p->msg.err_kind) {
        llhttp_finish(&pc->parser); /* completes a close-delimited body */
        if (p->msg.complete && http_msg_eof(&p->msg) == 0) {
            p->msg.keep_alive = 0;
            account_bytes(p);
            call_finish(p, ERR_NONE, NULL);
            return;
        }
    }
    if (p->msg.err_kind) {
        call_finish(p, p->msg.err_kind, "%s", p->msg.err_msg);
        return;
    }
    conn_lost(p, uverr);
}

static void ev_data(conn *c, void *ud, const char *buf, size_t n)
{
    (void)c;
    pconn *pc = ud;
    http_pool *p = pc->p;
    if (p->active != pc) { /* bytes on an idle connection: nothing is asked, so do not trust it */
        idle_remove(p, pc);
        pconn_drop(pc);
        return;
    }
    p->t_read = uv_hrtime(); /* when these bytes came: the first byte's time, or the end's */
    if (!p->got_bytes) {
        p->got_bytes = 1;
        p->t_first = p->t_read;
    }
    llhttp_errno_t e = http_msg_execute(&p->msg, &pc->parser, buf, n);
    if (e == HPE_OK) {
        p->t_read = 0;
        return;
    }
    account_bytes(p);
    if (e == HPE_PAUSED && p->msg.complete) {
        if (llhttp_get_error_pos(&pc->parser) != buf + n) p->msg.keep_alive = 0; /* extra bytes: unsafe */
        call_finish(p, ERR_NONE, NULL);
    } else if (p->msg.err_kind) {
        call_finish(p, p->msg.err_kind, "%s", p->msg.err_msg);
    } else {
        call_finish(p, ERR_PROTOCOL, "bad response from %s: %s (%s)", p->u.host,
                    llhttp_get_error_reason(&pc->parser), llhttp_errno_name(e));
    }
}

static const conn_events events = {
    .ready = ev_ready,
    .data = ev_data,
    .end = ev_end,
    .fail = ev_fail,
    .sent = ev_sent,
};

/* ---- the request in flight ---- */

static void call_open(http_pool *p)
{
    pconn *pc = calloc(1, sizeof *pc);
    if (pc) pc->key = strdup(p->key);
    if (!pc || !pc->key) {
        free(pc);
        call_finish(p, ERR_CONNECT, "out of memory");
        return;
    }
    pc->p = p;
    llhttp_init(&pc->parser, HTTP_RESPONSE, &http_msg_settings);
    pc->parser.data = &p->msg;
    p->active = pc;
    p->in0 = p->out0 = 0;
    p->reused = 0;
    pc->c = conn_open(&p->c->cx, &p->tgt, &events, pc);
    if (!pc->c) {
        p->active = NULL;
        free(pc->key);
        free(pc);
        call_finish(p, ERR_CONNECT, "out of memory");
    }
}

static void call_send(http_pool *p)
{
    pconn *pc = p->active;
    p->reused = pc->requests > 0;
    p->res->reused = p->reused;
    pc->requests++;
    llhttp_reset(&pc->parser);
    http_msg_start(&p->msg);
    p->got_bytes = 0;
    /* sent from inside http_request (a kept-alive connection): the request's start will do */
    p->t_send = p->in_request ? p->t0 : uv_hrtime();
    p->t_sent = 0;
    int rc = conn_write(pc->c, p->out);
    if (rc < 0) {
        conn_close(pc->c);
        conn_lost(p, rc);
    }
}

static void on_deliver(timer_entry *e)
{
    http_pool *p = e->data;
    http_res *r = p->res;
    http_done_cb cb = p->cb;
    void *ud = p->ud;
    p->res = NULL;
    p->busy = p->finished = 0;
    cb(r, ud); /* may start the next request, or free the pool */
}

static void on_timeout(timer_entry *e)
{
    http_pool *p = e->data;
    if (!p->busy || p->finished) return; /* no request in flight: stays disarmed */
    if (uv_hrtime() < p->deadline) {     /* an earlier request's deadline */
        timers_add(p->c->tm, &p->tmo, p->deadline);
        return;
    }
    account_bytes(p);
    uint64_t us = (uv_hrtime() - p->t0) / 1000;
    call_finish(p, ERR_TIMEOUT, "timeout after %.3f s (%s)", (double)us / 1e6, p->res->url);
}

static void dump_exchange(http_pool *p);

/* End the request: the connection goes back to the pool when it can carry another exchange,
 * otherwise it closes. The callback runs now, or from the loop when we are inside http_request
 * or http_cancel. */
static void call_finish(http_pool *p, int kind, const char *fmt, ...)
{
    http_res *r = p->res;
    uint64_t now = p->t_read ? p->t_read : uv_hrtime();
    p->t_read = 0;
    if (p->finished) return;
    p->finished = 1;
    r->err = kind;
    if (fmt) {
        char msg[HTTP_ERRMSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        char *own = msg[0] ? strdup(msg) : NULL;
        if (own) {
            if (r->errmsg[0]) free((char *)r->errmsg);
            r->errmsg = own;
        }
    }
    pconn *pc = p->active;
    if (pc && kind == ERR_NONE && p->msg.keep_alive && !p->http10) {
        p->active = NULL;
        pc->next = p->idle;
        p->idle = pc;
        idle_trim(p);
    }
    /* Phases: dns/connect/tls from the connection; send_us from the first byte written to the
     * last handed to the socket; ttfb_us from then to the first response byte; total_us from the
     * http_request call; latency_us from req.start_ns when given. */
    r->total_us = (now - p->t0) / 1000;
    r->latency_us = (now - (p->start_ns && p->start_ns <= now ? p->start_ns : p->t0)) / 1000;
    if (p->t_send) r->send_us = p->t_sent > p->t_send ? (p->t_sent - p->t_send) / 1000 : 0;
    if (p->t_first)
        r->ttfb_us = (p->t_first - (p->t_sent && p->t_sent < p->t_first ? p->t_sent : p->t_send)) / 1000;
    if (p->dump) dump_exchange(p);
    call_release(p);
    p->tmr.cb = on_deliver;
    if (p->in_request || kind == ERR_CANCELLED)
        timers_add(p->c->tm, &p->tmr, uv_hrtime()); /* now: deadline 0 would read as "unarmed" */
    else
        on_deliver(&p->tmr);
}

/* ---- request building ---- */

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_uint(sbuf *b, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do
        d[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i);
    sb_add(b, d + i, sizeof d - i);
}

/* "host[:port]" as the Host header wants it (see url_host_header), without printf. */
static void sb_host(sbuf *b, const url *u)
{
    int v6 = strchr(u->host, ':') != NULL;
    if (v6) sb_add(b, "[", 1);
    sb_str(b, u->host);
    if (v6) sb_add(b, "]", 1);
    if (u->port != (u->tls ? 443 : 80)) {
        sb_add(b, ":", 1);
        sb_uint(b, (unsigned)u->port);
    }
}

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int has_header(const http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && !strncasecmp(req->headers[i].name, name, n)) return 1;
    return 0;
}

static void sb_basic_auth(sbuf *b, const char *header, const char *userinfo)
{
    unsigned char out[400];
    size_t olen = 0;
    if (mbedtls_base64_encode(out, sizeof out, &olen, (const unsigned char *)userinfo, strlen(userinfo)))
        return;
    sb_printf(b, "%s: Basic %.*s\r\n", header, (int)olen, out);
}

/* The path part of the target, for cookies. */
static void target_path(const char *target, char *out, size_t outlen)
{
    size_t n = strcspn(target, "?");
    snprintf(out, outlen, "%.*s", (int)n, target);
}

static void sb_cookies(http_pool *p, sbuf *b)
{
    if (cookie_jar_size(p->jar) == 0) return;
    char path[2048], small[4096];
    target_path(p->u.target, path, sizeof path);
    char *buf = small;
    size_t cap = sizeof small;
    int n;
    while ((n = cookie_jar_header(p->jar, p->u.host, path, p->u.tls, (int64_t)time(NULL), buf, cap)) < 0 &&
           cap < (1u << 20)) {
        if (buf != small) free(buf);
        cap *= 4;
        if (!(buf = malloc(cap))) return;
    }
    if (n > 0) {
        sb_str(b, "Cookie: ");
        sb_add(b, buf, (size_t)n);
        sb_str(b, "\r\n");
    }
    if (buf != small) free(buf);
}

/* The request's headers as they are recorded in hsig: each name and value with its length. */
static void hsig_put(sbuf *b, const char *s, size_t n)
{
    sb_add(b, (const char *)&n, sizeof n);
    sb_add(b, s, n);
}

static int hsig_same(const sbuf *b, const http_req *req)
{
    size_t off = 0;
    for (size_t i = 0; i < 2 * req->nheaders; i++) {
        const http_header *h = &req->headers[i / 2];
        const char *s = i % 2 ? h->value : h->name;
        size_t n = i % 2 ? h->value_len : h->name_len, m;
        if (off + sizeof m > b->len) return 0;
        memcpy(&m, b->p + off, sizeof m);
        off += sizeof m;
        if (m != n || off + n > b->len || memcmp(b->p + off, s, n)) return 0;
        off += n;
    }
    return off == b->len;
}

/* Whether p->head already holds this request's head (same URL, method, headers, body length and
 * flags, and no cookies to send): a VU repeating a request formats it once. */
static int head_reusable(http_pool *p, const http_req *req, const char *method)
{
    return p->head_valid && p->u_same && (p->no_cookies || cookie_jar_size(p->jar) == 0) &&
           p->head_body_len == req->body_len && p->head_has_body == (req->body != NULL) &&
           p->head_http10 == p->http10 && p->head_compr == p->msg.compression &&
           !strcmp(p->head_method, method) && hsig_same(&p->hsig, req);
}

/* Remember what p->head was built from (see head_reusable). */
static void head_remember(http_pool *p, const http_req *req, const char *method)
{
    p->head_valid = 0;
    if (strlen(method) >= sizeof p->head_method || (!p->no_cookies && cookie_jar_size(p->jar) != 0)) return;
    sbuf *g = &p->hsig;
    g->len = 0, g->oom = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        hsig_put(g, req->headers[i].name, req->headers[i].name_len);
        hsig_put(g, req->headers[i].value, req->headers[i].value_len);
    }
    if (g->oom) return;
    strcpy(p->head_method, method);
    p->head_body_len = req->body_len;
    p->head_has_body = req->body != NULL;
    p->head_http10 = p->http10;
    p->head_compr = p->msg.compression;
    p->head_valid = 1;
}

/* Format the request (head + body) into p->out. The head is built in the pool's reused buffer,
 * or taken as it is when the VU repeats its last request. */
static int build_request(http_pool *p, const http_req *req, const url *proxy)
{
    sbuf *b = &p->head;
    const char *method = req->method && *req->method ? req->method : "GET";
    if (head_reusable(p, req, method)) goto emit;
    b->len = 0, b->oom = 0;
    sb_str(b, method);
    sb_add(b, " ", 1);
    if (proxy && !p->u.tls) { /* absolute-form for the proxy */
        sb_str(b, "http://");
        sb_host(b, &p->u);
    }
    sb_str(b, p->u.target);
    sb_str(b, p->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (!has_header(req, "Host")) {
        sb_str(b, "Host: ");
        sb_host(b, &p->u);
        sb_add(b, "\r\n", 2);
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const http_header *h = &req->headers[i];
        sb_add(b, h->name, h->name_len);
        sb_add(b, ": ", 2);
        sb_add(b, h->value, h->value_len);
        sb_add(b, "\r\n", 2);
    }
    if (!has_header(req, "User-Agent")) sb_str(b, "User-Agent: " USER_AGENT "\r\n");
    int wants_len = req->body_len || req->body || !strcasecmp(method, "POST") || !strcasecmp(method, "PUT") ||
                    !strcasecmp(method, "PATCH");
    if (wants_len && !has_header(req, "Content-Length") && !has_header(req, "Transfer-Encoding")) {
        sb_str(b, "Content-Length: ");
        sb_uint(b, req->body_len);
        sb_add(b, "\r\n", 2);
    }
    if (p->msg.compression && !has_header(req, "Accept-Encoding"))
        sb_str(b, "Accept-Encoding: gzip, deflate\r\n");
    if (p->u.userinfo[0] && !has_header(req, "Authorization"))
        sb_basic_auth(b, "Authorization", p->u.userinfo);
    if (proxy && !p->u.tls && proxy->userinfo[0]) sb_basic_auth(b, "Proxy-Authorization", proxy->userinfo);
    if (!p->no_cookies && !has_header(req, "Cookie")) sb_cookies(p, b);
    sb_add(b, "\r\n", 2);
    if (b->oom) {
        p->head_valid = 0;
        return -1;
    }
    head_remember(p, req, method);
    conn_out_release(p->out_head);
    p->out_head = NULL;
emit:
    if (p->out_head && !req->body_len) { /* the same bytes as last time: send them again */
        p->out = p->out_head;
        p->out->refs++;
        return 0;
    }
    if (!(p->out = conn_out_new(b->len + req->body_len))) return -1;
    memcpy(p->out->data, b->p, b->len);
    if (req->body_len) memcpy(p->out->data + b->len, req->body, req->body_len);
    p->out->head_len = b->len;
    if (!req->body_len && p->head_valid) { /* kept for a repeat (see head_reusable) */
        p->out_head = p->out;
        p->out->refs++;
    }
    return 0;
}

/* The key of the connections a request may reuse: scheme, origin, route and TLS options, in the
 * pool's reused buffer ('|' separated; the fields cannot hold one ambiguously where it matters). */
static const char *conn_key(http_pool *p, const http_req *req, const url *proxy)
{
    sbuf *b = &p->keyb;
    b->len = 0, b->oom = 0;
    sb_add(b, p->u.tls ? "s|" : "p|", 2);
    sb_str(b, p->u.host);
    sb_add(b, "|", 1);
    sb_uint(b, (unsigned)p->u.port);
    if (proxy) {
        sb_add(b, "|", 1);
        sb_str(b, proxy->host);
        sb_add(b, ":", 1);
        sb_uint(b, (unsigned)proxy->port);
    }
    if (p->u.tls) {
        sb_str(b, req->insecure ? "|k|" : "|v|");
        sb_str(b, req->tls_ca ? req->tls_ca : "");
        sb_add(b, "|", 1);
        sb_str(b, req->tls_cert ? req->tls_cert : "");
        sb_add(b, "|", 1);
        sb_str(b, req->tls_key ? req->tls_key : "");
    }
    sb_add(b, "", 0);
    return b->oom || !b->p ? NULL : b->p;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Decide the route (proxy or not) and the connection key, then format the request. */
static int call_prepare(http_pool *p, const http_req *req)
{
    char err[200];
    p->u_same = p->u_src && !strcmp(p->u_src, req->url);
    if (!p->u_same) { /* a VU mostly repeats its URLs */
        if (p->u_src) url_free(&p->u);
        free(p->u_src);
        p->u_src = NULL;
        if (url_parse(req->url, &p->u, err, sizeof err) < 0) {
            call_finish(p, ERR_URL, "%s", err);
            return -1;
        }
        if (!(p->u_src = strdup(req->url))) {
            url_free(&p->u);
            call_finish(p, ERR_URL, "out of memory");
            return -1;
        }
    }
    p->msg.host = p->u.host, p->msg.target = p->u.target, p->msg.secure = p->u.tls;
    http_client *c = p->c;
    const url *proxy = c->proxy[p->u.tls].host[0] ? &c->proxy[p->u.tls] : NULL;
    if (proxy && no_proxy_match(c->no_proxy, p->u.host)) proxy = NULL;
    p->tls_ca = dup_or_null(req->tls_ca);
    p->tls_cert = dup_or_null(req->tls_cert);
    p->tls_key = dup_or_null(req->tls_key);
    p->tgt = (conn_target){
        .host = p->u.host,
        .port = p->u.port,
        .tls = p->u.tls,
        .proxy_host = proxy ? proxy->host : NULL,
        .proxy_port = proxy ? proxy->port : 0,
        .proxy_auth = proxy && proxy->userinfo[0] ? proxy->userinfo : NULL,
        .tls_opts = {.insecure = req->insecure, .ca = p->tls_ca, .cert = p->tls_cert, .key = p->tls_key},
        .connect_timeout_ns = req->connect_timeout_us * 1000,
    };
    /* keyb holds the key of the URL in u_src; a plain http key depends on the URL alone (and the
     * client's proxy settings), so a VU repeating its URL keeps it */
    int keep = p->u_same && !p->u.tls && p->keyb.p && !p->keyb.oom;
    if (!(p->key = keep ? p->keyb.p : conn_key(p, req, proxy))) {
        call_finish(p, ERR_URL, "out of memory");
        return -1;
    }
    if (build_request(p, req, proxy) < 0) {
        call_finish(p, ERR_URL, "out of memory building the request for %s", req->url);
        return -1;
    }
    return 0;
}

int http_request(http_pool *p, const http_req *req, http_done_cb cb, void *ud)
{
    if (p->busy) return -1;
    http_client *c = p->c;
    p->busy = 1, p->finished = 0, p->in_request = 1;
    p->cb = cb, p->ud = ud;
    p->t0 = uv_hrtime();
    p->start_ns = req->start_ns;
    const char *u = req->url ? req->url : "";
    size_t ulen = strlen(u);
    /* the URL after the struct, then room for a head up to HTTP_HEAD_ROOM bytes (see head_take):
     * one allocation, malloc + memset (glibc's calloc skips its per-thread cache) */
    p->res = malloc(sizeof *p->res + ulen + 1 + HTTP_HEAD_ROOM);
    if (!p->res) abort(); /* nothing sensible to report through */
    memset(p->res, 0, sizeof *p->res);
    p->res->url = (char *)(p->res + 1);
    p->res->errmsg = "";
    memcpy(p->res->url, u, ulen + 1);
    p->http10 = req->http10, p->no_cookies = req->no_cookies;
    p->retried = 0, p->t_send = p->t_sent = p->t_first = 0, p->got_bytes = 0;
    http_msg *m = &p->msg;
    m->res = p->res;
    m->jar = req->no_cookies ? NULL : p->jar;
    m->host = m->target = ""; /* set once the URL parsed */
    m->max_body = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY;
    m->is_head = req->method && !strcasecmp(req->method, "HEAD");
    m->compression = req->compression, m->discard = req->discard_body;
    http_msg_start(m);
    int *dl = c->cfg.dump_left;
    p->dump =
        dl && __atomic_load_n(dl, __ATOMIC_RELAXED) > 0 && __atomic_sub_fetch(dl, 1, __ATOMIC_RELAXED) >= 0;
    p->deadline = p->t0 + (req->timeout_us ? req->timeout_us : HTTP_DEFAULT_TIMEOUT_US) * 1000;
    if (!timers_pending(&p->tmo) || p->tmo.deadline_ns > p->deadline) timers_add(c->tm, &p->tmo, p->deadline);
    if (call_prepare(p, req) == 0) {
        pconn *pc = NULL;
        for (pconn *x = p->idle; x; x = x->next)
            if (!strcmp(x->key, p->key)) pc = x;
        if (pc) {
            idle_remove(p, pc);
            p->active = pc;
            conn_get_bytes(pc->c, &p->in0, &p->out0);
            call_send(p);
        } else {
            call_open(p);
        }
    }
    p->in_request = 0;
    return 0;
}

void http_cancel(http_pool *p)
{
    if (!p->busy || p->finished) return;
    account_bytes(p);
    call_finish(p, ERR_CANCELLED, "cancelled (%s)", p->res->url);
}

void http_res_free(http_res *res)
{
    if (!res) return;
    if (res->errmsg && res->errmsg[0]) free((char *)res->errmsg);
    if (res->head != http_res_head_room(res)) free(res->head);
    free(res->body);
    free(res);
}

/* ---- dump (--http-debug style) ---- */

static void dump_body(const char *b, size_t n, uint64_t total)
{
    if (!b || !n) return;
    size_t k = n < DUMP_BODY_MAX ? n : DUMP_BODY_MAX;
    fwrite(b, 1, k, stderr);
    if (total > k) fprintf(stderr, "\n[... %llu more bytes]", (unsigned long long)(total - k));
    fputc('\n', stderr);
}

static void dump_exchange(http_pool *p)
{
    http_res *r = p->res;
    flockfile(stderr);
    fprintf(stderr, "----- loadParrot request %s -----\n", r->url);
    if (p->out) {
        fwrite(p->out->data, 1, p->out->head_len, stderr);
        dump_body(p->out->data + p->out->head_len, p->out->len - p->out->head_len,
                  p->out->len - p->out->head_len);
    }
    fprintf(stderr, "----- response -----\n");
    if (r->status && r->head) {
        fwrite(r->head, 1, r->head_len, stderr); /* the empty line included */
        if (!r->body && r->body_bytes)
            fprintf(stderr, "[%llu bytes of body, not kept (discard_body)]\n",
                    (unsigned long long)r->body_bytes);
        else
            dump_body(r->body, r->body_len, r->body_bytes);
    }
    if (r->err) fprintf(stderr, "error: %s\n", r->errmsg);
    fprintf(stderr, "----- end (%llu us) -----\n", (unsigned long long)r->total_us);
    funlockfile(stderr);
}
