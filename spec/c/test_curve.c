/* test_curve: CURVE security for the cluster, with real ZeroMQ sockets on 127.0.0.1 — key pairs on
 * disk, a queen (ROUTER) that admits only the worker keys in its allow file, and the one-line
 * explanations a worker (DEALER) gets when its key is refused or it pins the wrong queen key. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "curve.h"

/* What a monitor said, collected from its thread. */
typedef struct said {
    pthread_mutex_t mu;
    char lines[16][1024];
    int n, ok;
} said;

static void said_add(void *ud, const char *line, int ok)
{
    said *s = ud;
    pthread_mutex_lock(&s->mu);
    if (s->n < 16) snprintf(s->lines[s->n++], sizeof s->lines[0], "%s", line);
    s->ok += ok;
    pthread_mutex_unlock(&s->mu);
}

/* How many lines said so far contain `needle`. */
static int said_count(said *s, const char *needle)
{
    int c = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        if (strstr(s->lines[i], needle)) c++;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static int said_oks(said *s)
{
    pthread_mutex_lock(&s->mu);
    int ok = s->ok;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static int said_wait(said *s, const char *needle, int ms)
{
    for (int t = 0; t < ms; t += 10) {
        if (said_count(s, needle)) return 1;
        usleep(10000);
    }
    return said_count(s, needle) > 0;
}

static int denied;
static char denied_key[64];
static pthread_mutex_t denied_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_deny(void *ud, const char *key)
{
    (void)ud;
    pthread_mutex_lock(&denied_mu);
    denied++;
    snprintf(denied_key, sizeof denied_key, "%s", key);
    pthread_mutex_unlock(&denied_mu);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void *socket_linger0(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

/* Receive a DEALER's message on the ROUTER within `ms`: 1 and the body in buf, or 0. */
static int router_recv(void *router, int ms, char *buf, size_t len)
{
    zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0) return 0;
    char id[256];
    if (zmq_recv(router, id, sizeof id, ZMQ_DONTWAIT) < 0) return 0;
    int n = zmq_recv(router, buf, len - 1, ZMQ_DONTWAIT);
    if (n < 0) return 0;
    buf[n] = 0;
    return 1;
}

static void test_keys(const char *tmp)
{
    char dir[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/queen", tmp);
    CHECK(curve_keygen(dir, err, sizeof err) == 0, "keygen writes a pair into a new directory");
    curve_keys k;
    CHECK(curve_load(dir, &k, err, sizeof err) == 0 && strlen(k.pub) == 40 && strlen(k.sec) == 40,
          "curve_load reads the pair back (40 Z85 characters each)");
    struct stat st;
    snprintf(path, sizeof path, "%s/parrot.secret", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "parrot.secret is 0600");
    snprintf(path, sizeof path, "%s/parrot.key", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "parrot.key is 0644");
    CHECK(curve_keygen(dir, err, sizeof err) == -1 && strstr(err, "refusing to overwrite"),
          "keygen refuses to overwrite a pair: %s", err);
    curve_keys again;
    CHECK(curve_load(dir, &again, err, sizeof err) == 0 && !strcmp(again.pub, k.pub),
          "the refused keygen left the old pair alone");

    char pub[CURVE_KEY_LEN + 1];
    CHECK(curve_read_public(k.pub, pub, err, sizeof err) == 0 && !strcmp(pub, k.pub),
          "read_public takes the key itself");
    CHECK(curve_read_public(path, pub, err, sizeof err) == 0 && !strcmp(pub, k.pub),
          "read_public takes the path of parrot.key");
    CHECK(curve_read_public("not-a-key", pub, err, sizeof err) == -1 && strstr(err, "not-a-key"),
          "read_public refuses a word that is neither: %s", err);
    CHECK(curve_read_public("~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~", pub, err, sizeof err) == -1,
          "read_public refuses 40 characters that are not Z85");
    snprintf(path, sizeof path, "%s/bad.key", tmp);
    write_file(path, "hello\n");
    CHECK(curve_read_public(path, pub, err, sizeof err) == -1 && strstr(err, "first line"),
          "read_public refuses a file without a key: %s", err);
    snprintf(path, sizeof path, "%s/nowhere", tmp);
    CHECK(curve_load(path, &k, err, sizeof err) == -1 && strstr(err, "parrot keygen"),
          "curve_load of a missing pair says how to make one: %s", err);
}

static void test_allow_errors(void *ctx, const char *tmp)
{
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/missing.allow", tmp);
    CHECK(!curve_zap_start(ctx, path, NULL, NULL, err, sizeof err) && strstr(err, "missing.allow"),
          "a missing allow file is an error naming it: %s", err);
    snprintf(path, sizeof path, "%s/empty.allow", tmp);
    write_file(path, "# nobody yet\n\n");
    CHECK(!curve_zap_start(ctx, path, NULL, NULL, err, sizeof err) && strstr(err, "no keys"),
          "an allow file without keys is an error: %s", err);
    snprintf(path, sizeof path, "%s/bad.allow", tmp);
    write_file(path, "# workers\n\nthis is not a key\n");
    CHECK(!curve_zap_start(ctx, path, NULL, NULL, err, sizeof err) && strstr(err, "bad.allow:3:"),
          "a bad line is an error naming its line: %s", err);
}

/* A keys directory under tmp, generated and loaded. */
static curve_keys make_keys(const char *tmp, const char *name)
{
    char dir[600], err[512];
    curve_keys k;
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    if (curve_keygen(dir, err, sizeof err) || curve_load(dir, &k, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return k;
}

/* A worker: a DEALER with its keys pinning `queen_pub`, watched, connected to `ep`. */
static void *worker_connect(void *ctx, const curve_keys *k, const char *queen_pub, const char *ep, said *s,
                            curve_monitor **mon)
{
    void *d = socket_linger0(ctx, ZMQ_DEALER);
    curve_client(d, k, queen_pub);
    *mon = curve_monitor_start(ctx, d, 0, said_add, s);
    zmq_connect(d, ep);
    return d;
}

static void test_cluster(void *ctx, const char *tmp)
{
    curve_keys queen = make_keys(tmp, "q"), a = make_keys(tmp, "a"), b = make_keys(tmp, "b"),
               c = make_keys(tmp, "c");
    char allow[600], line[128], err[512], ep[256];
    snprintf(allow, sizeof allow, "%s/workers.allow", tmp);
    snprintf(line, sizeof line, "# the workers we trust\n\n%s   worker-a\n", a.pub);
    write_file(allow, line);

    /* The ZAP handler first, then the server socket: libzmq admits anyone when no ZAP is bound. */
    curve_zap *zap = curve_zap_start(ctx, allow, on_deny, NULL, err, sizeof err);
    CHECK(zap != NULL, "the ZAP handler starts with an allow file of one key (%s)", zap ? "" : err);
    void *router = socket_linger0(ctx, ZMQ_ROUTER);
    CHECK(curve_server(router, &queen) == 0, "the ROUTER becomes a CURVE server");
    said qs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    curve_monitor *qmon = curve_monitor_start(ctx, router, 1, said_add, &qs);
    zmq_bind(router, "tcp://127.0.0.1:*");
    size_t eplen = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen);

    said as = {.mu = PTHREAD_MUTEX_INITIALIZER}, bs = as, cs = as;
    curve_monitor *amon, *bmon, *cmon;
    void *da = worker_connect(ctx, &a, queen.pub, ep, &as, &amon);
    zmq_send(da, "hello from a", 12, ZMQ_DONTWAIT);
    char got[64] = "";
    CHECK(router_recv(router, 2000, got, sizeof got) && !strcmp(got, "hello from a"),
          "a listed worker pinning the queen's key gets its message through");
    CHECK(said_wait(&as, "connected to tcp://127.0.0.1:", 2000), "its monitor says it connected");
    CHECK(said_oks(&as) == 1, "once, as a success");

    void *db = worker_connect(ctx, &b, queen.pub, ep, &bs, &bmon);
    zmq_send(db, "hello from b", 12, ZMQ_DONTWAIT);
    CHECK(!router_recv(router, 1000, got, sizeof got), "an unlisted worker gets nothing through in 1 s");
    CHECK(
        said_wait(&bs, "refused this worker's key (add the worker's public key to the queen's --allow", 2000),
        "its monitor says the queen refused its key: %s", bs.n ? bs.lines[0] : "(nothing)");
    pthread_mutex_lock(&denied_mu);
    CHECK(denied >= 1 && !strcmp(denied_key, b.pub), "the queen's on_deny saw the unlisted key");
    pthread_mutex_unlock(&denied_mu);
    CHECK(said_wait(&qs, "failed the CURVE handshake (its key is not in --allow)", 1000),
          "the queen's monitor says a worker failed the handshake");

    void *dc = worker_connect(ctx, &c, a.pub /* not the queen's key */, ep, &cs, &cmon);
    zmq_send(dc, "hello from c", 12, ZMQ_DONTWAIT);
    CHECK(said_wait(&cs, "the queen's key does not match --queen-key", 2000),
          "a worker pinning the wrong queen key is told so: %s", cs.n ? cs.lines[0] : "(nothing)");
    CHECK(!router_recv(router, 800, got, sizeof got), "and gets nothing through");
    /* libzmq retries that connection every 100 ms; each failure is an event, but not a line. */
    CHECK(said_count(&cs, "does not match") == 1 && said_count(&qs, "pins another queen key") == 1,
          "the retries of 0.8 s were said once on each side (worker %d, queen %d)",
          said_count(&cs, "does not match"), said_count(&qs, "pins another queen key"));
    CHECK(said_oks(&bs) == 0 && said_oks(&cs) == 0, "neither failing worker reported a success");

    void *plain = socket_linger0(ctx, ZMQ_DEALER); /* a worker without keys */
    zmq_connect(plain, ep);
    zmq_send(plain, "hello in clear", 14, ZMQ_DONTWAIT);
    CHECK(!router_recv(router, 300, got, sizeof got), "a worker without keys gets nothing through");
    zmq_close(plain);

    curve_monitor_stop(amon);
    curve_monitor_stop(bmon);
    curve_monitor_stop(cmon);
    curve_monitor_stop(qmon);
    zmq_close(da);
    zmq_close(db);
    zmq_close(dc);
    zmq_close(router);
    curve_zap_stop(zap);
    CHECK(1, "monitors and the ZAP handler stop without hanging");
}

int main(void)
{
    char tmp[] = "/tmp/parrot-curve-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_keys(tmp);
    void *ctx = zmq_ctx_new();
    test_allow_errors(ctx, tmp);
    test_cluster(ctx, tmp);
    CHECK(zmq_ctx_term(ctx) == 0, "the context terminates (every socket was closed)");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 10, "the whole test took %.1f s", secs);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? check_done() : 1;
}
