/* target_conn: internal to `parrot target` (target.c, target_routes.c, target_tls.c): the
 * connection and worker types they share, the growable buffers, and the calls into target.c that
 * the endpoints and the TLS transport make (write, close, kick, log). Not for other modules. */
#ifndef PARROT_TARGET_CONN_H
#define PARROT_TARGET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <llhttp.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>
#include <uv.h>

#define IN_CAP (16 * 1024)   /* per-connection plaintext read buffer */
#define HEAD_CAP (16 * 1024) /* request target + header names and values */
#define MAX_HDRS 100

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

/* Buffers: appends grow b (exit(1) when out of memory); target_buf_free leaves it empty. */
void target_buf_reserve(buf *b, size_t extra);
void target_buf_add(buf *b, const void *p, size_t n);
void target_buf_adds(buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void target_buf_addf(buf *b, const char *fmt, ...);
void target_buf_free(buf *b);

/* A write request from w's free list (or a new one), its out buffer empty; target_wreq_put gives
 * it back. */
wreq *target_wreq_get(worker *w);
void target_wreq_put(worker *w, wreq *r);

/* Writes bufs (which must outlive the write: static memory or r->out) on the socket. Takes r. */
void target_sock_write_raw(conn *c, wreq *r, uv_buf_t *b, unsigned n);
/* Closes the connection now (safe twice, and inside any callback). */
void target_conn_close(conn *c);
/* Decides what the connection does next: parse what is buffered, read more, wait, or end. */
void target_conn_kick(conn *c);
/* One access-log line for the request being answered (no-op without --log). */
void target_log_request(conn *c, int status, size_t bytes);
/* Is header h named lname (lower case)? */
int target_hdr_is(conn *c, const hdr *h, const char *lname);

#endif
