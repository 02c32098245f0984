/* http_msg: the llhttp callbacks of a response, in the order llhttp calls them: message begin,
 * header fields and values (accumulated in one buffer, offsets kept), headers complete (cookies,
 * decoder set-up, HEAD), body (kept, decoded, or only counted), message complete. */
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
    m->hlen = m->nh = m->reason_len = 0;
    m->in_field = m->value_open = m->headers_done = 0;
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
    m->headers_done = 0;  /* the headers were copied into res by headers_publish; hbuf is reused */
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
    free(m->hoffs);
    m->hbuf = NULL;
    m->hoffs = NULL;
    m->hlen = m->hcap = m->nh = m->hoffs_cap = 0;
}

/* The path part of the target, for cookies. */
static void target_path(const char *target, char *out, size_t outlen)
{
    size_t n = strcspn(target, "?");
    snprintf(out, outlen, "%.*s", (int)n, target);
}

static int hdr_add(http_msg *m, const char *at, size_t n)
{
    if (m->hlen + n + 1 > HTTP_MAX_HEADER_BYTES) return fail(m, ERR_TOO_LARGE, "response headers over 64 KB");
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

static int value_close(http_msg *m)
{
    if (!m->value_open) return 0;
    m->value_open = 0;
    http_msg_hdr *o = &m->hoffs[m->nh - 1];
    o->value_len = m->hlen - o->value;
    return hdr_add(m, "", 1);
}

static int on_message_begin(llhttp_t *h)
{
    http_msg *m = h->data;
    m->hlen = m->nh = m->reason_len = 0; /* after a 1xx, the final response starts afresh */
    m->in_field = m->value_open = m->headers_done = 0;
    return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    http_msg *m = h->data;
    if (m->headers_done) return 0; /* trailers are not kept */
    if (!m->in_field) {
        if (value_close(m) < 0) return -1;
        if (m->nh == m->hoffs_cap) {
            size_t cap = m->hoffs_cap ? m->hoffs_cap * 2 : 16;
            http_msg_hdr *q = realloc(m->hoffs, cap * sizeof *q);
            if (!q) return fail(m, ERR_TOO_LARGE, "out of memory for headers");
            m->hoffs = q, m->hoffs_cap = cap;
        }
        m->hoffs[m->nh++] = (http_msg_hdr){.name = m->hlen};
        m->in_field = 1;
    }
    return hdr_add(m, at, n);
}

static int on_header_field_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (m->headers_done || !m->in_field) return 0;
    http_msg_hdr *o = &m->hoffs[m->nh - 1];
    o->name_len = m->hlen - o->name;
    m->in_field = 0;
    if (hdr_add(m, "", 1) < 0) return -1;
    o->value = m->hlen;
    m->value_open = 1;
    return 0;
}

static int on_header_value(llhttp_t *h, const char *at, size_t n)
{
    http_msg *m = h->data;
    if (m->headers_done || !m->value_open) return 0;
    return hdr_add(m, at, n);
}

static int on_header_value_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (m->headers_done) return 0;
    return value_close(m);
}

/* The reason phrase goes first into hbuf (possibly in several pieces), NUL-terminated. */
static int on_status(llhttp_t *h, const char *at, size_t n)
{
    http_msg *m = h->data;
    if (n > HTTP_MAX_HEADER_BYTES) return fail(m, ERR_TOO_LARGE, "response status line over 64 KB");
    if (hdr_add(m, at, n) < 0) return -1;
    m->reason_len = m->hlen;
    return 0;
}

static int on_status_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (m->hlen != m->reason_len) return 0;
    return hdr_add(m, "", 1);
}

/* Headers are final: copy them into one block the response owns (the header array, then the
 * bytes), store cookies, set up decoding. m->hbuf stays with the reader for the next response. */
static int headers_publish(http_msg *m)
{
    http_res *r = m->res;
    free(r->hmem);
    size_t arr = m->nh * sizeof *r->headers;
    r->hmem = malloc(arr + m->hlen + 1);
    if (!r->hmem) {
        r->headers = NULL, r->hbuf = NULL, r->nheaders = 0;
        return fail(m, ERR_TOO_LARGE, "out of memory for headers");
    }
    r->headers = m->nh ? r->hmem : NULL;
    r->hbuf = (char *)r->hmem + arr;
    if (m->hlen) memcpy(r->hbuf, m->hbuf, m->hlen);
    r->hbuf[m->hlen] = '\0';
    r->nheaders = m->nh;
    r->reason_len = m->reason_len;
    r->hbuf_len = m->hlen;
    char path[2048];
    path[0] = '\0';
    for (size_t i = 0; i < m->nh; i++) {
        http_header *hd = &r->headers[i];
        hd->name = r->hbuf + m->hoffs[i].name, hd->name_len = m->hoffs[i].name_len;
        hd->value = r->hbuf + m->hoffs[i].value, hd->value_len = m->hoffs[i].value_len;
        if (m->jar && hd->name_len == 10 && !strncasecmp(hd->name, "Set-Cookie", 10)) {
            if (!path[0]) target_path(m->target, path, sizeof path);
            cookie_jar_set(m->jar, m->host, path, m->secure, hd->value, hd->value_len, (int64_t)time(NULL));
        }
    }
    size_t elen = 0;
    const char *enc = http_res_header(r, "Content-Encoding", &elen);
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

static int on_headers_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (value_close(m) < 0) return -1;
    int st = h->status_code;
    if (st == 101) return fail(m, ERR_PROTOCOL, "101 Switching Protocols is not supported");
    if (st >= 100 && st < 200) return 0; /* informational: llhttp knows it has no body */
    m->headers_done = 1;
    m->res->status = st;
    m->res->http_minor = h->http_minor;
    if (headers_publish(m) < 0) return -1;
    return m->is_head ? 1 : 0;
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
    m->res->body_bytes += n;
    if (m->discard) return 0;
    if (m->z) return body_inflate(m, at, n);
    body_keep(m, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    http_msg *m = h->data;
    if (h->status_code >= 100 && h->status_code < 200) return 0; /* read on: the final response follows */
    m->complete = 1;
    m->keep_alive = llhttp_should_keep_alive(h);
    return HPE_PAUSED;
}

const llhttp_settings_t http_msg_settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_status_complete = on_status_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
