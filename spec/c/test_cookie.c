/* test_cookie: the cookie jar behaves like a browser's — which cookies are stored, which are
 * sent where, in what order, and when they expire. Every case passes an explicit `now`. */
#include "cookie.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

#define NOW ((int64_t)1700000000) /* 2023-11-14T22:13:20Z */

static char hdr[8192];

/* Store one Set-Cookie from http(s)://host/path. */
static void set(cookie_jar *j, const char *host, const char *path, int secure, const char *sc, int64_t now)
{
    cookie_jar_set(j, host, path, secure, sc, strlen(sc), now);
}

/* The Cookie header for a request, as a string ("" when none, "<too small>" on overflow). */
static const char *header(cookie_jar *j, const char *host, const char *path, int secure, int64_t now)
{
    if (cookie_jar_header(j, host, path, secure, now, hdr, sizeof hdr) < 0) return "<too small>";
    return hdr;
}

static void test_basic(void)
{
    cookie_jar *j = cookie_jar_new();
    set(j, "example.com", "/", 0, "sid=abc123", NOW);
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "sid=abc123") == 0, "a plain cookie is sent back");
    CHECK(strcmp(header(j, "EXAMPLE.com", "/x", 0, NOW), "sid=abc123") == 0,
          "hosts compare case-insensitively");
    CHECK(strcmp(header(j, "example.com:8080", "/", 0, NOW), "sid=abc123") == 0, "the port does not matter");
    CHECK(strcmp(cookie_jar_get(j, "example.com", "/", "sid", NOW), "abc123") == 0, "get returns the value");
    CHECK(cookie_jar_get(j, "example.com", "/", "nope", NOW) == NULL, "get of an unknown name is NULL");
    set(j, "example.com", "/", 0, "  sp  =  a b  ; Path=/", NOW);
    CHECK(strcmp(cookie_jar_get(j, "example.com", "/", "sp", NOW), "a b") == 0, "name and value are trimmed");
    set(j, "example.com", "/", 0, "q=\"quoted\"", NOW);
    CHECK(strcmp(cookie_jar_get(j, "example.com", "/", "q", NOW), "\"quoted\"") == 0,
          "quotes stay in the value");
    set(j, "example.com", "/", 0, "e=", NOW);
    CHECK(strcmp(cookie_jar_get(j, "example.com", "/", "e", NOW), "") == 0, "an empty value is a cookie");
    set(j, "example.com", "/", 0, "novalue", NOW);
    set(j, "example.com", "/", 0, "=nameless", NOW);
    set(j, "example.com", "/", 0, "ctl=a\001b", NOW);
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "sid=abc123; sp=a b; q=\"quoted\"; e=") == 0,
          "no '=', an empty name or a control character is ignored (got %s)", hdr);
    char small[8];
    CHECK(cookie_jar_header(j, "example.com", "/", 0, NOW, small, sizeof small) == -1,
          "-1 when out is too small");
    CHECK(cookie_jar_header(j, "other.com", "/", 0, NOW, small, sizeof small) == 0 && small[0] == 0,
          "0 and an empty string when nothing matches");
    cookie_jar_clear(j);
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "") == 0, "clear empties the jar");
    cookie_jar_free(j);
    cookie_jar_free(NULL);
}

static void test_domain(void)
{
    cookie_jar *j = cookie_jar_new();
    set(j, "www.example.com", "/", 0, "host=1", NOW);
    CHECK(strcmp(header(j, "www.example.com", "/", 0, NOW), "host=1") == 0,
          "host-only: the setting host gets it");
    CHECK(strcmp(header(j, "a.www.example.com", "/", 0, NOW), "") == 0, "host-only: not a subdomain");
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "") == 0, "host-only: not the parent");
    cookie_jar_clear(j);

    set(j, "www.example.com", "/", 0, "d=1; Domain=.Example.COM", NOW);
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "d=1") == 0, "Domain=.example.com: the domain");
    CHECK(strcmp(header(j, "deep.sub.example.com", "/", 0, NOW), "d=1") == 0, "Domain: any subdomain");
    CHECK(strcmp(header(j, "badexample.com", "/", 0, NOW), "") == 0, "Domain: not a suffix without a dot");
    CHECK(strcmp(header(j, "example.org", "/", 0, NOW), "") == 0, "Domain: not another domain");
    cookie_jar_clear(j);

    set(j, "example.com", "/", 0, "d=2; domain=example.com", NOW);
    CHECK(strcmp(header(j, "www.example.com", "/", 0, NOW), "d=2") == 0,
          "Domain without a dot matches subdomains too");
    set(j, "www.example.com", "/", 0, "x=1; Domain=other.com", NOW);
    set(j, "www.example.com", "/", 0, "y=1; Domain=sub.www.example.com", NOW);
    set(j, "www.example.com", "/", 0, "z=1; Domain=com", NOW);
    CHECK(strcmp(header(j, "other.com", "/", 0, NOW), "") == 0, "a Domain the host is not in is rejected");
    CHECK(strcmp(header(j, "sub.www.example.com", "/", 0, NOW), "d=2") == 0,
          "a Domain below the setting host is rejected");
    CHECK(strcmp(header(j, "x.com", "/", 0, NOW), "") == 0, "a top-level Domain is rejected");
    set(j, "www.example.com", "/", 0, "e=1; Domain=", NOW);
    CHECK(strcmp(header(j, "a.www.example.com", "/", 0, NOW), "d=2") == 0 &&
              strcmp(header(j, "www.example.com", "/", 0, NOW), "d=2; e=1") == 0,
          "an empty Domain is ignored: host-only");
    cookie_jar_clear(j);

    set(j, "192.168.0.10", "/", 0, "ip=1", NOW);
    set(j, "192.168.0.10", "/", 0, "bad=1; Domain=168.0.10", NOW);
    set(j, "192.168.0.10", "/", 0, "self=1; Domain=192.168.0.10", NOW);
    CHECK(strcmp(header(j, "192.168.0.10", "/", 0, NOW), "ip=1; self=1") == 0,
          "an IP host can only name itself as Domain (got %s)", hdr);
    CHECK(strcmp(header(j, "x.192.168.0.10", "/", 0, NOW), "") == 0, "an IP cookie is host-only");
    set(j, "::1", "/", 0, "v6=1", NOW);
    CHECK(strcmp(header(j, "[::1]:8080", "/", 0, NOW), "v6=1") == 0, "IPv6 literals with brackets and port");
    set(j, "localhost", "/", 0, "lh=1; Domain=localhost", NOW);
    CHECK(strcmp(header(j, "localhost", "/", 0, NOW), "lh=1") == 0,
          "Domain=localhost from localhost is host-only");
    cookie_jar_free(j);
}

static void test_path(void)
{
    cookie_jar *j = cookie_jar_new();
    set(j, "h.com", "/docs/guide/page.html?x=/a/b", 0, "dp=1", NOW);
    CHECK(strcmp(header(j, "h.com", "/docs/guide", 0, NOW), "dp=1") == 0,
          "default path is the request's directory");
    CHECK(strcmp(header(j, "h.com", "/docs/guide/other", 0, NOW), "dp=1") == 0, "default path: below it");
    CHECK(strcmp(header(j, "h.com", "/docs", 0, NOW), "") == 0, "default path: not above it");
    CHECK(strcmp(header(j, "h.com", "/docs/guidebook", 0, NOW), "") == 0, "path-match needs a '/' boundary");
    cookie_jar_clear(j);

    set(j, "h.com", "/onelevel", 0, "root=1", NOW);
    set(j, "h.com", "", 0, "empty=1", NOW);
    set(j, "h.com", "/a/b", 0, "rel=1; Path=relative", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW), "root=1; empty=1") == 0,
          "one-segment and empty request paths default to / (got %s)", hdr);
    CHECK(strcmp(header(j, "h.com", "/a/x", 0, NOW), "rel=1; root=1; empty=1") == 0,
          "a Path not starting with / falls back to the default path (got %s)", hdr);
    cookie_jar_clear(j);

    set(j, "h.com", "/", 0, "p=1; Path=/api/", NOW);
    set(j, "h.com", "/", 0, "q=1; Path=/api", NOW);
    CHECK(strcmp(header(j, "h.com", "/api/v1?x", 0, NOW), "p=1; q=1") == 0,
          "Path=/api/ and /api match /api/v1");
    CHECK(strcmp(header(j, "h.com", "/api", 0, NOW), "q=1") == 0, "Path=/api/ does not match /api");
    CHECK(strcmp(header(j, "h.com", "/apiary", 0, NOW), "") == 0, "Path=/api does not match /apiary");
    cookie_jar_free(j);
}

static void test_expiry(void)
{
    cookie_jar *j = cookie_jar_new();
    /* 1994-11-06 08:49:37 UTC = 784111777 */
    set(j, "h.com", "/", 0, "a=1; Expires=Sun, 06 Nov 1994 08:49:37 GMT", 784111000);
    set(j, "h.com", "/", 0, "b=1; expires=Sunday, 06-Nov-94 08:49:37 GMT", 784111000);
    set(j, "h.com", "/", 0, "c=1; EXPIRES=Sun Nov  6 08:49:37 1994", 784111000);
    set(j, "h.com", "/", 0, "d=1; Expires=not a date", 784111000);
    CHECK(strcmp(header(j, "h.com", "/", 0, 784111776), "a=1; b=1; c=1; d=1") == 0,
          "RFC 1123, RFC 850 and asctime dates are read; a bad date means a session cookie (got %s)", hdr);
    CHECK(strcmp(header(j, "h.com", "/", 0, 784111777), "d=1") == 0, "expired at the Expires second");
    cookie_jar_clear(j);

    set(j, "h.com", "/", 0, "m=1; Max-Age=60; Expires=Sun, 06 Nov 1994 08:49:37 GMT", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW + 59), "m=1") == 0, "Max-Age wins over a past Expires");
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW + 60), "") == 0, "Max-Age=60 is gone after 60 s");
    set(j, "h.com", "/", 0, "n=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Max-Age=10", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW + 11), "") == 0, "Max-Age wins over a later Expires");
    set(j, "h.com", "/", 0, "o=1; Max-Age=abc", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW + 1000000), "o=1") == 0, "a malformed Max-Age is ignored");
    set(j, "h.com", "/", 0, "big=1; Max-Age=99999999999999999999999", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW + 1000000000), "o=1; big=1") == 0,
          "a huge Max-Age saturates");

    set(j, "h.com", "/", 0, "o=1; Max-Age=0", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "o", NOW) == NULL, "Max-Age=0 deletes");
    set(j, "h.com", "/", 0, "big=1; Max-Age=-5", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "big", NOW) == NULL, "a negative Max-Age deletes");
    set(j, "h.com", "/", 0, "s=1", NOW);
    set(j, "h.com", "/", 0, "s=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "s", NOW) == NULL, "an Expires in the past deletes");
    set(j, "h.com", "/", 0, "y=1; Expires=Fri, 01-Jan-38 00:00:00 GMT", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "y", NOW) != NULL, "two-digit years below 70 are 20xx");
    set(j, "h.com", "/", 0, "f=1; Expires=Sat, 31 Feb 2099 00:00:00 GMT", NOW);
    set(j, "h.com", "/", 0, "g=1; Expires=Sat, 01 Jan 2099 25:00:00 GMT", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "f", (int64_t)5000000000) != NULL &&
              cookie_jar_get(j, "h.com", "/", "g", (int64_t)5000000000) != NULL,
          "impossible dates are ignored (session cookies)");
    cookie_jar_free(j);
}

static void test_secure_and_flags(void)
{
    cookie_jar *j = cookie_jar_new();
    set(j, "shop.com", "/", 1, "sec=1; Secure; HttpOnly", NOW);
    set(j, "shop.com", "/", 1, "ho=1; httponly", NOW);
    CHECK(strcmp(header(j, "shop.com", "/", 1, NOW), "sec=1; ho=1") == 0,
          "Secure and HttpOnly cookies go over https");
    CHECK(strcmp(header(j, "shop.com", "/", 0, NOW), "ho=1") == 0, "Secure cookies never go over http");
    set(j, "shop.com", "/", 0, "plain=1; Secure", NOW);
    CHECK(cookie_jar_get(j, "shop.com", "/", "plain", NOW) == NULL, "a Secure cookie from http is refused");
    set(j, "localhost", "/", 0, "lh=1; Secure", NOW);
    CHECK(cookie_jar_get(j, "localhost", "/", "lh", NOW) != NULL, "localhost counts as a secure origin");
    set(j, "shop.com", "/", 1, "__Secure-a=1", NOW);
    set(j, "shop.com", "/", 1, "__Secure-b=1; Secure", NOW);
    set(j, "shop.com", "/x", 1, "__Host-c=1; Secure", NOW);
    set(j, "shop.com", "/", 1, "__Host-d=1; Secure; Path=/; Domain=shop.com", NOW);
    set(j, "shop.com", "/", 1, "__Host-e=1; Secure; Path=/", NOW);
    CHECK(strcmp(header(j, "shop.com", "/", 1, NOW), "sec=1; ho=1; __Secure-b=1; __Host-e=1") == 0,
          "__Secure- needs Secure; __Host- needs Secure, Path=/ and no Domain (got %s)", hdr);
    cookie_jar_free(j);
}

static void test_replace_and_order(void)
{
    cookie_jar *j = cookie_jar_new();
    set(j, "h.com", "/", 0, "a=1", NOW);
    set(j, "h.com", "/", 0, "b=1; Path=/x/y", NOW);
    set(j, "h.com", "/", 0, "c=1; Path=/x", NOW);
    set(j, "h.com", "/", 0, "d=1", NOW);
    CHECK(strcmp(header(j, "h.com", "/x/y/z", 0, NOW), "b=1; c=1; a=1; d=1") == 0,
          "longer paths first, then creation order (got %s)", hdr);
    set(j, "h.com", "/", 0, "a=2", NOW + 1);
    CHECK(strcmp(header(j, "h.com", "/x/y/z", 0, NOW), "b=1; c=1; a=2; d=1") == 0,
          "same name, domain and path replaces, keeping the creation order (got %s)", hdr);
    set(j, "h.com", "/", 0, "a=3; Path=/x", NOW);
    CHECK(strcmp(header(j, "h.com", "/x/y/z", 0, NOW), "b=1; c=1; a=3; a=2; d=1") == 0,
          "same name on another path is another cookie (got %s)", hdr);
    CHECK(strcmp(cookie_jar_get(j, "h.com", "/x", "a", NOW), "3") == 0, "get picks the most specific path");
    set(j, "h.com", "/", 0, "d=9; Domain=h.com", NOW);
    CHECK(strcmp(header(j, "h.com", "/", 0, NOW), "a=2; d=1; d=9") == 0,
          "as in browsers, a Domain cookie does not replace a host-only one (got %s)", hdr);
    set(j, "h.com", "/", 0, "A=1", NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "A", NOW) != NULL &&
              strcmp(cookie_jar_get(j, "h.com", "/", "a", NOW), "2") == 0,
          "cookie names are case-sensitive");
    cookie_jar_free(j);
}

static void test_add(void)
{
    cookie_jar *j = cookie_jar_new();
    cookie_jar_add(j, "api.com", "/v1", "tok", "xyz");
    cookie_jar_add(j, ".shared.com", NULL, "all", "1");
    CHECK(strcmp(header(j, "api.com", "/v1/users", 0, NOW), "tok=xyz") == 0,
          "add: a host-only cookie on a path");
    CHECK(strcmp(header(j, "www.api.com", "/v1", 0, NOW), "") == 0, "add: a plain domain is host-only");
    CHECK(strcmp(header(j, "a.shared.com", "/", 0, NOW), "all=1") == 0,
          "add: a leading dot covers subdomains");
    cookie_jar_add(j, "api.com", "/v1", "tok", "new");
    CHECK(strcmp(header(j, "api.com", "/v1", 0, NOW), "tok=new") == 0, "add replaces like Set-Cookie");
    set(j, "api.com", "/", 0, "tok=srv; Path=/v1", NOW);
    CHECK(strcmp(header(j, "api.com", "/v1", 0, NOW), "tok=srv") == 0, "Set-Cookie replaces an added cookie");
    cookie_jar_free(j);
}

/* A jar saved and put back later: what it held then, in the same order, nothing added since. */
static void test_copy(void)
{
    cookie_jar *j = cookie_jar_new(), *saved = cookie_jar_new();
    set(j, "example.com", "/", 0, "a=1", NOW);
    set(j, "example.com", "/", 1, "s=2; Secure; Max-Age=60", NOW);
    set(j, "example.com", "/", 0, "b=3", NOW);
    CHECK(cookie_jar_copy(saved, j) == 0 && cookie_jar_size(saved) == 3, "a copy holds every cookie");
    cookie_jar_clear(j);
    set(j, "example.com", "/", 0, "c=4", NOW);
    CHECK(strcmp(header(saved, "example.com", "/", 1, NOW), "a=1; s=2; b=3") == 0,
          "the copy keeps values, flags and the order they were set in");
    CHECK(strcmp(header(saved, "example.com", "/", 1, NOW + 61), "a=1; b=3") == 0,
          "the copy keeps expiry times");
    CHECK(cookie_jar_copy(j, saved) == 0 && strcmp(header(j, "example.com", "/", 0, NOW), "a=1; b=3") == 0,
          "copying back replaces what the jar held since (c=4 is gone)");
    set(j, "example.com", "/", 0, "d=5", NOW);
    CHECK(strcmp(header(j, "example.com", "/", 0, NOW), "a=1; b=3; d=5") == 0,
          "a cookie set after the copy comes after the copied ones");
    CHECK(strcmp(header(saved, "example.com", "/", 0, NOW), "a=1; b=3") == 0,
          "the saved jar does not change with the jar it was copied into");
    cookie_jar *empty = cookie_jar_new();
    CHECK(cookie_jar_copy(j, empty) == 0 && cookie_jar_size(j) == 0, "copying an empty jar empties");
    cookie_jar_free(empty);
    cookie_jar_free(saved);
    cookie_jar_free(j);
}

static void test_bounds(void)
{
    cookie_jar *j = cookie_jar_new();
    char big[5000];
    memset(big, 'v', sizeof big);
    memcpy(big, "big=", 4);
    cookie_jar_set(j, "h.com", "/", 0, big, 4096, NOW);
    CHECK(cookie_jar_get(j, "h.com", "/", "big", NOW) != NULL, "a 4096-byte cookie is stored");
    cookie_jar_set(j, "h.com", "/", 0, big, 4097, NOW);
    CHECK(strlen(cookie_jar_get(j, "h.com", "/", "big", NOW)) == 4092, "a 4097-byte cookie is ignored");
    cookie_jar_clear(j);

    char sc[64];
    for (int i = 0; i < 310; i++) {
        snprintf(sc, sizeof sc, "c%d=%d", i, i);
        set(j, "h.com", "/", 0, sc, NOW);
    }
    int n = 0;
    for (int i = 0; i < 310; i++) {
        snprintf(sc, sizeof sc, "c%d", i);
        n += cookie_jar_get(j, "h.com", "/", sc, NOW) != NULL;
    }
    CHECK(n == 300, "at most 300 cookies per jar (have %d)", n);
    CHECK(cookie_jar_get(j, "h.com", "/", "c309", NOW) != NULL, "the newest cookie is kept");
    cookie_jar_clear(j);

    for (int i = 0; i < 300; i++) {
        snprintf(sc, sizeof sc, "e%d=1; Max-Age=%d", i, i < 10 ? 5 : 1000);
        set(j, "h.com", "/", 0, sc, NOW);
    }
    set(j, "h.com", "/", 0, "late=1", NOW + 10);
    CHECK(cookie_jar_get(j, "h.com", "/", "e10", NOW + 10) != NULL &&
              cookie_jar_get(j, "h.com", "/", "late", NOW + 10) != NULL,
          "a full jar drops expired cookies before live ones");
    cookie_jar_free(j);
}

int main(void)
{
    test_basic();
    test_domain();
    test_path();
    test_expiry();
    test_secure_and_flags();
    test_replace_and_order();
    test_add();
    test_copy();
    test_bounds();
    return check_done();
}
