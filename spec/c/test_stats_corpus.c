/* test_stats_corpus: replays the statistics fuzzer's seed corpus (spec/fuzz/corpus/stats/, run
 * from the repo root) through stats_decode_merge: "valid-*" seeds (snapshots of each format version
 * the queen takes, with and without the all-requests histogram) merge, every other seed is refused
 * leaving the destination empty, and nothing crashes. */
#include "check.h"
#include "corpus.h"
#include "stats.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "spec/fuzz/corpus/stats"

int main(void)
{
    struct dirent **names;
    int n = corpus_list(CORPUS, &names);
    CHECK(n > 0, "the corpus %s has seeds (%d)", CORPUS, n);
    int valid = 0;
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]->d_name);
        size_t len;
        char *buf = corpus_slurp(path, &len);
        CHECK(buf != NULL, "%s reads", path);
        if (buf) {
            stats *d = stats_new();
            int r = stats_decode_merge(d, buf, len);
            if (!strncmp(names[i]->d_name, "valid-", 6)) {
                valid++;
                CHECK(r == 0, "%s merges (%llu requests, %llu in `all`)", names[i]->d_name,
                      (unsigned long long)d->requests, (unsigned long long)stats_hist_count(d->all));
            } else {
                CHECK(r == 0 || (d->nentries == 0 && d->requests == 0), "%s merges or is refused whole",
                      names[i]->d_name);
            }
            stats_free(d);
            free(buf);
        }
        free(names[i]);
    }
    if (n > 0) free(names);
    CHECK(valid >= 4, "at least 4 valid seeds (%d)", valid);
    return check_done();
}
