/* test_http_corpus: replays the response fuzzer's seed corpus (spec/fuzz/corpus/http/, run from the
 * repo root) through the same reader as the fuzzer: every seed keeps its invariants (a head taken
 * as received, every header inside it); "valid-*" seeds are read whole, "bad-*" ones end with an
 * error kind, and a few say what they must give. */
#include "check.h"
#include "corpus.h"
#include "stats.h"

#include "../fuzz/fuzz_http.h"

#define CORPUS "spec/fuzz/corpus/http"

/* What some seeds must give, beyond being read whole. */
static void expect(const char *name, const fuzz_http_result *r)
{
    if (!strcmp(name, "valid-nginx"))
        CHECK(r->status == 200 && r->nheaders == 5 && !strcmp(r->reason, "OK"), "%s: 200 OK, 5 headers",
              name);
    else if (!strcmp(name, "valid-1xx"))
        CHECK(r->status == 201 && r->nheaders == 1 && !strcmp(r->reason, "Created") && r->body_len == 2,
              "%s: the 1xx heads are left out, the 201's is kept", name);
    else if (!strcmp(name, "valid-gzip"))
        CHECK(r->body_len == 320, "%s: the body is decoded (%zu bytes)", name, r->body_len);
    else if (!strcmp(name, "valid-cookies"))
        CHECK(r->status == 302 && r->cookies == 2 && r->nheaders == 6,
              "%s: 2 cookies stored, 6 headers (%zu, %zu)", name, r->cookies, r->nheaders);
    else if (!strcmp(name, "valid-chunked"))
        CHECK(r->body_len == 11 && r->nheaders == 1, "%s: the body, and the head without the trailer", name);
    else if (!strcmp(name, "valid-close-delimited-empty"))
        CHECK(r->nheaders == 1 && r->body_len == 0, "%s: the head taken when the connection ends", name);
    else if (!strcmp(name, "valid-big-head"))
        CHECK(r->head_len > HTTP_HEAD_ROOM && r->nheaders == 2, "%s: a head past the room in the response",
              name);
    else if (!strcmp(name, "valid-no-reason"))
        CHECK(r->status == 200 && r->reason[0] == '\0', "%s: an empty reason phrase", name);
    else if (!strcmp(name, "bad-101"))
        CHECK(r->err_kind == ERR_PROTOCOL, "%s: 101 is refused as a protocol error", name);
}

static void seed(const char *name, const char *path, const char *buf, size_t len, void *ud)
{
    (void)path;
    fuzz_http_result r;
    int rc = fuzz_http_read((const uint8_t *)buf, len, &r);
    CHECK(rc == 0, "%s: the reader keeps its invariants", name);
    if (!strncmp(name, "valid-", 6)) {
        ++*(int *)ud;
        CHECK(r.complete && r.status >= 200 && r.head_len > 0, "%s: read whole (status %d, error kind %d)",
              name, r.status, r.err_kind);
    } else if (!strncmp(name, "bad-", 4)) {
        CHECK(!r.complete && r.err_kind != 0, "%s: refused with an error kind (%d)", name, r.err_kind);
    }
    expect(name, &r);
}

int main(void)
{
    int valid = 0;
    corpus_each(CORPUS, seed, &valid);
    CHECK(valid >= 10, "at least 10 valid seeds (%d)", valid);
    return check_done();
}
