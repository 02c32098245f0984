/* url: splits http:// and https:// URLs into the parts the client needs, and joins a relative
 * reference onto a base (RFC 3986, as browsers follow Location headers). */
#ifndef PARROT_URL_H
#define PARROT_URL_H

#include <stddef.h>

typedef struct url {
    int tls;            /* 1 for https */
    char host[256];     /* without brackets for IPv6 literals; lowercased */
    int port;           /* explicit or default (80 / 443) */
    int port_explicit;  /* the URL named the port */
    char *target;       /* owned: path + "?" + query, "/" when empty; never the fragment */
    char userinfo[256]; /* "user:pass" when given, else "" */
} url;

/* Parse an absolute http(s) URL. Returns 0, or -1 with a one-line reason in `err`. On success
 * the caller frees with url_free. */
int url_parse(const char *s, url *u, char *err, size_t errlen);
void url_free(url *u);
/* "host:port" as the Host header wants it (port omitted when it is the default; IPv6 in []). */
void url_host_header(const url *u, char *out, size_t outlen);
/* Resolve `ref` (absolute, scheme-relative, absolute-path or relative) against `base`.
 * Returns a malloc'ed absolute URL or NULL when it cannot. */
char *url_resolve(const char *base, const char *ref);

#endif
