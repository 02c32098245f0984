/* test_http: the HTTP/1.1 client against real loopback servers this test starts itself: a raw
 * socket server that answers with canned bytes (one thread per connection), an
 * `openssl s_server -www` for TLS, and a tiny CONNECT proxy. Each block reads as an example. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "pump.h"
#include "http.h"
#include "stats.h"

/* ---- a canned-bytes server ---- */

enum { M_CANNED, M_SILENT, M_PROXY };

typedef struct srv {
    int fd, port;
    pthread_t th;
    atomic_int accepts, requests;
    int mode;
    const char *resp[4]; /* answer to the Nth request of a connection (last one repeats); NULL: close */
    size_t resp_len[4];  /* 0: strlen */
    int close_after;     /* close after each answer */
    int drip;            /* write answers one byte at a time (each its own segment), every drip µs */
    int relay_port;      /* M_PROXY: where CONNECT goes */
    const char *proxy_reply;
    pthread_mutex_t mu;
    char last_req[16384]; /* head (and body) of the last request */
    char peer[64];
} srv;

typedef struct srv_conn {
    srv *s;
    int fd;
} srv_conn;

/* Read one request (head + Content-Length body) into buf; returns its length, 0 on EOF. */
static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap) return 0;
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0) return 0;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - buf);
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = head + (cl && cl < end ? (size_t)atol(cl + 17) : 0);
    while (n < want && n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static void *srv_conn_main(void *arg)
{
    srv_conn *sc = arg;
    srv *s = sc->s;
    char *buf = malloc(1 << 20);
    for (int i = 0;; i++) {
        size_t n = read_request(sc->fd, buf, 1 << 20);
        if (!n) break;
        atomic_fetch_add(&s->requests, 1);
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_req, sizeof s->last_req, "%s", buf);
        pthread_mutex_unlock(&s->mu);
        if (s->mode == M_SILENT) {
            while (read(sc->fd, buf, 1024) > 0) {
            }
            break;
        }
        if (s->mode == M_PROXY) {
            const char *reply =
                s->proxy_reply ? s->proxy_reply : "HTTP/1.1 200 Connection established\r\n\r\n";
            int up = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->relay_port)};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(up, (struct sockaddr *)&a, sizeof a) == 0 &&
                write(sc->fd, reply, strlen(reply)) > 0 && !s->proxy_reply)
                pump(sc->fd, up);
            close(up);
            break;
        }
        const char *r = s->resp[i < 4 ? i : 3];
        if (!r) break;
        size_t len = s->resp_len[i < 4 ? i : 3] ? s->resp_len[i < 4 ? i : 3] : strlen(r);
        if (s->drip) {
            int one = 1;
            setsockopt(sc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            size_t k = 0;
            while (k < len && write(sc->fd, r + k, 1) == 1) {
                k++;
                usleep((useconds_t)s->drip);
            }
            if (k < len) break;
        } else if (write(sc->fd, r, len) < 0) {
            break;
        }
        if (s->close_after) break;
    }
    close(sc->fd);
    free(buf);
    free(sc);
    return NULL;
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept(s->fd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) return NULL;
        atomic_fetch_add(&s->accepts, 1);
        pthread_mutex_lock(&s->mu);
        if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, s->peer, sizeof s->peer);
        else
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, s->peer, sizeof s->peer);
        pthread_mutex_unlock(&s->mu);
        srv_conn *sc = malloc(sizeof *sc);
        sc->s = s, sc->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, srv_conn_main, sc);
        pthread_detach(t);
    }
}

static srv *srv_start_af(int af, int mode, const char *r0, const char *r1)
{
    srv *s = calloc(1, sizeof *s);
    s->mode = mode;
    s->resp[0] = r0;
    s->resp[1] = s->resp[2] = s->resp[3] = r1 ? r1 : r0;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(af, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss = {0};
    socklen_t al = sizeof ss;
    if (af == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    if (bind(s->fd, (struct sockaddr *)&ss, al) < 0 || listen(s->fd, 64) < 0) {
        close(s->fd);
        free(s);
        return NULL;
    }
    getsockname(s->fd, (struct sockaddr *)&ss, &al);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset for IPv6 */
    pthread_create(&s->th, NULL, srv_main, s);
    return s;
}

static srv *srv_start(int mode, const char *r0, const char *r1)
{
    return srv_start_af(AF_INET, mode, r0, r1);
}

static void srv_stop(srv *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->th, NULL);
    usleep(20000); /* connection threads finish on their own */
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the client side ---- */

static uv_loop_t *loop;
static timers *tm;

typedef struct waiter {
    int done;
    http_res *res;
} waiter;

static void on_done(http_res *r, void *ud)
{
    waiter *w = ud;
    w->res = r;
    w->done = 1;
}

/* Run one request to completion on the loop. */
static http_res *fetch(http_pool *p, const http_req *req)
{
    waiter w = {0};
    if (http_request(p, req, on_done, &w) != 0) return NULL;
    if (w.done) printf("not ok - callback ran inside http_request\n");
    while (!w.done)
        uv_run(loop, UV_RUN_ONCE);
    return w.res;
}

static char url_buf[256];
static const char *u(int port, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d%s", port, path);
    return url_buf;
}

static http_res *get(http_pool *p, const char *url)
{
    http_req req = {.method = "GET", .url = url};
    return fetch(p, &req);
}

static int body_is(const http_res *r, const char *s) { return r->body && !strcmp(r->body, s); }

static void framing(http_client *c)
{
    http_pool *p = http_pool_new(c);
    srv *s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello", NULL);
    http_res *r = get(p, u(s->port, "/cl"));
    CHECK(r->err == ERR_NONE && r->status == 200, "Content-Length response: %d %s", r->status, r->errmsg);
    CHECK(body_is(r, "hello") && r->body_len == 5 && r->body_bytes == 5, "body is kept");
    size_t hl = 0;
    const char *hv = http_res_header(r, "x-test", &hl);
    CHECK(hv && hl == 3 && !memcmp(hv, "yes", 3), "headers are found case-insensitively");
    CHECK(r->http_minor == 1 && r->bytes_in > 5 && r->bytes_out > 20, "wire bytes are counted");
    CHECK(r->total_us > 0 && r->latency_us >= r->total_us && !r->reused, "timings are filled");
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "GET /cl HTTP/1.1\r\n") && strstr(s->last_req, "\r\nHost: 127.0.0.1:") &&
              strstr(s->last_req, "\r\nUser-Agent: loadParrot/0.1\r\n") &&
              !strstr(s->last_req, "Content-Length"),
          "request line, Host and User-Agent are sent; no Content-Length for a GET");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    /* keep-alive: the second request goes over the same connection */
    r = get(p, u(s->port, "/again"));
    CHECK(r->err == ERR_NONE && r->reused && atomic_load(&s->accepts) == 1,
          "keep-alive reuses the connection");
    CHECK(r->dns_us == 0 && r->connect_us == 0, "a reused connection has no connect phase");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n"
                  "X-Trailer: t\r\n\r\n",
                  NULL);
    r = get(p, u(s->port, "/chunked"));
    CHECK(r->err == ERR_NONE && body_is(r, "hello world"), "chunked body with trailers: %s", r->errmsg);
    CHECK(r->head && r->head_len == 47 && !strcmp(r->head + 17, "Transfer-Encoding: chunked\r\n\r\n"),
          "a chunked response's head ends before its first chunk");
    http_res_free(r);
    r = get(p, u(s->port, "/chunked"));
    CHECK(r->err == ERR_NONE && r->reused, "the connection is reusable after chunked + trailers");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\n\r\nuntil the end", NULL);
    s->close_after = 1;
    r = get(p, u(s->port, "/close-delimited"));
    CHECK(r->err == ERR_NONE && body_is(r, "until the end"), "close-delimited body ends at EOF: %s",
          r->errmsg);
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nX-Only: head\r\n\r\n", NULL);
    s->close_after = 1;
    r = get(p, u(s->port, "/close-delimited-empty"));
    size_t ol = 0;
    const char *ov = http_res_header(r, "X-Only", &ol);
    CHECK(r->err == ERR_NONE && r->body_len == 0 && ov && ol == 4 && !memcmp(ov, "head", 4) &&
              r->head_len == 33,
          "a body read until the end that has no byte: the head is still taken at the end (%s; %zu %zu %d)",
          r->errmsg, r->head_len, ol, r->status);
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", NULL);
    http_req head = {.method = "HEAD", .url = u(s->port, "/head")};
    r = fetch(p, &head);
    CHECK(r->err == ERR_NONE && r->status == 200 && r->body_len == 0, "HEAD does not wait for a body");
    http_res_free(r);
    r = fetch(p, &head);
    CHECK(r->err == ERR_NONE && r->reused, "and the connection stays usable");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 204 No Content\r\n\r\n",
                  "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n");
    r = get(p, u(s->port, "/204"));
    CHECK(r->err == ERR_NONE && r->status == 204, "204 has no body");
    http_res_free(r);
    r = get(p, u(s->port, "/304"));
    CHECK(r->err == ERR_NONE && r->status == 304 && r->reused, "304 has no body, connection kept");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED,
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                  NULL);
    http_req post = {.method = "POST", .url = u(s->port, "/upload"), .body = "a=1", .body_len = 3};
    r = fetch(p, &post);
    CHECK(r->err == ERR_NONE && r->status == 200 && body_is(r, "ok") && !http_res_header(r, "Link", NULL),
          "1xx responses are skipped: %d %s", r->status, r->errmsg);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "POST /upload HTTP/1.1\r\n") &&
              strstr(s->last_req, "\r\nContent-Length: 3\r\n") && strstr(s->last_req, "\r\n\r\na=1"),
          "POST sends Content-Length and the body");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    post.body = NULL, post.body_len = 0;
    r = fetch(p, &post);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "\r\nContent-Length: 0\r\n"), "an empty POST says Content-Length: 0");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    srv_stop(s);

    /* The head is taken whole from what was read: byte by byte, after a 1xx, with folded and padded
     * values, Set-Cookie stored on the way. */
    static const char dripped[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                  "HTTP/1.1 299 Custom Reason Here\r\nSet-Cookie: drip=1; Path=/\r\n"
                                  "X-Fold: one\r\n two\r\nX-Pad:   v  \r\nContent-Length: 2\r\n\r\nok";
    s = srv_start(M_CANNED, dripped, NULL);
    s->drip = 300;
    r = get(p, u(s->port, "/drip"));
    size_t fl = 0, pl = 0, rl = 0;
    const char *fold = r ? http_res_header(r, "X-Fold", &fl) : NULL;
    const char *pad = r ? http_res_header(r, "x-pad", &pl) : NULL;
    const char *reason = r ? http_res_reason(r, &rl) : NULL;
    const char *final = strstr(dripped, "HTTP/1.1 299");
    size_t final_head = (size_t)(strstr(final, "\r\n\r\n") + 4 - final);
    CHECK(r && r->err == ERR_NONE && r->status == 299 && body_is(r, "ok"),
          "a head read one byte at a time: %d %s", r ? r->status : 0, r ? r->errmsg : "");
    CHECK(r && r->head && r->head_len == final_head && !memcmp(r->head, final, final_head) &&
              r->head[final_head] == '\0',
          "the head is the final response's, as received, the 1xx left out (%zu bytes of %zu)",
          r ? r->head_len : 0, final_head);
    CHECK(rl == 18 && !memcmp(reason, "Custom Reason Here", 18), "the reason phrase: %.*s", (int)rl, reason);
    CHECK(fold && fl == 9 && !memcmp(fold, "one\r\n two", 9) && pad && pl == 1 && *pad == 'v',
          "a folded value goes on over its lines; the whitespace around a value is not part of it (%zu, %zu "
          "bytes)",
          fl, pl);
    http_res_free(r);
    r = get(p, u(s->port, "/after-drip"));
    pthread_mutex_lock(&s->mu);
    CHECK(r && r->err == ERR_NONE && strstr(s->last_req, "\r\nCookie: drip=1\r\n"),
          "a Set-Cookie read byte by byte is stored and sent back");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    srv_stop(s);

    /* a head larger than the room kept for one inside the response, read in one piece */
    static char bighead[4096];
    char big[2001];
    memset(big, 'b', 2000);
    big[2000] = '\0';
    snprintf(bighead, sizeof bighead, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok", big);
    s = srv_start(M_CANNED, bighead, NULL);
    for (int k = 0; k < 2; k++) {
        r = get(p, u(s->port, "/big"));
        size_t bl = 0;
        const char *bv = r ? http_res_header(r, "X-Big", &bl) : NULL;
        CHECK(r && r->err == ERR_NONE && bv && bl == 2000 && !memcmp(bv, big, 2000) && body_is(r, "ok") &&
                  r->head_len == strlen(bighead) - 2,
              "a 2 KB head (%s connection): header and body read", k ? "kept-alive" : "new");
        http_res_free(r);
    }
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok", NULL);
    r = get(p, u(s->port, "/lf"));
    CHECK(r && r->err == ERR_PROTOCOL && strstr(r->errmsg, "bad response") && !r->head,
          "lines ending in LF alone are refused (llhttp is strict): %s", r ? r->errmsg : "");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", NULL);
    http_res_free(get(p, u(s->port, "/")));
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_NONE && !r->reused && atomic_load(&s->accepts) == 2, "Connection: close is honoured");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", NULL);
    http_res_free(get(p, u(s->port, "/")));
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_NONE && r->http_minor == 0 && atomic_load(&s->accepts) == 2,
          "HTTP/1.0 without keep-alive is not reused");
    http_res_free(r);
    srv_stop(s);

    /* The server closes a kept-alive connection right after answering: the next request is
     * retried on a fresh connection, invisibly. */
    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL);
    s->close_after = 1;
    http_res_free(get(p, u(s->port, "/")));
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_NONE && body_is(r, "ok") && atomic_load(&s->accepts) == 2,
          "a stale keep-alive connection is retried once: %s", r->errmsg);
    http_res_free(r);
    srv_stop(s);
    http_pool_free(p);
}

static void bodies(http_client *c)
{
    http_pool *p = http_pool_new(c);
    /* gzip */
    const char *plain = "compressed hello, compressed hello, compressed hello";
    unsigned char gz[256];
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)plain, z.avail_in = (uInt)strlen(plain);
    z.next_out = gz, z.avail_out = sizeof gz;
    deflate(&z, Z_FINISH);
    size_t gzlen = sizeof gz - z.avail_out;
    deflateEnd(&z);
    static char resp[512];
    int hl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", gzlen);
    memcpy(resp + hl, gz, gzlen);
    srv *s = srv_start(M_CANNED, resp, NULL);
    s->resp_len[0] = s->resp_len[1] = s->resp_len[2] = s->resp_len[3] = (size_t)hl + gzlen;
    http_req req = {.method = "GET", .url = u(s->port, "/gz"), .compression = 1};
    http_res *r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && body_is(r, plain) && r->body_bytes == gzlen, "gzip body is decoded: %s",
          r->errmsg);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "\r\nAccept-Encoding: gzip, deflate\r\n") != NULL, "Accept-Encoding is sent");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    req.compression = 0;
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->body_len == gzlen, "without compression the body stays as received");
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED,
                  "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot gzip!!", NULL);
    req = (http_req){.method = "GET", .url = u(s->port, "/badgz"), .compression = 1};
    r = fetch(p, &req);
    CHECK(r->err == ERR_PROTOCOL, "a corrupt gzip stream is a protocol error: %s", r->errmsg);
    http_res_free(r);
    srv_stop(s);

    static char big[20000];
    int bl = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n");
    memset(big + bl, 'x', 10000);
    s = srv_start(M_CANNED, big, NULL);
    req = (http_req){.method = "GET", .url = u(s->port, "/big"), .max_body = 100};
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->body_len == 100 && r->body_bytes == 10000 && r->truncated,
          "max_body keeps 100 bytes, counts 10000, marks truncated");
    http_res_free(r);
    req = (http_req){.method = "GET", .url = u(s->port, "/big"), .discard_body = 1};
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->body == NULL && r->body_bytes == 10000 && r->reused,
          "discard_body keeps nothing but counts");
    http_res_free(r);
    srv_stop(s);
    http_pool_free(p);
}

static void errors(http_client *c)
{
    http_pool *p = http_pool_new(c);
    srv *s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", NULL);
    s->close_after = 1;
    http_res *r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_RESET && r->status == 200, "a body cut short is a reset: %s", r->errmsg);
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n", NULL);
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_PROTOCOL && strstr(r->errmsg, "chunk"), "a bad chunk size is a protocol error: %s",
          r->errmsg);
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HELLO WORLD\r\n\r\n", NULL);
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_PROTOCOL && r->status == 0, "a garbage status line is a protocol error: %s",
          r->errmsg);
    http_res_free(r);
    srv_stop(s);

    size_t hugelen = 1 << 20;
    char *huge = malloc(hugelen + 100);
    int n = snprintf(huge, 100, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(huge + n, 'h', hugelen);
    strcpy(huge + n + hugelen, "\r\n\r\n");
    s = srv_start(M_CANNED, huge, NULL);
    r = get(p, u(s->port, "/"));
    CHECK(r->err == ERR_TOO_LARGE, "1 MB of headers is too large: %s", r->errmsg);
    http_res_free(r);
    srv_stop(s);
    free(huge);

    s = srv_start(M_SILENT, NULL, NULL);
    http_req req = {.method = "GET", .url = u(s->port, "/slow"), .timeout_us = 200000};
    r = fetch(p, &req);
    CHECK(r->err == ERR_TIMEOUT && r->total_us >= 200000 && r->total_us < 2000000,
          "a silent server times out: %s", r->errmsg);
    http_res_free(r);

    /* Each request has its own timeout on one pool: a short one that ended early does not cut a
     * later, longer request; a later, shorter one still fires on time. */
    srv *slow = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL);
    http_req quick = {.method = "GET", .url = u(slow->port, "/quick"), .timeout_us = 150000};
    r = fetch(p, &quick);
    CHECK(r->err == ERR_NONE && body_is(r, "ok"), "a quick request within its 150 ms: %s", r->errmsg);
    http_res_free(r);
    slow->drip = 12000; /* 38 bytes: about 450 ms */
    http_req longer = {.method = "GET", .url = u(slow->port, "/slower"), .timeout_us = 3000000};
    r = fetch(p, &longer);
    CHECK(r->err == ERR_NONE && body_is(r, "ok") && r->total_us > 300000,
          "the next request's 3 s timeout holds past the previous one's 150 ms: %s (%llu us)", r->errmsg,
          (unsigned long long)r->total_us);
    http_res_free(r);
    http_req shorter = {.method = "GET", .url = u(slow->port, "/shorter"), .timeout_us = 100000};
    r = fetch(p, &shorter);
    CHECK(r->err == ERR_TIMEOUT && r->total_us >= 100000 && r->total_us < 300000,
          "a shorter timeout after a longer one fires on time: %s (%llu us)", r->errmsg,
          (unsigned long long)r->total_us);
    http_res_free(r);
    srv_stop(slow);

    /* http_cancel: the callback still runs, from the loop */
    waiter w = {0};
    req.timeout_us = 0;
    http_request(p, &req, on_done, &w);
    http_cancel(p);
    CHECK(!w.done, "http_cancel does not call back synchronously");
    while (!w.done)
        uv_run(loop, UV_RUN_ONCE);
    CHECK(w.res->err == ERR_CANCELLED, "a cancelled request ends with ERR_CANCELLED");
    http_res_free(w.res);
    srv_stop(s);

    int port = free_port();
    r = get(p, u(port, "/"));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    CHECK(r->err == ERR_CONNECT && strstr(r->errmsg, want) && r->status == 0, "connection refused: %s",
          r->errmsg);
    http_res_free(r);

    r = get(p, "ftp://example.com/");
    CHECK(r->err == ERR_URL, "a bad URL is ERR_URL, called back from the loop: %s", r->errmsg);
    http_res_free(r);

    /* pool busy */
    w = (waiter){0};
    http_request(p, &req, on_done, &w);
    CHECK(http_request(p, &req, on_done, &w) == -1, "one request in flight per pool");
    while (!w.done)
        uv_run(loop, UV_RUN_ONCE);
    http_res_free(w.res);

    /* a pool freed with a request in flight: no callback */
    s = srv_start(M_SILENT, NULL, NULL);
    http_pool *q = http_pool_new(c);
    w = (waiter){0};
    req.url = u(s->port, "/");
    http_request(q, &req, on_done, &w);
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    http_pool_free(q);
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    CHECK(!w.done, "http_pool_free cancels without a callback");
    srv_stop(s);
    http_pool_free(p);
}

static void cookies_and_headers(http_client *c)
{
    http_pool *p = http_pool_new(c);
    srv *s =
        srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/\r\nContent-Length: 0\r\n\r\n",
                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    http_res_free(get(p, u(s->port, "/login")));
    http_header hs[] = {{"X-Custom", "1", 8, 1}, {"User-Agent", "mine", 10, 4}};
    http_req req = {.method = "GET", .url = u(s->port, "/account"), .headers = hs, .nheaders = 2};
    http_res_free(fetch(p, &req));
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "\r\nCookie: sid=abc\r\n") != NULL, "a stored cookie is sent back");
    CHECK(strstr(s->last_req, "\r\nX-Custom: 1\r\n") && strstr(s->last_req, "\r\nUser-Agent: mine\r\n") &&
              !strstr(s->last_req, "loadParrot/0.1"),
          "given headers are sent; a given User-Agent replaces ours");
    pthread_mutex_unlock(&s->mu);
    req.no_cookies = 1;
    http_res_free(fetch(p, &req));
    pthread_mutex_lock(&s->mu);
    CHECK(!strstr(s->last_req, "Cookie:"), "no_cookies sends none");
    pthread_mutex_unlock(&s->mu);
    srv_stop(s);
    http_pool_free(p);
}

/* Less common paths: 101, HTTP/1.0 requests, IPv6, address fallback, connect timeout, EMFILE. */
static void edges(http_client *c)
{
    http_pool *p = http_pool_new(c);
    srv *s = srv_start(M_CANNED, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", NULL);
    http_res *r = get(p, u(s->port, "/ws"));
    CHECK(r->err == ERR_PROTOCOL && strstr(r->errmsg, "101"), "101 is not supported: %s", r->errmsg);
    http_res_free(r);
    srv_stop(s);

    s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL);
    http_req req = {.method = "GET", .url = u(s->port, "/old"), .http10 = 1};
    http_res_free(fetch(p, &req));
    r = fetch(p, &req);
    pthread_mutex_lock(&s->mu);
    CHECK(r->err == ERR_NONE && strstr(s->last_req, "GET /old HTTP/1.0\r\n") && atomic_load(&s->accepts) == 2,
          "http10 speaks HTTP/1.0 and closes after");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);

    /* --resolve with two addresses: the first refuses, the second answers */
    char pin1[64], pin2[64], url[96];
    snprintf(pin1, sizeof pin1, "multi.test:%d:127.0.0.3", s->port);
    snprintf(pin2, sizeof pin2, "multi.test:%d:127.0.0.1", s->port);
    const char *pins[] = {pin1, pin2, NULL};
    http_client_config cfg = {.resolve = pins};
    char err[200];
    http_client *c2 = http_client_new(loop, tm, &cfg, err, sizeof err);
    http_pool *p2 = http_pool_new(c2);
    snprintf(url, sizeof url, "http://multi.test:%d/", s->port);
    r = get(p2, url);
    CHECK(r->err == ERR_NONE, "addresses are tried in order until one connects: %s", r->errmsg);
    http_res_free(r);
    http_pool_free(p2);
    http_client_free(c2);
    srv_stop(s);

    s = srv_start_af(AF_INET6, M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6", NULL);
    if (s) {
        snprintf(url, sizeof url, "http://[::1]:%d/six", s->port);
        r = get(p, url);
        pthread_mutex_lock(&s->mu);
        CHECK(r->err == ERR_NONE && body_is(r, "v6") && strstr(s->last_req, "\r\nHost: [::1]:"),
              "IPv6 literal: %s", r->errmsg);
        pthread_mutex_unlock(&s->mu);
        http_res_free(r);
        srv_stop(s);
    }

    /* connect timeout: a listener whose accept queue is full drops our SYN */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(lfd, (struct sockaddr *)&a, sizeof a);
    listen(lfd, 0);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int fillers[8];
    for (int i = 0; i < 8; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(fillers[i], (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        }
    }
    usleep(50000);
    http_client_config tcfg = {.connect_timeout_us = 300000};
    c2 = http_client_new(loop, tm, &tcfg, err, sizeof err);
    p2 = http_pool_new(c2);
    r = get(p2, u(ntohs(a.sin_port), "/"));
    CHECK(r->err == ERR_CONNECT && strstr(r->errmsg, "connect timeout") && r->total_us < 2000000,
          "connect timeout is ERR_CONNECT: %s", r->errmsg);
    http_res_free(r);
    http_pool_free(p2);
    http_client_free(c2);
    for (int i = 0; i < 8; i++)
        close(fillers[i]);
    close(lfd);

    /* no file descriptor left */
    struct rlimit rl, low;
    getrlimit(RLIMIT_NOFILE, &rl);
    low = rl;
    low.rlim_cur = 256;
    int used[256], nused = 0;
    if (setrlimit(RLIMIT_NOFILE, &low) == 0) {
        int fd, port = free_port();
        while (nused < 256 && (fd = dup(0)) >= 0)
            used[nused++] = fd;
        r = get(p, u(port, "/"));
        CHECK(r->err == ERR_FD_LIMIT, "EMFILE is ERR_FD_LIMIT: %s", r->errmsg);
        http_res_free(r);
        while (nused)
            close(used[--nused]);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    http_pool_free(p);
}

/* Proxy, NO_PROXY, source addresses, --resolve pins, dump. */
static void routing(void)
{
    srv *s = srv_start(M_CANNED, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL);
    char proxy[64], pin[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", s->port);
    snprintf(pin, sizeof pin, "pinned.test:%d:127.0.0.1", s->port);
    const char *pins[] = {pin, NULL};
    const char *sources[] = {"127.0.0.2", NULL};
    int dump_left = 1;
    http_client_config cfg = {.proxy = proxy,
                              .no_proxy = "localhost,.skip.test",
                              .resolve = pins,
                              .sources = sources,
                              .dump_left = &dump_left};
    char err[200];
    http_client *c = http_client_new(loop, tm, &cfg, err, sizeof err);
    CHECK(c != NULL, "client with proxy, pins and sources: %s", c ? "" : err);
    http_pool *p = http_pool_new(c);

    fflush(stderr);
    int saved = dup(2);
    char dumpf[] = "/tmp/parrot-dump-XXXXXX";
    int dfd = mkstemp(dumpf);
    dup2(dfd, 2);
    http_res *r = get(p, "http://example.test:8080/via?proxy=1");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK(r->err == ERR_NONE && body_is(r, "ok"), "http goes through the proxy: %s", r->errmsg);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "GET http://example.test:8080/via?proxy=1 HTTP/1.1\r\n") != NULL,
          "the proxy gets the absolute-form target");
    CHECK(!strcmp(s->peer, "127.0.0.2"), "the source address is bound (%s)", s->peer);
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    char dump[4096] = "";
    lseek(dfd, 0, SEEK_SET);
    ssize_t dn = read(dfd, dump, sizeof dump - 1);
    dump[dn > 0 ? dn : 0] = '\0';
    close(dfd);
    unlink(dumpf);
    CHECK(strstr(dump, "GET http://example.test:8080/via") && strstr(dump, "HTTP/1.1 200") && dump_left == 0,
          "dump prints the exchange once");

    snprintf(url_buf, sizeof url_buf, "http://pinned.test:%d/pin", s->port);
    cfg.proxy = NULL;
    http_client *c2 = http_client_new(loop, tm, &cfg, err, sizeof err);
    http_pool *p2 = http_pool_new(c2);
    r = get(p2, url_buf);
    CHECK(r->err == ERR_NONE, "a --resolve pin answers for its host:port: %s", r->errmsg);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "GET /pin HTTP/1.1\r\nHost: pinned.test:") != NULL,
          "without a proxy: origin-form");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    int before = atomic_load(&s->requests);
    snprintf(url_buf, sizeof url_buf, "http://localhost:%d/direct", s->port);
    r = get(p, url_buf);
    CHECK(r->err == ERR_NONE && atomic_load(&s->requests) == before + 1, "NO_PROXY hosts go direct: %s",
          r->errmsg);
    pthread_mutex_lock(&s->mu);
    CHECK(strstr(s->last_req, "GET /direct HTTP/1.1\r\n") != NULL, "and use the origin-form target");
    pthread_mutex_unlock(&s->mu);
    http_res_free(r);
    http_pool_free(p2);
    http_client_free(c2);
    http_pool_free(p);
    http_client_free(c);
    srv_stop(s);

    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", free_port());
    http_client_config dead = {.proxy = proxy};
    c = http_client_new(loop, tm, &dead, err, sizeof err);
    p = http_pool_new(c);
    r = get(p, "http://example.test/");
    CHECK(r->err == ERR_PROXY && strstr(r->errmsg, "proxy"), "an unreachable proxy is ERR_PROXY: %s",
          r->errmsg);
    http_res_free(r);
    http_pool_free(p);
    http_client_free(c);

    const char *bad[] = {"nohost", NULL};
    http_client_config bc = {.resolve = bad};
    c = http_client_new(loop, tm, &bc, err, sizeof err);
    CHECK(c == NULL && strstr(err, "nohost"), "a malformed pin is refused: %s", err);
}

/* ---- TLS against openssl s_server ---- */

static pid_t s_server_start(const char *dir, int port, int verify_client, int *stdin_w)
{
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[0], 0);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1), dup2(nul, 2);
        close(pfd[1]);
        char cert[300], key[300], acc[32];
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        snprintf(acc, sizeof acc, "127.0.0.1:%d", port);
        if (verify_client) /* ask for a client certificate signed by our own cert */
            execlp("openssl", "openssl", "s_server", "-www", "-accept", acc, "-cert", cert, "-key", key,
                   "-tls1_2", "-Verify", "1", "-CAfile", cert, (char *)NULL);
        else
            execlp("openssl", "openssl", "s_server", "-www", "-accept", acc, "-cert", cert, "-key", key,
                   "-tls1_2", (char *)NULL);
        _exit(127);
    }
    close(pfd[0]);
    *stdin_w = pfd[1];
    for (int i = 0; i < 100; i++) { /* wait until it listens */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return pid;
        usleep(50000);
    }
    return pid;
}

static void tls(void)
{
    char dir[] = "/tmp/parrot-tls-XXXXXX";
    if (!mkdtemp(dir)) return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             dir, dir);
    int rc = system(cmd);
    CHECK(rc == 0, "openssl made a test certificate");
    int port = free_port(), stdin_w = -1;
    pid_t pid = s_server_start(dir, port, 0, &stdin_w);
    char pin[64], url[128], ca[300];
    snprintf(pin, sizeof pin, "localhost:%d:127.0.0.1", port);
    snprintf(url, sizeof url, "https://localhost:%d/", port);
    snprintf(ca, sizeof ca, "%s/cert.pem", dir);
    const char *pins[] = {pin, NULL};
    http_client_config cfg = {.resolve = pins};
    char err[200];
    http_client *c = http_client_new(loop, tm, &cfg, err, sizeof err);
    http_pool *p = http_pool_new(c);

    http_res *r = get(p, url);
    CHECK(r->err == ERR_TLS && strstr(r->errmsg, "verif"), "an unknown CA fails verification: %s", r->errmsg);
    http_res_free(r);

    http_req req = {.method = "GET", .url = url, .tls_ca = ca};
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->status == 200 && r->body && strstr(r->body, "Cipher"),
          "with tls_ca = the cert the handshake passes: %d %s", r->status, r->errmsg);
    CHECK(r->tls_us > 0 && r->connect_us > 0, "TLS and connect phases are timed");
    http_res_free(r);
    http_conn_stats st;
    http_client_stats(c, &st);
    CHECK(st.tls_handshakes == 1 && st.tls_resumed == 0, "first handshake is full");

    http_pool *other = http_pool_new(c); /* another virtual user of the same thread */
    r = fetch(other, &req);
    http_client_stats(c, &st);
    CHECK(r->err == ERR_NONE && st.tls_handshakes == 2 && st.tls_resumed == 1,
          "a new connection (of another pool) resumes the session: %s", r->errmsg);
    http_res_free(r);
    http_pool_free(other);

    req = (http_req){.method = "GET", .url = url, .insecure = 1};
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->status == 200, "insecure skips verification: %s", r->errmsg);
    http_res_free(r);

    req = (http_req){.method = "GET", .url = url, .tls_ca = "/nonexistent/ca.pem"};
    r = fetch(p, &req);
    CHECK(r->err == ERR_TLS && strstr(r->errmsg, "/nonexistent/ca.pem"), "a missing CA file is named: %s",
          r->errmsg);
    http_res_free(r);
    http_pool_free(p);
    http_client_free(c);

    /* https through a CONNECT proxy */
    srv *px = srv_start(M_PROXY, NULL, NULL);
    px->relay_port = port;
    char proxy[64];
    snprintf(proxy, sizeof proxy, "127.0.0.1:%d", px->port);
    cfg = (http_client_config){.proxy = proxy, .ca_file = ca};
    c = http_client_new(loop, tm, &cfg, err, sizeof err);
    CHECK(c != NULL, "client with ca_file: %s", c ? "" : err);
    p = http_pool_new(c);
    r = get(p, url);
    CHECK(r->err == ERR_NONE && r->status == 200, "https through a CONNECT proxy: %s", r->errmsg);
    pthread_mutex_lock(&px->mu);
    char want[64];
    snprintf(want, sizeof want, "CONNECT localhost:%d HTTP/1.1\r\n", port);
    CHECK(strstr(px->last_req, want) != NULL, "the proxy is asked to CONNECT host:port");
    pthread_mutex_unlock(&px->mu);
    http_res_free(r);
    px->proxy_reply = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    r = get(p, url);
    CHECK(r->err == ERR_PROXY && strstr(r->errmsg, "403"), "a refused CONNECT is ERR_PROXY: %s", r->errmsg);
    http_res_free(r);
    http_pool_free(p);
    http_client_free(c);
    srv_stop(px);

    cfg = (http_client_config){.ca_file = "/nonexistent/bundle.pem"};
    c = http_client_new(loop, tm, &cfg, err, sizeof err);
    CHECK(c == NULL && strstr(err, "/nonexistent/bundle.pem"), "an unreadable ca_file fails the client: %s",
          err);

    close(stdin_w);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    /* client certificates */
    port = free_port();
    pid = s_server_start(dir, port, 1, &stdin_w);
    char key[300];
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(pin, sizeof pin, "localhost:%d:127.0.0.1", port);
    snprintf(url, sizeof url, "https://localhost:%d/", port);
    cfg = (http_client_config){.resolve = pins};
    c = http_client_new(loop, tm, &cfg, err, sizeof err);
    p = http_pool_new(c);
    req = (http_req){.method = "GET", .url = url, .tls_ca = ca};
    r = fetch(p, &req);
    CHECK(r->err != ERR_NONE, "a server asking for a client certificate refuses us without one: %s",
          r->errmsg);
    http_res_free(r);
    req.tls_cert = ca, req.tls_key = key;
    r = fetch(p, &req);
    CHECK(r->err == ERR_NONE && r->status == 200, "tls_cert + tls_key authenticate us: %s", r->errmsg);
    http_res_free(r);
    req.tls_key = NULL;
    r = fetch(p, &req);
    CHECK(r->err == ERR_TLS && strstr(r->errmsg, "tls_key"), "a cert without its key is explained: %s",
          r->errmsg);
    http_res_free(r);
    http_pool_free(p);
    http_client_free(c);
    close(stdin_w);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    tm = timers_new(loop);
    char err[200];
    http_client_config cfg = {.connect_timeout_us = 2000000};
    http_client *c = http_client_new(loop, tm, &cfg, err, sizeof err);
    CHECK(c != NULL, "client: %s", c ? "ok" : err);
    framing(c);
    bodies(c);
    errors(c);
    cookies_and_headers(c);
    edges(c);
    http_client_free(c);
    routing();
    tls();
    uv_run(loop, UV_RUN_DEFAULT);
    timers_free(tm);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0, "every handle was closed");
    return check_done();
}
