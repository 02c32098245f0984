/* conn: one client connection for the HTTP layer: resolve, connect (trying each address, binding
 * a source address), tunnel through a proxy with CONNECT, TLS handshake, then move bytes. TCP and
 * TLS differ only behind a small table of functions, so the HTTP layer never asks "is this TLS?".
 * New TLS connections to an origin with no session cached yet wait (up to 1 s) for the first
 * one's handshake and resume its session, so 5,000 users starting at once do not pay 5,000 full
 * handshakes on one thread before the first response. */
#ifndef PARROT_CONN_H
#define PARROT_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "dns.h"
#include "timers.h"
#include "tls.h"

/* What every connection of one loop thread shares. Owned by the HTTP client. */
typedef struct conn_ctx {
    uv_loop_t *loop;
    timers *tm;
    dns_cache *dns;                   /* owned by the HTTP client */
    tls_client *tls;                  /* owned by the HTTP client; NULL until the first https connection */
    struct sockaddr_storage *sources; /* owned array of local addresses to bind, port 0 */
    size_t nsources, next_source;
    uint64_t connect_timeout_ns;
    char *rbuf; /* owned: the read buffer every connection of the thread reuses */
    size_t rbuf_len;
    uint64_t connections, tls_handshakes, tls_resumed; /* counters */
    uint64_t tls_waited;      /* connections that waited for their origin's first TLS handshake */
    struct conn *tls_waiters; /* those waiting now (a list through the connections) */
} conn_ctx;

/* Where to connect. Strings are copied by conn_open. */
typedef struct conn_target {
    const char *host; /* origin host (SNI, CONNECT target) */
    int port;
    int tls;
    const char *proxy_host; /* NULL: direct */
    int proxy_port;
    const char *proxy_auth; /* "user:pass" for Proxy-Authorization on CONNECT, or NULL */
    tls_opts tls_opts;
    uint64_t connect_timeout_ns; /* 0: the context's connect_timeout_ns */
} conn_target;

typedef struct conn conn;

/* Events the owner receives; never from inside conn_open or conn_close. Once the connection has
 * failed or ended (fail, end) it is already closed: the owner drops its pointer. */
typedef struct conn_events {
    void (*ready)(conn *c, void *ud);                           /* established: send */
    void (*data)(conn *c, void *ud, const char *buf, size_t n); /* plaintext arrived */
    void (*end)(conn *c, void *ud, int uverr);                  /* peer closed (0) or I/O error after ready */
    void (*fail)(conn *c, void *ud, int kind, const char *msg); /* could not establish (enum stats_err) */
    void (*sent)(conn *c, void *ud, int status);                /* a conn_write reached the socket */
} conn_events;

/* A refcounted output buffer: the HTTP layer formats a request once and may send it twice
 * (a retry on a fresh connection). Freed when the last reference goes. */
typedef struct conn_out {
    int refs;
    size_t head_len, len; /* data = head (head_len bytes) then body */
    char data[];
} conn_out;
conn_out *conn_out_new(size_t len); /* refs = 1 */
void conn_out_release(conn_out *o);

/* Start connecting; NULL only when out of memory. */
conn *conn_open(conn_ctx *x, const conn_target *t, const conn_events *ev, void *ud);
/* Close now: no event after this. Memory goes once the loop processed the close. Idempotent. */
void conn_close(conn *c);
/* Queue the whole buffer (takes a reference while the write is pending). Returns 0, or a negative
 * libuv error (the connection is then unusable: close it). */
int conn_write(conn *c, conn_out *o);
void conn_set_ud(conn *c, void *ud);

/* Phase durations of the establishment, nanoseconds (0: did not happen). */
typedef struct conn_times {
    uint64_t dns_ns, connect_ns, tls_ns;
} conn_times;
void conn_get_times(const conn *c, conn_times *t);
/* Bytes moved on the socket so far (TLS records and proxy exchange included). */
void conn_get_bytes(const conn *c, uint64_t *in, uint64_t *out);
/* The address connected to, "ADDR:PORT". */
const char *conn_peer(const conn *c);

#endif
