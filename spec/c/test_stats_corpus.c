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

static void seed(const char *name, const char *path, const char *buf, size_t len, void *ud)
{
    (void)path;
    stats *d = stats_new();
    int r = stats_decode_merge(d, buf, len);
    if (!strncmp(name, "valid-", 6)) {
        ++*(int *)ud;
        CHECK(r == 0, "%s merges (%llu requests, %llu in `all`)", name, (unsigned long long)d->requests,
              (unsigned long long)stats_hist_count(d->all));
    } else {
        CHECK(r == 0 || (d->nentries == 0 && d->requests == 0), "%s merges or is refused whole", name);
    }
    stats_free(d);
}

int main(void)
{
    int valid = 0;
    corpus_each(CORPUS, seed, &valid);
    CHECK(valid >= 4, "at least 4 valid seeds (%d)", valid);
    return check_done();
}
