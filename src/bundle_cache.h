/* bundle_cache: the bundles a worker holds, by content hash, so a run (or a restarted queen's
 * identical bundle) finds its files without a transfer: the last few in memory, and on disk
 * under ~/.cache/parrot/bundles/HASH/ (or $PARROT_CACHE/bundles/HASH/). */
#ifndef PARROT_BUNDLE_CACHE_H
#define PARROT_BUNDLE_CACHE_H

#include <stddef.h>

#include "bundle.h"

/* The disk cache is an optimisation: when it cannot be written, a one-line warning says so and
 * the files go to a private temporary directory (removed when the bundle leaves memory or the
 * process exits). Every function is thread-safe. */
/* Keep a copy of `b` and write its files out; returns 0 and their directory in `dir`, or -1
 * with a reason. */
int bundle_cache_put(const bundle *b, char *dir, size_t dirlen, char *err, size_t errlen);
/* 1 and the directory of the bundle's files if the hash is cached, else 0. A bundle in memory is
 * found without reading or hashing its files (a file changed on disk is written out again); one
 * only on disk is read and must still hash to its name (a corrupt one is removed). */
int bundle_cache_get(const char *hash, char *dir, size_t dirlen);
/* Hashes in the cache, memory and disk (NULL-terminated, malloc'ed; free each and the list). */
char **bundle_cache_list(size_t *n);
/* Drop the in-memory copies (and their temporary directories): what a fresh process sees. */
void bundle_cache_forget(void);

#endif
