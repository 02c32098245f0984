/* bundle: build a scenario's files into one hashed unit, carry it as msgpack, check it on
 * arrival, write it out, and keep a per-worker cache of bundles by content hash. */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/sha256.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUNDLE_MAX_FILES 10000
#define BUNDLE_PATH_MAX 1024
#define BUNDLE_MAX_DEPTH 64 /* directories inside one another */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- hashing ---------------------------------------------------------------------------- */

static void put_be64(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
}

static void hex_digest(const unsigned char d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

/* The content hash: for each file in order, be64(path length), path, be64(length), content. */
static void hash_files(const bundle_file *f, size_t n, char out[65])
{
    mbedtls_sha256_context c;
    unsigned char len8[8], d[32];
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(f[i].path);
        put_be64(len8, plen);
        mbedtls_sha256_update_ret(&c, len8, 8);
        mbedtls_sha256_update_ret(&c, (const unsigned char *)f[i].path, plen);
        put_be64(len8, f[i].len);
        mbedtls_sha256_update_ret(&c, len8, 8);
        if (f[i].len) mbedtls_sha256_update_ret(&c, (const unsigned char *)f[i].data, f[i].len);
    }
    mbedtls_sha256_finish_ret(&c, d);
    mbedtls_sha256_free(&c);
    hex_digest(d, out);
}

void bundle_version(const bundle *b, uint64_t epoch, char out[65])
{
    mbedtls_sha256_context c;
    unsigned char e8[8], d[32];
    put_be64(e8, epoch);
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    mbedtls_sha256_update_ret(&c, (const unsigned char *)b->hash, 64);
    mbedtls_sha256_update_ret(&c, e8, 8);
    mbedtls_sha256_finish_ret(&c, d);
    mbedtls_sha256_free(&c);
    hex_digest(d, out);
}

void bundle_free(bundle *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->nfiles; i++) {
        free(b->files[i].path);
        free(b->files[i].data);
    }
    free(b->files);
    memset(b, 0, sizeof *b);
}

/* A path a bundle may carry: relative, '/'-separated, no empty, '.' or '..' component, no
 * backslash or NUL, at most BUNDLE_PATH_MAX bytes. `len` is the path's byte count. */
static int path_ok(const char *p, size_t len)
{
    if (len == 0 || len > BUNDLE_PATH_MAX || p[0] == '/') return 0;
    if (memchr(p, '\0', len) || memchr(p, '\\', len)) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') continue;
        size_t clen = i - start;
        if (clen == 0) return 0;
        if (clen == 1 && p[start] == '.') return 0;
        if (clen == 2 && p[start] == '.' && p[start + 1] == '.') return 0;
        start = i + 1;
    }
    return 1;
}

static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const bundle_file *)a)->path, ((const bundle_file *)b)->path);
}

/* ---- building --------------------------------------------------------------------------- */

/* The state of one build: the files gathered so far (owned until handed to the bundle). */
typedef struct builder {
    bundle_file *files; /* owned */
    size_t n, cap;
    size_t total, limit;
    int skip_hidden;  /* 0 when re-hashing a cache directory, which holds what was sent */
    const char *root; /* the scenario directory (a realpath) when symlinks are followed, else NULL */
    char *walking[BUNDLE_MAX_DEPTH]; /* realpaths of the directories being walked (owned) */
    int depth;
    char *err;
    size_t errlen;
} builder;

static void builder_free(builder *bd)
{
    for (size_t i = 0; i < bd->n; i++) {
        free(bd->files[i].path);
        free(bd->files[i].data);
    }
    free(bd->files);
    bd->files = NULL;
    bd->n = bd->cap = 0;
}

/* "64 MB", "1.5 KB", "12 bytes"; `up` rounds a fraction up so a total over the limit never
 * prints as the limit. */
static const char *fmt_size(char *buf, size_t blen, size_t n, int up)
{
    static const struct {
        size_t unit;
        const char *name;
    } u[] = {{1024u * 1024 * 1024, "GB"}, {1024u * 1024, "MB"}, {1024u, "KB"}};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        if (n < u[i].unit) continue;
        if (n % u[i].unit == 0)
            snprintf(buf, blen, "%zu %s", n / u[i].unit, u[i].name);
        else {
            size_t tenths = (size_t)(((unsigned long long)n * 10 + (up ? u[i].unit - 1 : 0)) / u[i].unit);
            snprintf(buf, blen, "%zu.%zu %s", tenths / 10, tenths % 10, u[i].name);
        }
        return buf;
    }
    snprintf(buf, blen, "%zu bytes", n);
    return buf;
}

static int limit_error(builder *bd, const char *shown, size_t total)
{
    char a[32], b[32];
    set_err(bd->err, bd->errlen,
            "bundle over %s: %s makes it %s (the bundle is the scenario's whole directory: keep the "
            "scenario in a directory of its own, without large files)",
            fmt_size(a, sizeof a, bd->limit, 0), shown, fmt_size(b, sizeof b, total, 1));
    return -1;
}

/* Read `fd` to its end, expecting about `hint` bytes; stops once it holds more than `room`
 * (then *len > room and the data is returned for the caller to drop). NULL and *e on error. */
static char *read_capped(int fd, size_t hint, size_t room, size_t *len, int *e)
{
    size_t cap = hint + 1;
    char *data = malloc(cap);
    *len = 0;
    while (data) {
        ssize_t r = read(fd, data + *len, cap - *len);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return data;
        if (r < 0) break;
        *len += (size_t)r;
        if (*len > room) return data;
        if (*len == cap) {
            char *nd = realloc(data, cap *= 2);
            if (!nd) break;
            data = nd;
        }
    }
    *e = data ? errno : ENOMEM;
    free(data);
    return NULL;
}

/* Read the regular file at `fs` (shown to the user as `shown`) and add it as `rel`. Reads at
 * most what the limit leaves, so a file growing under us cannot blow past it. */
static int builder_add(builder *bd, const char *fs, const char *rel, const char *shown)
{
    if (bd->n >= BUNDLE_MAX_FILES) {
        set_err(bd->err, bd->errlen, "bundle over %d files at %s; move files out of the scenario directory",
                BUNDLE_MAX_FILES, shown);
        return -1;
    }
    if (!path_ok(rel, strlen(rel))) {
        set_err(bd->err, bd->errlen, "bundle: %s has a path a bundle cannot carry (over %d bytes?)", shown,
                BUNDLE_PATH_MAX);
        return -1;
    }
    int fd = open(fs, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EINVAL;
        if (fd >= 0) close(fd);
        set_err(bd->err, bd->errlen, "bundle: cannot read %s: %s", shown,
                e == EINVAL ? "not a regular file" : strerror(e));
        return -1;
    }
    size_t room = bd->limit - bd->total;
    if ((uint64_t)st.st_size > room) {
        close(fd);
        return limit_error(bd, shown, bd->total + (size_t)st.st_size);
    }
    size_t len = 0;
    int e = 0;
    char *data = read_capped(fd, (size_t)st.st_size, room, &len, &e);
    close(fd);
    if (len > room) {
        free(data);
        return limit_error(bd, shown, bd->total + len);
    }
    if (!data) {
        set_err(bd->err, bd->errlen, "bundle: cannot read %s: %s", shown, strerror(e));
        return -1;
    }
    if (bd->n == bd->cap) {
        size_t ncap = bd->cap ? bd->cap * 2 : 64;
        bundle_file *nf = realloc(bd->files, ncap * sizeof *nf);
        if (!nf) {
            free(data);
            set_err(bd->err, bd->errlen, "bundle: out of memory");
            return -1;
        }
        bd->files = nf;
        bd->cap = ncap;
    }
    char *path = strdup(rel);
    if (!path) {
        free(data);
        set_err(bd->err, bd->errlen, "bundle: out of memory");
        return -1;
    }
    bd->files[bd->n++] = (bundle_file){.path = path, .data = data, .len = len};
    bd->total += len;
    return 0;
}

static int dirent_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int builder_walk(builder *bd, const char *dir, const char *rel);

/* A symlink in the scenario directory, followed, so what the scenario reads through it travels:
 * to a file, its content goes in under the link's name; to a directory inside the scenario
 * directory, that is walked under the link's name. A dangling link and one to a directory
 * outside are refused, naming the link: the queen fails now rather than a worker later. */
static int builder_link(builder *bd, const char *fs, const char *rel, const char *shown)
{
    struct stat st;
    if (stat(fs, &st) < 0) {
        set_err(bd->err, bd->errlen, "bundle: %s is a symlink that leads nowhere (%s); fix or remove it",
                shown, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) return builder_add(bd, fs, rel, shown);
    if (!S_ISDIR(st.st_mode)) return 0; /* a device or a socket: skipped, as in the walk */
    char *real = realpath(fs, NULL);
    size_t rl = strlen(bd->root);
    int rc = -1;
    if (!real)
        set_err(bd->err, bd->errlen, "bundle: cannot follow %s: %s", shown, strerror(errno));
    else if (strcmp(bd->root, "/") && (strncmp(real, bd->root, rl) || (real[rl] && real[rl] != '/')))
        set_err(bd->err, bd->errlen,
                "bundle: %s is a symlink to a directory outside the scenario directory (%s): copy the files "
                "in, or name them in files = {...}",
                shown, real);
    else
        rc = builder_walk(bd, fs, rel);
    free(real);
    return rc;
}

/* With symlinks followed, note `dir` as being walked: -1 (with the reason) when it already is,
 * which only a symlink loop can do, or when directories nest too deep. */
static int builder_enter(builder *bd, const char *dir, const char *rel)
{
    char *real = realpath(dir, NULL);
    if (!real) {
        set_err(bd->err, bd->errlen, "bundle: cannot open directory ./%s: %s", rel, strerror(errno));
        return -1;
    }
    for (int i = 0; i < bd->depth; i++) {
        if (strcmp(bd->walking[i], real)) continue;
        set_err(bd->err, bd->errlen,
                "bundle: ./%s leads back to a directory it is in (a symlink loop); remove the link", rel);
        free(real);
        return -1;
    }
    if (bd->depth == BUNDLE_MAX_DEPTH) {
        set_err(bd->err, bd->errlen, "bundle: ./%s is over %d directories deep", rel, BUNDLE_MAX_DEPTH);
        free(real);
        return -1;
    }
    bd->walking[bd->depth++] = real;
    return 0;
}

/* Walk `dir` (whose bundle-relative name is `rel`, "" at the top) in name order, so the file
 * that crosses the limit is always the same one: regular files are added, directories
 * entered, symlinks followed when building (builder_link), anything else skipped. */
static int builder_walk(builder *bd, const char *dir, const char *rel)
{
    if (bd->root && builder_enter(bd, dir, rel) < 0) return -1;
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, dirent_cmp);
    int rc = 0;
    if (n < 0) {
        set_err(bd->err, bd->errlen, "bundle: cannot open directory %s: %s", dir, strerror(errno));
        rc = -1;
    }
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (rc || !strcmp(name, ".") || !strcmp(name, "..") || (bd->skip_hidden && name[0] == '.')) continue;
        char *fs = NULL, *sub = NULL, *shown = NULL;
        if (asprintf(&fs, "%s/%s", dir, name) < 0) fs = NULL;
        if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", name) < 0) sub = NULL;
        if (asprintf(&shown, "./%s", sub ? sub : "") < 0) shown = NULL;
        struct stat st;
        if (!fs || !sub || !shown) {
            set_err(bd->err, bd->errlen, "bundle: out of memory");
            rc = -1;
        } else if (lstat(fs, &st) < 0) {
            set_err(bd->err, bd->errlen, "bundle: cannot stat %s: %s", shown, strerror(errno));
            rc = -1;
        } else if (S_ISLNK(st.st_mode) && bd->root) {
            rc = builder_link(bd, fs, sub, shown);
        } else if (S_ISDIR(st.st_mode)) {
            rc = builder_walk(bd, fs, sub);
        } else if (S_ISREG(st.st_mode)) {
            rc = builder_add(bd, fs, sub, shown);
        }
        free(fs);
        free(sub);
        free(shown);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    if (bd->root) free(bd->walking[--bd->depth]);
    return rc;
}

/* Whether the walk of the scenario directory already took the file at `rel` (a path with no
 * symlink in it, as realpath gives): it did unless some component is hidden. */
static int walk_takes(const char *rel)
{
    if (rel[0] == '.') return 0;
    return strstr(rel, "/.") == NULL;
}

/* Add one `extra` file: inside the scenario directory `root` (a realpath) it keeps its
 * relative path; outside it goes in under its base name. */
static int builder_extra(builder *bd, const char *root, const char *extra)
{
    char *given = NULL, *real = NULL;
    int rc = -1;
    if (extra[0] == '/')
        given = strdup(extra);
    else if (asprintf(&given, "%s/%s", root, extra) < 0)
        given = NULL;
    if (!given) {
        set_err(bd->err, bd->errlen, "bundle: out of memory");
        return -1;
    }
    if (!(real = realpath(given, NULL))) {
        set_err(bd->err, bd->errlen, "bundle: cannot read %s: %s", extra, strerror(errno));
        goto out;
    }
    size_t rl = strlen(root);
    if (!strncmp(real, root, rl) && (real[rl] == '/' || !strcmp(root, "/"))) {
        const char *rel = real + rl + (strcmp(root, "/") ? 1 : 0);
        rc = walk_takes(rel) ? 0 : builder_add(bd, real, rel, extra);
    } else {
        const char *base = strrchr(given, '/') + 1;
        if (!*base)
            set_err(bd->err, bd->errlen, "bundle: %s is not a file", extra);
        else
            rc = builder_add(bd, real, base, extra);
    }
out:
    free(given);
    free(real);
    return rc;
}

/* After sorting: two files at one path means two extras (or an extra and a directory file)
 * share a base name. `extra` names them. */
static int builder_check_dups(builder *bd, const char *const *extra)
{
    for (size_t i = 1; i < bd->n; i++) {
        if (strcmp(bd->files[i - 1].path, bd->files[i].path)) continue;
        const char *p = bd->files[i].path, *a = NULL, *b = NULL;
        for (size_t k = 0; extra && extra[k]; k++) {
            const char *s = strrchr(extra[k], '/');
            if (strcmp(s ? s + 1 : extra[k], p)) continue;
            if (!a)
                a = extra[k];
            else if (!b)
                b = extra[k];
        }
        if (a && b)
            set_err(bd->err, bd->errlen, "bundle: extra files %s and %s have the same name %s; rename one", a,
                    b, p);
        else
            set_err(bd->err, bd->errlen,
                    "bundle: extra file %s clashes with ./%s in the scenario directory; rename one",
                    a ? a : p, p);
        return -1;
    }
    return 0;
}

static void builder_finish(builder *bd, bundle *b)
{
    if (bd->n) qsort(bd->files, bd->n, sizeof *bd->files, file_cmp);
    b->files = bd->files;
    b->nfiles = bd->n;
    b->total = bd->total;
    hash_files(b->files, b->nfiles, b->hash);
    bd->files = NULL;
    bd->n = bd->cap = 0;
}

int bundle_build(bundle *b, const char *script, const char *const *extra, size_t limit, char *err,
                 size_t errlen)
{
    memset(b, 0, sizeof *b);
    builder bd = {
        .limit = limit ? limit : BUNDLE_DEFAULT_LIMIT, .skip_hidden = 1, .err = err, .errlen = errlen};
    char *dir = strdup(script ? script : ""), *root = NULL;
    if (!dir) {
        set_err(err, errlen, "bundle: out of memory");
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int rc = -1;
    if (!(root = realpath(dir, NULL)))
        set_err(err, errlen, "bundle: cannot open the directory of %s: %s", script, strerror(errno));
    bd.root = root; /* symlinks in it are followed */
    if (root && builder_walk(&bd, root, "") == 0) {
        rc = 0;
        for (size_t i = 0; rc == 0 && extra && extra[i]; i++)
            rc = builder_extra(&bd, root, extra[i]);
        if (rc == 0) {
            if (bd.n) qsort(bd.files, bd.n, sizeof *bd.files, file_cmp);
            rc = builder_check_dups(&bd, extra);
        }
    }
    if (rc == 0) builder_finish(&bd, b);
    builder_free(&bd);
    free(dir);
    free(root);
    return rc;
}

/* ---- the wire --------------------------------------------------------------------------- */

int bundle_encode(const bundle *b, char **out, size_t *outlen)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int r = msgpack_pack_array(&pk, b->nfiles);
    for (size_t i = 0; r == 0 && i < b->nfiles; i++) {
        r |= msgpack_pack_array(&pk, 2);
        r |= msgpack_pack_str_with_body(&pk, b->files[i].path, strlen(b->files[i].path));
        r |= msgpack_pack_bin_with_body(&pk, b->files[i].data, b->files[i].len);
    }
    if (r) {
        msgpack_sbuffer_destroy(&sb);
        *out = NULL;
        *outlen = 0;
        return -1;
    }
    *outlen = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    return 0;
}

/* Read a big-endian length of `n` bytes at *pos. */
static int read_len(const unsigned char *p, size_t len, size_t *pos, unsigned n, uint64_t *v)
{
    if (len - *pos < n) return -1;
    *v = 0;
    for (unsigned i = 0; i < n; i++)
        *v = *v << 8 | p[(*pos)++];
    return 0;
}

/* libmsgpack-c allocates an array's objects from the count in its header before it reads them,
 * so a few hostile bytes can ask for gigabytes. This walk checks the exact shape we send,
 * [[str, bin], ...], with every length inside the buffer and the contents under the limit,
 * before libmsgpack-c sees a byte. It decodes nothing. */
static int shape_ok(const unsigned char *p, size_t len, char *err, size_t errlen)
{
    size_t pos = 0;
    uint64_t n = 0, total = 0, v;
    if (len < 1) goto bad;
    unsigned h = p[pos++];
    if (h >= 0x90 && h <= 0x9f)
        n = h & 0x0f;
    else if (h == 0xdc || h == 0xdd) {
        if (read_len(p, len, &pos, h == 0xdc ? 2 : 4, &n)) goto bad;
    } else
        goto bad;
    if (n > BUNDLE_MAX_FILES) {
        set_err(err, errlen, "bundle of %llu files refused (at most %d)", (unsigned long long)n,
                BUNDLE_MAX_FILES);
        return 0;
    }
    if (n > (len - pos) / 4) goto bad; /* each entry takes at least 0x92, a str, a 2-byte bin */
    for (uint64_t i = 0; i < n; i++) {
        if (pos >= len || p[pos++] != 0x92 || pos >= len) goto bad;
        h = p[pos++];
        if (h >= 0xa0 && h <= 0xbf)
            v = h & 0x1f;
        else if (h >= 0xd9 && h <= 0xdb) {
            if (read_len(p, len, &pos, 1u << (h - 0xd9), &v)) goto bad;
        } else
            goto bad;
        if (v > BUNDLE_PATH_MAX || v > len - pos) goto bad;
        pos += v;
        if (pos >= len || p[pos] < 0xc4 || p[pos] > 0xc6) goto bad;
        h = p[pos++];
        if (read_len(p, len, &pos, 1u << (h - 0xc4), &v) || v > len - pos) goto bad;
        pos += v;
        if ((total += v) > BUNDLE_DEFAULT_LIMIT) {
            char a[32];
            set_err(err, errlen, "bundle over %s refused", fmt_size(a, sizeof a, BUNDLE_DEFAULT_LIMIT, 0));
            return 0;
        }
    }
    if (pos == len) return 1;
bad:
    set_err(err, errlen, "bundle malformed: refused");
    return 0;
}

/* Copy the unpacked entries into `b`, checking each path and the order (sorted, no duplicates). */
static int decode_files(bundle *b, const msgpack_object *root, char *err, size_t errlen)
{
    uint32_t n = root->via.array.size;
    if (n && !(b->files = calloc(n, sizeof *b->files))) {
        set_err(err, errlen, "bundle: out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &root->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_BIN) {
            set_err(err, errlen, "bundle malformed: refused");
            return -1;
        }
        const msgpack_object_str *ps = &e->via.array.ptr[0].via.str;
        const msgpack_object_bin *bs = &e->via.array.ptr[1].via.bin;
        if (!path_ok(ps->ptr, ps->size)) {
            set_err(err, errlen, "bundle path \"%.*s\" refused: paths must be relative and stay inside",
                    ps->size ? (int)strnlen(ps->ptr, ps->size > 200 ? 200 : ps->size) : 0,
                    ps->size ? ps->ptr : "");
            return -1;
        }
        bundle_file *f = &b->files[b->nfiles];
        f->path = strndup(ps->ptr, ps->size);
        f->data = malloc(bs->size ? bs->size : 1);
        b->nfiles++;
        if (!f->path || !f->data) {
            set_err(err, errlen, "bundle: out of memory");
            return -1;
        }
        if (bs->size) memcpy(f->data, bs->ptr, bs->size);
        f->len = bs->size;
        b->total += bs->size;
        int c = i ? strcmp(b->files[i - 1].path, f->path) : -1;
        if (c >= 0) {
            set_err(err, errlen, "bundle path \"%s\" refused: %s", f->path, c ? "out of order" : "duplicate");
            return -1;
        }
    }
    return 0;
}

int bundle_decode(bundle *b, const char *buf, size_t len, const char *expect_hash, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (!buf || !shape_ok((const unsigned char *)buf, len, err, errlen)) return -1;
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&msg, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len ||
        msg.data.type != MSGPACK_OBJECT_ARRAY)
        set_err(err, errlen, "bundle malformed: refused");
    else
        rc = decode_files(b, &msg.data, err, errlen);
    msgpack_unpacked_destroy(&msg);
    if (rc == 0) {
        hash_files(b->files, b->nfiles, b->hash);
        if (expect_hash && strcmp(expect_hash, b->hash)) {
            set_err(err, errlen, "bundle content does not match its hash: refused");
            rc = -1;
        }
    }
    if (rc) bundle_free(b);
    return rc;
}

/* ---- writing out ------------------------------------------------------------------------ */

int bundle_mkdirs(const char *dir)
{
    char *p = *dir ? strdup(dir) : NULL;
    if (!p) return -1;
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) rc = -1;
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (rc == 0 && (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))) rc = -1;
    free(p);
    return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write one file under the directory open at `top`, walking its components with openat and
 * O_NOFOLLOW so no symlink, planted or raced, can lead outside. */
static int extract_one(int top, const bundle_file *f)
{
    if (!path_ok(f->path, strlen(f->path))) {
        errno = EINVAL;
        return -1;
    }
    char *p = strdup(f->path);
    if (!p) return -1;
    int dfd = top, rc = -1;
    char *comp = p, *slash;
    while ((slash = strchr(comp, '/'))) {
        *slash = '\0';
        if (mkdirat(dfd, comp, 0700) < 0 && errno != EEXIST) goto out;
        int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) goto out;
        if (dfd != top) close(dfd);
        dfd = nfd;
        comp = slash + 1;
    }
    int fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) goto out;
    rc = write_all(fd, f->data, f->len);
    if (close(fd) < 0) rc = -1;
out:;
    int e = errno;
    if (dfd != top) close(dfd);
    free(p);
    errno = e;
    return rc;
}

int bundle_extract(const bundle *b, const char *dir, char *err, size_t errlen)
{
    if (bundle_mkdirs(dir) < 0) {
        set_err(err, errlen, "bundle: cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    int top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top < 0) {
        set_err(err, errlen, "bundle: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->nfiles; i++) {
        if ((rc = extract_one(top, &b->files[i])))
            set_err(err, errlen, "bundle: cannot write %s/%s: %s", dir, b->files[i].path, strerror(errno));
    }
    close(top);
    return rc;
}

/* ---- reading a written bundle back ------------------------------------------------------- */

int bundle_read_dir(bundle *b, const char *dir, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    builder bd = {.limit = SIZE_MAX, .skip_hidden = 0, .err = err, .errlen = errlen};
    int rc = builder_walk(&bd, dir, "");
    if (rc == 0) builder_finish(&bd, b);
    builder_free(&bd);
    return rc;
}
