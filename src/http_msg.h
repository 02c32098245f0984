/* http_msg: reads one HTTP/1.x response with llhttp into an http_res: headers (64 KB at most),
 * Set-Cookie into a jar, the body (kept up to a limit, gzip/deflate decoded), 1xx skipped, and
 * a stats error kind with a one-line reason when the bytes make no sense. No I/O of its own. */
#ifndef PARROT_HTTP_MSG_H
#define PARROT_HTTP_MSG_H

#include <llhttp.h>
#include <stddef.h>
#include <zlib.h>

#include "cookie.h"
#include "http.h"

typedef struct http_msg_hdr {
    size_t name, name_len, value, value_len; /* offsets into hbuf */
} http_msg_hdr;

/* One per pool, reused for every response. The caller sets the public part before
 * http_msg_start; the rest is the reader's. */
typedef struct http_msg {
    http_res *res;    /* not owned: filled in */
    cookie_jar *jar;  /* not owned; NULL: Set-Cookie is not stored */
    const char *host; /* not owned: the request's host and target, for cookies */
    const char *target;
    int secure;
    size_t max_body;
    unsigned is_head : 1, compression : 1, discard : 1;
    /* Results. */
    int complete;   /* the final response was read */
    int keep_alive; /* the connection can carry another exchange */
    int err_kind;   /* enum stats_err, 0 when fine */
    char err_msg[160];
    /* Reader state. */
    char *hbuf; /* owned until handed to res by http_msg_finish */
    size_t hlen, hcap;
    http_msg_hdr *hoffs; /* owned, reused */
    size_t nh, hoffs_cap;
    int in_field, value_open, headers_done;
    size_t reason_len; /* the status line's reason phrase: hbuf[0, reason_len), then a NUL */
    size_t body_cap;
    z_stream *z; /* owned while decoding */
    int z_fallback_ok;
} http_msg;

/* Parser settings whose callbacks expect `parser->data` to be the http_msg. */
extern const llhttp_settings_t http_msg_settings;

/* Ready for a new response (results cleared). */
void http_msg_start(http_msg *m);
/* The exchange ended: hand the header buffer to res, NUL-terminate the body, drop decoder state. */
void http_msg_finish(http_msg *m);
/* Free the reusable buffers. */
void http_msg_free(http_msg *m);

#endif
