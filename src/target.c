/* target: `parrot target`, a small fast HTTP/1.1 test server. One libuv loop per thread (each with
 * its own SO_REUSEPORT listener), llhttp for requests, mbedTLS behind a tiny transport table for
 * HTTPS. The hot path allocates nothing: buffers live in connections and write requests that are
 * recycled through per-thread free lists, and the fixed endpoints are preformatted at start.
 * This file: the server, its connections and the plain TCP transport; the endpoints are in
 * target_routes.c, the certificate and the TLS transport in target_tls.c. */
#include "target.h"

#include "target_conn.h"
#include "target_routes.h"
#include "target_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <llhttp.h>
#include <mbedtls/ssl.h>
#include <uv.h>

#define BODY_MAX (1 << 20)    /* largest body kept for /echo and /login */
#define WQ_HIGH (4 << 20)     /* stop parsing pipelined requests while this much is queued */
#define KEEP_CAP (256 * 1024) /* recycled buffers larger than this are freed */
#define LOG_FLUSH (56 * 1024)

/* Process-wide state: written before the threads start, read-only after. */
static struct {
    const target_options *o;
    worker *w;
    int nw, log_fd, signals;
    pthread_mutex_t log_mu;
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage addr;
    char where[80];
} S = {.log_fd = -1, .log_mu = PTHREAD_MUTEX_INITIALIZER};

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- buffers --------------------------------------------------------------------------------- */

void target_buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "parrot target: out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

void target_buf_add(buf *b, const void *p, size_t n)
{
    target_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void target_buf_adds(buf *b, const char *s) { target_buf_add(b, s, strlen(s)); }

void target_buf_addf(buf *b, const char *fmt, ...)
{
    va_list ap;
    target_buf_reserve(b, 128);
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += n;
            return;
        }
        target_buf_reserve(b, n + 1);
    }
}

void target_buf_free(buf *b)
{
    free(b->p);
    *b = (buf){0};
}

/* ---- access log ------------------------------------------------------------------------------ */

/* Writes the worker's buffered lines; one write() under the lock keeps threads' lines whole. */
static void log_flush(worker *w)
{
    if (S.log_fd < 0 || !w->log.len) return;
    pthread_mutex_lock(&S.log_mu);
    for (size_t off = 0; off < w->log.len;) {
        ssize_t n = write(S.log_fd, w->log.p + off, w->log.len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += n;
    }
    pthread_mutex_unlock(&S.log_mu);
    w->log.len = 0;
}

static void on_log_timer(uv_timer_t *t) { log_flush(t->data); }

void target_log_request(conn *c, int status, size_t bytes)
{
    worker *w = c->w;
    if (S.log_fd < 0) return;
    time_t now = time(NULL);
    if (now != w->log_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->log_time, sizeof w->log_time, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        w->log_sec = now;
    }
    target_buf_addf(&w->log, "%s - - [%s] \"%s %.*s HTTP/%d.%d\" %d %zu\n", c->peer[0] ? c->peer : "-",
                    w->log_time, llhttp_method_name(c->method), (int)c->url_len, c->head, c->major, c->minor,
                    status, bytes);
    if (w->log.len > LOG_FLUSH) log_flush(w);
}

/* ---- connections ----------------------------------------------------------------------------- */

void target_conn_kick(conn *c);
static void on_conn_closed(uv_handle_t *h);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

wreq *target_wreq_get(worker *w)
{
    wreq *r = w->free_wreqs;
    if (r)
        w->free_wreqs = r->next;
    else if (!(r = calloc(1, sizeof *r))) {
        fprintf(stderr, "parrot target: out of memory\n");
        exit(1);
    }
    r->out.len = 0;
    r->close_after = 0;
    r->req.data = r;
    return r;
}

void target_wreq_put(worker *w, wreq *r)
{
    if (r->out.cap > KEEP_CAP) target_buf_free(&r->out);
    r->next = w->free_wreqs;
    w->free_wreqs = r;
}

/* Closes both handles; the connection goes back to the free list when both are closed. Safe to
 * call twice and from inside any callback (the memory stays valid until the close callbacks). */
void target_conn_close(conn *c)
{
    if (c->dead) return;
    c->dead = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles) return;
    if (c->body.cap > KEEP_CAP) target_buf_free(&c->body);
    if (c->tout.cap > KEEP_CAP) target_buf_free(&c->tout);
    if (c->cin.cap > KEEP_CAP) target_buf_free(&c->cin);
    c->next = c->w->free_conns;
    c->w->free_conns = c;
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    (void)status;
    target_conn_close(s->data);
}

/* Ends a connection politely: FIN after the queued responses, then close. */
static void conn_end(conn *c)
{
    if (c->shutting || c->dead) return;
    c->shutting = 1;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown)) target_conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *r = req->data;
    conn *c = r->c;
    int close_after = r->close_after;
    target_wreq_put(c->w, r);
    c->writes--;
    if (status < 0)
        target_conn_close(c);
    else {
        if (close_after) c->closing = 1;
        target_conn_kick(c);
    }
}

/* Writes bufs (which must outlive the write: static memory or r->out), trying a synchronous
 * write first so the common small response needs no queued request at all. Takes r. */
void target_sock_write_raw(conn *c, wreq *r, uv_buf_t *b, unsigned n)
{
    if (c->dead) {
        target_wreq_put(c->w, r);
        return;
    }
    if (c->writes == 0) {
        int wr = uv_try_write((uv_stream_t *)&c->tcp, b, n);
        if (wr < 0 && wr != UV_EAGAIN) {
            target_wreq_put(c->w, r);
            target_conn_close(c);
            return;
        }
        size_t k = wr > 0 ? (size_t)wr : 0;
        while (n && k >= b->len)
            k -= b->len, b++, n--;
        if (n) b->base += k, b->len -= k;
    }
    if (n == 0) {
        if (r->close_after) c->closing = 1;
        target_wreq_put(c->w, r);
        return;
    }
    r->c = c;
    c->writes++;
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, b, n, on_write)) {
        c->writes--;
        target_wreq_put(c->w, r);
        target_conn_close(c);
    }
}

/* ---- transport: plain TCP (TLS is in target_tls.c) ------------------------------------------- */

static void tcp_alloc(conn *c, uv_buf_t *b) { *b = uv_buf_init(c->in + c->in_len, IN_CAP - c->in_len); }

static void tcp_read(conn *c, size_t n)
{
    c->in_len += n;
    target_conn_kick(c);
}

static int tcp_fill(conn *c)
{
    (void)c;
    return 0;
}

static const sock_ops TCP_OPS = {tcp_alloc, tcp_read, tcp_fill, target_sock_write_raw};

/* ---- request parsing ------------------------------------------------------------------------- */

static int head_add(conn *c, const char *at, size_t n)
{
    if (c->head_len + n > HEAD_CAP) {
        c->err_status = 431;
        return -1;
    }
    memcpy(c->head + c->head_len, at, n);
    c->head_len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    conn *c = p->data;
    c->head_len = c->url_len = 0;
    c->nhdr = c->hstate = c->want_body = c->too_big = c->err_status = 0;
    c->route = -1;
    c->body.len = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    conn *c = p->data;
    c->url_len += n;
    return head_add(c, at, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (c->hstate != 1) {
        if (c->nhdr == MAX_HDRS) return c->err_status = 431, -1;
        c->hdrs[c->nhdr++] = (hdr){.name = (uint16_t)c->head_len};
        c->hstate = 1;
    }
    c->hdrs[c->nhdr - 1].name_len += n;
    return head_add(c, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    conn *c = p->data;
    hdr *h = &c->hdrs[c->nhdr - 1];
    if (c->hstate != 2) h->val = (uint16_t)c->head_len, c->hstate = 2;
    h->val_len += n;
    return head_add(c, at, n);
}

static int on_headers_complete(llhttp_t *p)
{
    conn *c = p->data;
    c->route = target_route_find(c, &c->want_body);
    if (p->http_major == 1 && p->http_minor == 1) { /* answer Expect: 100-continue */
        for (int i = 0; i < c->nhdr; i++) {
            hdr *h = &c->hdrs[i];
            if (target_hdr_is(c, h, "expect") && h->val_len == 12 &&
                !strncasecmp(c->head + h->val, "100-continue", 12)) {
                uv_buf_t b = uv_buf_init((char *)CONTINUE, sizeof CONTINUE - 1);
                c->ops->send(c, target_wreq_get(c->w), &b, 1);
            }
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    conn *c = p->data;
    if (!c->want_body || c->too_big) return 0;
    if (c->body.len + n > BODY_MAX)
        c->too_big = 1;
    else
        target_buf_add(&c->body, at, n);
    return 0;
}

/* A whole request is in: answer it. Pausing the parser keeps later pipelined requests waiting
 * while a delay runs, while too much output is queued, or for good when the connection closes. */
static int on_message_complete(llhttp_t *p)
{
    conn *c = p->data;
    c->keep = llhttp_should_keep_alive(p);
    c->major = p->http_major, c->minor = p->http_minor;
    c->method = p->method;
    c->is_head = p->method == HTTP_HEAD;
    target_route_answer(c);
    if (!c->dead && c->writes && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WQ_HIGH)
        c->blocked = 1;
    if (!c->keep) c->closing = 1;
    return c->dead || c->closing || c->delayed || c->blocked ? HPE_PAUSED : 0;
}

static llhttp_settings_t SETTINGS;

static void resp_error(conn *c)
{
    int status = c->err_status ? c->err_status : 400;
    c->keep = c->is_head = 0;
    c->major = 1, c->minor = 1;
    if (c->url_len > 0) c->method = c->parser.method;
    target_resp_simple(c, status, "text/plain", NULL, "bad request\n", 12);
    c->closing = 1;
}

/* Feeds buffered plaintext to the parser until it runs out or has to wait. */
static void conn_parse(conn *c)
{
    while (!c->dead && !c->closing && !c->delayed && !c->blocked) {
        if (c->in_pos == c->in_len) {
            c->in_pos = c->in_len = 0;
            if (c->ops->fill(c) <= 0) return;
        }
        if (c->parser_paused) llhttp_resume(&c->parser), c->parser_paused = 0;
        llhttp_errno_t e = llhttp_execute(&c->parser, c->in + c->in_pos, c->in_len - c->in_pos);
        if (e == HPE_OK)
            c->in_pos = c->in_len;
        else if (e == HPE_PAUSED) {
            c->in_pos = llhttp_get_error_pos(&c->parser) - c->in;
            c->parser_paused = 1;
        } else if (e == HPE_PAUSED_UPGRADE)
            c->closing = 1;
        else if (!c->dead)
            resp_error(c);
    }
}

/* The one place that decides what a connection does next: parse what is buffered, read more,
 * stop reading while it waits, or end once everything owed has been written. */
void target_conn_kick(conn *c)
{
    if (c->dead) return;
    if (c->blocked && (!c->writes || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= WQ_HIGH / 4))
        c->blocked = 0;
    conn_parse(c);
    if (c->dead) return;
    int busy = c->delayed || c->blocked;
    if (c->closing || (c->eof && !busy)) {
        if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp), c->reading = 0;
        if (!c->delayed && !c->writes) conn_end(c);
    } else if (busy && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!busy && !c->reading && !c->eof) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    conn *c = h->data;
    c->ops->alloc(c, b);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    conn *c = s->data;
    if (n > 0)
        c->ops->read(c, (size_t)n);
    else if (n == UV_EOF) {
        c->eof = 1;
        uv_read_stop(s);
        c->reading = 0;
        target_conn_kick(c);
    } else if (n < 0)
        target_conn_close(c);
}

/* A recycled or new connection, its handles initialised. */
static conn *conn_get(worker *w)
{
    conn *c = w->free_conns;
    if (c)
        w->free_conns = c->next;
    else if ((c = calloc(1, sizeof *c))) {
        c->w = w;
        if (S.o->tls && target_tls_conn_init(c)) {
            free(c);
            return NULL;
        }
    } else
        return NULL;
    memset(c, 0, offsetof(conn, w));
    c->ops = S.o->tls ? &target_tls_ops : &TCP_OPS;
    c->body.len = c->cin.len = c->tout.len = 0;
    if (c->ssl) mbedtls_ssl_session_reset(c->ssl);
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    llhttp_init(&c->parser, HTTP_REQUEST, &SETTINGS);
    c->parser.data = c;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    return c;
}

static void peer_name(conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len)) return;
    if (sa.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&sa, c->peer, sizeof c->peer);
    else
        uv_ip4_name((struct sockaddr_in *)&sa, c->peer, sizeof c->peer);
}

static void on_accept(uv_stream_t *srv, int status)
{
    worker *w = srv->data;
    if (status < 0) return;
    conn *c = conn_get(w);
    if (!c) return;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp)) return target_conn_close(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (S.log_fd >= 0) peer_name(c);
    target_conn_kick(c); /* starts reading */
}

/* ---- workers, listeners, signals ------------------------------------------------------------- */

/* Binds a listening socket by hand so SO_REUSEPORT can be set before bind. Returns fd or -errno. */
static int listen_socket(struct sockaddr_storage *sa, int reuseport)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (sa->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)sa, len) || listen(fd, 1024)) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (getsockname(fd, (struct sockaddr *)sa, &len)) return -errno; /* learns port 0's pick */
    return fd;
}

static void on_stop(uv_async_t *a)
{
    worker *w = a->data;
    while (w->conns)
        target_conn_close(w->conns);
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->stop, NULL);
    uv_close((uv_handle_t *)&w->log_timer, NULL);
    if (w->index == 0 && S.signals) {
        uv_close((uv_handle_t *)&S.sigint, NULL);
        uv_close((uv_handle_t *)&S.sigterm, NULL);
    }
    log_flush(w);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    for (int i = 0; i < S.nw; i++)
        uv_async_send(&S.w[i].stop);
}

/* Loop, listener and timers of one worker; errors are printed here. */
static int worker_init(worker *w, int index)
{
    w->index = index;
    uv_loop_init(&w->loop);
    w->loop.data = w; /* worker_free cleans up from here on */
    uv_async_init(&w->loop, &w->stop, on_stop);
    uv_timer_init(&w->loop, &w->log_timer);
    uv_tcp_init(&w->loop, &w->listener);
    w->stop.data = w->log_timer.data = w->listener.data = w;
    if (S.o->log_file) uv_timer_start(&w->log_timer, on_log_timer, 1000, 1000);
    if (S.o->tls && target_tls_worker_init(w)) {
        fprintf(stderr, "parrot target: TLS setup failed\n");
        return -1;
    }
    int fd = listen_socket(&S.addr, S.nw > 1), rc = fd < 0 ? uv_translate_sys_error(-fd) : 0;
    if (!rc && (rc = uv_tcp_open(&w->listener, fd))) close(fd);
    if (!rc) rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_accept);
    if (rc) {
        fprintf(stderr, "parrot target: cannot listen on %s: %s\n", S.where, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void worker_run(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Closes whatever worker_init opened (also after a failed init) and frees the free lists. */
static void worker_free(worker *w)
{
    if (w->loop.data != w) return;
    if (!uv_is_closing((uv_handle_t *)&w->stop)) on_stop(&w->stop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    for (conn *c; (c = w->free_conns);) {
        w->free_conns = c->next;
        if (c->ssl) mbedtls_ssl_free(c->ssl);
        free(c->ssl);
        target_buf_free(&c->body), target_buf_free(&c->cin), target_buf_free(&c->tout);
        free(c);
    }
    for (wreq *r; (r = w->free_wreqs);) {
        w->free_wreqs = r->next;
        target_buf_free(&r->out);
        free(r);
    }
    target_buf_free(&w->sb), target_buf_free(&w->hx), target_buf_free(&w->log);
    target_tls_worker_free(w);
}

/* Resolves --host (an IP address, or "localhost") into S.addr and S.where. */
static int addr_parse(const char *host, int port)
{
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (!uv_ip4_addr(host, port, (struct sockaddr_in *)&S.addr))
        snprintf(S.where, sizeof S.where, "%s:%d", host, port);
    else if (!uv_ip6_addr(host, port, (struct sockaddr_in6 *)&S.addr))
        snprintf(S.where, sizeof S.where, "[%s]:%d", host, port);
    else {
        fprintf(stderr, "parrot target: --host needs an IP address like 127.0.0.1 or ::1 (got '%s')\n", host);
        return -1;
    }
    return 0;
}

static int port_of(const struct sockaddr_storage *sa)
{
    return ntohs(sa->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

/* Everything before the loops run: options, bodies, TLS material, log, listeners. */
static int target_start(const target_options *o)
{
    SETTINGS = (llhttp_settings_t){.on_message_begin = on_message_begin,
                                   .on_url = on_url,
                                   .on_header_field = on_header_field,
                                   .on_header_value = on_header_value,
                                   .on_headers_complete = on_headers_complete,
                                   .on_body = on_body,
                                   .on_message_complete = on_message_complete};
    if (o->port < 0 || o->port > 65535 || o->threads < 1 || o->threads > 256) {
        fprintf(stderr, "parrot target: --port must be 0..65535 and --threads 1..256\n");
        return -1;
    }
    if (addr_parse(o->host ? o->host : "127.0.0.1", o->port) || target_routes_init()) return -1;
    if (o->tls && target_tls_make_cert()) {
        fprintf(stderr, "parrot target: cannot make a TLS certificate\n");
        return -1;
    }
    if (o->tls && o->cert_out && target_tls_cert_write(o->cert_out)) return -1;
    if (o->log_file && (S.log_fd = open(o->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "parrot target: cannot open log %s: %s\n", o->log_file, strerror(errno));
        return -1;
    }
    S.nw = o->threads;
    if (!(S.w = calloc(S.nw, sizeof *S.w))) return -1;
    for (int i = 0; i < S.nw; i++) {
        if (worker_init(&S.w[i], i)) return -1;
        if (i == 0) {
            int port = port_of(&S.addr); /* later listeners reuse port 0's pick */
            char *colon = strrchr(S.where, ':');
            snprintf(colon + 1, S.where + sizeof S.where - colon - 1, "%d", port);
        }
    }
    uv_signal_init(&S.w[0].loop, &S.sigint);
    uv_signal_init(&S.w[0].loop, &S.sigterm);
    uv_signal_start(&S.sigint, on_signal, SIGINT);
    uv_signal_start(&S.sigterm, on_signal, SIGTERM);
    S.signals = 1;
    return 0;
}

int target_main(const target_options *o)
{
    S.o = o;
    int rc = target_start(o);
    if (!rc) {
        printf("listening on %s://%s\n", o->tls ? "https" : "http", S.where);
        fflush(stdout);
        if (!o->quiet)
            fprintf(stderr,
                    "parrot target: %d thread%s; endpoints / /json /gzip /bytes/N /delay/MS /status/N "
                    "/chunked/N /echo /cookie/set?k=v /cookie/check /redirect/N /redirect-to?url=U "
                    "/login /account /item/ID; Ctrl-C stops\n",
                    S.nw, S.nw > 1 ? "s" : "");
        for (int i = 1; i < S.nw; i++)
            if (uv_thread_create(&S.w[i].thread, worker_run, &S.w[i])) S.w[i].thread = 0;
        worker_run(&S.w[0]);
        for (int i = 1; i < S.nw; i++)
            if (S.w[i].thread) uv_thread_join(&S.w[i].thread);
        if (!o->quiet) fprintf(stderr, "parrot target: stopped\n");
    }
    for (int i = 0; S.w && i < S.nw; i++)
        worker_free(&S.w[i]);
    free(S.w);
    target_routes_free();
    if (S.log_fd >= 0) close(S.log_fd);
    return rc ? 1 : 0;
}
