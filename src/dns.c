/* dns: a per-thread cache of getaddrinfo answers, pins and literals. Lookups for the same name
 * that overlap share one getaddrinfo call. */
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A cached (or pinned) answer for one host; the port is applied per query. Owned by the cache. */
typedef struct dns_entry {
    struct dns_entry *next;
    char *host;   /* owned */
    int pin_port; /* pins only: the port the pin applies to */
    int pinned;   /* never expires */
    uint64_t expires_ns;
    dns_result r;
} dns_entry;

/* One waiter of a running lookup. Owned by its lookup; `cb` NULL once cancelled. */
struct dns_query {
    struct dns_query *next;
    struct dns_lookup *lk;
    int port;
    dns_cb cb;
    void *ud;
};

/* One running uv_getaddrinfo. Owns itself (freed in its callback); `d` NULL once the cache is gone. */
typedef struct dns_lookup {
    uv_getaddrinfo_t req;
    struct dns_lookup *next, *prev;
    dns_cache *d;
    char *host; /* owned */
    dns_query *waiters;
} dns_lookup;

struct dns_cache {
    uv_loop_t *loop;
    uint64_t ttl_ns;
    dns_entry *entries;  /* owned list */
    dns_lookup *running; /* not owned: each lookup frees itself */
};

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* An IP literal (IPv6 optionally in brackets) into `ss`; returns 0 or -1. */
static int parse_literal(const char *s, size_t n, struct sockaddr_storage *ss)
{
    char buf[64];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') s++, n -= 2;
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(buf, 0, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(buf, 0, (struct sockaddr_in6 *)ss) == 0) return 0;
    return -1;
}

static dns_entry *entry_add(dns_cache *d, const char *host)
{
    dns_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->host = strdup(host))) {
        free(e);
        return NULL;
    }
    e->next = d->entries;
    d->entries = e;
    return e;
}

/* "HOST:PORT:ADDR" */
static int add_pin(dns_cache *d, const char *pin)
{
    const char *c1 = strchr(pin, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == pin) return -1;
    int port = atoi(c1 + 1);
    if (port <= 0 || port > 65535) return -1;
    char host[256];
    size_t hl = (size_t)(c1 - pin);
    if (hl >= sizeof host) return -1;
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)tolower((unsigned char)pin[i]);
    host[hl] = '\0';
    struct sockaddr_storage ss;
    if (parse_literal(c2 + 1, strlen(c2 + 1), &ss) < 0) return -1;
    dns_entry *e = NULL;
    for (dns_entry *x = d->entries; x; x = x->next)
        if (x->pinned && x->pin_port == port && !strcmp(x->host, host)) e = x;
    if (!e && !(e = entry_add(d, host))) return -1;
    e->pinned = 1;
    e->pin_port = port;
    if (e->r.n < DNS_MAX_ADDRS) e->r.addr[e->r.n++] = ss;
    return 0;
}

dns_cache *dns_cache_new(uv_loop_t *loop, uint64_t ttl_ns, const char *const *pins, char *err, size_t errlen)
{
    dns_cache *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->loop = loop;
    d->ttl_ns = ttl_ns;
    for (size_t i = 0; pins && pins[i]; i++) {
        if (add_pin(d, pins[i]) < 0) {
            snprintf(err, errlen, "bad --resolve \"%.100s\": want HOST:PORT:ADDR", pins[i]);
            dns_cache_free(d);
            return NULL;
        }
    }
    return d;
}

void dns_cache_free(dns_cache *d)
{
    if (!d) return;
    for (dns_lookup *lk = d->running; lk; lk = lk->next) {
        lk->d = NULL;
        uv_cancel((uv_req_t *)&lk->req);
        for (dns_query *q = lk->waiters; q; q = q->next)
            q->cb = NULL;
    }
    while (d->entries) {
        dns_entry *e = d->entries;
        d->entries = e->next;
        free(e->host);
        free(e);
    }
    free(d);
}

static void copy_result(dns_result *out, const dns_result *in, int port)
{
    *out = *in;
    for (size_t i = 0; i < out->n; i++)
        set_port(&out->addr[i], port);
}

/* The cached entry for host (a pin for host:port first), dropping expired ones on the way. */
static const dns_entry *cache_find(dns_cache *d, const char *host, int port)
{
    uint64_t now = uv_hrtime();
    const dns_entry *found = NULL;
    for (dns_entry **pp = &d->entries; *pp;) {
        dns_entry *e = *pp;
        if (!e->pinned && e->expires_ns <= now) {
            *pp = e->next;
            free(e->host);
            free(e);
            continue;
        }
        if (!strcmp(e->host, host)) {
            if (e->pinned && e->pin_port == port) return e;
            if (!e->pinned) found = e;
        }
        pp = &e->next;
    }
    return found;
}

static void on_getaddrinfo(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    dns_lookup *lk = req->data;
    dns_result r = {0};
    for (struct addrinfo *ai = res; ai && r.n < DNS_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        int dup = 0;
        for (size_t i = 0; i < r.n; i++)
            if (!memcmp(&r.addr[i], ai->ai_addr, ai->ai_addrlen)) dup = 1;
        if (dup) continue;
        memset(&r.addr[r.n], 0, sizeof r.addr[0]);
        memcpy(&r.addr[r.n++], ai->ai_addr, ai->ai_addrlen);
    }
    if (res) uv_freeaddrinfo(res);
    if (status == 0 && r.n == 0) status = UV_EAI_NODATA;
    dns_cache *d = lk->d;
    if (d) {
        if (lk->prev)
            lk->prev->next = lk->next;
        else
            d->running = lk->next;
        if (lk->next) lk->next->prev = lk->prev;
        if (status == 0 && d->ttl_ns) {
            dns_entry *e = entry_add(d, lk->host);
            if (e) {
                e->r = r;
                e->expires_ns = uv_hrtime() + d->ttl_ns;
            }
        }
    }
    while (lk->waiters) {
        dns_query *q = lk->waiters;
        lk->waiters = q->next;
        if (q->cb) {
            dns_result mine;
            copy_result(&mine, &r, q->port);
            q->cb(q->ud, status, &mine);
        }
        free(q);
    }
    free(lk->host);
    free(lk);
}

int dns_resolve(dns_cache *d, const char *host, int port, dns_result *out, dns_query **qp, dns_cb cb,
                void *ud)
{
    struct sockaddr_storage ss;
    if (parse_literal(host, strlen(host), &ss) == 0) {
        out->n = 1;
        out->addr[0] = ss;
        set_port(&out->addr[0], port);
        return 0;
    }
    const dns_entry *e = cache_find(d, host, port);
    if (e) {
        copy_result(out, &e->r, port);
        return 0;
    }
    dns_query *q = calloc(1, sizeof *q);
    if (!q) return UV_ENOMEM;
    q->port = port, q->cb = cb, q->ud = ud;
    dns_lookup *lk;
    for (lk = d->running; lk; lk = lk->next)
        if (!strcmp(lk->host, host)) break;
    if (!lk) {
        lk = calloc(1, sizeof *lk);
        if (!lk || !(lk->host = strdup(host))) {
            free(lk);
            free(q);
            return UV_ENOMEM;
        }
        lk->d = d;
        lk->req.data = lk;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        int rc = uv_getaddrinfo(d->loop, &lk->req, on_getaddrinfo, host, NULL, &hints);
        if (rc < 0) {
            free(lk->host);
            free(lk);
            free(q);
            return rc;
        }
        lk->next = d->running;
        if (lk->next) lk->next->prev = lk;
        d->running = lk;
    }
    q->lk = lk;
    q->next = lk->waiters;
    lk->waiters = q;
    *qp = q;
    return 1;
}

void dns_cancel(dns_query *q)
{
    if (q) q->cb = NULL;
}

void dns_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", ip, port);
    } else {
        snprintf(out, outlen, "?");
    }
}
