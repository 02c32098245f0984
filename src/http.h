/* http: an HTTP/1.1 client over TCP or TLS on a libuv loop. llhttp parses, mbedTLS encrypts,
 * libuv moves bytes. A client is per loop thread (DNS cache, TLS config and session cache, proxy);
 * a pool is per virtual user (its keep-alive connections per origin and its cookie jar). */
#ifndef PARROT_HTTP_H
#define PARROT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "cookie.h"
#include "timers.h"

#define HTTP_MAX_HEADER_BYTES (64 * 1024) /* over this: ERR_TOO_LARGE */
#define HTTP_ERRMSG_MAX 160               /* bytes of an error message, NUL included */
#define HTTP_HEAD_ROOM 512 /* a response head up to this (NUL included) lives in its http_res */
#define HTTP_DEFAULT_TIMEOUT_US (60ULL * 1000000) /* whole request */
#define HTTP_DEFAULT_MAX_BODY (10 * 1024 * 1024)  /* kept bytes; the rest is read and counted */
#define HTTP_DNS_TTL_US (60ULL * 1000000)

typedef struct http_client_config {
    int insecure;               /* skip certificate verification for every request */
    const char *ca_file;        /* NULL: the system bundle */
    const char *proxy;          /* --proxy URL; NULL: from HTTP_PROXY/HTTPS_PROXY (any case) */
    const char *no_proxy;       /* NULL: from NO_PROXY (any case) */
    const char *const *resolve; /* "HOST:PORT:ADDR" pins, as curl's --resolve; NULL-terminated or NULL */
    const char *const
        *sources; /* local addresses to bind, connections spread over them; NULL-terminated or NULL */
    uint64_t connect_timeout_us; /* 0: 10 s */
    uint64_t dns_ttl_us;         /* 0: HTTP_DNS_TTL_US */
    int *dump_left; /* shared across threads (atomic); when > 0, print request/response pairs to stderr */
} http_client_config;

typedef struct http_client http_client;
typedef struct http_pool http_pool;

/* The client keeps pointers into `cfg` strings: they must outlive it. Returns NULL and writes
 * a one-line reason into `err` (e.g. an unreadable CA file). */
http_client *http_client_new(uv_loop_t *loop, timers *tm, const http_client_config *cfg, char *err,
                             size_t errlen);
/* Closes idle resources; every pool must be freed first. The loop must run afterwards for the
 * close callbacks. */
void http_client_free(http_client *c);

/* Per-client (per thread) connection counters, for tests and the summary. */
typedef struct http_conn_stats {
    uint64_t connections;    /* connections opened (attempted) */
    uint64_t tls_handshakes; /* finished TLS handshakes */
    uint64_t tls_resumed;    /* of which resumed a cached session */
} http_conn_stats;
void http_client_stats(const http_client *c, http_conn_stats *s);

http_pool *http_pool_new(http_client *c);
/* Closes the pool's connections (an in-flight request is cancelled without its callback) and
 * frees it once the loop processed the closes. */
void http_pool_free(http_pool *p);
cookie_jar *http_pool_cookies(http_pool *p);
/* Close every keep-alive connection of the pool (a VU starting anew, as a new browser). */
void http_pool_close_idle(http_pool *p);
/* The same for the idle connections to one origin only (scheme, host and port of `origin_url`);
 * -1 when the URL does not parse. */
int http_pool_close_idle_to(http_pool *p, const char *origin_url);

typedef struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
} http_header;

typedef struct http_req {
    const char *method;         /* "GET", ... */
    const char *url;            /* absolute http(s) URL */
    const http_header *headers; /* sent as given; Host, Content-Length, Cookie, User-Agent,
                                   Accept-Encoding added when absent */
    size_t nheaders;
    const char *body; /* may be NULL */
    size_t body_len;
    uint64_t timeout_us;                     /* 0: HTTP_DEFAULT_TIMEOUT_US */
    uint64_t connect_timeout_us;             /* a new connection's DNS + connect + TLS; 0: the client's */
    uint64_t start_ns;                       /* latency origin (uv_hrtime); 0: now. The rate model passes the
                                                intended start so coordinated omission does not hide stalls. */
    size_t max_body;                         /* 0: HTTP_DEFAULT_MAX_BODY */
    unsigned insecure : 1;                   /* skip certificate verification */
    unsigned discard_body : 1;               /* count body bytes, keep none */
    unsigned compression : 1;                /* send Accept-Encoding: gzip, deflate and decode the body */
    unsigned http10 : 1;                     /* speak HTTP/1.0 (and close after) */
    unsigned no_cookies : 1;                 /* neither send nor store cookies */
    const char *tls_cert, *tls_key, *tls_ca; /* file paths, or NULL */
} http_req;

/* A finished exchange. Every pointer is owned by the response (freed by http_res_free). */
typedef struct http_res {
    int status;         /* 0 when no response came */
    int err;            /* enum stats_err (stats.h): ERR_NONE or the transport failure */
    const char *errmsg; /* one line, e.g. "connect: connection refused (127.0.0.1:9)"; "" when none
                           (then static), else owned */
    int http_minor;     /* 0 or 1 */
    char *head;         /* owned: the status line and headers exactly as received, the empty line
                           that ends them included, NUL-terminated; NULL when none came */
    size_t head_len;
    char *body;                   /* NUL-terminated; decoded when compression was asked; NULL if discarded */
    size_t body_len;              /* bytes kept */
    uint64_t body_bytes;          /* body bytes received on the wire */
    int truncated;                /* more than max_body arrived; the rest was read and discarded */
    uint64_t bytes_in, bytes_out; /* on the wire, headers included */
    /* Phases in microseconds; 0 when the phase did not happen (reused connection). */
    uint64_t dns_us, connect_us, tls_us, send_us, ttfb_us, total_us;
    uint64_t latency_us; /* from req.start_ns to the last byte: what statistics record */
    int reused;          /* went over a kept-alive connection */
    char *url;           /* the URL requested; stored after the struct, in the same allocation */
} http_res;

/* Called exactly once per accepted request, always from the loop (never from inside
 * http_request). The callee owns `res`. */
typedef void (*http_done_cb)(http_res *res, void *ud);

/* Start a request on pool `p` (one in flight per pool at a time). The request's strings are
 * copied: they need not outlive the call. Returns 0, or -1 when the pool is busy. */
int http_request(http_pool *p, const http_req *req, http_done_cb cb, void *ud);
/* Cut the in-flight request, if any: its callback still runs (from the loop) with ERR_CANCELLED. */
void http_cancel(http_pool *p);

void http_res_free(http_res *res);
/* The room for a head inside a response made by http_request (after the URL). */
static inline char *http_res_head_room(http_res *res) { return res->url + strlen(res->url) + 1; }
/* Value of the first header `name` (case-insensitive), or NULL. `len` may be NULL. Values are
 * not NUL-terminated. */
const char *http_res_header(const http_res *res, const char *name, size_t *len);
/* The reason phrase of the status line ("" when none came; not NUL-terminated). */
const char *http_res_reason(const http_res *res, size_t *len);
/* The headers of a head (status line, header lines, an empty line), one per call, in order: start
 * with *pos = 0; returns 1 and fills h (name as received, value without the whitespace around
 * it, obsolete line folding kept in it), or 0 after the last. Lines may end in CRLF or LF. */
int http_head_next(const char *head, size_t len, size_t *pos, http_header *h);

#endif
