/* corpus.h: what the corpus replay tests share — the seed files of a fuzzer's corpus directory, in
 * name order, each read into a buffer of exactly its size (so ASan sees any over-read). */
#ifndef PARROT_CORPUS_H
#define PARROT_CORPUS_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *corpus_slurp(const char *path, size_t *len)
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

static int corpus_by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}
static int corpus_not_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

/* The seeds of `dir` (names[i]->d_name), sorted; the caller frees each and the list. */
static int corpus_list(const char *dir, struct dirent ***names)
{
    return scandir(dir, names, corpus_not_dot, corpus_by_name);
}

/* One seed: its file name, its path, its bytes. */
typedef void corpus_seed_fn(const char *name, const char *path, const char *buf, size_t len, void *ud);

/* Call `seed` on every seed of `dir` in name order, checking that there are some and that each
 * reads (CHECK, from check.h). */
static void corpus_each(const char *dir, corpus_seed_fn *seed, void *ud)
{
    struct dirent **names;
    int n = corpus_list(dir, &names);
    CHECK(n > 0, "the corpus %s has seeds (%d)", dir, n);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        size_t len;
        char *buf = corpus_slurp(path, &len);
        CHECK(buf != NULL, "%s reads", path);
        if (buf) seed(names[i]->d_name, path, buf, len, ud);
        free(buf);
        free(names[i]);
    }
    if (n > 0) free(names);
}
#endif
