/* http_msg: reads one HTTP/1.x response with llhttp into an http_res: the head as received (64 KB
 * at most; headers are found in it when asked, see http_head_next), Set-Cookie into a jar, the body
 * (kept up to a limit, gzip/deflate decoded), 1xx skipped, and a stats error kind with a one-line
 * reason when the bytes make no sense. No I/O of its own. */
#ifndef PARROT_HTTP_MSG_H
#define PARROT_HTTP_MSG_H

#include <llhttp.h>
#include <stddef.h>
#include <zlib.h>

#include "cookie.h"
#include "http.h"

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
    /* Reader state. llhttp reports no header bytes: the head is taken whole from the bytes read
     * (copied in hbuf first only when it came in several reads) where it is known to end: at the
     * first body byte, where the message ends, or where llhttp pauses for a chunked body. */
    char *hbuf; /* owned, reused: the head's first reads */
    size_t hlen, hcap;
    const char *chunk; /* the bytes of the llhttp_execute call under way: a head starts there */
    int headers_done;  /* the final response's head was taken */
    int head_pending;  /* the final response's head is whole, not taken yet */
    int next_message;  /* llhttp paused after a 1xx: the final response starts where it stopped */
    size_t body_cap;
    z_stream *z; /* owned while decoding */
    int z_fallback_ok;
} http_msg;

/* Parser settings whose callbacks expect `parser->data` to be the http_msg. */
extern const llhttp_settings_t http_msg_settings;

/* Feed `n` bytes read to the parser (use this, not llhttp_execute: it takes the head out of them).
 * Returns as llhttp_execute does: HPE_OK (more to read), HPE_PAUSED with m->complete (the response
 * is whole; llhttp_get_error_pos tells where it ended), or an error (m->err_kind says why when it
 * is the reader's). */
llhttp_errno_t http_msg_execute(http_msg *m, llhttp_t *h, const char *buf, size_t n);
/* The connection ended and llhttp_finish completed the response (a body read until the end):
 * take its head if no body byte came. Returns -1 (m->err_kind set) when that fails. */
int http_msg_eof(http_msg *m);

/* Ready for a new response (results cleared). */
void http_msg_start(http_msg *m);
/* The exchange ended: hand the header buffer to res, NUL-terminate the body, drop decoder state. */
void http_msg_finish(http_msg *m);
/* Free the reusable buffers. */
void http_msg_free(http_msg *m);

#endif
