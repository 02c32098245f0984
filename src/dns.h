/* dns: name resolution for the HTTP client, one cache per loop thread. getaddrinfo gives no TTL,
 * so answers are kept for a set time; curl-style "HOST:PORT:ADDR" pins and IP literals skip the
 * lookup. Lookups run on libuv's thread pool (uv_getaddrinfo) and answer on the loop. */
#ifndef PARROT_DNS_H
#define PARROT_DNS_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define DNS_MAX_ADDRS 8

/* Addresses of one name, in the resolver's order, each with the asked port set. */
typedef struct dns_result {
    size_t n;
    struct sockaddr_storage addr[DNS_MAX_ADDRS];
} dns_result;

typedef struct dns_cache dns_cache;
typedef struct dns_query dns_query;

/* `status` is 0 or a negative libuv error (UV_EAI_NONAME, ...); `r` is valid during the call. */
typedef void (*dns_cb)(void *ud, int status, const dns_result *r);

/* `pins` are "HOST:PORT:ADDR" strings (ADDR may be an IPv6 literal, optionally in []);
 * NULL-terminated or NULL. Returns NULL with a reason in `err` when a pin is malformed. */
dns_cache *dns_cache_new(uv_loop_t *loop, uint64_t ttl_ns, const char *const *pins, char *err, size_t errlen);
/* Lookups still running are detached (their answers are dropped); callbacks never run after. */
void dns_cache_free(dns_cache *d);

/* Resolve host:port. When a pin, a literal or a fresh cache entry answers, fills `out` and returns
 * 0 without calling `cb`. Otherwise starts a lookup, sets `*q` and returns 1: `cb` runs later from
 * the loop, unless dns_cancel(*q) was called first. Returns a negative libuv error when the
 * lookup cannot start. */
int dns_resolve(dns_cache *d, const char *host, int port, dns_result *out, dns_query **q, dns_cb cb,
                void *ud);
void dns_cancel(dns_query *q);

/* Fill `out` with "ADDR:PORT" (IPv6 in []). */
void dns_addr_str(const struct sockaddr *sa, char *out, size_t outlen);

#endif
