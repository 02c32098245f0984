/* test_wire_corpus: replays the fuzzer's seed corpus (spec/fuzz/corpus/wire/, run from the repo
 * root) through wire_decode: "valid-*" seeds decode (a valid STATS also as a snapshot, each format
 * version the queen takes), every other seed is refused with a reason, and nothing crashes.
 * Inputs the fuzzer found worth keeping can be dropped into that directory. */
#include "check.h"
#include "corpus.h"
#include "stats.h"
#include "wire.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "spec/fuzz/corpus/wire"

static void seed(const char *name, const char *path, const char *buf, size_t len, void *ud)
{
    (void)path;
    char err[160] = "";
    wire_msg m;
    int r = wire_decode(buf, len, &m, err, sizeof err);
    if (!strncmp(name, "valid-", 6)) {
        ++*(int *)ud;
        CHECK(r == 0, "%s decodes as %s (%s)", name, wire_type_name(m.type), r ? err : "ok");
        if (r == 0 && m.type == WIRE_STATS) {
            stats *st = stats_new();
            int sr = stats_decode_merge(st, m.data, m.data_len);
            CHECK(sr == 0 && st->requests > 0, "%s holds a snapshot that decodes (%llu requests)", name,
                  (unsigned long long)st->requests);
            stats_free(st);
        }
    } else {
        CHECK(r == 0 || *err, "%s returns (%s)", name, r ? err : "decoded");
    }
    wire_msg_free(&m);
}

int main(void)
{
    int valid = 0;
    corpus_each(CORPUS, seed, &valid);
    CHECK(valid >= 10, "at least 10 valid seeds (%d)", valid);
    return check_done();
}
