/* zsock: ZeroMQ on libuv. */
#include "zsock.h"

#include <errno.h>
#include <stdlib.h>
#include <zmq.h>

#define ZSOCK_BUDGET 256 /* messages per turn: timers, heartbeats and signals run in between */

struct zsock {
    uv_poll_t poll;   /* on ZMQ_FD */
    uv_check_t check; /* drain after each loop turn */
    uv_idle_t idle;   /* running while messages wait past a turn's budget: the loop must not block */
    int idle_on;
    void *sock;
    int router;
    zsock_msg_cb cb;
    zsock_bad_cb bad_cb; /* NULL: wrong shapes are dropped silently */
    void *ud;
    int in_cb;
    int closing;
};

/* Receive everything queued; a ROUTER message is [identity][payload], a DEALER one [payload].
 * Messages of any other shape are drained, reported to bad_cb and dropped. */
static void on_idle(uv_idle_t *h);

static void drain(zsock *z)
{
    if (z->in_cb || z->closing) return;
    z->in_cb = 1;
    int budget = ZSOCK_BUDGET, more = 0;
    for (;;) {
        int events = 0;
        size_t sz = sizeof events;
        if (zmq_getsockopt(z->sock, ZMQ_EVENTS, &events, &sz) != 0 || !(events & ZMQ_POLLIN)) break;
        if (budget-- == 0) { /* come back on the next turn, after the loop's other work */
            more = 1;
            break;
        }
        zmq_msg_t parts[2];
        int n = 0, nframes = 0, more = 1, bad = 0;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                bad = 1;
                break;
            }
            more = zmq_msg_more(&m);
            nframes++;
            if (n < 2)
                parts[n++] = m;
            else {
                zmq_msg_close(&m);
                bad = 1;
            }
        }
        int want = z->router ? 2 : 1;
        if (!bad && n == want) {
            const char *peer = z->router ? zmq_msg_data(&parts[0]) : NULL;
            size_t peerlen = z->router ? zmq_msg_size(&parts[0]) : 0;
            zmq_msg_t *p = &parts[want - 1];
            z->cb(z, peer, peerlen, zmq_msg_data(p), zmq_msg_size(p), z->ud);
        } else if (z->bad_cb && nframes) {
            int has_peer = z->router && n > 0;
            z->bad_cb(z, has_peer ? zmq_msg_data(&parts[0]) : NULL, has_peer ? zmq_msg_size(&parts[0]) : 0,
                      nframes, z->ud);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
        if (z->closing) break;
    }
    z->in_cb = 0;
    if (z->closing) return;
    if (more && !z->idle_on)
        uv_idle_start(&z->idle, on_idle);
    else if (!more && z->idle_on)
        uv_idle_stop(&z->idle);
    z->idle_on = more;
}

static void on_idle(uv_idle_t *h) { drain(h->data); }

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    drain(h->data);
}

static void on_check(uv_check_t *h) { drain(h->data); }

zsock *zsock_attach(uv_loop_t *loop, void *sock, int router, zsock_msg_cb cb, void *ud)
{
    zsock *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->sock = sock;
    z->router = router;
    z->cb = cb;
    z->ud = ud;
    int fd;
    size_t sz = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &sz) != 0) {
        free(z);
        return NULL;
    }
    uv_poll_init(loop, &z->poll, fd);
    z->poll.data = z;
    uv_poll_start(&z->poll, UV_READABLE, on_poll);
    uv_check_init(loop, &z->check);
    z->check.data = z;
    uv_check_start(&z->check, on_check);
    uv_unref((uv_handle_t *)&z->check); /* the check alone does not keep the loop alive */
    uv_idle_init(loop, &z->idle);
    z->idle.data = z;
    return z;
}

void zsock_on_bad(zsock *z, zsock_bad_cb cb)
{
    if (z) z->bad_cb = cb;
}

int zsock_send(zsock *z, const char *peer, size_t peerlen, const char *buf, size_t len)
{
    if (z->router && zmq_send(z->sock, peer, peerlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
    if (zmq_send(z->sock, buf, len, ZMQ_DONTWAIT) < 0) return -1;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    zsock *z = h->data;
    if (++z->closing == 4) free(z);
}

void zsock_detach(zsock *z)
{
    if (!z) return;
    z->closing = 1;
    uv_close((uv_handle_t *)&z->poll, on_closed);
    uv_close((uv_handle_t *)&z->check, on_closed);
    uv_close((uv_handle_t *)&z->idle, on_closed);
}
