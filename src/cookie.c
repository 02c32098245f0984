/* cookie: a browser-like cookie jar (RFC 6265, with the browser refinements of RFC 6265bis:
 * no Secure cookies from insecure origins, __Secure-/__Host- prefixes). A jar is a small flat
 * array: at most COOKIE_MAX cookies, scanned linearly, which beats any index at that size. */
#include "cookie.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define COOKIE_MAX 300        /* per jar; the least recently used one goes when full */
#define COOKIE_MAX_BYTES 4096 /* a Set-Cookie value (name, value, attributes) longer is ignored */
#define HOST_MAX 256
#define EXPIRES_SESSION INT64_MAX /* no Expires/Max-Age: lives as long as the jar */
#define EXPIRES_PAST INT64_MIN    /* Max-Age <= 0: already gone */

/* One stored cookie. Owned by its jar; name, value, domain and path point into the same
 * allocation (one malloc per cookie, freed with free(c)). */
typedef struct cookie {
    char *name, *value;
    char *domain; /* lowercase, no leading dot; the exact host for host-only cookies */
    char *path;
    int64_t expires;   /* wall-clock seconds; EXPIRES_SESSION when none */
    uint64_t created;  /* jar sequence number at first creation; kept across replacement */
    uint64_t accessed; /* jar sequence number of the last use, for eviction */
    unsigned host_only : 1, secure : 1, http_only : 1;
} cookie;

/* A jar owns every cookie in `c`. */
struct cookie_jar {
    cookie **c; /* owned array of `cap` (grows up to COOKIE_MAX); NULL while the jar is empty */
    size_t cap;
    size_t n;
    uint64_t seq;
};

/* A Set-Cookie attribute set while parsing, before it becomes a cookie. Pointers borrow from
 * the header value (not NUL-terminated: each has its length). */
typedef struct cookie_parse {
    const char *name, *value, *domain, *path;
    size_t name_len, value_len, domain_len, path_len;
    int64_t expires, max_age_expires;
    int has_domain, has_path, has_expires, has_max_age, secure, http_only;
} cookie_parse;

cookie_jar *cookie_jar_new(void) { return calloc(1, sizeof(cookie_jar)); }

void cookie_jar_clear(cookie_jar *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->n; i++)
        free(j->c[i]);
    j->n = 0;
}

void cookie_jar_free(cookie_jar *j)
{
    cookie_jar_clear(j);
    if (j) free(j->c);
    free(j);
}

/* ---- small string helpers ---- */

static int is_ws(char ch) { return ch == ' ' || ch == '\t'; }

static void trim(const char **s, size_t *len)
{
    while (*len && is_ws(**s))
        (*s)++, (*len)--;
    while (*len && is_ws((*s)[*len - 1]))
        (*len)--;
}

static int has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 1;
    }
    return 0;
}

static int ieq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* Canonical host: lowercase, no port, no IPv6 brackets, no trailing dot. Returns 0, or -1 when
 * the host is empty or too long. */
static int host_canon(const char *host, char out[HOST_MAX])
{
    if (!host) return -1;
    size_t len = strlen(host);
    const char *colon = memchr(host, ':', len);
    if (host[0] == '[') {
        const char *end = memchr(host, ']', len);
        if (!end) return -1;
        host++;
        len = (size_t)(end - host);
    } else if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - host) - 1)) {
        len = (size_t)(colon - host); /* "host:port" (one colon; more means a bare IPv6) */
    }
    while (len && host[len - 1] == '.')
        len--;
    if (len == 0 || len >= HOST_MAX) return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = host[i];
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[len] = 0;
    return 0;
}

static int host_is_ip(const char *h)
{
    unsigned char buf[16];
    return strchr(h, ':') != NULL || inet_pton(AF_INET, h, buf) == 1;
}

/* RFC 6265 5.1.3: `host` (canonical) domain-matches `domain` (canonical, no leading dot). */
static int domain_match(const char *host, const char *domain)
{
    size_t hl = strlen(host), dl = strlen(domain);
    if (hl == dl) return strcmp(host, domain) == 0;
    if (hl < dl || host_is_ip(host)) return 0;
    return host[hl - dl - 1] == '.' && strcmp(host + hl - dl, domain) == 0;
}

/* The request path without query or fragment; "/" when empty or relative. */
static size_t uri_path(const char *path, const char **out)
{
    if (!path || path[0] != '/') {
        *out = "/";
        return 1;
    }
    *out = path;
    return strcspn(path, "?#");
}

/* RFC 6265 5.1.4: the directory of the request path ("/a/b/c" -> "/a/b", "/a" -> "/"). */
static size_t default_path(const char *path, const char **out)
{
    size_t len = uri_path(path, out);
    size_t last = 0;
    for (size_t i = 0; i < len; i++)
        if ((*out)[i] == '/') last = i;
    if (last == 0) {
        *out = "/";
        return 1;
    }
    return last;
}

/* RFC 6265 5.1.4: request path (len bytes) path-matches cookie path `cp`. */
static int path_match(const char *rp, size_t rlen, const char *cp)
{
    size_t cl = strlen(cp);
    if (cl > rlen || memcmp(rp, cp, cl) != 0) return 0;
    return cl == rlen || cp[cl - 1] == '/' || rp[cl] == '/';
}

/* ---- dates (RFC 6265 5.1.1: the token algorithm browsers use; it reads RFC 1123, RFC 850
 * and asctime dates alike) ---- */

static int is_delim(unsigned char ch)
{
    return ch == 0x09 || (ch >= 0x20 && ch <= 0x2f) || (ch >= 0x3b && ch <= 0x40) ||
           (ch >= 0x5b && ch <= 0x60) || (ch >= 0x7b && ch <= 0x7e);
}

/* Reads 1..max digits at s[*i]; returns the number or -1. */
static int read_digits(const char *s, size_t len, size_t *i, int min, int max)
{
    int v = 0, n = 0;
    while (*i < len && n < max && s[*i] >= '0' && s[*i] <= '9')
        v = v * 10 + (s[(*i)++] - '0'), n++;
    if (n < min || (*i < len && s[*i] >= '0' && s[*i] <= '9')) return -1;
    return v;
}

static int token_time(const char *t, size_t len, int hms[3])
{
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        if (k && (i >= len || t[i++] != ':')) return 0;
        if ((hms[k] = read_digits(t, len, &i, 1, 2)) < 0) return 0;
    }
    return 1;
}

static int token_month(const char *t, size_t len)
{
    static const char *months = "janfebmaraprmayjunjulaugsepoctnovdec";
    if (len < 3) return -1;
    for (int m = 0; m < 12; m++)
        if (strncasecmp(t, months + 3 * m, 3) == 0) return m;
    return -1;
}

static int days_in_month(int m, int y)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d[m] + (m == 1 && leap);
}

/* Parses a cookie date into wall-clock seconds. Returns 0, or -1 when it is not a date. */
static int date_parse(const char *s, size_t len, int64_t *out)
{
    int hms[3] = {0}, dom = -1, mon = -1, year = -1, have_time = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_delim((unsigned char)s[i]))
            i++;
        size_t st = i;
        while (i < len && !is_delim((unsigned char)s[i]))
            i++;
        const char *t = s + st;
        size_t tl = i - st, k = 0;
        if (tl == 0) break;
        int v;
        if (!have_time && token_time(t, tl, hms))
            have_time = 1;
        else if (dom < 0 && (v = read_digits(t, tl, &k, 1, 2)) >= 0)
            dom = v;
        else if (mon < 0 && token_month(t, tl) >= 0)
            mon = token_month(t, tl);
        else if (year < 0 && (k = 0, v = read_digits(t, tl, &k, 2, 4)) >= 0)
            year = v;
    }
    if (year >= 70 && year <= 99)
        year += 1900;
    else if (year >= 0 && year <= 69)
        year += 2000;
    if (!have_time || dom < 1 || mon < 0 || year < 1601) return -1;
    if (hms[0] > 23 || hms[1] > 59 || hms[2] > 59 || dom > days_in_month(mon, year)) return -1;
    struct tm tm = {.tm_sec = hms[2],
                    .tm_min = hms[1],
                    .tm_hour = hms[0],
                    .tm_mday = dom,
                    .tm_mon = mon,
                    .tm_year = year - 1900};
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* ---- Set-Cookie parsing ---- */

/* Max-Age: an optional '-' then digits. <= 0 means expired; huge values saturate. */
static int max_age_parse(const char *v, size_t len, int64_t now, int64_t *out)
{
    size_t i = 0;
    int neg = len && v[0] == '-';
    if (neg) i++;
    if (i == len) return -1;
    int64_t delta = 0;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        if (delta < INT64_MAX / 20) delta = delta * 10 + (v[i] - '0');
    }
    if (neg || delta == 0)
        *out = EXPIRES_PAST;
    else
        *out = (now > 0 && delta > INT64_MAX - now - 1) ? INT64_MAX - 1 : now + delta;
    return 0;
}

static void attr_apply(cookie_parse *p, const char *k, size_t kl, const char *v, size_t vl, int64_t now)
{
    int64_t t;
    if (ieq(k, kl, "expires")) {
        if (date_parse(v, vl, &t) == 0) p->expires = t, p->has_expires = 1;
    } else if (ieq(k, kl, "max-age")) {
        if (max_age_parse(v, vl, now, &t) == 0) p->max_age_expires = t, p->has_max_age = 1;
    } else if (ieq(k, kl, "domain")) {
        if (vl && v[0] == '.') v++, vl--;
        if (vl) p->domain = v, p->domain_len = vl, p->has_domain = 1;
    } else if (ieq(k, kl, "path")) {
        p->has_path = vl && v[0] == '/';
        p->path = v, p->path_len = vl;
    } else if (ieq(k, kl, "secure")) {
        p->secure = 1;
    } else if (ieq(k, kl, "httponly")) {
        p->http_only = 1;
    }
}

/* Splits "name=value; Attr=v; Flag" into `p`. Returns 0, or -1 for a cookie to ignore. */
static int set_cookie_parse(const char *s, size_t len, int64_t now, cookie_parse *p)
{
    memset(p, 0, sizeof *p);
    const char *semi = memchr(s, ';', len);
    size_t nv_len = semi ? (size_t)(semi - s) : len;
    const char *eq = memchr(s, '=', nv_len);
    if (!eq) return -1;
    p->name = s, p->name_len = (size_t)(eq - s);
    p->value = eq + 1, p->value_len = nv_len - p->name_len - 1;
    trim(&p->name, &p->name_len);
    trim(&p->value, &p->value_len);
    if (p->name_len == 0 || has_ctl(p->name, p->name_len) || has_ctl(p->value, p->value_len)) return -1;
    size_t i = nv_len;
    while (i < len) {
        i++; /* the ';' */
        const char *a = s + i, *end = memchr(a, ';', len - i);
        size_t al = end ? (size_t)(end - a) : len - i;
        i += al;
        const char *aeq = memchr(a, '=', al);
        const char *k = a, *v = "";
        size_t kl = aeq ? (size_t)(aeq - a) : al, vl = aeq ? al - kl - 1 : 0;
        if (aeq) v = aeq + 1;
        trim(&k, &kl);
        trim(&v, &vl);
        attr_apply(p, k, kl, v, vl, now);
    }
    return 0;
}

/* ---- the jar ---- */

static void jar_remove(cookie_jar *j, size_t i)
{
    free(j->c[i]);
    j->c[i] = j->c[--j->n];
}

static void jar_purge_expired(cookie_jar *j, int64_t now)
{
    for (size_t i = 0; i < j->n;)
        if (j->c[i]->expires <= now)
            jar_remove(j, i);
        else
            i++;
}

static cookie *cookie_alloc(const char *name, size_t nl, const char *value, size_t vl, const char *domain,
                            size_t dl, const char *path, size_t pl)
{
    cookie *c = malloc(sizeof *c + nl + vl + dl + pl + 4);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    char *w = (char *)(c + 1);
    const char *src[4] = {name, value, domain, path};
    size_t lens[4] = {nl, vl, dl, pl};
    char **dst[4] = {&c->name, &c->value, &c->domain, &c->path};
    for (int k = 0; k < 4; k++) {
        *dst[k] = w;
        memcpy(w, src[k], lens[k]);
        w[lens[k]] = 0;
        w += lens[k] + 1;
    }
    for (char *d = c->domain; *d; d++)
        if (*d >= 'A' && *d <= 'Z') *d = (char)(*d - 'A' + 'a');
    return c;
}

/* Stores `c` (taking ownership), replacing the cookie with the same name, domain and path, or
 * deleting it when `c` has already expired. As in browsers, a host-only cookie and a Domain
 * cookie for the same host are different cookies (RFC 6265 would merge them). */
static void jar_store(cookie_jar *j, cookie *c, int64_t now)
{
    c->created = c->accessed = ++j->seq;
    for (size_t i = 0; i < j->n; i++) {
        cookie *o = j->c[i];
        if (o->host_only != c->host_only || strcmp(o->name, c->name) || strcmp(o->domain, c->domain) ||
            strcmp(o->path, c->path))
            continue;
        c->created = o->created;
        jar_remove(j, i);
        break;
    }
    if (c->expires <= now) {
        free(c);
        return;
    }
    if (j->n == COOKIE_MAX) jar_purge_expired(j, now);
    if (j->n == COOKIE_MAX) {
        size_t lru = 0;
        for (size_t i = 1; i < j->n; i++)
            if (j->c[i]->accessed < j->c[lru]->accessed) lru = i;
        jar_remove(j, lru);
    }
    if (j->n == j->cap) { /* most VUs hold a handful of cookies: the array grows as needed */
        size_t cap = j->cap ? j->cap * 2 : 8;
        if (cap > COOKIE_MAX) cap = COOKIE_MAX;
        cookie **q = realloc(j->c, cap * sizeof *q);
        if (!q) {
            free(c);
            return;
        }
        j->c = q, j->cap = cap;
    }
    j->c[j->n++] = c;
}

/* Browsers accept Secure cookies only from secure origins; localhost counts as one. */
static int origin_trusted(const char *host, int secure_origin)
{
    size_t hl = strlen(host);
    return secure_origin || strcmp(host, "localhost") == 0 ||
           (hl > 10 && strcmp(host + hl - 10, ".localhost") == 0) || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

void cookie_jar_set(cookie_jar *j, const char *host, const char *path, int secure_origin,
                    const char *set_cookie, size_t len, int64_t now)
{
    char h[HOST_MAX], dom[HOST_MAX];
    cookie_parse p;
    if (!j || !set_cookie || len > COOKIE_MAX_BYTES || host_canon(host, h) < 0) return;
    if (set_cookie_parse(set_cookie, len, now, &p) < 0) return;
    int host_only = 1;
    if (p.has_domain) {
        if (p.domain_len >= HOST_MAX) return;
        for (size_t i = 0; i < p.domain_len; i++)
            dom[i] = (char)((p.domain[i] >= 'A' && p.domain[i] <= 'Z') ? p.domain[i] + 32 : p.domain[i]);
        dom[p.domain_len] = 0;
        if (!domain_match(h, dom)) return;
        /* Without a public-suffix list: a dot-less Domain (com, local) is only the host itself;
         * an IP address can only name itself, and then the cookie is host-only. */
        host_only = strcmp(h, dom) == 0 && (!strchr(dom, '.') || host_is_ip(h));
        if (!strchr(dom, '.') && !host_only) return;
    }
    const char *cpath = p.path;
    size_t cpl = p.path_len;
    if (!p.has_path) cpl = default_path(path, &cpath);
    if (p.secure && !origin_trusted(h, secure_origin)) return;
    if (p.name_len >= 9 && strncmp(p.name, "__Secure-", 9) == 0 && !p.secure) return;
    if (p.name_len >= 7 && strncmp(p.name, "__Host-", 7) == 0 &&
        (!p.secure || p.has_domain || !p.has_path || cpl != 1 || cpath[0] != '/'))
        return;
    const char *d = host_only ? h : dom;
    cookie *c = cookie_alloc(p.name, p.name_len, p.value, p.value_len, d, strlen(d), cpath, cpl);
    if (!c) return;
    c->host_only = (unsigned)host_only;
    c->secure = (unsigned)p.secure;
    c->http_only = (unsigned)p.http_only;
    c->expires = p.has_max_age ? p.max_age_expires : p.has_expires ? p.expires : EXPIRES_SESSION;
    jar_store(j, c, now);
}

void cookie_jar_add(cookie_jar *j, const char *domain, const char *path, const char *name, const char *value)
{
    char h[HOST_MAX];
    if (!j || !name || !*name || !value || !domain) return;
    int host_only = domain[0] != '.';
    if (host_canon(host_only ? domain : domain + 1, h) < 0) return;
    if (!path || path[0] != '/') path = "/";
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl > COOKIE_MAX_BYTES || has_ctl(name, nl) || has_ctl(value, vl) || strchr(name, '=')) return;
    cookie *c = cookie_alloc(name, nl, value, vl, h, strlen(h), path, strlen(path));
    if (!c) return;
    c->host_only = (unsigned)host_only;
    c->expires = EXPIRES_SESSION;
    jar_store(j, c, INT64_MIN);
}

int cookie_jar_copy(cookie_jar *dst, const cookie_jar *src)
{
    if (!dst || dst == src) return 0;
    size_t n = src ? src->n : 0;
    cookie **c = n ? malloc(n * sizeof *c) : NULL;
    if (n && !c) return -1;
    for (size_t i = 0; i < n; i++) {
        const cookie *o = src->c[i];
        c[i] = cookie_alloc(o->name, strlen(o->name), o->value, strlen(o->value), o->domain,
                            strlen(o->domain), o->path, strlen(o->path));
        if (!c[i]) {
            while (i--)
                free(c[i]);
            free(c);
            return -1;
        }
        c[i]->expires = o->expires, c[i]->created = o->created, c[i]->accessed = o->accessed;
        c[i]->host_only = o->host_only, c[i]->secure = o->secure, c[i]->http_only = o->http_only;
    }
    cookie_jar_clear(dst);
    free(dst->c);
    dst->c = c, dst->cap = n, dst->n = n;
    dst->seq = src ? src->seq : 0;
    return 0;
}

static int cookie_order(const void *a, const void *b)
{
    const cookie *x = *(cookie *const *)a, *y = *(cookie *const *)b;
    size_t xl = strlen(x->path), yl = strlen(y->path);
    if (xl != yl) return xl > yl ? -1 : 1;
    return x->created < y->created ? -1 : x->created > y->created;
}

/* Fills `out` with the cookies to send to host/path, in header order; returns how many. */
static size_t jar_select(cookie_jar *j, const char *host, const char *path, int secure, int64_t now,
                         cookie **out)
{
    char h[HOST_MAX];
    const char *rp;
    if (!j || host_canon(host, h) < 0) return 0;
    size_t rl = uri_path(path, &rp), n = 0;
    jar_purge_expired(j, now);
    for (size_t i = 0; i < j->n; i++) {
        cookie *c = j->c[i];
        if (c->host_only ? strcmp(h, c->domain) != 0 : !domain_match(h, c->domain)) continue;
        if (!path_match(rp, rl, c->path) || (c->secure && !secure)) continue;
        c->accessed = ++j->seq;
        out[n++] = c;
    }
    qsort(out, n, sizeof *out, cookie_order);
    return n;
}

size_t cookie_jar_size(const cookie_jar *j) { return j ? j->n : 0; }

int cookie_jar_header(cookie_jar *j, const char *host, const char *path, int secure, int64_t now, char *out,
                      size_t outlen)
{
    cookie *sel[COOKIE_MAX];
    size_t n = jar_select(j, host, path, secure, now, sel), w = 0;
    if (!out || outlen == 0) return n ? -1 : 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(sel[i]->name), vl = strlen(sel[i]->value), sep = i ? 2 : 0;
        if (w + sep + nl + 1 + vl + 1 > outlen) {
            out[0] = 0;
            return -1;
        }
        if (sep) memcpy(out + w, "; ", 2);
        memcpy(out + w + sep, sel[i]->name, nl);
        out[w + sep + nl] = '=';
        memcpy(out + w + sep + nl + 1, sel[i]->value, vl);
        w += sep + nl + 1 + vl;
    }
    out[w] = 0;
    return (int)w;
}

const char *cookie_jar_get(cookie_jar *j, const char *host, const char *path, const char *name, int64_t now)
{
    cookie *sel[COOKIE_MAX];
    if (!name) return NULL;
    size_t n = jar_select(j, host, path, 1, now, sel);
    for (size_t i = 0; i < n; i++)
        if (strcmp(sel[i]->name, name) == 0) return sel[i]->value;
    return NULL;
}
