/* fuzz_stats: libFuzzer target for the statistics snapshot decoder. Every input must merge whole
 * or be refused leaving the destination empty; what merged must encode and merge again to the
 * same totals, and merging with the all-requests histogram owed (as the queen does) and then
 * settling it must give the same histogram (spec/fuzz/fuzz.sh builds and runs it over
 * spec/fuzz/corpus/stats/). */
/* fuzz-sources: src/stats.c src/mpguard.c */
#include "stats.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hist_same(const stats_hist *a, const stats_hist *b)
{
    if (stats_hist_count(a) != stats_hist_count(b) || stats_hist_min(a) != stats_hist_min(b) ||
        stats_hist_max(a) != stats_hist_max(b))
        return 0;
    for (double p = 0; p <= 100; p += 5)
        if (stats_hist_percentile(a, p) != stats_hist_percentile(b, p)) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stats *d = stats_new(), *owed_d = stats_new(), *scratch = stats_new();
    int r = stats_decode_merge(d, (const char *)data, size);
    if (r != 0) {
        if (d->nentries || d->requests || stats_hist_count(d->all)) abort(); /* refused: untouched */
    } else {
        char *buf;
        size_t len;
        stats *again = stats_new();
        if (stats_encode(d, &buf, &len) != 0 || stats_decode_merge(again, buf, len) != 0) abort();
        if (again->requests != d->requests || !hist_same(again->all, d->all)) abort();
        free(buf);
        stats_free(again);
        stats *const dsts[] = {owed_d};
        int owed = 1;
        if (stats_decode_merge_into(dsts, 1, scratch, (const char *)data, size, &owed) != 0) abort();
        if (owed) stats_all_add_requests(owed_d);
        if (!hist_same(owed_d->all, d->all)) abort();
    }
    stats_free(d);
    stats_free(owed_d);
    stats_free(scratch);
    return 0;
}
