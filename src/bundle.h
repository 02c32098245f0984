/* bundle: a scenario's files as one versioned unit that travels to workers. A bundle is the
 * scenario's directory (every file but hidden ones) plus the files it names outside it; its
 * content hash is the SHA-256 over the sorted (path, content) pairs. */
#ifndef PARROT_BUNDLE_H
#define PARROT_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_DEFAULT_LIMIT (64u * 1024 * 1024)

typedef struct bundle_file {
    char *path; /* owned, relative, '/'-separated, never absolute, never with '..' */
    char *data; /* owned */
    size_t len;
} bundle_file;

typedef struct bundle {
    bundle_file *files; /* owned, sorted by path */
    size_t nfiles;
    size_t total;  /* bytes of content */
    char hash[65]; /* hex SHA-256 of the content */
} bundle;

/* Build from the directory holding `script` (recursively, skipping names starting with '.')
 * plus `extra` files (absolute or relative to that directory; NULL-terminated, may be NULL)
 * copied in under their base names (or their relative path when inside the directory).
 * Symlinks are followed: to a file, its content goes in under the link's name; to a directory
 * inside the scenario directory, it is walked under the link's name; one to a directory outside,
 * one in a loop and a dangling one are refused, naming the link.
 * `limit` 0 = BUNDLE_DEFAULT_LIMIT. Returns 0, or -1 with a one-line reason in err
 * ("bundle over 64 MB: ./data/big.csv makes it 70 MB (the bundle is the scenario's whole
 * directory: ...)"). */
int bundle_build(bundle *b, const char *script, const char *const *extra, size_t limit, char *err,
                 size_t errlen);
void bundle_free(bundle *b);
/* The version: hex SHA-256 of the content hash and the queen's epoch. out: 65 bytes. */
void bundle_version(const bundle *b, uint64_t epoch, char out[65]);

/* Serialize (msgpack: [[path, bytes], ...]) to a malloc'ed buffer. */
int bundle_encode(const bundle *b, char **out, size_t *outlen);
/* Decode and check: paths relative and inside, no duplicates, size limit, and the content hash
 * must equal `expect_hash` (when not NULL). Returns 0, or -1 with a reason in err. */
int bundle_decode(bundle *b, const char *buf, size_t len, const char *expect_hash, char *err, size_t errlen);

/* Write the files under `dir` (created, mode 0700). Returns 0 or -1 with a reason. */
int bundle_extract(const bundle *b, const char *dir, char *err, size_t errlen);

/* Read back every file under `dir`, hidden ones included, symlinks not followed (a directory
 * written by bundle_extract holds what was sent), and hash them. 0, or -1 with a reason. */
int bundle_read_dir(bundle *b, const char *dir, char *err, size_t errlen);

/* mkdir -p `dir`; the directories it creates have mode 0700. 0, or -1 with errno set. */
int bundle_mkdirs(const char *dir);

#endif
