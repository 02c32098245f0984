/* test_url: how URLs are split for the client and how relative references resolve (RFC 3986). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "url.h"

static void parse_examples(void)
{
    url u;
    int rc;
    char err[200];
    rc = url_parse("http://example.com", &u, err, sizeof err);
    CHECK(rc == 0, "a bare origin parses");
    CHECK(!u.tls && u.port == 80 && !u.port_explicit, "http defaults to port 80");
    CHECK(!strcmp(u.host, "example.com") && !strcmp(u.target, "/"), "empty path becomes /");
    url_free(&u);

    rc = url_parse("HTTPS://Example.COM/a/b?x=1&y=2#frag", &u, err, sizeof err);
    CHECK(rc == 0, "https parses");
    CHECK(u.tls && u.port == 443, "https defaults to port 443");
    CHECK(!strcmp(u.host, "example.com"), "host is lowercased");
    CHECK(!strcmp(u.target, "/a/b?x=1&y=2"), "target keeps the query and drops the fragment");
    url_free(&u);

    rc = url_parse("http://[::1]:8080/p", &u, err, sizeof err);
    CHECK(rc == 0, "IPv6 literal parses");
    CHECK(!strcmp(u.host, "::1") && u.port == 8080 && u.port_explicit, "brackets dropped, port kept");
    char hh[300];
    url_host_header(&u, hh, sizeof hh);
    CHECK(!strcmp(hh, "[::1]:8080"), "Host header of an IPv6 literal has brackets: %s", hh);
    url_free(&u);

    rc = url_parse("http://user:pw@host:81?q", &u, err, sizeof err);
    CHECK(rc == 0, "userinfo parses");
    CHECK(!strcmp(u.userinfo, "user:pw") && !strcmp(u.host, "host") && u.port == 81, "userinfo split off");
    CHECK(!strcmp(u.target, "/?q"), "query without a path gets /: %s", u.target);
    url_host_header(&u, hh, sizeof hh);
    CHECK(!strcmp(hh, "host:81"), "Host header names a non-default port");
    url_free(&u);

    rc = url_parse("https://h:443/", &u, err, sizeof err);
    CHECK(rc == 0, "explicit default port parses");
    url_host_header(&u, hh, sizeof hh);
    CHECK(!strcmp(hh, "h"), "Host header omits the default port");
    url_free(&u);

    rc = url_parse("ftp://x/", &u, err, sizeof err);
    CHECK(rc < 0 && strstr(err, "http"), "ftp is refused: %s", err);
    rc = url_parse("http:///x", &u, err, sizeof err);
    CHECK(rc < 0, "empty host is refused: %s", err);
    rc = url_parse("http://h:99999/", &u, err, sizeof err);
    CHECK(rc < 0, "port out of range is refused");
    rc = url_parse("http://h:8a/", &u, err, sizeof err);
    CHECK(rc < 0, "bad port is refused");
    rc = url_parse("http://[::1/", &u, err, sizeof err);
    CHECK(rc < 0, "unclosed bracket is refused");
    rc = url_parse("http://h/a b", &u, err, sizeof err);
    CHECK(rc < 0, "a space is refused");
    rc = url_parse("/relative", &u, err, sizeof err);
    CHECK(rc < 0, "a relative URL is refused");
}

/* RFC 3986 section 5.4 with base http://a/b/c/d;p?q */
static void resolve_examples(void)
{
    static const char *const cases[][2] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {";x", "http://a/b/c/;x"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},
        {"https://other.example:8443/x/../y", "https://other.example:8443/y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = url_resolve("http://a/b/c/d;p?q", cases[i][0]);
        CHECK(r && !strcmp(r, cases[i][1]), "resolve \"%s\" -> %s (got %s)", cases[i][0], cases[i][1],
              r ? r : "NULL");
        free(r);
    }
    char *r = url_resolve("http://h", "x");
    CHECK(r && !strcmp(r, "http://h/x"), "relative onto an empty base path gets a slash (%s)",
          r ? r : "NULL");
    free(r);
    r = url_resolve("/no/scheme", "x");
    CHECK(r == NULL, "a base without a scheme cannot resolve");
}

int main(void)
{
    parse_examples();
    resolve_examples();
    return check_done();
}
