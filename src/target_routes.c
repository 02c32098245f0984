/* target_routes: the endpoints of `parrot target` (/, /json, /gzip, /bytes/N, /delay/MS, /status/N,
 * /chunked/N, /echo, /cookie/set, /cookie/check, /redirect/N, /redirect-to, /login, /account,
 * /item/ID), the responses they write, and the fixed bodies preformatted at start. */
#include "target_routes.h"

#include "target_conn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>
#include <uv.h>
#include <zlib.h>

#define BYTES_MAX (100 << 20) /* /bytes/N and /chunked/N cap */
#define FILL_LEN (1 << 20)    /* the static body buffer, reused for every big body */

/* A preformatted response in its three Connection variants (none, close, keep-alive). */
typedef struct fixed {
    buf v[3];
    size_t body_len;
} fixed;

/* Process-wide state: written before the threads start, read-only after (but the counter). */
static struct {
    atomic_ullong sessions;
    char *fill;
    fixed root, json, gzip;
} R;

static const char ROOT_BODY[] =
    "<html><head><title>parrot target</title></head><body><a href=\"/json\">json</a>"
    "<input type=\"hidden\" name=\"token\" value=\"abc123\"></body></html>\n";
static const char JSON_BODY[] = "{\"items\":[{\"id\":1,\"name\":\"apple\"},{\"id\":2,\"name\":\"pear\"},"
                                "{\"id\":3,\"name\":\"plum\"}],\"count\":3,\"token\":\"abc123\"}\n";

/* ---- text ------------------------------------------------------------------------------------ */

/* Length of a valid UTF-8 sequence at s (2..4 bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F)) return 0;
    if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F)) return 0;
    return k;
}

/* Appends s as a JSON string; bytes that are not UTF-8 become \u00XX. */
static void json_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    target_buf_reserve(b, n * 6 + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        size_t k = ch >= 0x80 ? utf8_len((const unsigned char *)s + i, n - i) : 1;
        if (ch >= 0x80 && k) {
            memcpy(o, s + i, k);
            o += k, i += k;
            continue;
        }
        i++;
        if (ch == '"' || ch == '\\')
            *o++ = '\\', *o++ = ch;
        else if (ch == '\n')
            *o++ = '\\', *o++ = 'n';
        else if (ch == '\r')
            *o++ = '\\', *o++ = 'r';
        else if (ch == '\t')
            *o++ = '\\', *o++ = 't';
        else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[ch >> 4], o[5] = hex[ch & 15];
            o += 6;
        } else
            *o++ = ch;
    }
    *o++ = '"';
    b->len = o - b->p;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
}

/* Appends the url-decoded s ('+' is a space, as in forms). */
static void url_decode(buf *b, const char *s, size_t n)
{
    target_buf_reserve(b, n + 1);
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else
            *o++ = s[i] == '+' ? ' ' : s[i];
    }
    b->len = o - b->p;
    b->p[b->len] = 0;
}

/* Finds key in an a=1&b=2 string and appends its decoded value to out. Returns 1 if found. */
static int form_get(const char *q, size_t n, const char *key, buf *out)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && q[e] != '&')
            e++;
        if (e - i > kl && q[i + kl] == '=' && !memcmp(q + i, key, kl)) {
            url_decode(out, q + i + kl + 1, e - i - kl - 1);
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* Parses all-digit s into *v (at most 15 digits). Returns 0, or -1 if it is not a number. */
static int parse_num(const char *s, size_t n, unsigned long long *v)
{
    if (n == 0 || n > 15) return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

static const char *reason(int s)
{
    switch (s) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 418:
        return "I'm a teapot";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- responses ------------------------------------------------------------------------------- */

/* 0: nothing to say (HTTP/1.1 keep-alive), 1: close, 2: HTTP/1.0 keep-alive. */
static int conn_mode(conn *c) { return !c->keep ? 1 : c->minor == 0 && c->major == 1 ? 2 : 0; }

static void head_write(buf *b, int status, const char *ctype, long long clen, const char *extra, int mode)
{
    target_buf_addf(b, "HTTP/1.1 %d %s\r\nServer: parrot\r\n", status, reason(status));
    if (ctype) target_buf_addf(b, "Content-Type: %s\r\n", ctype);
    if (clen >= 0) target_buf_addf(b, "Content-Length: %lld\r\n", clen);
    if (extra) target_buf_adds(b, extra);
    target_buf_adds(b, mode == 1   ? "Connection: close\r\n\r\n"
                       : mode == 2 ? "Connection: keep-alive\r\n\r\n"
                                   : "\r\n");
}

/* Starts a response in a fresh write request: status line and headers. clen < 0: no length. */
static wreq *resp_begin(conn *c, int status, const char *ctype, long long clen, const char *extra)
{
    wreq *r = target_wreq_get(c->w);
    int mode = conn_mode(c);
    r->close_after = mode == 1;
    head_write(&r->out, status, ctype, clen, extra, mode);
    return r;
}

/* Sends r->out then b[1..n-1] (static memory; b[0] is filled here) and logs the request. */
static void resp_finish(conn *c, wreq *r, int status, size_t body_len, uv_buf_t *b, unsigned n)
{
    b[0] = uv_buf_init(r->out.p, r->out.len);
    if (c->is_head) n = 1, body_len = 0;
    target_log_request(c, status, body_len);
    c->ops->send(c, r, b, n);
}

/* A response whose small body is copied behind the head. */
void target_resp_simple(conn *c, int status, const char *ctype, const char *extra, const char *body, size_t n)
{
    int nobody = status == 204 || status == 304;
    wreq *r =
        resp_begin(c, status, nobody ? NULL : ctype, status == 204 ? -1 : (long long)(nobody ? 0 : n), extra);
    if (!c->is_head && !nobody) target_buf_add(&r->out, body, n);
    uv_buf_t b[1];
    resp_finish(c, r, status, nobody ? 0 : n, b, 1);
}

static void resp_json(conn *c, int status, const char *extra)
{
    target_resp_simple(c, status, "application/json", extra, c->w->sb.p, c->w->sb.len);
}

static void resp_fixed(conn *c, const fixed *f)
{
    int mode = conn_mode(c);
    wreq *r = target_wreq_get(c->w);
    r->close_after = mode == 1;
    uv_buf_t b = uv_buf_init(f->v[mode].p, f->v[mode].len - (c->is_head ? f->body_len : 0));
    target_log_request(c, 200, c->is_head ? 0 : f->body_len);
    c->ops->send(c, r, &b, 1);
}

static void fixed_make(fixed *f, const char *ctype, const char *extra, const void *body, size_t n)
{
    for (int m = 0; m < 3; m++) {
        head_write(&f->v[m], 200, ctype, (long long)n, extra, m);
        target_buf_add(&f->v[m], body, n);
    }
    f->body_len = n;
}

/* ---- endpoints ------------------------------------------------------------------------------- */

/* The parts of the request target the handlers need. */
typedef struct req {
    const char *path, *arg, *query;
    size_t plen, alen, qlen;
} req;

int target_hdr_is(conn *c, const hdr *h, const char *lname)
{
    return h->name_len == strlen(lname) && !strncasecmp(c->head + h->name, lname, h->name_len);
}

/* Next name=value pair of a Cookie header value, advancing *p. Returns 0 at the end. */
static int cookie_next(const char **p, const char *end, const char **n, size_t *nl, const char **v,
                       size_t *vl)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == ';'))
        s++;
    if (s >= end) return 0;
    const char *e = memchr(s, ';', end - s);
    if (!e) e = end;
    const char *eq = memchr(s, '=', e - s);
    *n = s, *nl = (eq ? eq : e) - s;
    *v = eq ? eq + 1 : e, *vl = eq ? (size_t)(e - eq - 1) : 0;
    *p = e;
    return 1;
}

static int cookie_find(conn *c, const char *name, const char **v, size_t *vl)
{
    size_t want = strlen(name);
    for (int i = 0; i < c->nhdr; i++) {
        if (!target_hdr_is(c, &c->hdrs[i], "cookie")) continue;
        const char *p = c->head + c->hdrs[i].val, *end = p + c->hdrs[i].val_len, *n;
        size_t nl;
        while (cookie_next(&p, end, &n, &nl, v, vl))
            if (nl == want && !memcmp(n, name, nl)) return 1;
    }
    return 0;
}

static void h_root(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &R.root);
}

static void h_json(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &R.json);
}

static void h_gzip(conn *c, const req *q)
{
    (void)q;
    resp_fixed(c, &R.gzip);
}

static void h_not_found(conn *c, const req *q)
{
    (void)q;
    target_resp_simple(c, 404, "text/plain", NULL, "not found\n", 10);
}

static void h_bad(conn *c, const char *why)
{
    target_resp_simple(c, 400, "text/plain", NULL, why, strlen(why));
}

/* Points b[1..] at the static fill buffer for n bytes; returns the number of buffers used. */
static unsigned fill_bufs(uv_buf_t *b, size_t n)
{
    unsigned k = 0;
    for (; n; k++) {
        size_t m = n < FILL_LEN ? n : FILL_LEN;
        b[k] = uv_buf_init(R.fill, m);
        n -= m;
    }
    return k;
}

static void h_bytes(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /bytes/N\n");
    if (n > BYTES_MAX) n = BYTES_MAX;
    uv_buf_t b[BYTES_MAX / FILL_LEN + 2];
    wreq *r = resp_begin(c, 200, "application/octet-stream", (long long)n, NULL);
    resp_finish(c, r, 200, n, b, 1 + fill_bufs(b + 1, n));
}

/* N bytes in at least four chunks (at most 1 MB each); HTTP/1.0 gets a plain body instead. */
static void h_chunked(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /chunked/N\n");
    if (n > BYTES_MAX) n = BYTES_MAX;
    if (c->minor == 0) return h_bytes(c, q);
    size_t chunk = (n + 3) / 4 > FILL_LEN ? FILL_LEN : (n + 3) / 4,
           nchunks = chunk ? (n + chunk - 1) / chunk : 0;
    wreq *r = resp_begin(c, 200, "application/octet-stream", -1, "Transfer-Encoding: chunked\r\n");
    size_t offs[BYTES_MAX / FILL_LEN + 8], head_len = r->out.len, left = n;
    for (size_t i = 0; i < nchunks; i++) { /* framing before chunk i, in r->out */
        offs[i] = r->out.len;
        size_t m = left < chunk ? left : chunk;
        target_buf_addf(&r->out, "%s%zx\r\n", i ? "\r\n" : "", m);
        left -= m;
    }
    offs[nchunks] = r->out.len;
    target_buf_adds(&r->out, nchunks ? "\r\n0\r\n\r\n" : "0\r\n\r\n");
    offs[nchunks + 1] = r->out.len;
    uv_buf_t b[2 * (BYTES_MAX / FILL_LEN + 8)];
    unsigned k = 1;
    r->out.len = head_len; /* b[0] is the head only */
    left = n;
    for (size_t i = 0; i <= nchunks; i++) {
        b[k++] = uv_buf_init(r->out.p + offs[i], offs[i + 1] - offs[i]);
        if (i < nchunks) {
            size_t m = left < chunk ? left : chunk;
            b[k++] = uv_buf_init(R.fill, m);
            left -= m;
        }
    }
    resp_finish(c, r, 200, n, b, k);
}

static void on_delay(uv_timer_t *t);

static void h_delay(conn *c, const req *q)
{
    unsigned long long ms;
    if (parse_num(q->arg, q->alen, &ms)) return h_bad(c, "usage: /delay/MS\n");
    c->delay_ms = ms > 3600000 ? 3600000 : (unsigned)ms;
    c->delayed = 1;
    c->delay_t0 = uv_hrtime();
    uv_update_time(c->timer.loop); /* the loop's cached clock may lag: never fire early */
    uv_timer_start(&c->timer, on_delay, c->delay_ms, 0);
}

static void on_delay(uv_timer_t *t)
{
    conn *c = t->data;
    worker *w = c->w;
    unsigned long long us = (uv_hrtime() - c->delay_t0) / 1000;
    if (us < (unsigned long long)c->delay_ms * 1000) { /* woke early (ms timer resolution): wait the rest */
        uv_timer_start(&c->timer, on_delay, (c->delay_ms * 1000ULL - us + 999) / 1000, 0);
        return;
    }
    w->hx.len = w->sb.len = 0;
    target_buf_addf(&w->hx, "X-Delay-Us: %llu\r\n", us);
    target_buf_addf(&w->sb, "{\"delay_ms\":%u,\"waited_us\":%llu}\n", c->delay_ms, us);
    target_buf_add(&w->hx, "", 1);
    resp_json(c, 200, w->hx.p);
    c->delayed = 0;
    target_conn_kick(c);
}

static void h_status(conn *c, const req *q)
{
    unsigned long long s;
    if (parse_num(q->arg, q->alen, &s) || s < 200 || s > 599)
        return h_bad(c, "usage: /status/N with N in 200..599\n");
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", (int)s, reason((int)s));
    target_resp_simple(c, (int)s, "text/plain", NULL, body, n);
}

static void h_echo(conn *c, const req *q)
{
    if (c->too_big) return target_resp_simple(c, 413, "text/plain", NULL, "body over 1 MB\n", 15);
    buf *b = &c->w->sb;
    b->len = 0;
    target_buf_adds(b, "{\"method\":");
    json_str(b, llhttp_method_name(c->method), strlen(llhttp_method_name(c->method)));
    target_buf_adds(b, ",\"path\":");
    json_str(b, q->path, q->plen);
    target_buf_adds(b, ",\"query\":");
    json_str(b, q->query, q->qlen);
    target_buf_adds(b, ",\"headers\":{");
    int first = 1;
    for (int i = 0; i < c->nhdr; i++) {
        hdr *h = &c->hdrs[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = c->hdrs[j].name_len == h->name_len &&
                   !strncasecmp(c->head + c->hdrs[j].name, c->head + h->name, h->name_len);
        if (seen) continue;
        target_buf_adds(b, first ? "" : ",");
        first = 0;
        size_t at = b->len;
        json_str(b, c->head + h->name, h->name_len);
        for (size_t k = at; k < b->len; k++)
            if (b->p[k] >= 'A' && b->p[k] <= 'Z') b->p[k] |= 32;
        target_buf_adds(b, ":");
        buf *v = &c->w->hx; /* same-named headers joined with ", " */
        v->len = 0;
        for (int k = i; k < c->nhdr; k++) {
            hdr *o = &c->hdrs[k];
            if (o->name_len != h->name_len || strncasecmp(c->head + o->name, c->head + h->name, h->name_len))
                continue;
            if (v->len) target_buf_adds(v, ", ");
            target_buf_add(v, c->head + o->val, o->val_len);
        }
        json_str(b, v->p ? v->p : "", v->len);
    }
    target_buf_adds(b, "},\"body\":");
    json_str(b, c->body.p ? c->body.p : "", c->body.len);
    target_buf_adds(b, "}\n");
    resp_json(c, 200, NULL);
}

static int cookie_safe(const char *s, size_t n, int name)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == ';' || ch == ',' || ch == '"' || ch == '\\' ||
            (name && ch == '='))
            return 0;
    }
    return 1;
}

static void h_cookie_set(conn *c, const req *q)
{
    buf *x = &c->w->hx;
    x->len = 0;
    for (size_t i = 0; i < q->qlen;) {
        size_t e = i;
        while (e < q->qlen && q->query[e] != '&')
            e++;
        const char *eq = memchr(q->query + i, '=', e - i);
        size_t nl = eq ? (size_t)(eq - q->query - i) : e - i, vl = eq ? e - i - nl - 1 : 0;
        if (nl && cookie_safe(q->query + i, nl, 1) && cookie_safe(eq ? eq + 1 : "", vl, 0))
            target_buf_addf(x, "Set-Cookie: %.*s=%.*s; Path=/\r\n", (int)nl, q->query + i, (int)vl,
                            eq ? eq + 1 : "");
        i = e + 1;
    }
    target_buf_add(x, "", 1);
    target_resp_simple(c, 200, "text/plain", x->p, "ok", 2);
}

static void h_cookie_check(conn *c, const req *q)
{
    (void)q;
    buf *b = &c->w->sb;
    b->len = 0;
    target_buf_adds(b, "{\"cookies\":{");
    int first = 1;
    for (int i = 0; i < c->nhdr; i++) {
        if (!target_hdr_is(c, &c->hdrs[i], "cookie")) continue;
        const char *p = c->head + c->hdrs[i].val, *end = p + c->hdrs[i].val_len, *n, *v;
        size_t nl, vl;
        while (cookie_next(&p, end, &n, &nl, &v, &vl)) {
            target_buf_adds(b, first ? "" : ",");
            first = 0;
            json_str(b, n, nl);
            target_buf_adds(b, ":");
            json_str(b, v, vl);
        }
    }
    target_buf_adds(b, "}}\n");
    resp_json(c, 200, NULL);
}

static void h_redirect(conn *c, const req *q)
{
    unsigned long long n;
    if (parse_num(q->arg, q->alen, &n)) return h_bad(c, "usage: /redirect/N\n");
    char loc[64];
    if (n)
        snprintf(loc, sizeof loc, "Location: /redirect/%llu\r\n", n - 1);
    else
        snprintf(loc, sizeof loc, "Location: /\r\n");
    target_resp_simple(c, 302, "text/plain", loc, "redirecting\n", 12);
}

static void h_redirect_to(conn *c, const req *q)
{
    buf *u = &c->w->sb, *x = &c->w->hx;
    u->len = x->len = 0;
    if (!form_get(q->query, q->qlen, "url", u) || !u->len) return h_bad(c, "usage: /redirect-to?url=URL\n");
    for (size_t i = 0; i < u->len; i++)
        if ((unsigned char)u->p[i] < 0x20 || u->p[i] == 0x7f) return h_bad(c, "bad url\n");
    target_buf_addf(x, "Location: %.*s\r\n", (int)u->len, u->p);
    target_buf_add(x, "", 1);
    target_resp_simple(c, 302, "text/plain", x->p, "redirecting\n", 12);
}

static int user_ok(const char *s, size_t n)
{
    if (!n || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@~-", s[i]) || !s[i])
            return 0;
    return 1;
}

static void h_login(conn *c, const req *q)
{
    worker *w = c->w;
    if (c->method != HTTP_POST)
        return target_resp_simple(c, 405, "text/plain", "Allow: POST\r\n", "POST user=&pass=\n", 17);
    w->hx.len = w->sb.len = 0;
    buf *u = &w->hx;
    if (!form_get(c->body.p ? c->body.p : "", c->body.len, "user", u)) form_get(q->query, q->qlen, "user", u);
    if (!user_ok(u->p, u->len)) {
        target_buf_adds(&w->sb, "{\"ok\":false,\"error\":\"user must be 1-64 of [A-Za-z0-9._@~-]\"}\n");
        return resp_json(c, 400, NULL);
    }
    unsigned long long id = atomic_fetch_add(&R.sessions, 1) + 1;
    target_buf_adds(&w->sb, "{\"ok\":true,\"user\":");
    json_str(&w->sb, u->p, u->len);
    target_buf_adds(&w->sb, "}\n");
    char extra[160];
    snprintf(extra, sizeof extra, "Set-Cookie: session=%.*s-%llu; Path=/; HttpOnly\r\n", (int)u->len, u->p,
             id);
    resp_json(c, 200, extra);
}

static void h_account(conn *c, const req *q)
{
    (void)q;
    const char *v;
    size_t vl;
    buf *b = &c->w->sb;
    b->len = 0;
    if (cookie_find(c, "session", &v, &vl)) {
        const char *dash = NULL;
        for (size_t i = 0; i < vl; i++)
            if (v[i] == '-') dash = v + i;
        unsigned long long id;
        if (dash && user_ok(v, dash - v) && !parse_num(dash + 1, v + vl - dash - 1, &id)) {
            target_buf_adds(b, "{\"ok\":true,\"user\":");
            json_str(b, v, dash - v);
            target_buf_addf(b, ",\"session\":%llu}\n", id);
            return resp_json(c, 200, NULL);
        }
    }
    target_buf_adds(b, "{\"ok\":false,\"error\":\"login required\"}\n");
    resp_json(c, 401, NULL);
}

static void h_item(conn *c, const req *q)
{
    unsigned long long id;
    if (parse_num(q->arg, q->alen, &id) || id > 999999999) return h_not_found(c, q);
    unsigned cents = (unsigned)((id * 7919 + 199) % 10000);
    buf *b = &c->w->sb;
    b->len = 0;
    target_buf_addf(b, "{\"id\":%llu,\"name\":\"item %llu\",\"price\":%u.%02u}\n", id, id, cents / 100,
                    cents % 100);
    resp_json(c, 200, NULL);
}

typedef void (*handler)(conn *c, const req *q);

static const struct route {
    const char *path;
    int prefix, body;
    handler fn;
} ROUTES[] = {
    {"/", 0, 0, h_root},
    {"/json", 0, 0, h_json},
    {"/gzip", 0, 0, h_gzip},
    {"/bytes/", 1, 0, h_bytes},
    {"/delay/", 1, 0, h_delay},
    {"/status/", 1, 0, h_status},
    {"/chunked/", 1, 0, h_chunked},
    {"/echo", 0, 1, h_echo},
    {"/cookie/set", 0, 0, h_cookie_set},
    {"/cookie/check", 0, 0, h_cookie_check},
    {"/redirect/", 1, 0, h_redirect},
    {"/redirect-to", 0, 0, h_redirect_to},
    {"/login", 0, 1, h_login},
    {"/account", 0, 0, h_account},
    {"/item/", 1, 0, h_item},
};
#define NROUTES ((int)(sizeof ROUTES / sizeof ROUTES[0]))

static void req_split(conn *c, req *q)
{
    const char *u = c->head, *qm = memchr(u, '?', c->url_len);
    q->path = u;
    q->plen = qm ? (size_t)(qm - u) : c->url_len;
    q->query = qm ? qm + 1 : "";
    q->qlen = qm ? c->url_len - q->plen - 1 : 0;
}

static int route_find(const req *q)
{
    for (int i = 0; i < NROUTES; i++) {
        size_t n = strlen(ROUTES[i].path);
        if (ROUTES[i].prefix ? q->plen > n && !memcmp(q->path, ROUTES[i].path, n)
                             : q->plen == n && !memcmp(q->path, ROUTES[i].path, n))
            return i;
    }
    return -1;
}

int target_route_find(conn *c, int *want_body)
{
    req q;
    req_split(c, &q);
    int route = route_find(&q);
    *want_body = route >= 0 && ROUTES[route].body;
    return route;
}

void target_route_answer(conn *c)
{
    req q;
    req_split(c, &q);
    if (c->route < 0)
        h_not_found(c, &q);
    else {
        q.arg = q.path + strlen(ROUTES[c->route].path);
        q.alen = q.plen - strlen(ROUTES[c->route].path);
        ROUTES[c->route].fn(c, &q);
    }
}

/* The fixed bodies: the HTML page, the JSON document and its gzip form. */
int target_routes_init(void)
{
    R.fill = malloc(FILL_LEN);
    if (!R.fill) return -1;
    for (size_t i = 0; i < FILL_LEN; i++)
        R.fill[i] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37];
    fixed_make(&R.root, "text/html; charset=utf-8", NULL, ROOT_BODY, sizeof ROOT_BODY - 1);
    fixed_make(&R.json, "application/json", NULL, JSON_BODY, sizeof JSON_BODY - 1);
    z_stream zs = {0};
    unsigned char gz[1024];
    if (deflateInit2(&zs, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    zs.next_in = (unsigned char *)JSON_BODY;
    zs.avail_in = sizeof JSON_BODY - 1;
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    int rc = deflate(&zs, Z_FINISH);
    size_t n = sizeof gz - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return -1;
    fixed_make(&R.gzip, "application/json", "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n", gz, n);
    return 0;
}

void target_routes_free(void)
{
    free(R.fill);
    fixed *f[] = {&R.root, &R.json, &R.gzip};
    for (int i = 0; i < 3; i++)
        for (int m = 0; m < 3; m++)
            target_buf_free(&f[i]->v[m]);
}
