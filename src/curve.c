/* curve: CURVE key pairs, the ZAP handler that admits listed worker keys, and the socket monitor
 * that turns failed handshakes into one clear line. See curve.h for the contract.
 *
 * Order matters on a queen: libzmq consults ZAP only if something is bound to
 * inproc://zeromq.zap.01 in the socket's context when a handshake happens, and a CURVE server with
 * no ZAP handler admits EVERY client key (ZMQ_ZAP_ENFORCE_DOMAIN is a draft option, absent from
 * Debian's stable libzmq). So: curve_zap_start() first, then curve_server() + bind. */
#include "curve.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define CURVE_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define CURVE_LINE_MAX 1024

/* ---- keys ------------------------------------------------------------------------------------ */

/* 1 if `s` (exactly 40 chars, no terminator needed) is a Z85 key zmq_z85_decode accepts. */
static int curve_key_valid(const char *s, size_t len)
{
    if (len != CURVE_KEY_LEN) return 0;
    char z[CURVE_KEY_LEN + 1];
    memcpy(z, s, CURVE_KEY_LEN);
    z[CURVE_KEY_LEN] = 0;
    uint8_t bin[32];
    return zmq_z85_decode(bin, z) != NULL;
}

/* Strip leading and trailing white space in place; returns the start. */
static char *curve_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Read the first line of `path` into buf (trimmed). 0, or -1 with errno set. */
static int curve_read_first_line(const char *path, char *buf, size_t buflen)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(buf, (int)buflen, f)) buf[0] = 0;
    fclose(f);
    char *t = curve_trim(buf);
    memmove(buf, t, strlen(t) + 1);
    return 0;
}

/* Create `path` holding `line` + newline with exactly `mode`, failing if it exists. */
static int curve_write_new(const char *path, const char *line, mode_t mode, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[CURVE_KEY_LEN + 2];
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    int ok = fchmod(fd, mode) == 0 && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0) ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
        unlink(path);
        return -1;
    }
    return 0;
}

int curve_keygen(const char *dir, char *err, size_t errlen)
{
    char pubp[4096], secp[4096];
    snprintf(pubp, sizeof pubp, "%s/parrot.key", dir);
    snprintf(secp, sizeof secp, "%s/parrot.secret", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (access(pubp, F_OK) == 0 || access(secp, F_OK) == 0) {
        snprintf(err, errlen,
                 "%s already holds a key pair (parrot.key or parrot.secret); "
                 "refusing to overwrite it — remove it first or choose another directory",
                 dir);
        return -1;
    }
    curve_keys k;
    if (zmq_curve_keypair(k.pub, k.sec) != 0) {
        snprintf(err, errlen, "cannot generate a CURVE key pair: %s (libzmq built without CURVE?)",
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    /* The secret first: a lone public key is harmless, a lone secret is merely useless. */
    if (curve_write_new(secp, k.sec, 0600, err, errlen)) return -1;
    if (curve_write_new(pubp, k.pub, 0644, err, errlen)) {
        unlink(secp);
        return -1;
    }
    return 0;
}

int curve_load(const char *dir, curve_keys *k, char *err, size_t errlen)
{
    char pubp[4096], secp[4096], line[256];
    snprintf(pubp, sizeof pubp, "%s/parrot.key", dir);
    snprintf(secp, sizeof secp, "%s/parrot.secret", dir);
    memset(k, 0, sizeof *k);
    if (curve_read_first_line(pubp, line, sizeof line)) {
        snprintf(err, errlen, "cannot read %s: %s (make a pair with: parrot keygen %s)", pubp,
                 strerror(errno), dir);
        return -1;
    }
    if (!curve_key_valid(line, strlen(line))) {
        snprintf(err, errlen, "%s: first line is not a 40-character Z85 public key", pubp);
        return -1;
    }
    memcpy(k->pub, line, CURVE_KEY_LEN + 1);
    struct stat st;
    if (stat(secp, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "parrot: warning: %s is readable by group or others (chmod 600 %s)\n", secp, secp);
    if (curve_read_first_line(secp, line, sizeof line)) {
        snprintf(err, errlen, "cannot read %s: %s", secp, strerror(errno));
        return -1;
    }
    char derived[CURVE_KEY_LEN + 1];
    if (!curve_key_valid(line, strlen(line)) || zmq_curve_public(derived, line) != 0) {
        snprintf(err, errlen, "%s: first line is not a 40-character Z85 secret key", secp);
        return -1;
    }
    if (strcmp(derived, k->pub) != 0) {
        snprintf(err, errlen, "%s and %s are not one pair (regenerate with parrot keygen)", pubp, secp);
        return -1;
    }
    memcpy(k->sec, line, CURVE_KEY_LEN + 1);
    return 0;
}

int curve_read_public(const char *key_or_file, char out[CURVE_KEY_LEN + 1], char *err, size_t errlen)
{
    if (curve_key_valid(key_or_file, strlen(key_or_file))) {
        memcpy(out, key_or_file, CURVE_KEY_LEN + 1);
        return 0;
    }
    char line[256];
    if (curve_read_first_line(key_or_file, line, sizeof line)) {
        snprintf(err, errlen, "'%s' is neither a 40-character Z85 public key nor a readable key file (%s)",
                 key_or_file, strerror(errno));
        return -1;
    }
    if (!curve_key_valid(line, strlen(line))) {
        snprintf(err, errlen, "%s: first line is not a 40-character Z85 public key", key_or_file);
        return -1;
    }
    memcpy(out, line, CURVE_KEY_LEN + 1);
    return 0;
}

int curve_server(void *sock, const curve_keys *k)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one)) return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->sec, CURVE_KEY_LEN + 1)) return -1;
    /* A domain makes libzmq consult the ZAP handler (curve_zap_start) for every handshake. */
    return zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "parrot", 6);
}

int curve_client(void *sock, const curve_keys *k, const char *server_pub)
{
    if (!curve_key_valid(server_pub, strlen(server_pub))) {
        errno = EINVAL;
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, CURVE_KEY_LEN + 1)) return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->pub, CURVE_KEY_LEN + 1)) return -1;
    return zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->sec, CURVE_KEY_LEN + 1);
}

/* ---- a thread with a control pair -------------------------------------------------------------- */

/* Both background threads wait in zmq_poll on their work socket and on `ctl_in`, one end of an
 * inproc PAIR; stopping sends one byte on the other end (`ctl_out`) and joins. The context is shared
 * with the caller's sockets, so zmq_ctx_shutdown is not an option. */
typedef struct curve_ctl {
    void *ctl_in;  /* owned by the thread once started */
    void *ctl_out; /* owned by whoever calls stop */
} curve_ctl;

static atomic_uint curve_unique;

static void curve_unique_name(char *buf, size_t len, const char *prefix)
{
    snprintf(buf, len, "inproc://%s-%d-%u", prefix, (int)getpid(), atomic_fetch_add(&curve_unique, 1));
}

static int curve_ctl_open(curve_ctl *c, void *ctx)
{
    char name[96];
    curve_unique_name(name, sizeof name, "parrot-ctl");
    c->ctl_in = zmq_socket(ctx, ZMQ_PAIR);
    c->ctl_out = zmq_socket(ctx, ZMQ_PAIR);
    if (!c->ctl_in || !c->ctl_out || zmq_bind(c->ctl_in, name) || zmq_connect(c->ctl_out, name)) {
        if (c->ctl_in) zmq_close(c->ctl_in);
        if (c->ctl_out) zmq_close(c->ctl_out);
        c->ctl_in = c->ctl_out = NULL;
        return -1;
    }
    return 0;
}

/* Tell the thread to leave and wait for it; the thread closes ctl_in itself. */
static void curve_ctl_stop(curve_ctl *c, pthread_t th)
{
    zmq_send(c->ctl_out, "x", 1, 0);
    pthread_join(th, NULL);
    int zero = 0;
    zmq_setsockopt(c->ctl_out, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(c->ctl_out);
}

/* Receive one frame into buf (truncated to cap); returns its full size or -1; *more set. */
static int curve_recv_frame(void *sock, char *buf, size_t cap, int *more)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, 0) < 0) {
        zmq_msg_close(&m);
        *more = 0;
        return -1;
    }
    size_t n = zmq_msg_size(&m);
    memcpy(buf, zmq_msg_data(&m), n < cap ? n : cap);
    *more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    return (int)n;
}

/* ---- ZAP --------------------------------------------------------------------------------------- */

struct curve_zap {
    void *rep; /* REP on inproc://zeromq.zap.01; owned by the thread after start */
    curve_ctl ctl;
    char (*keys)[CURVE_KEY_LEN + 1]; /* owned: the allowed keys */
    size_t nkeys;
    void (*on_deny)(void *ud, const char *key);
    void *ud;
    pthread_t th;
};

/* Load `path`: one Z85 key per line (anything after the key and white space is a note), '#'
 * comment lines and blank lines ignored. Fails on a missing file, a bad line, or no key at all. */
static int curve_allow_load(curve_zap *z, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the allow file %s: %s (one worker public key per line)", path,
                 strerror(errno));
        return -1;
    }
    char line[1024];
    size_t cap = 0;
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *t = curve_trim(line);
        size_t tok = strcspn(t, " \t");
        if (!*t) continue;
        if (!curve_key_valid(t, tok)) {
            if (*t == '#') continue; /* checked second: a Z85 key may start with '#' */
            snprintf(err, errlen, "%s:%d: not a 40-character Z85 public key (a worker's parrot.key)", path,
                     lineno);
            fclose(f);
            return -1;
        }
        if (z->nkeys == cap) {
            cap = cap ? cap * 2 : 16;
            void *nk = realloc(z->keys, cap * sizeof *z->keys);
            if (!nk) {
                snprintf(err, errlen, "out of memory reading %s", path);
                fclose(f);
                return -1;
            }
            z->keys = nk;
        }
        memcpy(z->keys[z->nkeys], t, CURVE_KEY_LEN);
        z->keys[z->nkeys++][CURVE_KEY_LEN] = 0;
    }
    fclose(f);
    if (!z->nkeys) {
        snprintf(err, errlen,
                 "the allow file %s lists no keys: no worker could join "
                 "(add each worker's parrot.key line)",
                 path);
        return -1;
    }
    return 0;
}

static int curve_zap_allowed(const curve_zap *z, const char *key)
{
    for (size_t i = 0; i < z->nkeys; i++)
        if (!strcmp(z->keys[i], key)) return 1;
    return 0;
}

static void curve_zap_send(void *rep, const char *reqid, int reqid_len, const char *status, const char *text)
{
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(rep, reqid, (size_t)reqid_len, ZMQ_SNDMORE);
    zmq_send(rep, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, "", 0, ZMQ_SNDMORE); /* user id */
    zmq_send(rep, "", 0, 0);           /* metadata */
}

/* Answer one ZAP 1.0 request: version, request id, domain, address, identity, mechanism,
 * credentials (for CURVE: the client's 32-byte public key). */
static void curve_zap_answer(curve_zap *z)
{
    char frames[7][256] = {{0}};
    int sizes[7] = {0}, n = 0, more = 1;
    while (more) {
        char scratch[256];
        int sz = curve_recv_frame(z->rep, n < 7 ? frames[n] : scratch, 256, &more);
        if (sz < 0) return;
        if (n < 7) sizes[n] = sz;
        n++;
    }
    int reqid_len = n > 1 && sizes[1] <= 255 ? sizes[1] : 0;
    if (n < 6 || sizes[0] != 3 || memcmp(frames[0], "1.0", 3)) {
        curve_zap_send(z->rep, frames[1], reqid_len, "500", "malformed ZAP request");
        return;
    }
    int is_curve = sizes[5] == 5 && !memcmp(frames[5], "CURVE", 5);
    char key[CURVE_KEY_LEN + 1] = "";
    if (is_curve && n >= 7 && sizes[6] == 32) zmq_z85_encode(key, (const uint8_t *)frames[6], 32);
    if (key[0] && curve_zap_allowed(z, key)) {
        curve_zap_send(z->rep, frames[1], reqid_len, "200", "OK");
        return;
    }
    curve_zap_send(z->rep, frames[1], reqid_len, "400",
                   is_curve ? "key not in the allow file" : "CURVE required");
    if (z->on_deny) {
        char what[64];
        if (!key[0]) {
            int ml = sizes[5] < 32 ? sizes[5] : 32;
            snprintf(what, sizeof what, "(no CURVE key: mechanism %.*s)", ml, frames[5]);
        }
        z->on_deny(z->ud, key[0] ? key : what);
    }
}

static void *curve_zap_thread(void *arg)
{
    curve_zap *z = arg;
    zmq_pollitem_t items[2] = {{z->rep, 0, ZMQ_POLLIN, 0}, {z->ctl.ctl_in, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR) continue;
            break; /* ETERM: the context is going away */
        }
        if (items[1].revents & ZMQ_POLLIN) break;
        if (items[0].revents & ZMQ_POLLIN) curve_zap_answer(z);
    }
    int zero = 0;
    zmq_setsockopt(z->rep, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(z->ctl.ctl_in, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(z->rep);
    zmq_close(z->ctl.ctl_in);
    return NULL;
}

static void curve_zap_free(curve_zap *z)
{
    free(z->keys);
    free(z);
}

curve_zap *curve_zap_start(void *zmq_ctx, const char *allow_file, void (*on_deny)(void *ud, const char *key),
                           void *ud, char *err, size_t errlen)
{
    curve_zap *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    z->on_deny = on_deny;
    z->ud = ud;
    if (curve_allow_load(z, allow_file, err, errlen)) {
        curve_zap_free(z);
        return NULL;
    }
    /* Bound here, on the caller's thread, so it exists before any server socket handshakes. */
    z->rep = zmq_socket(zmq_ctx, ZMQ_REP);
    if (!z->rep || zmq_bind(z->rep, CURVE_ZAP_ENDPOINT)) {
        snprintf(err, errlen, "cannot start the ZAP handler on %s: %s (is one already running?)",
                 CURVE_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        if (z->rep) zmq_close(z->rep);
        curve_zap_free(z);
        return NULL;
    }
    if (curve_ctl_open(&z->ctl, zmq_ctx) || pthread_create(&z->th, NULL, curve_zap_thread, z)) {
        snprintf(err, errlen, "cannot start the ZAP handler thread");
        if (z->ctl.ctl_in) {
            zmq_close(z->ctl.ctl_in);
            zmq_close(z->ctl.ctl_out);
        }
        zmq_close(z->rep);
        curve_zap_free(z);
        return NULL;
    }
    return z;
}

void curve_zap_stop(curve_zap *z)
{
    if (!z) return;
    curve_ctl_stop(&z->ctl, z->th);
    curve_zap_free(z);
}

/* ---- monitor ----------------------------------------------------------------------------------- */

#define CURVE_MON_EVENTS                                                                                     \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                            \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED)
#define CURVE_MON_QUIET_NS (10ull * 1000000000ull) /* the same line at most once per 10 s */
#define CURVE_MON_RECENT 8

struct curve_monitor {
    void *sock; /* the watched socket: not owned */
    void *pair; /* PAIR connected to the monitor endpoint; owned by the thread after start */
    curve_ctl ctl;
    int is_server;
    int keyless;   /* the watched socket has no CURVE */
    int said_ok;   /* the first success was reported */
    int handshake; /* 1 between a success and the next disconnect */
    int failed;    /* handshakes failed in a row with no detail (keyless: a keyed queen hangs up) */
    void (*on_event)(void *ud, const char *line, int ok);
    void *ud;
    struct {
        char line[CURVE_LINE_MAX];
        uint64_t at;
    } recent[CURVE_MON_RECENT]; /* lines said lately, for the 10 s quiet rule */
    pthread_t th;
};

static uint64_t curve_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Say `line` unless it was said in the last 10 s. */
static void curve_mon_say(curve_monitor *m, const char *line, int ok)
{
    uint64_t now = curve_now_ns();
    int oldest = 0;
    for (int i = 0; i < CURVE_MON_RECENT; i++) {
        if (m->recent[i].at && !strcmp(m->recent[i].line, line)) {
            if (now - m->recent[i].at < CURVE_MON_QUIET_NS) return;
            oldest = i;
            break;
        }
        if (m->recent[i].at < m->recent[oldest].at) oldest = i;
    }
    snprintf(m->recent[oldest].line, CURVE_LINE_MAX, "%s", line);
    m->recent[oldest].at = now;
    if (m->on_event) m->on_event(m->ud, line, ok);
}

/* Turn one monitor event into a line (or nothing). */
static void curve_mon_event(curve_monitor *m, unsigned event, unsigned value, const char *ep)
{
    char line[CURVE_LINE_MAX];
    line[0] = 0;
    int ok = 0;
    if (event == ZMQ_EVENT_DISCONNECTED) {
        m->handshake = 0;
        return;
    }
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        m->handshake = 1;
        m->failed = 0;
        if (m->said_ok || m->keyless) return; /* without keys, joining says enough */
        m->said_ok = 1;
        ok = 1;
        if (m->is_server)
            snprintf(line, sizeof line, "a worker connected to %s (CURVE)", ep);
        else
            snprintf(line, sizeof line, "connected to %s (CURVE)", ep);
    } else if (m->is_server && m->keyless) { /* libzmq gives no detail here: hedge */
        snprintf(line, sizeof line,
                 "a peer failed the handshake on %s: a worker with CURVE keys? this queen runs without "
                 "them (give the queen --keys DIR --allow FILE, or start the worker without keys)",
                 ep);
    } else if (m->is_server) {
        const char *why = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                              ? "its key is not in --allow"
                              : "it pins another queen key, runs without keys, or is not parrot";
        snprintf(line, sizeof line, "a worker at %s failed the CURVE handshake (%s)", ep, why);
    } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        snprintf(line, sizeof line,
                 m->keyless ? "the queen at %s uses CURVE keys and this worker has none: start it with "
                              "--keys DIR --queen-key KEY"
                            : "the queen at %s runs without CURVE keys and this worker has them: give the "
                              "queen --keys DIR --allow FILE, or start the worker without keys",
                 ep);
    } else if (m->keyless) {
        /* a keyed queen may hang up before its greeting is read: once is a dropped link, twice in a
         * row with no success between is a pattern */
        if (++m->failed < 2) return;
        snprintf(line, sizeof line,
                 "the handshake with the queen at %s keeps failing: it probably uses CURVE keys and this "
                 "worker has none: start it with --keys DIR --queen-key KEY",
                 ep);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        snprintf(line, sizeof line,
                 "the queen at %s refused this worker's key (add the worker's public key to the "
                 "queen's --allow file)",
                 ep);
        if (value != 400) {
            size_t n = strlen(line);
            snprintf(line + n, sizeof line - n, " [ZAP status %u]", value);
        }
    } else {
        snprintf(line, sizeof line,
                 "CURVE handshake with %s failed: the queen's key does not match --queen-key (or "
                 "the queen runs without keys)",
                 ep);
    }
    curve_mon_say(m, line, ok);
}

static void curve_mon_read(curve_monitor *m)
{
    char head[6], ep[512];
    int more = 0;
    int n = curve_recv_frame(m->pair, head, sizeof head, &more);
    if (n < 0) return;
    int epn = 0;
    if (more) {
        epn = curve_recv_frame(m->pair, ep, sizeof ep - 1, &more);
        while (more) { /* not expected: drain anything newer libzmq adds */
            char scratch[64];
            if (curve_recv_frame(m->pair, scratch, sizeof scratch, &more) < 0) break;
        }
    }
    if (n != 6) return;
    ep[epn < 0 ? 0 : epn > (int)sizeof ep - 1 ? (int)sizeof ep - 1 : epn] = 0;
    uint16_t event;
    uint32_t value;
    memcpy(&event, head, 2);
    memcpy(&value, head + 2, 4);
    curve_mon_event(m, event, value, ep);
}

static void *curve_mon_thread(void *arg)
{
    curve_monitor *m = arg;
    zmq_pollitem_t items[2] = {{m->pair, 0, ZMQ_POLLIN, 0}, {m->ctl.ctl_in, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR) continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) break;
        if (items[0].revents & ZMQ_POLLIN) curve_mon_read(m);
    }
    int zero = 0;
    zmq_setsockopt(m->pair, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(m->ctl.ctl_in, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(m->pair);
    zmq_close(m->ctl.ctl_in);
    return NULL;
}

curve_monitor *curve_monitor_start(void *zmq_ctx, void *sock, int flags,
                                   void (*on_event)(void *ud, const char *line, int ok), void *ud)
{
    curve_monitor *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->sock = sock;
    m->is_server = !!(flags & CURVE_MON_SERVER);
    m->keyless = !!(flags & CURVE_MON_KEYLESS);
    m->on_event = on_event;
    m->ud = ud;
    char name[96];
    curve_unique_name(name, sizeof name, "parrot-mon");
    if (zmq_socket_monitor(sock, name, CURVE_MON_EVENTS)) {
        free(m);
        return NULL;
    }
    m->pair = zmq_socket(zmq_ctx, ZMQ_PAIR);
    if (!m->pair || zmq_connect(m->pair, name) || curve_ctl_open(&m->ctl, zmq_ctx) ||
        pthread_create(&m->th, NULL, curve_mon_thread, m)) {
        zmq_socket_monitor(sock, NULL, 0);
        if (m->ctl.ctl_in) {
            zmq_close(m->ctl.ctl_in);
            zmq_close(m->ctl.ctl_out);
        }
        if (m->pair) zmq_close(m->pair);
        free(m);
        return NULL;
    }
    return m;
}

void curve_monitor_stop(curve_monitor *m)
{
    if (!m) return;
    zmq_socket_monitor(m->sock, NULL, 0);
    curve_ctl_stop(&m->ctl, m->th);
    free(m);
}
