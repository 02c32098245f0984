/* target: `parrot target`, a small fast HTTP/1.1 test server. One libuv loop per thread (each with
 * its own SO_REUSEPORT listener), llhttp for requests, mbedTLS behind a tiny transport table for
 * HTTPS. The hot path allocates nothing: buffers live in connections and write requests that are
 * recycled through per-thread free lists, and the fixed endpoints are preformatted at start. */
#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>
#include <uv.h>
#include <zlib.h>

#define IN_CAP (16 * 1024)   /* per-connection plaintext read buffer */
#define HEAD_CAP (16 * 1024) /* request target + header names and values */
#define MAX_HDRS 100
#define BODY_MAX (1 << 20)    /* largest body kept for /echo and /login */
#define BYTES_MAX (100 << 20) /* /bytes/N and /chunked/N cap */
#define FILL_LEN (1 << 20)    /* the static body buffer, reused for every big body */
#define WQ_HIGH (4 << 20)     /* stop parsing pipelined requests while this much is queued */
#define KEEP_CAP (256 * 1024) /* recycled buffers larger than this are freed */
#define LOG_FLUSH (56 * 1024)

/* A growable byte buffer; whoever embeds it owns p. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

typedef struct worker worker;
typedef struct conn conn;

/* One response in flight. Idle ones sit on their worker's free list and keep their buffer. */
typedef struct wreq {
    uv_write_t req;
    conn *c;
    buf out; /* status line and headers, small generated bodies, or TLS records */
    int close_after;
    struct wreq *next;
} wreq;

/* Transport table: the request path never asks "is this TLS?". */
typedef struct sock_ops {
    void (*alloc)(conn *c, uv_buf_t *b);
    void (*read)(conn *c, size_t n);
    int (*fill)(conn *c); /* more plaintext into c->in; returns bytes added */
    void (*send)(conn *c, wreq *r, uv_buf_t *b, unsigned n);
} sock_ops;

typedef struct hdr {
    uint16_t name, name_len, val, val_len; /* offsets into conn.head */
} hdr;

/* A client connection. Owned by its worker: on the live list while open, on the free list after
 * both handles closed (the buffers below `keep` survive recycling). */
struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* /delay */
    uv_shutdown_t shut;
    conn *prev, *next;
    int handles, dead, reading, eof, closing, shutting, writes;
    int delayed, blocked, parser_paused;
    size_t in_pos, in_len;
    /* the request being parsed or answered */
    size_t head_len, url_len;
    int nhdr, hstate, route, want_body, too_big, err_status;
    int keep, minor, major, is_head, method;
    uint64_t delay_t0;
    unsigned delay_ms;
    char peer[48];
    size_t cin_pos; /* TLS: consumed part of cin */
    int hs_done;
    /* kept across recycling (conn_get clears everything above w) */
    worker *w;
    const sock_ops *ops;
    llhttp_t parser;
    mbedtls_ssl_context *ssl;
    buf body, cin, tout;
    hdr hdrs[MAX_HDRS];
    char in[IN_CAP];
    char head[HEAD_CAP];
};

/* One thread's server: a loop, a listener, its connections and recycled objects. */
struct worker {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_timer_t log_timer;
    uv_thread_t thread;
    int index;
    conn *conns, *free_conns;
    wreq *free_wreqs;
    buf sb, hx, log; /* scratch body, scratch extra headers, access-log lines */
    time_t log_sec;
    char log_time[40];
    int tls_ready;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_ssl_cache_context cache;
};

/* A preformatted response in its three Connection variants (none, close, keep-alive). */
typedef struct fixed {
    buf v[3];
    size_t body_len;
} fixed;

/* Process-wide state: written before the threads start, read-only after (but the counter). */
static struct {
    const target_options *o;
    worker *w;
    int nw, log_fd, signals;
    pthread_mutex_t log_mu;
    atomic_ullong sessions;
    char *fill;
    fixed root, json, gzip;
    char key_pem[1024], crt_pem[4096];
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage addr;
    char where[80];
} S = {.log_fd = -1, .log_mu = PTHREAD_MUTEX_INITIALIZER};

static const char ROOT_BODY[] =
    "<html><head><title>parrot target</title></head><body><a href=\"/json\">json</a>"
    "<input type=\"hidden\" name=\"token\" value=\"abc123\"></body></html>\n";
static const char JSON_BODY[] = "{\"items\":[{\"id\":1,\"name\":\"apple\"},{\"id\":2,\"name\":\"pear\"},"
                                "{\"id\":3,\"name\":\"plum\"}],\"count\":3,\"token\":\"abc123\"}\n";
static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- buffers and text ------------------------------------------------------------------------ */

static void buf_reserve(buf *b, size_t extra)
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

static void buf_add(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_adds(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_addf(buf *b, const char *fmt, ...)
{
    va_list ap;
    buf_reserve(b, 128);
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += n;
            return;
        }
        buf_reserve(b, n + 1);
    }
}

static void buf_free(buf *b)
{
    free(b->p);
    *b = (buf){0};
}

/* Length of a valid UTF-8 sequence at s (2..4 bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F)) return 0;
    if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F)) return 0;
    return k;
}

/* Appends s as a JSON string; bytes that are not UTF-8 become \u00XX. */
static void json_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n * 6 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        size_t k = ch >= 0x80 ? utf8_len((const unsigned char *)s + i, n - i) : 1;
        if (ch >= 0x80 && k) {
            memcpy(o, s + i, k);
            o += k, i += k;
            continue;
        }
        i++;
        if (ch == '"' || ch == '\\')
            *o++ = '\\', *o++ = ch;
        else if (ch == '\n')
            *o++ = '\\', *o++ = 'n';
        else if (ch == '\r')
            *o++ = '\\', *o++ = 'r';
        else if (ch == '\t')
            *o++ = '\\', *o++ = 't';
        else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[ch >> 4], o[5] = hex[ch & 15];
            o += 6;
        } else
            *o++ = ch;
    }
    *o++ = '"';
    b->len = o - b->p;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
}

/* Appends the url-decoded s ('+' is a space, as in forms). */
static void url_decode(buf *b, const char *s, size_t n)
{
    buf_reserve(b, n + 1);
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else
            *o++ = s[i] == '+' ? ' ' : s[i];
    }
    b->len = o - b->p;
    b->p[b->len] = 0;
}

/* Finds key in an a=1&b=2 string and appends its decoded value to out. Returns 1 if found. */
static int form_get(const char *q, size_t n, const char *key, buf *out)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && q[e] != '&')
            e++;
        if (e - i > kl && q[i + kl] == '=' && !memcmp(q + i, key, kl)) {
            url_decode(out, q + i + kl + 1, e - i - kl - 1);
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* Parses all-digit s into *v (at most 15 digits). Returns 0, or -1 if it is not a number. */
static int parse_num(const char *s, size_t n, unsigned long long *v)
{
    if (n == 0 || n > 15) return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

static const char *reason(int s)
{
    switch (s) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 418:
        return "I'm a teapot";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
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

static void log_request(conn *c, int status, size_t bytes)
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
    buf_addf(&w->log, "%s - - [%s] \"%s %.*s HTTP/%d.%d\" %d %zu\n", c->peer[0] ? c->peer : "-", w->log_time,
             llhttp_method_name(c->method), (int)c->url_len, c->head, c->major, c->minor, status, bytes);
    if (w->log.len > LOG_FLUSH) log_flush(w);
}

/* ---- connections ----------------------------------------------------------------------------- */

static void conn_kick(conn *c);
static void on_conn_closed(uv_handle_t *h);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static wreq *wreq_get(worker *w)
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

static void wreq_put(worker *w, wreq *r)
{
    if (r->out.cap > KEEP_CAP) buf_free(&r->out);
    r->next = w->free_wreqs;
    w->free_wreqs = r;
}

/* Closes both handles; the connection goes back to the free list when both are closed. Safe to
 * call twice and from inside any callback (the memory stays valid until the close callbacks). */
static void conn_close(conn *c)
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
    if (c->body.cap > KEEP_CAP) buf_free(&c->body);
    if (c->tout.cap > KEEP_CAP) buf_free(&c->tout);
    if (c->cin.cap > KEEP_CAP) buf_free(&c->cin);
    c->next = c->w->free_conns;
    c->w->free_conns = c;
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    (void)status;
    conn_close(s->data);
}

/* Ends a connection politely: FIN after the queued responses, then close. */
static void conn_end(conn *c)
{
    if (c->shutting || c->dead) return;
    c->shutting = 1;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown)) conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *r = req->data;
    conn *c = r->c;
    int close_after = r->close_after;
    wreq_put(c->w, r);
    c->writes--;
    if (status < 0)
        conn_close(c);
    else {
        if (close_after) c->closing = 1;
        conn_kick(c);
    }
}

/* Writes bufs (which must outlive the write: static memory or r->out), trying a synchronous
 * write first so the common small response needs no queued request at all. Takes r. */
static void sock_write_raw(conn *c, wreq *r, uv_buf_t *b, unsigned n)
{
    if (c->dead) {
        wreq_put(c->w, r);
        return;
    }
    if (c->writes == 0) {
        int wr = uv_try_write((uv_stream_t *)&c->tcp, b, n);
        if (wr < 0 && wr != UV_EAGAIN) {
            wreq_put(c->w, r);
            conn_close(c);
            return;
        }
        size_t k = wr > 0 ? (size_t)wr : 0;
        while (n && k >= b->len)
            k -= b->len, b++, n--;
        if (n) b->base += k, b->len -= k;
    }
    if (n == 0) {
        if (r->close_after) c->closing = 1;
        wreq_put(c->w, r);
        return;
    }
    r->c = c;
    c->writes++;
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, b, n, on_write)) {
        c->writes--;
        wreq_put(c->w, r);
        conn_close(c);
    }
}

/* ---- transports: plain TCP and TLS ----------------------------------------------------------- */

static void tcp_alloc(conn *c, uv_buf_t *b) { *b = uv_buf_init(c->in + c->in_len, IN_CAP - c->in_len); }

static void tcp_read(conn *c, size_t n)
{
    c->in_len += n;
    conn_kick(c);
}

static int tcp_fill(conn *c)
{
    (void)c;
    return 0;
}

static const sock_ops TCP_OPS = {tcp_alloc, tcp_read, tcp_fill, sock_write_raw};

/* Hands the TLS records produced so far to the socket. */
static void tls_flush(conn *c)
{
    if (!c->tout.len || c->dead) return;
    wreq *r = wreq_get(c->w);
    buf t = r->out;
    r->out = c->tout;
    c->tout = t;
    c->tout.len = 0;
    uv_buf_t b = uv_buf_init(r->out.p, r->out.len);
    sock_write_raw(c, r, &b, 1);
}

static int tls_bio_send(void *ctx, const unsigned char *p, size_t n)
{
    buf_add(&((conn *)ctx)->tout, p, n);
    return (int)n;
}

static int tls_bio_recv(void *ctx, unsigned char *p, size_t n)
{
    conn *c = ctx;
    size_t avail = c->cin.len - c->cin_pos;
    if (!avail) return MBEDTLS_ERR_SSL_WANT_READ;
    if (n > avail) n = avail;
    memcpy(p, c->cin.p + c->cin_pos, n);
    c->cin_pos += n;
    if (c->cin_pos == c->cin.len) c->cin_pos = c->cin.len = 0;
    return (int)n;
}

static void tls_alloc(conn *c, uv_buf_t *b)
{
    buf_reserve(&c->cin, 16 * 1024 + 64);
    *b = uv_buf_init(c->cin.p + c->cin.len, c->cin.cap - c->cin.len);
}

static void tls_read(conn *c, size_t n)
{
    c->cin.len += n;
    if (!c->hs_done) {
        int rc = mbedtls_ssl_handshake(c->ssl);
        tls_flush(c);
        if (rc == 0)
            c->hs_done = 1;
        else if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
            c->closing = 1; /* the alert, if any, is queued; close after it */
            conn_kick(c);
            return;
        } else
            return;
    }
    conn_kick(c);
}

static int tls_fill(conn *c)
{
    if (!c->hs_done) return 0;
    int rc = mbedtls_ssl_read(c->ssl, (unsigned char *)c->in, IN_CAP);
    tls_flush(c);
    if (rc > 0) {
        c->in_pos = 0;
        c->in_len = rc;
        return rc;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0)
        c->eof = 1;
    else
        conn_close(c);
    return 0;
}

/* Encrypts the response into TLS records and writes those. */
static void tls_send(conn *c, wreq *r, uv_buf_t *b, unsigned n)
{
    for (unsigned i = 0; i < n && !c->dead; i++) {
        for (size_t off = 0; off < b[i].len;) {
            int rc = mbedtls_ssl_write(c->ssl, (const unsigned char *)b[i].base + off, b[i].len - off);
            if (rc < 0) {
                wreq_put(c->w, r);
                conn_close(c);
                return;
            }
            off += rc;
        }
    }
    if (r->close_after) mbedtls_ssl_close_notify(c->ssl);
    buf t = r->out;
    r->out = c->tout;
    c->tout = t;
    c->tout.len = 0;
    uv_buf_t one = uv_buf_init(r->out.p, r->out.len);
    sock_write_raw(c, r, &one, 1);
}

static const sock_ops TLS_OPS = {tls_alloc, tls_read, tls_fill, tls_send};

/* ---- responses ------------------------------------------------------------------------------- */

/* 0: nothing to say (HTTP/1.1 keep-alive), 1: close, 2: HTTP/1.0 keep-alive. */
static int conn_mode(conn *c) { return !c->keep ? 1 : c->minor == 0 && c->major == 1 ? 2 : 0; }

static void head_write(buf *b, int status, const char *ctype, long long clen, const char *extra, int mode)
{
    buf_addf(b, "HTTP/1.1 %d %s\r\nServer: parrot\r\n", status, reason(status));
    if (ctype) buf_addf(b, "Content-Type: %s\r\n", ctype);
    if (clen >= 0) buf_addf(b, "Content-Length: %lld\r\n", clen);
    if (extra) buf_adds(b, extra);
    buf_adds(b, mode == 1   ? "Connection: close\r\n\r\n"
                : mode == 2 ? "Connection: keep-alive\r\n\r\n"
                            : "\r\n");
}

/* Starts a response in a fresh write request: status line and headers. clen < 0: no length. */
static wreq *resp_begin(conn *c, int status, const char *ctype, long long clen, const char *extra)
{
    wreq *r = wreq_get(c->w);
    int mode = conn_mode(c);
    r->close_after = mode == 1;
    head_write(&r->out, status, ctype, clen, extra, mode);
    return r;
}

/* Sends r->out then b[1..n-1] (static memory; b[0] is filled here) and logs the request. */
static void resp_finish(conn *c, wreq *r, int status, size_t body_len, uv_buf_t *b, unsigned n)
{
    b[0] = uv_buf_init(r->out.p, r->out.len);
    if (c->is_head) n = 1, body_len = 0;
    log_request(c, status, body_len);
    c->ops->send(c, r, b, n);
}

/* A response whose small body is copied behind the head. */
static void resp_simple(conn *c, int status, const char *ctype, const char *extra, const char *body, size_t n)
{
    int nobody = status == 204 || status == 304;
    wreq *r =
        resp_begin(c, status, nobody ? NULL : ctype, status == 204 ? -1 : (long long)(nobody ? 0 : n), extra);
    if (!c->is_head && !nobody) buf_add(&r->out, body, n);
    uv_buf_t b[1];
    resp_finish(c, r, status, nobody ? 0 : n, b, 1);
}

static void resp_json(conn *c, int status, const char *extra)
{
    resp_simple(c, status, "application/json", extra, c->w->sb.p, c->w->sb.len);
}

static void resp_fixed(conn *c, const fixed *f)
{
    int mode = conn_mode(c);
    wreq *r = wreq_get(c->w);
    r->close_after = mode == 1;
    uv_buf_t b = uv_buf_init(f->v[mode].p, f->v[mode].len - (c->is_head ? f->body_len : 0));
    log_request(c, 200, c->is_head ? 0 : f->body_len);
    c->ops->send(c, r, &b, 1);
}

static void fixed_make(fixed *f, const char *ctype, const char *extra, const void *body, size_t n)
{
    for (int m = 0; m < 3; m++) {
        head_write(&f->v[m], 200, ctype, (long long)n, extra, m);
        buf_add(&f->v[m], body, n);
    }
    f->body_len = n;
}

/* ---- endpoints ------------------------------------------------------------------------------- */

/* The parts of the request target the handlers need. */
typedef struct req {
    const char *path, *arg, *query;
    size_t plen, alen, qlen;
} req;

static int hdr_is(conn *c, const hdr *h, const char *lname)
{
    return h->name_len == strlen(lname) && !strncasecmp(c->head + h->name, lname, h->name_len);
}

/* Next name=value pair of a Cookie header value, advancing *p. Returns 0 at the end. */
static int cookie_next(const char **p, const char *end, const char **n, size_t *nl, const char **v,
                       size_t *vl)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == ';'))
        s++;
    if (s >= end) return 0;
    const char *e = memchr(s, ';', end - s);
    if (!e) e = end;
    const char *eq = memchr(s, '=', e - s);
    *n = s, *nl = (eq ? eq : e) - s;
    *v = eq ? eq + 1 : e, *vl = eq ? (size_t)(e - eq - 1) : 0;
    *p = e;
    return 1;
}

static int cookie_find(conn *c, const char *name, const char **v, size_t *vl)
{
    size_t want = strlen(name);
    for (int i = 0; i < c->nhdr; i++) {
        if (!hdr_is(c, &c->hdrs[i], "cookie")) continue;
        const char *p = c->head + c->hdrs[i].val, *end = p + c->hdrs[i].val_len, *n;
        size_t nl;
        while (cookie_next(&p, end, &n, &nl, v, vl))
            if (nl == want && !memcmp(n, name, nl)) return 1;
    }
    return 0;
}

static void h_root(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &S.root);
}

static void h_json(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &S.json);
}

static void h_gzip(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &S.gzip);
}

static void h_not_found(conn *c, const req *q)
{
    (void)q;
    resp_simple(c, 404, "text/plain", NULL, "not found\n", 10);
}

static void h_bad(conn *c, const char *why) { resp_simple(c, 400, "text/plain", NULL, why, strlen(why)); }

/* Points b[1..] at the static fill buffer for n bytes; returns the number of buffers used. */
static unsigned fill_bufs(uv_buf_t *b, size_t n)
{
    unsigned k = 0;
    for (; n; k++) {
        size_t m = n < FILL_LEN ? n : FILL_LEN;
        b[k] = uv_buf_init(S.fill, m);
        n -= m;
    }
    return k;
}

static void h_bytes(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /bytes/N\n");
    if (n > BYTES_MAX) n = BYTES_MAX;
    uv_buf_t b[BYTES_MAX / FILL_LEN + 2];
    wreq *r = resp_begin(c, 200, "application/octet-stream", (long long)n, NULL);
    resp_finish(c, r, 200, n, b, 1 + fill_bufs(b + 1, n));
}

/* N bytes in at least four chunks (at most 1 MB each); HTTP/1.0 gets a plain body instead. */
static void h_chunked(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /chunked/N\n");
    if (n > BYTES_MAX) n = BYTES_MAX;
    if (c->minor == 0) return h_bytes(c, q);
    size_t chunk = (n + 3) / 4 > FILL_LEN ? FILL_LEN : (n + 3) / 4,
           nchunks = chunk ? (n + chunk - 1) / chunk : 0;
    wreq *r = resp_begin(c, 200, "application/octet-stream", -1, "Transfer-Encoding: chunked\r\n");
    size_t offs[BYTES_MAX / FILL_LEN + 8], head_len = r->out.len, left = n;
    for (size_t i = 0; i < nchunks; i++) { /* framing before chunk i, in r->out */
        offs[i] = r->out.len;
        size_t m = left < chunk ? left : chunk;
        buf_addf(&r->out, "%s%zx\r\n", i ? "\r\n" : "", m);
        left -= m;
    }
    offs[nchunks] = r->out.len;
    buf_adds(&r->out, nchunks ? "\r\n0\r\n\r\n" : "0\r\n\r\n");
    offs[nchunks + 1] = r->out.len;
    uv_buf_t b[2 * (BYTES_MAX / FILL_LEN + 8)];
    unsigned k = 1;
    r->out.len = head_len; /* b[0] is the head only */
    left = n;
    for (size_t i = 0; i <= nchunks; i++) {
        b[k++] = uv_buf_init(r->out.p + offs[i], offs[i + 1] - offs[i]);
        if (i < nchunks) {
            size_t m = left < chunk ? left : chunk;
            b[k++] = uv_buf_init(S.fill, m);
            left -= m;
        }
    }
    resp_finish(c, r, 200, n, b, k);
}

static void on_delay(uv_timer_t *t);

static void h_delay(conn *c, const req *q)
{
    unsigned long long ms;
    if (parse_num(q->arg, q->alen, &ms)) return h_bad(c, "usage: /delay/MS\n");
    c->delay_ms = ms > 3600000 ? 3600000 : (unsigned)ms;
    c->delayed = 1;
    c->delay_t0 = uv_hrtime();
    uv_update_time(c->timer.loop); /* the loop's cached clock may lag: never fire early */
    uv_timer_start(&c->timer, on_delay, c->delay_ms, 0);
}

static void on_delay(uv_timer_t *t)
{
    conn *c = t->data;
    worker *w = c->w;
    unsigned long long us = (uv_hrtime() - c->delay_t0) / 1000;
    if (us < (unsigned long long)c->delay_ms * 1000) { /* woke early (ms timer resolution): wait the rest */
        uv_timer_start(&c->timer, on_delay, (c->delay_ms * 1000ULL - us + 999) / 1000, 0);
        return;
    }
    w->hx.len = w->sb.len = 0;
    buf_addf(&w->hx, "X-Delay-Us: %llu\r\n", us);
    buf_addf(&w->sb, "{\"delay_ms\":%u,\"waited_us\":%llu}\n", c->delay_ms, us);
    buf_add(&w->hx, "", 1);
    resp_json(c, 200, w->hx.p);
    c->delayed = 0;
    conn_kick(c);
}

static void h_status(conn *c, const req *q)
{
    unsigned long long s;
    if (parse_num(q->arg, q->alen, &s) || s < 200 || s > 599)
        return h_bad(c, "usage: /status/N with N in 200..599\n");
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", (int)s, reason((int)s));
    resp_simple(c, (int)s, "text/plain", NULL, body, n);
}

static void h_echo(conn *c, const req *q)
{
    if (c->too_big) return resp_simple(c, 413, "text/plain", NULL, "body over 1 MB\n", 15);
    buf *b = &c->w->sb;
    b->len = 0;
    buf_adds(b, "{\"method\":");
    json_str(b, llhttp_method_name(c->method), strlen(llhttp_method_name(c->method)));
    buf_adds(b, ",\"path\":");
    json_str(b, q->path, q->plen);
    buf_adds(b, ",\"query\":");
    json_str(b, q->query, q->qlen);
    buf_adds(b, ",\"headers\":{");
    int first = 1;
    for (int i = 0; i < c->nhdr; i++) {
        hdr *h = &c->hdrs[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = c->hdrs[j].name_len == h->name_len &&
                   !strncasecmp(c->head + c->hdrs[j].name, c->head + h->name, h->name_len);
        if (seen) continue;
        buf_adds(b, first ? "" : ",");
        first = 0;
        size_t at = b->len;
        json_str(b, c->head + h->name, h->name_len);
        for (size_t k = at; k < b->len; k++)
            if (b->p[k] >= 'A' && b->p[k] <= 'Z') b->p[k] |= 32;
        buf_adds(b, ":");
        buf *v = &c->w->hx; /* same-named headers joined with ", " */
        v->len = 0;
        for (int k = i; k < c->nhdr; k++) {
            hdr *o = &c->hdrs[k];
            if (o->name_len != h->name_len || strncasecmp(c->head + o->name, c->head + h->name, h->name_len))
                continue;
            if (v->len) buf_adds(v, ", ");
            buf_add(v, c->head + o->val, o->val_len);
        }
        json_str(b, v->p ? v->p : "", v->len);
    }
    buf_adds(b, "},\"body\":");
    json_str(b, c->body.p ? c->body.p : "", c->body.len);
    buf_adds(b, "}\n");
    resp_json(c, 200, NULL);
}

static int cookie_safe(const char *s, size_t n, int name)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == ';' || ch == ',' || ch == '"' || ch == '\\' ||
            (name && ch == '='))
            return 0;
    }
    return 1;
}

static void h_cookie_set(conn *c, const req *q)
{
    buf *x = &c->w->hx;
    x->len = 0;
    for (size_t i = 0; i < q->qlen;) {
        size_t e = i;
        while (e < q->qlen && q->query[e] != '&')
            e++;
        const char *eq = memchr(q->query + i, '=', e - i);
        size_t nl = eq ? (size_t)(eq - q->query - i) : e - i, vl = eq ? e - i - nl - 1 : 0;
        if (nl && cookie_safe(q->query + i, nl, 1) && cookie_safe(eq ? eq + 1 : "", vl, 0))
            buf_addf(x, "Set-Cookie: %.*s=%.*s; Path=/\r\n", (int)nl, q->query + i, (int)vl,
                     eq ? eq + 1 : "");
        i = e + 1;
    }
    buf_add(x, "", 1);
    resp_simple(c, 200, "text/plain", x->p, "ok", 2);
}

static void h_cookie_check(conn *c, const req *q)
{
    (void)q;
    buf *b = &c->w->sb;
    b->len = 0;
    buf_adds(b, "{\"cookies\":{");
    int first = 1;
    for (int i = 0; i < c->nhdr; i++) {
        if (!hdr_is(c, &c->hdrs[i], "cookie")) continue;
        const char *p = c->head + c->hdrs[i].val, *end = p + c->hdrs[i].val_len, *n, *v;
        size_t nl, vl;
        while (cookie_next(&p, end, &n, &nl, &v, &vl)) {
            buf_adds(b, first ? "" : ",");
            first = 0;
            json_str(b, n, nl);
            buf_adds(b, ":");
            json_str(b, v, vl);
        }
    }
    buf_adds(b, "}}\n");
    resp_json(c, 200, NULL);
}

static void h_redirect(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /redirect/N\n");
    char loc[64];
    if (n)
        snprintf(loc, sizeof loc, "Location: /redirect/%llu\r\n", n - 1);
    else
        snprintf(loc, sizeof loc, "Location: /\r\n");
    resp_simple(c, 302, "text/plain", loc, "redirecting\n", 12);
}

static void h_redirect_to(conn *c, const req *q)
{
    buf *u = &c->w->sb, *x = &c->w->hx;
    u->len = x->len = 0;
    if (!form_get(q->query, q->qlen, "url", u) || !u->len) return h_bad(c, "usage: /redirect-to?url=URL\n");
    for (size_t i = 0; i < u->len; i++)
        if ((unsigned char)u->p[i] < 0x20 || u->p[i] == 0x7f) return h_bad(c, "bad url\n");
    buf_addf(x, "Location: %.*s\r\n", (int)u->len, u->p);
    buf_add(x, "", 1);
    resp_simple(c, 302, "text/plain", x->p, "redirecting\n", 12);
}

static int user_ok(const char *s, size_t n)
{
    if (!n || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@~-", s[i]) || !s[i])
            return 0;
    return 1;
}

static void h_login(conn *c, const req *q)
{
    worker *w = c->w;
    if (c->method != HTTP_POST)
        return resp_simple(c, 405, "text/plain", "Allow: POST\r\n", "POST user=&pass=\n", 17);
    w->hx.len = w->sb.len = 0;
    buf *u = &w->hx;
    if (!form_get(c->body.p ? c->body.p : "", c->body.len, "user", u)) form_get(q->query, q->qlen, "user", u);
    if (!user_ok(u->p, u->len)) {
        buf_adds(&w->sb, "{\"ok\":false,\"error\":\"user must be 1-64 of [A-Za-z0-9._@~-]\"}\n");
        return resp_json(c, 400, NULL);
    }
    unsigned long long id = atomic_fetch_add(&S.sessions, 1) + 1;
    buf_adds(&w->sb, "{\"ok\":true,\"user\":");
    json_str(&w->sb, u->p, u->len);
    buf_adds(&w->sb, "}\n");
    char extra[160];
    snprintf(extra, sizeof extra, "Set-Cookie: session=%.*s-%llu; Path=/; HttpOnly\r\n", (int)u->len, u->p,
             id);
    resp_json(c, 200, extra);
}

static void h_account(conn *c, const req *q)
{
    (void)q;
    const char *v;
    size_t vl;
    buf *b = &c->w->sb;
    b->len = 0;
    if (cookie_find(c, "session", &v, &vl)) {
        const char *dash = NULL;
        for (size_t i = 0; i < vl; i++)
            if (v[i] == '-') dash = v + i;
        unsigned long long id;
        if (dash && user_ok(v, dash - v) && !parse_num(dash + 1, v + vl - dash - 1, &id)) {
            buf_adds(b, "{\"ok\":true,\"user\":");
            json_str(b, v, dash - v);
            buf_addf(b, ",\"session\":%llu}\n", id);
            return resp_json(c, 200, NULL);
        }
    }
    buf_adds(b, "{\"ok\":false,\"error\":\"login required\"}\n");
    resp_json(c, 401, NULL);
}

static void h_item(conn *c, const req *q)
{
    unsigned long long id;
    if (parse_num(q->arg, q->alen, &id) || id > 999999999) return h_not_found(c, q);
    unsigned cents = (unsigned)((id * 7919 + 199) % 10000);
    buf *b = &c->w->sb;
    b->len = 0;
    buf_addf(b, "{\"id\":%llu,\"name\":\"item %llu\",\"price\":%u.%02u}\n", id, id, cents / 100, cents % 100);
    resp_json(c, 200, NULL);
}

typedef void (*handler)(conn *c, const req *q);

static const struct route {
    const char *path;
    int prefix, body;
    handler fn;
} ROUTES[] = {
    {"/", 0, 0, h_root},
    {"/json", 0, 0, h_json},
    {"/gzip", 0, 0, h_gzip},
    {"/bytes/", 1, 0, h_bytes},
    {"/delay/", 1, 0, h_delay},
    {"/status/", 1, 0, h_status},
    {"/chunked/", 1, 0, h_chunked},
    {"/echo", 0, 1, h_echo},
    {"/cookie/set", 0, 0, h_cookie_set},
    {"/cookie/check", 0, 0, h_cookie_check},
    {"/redirect/", 1, 0, h_redirect},
    {"/redirect-to", 0, 0, h_redirect_to},
    {"/login", 0, 1, h_login},
    {"/account", 0, 0, h_account},
    {"/item/", 1, 0, h_item},
};
#define NROUTES ((int)(sizeof ROUTES / sizeof ROUTES[0]))

static void req_split(conn *c, req *q)
{
    const char *u = c->head, *qm = memchr(u, '?', c->url_len);
    q->path = u;
    q->plen = qm ? (size_t)(qm - u) : c->url_len;
    q->query = qm ? qm + 1 : "";
    q->qlen = qm ? c->url_len - q->plen - 1 : 0;
}

static int route_find(const req *q)
{
    for (int i = 0; i < NROUTES; i++) {
        size_t n = strlen(ROUTES[i].path);
        if (ROUTES[i].prefix ? q->plen > n && !memcmp(q->path, ROUTES[i].path, n)
                             : q->plen == n && !memcmp(q->path, ROUTES[i].path, n))
            return i;
    }
    return -1;
}

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
    req q;
    req_split(c, &q);
    c->route = route_find(&q);
    c->want_body = c->route >= 0 && ROUTES[c->route].body;
    if (p->http_major == 1 && p->http_minor == 1) { /* answer Expect: 100-continue */
        for (int i = 0; i < c->nhdr; i++) {
            hdr *h = &c->hdrs[i];
            if (hdr_is(c, h, "expect") && h->val_len == 12 &&
                !strncasecmp(c->head + h->val, "100-continue", 12)) {
                uv_buf_t b = uv_buf_init((char *)CONTINUE, sizeof CONTINUE - 1);
                c->ops->send(c, wreq_get(c->w), &b, 1);
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
        buf_add(&c->body, at, n);
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
    req q;
    req_split(c, &q);
    if (c->route < 0)
        h_not_found(c, &q);
    else {
        q.arg = q.path + strlen(ROUTES[c->route].path);
        q.alen = q.plen - strlen(ROUTES[c->route].path);
        ROUTES[c->route].fn(c, &q);
    }
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
    resp_simple(c, status, "text/plain", NULL, "bad request\n", 12);
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
static void conn_kick(conn *c)
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
        conn_kick(c);
    } else if (n < 0)
        conn_close(c);
}

/* A recycled or new connection, its handles initialised. */
static conn *conn_get(worker *w)
{
    conn *c = w->free_conns;
    if (c)
        w->free_conns = c->next;
    else if ((c = calloc(1, sizeof *c))) {
        c->w = w;
        if (S.o->tls) {
            c->ssl = malloc(sizeof *c->ssl);
            if (c->ssl) mbedtls_ssl_init(c->ssl);
            if (!c->ssl || mbedtls_ssl_setup(c->ssl, &w->conf)) {
                free(c->ssl);
                free(c);
                return NULL;
            }
            mbedtls_ssl_set_bio(c->ssl, c, tls_bio_send, tls_bio_recv, NULL);
        }
    } else
        return NULL;
    memset(c, 0, offsetof(conn, w));
    c->ops = S.o->tls ? &TLS_OPS : &TCP_OPS;
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
    if (uv_accept(srv, (uv_stream_t *)&c->tcp)) return conn_close(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (S.log_fd >= 0) peer_name(c);
    conn_kick(c); /* starts reading */
}

/* ---- TLS setup: a fresh key and self-signed certificate per process --------------------------- */

/* subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1 (mbedTLS 2.28 has no helper for it). */
static int san_write(unsigned char *buf, size_t size, unsigned char **start)
{
    static const unsigned char ip4[4] = {127, 0, 0, 1}, ip6[16] = {[15] = 1};
    unsigned char *p = buf + size;
    int len = 0, r;
#define W(x)                                                                                                 \
    do {                                                                                                     \
        if ((r = (x)) < 0) return r;                                                                         \
        len += r;                                                                                            \
    } while (0)
    W(mbedtls_asn1_write_raw_buffer(&p, buf, ip6, 16));
    W(mbedtls_asn1_write_len(&p, buf, 16));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
    W(mbedtls_asn1_write_raw_buffer(&p, buf, ip4, 4));
    W(mbedtls_asn1_write_len(&p, buf, 4));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
    W(mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)"localhost", 9));
    W(mbedtls_asn1_write_len(&p, buf, 9));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
    W(mbedtls_asn1_write_len(&p, buf, len));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
#undef W
    *start = p;
    return len;
}

/* Makes an EC P-256 key and a self-signed certificate for localhost into S.key_pem/S.crt_pem. */
static int tls_make_cert(void)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    unsigned char san[128], *san_p;
    char nb[16], na[16];
    time_t now = time(NULL), before = now - 86400, after = now + 10 * 365 * 86400L;
    struct tm tm;
    strftime(nb, sizeof nb, "%Y%m%d%H%M%S", gmtime_r(&before, &tm));
    strftime(na, sizeof na, "%Y%m%d%H%M%S", gmtime_r(&after, &tm));
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    int san_len,
        rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, (const unsigned char *)"parrot", 6);
    if (!rc) rc = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (!rc)
        rc =
            mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random, &drbg);
    if (!rc) rc = mbedtls_mpi_fill_random(&serial, 8, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if (!rc) rc = mbedtls_x509write_crt_set_subject_name(&crt, "CN=localhost");
    if (!rc) rc = mbedtls_x509write_crt_set_issuer_name(&crt, "CN=localhost");
    if (!rc) rc = mbedtls_x509write_crt_set_serial(&crt, &serial);
    if (!rc) rc = mbedtls_x509write_crt_set_validity(&crt, nb, na);
    if (!rc) rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0);
    if (!rc)
        rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                                           MBEDTLS_X509_KU_KEY_CERT_SIGN);
    if (!rc) rc = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
    if (!rc) rc = (san_len = san_write(san, sizeof san, &san_p)) < 0 ? san_len : 0;
    if (!rc)
        rc = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san_p,
                                                 san_len);
    if (!rc)
        rc = mbedtls_x509write_crt_pem(&crt, (unsigned char *)S.crt_pem, sizeof S.crt_pem,
                                       mbedtls_ctr_drbg_random, &drbg);
    if (!rc) rc = mbedtls_pk_write_key_pem(&key, (unsigned char *)S.key_pem, sizeof S.key_pem);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    return rc;
}

/* Each thread parses its own key and certificate: mbedTLS caches per-key state lazily. */
static int tls_worker_init(worker *w)
{
    mbedtls_entropy_init(&w->entropy);
    mbedtls_ctr_drbg_init(&w->drbg);
    mbedtls_ssl_config_init(&w->conf);
    mbedtls_x509_crt_init(&w->crt);
    mbedtls_pk_init(&w->key);
    mbedtls_ssl_cache_init(&w->cache);
    w->tls_ready = 1;
    int rc = mbedtls_ctr_drbg_seed(&w->drbg, mbedtls_entropy_func, &w->entropy,
                                   (const unsigned char *)"parrot", 6);
    if (!rc) rc = mbedtls_x509_crt_parse(&w->crt, (const unsigned char *)S.crt_pem, strlen(S.crt_pem) + 1);
    if (!rc)
        rc = mbedtls_pk_parse_key(&w->key, (const unsigned char *)S.key_pem, strlen(S.key_pem) + 1, NULL, 0);
    if (!rc)
        rc = mbedtls_ssl_config_defaults(&w->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc) return rc;
    mbedtls_ssl_conf_rng(&w->conf, mbedtls_ctr_drbg_random, &w->drbg);
    mbedtls_ssl_conf_session_cache(&w->conf, &w->cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
    return mbedtls_ssl_conf_own_cert(&w->conf, &w->crt, &w->key);
}

static void tls_worker_free(worker *w)
{
    if (!w->tls_ready) return;
    mbedtls_ssl_cache_free(&w->cache);
    mbedtls_pk_free(&w->key);
    mbedtls_x509_crt_free(&w->crt);
    mbedtls_ssl_config_free(&w->conf);
    mbedtls_ctr_drbg_free(&w->drbg);
    mbedtls_entropy_free(&w->entropy);
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
        conn_close(w->conns);
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
    if (S.o->tls && tls_worker_init(w)) {
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
        buf_free(&c->body), buf_free(&c->cin), buf_free(&c->tout);
        free(c);
    }
    for (wreq *r; (r = w->free_wreqs);) {
        w->free_wreqs = r->next;
        buf_free(&r->out);
        free(r);
    }
    buf_free(&w->sb), buf_free(&w->hx), buf_free(&w->log);
    tls_worker_free(w);
}

/* The fixed bodies: the HTML page, the JSON document and its gzip form. */
static int bodies_init(void)
{
    S.fill = malloc(FILL_LEN);
    if (!S.fill) return -1;
    for (size_t i = 0; i < FILL_LEN; i++)
        S.fill[i] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37];
    fixed_make(&S.root, "text/html; charset=utf-8", NULL, ROOT_BODY, sizeof ROOT_BODY - 1);
    fixed_make(&S.json, "application/json", NULL, JSON_BODY, sizeof JSON_BODY - 1);
    z_stream zs = {0};
    unsigned char gz[1024];
    if (deflateInit2(&zs, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    zs.next_in = (unsigned char *)JSON_BODY;
    zs.avail_in = sizeof JSON_BODY - 1;
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    int rc = deflate(&zs, Z_FINISH);
    size_t n = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return -1;
    fixed_make(&S.gzip, "application/json", "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n", gz, n);
    return 0;
}

static void bodies_free(void)
{
    free(S.fill);
    fixed *f[] = {&S.root, &S.json, &S.gzip};
    for (int i = 0; i < 3; i++)
        for (int m = 0; m < 3; m++)
            buf_free(&f[i]->v[m]);
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

static int cert_write(const char *path)
{
    FILE *f = fopen(path, "w");
    int bad = !f || fputs(S.crt_pem, f) < 0;
    if (f && fclose(f)) bad = 1;
    if (bad) fprintf(stderr, "parrot target: cannot write certificate to %s: %s\n", path, strerror(errno));
    return bad ? -1 : 0;
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
    if (addr_parse(o->host ? o->host : "127.0.0.1", o->port) || bodies_init()) return -1;
    if (o->tls && tls_make_cert()) {
        fprintf(stderr, "parrot target: cannot make a TLS certificate\n");
        return -1;
    }
    if (o->tls && o->cert_out && cert_write(o->cert_out)) return -1;
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
    bodies_free();
    if (S.log_fd >= 0) close(S.log_fd);
    return rc ? 1 : 0;
}
