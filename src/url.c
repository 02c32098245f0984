/* url: http(s) URL parsing for the client, and RFC 3986 reference resolution (section 5.2). */
#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *why, const char *s)
{
    if (err && errlen) snprintf(err, errlen, "bad URL \"%.80s\": %s", s, why);
    return -1;
}

/* Parse "host[:port]" (host may be a bracketed IPv6 literal) from [a, e) into u. */
static int parse_hostport(const char *a, const char *e, url *u, const char **why)
{
    const char *hend, *p;
    if (a < e && *a == '[') {
        hend = memchr(a, ']', (size_t)(e - a));
        if (!hend) return *why = "unclosed [ in host", -1;
        a++;
        p = hend + 1;
    } else {
        hend = memchr(a, ':', (size_t)(e - a));
        if (!hend) hend = e;
        p = hend;
    }
    size_t hl = (size_t)(hend - a);
    if (hl == 0) return *why = "empty host", -1;
    if (hl >= sizeof u->host) return *why = "host too long", -1;
    for (size_t i = 0; i < hl; i++)
        u->host[i] = (char)tolower((unsigned char)a[i]);
    u->host[hl] = '\0';
    if (p == e) return 0;
    if (*p != ':') return *why = "garbage after host", -1;
    p++;
    if (p == e) return 0; /* "host:" means the default port (RFC 3986 6.2.3) */
    long port = 0;
    for (; p < e; p++) {
        if (!isdigit((unsigned char)*p)) return *why = "bad port", -1;
        port = port * 10 + (*p - '0');
        if (port > 65535) return *why = "port out of range", -1;
    }
    if (port == 0) return *why = "port out of range", -1;
    u->port = (int)port;
    u->port_explicit = 1;
    return 0;
}

int url_parse(const char *s, url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (!s) return fail(err, errlen, "no URL", "");
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return fail(err, errlen, "space or control character", s);
    const char *p;
    if (!strncasecmp(s, "http://", 7)) {
        p = s + 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        p = s + 8;
        u->tls = 1;
    } else {
        return fail(err, errlen, "only http:// and https:// URLs are supported", s);
    }
    u->port = u->tls ? 443 : 80;
    const char *auth_end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@') at = q;
    if (at) {
        size_t ul = (size_t)(at - p);
        if (ul >= sizeof u->userinfo) return fail(err, errlen, "userinfo too long", s);
        memcpy(u->userinfo, p, ul);
        u->userinfo[ul] = '\0';
        p = at + 1;
    }
    const char *why = NULL;
    if (parse_hostport(p, auth_end, u, &why) < 0) return fail(err, errlen, why, s);
    const char *path = auth_end;
    size_t tl = strcspn(path, "#");
    int need_slash = tl == 0 || path[0] != '/';
    u->target = malloc(tl + 2);
    if (!u->target) return fail(err, errlen, "out of memory", s);
    char *t = u->target;
    if (need_slash) *t++ = '/';
    memcpy(t, path, tl);
    t[tl] = '\0';
    return 0;
}

void url_free(url *u)
{
    free(u->target);
    u->target = NULL;
}

void url_host_header(const url *u, char *out, size_t outlen)
{
    int v6 = strchr(u->host, ':') != NULL;
    int dflt = u->port == (u->tls ? 443 : 80);
    if (dflt)
        snprintf(out, outlen, v6 ? "[%s]" : "%s", u->host);
    else
        snprintf(out, outlen, v6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
}

/* ---- RFC 3986 section 5.2 ---- */

/* The five components of a reference; each is [p, p+n) or absent (p NULL). */
typedef struct span {
    const char *p;
    size_t n;
} span;
typedef struct uri_parts {
    span scheme, auth, path, query, frag;
} uri_parts;

static void split_ref(const char *s, uri_parts *r)
{
    memset(r, 0, sizeof *r);
    size_t i = strcspn(s, ":/?#");
    if (i > 0 && s[i] == ':' && isalpha((unsigned char)s[0])) {
        r->scheme = (span){s, i};
        s += i + 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        size_t n = strcspn(s, "/?#");
        r->auth = (span){s, n};
        s += n;
    }
    size_t n = strcspn(s, "?#");
    r->path = (span){s, n};
    s += n;
    if (*s == '?') {
        n = strcspn(s + 1, "#");
        r->query = (span){s + 1, n};
        s += n + 1;
    }
    if (*s == '#') r->frag = (span){s + 1, strlen(s + 1)};
}

/* remove_dot_segments (5.2.4) of `in` (length n) into `out` (at least n+1 bytes); returns length. */
static size_t remove_dots(const char *in, size_t n, char *out)
{
    size_t o = 0;
    const char *end = in + n;
    while (in < end) {
        size_t left = (size_t)(end - in);
        if (left >= 3 && !strncmp(in, "../", 3)) {
            in += 3;
        } else if (left >= 2 && !strncmp(in, "./", 2)) {
            in += 2;
        } else if (left >= 3 && !strncmp(in, "/./", 3)) {
            in += 2;
        } else if (left == 2 && !strncmp(in, "/.", 2)) {
            in += 1;
            out[o++] = '/';
            in += 1;
        } else if ((left >= 4 && !strncmp(in, "/../", 4)) || (left == 3 && !strncmp(in, "/..", 3))) {
            in += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0) o--;
            if (in == end) out[o++] = '/';
        } else if ((left == 1 && in[0] == '.') || (left == 2 && !strncmp(in, "..", 2))) {
            in = end;
        } else {
            size_t k = in[0] == '/' ? 1 : 0;
            while (in + k < end && in[k] != '/')
                k++;
            memcpy(out + o, in, k);
            o += k;
            in += k;
        }
    }
    out[o] = '\0';
    return o;
}

static void put(char **w, span s)
{
    memcpy(*w, s.p, s.n);
    *w += s.n;
}

char *url_resolve(const char *base, const char *ref)
{
    if (!base || !ref) return NULL;
    uri_parts b, r, t;
    split_ref(base, &b);
    split_ref(ref, &r);
    if (!b.scheme.p && !r.scheme.p) return NULL;
    size_t cap = strlen(base) + strlen(ref) + 8;
    char *merged = malloc(cap), *dots = malloc(cap), *out = malloc(cap);
    if (!merged || !dots || !out) goto oom;
    span path;
    memset(&t, 0, sizeof t);
    if (r.scheme.p) {
        t = r;
        path = r.path;
    } else {
        t.scheme = b.scheme;
        if (r.auth.p) {
            t.auth = r.auth;
            path = r.path;
            t.query = r.query;
        } else {
            t.auth = b.auth;
            if (r.path.n == 0) {
                path = b.path;
                t.query = r.query.p ? r.query : b.query;
            } else {
                t.query = r.query;
                if (r.path.p[0] == '/') {
                    path = r.path;
                } else { /* merge (5.2.3) */
                    size_t m = 0;
                    if (b.auth.p && b.path.n == 0) {
                        merged[m++] = '/';
                    } else {
                        const char *slash = NULL;
                        for (size_t i = 0; i < b.path.n; i++)
                            if (b.path.p[i] == '/') slash = b.path.p + i;
                        if (slash) {
                            m = (size_t)(slash - b.path.p) + 1;
                            memcpy(merged, b.path.p, m);
                        }
                    }
                    memcpy(merged + m, r.path.p, r.path.n);
                    path = (span){merged, m + r.path.n};
                }
            }
        }
        t.frag = r.frag;
    }
    size_t dn = remove_dots(path.p, path.n, dots);
    char *w = out;
    put(&w, t.scheme);
    *w++ = ':';
    if (t.auth.p) {
        *w++ = '/', *w++ = '/';
        put(&w, t.auth);
    }
    memcpy(w, dots, dn);
    w += dn;
    if (t.query.p) *w++ = '?', put(&w, t.query);
    if (t.frag.p) *w++ = '#', put(&w, t.frag);
    *w = '\0';
    free(merged);
    free(dots);
    return out;
oom:
    free(merged);
    free(dots);
    free(out);
    return NULL;
}
