/* test_wire_corpus: replays the fuzzer's seed corpus (spec/fuzz/corpus/wire/, run from the repo
 * root) through wire_decode: "valid-*" seeds decode, every other seed is refused with a reason, and
 * nothing crashes. Inputs the fuzzer found worth keeping can be dropped into that directory. */
#include "check.h"
#include "wire.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "spec/fuzz/corpus/wire"

/* The whole file in a buffer of exactly its size (so ASan sees any over-read). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc(n ? (size_t)n : 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}
static int not_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

int main(void)
{
    struct dirent **names;
    int n = scandir(CORPUS, &names, not_dot, by_name);
    CHECK(n > 0, "the corpus %s has seeds (%d)", CORPUS, n);
    int valid = 0;
    for (int i = 0; i < n; i++) {
        char path[512], err[160] = "";
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]->d_name);
        size_t len;
        char *buf = slurp(path, &len);
        CHECK(buf != NULL, "%s reads", path);
        if (buf) {
            wire_msg m;
            int r = wire_decode(buf, len, &m, err, sizeof err);
            if (!strncmp(names[i]->d_name, "valid-", 6)) {
                valid++;
                CHECK(r == 0, "%s decodes as %s (%s)", names[i]->d_name, wire_type_name(m.type),
                      r ? err : "ok");
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
