/* zsock: a ZeroMQ socket driven by a libuv loop. ZMQ_FD is edge-triggered, so the socket is
 * drained while ZMQ_EVENTS says POLLIN after every wake-up and again after every loop turn (a
 * send can swallow the edge). Messages reach the callback one at a time, never re-entrantly. */
#ifndef PARROT_ZSOCK_H
#define PARROT_ZSOCK_H

#include <stddef.h>
#include <uv.h>

typedef struct zsock zsock;
/* `peer` is the ROUTER's identity frame (NULL for a DEALER); buf/peer valid during the call. */
typedef void (*zsock_msg_cb)(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len,
                             void *ud);

/* Drive `sock` (owned by the caller, who closes it after zsock_detach) on `loop`. */
zsock *zsock_attach(uv_loop_t *loop, void *sock, int router, zsock_msg_cb cb, void *ud);
/* Called for each message of the wrong shape (a ROUTER expects [identity][payload], a DEALER
 * [payload]): it was drained and dropped; `frames` is how many parts it had.
 * `peer` is its identity frame when one came (else NULL). */
typedef void (*zsock_bad_cb)(zsock *z, const char *peer, size_t peerlen, int frames, void *ud);
void zsock_on_bad(zsock *z, zsock_bad_cb cb);
/* Send one message (to `peer` on a ROUTER). Returns 0, or -1 with errno (EHOSTUNREACH: unknown
 * peer, EAGAIN: the peer's queue is full). Never blocks. */
int zsock_send(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len);
/* Stop watching; frees once the loop closed the handles. */
void zsock_detach(zsock *z);

#endif
