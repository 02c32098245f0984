/* tls: mbedTLS 2.28 client glue. Custom BIO callbacks read ciphertext the connection feeds and
 * write ciphertext into a buffer the connection sends, so the caller owns all I/O (libuv). Parsed
 * files and configs are cached per tls_client by path, sessions by origin and config, and each
 * origin has a "first handshake in flight" marker so new connections can wait for its session.
 * An idle connection holds no buffer of its own: only mbedTLS's context (~33 KB, fixed by the
 * library's build: no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH in Debian's). */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

/* A parsed certificate chain or key file, by path. Owned by the client's list. */
typedef struct tls_file {
    struct tls_file *next;
    char *path; /* owned */
    int is_key;
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
} tls_file;

/* One SSL config per distinct option set. Owned by the client's list; points at tls_files. */
typedef struct tls_conf {
    struct tls_conf *next;
    int insecure;
    char *ca, *cert, *key; /* owned copies (NULL: default) for matching */
    mbedtls_ssl_config conf;
} tls_conf;

/* An origin under one config: its last session, and its first handshake while none is cached.
 * Owned by the client's list; entries live as long as the client. */
typedef struct tls_sess {
    struct tls_sess *next;
    char *origin; /* owned */
    const tls_conf *conf;
    int cached;            /* `s` holds a session */
    const tls_conn *first; /* the connection whose full handshake will give the first session */
    mbedtls_ssl_session s; /* without the peer's certificates (resumption does not need them) */
} tls_sess;

struct tls_client {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    const char *ca_file; /* not owned (the config's string) */
    int insecure;
    tls_file *files;
    tls_conf *confs;
    tls_sess *sessions;
};

/* Buffers are grown by `buf_reserve`; `off` is where unread data starts. */
typedef struct tls_buf {
    char *p;
    size_t off, len, cap;
} tls_buf;

struct tls_conn {
    tls_sess *sess; /* the origin's entry (owned by the client) */
    mbedtls_ssl_context ssl;
    tls_buf in, out;  /* owned: ciphertext fed and left unread / to send; freed when empty */
    const char *lent; /* borrowed ciphertext between tls_conn_feed and tls_conn_feed_end */
    size_t lent_len;
    int saw_cert; /* the handshake went through the server Certificate state: not resumed */
    int done;
    int verify_ip; /* the host is an IP literal: check the certificate's IP SANs ourselves */
    size_t iplen;  /* 4 or 16 */
    unsigned char ip[16];
    char host[64];
};

static void errstr(int rc, const char *what, char *err, size_t errlen)
{
    char buf[120];
    mbedtls_strerror(rc, buf, sizeof buf);
    snprintf(err, errlen, "%s: %s", what, buf);
}

tls_client *tls_client_new(const char *ca_file, int insecure, char *err, size_t errlen)
{
    tls_client *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    static const char pers[] = "loadParrot";
    int rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, (const unsigned char *)pers,
                                   sizeof pers - 1);
    if (rc) {
        errstr(rc, "tls: seeding the RNG", err, errlen);
        tls_client_free(t);
        return NULL;
    }
    t->ca_file = ca_file;
    t->insecure = insecure;
    if (ca_file) { /* fail early on a bad --cacert */
        tls_opts o = {.insecure = 0};
        if (!tls_conn_new(t, &o, NULL, NULL, err, errlen) && err[0]) {
            tls_client_free(t);
            return NULL;
        }
    }
    return t;
}

void tls_client_free(tls_client *t)
{
    if (!t) return;
    while (t->sessions) {
        tls_sess *s = t->sessions;
        t->sessions = s->next;
        mbedtls_ssl_session_free(&s->s);
        free(s->origin);
        free(s);
    }
    while (t->confs) {
        tls_conf *c = t->confs;
        t->confs = c->next;
        mbedtls_ssl_config_free(&c->conf);
        free(c->ca), free(c->cert), free(c->key);
        free(c);
    }
    while (t->files) {
        tls_file *f = t->files;
        t->files = f->next;
        mbedtls_x509_crt_free(&f->crt);
        mbedtls_pk_free(&f->pk);
        free(f->path);
        free(f);
    }
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

/* The parsed file at `path` (a cert chain, or a key when is_key), loading it on first use. */
static tls_file *file_get(tls_client *t, const char *path, int is_key, char *err, size_t errlen)
{
    for (tls_file *f = t->files; f; f = f->next)
        if (f->is_key == is_key && !strcmp(f->path, path)) return f;
    tls_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->is_key = is_key;
    mbedtls_x509_crt_init(&f->crt);
    mbedtls_pk_init(&f->pk);
    int rc =
        is_key ? mbedtls_pk_parse_keyfile(&f->pk, path, NULL) : mbedtls_x509_crt_parse_file(&f->crt, path);
    /* crt_parse_file returns > 0 when some certificates of a bundle were skipped: fine. */
    if (rc < 0 || (!is_key && f->crt.version == 0)) {
        char what[300];
        snprintf(what, sizeof what, "tls: cannot load %s %.200s", is_key ? "key" : "certificates", path);
        if (rc < 0)
            errstr(rc, what, err, errlen);
        else
            snprintf(err, errlen, "%s: no certificate in it", what);
        mbedtls_x509_crt_free(&f->crt);
        mbedtls_pk_free(&f->pk);
        free(f->path);
        free(f);
        return NULL;
    }
    f->next = t->files;
    t->files = f;
    return f;
}

static int streq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* The SSL config for option set `o`, built on first use. */
static const tls_conf *conf_get(tls_client *t, const tls_opts *o, char *err, size_t errlen)
{
    int insecure = o->insecure || t->insecure;
    for (tls_conf *c = t->confs; c; c = c->next)
        if (c->insecure == insecure && streq(c->ca, o->ca) && streq(c->cert, o->cert) &&
            streq(c->key, o->key))
            return c;
    if ((o->cert == NULL) != (o->key == NULL)) {
        snprintf(err, errlen, "tls: a client certificate needs both tls_cert and tls_key");
        return NULL;
    }
    tls_file *ca = NULL, *cert = NULL, *key = NULL;
    if (!insecure && !(ca = file_get(t,
                                     o->ca        ? o->ca
                                     : t->ca_file ? t->ca_file
                                                  : TLS_SYSTEM_CA,
                                     0, err, errlen)))
        return NULL;
    if (o->cert &&
        (!(cert = file_get(t, o->cert, 0, err, errlen)) || !(key = file_get(t, o->key, 1, err, errlen))))
        return NULL;
    tls_conf *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mbedtls_ssl_config_init(&c->conf);
    int rc = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (!rc && cert) rc = mbedtls_ssl_conf_own_cert(&c->conf, &cert->crt, &key->pk);
    if (rc) {
        errstr(rc, "tls: config", err, errlen);
        mbedtls_ssl_config_free(&c->conf);
        free(c);
        return NULL;
    }
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_authmode(&c->conf, insecure ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
    if (ca) mbedtls_ssl_conf_ca_chain(&c->conf, &ca->crt, NULL);
    c->insecure = insecure;
    c->ca = dup_or_null(o->ca), c->cert = dup_or_null(o->cert), c->key = dup_or_null(o->key);
    c->next = t->confs;
    t->confs = c;
    return c;
}

/* Room for `more` bytes at the end of `b`. The first allocation is sized to the need (a request
 * record is a few hundred bytes), so small exchanges never hold a 16 KB block. */
static int buf_reserve(tls_buf *b, size_t more)
{
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + more <= b->cap) return 0;
    if (b->off) { /* compact before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 2048;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* An idle connection keeps no buffer of its own. */
static void buf_release(tls_buf *b)
{
    free(b->p);
    *b = (tls_buf){0};
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tls_conn *c = ctx;
    if (buf_reserve(&c->out, len) < 0) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(c->out.p + c->out.len, buf, len);
    c->out.len += len;
    return (int)len;
}

/* What was kept from earlier feeds first, then the bytes lent by the current one. */
static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tls_conn *c = ctx;
    size_t avail = c->in.len - c->in.off;
    if (avail) {
        if (len > avail) len = avail;
        memcpy(buf, c->in.p + c->in.off, len);
        c->in.off += len;
        if (c->in.off == c->in.len) buf_release(&c->in);
        return (int)len;
    }
    if (c->lent_len == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > c->lent_len) len = c->lent_len;
    memcpy(buf, c->lent, len);
    c->lent += len;
    c->lent_len -= len;
    return (int)len;
}

static tls_sess *sess_find(tls_client *t, const char *origin, const tls_conf *conf)
{
    for (tls_sess *s = t->sessions; s; s = s->next)
        if (s->conf == conf && !strcmp(s->origin, origin)) return s;
    return NULL;
}

/* The origin's entry, made (empty) on first use; NULL when out of memory. */
static tls_sess *sess_get(tls_client *t, const char *origin, const tls_conf *conf)
{
    tls_sess *s = sess_find(t, origin, conf);
    if (s) return s;
    s = calloc(1, sizeof *s);
    if (!s || !(s->origin = strdup(origin))) {
        free(s);
        return NULL;
    }
    s->conf = conf;
    mbedtls_ssl_session_init(&s->s);
    s->next = t->sessions;
    t->sessions = s;
    return s;
}

int tls_client_should_wait(tls_client *t, const tls_opts *o, const char *origin)
{
    char err[160];
    const tls_conf *conf = conf_get(t, o, err, sizeof err);
    if (!conf) return 0; /* tls_conn_new will say why */
    const tls_sess *s = sess_find(t, origin, conf);
    return s && !s->cached && s->first;
}

/* With host NULL only the config is built (tls_client_new's early check); returns NULL then. */
tls_conn *tls_conn_new(tls_client *t, const tls_opts *o, const char *host, const char *origin, char *err,
                       size_t errlen)
{
    err[0] = '\0';
    const tls_conf *conf = conf_get(t, o, err, errlen);
    if (!conf || !host) return NULL;
    tls_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->sess = sess_get(t, origin ? origin : host, conf))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mbedtls_ssl_init(&c->ssl);
    int rc = mbedtls_ssl_setup(&c->ssl, &conf->conf);
    /* mbedTLS 2.28 matches only DNS names: for an IP literal send no SNI (RFC 6066) and match
     * the certificate's IP addresses after the handshake */
    if (inet_pton(AF_INET, host, c->ip) == 1)
        c->iplen = 4;
    else if (inet_pton(AF_INET6, host, c->ip) == 1)
        c->iplen = 16;
    c->verify_ip = c->iplen && !o->insecure;
    snprintf(c->host, sizeof c->host, "%s", host);
    if (!rc && !c->iplen) rc = mbedtls_ssl_set_hostname(&c->ssl, host);
    if (rc) {
        errstr(rc, "tls: setup", err, errlen);
        tls_conn_free(c);
        return NULL;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    tls_sess *s = c->sess;
    if (s->cached)
        mbedtls_ssl_set_session(&c->ssl, &s->s); /* a failure only means a full handshake */
    else if (!s->first)
        s->first = c; /* the origin's first handshake: later connections may wait for it */
    return c;
}

/* The connection no longer holds its origin's first-handshake marker. */
static void first_done(tls_conn *c)
{
    if (c->sess && c->sess->first == c) c->sess->first = NULL;
}

int tls_conn_first(const tls_conn *c) { return c->sess && c->sess->first == c; }

void tls_conn_free(tls_conn *c)
{
    if (!c) return;
    first_done(c);
    mbedtls_ssl_free(&c->ssl);
    free(c->in.p);
    free(c->out.p);
    free(c);
}

int tls_conn_feed(tls_conn *c, const char *data, size_t n)
{
    if (c->lent_len && tls_conn_feed_end(c) < 0) return -1;
    c->lent = data;
    c->lent_len = n;
    return 0;
}

int tls_conn_feed_end(tls_conn *c)
{
    size_t n = c->lent_len;
    c->lent_len = 0;
    if (!n) return 0;
    if (buf_reserve(&c->in, n) < 0) return -1;
    memcpy(c->in.p + c->in.len, c->lent, n);
    c->in.len += n;
    return 0;
}

/* Drop the peer's certificate chain from the connection's session: it was verified, and only a
 * renegotiation (disabled in our configs) would look at it again. Saves a parsed copy of the
 * chain per connection, and the parse in every session copy. */
static void drop_peer_cert(mbedtls_ssl_session *s)
{
    if (!s || !s->peer_cert) return;
    mbedtls_x509_crt_free(s->peer_cert);
    mbedtls_free(s->peer_cert);
    s->peer_cert = NULL;
}

/* Keep the session for the next connection to this origin (any pool of this thread). */
static void sess_save(tls_conn *c)
{
    tls_sess *s = c->sess;
    mbedtls_ssl_session_free(&s->s);
    mbedtls_ssl_session_init(&s->s);
    s->cached = mbedtls_ssl_get_session(&c->ssl, &s->s) == 0;
}

static void verify_failed(tls_conn *c, char *err, size_t errlen)
{
    char info[512];
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
    int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    if (n <= 0) snprintf(info, sizeof info, "unknown reason");
    for (char *p = info; *p; p++)
        if (*p == '\n') *p = (p[1] ? ';' : '\0');
    snprintf(err, errlen, "tls: certificate verification failed: %s", info);
}

/* Does the peer's certificate name our IP address in its subjectAltName? */
static int peer_has_ip(tls_conn *c)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
    if (!crt) return 0;
    for (const mbedtls_x509_sequence *san = &crt->subject_alt_names; san; san = san->next) {
        /* [7] iPAddress, context-specific primitive */
        if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && san->buf.len == c->iplen &&
            !memcmp(san->buf.p, c->ip, c->iplen))
            return 1;
    }
    return 0;
}

int tls_conn_handshake(tls_conn *c, char *err, size_t errlen)
{
    while (c->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        if (c->ssl.state == MBEDTLS_SSL_SERVER_CERTIFICATE) c->saw_cert = 1;
        int rc = mbedtls_ssl_handshake_step(&c->ssl);
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 1;
        if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
            verify_failed(c, err, errlen);
            first_done(c);
            return -1;
        }
        if (rc) {
            errstr(rc, "tls: handshake", err, errlen);
            first_done(c);
            return -1;
        }
    }
    if (!c->done) {
        if (c->verify_ip && c->saw_cert && !peer_has_ip(c)) {
            snprintf(err, errlen, "tls: certificate verification failed: the certificate does not name %s",
                     c->host);
            first_done(c);
            return -1;
        }
        c->done = 1;
        drop_peer_cert(c->ssl.session);
        sess_save(c);
        first_done(c);
    }
    return 0;
}

int tls_conn_resumed(const tls_conn *c) { return c->done && !c->saw_cert; }

int tls_conn_read(tls_conn *c, char *buf, size_t cap, char *err, size_t errlen)
{
    int rc = mbedtls_ssl_read(&c->ssl, (unsigned char *)buf, cap);
    if (rc > 0) return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return TLS_EOF;
    errstr(rc, "tls: read", err, errlen);
    return -1;
}

int tls_conn_write(tls_conn *c, const char *data, size_t n, char *err, size_t errlen)
{
    while (n) {
        int rc = mbedtls_ssl_write(&c->ssl, (const unsigned char *)data, n);
        if (rc < 0) {
            errstr(rc, "tls: write", err, errlen);
            return -1;
        }
        data += rc;
        n -= (size_t)rc;
    }
    return 0;
}

char *tls_conn_take_out(tls_conn *c, size_t *len)
{
    size_t n = c->out.len - c->out.off;
    if (n == 0) return NULL;
    if (c->out.off) memmove(c->out.p, c->out.p + c->out.off, n);
    char *p = c->out.p; /* handed over whole: the next record gets a buffer of its size */
    c->out = (tls_buf){0};
    *len = n;
    return p;
}
