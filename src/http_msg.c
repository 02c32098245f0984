/* http_msg: the head search of http.h (http_head_next, http_res_header, http_res_reason), then
 * the llhttp callbacks of a response, in the order llhttp calls them: headers complete (where the
 * head ends is known at the first body byte, at the end of the message, or where llhttp pauses
 * before a chunked body: the head is taken there, its cookies stored, decoding set up), body
 * (kept, decoded, or only counted), message complete. No callback sees a header: the head is one
 * block of bytes, searched when a header is asked for. */
#include "http_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "stats.h"

static int fail(http_msg *m, int kind, const char *msg)
{
    if (!m->err_kind) {
        m->err_kind = kind;
        snprintf(m->err_msg, sizeof m->err_msg, "%s (%s)", msg, m->res->url);
    }
    return -1;
}

void http_msg_start(http_msg *m)
{
    m->complete = m->keep_alive = 0;
    m->err_kind = 0;
    m->err_msg[0] = '\0';
    m->hlen = 0;
    m->headers_done = m->head_pending = m->next_message = 0;
    m->body_cap = 0;
}

static void z_drop(http_msg *m)
{
    if (m->z) {
        inflateEnd(m->z);
        free(m->z);
        m->z = NULL;
    }
}

void http_msg_finish(http_msg *m)
{
    http_res *r = m->res;
    if (!m->discard) {
        if (!r->body)
            r->body = calloc(1, 1);
        else
            r->body[r->body_len] = '\0'; /* body_keep leaves room */
    }
    m->headers_done = 0;  /* the head was copied into res by head_take; hbuf is reused */
    if (m->hcap > 8192) { /* unless a large head grew it: a kept-alive VU should not hold that */
        free(m->hbuf);
        m->hbuf = NULL;
        m->hlen = m->hcap = 0;
    }
    z_drop(m);
}

void http_msg_free(http_msg *m)
{
    z_drop(m);
    free(m->hbuf);
    m->hbuf = NULL;
    m->hlen = m->hcap = 0;
}

/* ---- the head, searched when asked (declared in http.h) ---- */

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* The line at `at` (up to len bytes): its length without the line end; *next past the line end. */
static size_t line_of(const char *at, size_t len, size_t *next)
{
    const char *nl = memchr(at, '\n', len);
    size_t n = nl ? (size_t)(nl - at) : len;
    *next = nl ? n + 1 : n;
    return n && at[n - 1] == '\r' ? n - 1 : n;
}

int http_head_next(const char *head, size_t len, size_t *pos, http_header *h)
{
    size_t i = *pos, adv;
    if (!head) return 0;
    if (i == 0) { /* the status line */
        line_of(head, len, &adv);
        i = adv;
    }
    while (i < len) {
        const char *line = head + i;
        size_t n = line_of(line, len - i, &adv);
        i += adv;
        if (n == 0) break; /* the empty line that ends the head */
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line || is_ows(line[0])) continue; /* no name: llhttp let it through */
        const char *v = colon + 1, *e = line + n;
        while (i < len && is_ows(head[i])) { /* obsolete line folding: the value goes on */
            size_t k = line_of(head + i, len - i, &adv);
            e = head + i + k;
            i += adv;
        }
        while (v < e && is_ows(*v))
            v++;
        while (e > v && is_ows(e[-1]))
            e--;
        h->name = line, h->name_len = (size_t)(colon - line);
        h->value = v, h->value_len = (size_t)(e - v);
        *pos = i;
        return 1;
    }
    *pos = len;
    return 0;
}

const char *http_res_header(const http_res *res, const char *name, size_t *len)
{
    size_t n = strlen(name), pos = 0;
    http_header h;
    while (http_head_next(res->head, res->head_len, &pos, &h))
        if (h.name_len == n && !strncasecmp(h.name, name, n)) {
            if (len) *len = h.value_len;
            return h.value;
        }
    return NULL;
}

const char *http_res_reason(const http_res *res, size_t *len)
{
    *len = 0;
    if (!res->head) return "";
    size_t adv, n = line_of(res->head, res->head_len, &adv);
    const char *sp = memchr(res->head, ' ', n); /* "HTTP/1.1 200 OK": after the version and the code */
    if (!sp) return "";
    size_t at = (size_t)(sp - res->head) + 1;
    while (at < n && res->head[at] >= '0' && res->head[at] <= '9')
        at++;
    while (at < n && res->head[at] == ' ')
        at++;
    *len = n - at;
    return res->head + at;
}

/* ---- the reader ---- */

/* The path part of the target, for cookies. */
static void target_path(const char *target, char *out, size_t outlen)
{
    size_t n = strcspn(target, "?");
    snprintf(out, outlen, "%.*s", (int)n, target);
}

/* Keep the part of a head that came in this read: the rest comes in the next ones. */
static int head_keep(http_msg *m, const char *at, size_t n)
{
    if (m->hlen + n > HTTP_MAX_HEADER_BYTES) return fail(m, ERR_TOO_LARGE, "response headers over 64 KB");
    if (m->hlen + n + 1 > m->hcap) {
        size_t cap = m->hcap ? m->hcap * 2 : 512;
        while (cap < m->hlen + n + 1)
            cap *= 2;
        char *q = realloc(m->hbuf, cap);
        if (!q) return fail(m, ERR_TOO_LARGE, "out of memory for headers");
        m->hbuf = q, m->hcap = cap;
    }
    memcpy(m->hbuf + m->hlen, at, n);
    m->hlen += n;
    return 0;
}

/* The final response's head is whole: the bytes kept from earlier reads, then [at, end). Copy it
 * into the response, store its cookies, set up decoding. */
static int head_take(http_msg *m, const char *at, const char *end)
{
    http_res *r = m->res;
    size_t n = (size_t)(end - at), skip = 0;
    /* llhttp passes over line ends before a message (after a 1xx, say): they are not its head */
    while (skip < m->hlen && (m->hbuf[skip] == '\r' || m->hbuf[skip] == '\n'))
        skip++;
    if (skip == m->hlen)
        while (n && (*at == '\r' || *at == '\n'))
            at++, n--;
    size_t kept = m->hlen - skip, len = kept + n;
    if (len > HTTP_MAX_HEADER_BYTES) return fail(m, ERR_TOO_LARGE, "response headers over 64 KB");
    char *room = http_res_head_room(r);
    if (r->head != room) free(r->head);
    r->head = len + 1 <= HTTP_HEAD_ROOM ? room : malloc(len + 1);
    if (!r->head) {
        r->head = room, r->head_len = 0;
        return fail(m, ERR_TOO_LARGE, "out of memory for headers");
    }
    if (kept) memcpy(r->head, m->hbuf + skip, kept);
    if (n) memcpy(r->head + kept, at, n);
    r->head[len] = '\0';
    r->head_len = len;
    m->hlen = 0;
    char path[2048];
    path[0] = '\0';
    const char *enc = NULL;
    size_t elen = 0;
    /* Only Set-Cookie and Content-Encoding matter here: a line is looked at closer only when its
     * name has the length of one of them (http_head_next then reads it, line folding included). */
    const char *h = r->head, *hend = h + len, *nl = memchr(h, '\n', len);
    for (const char *line = nl ? nl + 1 : hend; line < hend; line = nl + 1) {
        if (!(nl = memchr(line, '\n', (size_t)(hend - line)))) break;
        size_t ll = (size_t)(nl - line), pos = (size_t)(line - h);
        http_header hd;
        if ((ll > 10 && line[10] == ':' && m->jar && !strncasecmp(line, "Set-Cookie", 10)) ||
            (ll > 16 && line[16] == ':' && !enc && !strncasecmp(line, "Content-Encoding", 16))) {
            if (!http_head_next(h, len, &pos, &hd)) break;
            nl = h + pos - 1; /* the value may have gone on over folded lines */
            if (hd.name_len == 10) {
                if (!path[0]) target_path(m->target, path, sizeof path);
                cookie_jar_set(m->jar, m->host, path, m->secure, hd.value, hd.value_len, (int64_t)time(NULL));
            } else {
                enc = hd.value, elen = hd.value_len;
            }
        }
    }
    int gzip =
        enc && ((elen == 4 && !strncasecmp(enc, "gzip", 4)) || (elen == 6 && !strncasecmp(enc, "x-gzip", 6)));
    int deflate = enc && elen == 7 && !strncasecmp(enc, "deflate", 7);
    if (m->compression && !m->discard && !m->is_head && (gzip || deflate)) {
        m->z = calloc(1, sizeof *m->z);
        if (!m->z || inflateInit2(m->z, 15 + 32) != Z_OK) {
            free(m->z);
            m->z = NULL;
            return fail(m, ERR_PROTOCOL, "zlib init failed");
        }
        m->z_fallback_ok = deflate; /* some servers send raw deflate without the zlib header */
    }
    return 0;
}

/* The head ends here; llhttp does not say where. A body that is not chunked starts right after it
 * (on_body takes the head there), no body ends the message there (http_msg_execute takes it where
 * llhttp pauses at the end); before a chunked body llhttp pauses now, for the same reason. A 1xx
 * head is not kept. */
static int on_headers_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    int st = h->status_code;
    if (st == 101) return fail(m, ERR_PROTOCOL, "101 Switching Protocols is not supported");
    if (st < 100) return fail(m, ERR_PROTOCOL, "a status code under 100");
    if (st < 200) return 0;
    m->res->status = st;
    m->res->http_minor = h->http_minor;
    if (m->is_head) h->flags |= F_SKIPBODY; /* as returning 1 would */
    m->head_pending = 1;
    return (h->flags & F_CHUNKED) && !m->is_head ? HPE_PAUSED : 0;
}

/* Take the pending head: it ends at `end`, in the bytes of the current llhttp_execute call. */
static int head_now(http_msg *m, const char *end)
{
    m->head_pending = 0;
    if (head_take(m, m->chunk, end) < 0) return -1;
    m->headers_done = 1;
    return 0;
}

static void body_keep(http_msg *m, const char *d, size_t n)
{
    http_res *r = m->res;
    if (r->body_len + n > m->max_body) {
        r->truncated = 1;
        n = m->max_body - r->body_len;
    }
    if (!n) return;
    if (r->body_len + n + 1 > m->body_cap) {
        size_t cap = m->body_cap ? m->body_cap * 2 : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > m->max_body + 1) cap = m->max_body + 1;
        char *q = realloc(r->body, cap);
        if (!q) {
            r->truncated = 1;
            return;
        }
        r->body = q, m->body_cap = cap;
    }
    memcpy(r->body + r->body_len, d, n);
    r->body_len += n;
}

static int body_inflate(http_msg *m, const char *at, size_t n)
{
    z_stream *z = m->z;
    char out[16384];
    z->next_in = (Bytef *)at;
    z->avail_in = (uInt)n;
    while (z->avail_in) {
        z->next_out = (Bytef *)out;
        z->avail_out = sizeof out;
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_DATA_ERROR && m->z_fallback_ok && z->total_out == 0) {
            m->z_fallback_ok = 0; /* retry this first chunk as raw deflate */
            if (inflateReset2(z, -15) != Z_OK) return fail(m, ERR_PROTOCOL, "zlib reset failed");
            z->next_in = (Bytef *)at;
            z->avail_in = (uInt)n;
            continue;
        }
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return fail(m, ERR_PROTOCOL, z->msg ? z->msg : "corrupt compressed body");
        m->z_fallback_ok = 0;
        body_keep(m, out, sizeof out - z->avail_out);
        if (rc == Z_STREAM_END || (rc == Z_BUF_ERROR && z->avail_out)) break;
    }
    return 0;
}

static int on_body(llhttp_t *h, const char *at, size_t n)
{
    http_msg *m = h->data;
    if (m->head_pending && head_now(m, at) < 0) return -1;
    m->res->body_bytes += n;
    if (m->discard) return 0;
    if (m->z) return body_inflate(m, at, n);
    body_keep(m, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (h->status_code >= 100 && h->status_code < 200) { /* the final response follows, from here */
        m->next_message = 1;
        return HPE_PAUSED;
    }
    m->complete = 1;
    m->keep_alive = llhttp_should_keep_alive(h);
    return HPE_PAUSED;
}

llhttp_errno_t http_msg_execute(http_msg *m, llhttp_t *h, const char *buf, size_t n)
{
    for (;;) {
        m->chunk = buf;
        llhttp_errno_t e = llhttp_execute(h, buf, n);
        if (e == HPE_OK) { /* all read: keep what belongs to a head not yet taken */
            if (!m->headers_done && n && head_keep(m, buf, n) < 0) return HPE_USER;
            return e;
        }
        if (e != HPE_PAUSED) return e;
        const char *pos = llhttp_get_error_pos(h);
        /* a head pending here ends where llhttp stopped: before a chunked body, or at the end of a
         * message without a body */
        int took = m->head_pending;
        if (took && head_now(m, pos) < 0) return HPE_USER;
        if (m->complete) return e;
        if (m->next_message) {
            m->next_message = 0;
            m->hlen = 0; /* what was kept of the 1xx head */
        } else if (!took) {
            return e;
        }
        llhttp_resume(h);
        n -= (size_t)(pos - buf);
        buf = pos;
    }
}

int http_msg_eof(http_msg *m)
{
    if (!m->head_pending) return 0;
    m->chunk = NULL; /* every byte read was kept */
    return head_now(m, NULL);
}

const llhttp_settings_t http_msg_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
