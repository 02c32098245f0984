/* fuzz_http.h: reads one response from raw bytes the way the client does (http_msg over llhttp,
 * in two reads) and checks what it can tell from it; shared by the fuzzer (fuzz_http.c) and the
 * replay of its corpus in make test (spec/c/test_http_corpus.c). */
#ifndef PARROT_FUZZ_HTTP_H
#define PARROT_FUZZ_HTTP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cookie.h"
#include "http.h"
#include "http_msg.h"
#include "stats.h"

typedef struct fuzz_http_result {
    int status;      /* the final response's, 0 when none */
    int err_kind;    /* the reader's error kind (stats.h), 0 when none */
    int complete;    /* the response was read whole */
    size_t head_len; /* bytes of the head taken */
    size_t nheaders; /* headers found in it */
    size_t body_len; /* body bytes kept */
    size_t cookies;  /* cookies the jar took */
    char reason[64]; /* the reason phrase (cut) */
} fuzz_http_result;

static int fuzz_http_fail(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    return -1;
}

static int fuzz_http_is_ows(char c) { return c == ' ' || c == '\t'; }

/* What the head search finds in a head that was taken: every name and value inside it, names
 * without a colon or a line end, values without the whitespace around them. */
static int fuzz_http_check_head(const http_res *res, fuzz_http_result *out)
{
    const char *h = res->head, *end = h + res->head_len;
    if (h[res->head_len] != '\0') return fuzz_http_fail("the head is not NUL-terminated");
    if (res->head_len < 12 || strncmp(h, "HTTP/", 5)) return fuzz_http_fail("the head is not a status line");
    size_t pos = 0, first_cookie = (size_t)-1;
    http_header hd;
    while (http_head_next(h, res->head_len, &pos, &hd)) {
        if (hd.name < h || hd.name + hd.name_len > end || hd.value < h || hd.value + hd.value_len > end)
            return fuzz_http_fail("a header outside its head");
        if (!hd.name_len || memchr(hd.name, ':', hd.name_len) || memchr(hd.name, '\n', hd.name_len))
            return fuzz_http_fail("a header name that is not one");
        if (hd.value_len && (fuzz_http_is_ows(hd.value[0]) || fuzz_http_is_ows(hd.value[hd.value_len - 1])))
            return fuzz_http_fail("a value with whitespace around it");
        if (pos > res->head_len) return fuzz_http_fail("the search went past the head");
        if (first_cookie == (size_t)-1 && hd.name_len == 10 && !strncasecmp(hd.name, "Set-Cookie", 10))
            first_cookie = (size_t)(hd.value - h);
        out->nheaders++;
    }
    size_t vl = 0;
    const char *v = http_res_header(res, "set-cookie", &vl);
    if ((first_cookie == (size_t)-1) != (v == NULL) || (v && (size_t)(v - h) != first_cookie))
        return fuzz_http_fail("http_res_header does not find the first Set-Cookie");
    size_t rl = 0;
    const char *reason = http_res_reason(res, &rl);
    if (rl && (reason < h || reason + rl > end || memchr(reason, '\n', rl)))
        return fuzz_http_fail("a reason phrase outside the status line");
    snprintf(out->reason, sizeof out->reason, "%.*s", (int)rl, reason);
    return 0;
}

/* data[0]: bit 0 a HEAD request, bit 1 compression asked, bit 2 the body not kept, bits 3-7 where
 * the rest is cut into two reads (0/31 to 31/31 of it); the rest: the bytes the server sent.
 * Returns 0 when everything held, -1 (said on stderr) otherwise. */
static int fuzz_http_read(const uint8_t *data, size_t size, fuzz_http_result *out)
{
    memset(out, 0, sizeof *out);
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    const char *bytes = (const char *)data + 1;
    size_t n = size - 1, cut = n * (size_t)(ctl >> 3) / 31;
    static const char url[] = "http://example.com/path?q=1";
    http_res *res = malloc(sizeof *res + sizeof url + HTTP_HEAD_ROOM); /* as http_request makes it */
    if (!res) return 0;
    memset(res, 0, sizeof *res);
    res->url = (char *)(res + 1);
    memcpy(res->url, url, sizeof url);
    res->errmsg = "";
    cookie_jar *jar = cookie_jar_new();
    http_msg m;
    memset(&m, 0, sizeof m);
    m.res = res, m.jar = jar, m.host = "example.com", m.target = "/path?q=1", m.max_body = 4096;
    m.is_head = ctl & 1, m.compression = ctl >> 1 & 1, m.discard = ctl >> 2 & 1;
    http_msg_start(&m);
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &http_msg_settings);
    parser.data = &m;
    const char *piece[2] = {bytes, bytes + cut};
    size_t len[2] = {cut, n - cut};
    llhttp_errno_t e = HPE_OK;
    for (int i = 0; i < 2 && e == HPE_OK; i++)
        if (len[i]) e = http_msg_execute(&m, &parser, piece[i], len[i]);
    if (e == HPE_OK && !m.err_kind) { /* the server closed: a body read until the end completes */
        llhttp_finish(&parser);
        if (m.complete) http_msg_eof(&m);
    }
    int rc = 0;
    out->complete = m.complete && !m.err_kind;
    out->err_kind = m.err_kind;
    if (!out->err_kind && e != HPE_OK && e != HPE_PAUSED) out->err_kind = ERR_PROTOCOL; /* llhttp's own */
    out->status = res->status;
    if (out->complete && (!res->head || res->status < 200))
        rc = fuzz_http_fail("a whole response without its head");
    if (rc == 0 && res->head) {
        out->head_len = res->head_len;
        rc = fuzz_http_check_head(res, out);
    }
    http_msg_finish(&m);
    if (rc == 0 && !m.discard && (!res->body || res->body_len > m.max_body || res->body[res->body_len]))
        rc = fuzz_http_fail("the body kept is not NUL-terminated within max_body");
    out->body_len = res->body_len;
    out->cookies = cookie_jar_size(jar);
    http_msg_free(&m);
    cookie_jar_free(jar);
    if (res->head != http_res_head_room(res)) free(res->head);
    free(res->body);
    free(res);
    return rc;
}

#endif
