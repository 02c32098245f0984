/* tls: client-side mbedTLS for the HTTP client, with no I/O of its own. A tls_client (one per loop
 * thread) holds the RNG, parsed CA/cert/key files, SSL configs and the last session per origin;
 * a tls_conn is fed ciphertext from the socket and hands back ciphertext to write. */
#ifndef PARROT_TLS_H
#define PARROT_TLS_H

#include <stddef.h>
#include <stdint.h>

#define TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

typedef struct tls_client tls_client;
typedef struct tls_conn tls_conn;

/* What a connection asks for; NULL paths mean the client's defaults. */
typedef struct tls_opts {
    int insecure;
    const char *ca;   /* CA file replacing the default chain */
    const char *cert; /* client certificate file (PEM or DER) */
    const char *key;  /* its private key */
} tls_opts;

/* `ca_file` NULL: the system bundle, loaded on first use. `insecure`: verify nothing by default.
 * Returns NULL with a one-line reason (an unreadable `ca_file`, ...). */
tls_client *tls_client_new(const char *ca_file, int insecure, char *err, size_t errlen);
/* Every tls_conn must be freed first. */
void tls_client_free(tls_client *t);

/* A connection to `host` (SNI and name verification); `origin` keys the session cache (e.g.
 * "host:port"): a session saved by an earlier connection to it is offered for resumption. When
 * none is cached, the connection becomes the origin's first handshake (see below) unless another
 * already is. Returns NULL with a reason (a bad cert file, ...). */
tls_conn *tls_conn_new(tls_client *t, const tls_opts *o, const char *host, const char *origin, char *err,
                       size_t errlen);
void tls_conn_free(tls_conn *c);

/* The handshake stampede guard. Per client (thread), origin and option set, the first connection
 * that finds no session cached does a full handshake; until it ends, this returns 1 for further
 * new connections to the origin: they should wait for it rather than each pay a full handshake
 * (ECDHE, milliseconds of CPU) at once, then call tls_conn_new, which offers the session it left.
 * The caller bounds the wait: a first handshake that fails or hangs leaves no session. */
int tls_client_should_wait(tls_client *t, const tls_opts *o, const char *origin);
/* `c` is its origin's first handshake, still running. It ends when tls_conn_handshake returns 0 or
 * -1, or with tls_conn_free: then the origin's waiters may go. */
int tls_conn_first(const tls_conn *c);

/* Ciphertext from the socket, borrowed, not copied: call tls_conn_handshake or tls_conn_read
 * until they want more, then tls_conn_feed_end, which keeps a copy of whatever they left unread
 * (usually nothing). Returns 0, or -1 when out of memory. */
int tls_conn_feed(tls_conn *c, const char *data, size_t n);
int tls_conn_feed_end(tls_conn *c);
/* Advance the handshake with what was fed. Returns 0 when done (the session is then cached),
 * 1 when more input is needed, -1 on failure with a reason (verification failures name
 * mbedTLS's verify info). */
int tls_conn_handshake(tls_conn *c, char *err, size_t errlen);
int tls_conn_resumed(const tls_conn *c); /* the finished handshake resumed a cached session */

#define TLS_EOF (-2)
/* Plaintext out of what was fed: bytes read, 0 when more input is needed, TLS_EOF on close_notify,
 * -1 on error with a reason. */
int tls_conn_read(tls_conn *c, char *buf, size_t cap, char *err, size_t errlen);
/* Encrypt all of `data` into the pending output. Returns 0, or -1 with a reason. */
int tls_conn_write(tls_conn *c, const char *data, size_t n, char *err, size_t errlen);
/* Hand over the pending ciphertext: a malloc'ed buffer the caller frees, or NULL when none. The
 * connection keeps no output buffer between writes. */
char *tls_conn_take_out(tls_conn *c, size_t *len);

#endif
