/* bundle_cache: the bundles a worker holds, by content hash: the last few in memory, and a disk
 * cache that is an optimisation (when it cannot be written, a private temporary directory holds
 * the files). Everything here runs under one mutex. */
#include "bundle_cache.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_IN_BUNDLE_MAX 1024 /* as bundle.c's BUNDLE_PATH_MAX */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- on disk ----------------------------------------------------------------------------- */

/* ROOT/bundles, created: $PARROT_CACHE, else ~/.cache/parrot, else /tmp/parrot-cache-UID. */
static int cache_dir(char *out, size_t outlen)
{
    const char *env = getenv("PARROT_CACHE"), *home = getenv("HOME");
    int n;
    if (env && *env)
        n = snprintf(out, outlen, "%s/bundles", env);
    else if (home && *home)
        n = snprintf(out, outlen, "%s/.cache/parrot/bundles", home);
    else
        n = snprintf(out, outlen, "/tmp/parrot-cache-%u/bundles", (unsigned)getuid());
    if (n < 0 || (size_t)n >= outlen) return -1;
    return bundle_mkdirs(out);
}

static int hash_ok(const char *h)
{
    if (!h) return 0;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return 0;
    return h[64] == '\0';
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf, never following a symlink. */
static void remove_tree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* The bundle on disk under `hash`, read and checked (its files must hash to it): 0 with *b
 * filled (the caller owns it) and its directory in `path`; -1 when absent or corrupt (removed). */
static int disk_get(const char *hash, bundle *b, char *path, size_t pathlen)
{
    char root[PATH_MAX];
    struct stat st;
    memset(b, 0, sizeof *b);
    if (cache_dir(root, sizeof root) < 0 || snprintf(path, pathlen, "%s/%s", root, hash) >= (int)pathlen ||
        lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return -1;
    if (bundle_read_dir(b, path, NULL, 0) == 0 && !strcmp(b->hash, hash)) return 0;
    bundle_free(b);
    remove_tree(path);
    return -1;
}

/* Write `b` into the disk cache (extracted beside its place, then renamed into it): 0 and its
 * directory in `path`, or -1 with a reason. */
static int disk_put(const bundle *b, char *path, size_t pathlen, char *err, size_t errlen)
{
    char root[PATH_MAX] = "", tmp[PATH_MAX + 120];
    if (cache_dir(root, sizeof root) < 0) {
        set_err(err, errlen, "cannot create %s: %s", root, strerror(errno));
        return -1;
    }
    if (snprintf(path, pathlen, "%s/%s", root, b->hash) >= (int)pathlen) {
        set_err(err, errlen, "cache path too long: %s", root);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    remove_tree(tmp);
    if (bundle_extract(b, tmp, err, errlen) < 0) {
        remove_tree(tmp);
        return -1;
    }
    bundle old;
    char oldpath[PATH_MAX + 80];
    for (int tries = 0; rename(tmp, path) < 0; tries++) {
        int e = errno;
        /* taken by another worker sharing the cache: keep theirs if it is whole, else replace it */
        if ((e != EEXIST && e != ENOTEMPTY) || tries) {
            remove_tree(tmp);
            set_err(err, errlen, "cannot move %s into place: %s", path, strerror(e));
            return -1;
        }
        if (disk_get(b->hash, &old, oldpath, sizeof oldpath) == 0) {
            bundle_free(&old);
            remove_tree(tmp);
            return 0;
        }
    }
    return 0;
}

/* A private temporary directory (mode 0700) holding `b`, for when the disk cache cannot be
 * written; removed when the bundle leaves memory or the process exits. */
static int temp_put(const bundle *b, char *path, size_t pathlen, char *err, size_t errlen)
{
    const char *t = getenv("TMPDIR");
    snprintf(path, pathlen, "%s/parrot-bundle-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(path)) {
        set_err(err, errlen, "cannot create a temporary directory %s: %s", path, strerror(errno));
        return -1;
    }
    if (bundle_extract(b, path, err, errlen) == 0) return 0;
    remove_tree(path);
    return -1;
}

/* ---- in memory --------------------------------------------------------------------------- */

/* The bundles in memory, by content hash: what this process received or found on disk, each with
 * the directory its files are in (the disk cache or a temporary directory) and what each file
 * looked like there (lstat) when written or checked. A run finds its bundle without reading or
 * hashing a byte; a file changed under it is written out again from memory. At most MEM_MAX
 * bundles and MEM_BYTES of content (the newest always stays); the least recently used leave. */
#define MEM_MAX 8
#define MEM_BYTES (256u * 1024 * 1024)

typedef struct mem_entry {
    bundle b;        /* owned */
    char *dir;       /* owned */
    int temp;        /* dir is a temporary directory of ours */
    struct stat *st; /* owned: one per file of b */
    uint64_t used;   /* the clock at the last get or put */
} mem_entry;

static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static mem_entry mem[MEM_MAX];
static int mem_n;
static uint64_t mem_clock;
static size_t mem_walked; /* count_one's tally */

static int count_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode))
        mem_walked++;
    else if (type != FTW_D)
        mem_walked += 1u << 30; /* a symlink or anything odd: not ours */
    return 0;
}

/* lstat each file of `e` into e->st (check = 0), or compare with e->st (check = 1): 0 when every
 * file is there as recorded and the directory holds nothing else. */
static int mem_stat(mem_entry *e, int check)
{
    char path[PATH_MAX + PATH_IN_BUNDLE_MAX + 2];
    for (size_t i = 0; i < e->b.nfiles; i++) {
        struct stat st, *rec = &e->st[i];
        snprintf(path, sizeof path, "%s/%s", e->dir, e->b.files[i].path);
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) return -1;
        if (!check)
            *rec = st;
        else if (st.st_dev != rec->st_dev || st.st_ino != rec->st_ino || st.st_size != rec->st_size ||
                 st.st_mtim.tv_sec != rec->st_mtim.tv_sec || st.st_mtim.tv_nsec != rec->st_mtim.tv_nsec)
            return -1;
    }
    mem_walked = 0;
    if (check && (nftw(e->dir, count_one, 16, FTW_PHYS) != 0 || mem_walked != e->b.nfiles)) return -1;
    return 0;
}

/* Make sure e->dir holds e's files as recorded, writing them out again from memory if not (into a
 * temporary directory when its place cannot be written). 0, or -1 with a reason. */
static int mem_ready(mem_entry *e, char *err, size_t errlen)
{
    e->used = ++mem_clock;
    if (mem_stat(e, 1) == 0) return 0;
    char path[PATH_MAX + 80];
    remove_tree(e->dir);
    if (bundle_extract(&e->b, e->dir, err, errlen) < 0) {
        if (temp_put(&e->b, path, sizeof path, err, errlen) < 0) return -1;
        char *d = strdup(path);
        if (!d) return -1;
        free(e->dir);
        e->dir = d;
        e->temp = 1;
    }
    return mem_stat(e, 0);
}

static void mem_drop(int i)
{
    mem_entry *e = &mem[i];
    if (e->temp) remove_tree(e->dir);
    bundle_free(&e->b);
    free(e->dir);
    free(e->st);
    mem[i] = mem[--mem_n];
}

/* At exit the temporary directories go; a thread still inside the cache keeps the lock, and
 * then they stay (waiting for it could hang the exit). */
static void mem_atexit(void)
{
    if (pthread_mutex_trylock(&mem_mu) != 0) return;
    while (mem_n)
        mem_drop(0);
    pthread_mutex_unlock(&mem_mu);
}

static mem_entry *mem_find(const char *hash)
{
    for (int i = 0; i < mem_n; i++)
        if (!strcmp(mem[i].b.hash, hash)) return &mem[i];
    return NULL;
}

/* Keep `b` (taken over: *b is left empty) whose files are in `dir`; the least recently used leave
 * to make room. NULL when out of memory (b is then freed). */
static mem_entry *mem_add(bundle *b, const char *dir, int temp)
{
    static int registered;
    if (!registered) registered = atexit(mem_atexit) == 0;
    size_t bytes = b->total;
    for (int i = 0; i < mem_n; i++)
        bytes += mem[i].b.total;
    while (mem_n && (mem_n == MEM_MAX || bytes > MEM_BYTES)) {
        int lru = 0;
        for (int i = 1; i < mem_n; i++)
            if (mem[i].used < mem[lru].used) lru = i;
        bytes -= mem[lru].b.total;
        mem_drop(lru);
    }
    mem_entry *e = &mem[mem_n];
    *e = (mem_entry){.b = *b, .dir = strdup(dir), .temp = temp, .used = ++mem_clock};
    e->st = calloc(b->nfiles ? b->nfiles : 1, sizeof *e->st);
    memset(b, 0, sizeof *b);
    mem_n++;
    if (!e->dir || !e->st || mem_stat(e, 0) < 0) {
        mem_drop(mem_n - 1);
        return NULL;
    }
    return e;
}

/* A deep copy of `src` into *dst (owned by the caller); -1 when out of memory (*dst empty). */
static int bundle_copy(bundle *dst, const bundle *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->hash, src->hash, sizeof dst->hash);
    dst->total = src->total;
    if (src->nfiles && !(dst->files = calloc(src->nfiles, sizeof *dst->files))) return -1;
    for (size_t i = 0; i < src->nfiles; i++) {
        bundle_file *f = &dst->files[dst->nfiles++];
        f->path = strdup(src->files[i].path);
        f->data = malloc(src->files[i].len ? src->files[i].len : 1);
        if (!f->path || !f->data) {
            bundle_free(dst);
            return -1;
        }
        f->len = src->files[i].len;
        memcpy(f->data, src->files[i].data, f->len);
    }
    return 0;
}

/* Copy e->dir into `dir` (dirlen bytes): 1, or 0 when it does not fit. */
static int dir_out(const mem_entry *e, char *dir, size_t dirlen)
{
    size_t n = strlen(e->dir);
    if (n >= dirlen) return 0;
    memcpy(dir, e->dir, n + 1);
    return 1;
}

int bundle_cache_get(const char *hash, char *dir, size_t dirlen)
{
    char path[PATH_MAX + 80], err[256];
    bundle b;
    int ok = 0;
    if (!hash_ok(hash)) return 0;
    pthread_mutex_lock(&mem_mu);
    mem_entry *e = mem_find(hash);
    if (e)
        ok = mem_ready(e, err, sizeof err) == 0 && dir_out(e, dir, dirlen);
    else if (disk_get(hash, &b, path, sizeof path) == 0)
        ok = (e = mem_add(&b, path, 0)) && dir_out(e, dir, dirlen);
    pthread_mutex_unlock(&mem_mu);
    return ok;
}

int bundle_cache_put(const bundle *b, char *dir, size_t dirlen, char *err, size_t errlen)
{
    static int warned;
    char path[PATH_MAX + 80], why[512];
    int rc = -1, temp = 0;
    if (!hash_ok(b->hash)) {
        set_err(err, errlen, "bundle: no content hash to cache it under");
        return -1;
    }
    pthread_mutex_lock(&mem_mu);
    mem_entry *e = mem_find(b->hash);
    bundle copy;
    if (e) {
        rc = mem_ready(e, err, errlen);
    } else if (bundle_copy(&copy, b) < 0) {
        set_err(err, errlen, "bundle: out of memory");
    } else {
        if (disk_put(b, path, sizeof path, why, sizeof why) < 0) {
            if (!warned++)
                fprintf(stderr,
                        "parrot: the bundle cache is not writable (%s): bundles stay in memory and "
                        "in a temporary directory\n",
                        why);
            temp = 1;
        }
        if (temp && temp_put(b, path, sizeof path, err, errlen) < 0)
            bundle_free(&copy);
        else if (!(e = mem_add(&copy, path, temp)))
            set_err(err, errlen, "bundle: cannot keep %s: %s", path, strerror(errno));
        else
            rc = 0;
    }
    if (rc == 0 && !dir_out(e, dir, dirlen)) {
        set_err(err, errlen, "bundle: cache path too long: %s", e->dir);
        rc = -1;
    }
    pthread_mutex_unlock(&mem_mu);
    return rc;
}

void bundle_cache_forget(void)
{
    pthread_mutex_lock(&mem_mu);
    while (mem_n)
        mem_drop(0);
    pthread_mutex_unlock(&mem_mu);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Append a copy of `h` to the NULL-terminated *list (cnt entries, room for cap) unless there. */
static int list_add(char ***list, size_t *cnt, size_t *cap, const char *h)
{
    for (size_t i = 0; i < *cnt; i++)
        if (!strcmp((*list)[i], h)) return 0;
    if (*cnt + 1 >= *cap) {
        char **nl = realloc(*list, (*cap *= 2) * sizeof *nl);
        if (!nl) return -1;
        *list = nl;
    }
    if (!((*list)[*cnt] = strdup(h))) return -1;
    (*list)[++*cnt] = NULL;
    return 0;
}

char **bundle_cache_list(size_t *n)
{
    char root[PATH_MAX];
    size_t cnt = 0, cap = 8;
    char **list = calloc(cap, sizeof *list);
    if (n) *n = 0;
    if (!list) return NULL;
    DIR *d = cache_dir(root, sizeof root) == 0 ? opendir(root) : NULL;
    struct dirent *de;
    int rc = 0;
    while (d && rc == 0 && (de = readdir(d)))
        if (hash_ok(de->d_name)) rc = list_add(&list, &cnt, &cap, de->d_name);
    if (d) closedir(d);
    pthread_mutex_lock(&mem_mu);
    for (int i = 0; rc == 0 && i < mem_n; i++)
        rc = list_add(&list, &cnt, &cap, mem[i].b.hash);
    pthread_mutex_unlock(&mem_mu);
    qsort(list, cnt, sizeof *list, str_cmp);
    if (n) *n = cnt;
    return list;
}
