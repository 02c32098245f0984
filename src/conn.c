/* conn: the transport state machine, as small static callbacks in the order bytes flow:
 * resolve -> connect (next address on failure) -> CONNECT tunnel -> TLS handshake -> ready.
 * A connection always holds an initialized uv_tcp_t and is freed in its close callback, so
 * every libuv callback (connect, write, read) can still look at it after conn_close. */
#include "conn.h"

#include <llhttp.h>
#include <mbedtls/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

enum { C_RESOLVING, C_CONNECTING, C_TUNNEL, C_TLS_WAIT, C_HANDSHAKE, C_READY };

/* How long a new TLS connection waits for its origin's first handshake before going on alone. */
#define TLS_WAIT_MAX_NS 1000000000ULL

/* The transport's half of the state machine: how bytes become plaintext and back. */
typedef struct sock_ops {
    void (*established)(conn *c);                         /* TCP (and tunnel) up */
    void (*readable)(conn *c, const char *buf, size_t n); /* bytes from the socket */
    int (*write)(conn *c, conn_out *o);                   /* application bytes out */
} sock_ops;

struct conn {
    conn_ctx *x;
    const conn_events *ev;
    void *ud;
    const sock_ops *ops;
    uv_tcp_t tcp; /* always initialized; its close callback frees the conn */
    uv_connect_t creq;
    timer_entry tmr;             /* connect timeout, a deferred failure, or the end of a TLS wait */
    uint64_t deadline_ns;        /* the connect timeout (uv_hrtime) */
    conn *wait_prev, *wait_next; /* in x->tls_waiters while C_TLS_WAIT */
    int state, closed, retrying;
    char *host, *proxy_host, *proxy_auth; /* owned */
    int port, proxy_port;
    tls_opts tls_opts; /* owned strings */
    dns_query *dq;     /* running lookup, or NULL */
    dns_result *addrs; /* owned while connecting (the answer to try in turn); NULL once connected */
    size_t ai;         /* address being tried */
    int last_err;      /* libuv error of the last connect attempt */
    tls_conn *tls;     /* owned; NULL for plain */
    llhttp_t *tunnel;  /* owned while reading the proxy's CONNECT answer */
    uint64_t t0, bytes_in, bytes_out;
    conn_times times;
    int pending_kind; /* a failure found inside conn_open, delivered from the loop */
    char pending_msg[160];
    char peer[64];
};

/* One uv_write: holds a reference to `o` or owns `raw`. Freed in its callback. */
typedef struct wreq {
    uv_write_t req;
    conn *c;
    conn_out *o;
    char *raw;
    int notify; /* emit `sent` when done */
} wreq;

static void try_connect(conn *c);
static void wait_enter(conn *c);
static void wait_leave(conn *c);
static void wait_wake(conn_ctx *x);
static void wait_over(conn *c);

conn_out *conn_out_new(size_t len)
{
    conn_out *o = malloc(sizeof *o + len + 1);
    if (!o) return NULL;
    o->refs = 1;
    o->head_len = o->len = len;
    return o;
}

void conn_out_release(conn_out *o)
{
    if (o && --o->refs == 0) free(o);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void on_closed(uv_handle_t *h)
{
    conn *c = h->data;
    free(c->host), free(c->proxy_host), free(c->proxy_auth);
    free(c->addrs);
    free((char *)c->tls_opts.ca), free((char *)c->tls_opts.cert), free((char *)c->tls_opts.key);
    free(c);
}

void conn_close(conn *c)
{
    if (!c || c->closed) return;
    c->closed = 1;
    timers_del(c->x->tm, &c->tmr);
    dns_cancel(c->dq);
    c->dq = NULL;
    if (c->state == C_TLS_WAIT) wait_leave(c);
    int first = c->tls && tls_conn_first(c->tls);
    tls_conn_free(c->tls);
    c->tls = NULL;
    if (first) wait_wake(c->x); /* only arms timers: no event from inside conn_close */
    free(c->tunnel);
    c->tunnel = NULL;
    if (!c->retrying) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Establishing failed: close, then tell the owner (deferred when still inside conn_open). */
static void conn_fail(conn *c, int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->pending_msg, sizeof c->pending_msg, fmt, ap);
    va_end(ap);
    c->pending_kind = kind;
    if (c->t0 == 0) { /* inside conn_open */
        timers_add(c->x->tm, &c->tmr, uv_hrtime());
        return;
    }
    const conn_events *ev = c->ev;
    conn_close(c);
    ev->fail(c, c->ud, kind, c->pending_msg);
}

/* After ready: the peer closed or an I/O error. */
static void conn_end(conn *c, int uverr)
{
    if (c->closed) return;
    if (c->state != C_READY) {
        const char *what = uverr == UV_EOF ? "connection closed" : uv_strerror(uverr);
        if (c->state == C_TUNNEL)
            conn_fail(c, ERR_PROXY, "proxy %s:%d: %s during CONNECT", c->proxy_host, c->proxy_port, what);
        else if (c->state == C_HANDSHAKE || c->state == C_TLS_WAIT)
            conn_fail(c, ERR_TLS, "tls: %s during the handshake (%s)", what, c->peer);
        else
            conn_fail(c, ERR_CONNECT, "connect: %s (%s)", what, c->peer);
        return;
    }
    const conn_events *ev = c->ev;
    conn_close(c);
    ev->end(c, c->ud, uverr == UV_EOF ? 0 : uverr);
}

static void on_timer(timer_entry *e)
{
    conn *c = e->data;
    if (c->pending_kind) {
        const conn_events *ev = c->ev;
        conn_close(c);
        ev->fail(c, c->ud, c->pending_kind, c->pending_msg);
        return;
    }
    if (c->state == C_TLS_WAIT && uv_hrtime() < c->deadline_ns) {
        wait_over(c);
        return;
    }
    conn_fail(c, ERR_CONNECT, "connect timeout (%s)", c->peer[0] ? c->peer : c->host);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    conn_out_release(w->o);
    free(w->raw);
    int notify = w->notify;
    free(w);
    if (c->closed) return;
    if (status < 0) {
        conn_end(c, status);
        return;
    }
    if (notify) c->ev->sent(c, c->ud, 0);
}

/* Send bytes: `o` (a reference is taken while queued) or `raw` (ownership passes). The common
 * case, a socket with room and nothing queued, is one write(2) and no request object; only what
 * the kernel did not take goes through uv_write. */
static int raw_write(conn *c, conn_out *o, char *raw, size_t rawlen, int notify)
{
    uv_buf_t bufs[2];
    unsigned n = 0;
    if (o) {
        bufs[n++] = uv_buf_init(o->data, (unsigned)o->head_len);
        if (o->len > o->head_len)
            bufs[n++] = uv_buf_init(o->data + o->head_len, (unsigned)(o->len - o->head_len));
        c->bytes_out += o->len;
    } else {
        bufs[n++] = uv_buf_init(raw, (unsigned)rawlen);
        c->bytes_out += rawlen;
    }
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int done = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (done == (int)total) {
        free(raw);
        if (notify) c->ev->sent(c, c->ud, 0); /* only notes the time: safe from inside the call */
        return 0;
    }
    if (done > 0) { /* skip what went out */
        size_t skip = (size_t)done;
        unsigned k = 0;
        while (k < n && skip >= bufs[k].len)
            skip -= bufs[k++].len;
        for (unsigned i = k; i < n; i++)
            bufs[i - k] = bufs[i];
        n -= k;
        bufs[0].base += skip;
        bufs[0].len -= skip;
    } else if (done != UV_EAGAIN && done != UV_ENOSYS) {
        free(raw);
        return done;
    }
    wreq *w = calloc(1, sizeof *w);
    if (!w) {
        free(raw);
        return UV_ENOMEM;
    }
    if (o) o->refs++;
    w->c = c, w->o = o, w->raw = raw, w->notify = notify;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
    if (rc < 0) {
        conn_out_release(o);
        free(raw);
        free(w);
    }
    return rc;
}

static void become_ready(conn *c)
{
    c->state = C_READY;
    timers_del(c->x->tm, &c->tmr);
    c->ev->ready(c, c->ud);
}

/* ---- plain TCP ---- */

static void plain_established(conn *c) { become_ready(c); }

static void plain_readable(conn *c, const char *buf, size_t n) { c->ev->data(c, c->ud, buf, n); }

static int plain_write(conn *c, conn_out *o) { return raw_write(c, o, NULL, 0, 1); }

static const sock_ops plain_ops = {
    .established = plain_established,
    .readable = plain_readable,
    .write = plain_write,
};

/* ---- TLS (mbedTLS fed from uv reads; its output queued to uv_write) ---- */

static int tls_flush(conn *c, int notify)
{
    size_t len = 0;
    char *p = tls_conn_take_out(c->tls, &len);
    if (!p) return 0;
    return raw_write(c, NULL, p, len, notify);
}

static void tls_drain(conn *c)
{
    char plain[16384], err[160];
    while (!c->closed) {
        int n = tls_conn_read(c->tls, plain, sizeof plain, err, sizeof err);
        if (n > 0) {
            c->ev->data(c, c->ud, plain, (size_t)n);
            continue;
        }
        if (n == 0) break;
        conn_end(c, n == TLS_EOF ? UV_EOF : UV_EPROTO);
        return;
    }
    if (!c->closed && tls_flush(c, 0) < 0) conn_end(c, UV_EPIPE);
}

static void tls_step(conn *c)
{
    char err[160];
    int first = tls_conn_first(c->tls);
    int rc = tls_conn_handshake(c->tls, err, sizeof err);
    if (first && !tls_conn_first(c->tls)) wait_wake(c->x); /* its session (if any) is cached now */
    if (rc >= 0 && tls_flush(c, 0) < 0) rc = -1, snprintf(err, sizeof err, "tls: write failed");
    if (rc < 0) {
        conn_fail(c, ERR_TLS, "%s (%s)", err, c->peer);
        return;
    }
    if (rc == 1) return;
    c->times.tls_ns = uv_hrtime() - c->t0 - c->times.dns_ns - c->times.connect_ns;
    c->x->tls_handshakes++;
    if (tls_conn_resumed(c->tls)) c->x->tls_resumed++;
    become_ready(c);
    if (!c->closed) tls_drain(c);
}

/* The key of the session cache and of the first-handshake wait. */
static void origin_of(const conn *c, char *buf, size_t n) { snprintf(buf, n, "%s:%d", c->host, c->port); }

static void tls_start(conn *c)
{
    char err[160], origin[300];
    origin_of(c, origin, sizeof origin);
    c->tls = tls_conn_new(c->x->tls, &c->tls_opts, c->host, origin, err, sizeof err);
    if (!c->tls) {
        conn_fail(c, ERR_TLS, "%s", err);
        return;
    }
    c->state = C_HANDSHAKE;
    tls_step(c);
}

static void tls_established(conn *c)
{
    char err[160], origin[300];
    if (!c->x->tls && !(c->x->tls = tls_client_new(NULL, 0, err, sizeof err))) {
        conn_fail(c, ERR_TLS, "%s", err);
        return;
    }
    origin_of(c, origin, sizeof origin);
    if (tls_client_should_wait(c->x->tls, &c->tls_opts, origin)) {
        c->state = C_TLS_WAIT;
        wait_enter(c);
        return;
    }
    tls_start(c);
}

static void tls_readable(conn *c, const char *buf, size_t n)
{
    if (!c->tls) { /* still waiting: a TLS server speaks only after our ClientHello */
        conn_fail(c, ERR_TLS, "tls: the server sent data before the handshake (%s)", c->peer);
        return;
    }
    if (tls_conn_feed(c->tls, buf, n) < 0) { /* lent until tls_conn_feed_end */
        conn_end(c, UV_ENOMEM);
        return;
    }
    if (c->state == C_HANDSHAKE)
        tls_step(c);
    else
        tls_drain(c);
    if (!c->closed && tls_conn_feed_end(c->tls) < 0) conn_end(c, UV_ENOMEM);
}

static int tls_write(conn *c, conn_out *o)
{
    char err[160];
    if (tls_conn_write(c->tls, o->data, o->len, err, sizeof err) < 0) return UV_EPROTO;
    return tls_flush(c, 1);
}

static const sock_ops tls_ops = {
    .established = tls_established,
    .readable = tls_readable,
    .write = tls_write,
};

/* ---- waiting for the origin's first TLS handshake (the stampede guard, see tls.h) ---- */

/* Park `c` (TCP up, no ClientHello sent) until its origin's first handshake ends, for at most
 * TLS_WAIT_MAX_NS and never past its connect deadline. Reading stays on, so a peer that hangs up
 * meanwhile is noticed. */
static void wait_enter(conn *c)
{
    conn_ctx *x = c->x;
    c->wait_prev = NULL;
    c->wait_next = x->tls_waiters;
    if (x->tls_waiters) x->tls_waiters->wait_prev = c;
    x->tls_waiters = c;
    x->tls_waited++;
    uint64_t until = uv_hrtime() + TLS_WAIT_MAX_NS;
    timers_add(x->tm, &c->tmr, until < c->deadline_ns ? until : c->deadline_ns);
}

/* Out of the waiting list; the handshake comes next. */
static void wait_leave(conn *c)
{
    c->state = C_HANDSHAKE;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        c->x->tls_waiters = c->wait_next;
    if (c->wait_next) c->wait_next->wait_prev = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
}

/* A first handshake ended (done, failed or closed): the waiters whose origin has none in flight
 * any more go, from the loop (their timer fires now), never from inside the caller. */
static void wait_wake(conn_ctx *x)
{
    uint64_t now = uv_hrtime();
    char origin[300];
    for (conn *w = x->tls_waiters; w; w = w->wait_next) {
        origin_of(w, origin, sizeof origin);
        if (!tls_client_should_wait(x->tls, &w->tls_opts, origin)) timers_add(x->tm, &w->tmr, now);
    }
}

/* Woken, or the wait bound passed (the first handshake hangs: go on alone). The connect
 * deadline has not passed (on_timer checked). The handshake offers the session if one came. */
static void wait_over(conn *c)
{
    wait_leave(c);
    timers_add(c->x->tm, &c->tmr, c->deadline_ns);
    tls_start(c);
}

/* ---- proxy CONNECT tunnel ---- */

static int tunnel_headers_done(llhttp_t *p)
{
    (void)p;
    return 2; /* no body; llhttp_execute returns HPE_PAUSED_UPGRADE */
}

static const llhttp_settings_t tunnel_settings = {.on_headers_complete = tunnel_headers_done};

static void tunnel_start(conn *c)
{
    char head[1024], auth[400] = "";
    if (c->proxy_auth) {
        unsigned char b64[360];
        size_t olen = 0;
        if (mbedtls_base64_encode(b64, sizeof b64, &olen, (const unsigned char *)c->proxy_auth,
                                  strlen(c->proxy_auth)) == 0)
            snprintf(auth, sizeof auth, "Proxy-Authorization: Basic %.*s\r\n", (int)olen, b64);
    }
    const char *fmt = strchr(c->host, ':') ? "[%s]:%d" : "%s:%d";
    char hp[300];
    snprintf(hp, sizeof hp, fmt, c->host, c->port);
    int n = snprintf(head, sizeof head, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", hp, hp, auth);
    c->tunnel = malloc(sizeof *c->tunnel);
    char *raw = c->tunnel ? strdup(head) : NULL;
    if (!raw) {
        conn_fail(c, ERR_PROXY, "out of memory");
        return;
    }
    llhttp_init(c->tunnel, HTTP_RESPONSE, &tunnel_settings);
    c->state = C_TUNNEL;
    if (raw_write(c, NULL, raw, (size_t)n, 0) < 0) conn_fail(c, ERR_PROXY, "proxy: write failed");
}

static void tunnel_readable(conn *c, const char *buf, size_t n)
{
    llhttp_errno_t e = llhttp_execute(c->tunnel, buf, n);
    if (e == HPE_OK) return;
    if (e != HPE_PAUSED_UPGRADE) {
        conn_fail(c, ERR_PROXY, "proxy %s:%d: bad answer to CONNECT: %s", c->proxy_host, c->proxy_port,
                  llhttp_get_error_reason(c->tunnel));
        return;
    }
    int status = c->tunnel->status_code;
    if (status < 200 || status > 299) {
        conn_fail(c, ERR_PROXY, "proxy %s:%d refused CONNECT %s:%d with status %d", c->proxy_host,
                  c->proxy_port, c->host, c->port, status);
        return;
    }
    const char *rest = llhttp_get_error_pos(c->tunnel);
    size_t left = rest && rest >= buf && rest <= buf + n ? (size_t)(buf + n - rest) : 0;
    free(c->tunnel);
    c->tunnel = NULL;
    c->ops->established(c);
    if (left && !c->closed) c->ops->readable(c, rest, left);
}

/* ---- TCP ---- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = h->data;
    *buf = uv_buf_init(c->x->rbuf, (unsigned)c->x->rbuf_len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (c->closed || nread == 0) return;
    if (nread < 0) {
        conn_end(c, (int)nread);
        return;
    }
    c->bytes_in += (uint64_t)nread;
    if (c->state == C_TUNNEL)
        tunnel_readable(c, buf->base, (size_t)nread);
    else
        c->ops->readable(c, buf->base, (size_t)nread);
}

static void on_retry_closed(uv_handle_t *h)
{
    conn *c = h->data;
    c->retrying = 0;
    if (c->closed) {
        on_closed(h);
        return;
    }
    uv_tcp_init(c->x->loop, &c->tcp);
    c->tcp.data = c;
    try_connect(c);
}

/* The attempt on addrs[ai] failed with `err`: try the next address, or give up. */
static void next_address(conn *c, int err)
{
    c->last_err = err;
    if (err == UV_EMFILE || err == UV_ENFILE) {
        conn_fail(c, ERR_FD_LIMIT, "connect: %s (%s)", uv_strerror(err), c->peer);
        return;
    }
    if (++c->ai >= c->addrs->n) {
        if (c->proxy_host) /* the proxy itself is unreachable */
            conn_fail(c, ERR_PROXY, "proxy: connect: %s (%s)", uv_strerror(err), c->peer);
        else
            conn_fail(c, ERR_CONNECT, "connect: %s (%s)", uv_strerror(err), c->peer);
        return;
    }
    c->retrying = 1;
    uv_close((uv_handle_t *)&c->tcp, on_retry_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = req->data;
    if (c->closed) return;
    if (status < 0) {
        next_address(c, status);
        return;
    }
    c->times.connect_ns = uv_hrtime() - c->t0 - c->times.dns_ns;
    free(c->addrs); /* ~1 KB a kept connection need not hold */
    c->addrs = NULL;
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    if (rc < 0) {
        conn_fail(c, ERR_CONNECT, "connect: %s (%s)", uv_strerror(rc), c->peer);
        return;
    }
    if (c->proxy_host && c->ops == &tls_ops)
        tunnel_start(c);
    else
        c->ops->established(c);
}

/* Bind the next source address of the same family, if any was configured. */
static int bind_source(conn *c, const struct sockaddr *to)
{
    conn_ctx *x = c->x;
    for (size_t k = 0; k < x->nsources; k++) {
        const struct sockaddr_storage *s = &x->sources[(x->next_source + k) % x->nsources];
        if (s->ss_family != to->sa_family) continue;
        x->next_source = (x->next_source + k + 1) % x->nsources;
        return uv_tcp_bind(&c->tcp, (const struct sockaddr *)s, 0);
    }
    return 0;
}

static void try_connect(conn *c)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->addrs->addr[c->ai];
    dns_addr_str(sa, c->peer, sizeof c->peer);
    c->state = C_CONNECTING;
    c->creq.data = c;
    int rc = bind_source(c, sa);
    if (rc == 0) rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect);
    if (rc < 0) next_address(c, rc);
}

static void on_dns(void *ud, int status, const dns_result *r)
{
    conn *c = ud;
    c->dq = NULL;
    c->times.dns_ns = uv_hrtime() - c->t0;
    const char *name = c->proxy_host ? c->proxy_host : c->host;
    if (status < 0) {
        conn_fail(c, c->proxy_host ? ERR_PROXY : ERR_DNS, "%sdns: cannot resolve %s: %s",
                  c->proxy_host ? "proxy: " : "", name, uv_strerror(status));
        return;
    }
    *c->addrs = *r;
    try_connect(c);
}

conn *conn_open(conn_ctx *x, const conn_target *t, const conn_events *ev, void *ud)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->x = x, c->ev = ev, c->ud = ud;
    c->ops = t->tls ? &tls_ops : &plain_ops;
    c->host = strdup(t->host);
    c->port = t->port;
    c->proxy_host = dup_or_null(t->proxy_host);
    c->proxy_port = t->proxy_port;
    c->proxy_auth = dup_or_null(t->proxy_auth);
    c->tls_opts.insecure = t->tls_opts.insecure;
    c->tls_opts.ca = dup_or_null(t->tls_opts.ca);
    c->tls_opts.cert = dup_or_null(t->tls_opts.cert);
    c->tls_opts.key = dup_or_null(t->tls_opts.key);
    uv_tcp_init(x->loop, &c->tcp);
    c->tcp.data = c;
    c->tmr.cb = on_timer;
    c->tmr.data = c;
    x->connections++;
    /* t0 stays 0 while inside conn_open: failures found now are delivered from the loop. */
    uint64_t now = uv_hrtime();
    c->deadline_ns = now + (t->connect_timeout_ns ? t->connect_timeout_ns : x->connect_timeout_ns);
    timers_add(x->tm, &c->tmr, c->deadline_ns);
    c->addrs = malloc(sizeof *c->addrs);
    if (!c->host || !c->addrs || (t->proxy_host && !c->proxy_host)) {
        conn_fail(c, ERR_CONNECT, "out of memory");
        c->t0 = now;
        return c;
    }
    const char *name = c->proxy_host ? c->proxy_host : c->host;
    int port = c->proxy_host ? c->proxy_port : c->port;
    int rc = dns_resolve(x->dns, name, port, c->addrs, &c->dq, on_dns, c);
    if (rc < 0)
        conn_fail(c, ERR_DNS, "dns: cannot resolve %s: %s", name, uv_strerror(rc));
    else if (rc == 0)
        try_connect(c);
    c->t0 = now;
    return c;
}

int conn_write(conn *c, conn_out *o)
{
    if (c->closed || c->state != C_READY) return UV_ENOTCONN;
    return c->ops->write(c, o);
}

void conn_set_ud(conn *c, void *ud) { c->ud = ud; }

void conn_get_times(const conn *c, conn_times *t) { *t = c->times; }

void conn_get_bytes(const conn *c, uint64_t *in, uint64_t *out)
{
    *in = c->bytes_in;
    *out = c->bytes_out;
}

const char *conn_peer(const conn *c) { return c->peer; }
