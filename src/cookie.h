/* cookie: a browser-like cookie jar (RFC 6265): Set-Cookie with Domain, Path, Expires/Max-Age,
 * Secure and HttpOnly is stored, expired cookies drop out, and the Cookie header for a request
 * is built from what matches. One jar per virtual user. */
#ifndef PARROT_COOKIE_H
#define PARROT_COOKIE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cookie_jar cookie_jar;

cookie_jar *cookie_jar_new(void);
void cookie_jar_free(cookie_jar *j);
void cookie_jar_clear(cookie_jar *j);
/* Make dst hold copies of src's cookies (and nothing else): a saved session's jar put back, or a
 * jar saved for later. Returns 0, or -1 when out of memory (dst is then unchanged). */
int cookie_jar_copy(cookie_jar *dst, const cookie_jar *src);
/* Store one Set-Cookie header value received from `host` for request path `path`.
 * `now` is wall-clock seconds (time(NULL)), used for Expires/Max-Age. Bad cookies are ignored. */
void cookie_jar_set(cookie_jar *j, const char *host, const char *path, int secure_origin,
                    const char *set_cookie, size_t len, int64_t now);
/* Add a cookie directly (a scenario's `add_cookie`): name=value for domain/path, no expiry. */
void cookie_jar_add(cookie_jar *j, const char *domain, const char *path, const char *name, const char *value);
/* Write "a=1; b=2" for a request to host/path into `out` (NUL-terminated).
 * Returns the length written (0 when no cookie matches), or -1 if `out` is too small. */
/* How many cookies the jar holds (expired ones included until they are next looked at). */
size_t cookie_jar_size(const cookie_jar *j);
int cookie_jar_header(cookie_jar *j, const char *host, const char *path, int secure, int64_t now, char *out,
                      size_t outlen);
/* Value of the cookie `name` that would be sent to host/path, or NULL. Valid until the jar changes. */
const char *cookie_jar_get(cookie_jar *j, const char *host, const char *path, const char *name, int64_t now);

#endif
