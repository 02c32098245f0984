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

int main(void)
{
    struct dirent **names;
    int n = corpus_list(CORPUS, &names);
    CHECK(n > 0, "the corpus %s has seeds (%d)", CORPUS, n);
    int valid = 0;
    for (int i = 0; i < n; i++) {
        char path[512], err[160] = "";
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]->d_name);
        size_t len;
        char *buf = corpus_slurp(path, &len);
        CHECK(buf != NULL, "%s reads", path);
        if (buf) {
            wire_msg m;
            int r = wire_decode(buf, len, &m, err, sizeof err);
            if (!strncmp(names[i]->d_name, "valid-", 6)) {
                valid++;
                CHECK(r == 0, "%s decodes as %s (%s)", names[i]->d_name, wire_type_name(m.type),
                      r ? err : "ok");
                if (r == 0 && m.type == WIRE_STATS) {
                    stats *st = stats_new();
                    int sr = stats_decode_merge(st, m.data, m.data_len);
                    CHECK(sr == 0 && st->requests > 0, "%s holds a snapshot that decodes (%llu requests)",
                          names[i]->d_name, (unsigned long long)st->requests);
                    stats_free(st);
                }
            } else {
                CHECK(r == 0 || *err, "%s returns (%s)", names[i]->d_name, r ? err : "decoded");
            }
            wire_msg_free(&m);
            free(buf);
        }
        free(names[i]);
    }
    if (n > 0) free(names);
    CHECK(valid >= 10, "at least 10 valid seeds (%d)", valid);
    return check_done();
}
