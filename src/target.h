/* target: `parrot target`, a small fast HTTP/1.1 server (libuv + llhttp, optional TLS through
 * mbedTLS with a self-signed certificate made at start) with endpoints for demos, tests and
 * benchmarks: fixed bodies, delays, statuses, chunked bodies, echo, cookies, redirects. */
#ifndef PARROT_TARGET_H
#define PARROT_TARGET_H

typedef struct target_options {
    const char *host;     /* bind address, default "127.0.0.1" */
    int port;             /* default 8080; 0 picks a free port */
    int threads;          /* default 1; >1 uses SO_REUSEPORT listeners, one loop each */
    int tls;              /* serve HTTPS with a self-signed certificate made at start */
    const char *log_file; /* access log, one line per request, or NULL */
    int quiet;
    const char *cert_out; /* with tls: write the self-signed certificate (PEM) here, or NULL */
} target_options;

/* Runs until SIGINT/SIGTERM. Prints "listening on http://HOST:PORT" (the real port) on stdout
 * and flushes it, so scripts can wait for the line. Returns the process exit code. */
int target_main(const target_options *o);

#endif
