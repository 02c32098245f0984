/* target_tls: internal to `parrot target`: HTTPS. A fresh key and self-signed certificate per
 * process (for localhost, 127.0.0.1 and ::1), each worker's mbedTLS server setup, and the TLS
 * transport that target.c puts behind a connection's sock_ops table. */
#ifndef PARROT_TARGET_TLS_H
#define PARROT_TARGET_TLS_H

#include "target_conn.h"

/* The TLS transport: reads decrypt into c->in, sends encrypt into records. */
extern const sock_ops target_tls_ops;

/* Makes the key and certificate (once, before the workers). Returns 0 or an mbedTLS error. */
int target_tls_make_cert(void);
/* Writes the certificate (PEM) to path; says why on stderr and returns -1 when it cannot. */
int target_tls_cert_write(const char *path);
/* The worker's own parsed copy of the key and certificate, DRBG, config and session cache.
 * Returns 0 or an mbedTLS error; target_tls_worker_free is safe after a failed init. */
int target_tls_worker_init(worker *w);
void target_tls_worker_free(worker *w);
/* A new connection's mbedTLS context on c->w's config (c->ssl, freed by the caller with
 * mbedtls_ssl_free + free). Returns 0, or -1 with c->ssl NULL. */
int target_tls_conn_init(conn *c);

#endif
