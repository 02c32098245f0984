/* target_tls: HTTPS for `parrot target`: a fresh EC key and self-signed certificate per process,
 * each worker's mbedTLS server configuration, and the TLS transport (records in and out of the
 * connection's buffers) behind the same table as plain TCP. */
#include "target_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>

/* The PEM text made by target_tls_make_cert; read-only once the threads run. */
static char key_pem[1024], crt_pem[4096];

/* ---- the TLS transport ----------------------------------------------------------------------- */

/* Hands the TLS records produced so far to the socket. */
static void tls_flush(conn *c)
{
    if (!c->tout.len || c->dead) return;
    wreq *r = target_wreq_get(c->w);
    buf t = r->out;
    r->out = c->tout;
    c->tout = t;
    c->tout.len = 0;
    uv_buf_t b = uv_buf_init(r->out.p, r->out.len);
    target_sock_write_raw(c, r, &b, 1);
}

static int tls_bio_send(void *ctx, const unsigned char *p, size_t n)
{
    target_buf_add(&((conn *)ctx)->tout, p, n);
    return (int)n;
}

static int tls_bio_recv(void *ctx, unsigned char *p, size_t n)
{
    conn *c = ctx;
    size_t avail = c->cin.len - c->cin_pos;
    if (!avail) return MBEDTLS_ERR_SSL_WANT_READ;
    if (n > avail) n = avail;
    memcpy(p, c->cin.p + c->cin_pos, n);
    c->cin_pos += n;
    if (c->cin_pos == c->cin.len) c->cin_pos = c->cin.len = 0;
    return (int)n;
}

static void tls_alloc(conn *c, uv_buf_t *b)
{
    target_buf_reserve(&c->cin, 16 * 1024 + 64);
    *b = uv_buf_init(c->cin.p + c->cin.len, c->cin.cap - c->cin.len);
}

static void tls_read(conn *c, size_t n)
{
    c->cin.len += n;
    if (!c->hs_done) {
        int rc = mbedtls_ssl_handshake(c->ssl);
        tls_flush(c);
        if (rc == 0)
            c->hs_done = 1;
        else if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
            c->closing = 1; /* the alert, if any, is queued; close after it */
            target_conn_kick(c);
            return;
        } else
            return;
    }
    target_conn_kick(c);
}

static int tls_fill(conn *c)
{
    if (!c->hs_done) return 0;
    int rc = mbedtls_ssl_read(c->ssl, (unsigned char *)c->in, IN_CAP);
    tls_flush(c);
    if (rc > 0) {
        c->in_pos = 0;
        c->in_len = rc;
        return rc;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return 0;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0)
        c->eof = 1;
    else
        target_conn_close(c);
    return 0;
}

/* Encrypts the response into TLS records and writes those. */
static void tls_send(conn *c, wreq *r, uv_buf_t *b, unsigned n)
{
    for (unsigned i = 0; i < n && !c->dead; i++) {
        for (size_t off = 0; off < b[i].len;) {
            int rc = mbedtls_ssl_write(c->ssl, (const unsigned char *)b[i].base + off, b[i].len - off);
            if (rc < 0) {
                target_wreq_put(c->w, r);
                target_conn_close(c);
                return;
            }
            off += rc;
        }
    }
    if (r->close_after) mbedtls_ssl_close_notify(c->ssl);
    buf t = r->out;
    r->out = c->tout;
    c->tout = t;
    c->tout.len = 0;
    uv_buf_t one = uv_buf_init(r->out.p, r->out.len);
    target_sock_write_raw(c, r, &one, 1);
}

const sock_ops target_tls_ops = {tls_alloc, tls_read, tls_fill, tls_send};

/* The connection's own mbedTLS context on the worker's configuration, its I/O on the buffers. */
int target_tls_conn_init(conn *c)
{
    c->ssl = malloc(sizeof *c->ssl);
    if (c->ssl) mbedtls_ssl_init(c->ssl);
    if (!c->ssl || mbedtls_ssl_setup(c->ssl, &c->w->conf)) {
        free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    mbedtls_ssl_set_bio(c->ssl, c, tls_bio_send, tls_bio_recv, NULL);
    return 0;
}

/* ---- TLS setup: a fresh key and self-signed certificate per process -------------------------- */

/* subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1 (mbedTLS 2.28 has no helper for it). */
static int san_write(unsigned char *buf, size_t size, unsigned char **start)
{
    static const unsigned char ip4[4] = {127, 0, 0, 1}, ip6[16] = {[15] = 1};
    unsigned char *p = buf + size;
    int len = 0, r;
#define W(x)                                                                                                 \
    do {                                                                                                     \
        if ((r = (x)) < 0) return r;                                                                         \
        len += r;                                                                                            \
    } while (0)
    W(mbedtls_asn1_write_raw_buffer(&p, buf, ip6, 16));
    W(mbedtls_asn1_write_len(&p, buf, 16));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
    W(mbedtls_asn1_write_raw_buffer(&p, buf, ip4, 4));
    W(mbedtls_asn1_write_len(&p, buf, 4));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
    W(mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)"localhost", 9));
    W(mbedtls_asn1_write_len(&p, buf, 9));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
    W(mbedtls_asn1_write_len(&p, buf, len));
    W(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
#undef W
    *start = p;
    return len;
}

/* Makes an EC P-256 key and a self-signed certificate for localhost into key_pem/crt_pem. */
int target_tls_make_cert(void)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    unsigned char san[128], *san_p;
    char nb[16], na[16];
    time_t now = time(NULL), before = now - 86400, after = now + 10 * 365 * 86400L;
    struct tm tm;
    strftime(nb, sizeof nb, "%Y%m%d%H%M%S", gmtime_r(&before, &tm));
    strftime(na, sizeof na, "%Y%m%d%H%M%S", gmtime_r(&after, &tm));
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    int san_len,
        rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, (const unsigned char *)"parrot", 6);
    if (!rc) rc = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (!rc)
        rc =
            mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random, &drbg);
    if (!rc) rc = mbedtls_mpi_fill_random(&serial, 8, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, &key);
    mbedtls_x509write_crt_set_issuer_key(&crt, &key);
    if (!rc) rc = mbedtls_x509write_crt_set_subject_name(&crt, "CN=localhost");
    if (!rc) rc = mbedtls_x509write_crt_set_issuer_name(&crt, "CN=localhost");
    if (!rc) rc = mbedtls_x509write_crt_set_serial(&crt, &serial);
    if (!rc) rc = mbedtls_x509write_crt_set_validity(&crt, nb, na);
    if (!rc) rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0);
    if (!rc)
        rc = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                                           MBEDTLS_X509_KU_KEY_CERT_SIGN);
    if (!rc) rc = mbedtls_x509write_crt_set_subject_key_identifier(&crt);
    if (!rc) rc = (san_len = san_write(san, sizeof san, &san_p)) < 0 ? san_len : 0;
    if (!rc)
        rc = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san_p,
                                                 san_len);
    if (!rc)
        rc = mbedtls_x509write_crt_pem(&crt, (unsigned char *)crt_pem, sizeof crt_pem,
                                       mbedtls_ctr_drbg_random, &drbg);
    if (!rc) rc = mbedtls_pk_write_key_pem(&key, (unsigned char *)key_pem, sizeof key_pem);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    return rc;
}

/* Each thread parses its own key and certificate: mbedTLS caches per-key state lazily. */
int target_tls_worker_init(worker *w)
{
    mbedtls_entropy_init(&w->entropy);
    mbedtls_ctr_drbg_init(&w->drbg);
    mbedtls_ssl_config_init(&w->conf);
    mbedtls_x509_crt_init(&w->crt);
    mbedtls_pk_init(&w->key);
    mbedtls_ssl_cache_init(&w->cache);
    w->tls_ready = 1;
    int rc = mbedtls_ctr_drbg_seed(&w->drbg, mbedtls_entropy_func, &w->entropy,
                                   (const unsigned char *)"parrot", 6);
    if (!rc) rc = mbedtls_x509_crt_parse(&w->crt, (const unsigned char *)crt_pem, strlen(crt_pem) + 1);
    if (!rc) rc = mbedtls_pk_parse_key(&w->key, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0);
    if (!rc)
        rc = mbedtls_ssl_config_defaults(&w->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc) return rc;
    mbedtls_ssl_conf_rng(&w->conf, mbedtls_ctr_drbg_random, &w->drbg);
    mbedtls_ssl_conf_session_cache(&w->conf, &w->cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
    return mbedtls_ssl_conf_own_cert(&w->conf, &w->crt, &w->key);
}

void target_tls_worker_free(worker *w)
{
    if (!w->tls_ready) return;
    mbedtls_ssl_cache_free(&w->cache);
    mbedtls_pk_free(&w->key);
    mbedtls_x509_crt_free(&w->crt);
    mbedtls_ssl_config_free(&w->conf);
    mbedtls_ctr_drbg_free(&w->drbg);
    mbedtls_entropy_free(&w->entropy);
}

int target_tls_cert_write(const char *path)
{
    FILE *f = fopen(path, "w");
    int bad = !f || fputs(crt_pem, f) < 0;
    if (f && fclose(f)) bad = 1;
    if (bad) fprintf(stderr, "parrot target: cannot write certificate to %s: %s\n", path, strerror(errno));
    return bad ? -1 : 0;
}
