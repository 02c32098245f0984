/* test_bundle: a scenario directory becomes one hashed bundle, travels as msgpack, is checked
 * on arrival (hostile input refused), written out, and cached by content hash. */
#include "bundle.h"
#include "bundle_cache.h"
#include "check.h"

#include <errno.h>
#include <ftw.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];

/* Path under the test's temp directory (one of four rotating buffers). */
static const char *at(const char *fmt, ...)
{
    static char bufs[4][1024];
    static int k;
    char rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *b = bufs[k++ % 4];
    snprintf(b, 1024, "%s/%s", tmp, rel);
    return b;
}

static void mkdirs(const char *path)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0700);
            *s = '/';
        }
    mkdir(p, 0700);
}

static void put_file(const char *path, const char *data, size_t len)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", path);
    *strrchr(d, '/') = '\0';
    mkdirs(d);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}
#define PUT(path, s) put_file(path, s, strlen(s))

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int rm_one(const char *p, const struct stat *st, int t, struct FTW *w)
{
    (void)st, (void)w;
    return t == FTW_DP ? rmdir(p) : unlink(p);
}
static void rm_rf(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int is_dir(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A hand-made wire bundle: [[path, content], ...] with the given paths, each content "x". */
static char *pack_paths(const char *const *paths, size_t n, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_str_with_body(&pk, paths[i], strlen(paths[i]));
        msgpack_pack_bin_with_body(&pk, "x", 1);
    }
    *len = sb.size;
    return msgpack_sbuffer_release(&sb);
}

static void spec_build(void)
{
    char err[256] = "";
    bundle b;
    PUT(at("scn/main.lua"), "return 1\n");
    PUT(at("scn/data/users.csv"), "name\nann\n");
    PUT(at("scn/data/deep/x.txt"), "x");
    PUT(at("scn/.hidden"), "secret");
    PUT(at("scn/.git/config"), "[core]");
    PUT(at("scn/data/.secret"), "s3cret");
    PUT(at("outside/payload.bin"), "PAYLOAD");
    PUT(at("outside/other.txt"), "other");

    CHECK(bundle_build(&b, at("scn/main.lua"), NULL, 0, err, sizeof err) == 0,
          "build a scenario directory: %s", err);
    CHECK(b.nfiles == 3, "hidden files are left out (%zu files)", b.nfiles);
    CHECK(b.nfiles == 3 && !strcmp(b.files[0].path, "data/deep/x.txt") &&
              !strcmp(b.files[1].path, "data/users.csv") && !strcmp(b.files[2].path, "main.lua"),
          "files are sorted by their relative path");
    CHECK(b.total == 9 + 9 + 1, "total counts the content bytes");
    CHECK(strlen(b.hash) == 64 && strspn(b.hash, "0123456789abcdef") == 64, "hash is 64 lowercase hex");
    bundle_free(&b);

    const char *extra[] = {"data/.secret", "data/users.csv", at("outside/payload.bin"),
                           "../outside/other.txt", NULL};
    CHECK(bundle_build(&b, at("scn/main.lua"), extra, 0, err, sizeof err) == 0, "build with extra files: %s",
          err);
    CHECK(b.nfiles == 6, "extras add files, one already in the directory counts once (%zu)", b.nfiles);
    int sec = 0, pay = 0, oth = 0;
    for (size_t i = 0; i < b.nfiles; i++) {
        sec |= !strcmp(b.files[i].path, "data/.secret");
        pay |= !strcmp(b.files[i].path, "payload.bin") && b.files[i].len == 7 &&
               !memcmp(b.files[i].data, "PAYLOAD", 7);
        oth |= !strcmp(b.files[i].path, "other.txt");
    }
    CHECK(sec, "an extra inside the directory keeps its relative path, even when hidden");
    CHECK(pay, "an absolute extra outside goes in under its base name");
    CHECK(oth, "a relative extra outside goes in under its base name");
    bundle_free(&b);

    PUT(at("outside2/other.txt"), "another");
    const char *clash[] = {"../outside/other.txt", "../outside2/other.txt", NULL};
    CHECK(bundle_build(&b, at("scn/main.lua"), clash, 0, err, sizeof err) == -1 &&
              strstr(err, "../outside/other.txt") && strstr(err, "../outside2/other.txt"),
          "two extras with one base name are refused, naming both: %s", err);
    CHECK(b.nfiles == 0 && b.files == NULL, "a failed build leaves an empty bundle");
    const char *missing[] = {"nope.csv", NULL};
    CHECK(bundle_build(&b, at("scn/main.lua"), missing, 0, err, sizeof err) == -1 && strstr(err, "nope.csv"),
          "a missing extra is named: %s", err);
}

static void spec_hash(void)
{
    char err[256] = "", v1[65], v2[65], v3[65];
    bundle a, b, c, k;
    PUT(at("h1/a.txt"), "hi\n");
    PUT(at("h1/sub/b.lua"), "return 1\n");
    PUT(at("h2/sub/b.lua"), "return 1\n"); /* the other order */
    PUT(at("h2/a.txt"), "hi\n");
    PUT(at("h3/a.txt"), "hi\n");
    PUT(at("h3/sub/b.lua"), "return 2\n");
    CHECK(bundle_build(&a, at("h1/a.txt"), NULL, 0, err, sizeof err) == 0, "build h1");
    CHECK(bundle_build(&b, at("h2/a.txt"), NULL, 0, err, sizeof err) == 0, "build h2");
    CHECK(bundle_build(&c, at("h3/a.txt"), NULL, 0, err, sizeof err) == 0, "build h3");
    CHECK(!strcmp(a.hash, "5af15403e4b040cf759ae1b43443f8eb315d8b6ede0e9ea2cb9225ef3d472dd7"),
          "hash = SHA-256 over be64(path len), path, be64(len), content, in path order");
    CHECK(!strcmp(a.hash, b.hash), "same content gives the same hash whatever the creation order");
    CHECK(strcmp(a.hash, c.hash) != 0, "one changed byte changes the hash");
    bundle_version(&a, 42, v1);
    bundle_version(&a, 43, v2);
    bundle_version(&b, 42, v3);
    CHECK(!strcmp(v1, "bb2c41637b251c66d931ef0ffcefd0241ef222a362a9ceaa5c7b2d1fda19d886"),
          "version = SHA-256 over the hex hash and be64(epoch)");
    CHECK(strcmp(v1, v2) != 0, "the version differs per epoch");
    CHECK(!strcmp(v1, v3), "the version is the same for the same content and epoch");
    mkdirs(at("empty"));
    CHECK(bundle_build(&k, at("empty/x.lua"), NULL, 0, err, sizeof err) == 0 && k.nfiles == 0 &&
              !strcmp(k.hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
          "an empty directory is an empty bundle");
    bundle_free(&a);
    bundle_free(&b);
    bundle_free(&c);
    bundle_free(&k);
}

static void spec_limit(void)
{
    char err[256] = "";
    bundle b;
    static char big[1536 * 1024];
    memset(big, 'x', sizeof big);
    PUT(at("lim/main.lua"), "return 1\n");
    put_file(at("lim/data/big.csv"), big, sizeof big);
    CHECK(bundle_build(&b, at("lim/main.lua"), NULL, 1024 * 1024, err, sizeof err) == -1,
          "over the limit fails");
    CHECK(!strcmp(err, "bundle over 1 MB: ./data/big.csv makes it 1.5 MB (the bundle is the scenario's whole "
                       "directory: keep the scenario in a directory of its own, without large files)"),
          "the error names the file and the total: %s", err);
    CHECK(strchr(err, '\n') == NULL, "the error is one line");
    CHECK(bundle_build(&b, at("lim/main.lua"), NULL, 0, err, sizeof err) == 0 && b.total == sizeof big + 9,
          "under the default limit it builds");
    bundle_free(&b);
    mkdirs(at("lim2"));
    PUT(at("lim2/main.lua"), "return 1\n");
    CHECK(bundle_build(&b, at("lim2/main.lua"), (const char *const[]){at("lim/data/big.csv"), NULL}, 1000,
                       err, sizeof err) == -1 &&
              strstr(err, "bundle over 1000 bytes: ") && strstr(err, "lim/data/big.csv makes it 1.6 MB"),
          "an extra over the limit is named as given: %s", err);

    for (int i = 0; i <= 10000; i++)
        PUT(at("many/f%05d", i), "");
    CHECK(bundle_build(&b, at("many/f00000"), NULL, 0, err, sizeof err) == -1 && strstr(err, "10000 files"),
          "a directory over 10,000 files is refused: %s", err);
    rm_rf(at("many"));
}

static void spec_wire(void)
{
    char err[256] = "", *buf = NULL;
    size_t len = 0;
    bundle a, d;
    const char *extra[] = {"data/.secret", NULL};
    bundle_build(&a, at("scn/main.lua"), extra, 0, err, sizeof err);
    CHECK(bundle_encode(&a, &buf, &len) == 0 && len > a.total, "encode");
    CHECK(bundle_decode(&d, buf, len, a.hash, err, sizeof err) == 0, "decode what was encoded: %s", err);
    int same = d.nfiles == a.nfiles && d.total == a.total && !strcmp(d.hash, a.hash);
    for (size_t i = 0; same && i < d.nfiles; i++)
        same = !strcmp(d.files[i].path, a.files[i].path) && d.files[i].len == a.files[i].len &&
               !memcmp(d.files[i].data, a.files[i].data, a.files[i].len);
    CHECK(same, "the round trip gives the same files and hash");
    bundle_free(&d);
    CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == 0, "decode without an expected hash");
    bundle_free(&d);
    char wrong[65];
    memcpy(wrong, a.hash, 65);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    CHECK(bundle_decode(&d, buf, len, wrong, err, sizeof err) == -1 &&
              !strcmp(err, "bundle content does not match its hash: refused"),
          "a wrong hash is refused: %s", err);

    int truncated_ok = 1;
    for (size_t i = 0; i < len; i++)
        if (bundle_decode(&d, buf, i, NULL, err, sizeof err) != -1 || d.files) truncated_ok = 0;
    CHECK(truncated_ok, "truncated at every length: refused");

    int flipped_ok = 1;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (char)(1 << bit);
            if (bundle_decode(&d, buf, len, a.hash, err, sizeof err) != -1) flipped_ok = 0;
            buf[i] ^= (char)(1 << bit);
        }
    CHECK(flipped_ok, "any flipped bit: refused");
    free(buf);
    bundle_free(&a);

    srand(7);
    int random_ok = 1;
    char rnd[512];
    for (int k = 0; k < 20000; k++) {
        size_t n = (size_t)rand() % sizeof rnd;
        for (size_t i = 0; i < n; i++)
            rnd[i] = (char)rand();
        if (k % 4 == 0 && n > 0) rnd[0] = (char)(0x90 | (rand() & 15)); /* look like an array */
        if (bundle_decode(&d, rnd, n, "0000000000000000000000000000000000000000000000000000000000000000", err,
                          sizeof err) == 0)
            random_ok = 0;
        bundle_free(&d);
    }
    CHECK(random_ok, "random bytes: refused, no crash");
    const char huge[] = "\xdd\xff\xff\xff\xff\x92\xa1x\xc4\x01x";
    CHECK(bundle_decode(&d, huge, sizeof huge - 1, NULL, err, sizeof err) == -1,
          "an array header promising 4 billion entries is refused before anything is allocated");
    const char bigbin[] = "\x91\x92\xa1x\xc6\x7f\xff\xff\xff";
    CHECK(bundle_decode(&d, bigbin, sizeof bigbin - 1, NULL, err, sizeof err) == -1,
          "a bin header promising 2 GB is refused");
}

static void spec_hostile_paths(void)
{
    static const char *bad[] = {"../x", "/etc/passwd", "a//b", "a/../../b", "a/",
                                "",     "a\\b",        "./a",  "a/./b",     ".."};
    char err[256] = "";
    bundle d;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len;
        char *buf = pack_paths(&bad[i], 1, &len);
        CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == -1 && d.nfiles == 0 &&
                  strstr(err, "refused"),
              "path \"%s\" is refused: %s", bad[i], err);
        free(buf);
    }
    size_t len;
    char *buf = pack_paths((const char *[]){"a", "a"}, 2, &len);
    CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == -1 && strstr(err, "duplicate"),
          "duplicate paths are refused: %s", err);
    free(buf);
    buf = pack_paths((const char *[]){"b", "a"}, 2, &len);
    CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == -1, "paths out of order are refused: %s",
          err);
    free(buf);
    char nul[] = "\x91\x92\xa3"
                 "a\0b"
                 "\xc4\x01x";
    CHECK(bundle_decode(&d, nul, sizeof nul - 1, NULL, err, sizeof err) == -1,
          "a path with a NUL is refused");
    char longp[1100];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    buf = pack_paths((const char *[]){longp}, 1, &len);
    CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == -1, "a path over 1024 bytes is refused");
    free(buf);
    buf = pack_paths((const char *[]){"a", "b/c/d.txt", "b/e"}, 3, &len);
    CHECK(bundle_decode(&d, buf, len, NULL, err, sizeof err) == 0 && d.nfiles == 3,
          "well-formed paths decode: %s", err);
    bundle_free(&d);
    free(buf);
}

static void spec_extract(void)
{
    char err[256] = "";
    size_t len;
    bundle b;
    bundle_build(&b, at("h1/a.txt"), NULL, 0, err, sizeof err);
    CHECK(bundle_extract(&b, at("out/one"), err, sizeof err) == 0, "extract: %s", err);
    char *s = slurp(at("out/one/sub/b.lua"), &len);
    CHECK(s && len == 9 && !memcmp(s, "return 1\n", 9), "files land under their relative paths");
    free(s);
    struct stat st;
    CHECK(stat(at("out/one/a.txt"), &st) == 0 && (st.st_mode & 0777) == 0600, "files are 0600");
    CHECK(stat(at("out/one/sub"), &st) == 0 && (st.st_mode & 0777) == 0700, "directories are 0700");

    PUT(at("victim.txt"), "untouched");
    mkdirs(at("out/two"));
    symlink(at("victim.txt"), at("out/two/a.txt"));
    CHECK(bundle_extract(&b, at("out/two"), err, sizeof err) == -1, "a planted symlink is not followed: %s",
          err);
    s = slurp(at("victim.txt"), &len);
    CHECK(s && len == 9 && !memcmp(s, "untouched", 9), "the symlink's target is untouched");
    free(s);
    mkdirs(at("out/three"));
    symlink(at("outside"), at("out/three/sub"));
    CHECK(bundle_extract(&b, at("out/three"), err, sizeof err) == -1 &&
              access(at("outside/b.lua"), F_OK) != 0,
          "a planted directory symlink is not followed");
    bundle_free(&b);

    bundle_file evil = {.path = "../evil.txt", .data = "x", .len = 1};
    bundle e = {.files = &evil, .nfiles = 1};
    CHECK(bundle_extract(&e, at("out/four"), err, sizeof err) == -1 && access(at("out/evil.txt"), F_OK) != 0,
          "extract checks paths again");
}

static void spec_cache(void)
{
    char err[256] = "", dir[1024] = "", dir2[1024] = "";
    size_t n = 0;
    bundle b;
    setenv("PARROT_CACHE", at("cache"), 1);
    const char *extra[] = {"data/.secret", NULL};
    bundle_build(&b, at("scn/main.lua"), extra, 0, err, sizeof err);
    CHECK(bundle_cache_get(b.hash, dir, sizeof dir) == 0, "an empty cache has nothing");
    char **list = bundle_cache_list(&n);
    CHECK(list && n == 0 && list[0] == NULL, "an empty cache lists nothing");
    free(list);
    CHECK(bundle_cache_put(&b, dir, sizeof dir, err, sizeof err) == 0, "put: %s", err);
    CHECK(!strcmp(dir, at("cache/bundles/%s", b.hash)), "cached under PARROT_CACHE/bundles/HASH");
    CHECK(access(at("cache/bundles/%s/data/.secret", b.hash), F_OK) == 0, "hidden extras are cached too");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 1 && !strcmp(dir, dir2), "get finds it");
    CHECK(bundle_cache_put(&b, dir2, sizeof dir2, err, sizeof err) == 0 && !strcmp(dir, dir2),
          "put again reuses it");
    list = bundle_cache_list(&n);
    CHECK(list && n == 1 && !strcmp(list[0], b.hash) && list[1] == NULL, "list shows the hash");
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
    CHECK(bundle_cache_get("../../etc", dir2, sizeof dir2) == 0, "get refuses a name that is not a hash");

    /* in memory, a bundle is found without reading its files; one changed on disk is put back */
    PUT(at("cache/bundles/%s/main.lua", b.hash), "return 2\n");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 1 && !strcmp(dir, dir2),
          "a changed cached file: the copy in memory still serves the bundle");
    size_t len = 0;
    char *back = slurp(at("cache/bundles/%s/main.lua", b.hash), &len);
    CHECK(back && len == 9 && !memcmp(back, "return 1\n", 9), "and the file is written out again");
    free(back);
    PUT(at("cache/bundles/%s/extra.txt", b.hash), "x");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 1 &&
              access(at("cache/bundles/%s/extra.txt", b.hash), F_OK) != 0,
          "an added file is removed the same way");

    /* on disk only (a fresh process): the files are read and must hash to the name */
    bundle_cache_forget();
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 1 && !strcmp(dir, dir2),
          "a fresh process finds it on disk");
    bundle_cache_forget();
    PUT(at("cache/bundles/%s/main.lua", b.hash), "return 2\n");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 0, "a corrupted cached file: get says no");
    CHECK(!is_dir(dir), "and removes the corrupted bundle");
    CHECK(bundle_cache_put(&b, dir, sizeof dir, err, sizeof err) == 0 &&
              bundle_cache_get(b.hash, dir2, sizeof dir2) == 1,
          "put restores it");
    bundle_cache_forget();
    PUT(at("cache/bundles/%s/extra.txt", b.hash), "x");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 0 && !is_dir(dir),
          "an added file counts as corruption");
    bundle_free(&b);
    bundle_cache_forget();
    unsetenv("PARROT_CACHE");
}

/* A worker whose disk cache cannot be written still runs: the bundle stays in memory and its
 * files go to a private temporary directory, removed once the bundle leaves memory. */
static void spec_cache_unwritable(void)
{
    char err[256] = "", dir[1024] = "", dir2[1024] = "";
    size_t n = 0;
    bundle b;
    setenv("PARROT_CACHE", "/proc/nope", 1);
    setenv("TMPDIR", tmp, 1);
    bundle_build(&b, at("scn/main.lua"), NULL, 0, err, sizeof err);
    CHECK(bundle_cache_put(&b, dir, sizeof dir, err, sizeof err) == 0, "put with an unwritable cache: %s",
          err);
    CHECK(!strncmp(dir, at("parrot-bundle-"), strlen(at("parrot-bundle-"))),
          "the files are in a temporary directory: %s", dir);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "which only its owner can read");
    CHECK(access(at("%s/main.lua", dir + strlen(tmp) + 1), R_OK) == 0, "and holds the scenario");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 1 && !strcmp(dir, dir2), "get finds it in memory");
    char **list = bundle_cache_list(&n);
    CHECK(list && n == 1 && !strcmp(list[0], b.hash), "list shows it (HELLO tells the queen)");
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
    bundle_cache_forget();
    CHECK(!is_dir(dir), "the temporary directory goes with the copy in memory");
    CHECK(bundle_cache_get(b.hash, dir2, sizeof dir2) == 0, "and then the bundle is no longer cached");
    bundle_free(&b);
    unsetenv("TMPDIR");
    unsetenv("PARROT_CACHE");
}

/* Symlinks are followed, so what the scenario reads through them travels to the workers; those
 * that cannot be followed fail the build on the queen, naming the link. */
static void spec_symlinks(void)
{
    char err[256] = "";
    bundle b;
    PUT(at("ln/main.lua"), "return 1\n");
    PUT(at("ln/real/users.csv"), "id\n1\n");
    PUT(at("shared/data.csv"), "id\n7\n");
    symlink(at("shared/data.csv"), at("ln/data.csv"));
    symlink("main.lua", at("ln/again.lua"));
    symlink("real", at("ln/latest"));
    CHECK(bundle_build(&b, at("ln/main.lua"), NULL, 0, err, sizeof err) == 0, "build with symlinks: %s", err);
    const char *want[] = {"again.lua", "data.csv", "latest/users.csv", "main.lua", "real/users.csv"};
    int same = b.nfiles == 5;
    for (size_t i = 0; same && i < 5; i++)
        same = !strcmp(b.files[i].path, want[i]);
    CHECK(same, "links to files and to directories inside go in under the link's name (%zu files)", b.nfiles);
    CHECK(same && b.files[1].len == 5 && !memcmp(b.files[1].data, "id\n7\n", 5),
          "a link to a file outside carries that file's content");
    bundle_free(&b);

    symlink("nowhere.csv", at("ln/broken.csv"));
    CHECK(bundle_build(&b, at("ln/main.lua"), NULL, 0, err, sizeof err) == -1 &&
              strstr(err, "./broken.csv") && strstr(err, "leads nowhere"),
          "a dangling link is refused, naming it: %s", err);
    unlink(at("ln/broken.csv"));

    symlink(at("shared"), at("ln/ext"));
    CHECK(bundle_build(&b, at("ln/main.lua"), NULL, 0, err, sizeof err) == -1 && strstr(err, "./ext") &&
              strstr(err, "outside the scenario directory"),
          "a link to a directory outside is refused: %s", err);
    unlink(at("ln/ext"));

    symlink("..", at("ln/real/up"));
    CHECK(bundle_build(&b, at("ln/main.lua"), NULL, 0, err, sizeof err) == -1 &&
              strstr(err, "/up leads back") && strstr(err, "loop"),
          "a link back to a directory it is in is a loop, refused: %s", err);
    unlink(at("ln/real/up"));
    CHECK(bundle_build(&b, at("ln/main.lua"), NULL, 0, err, sizeof err) == 0,
          "and the directory builds again");
    bundle_free(&b);

    /* a cache directory holds what was sent: a link there is not followed (it breaks the hash) */
    CHECK(bundle_read_dir(&b, at("ln"), err, sizeof err) == 0 && b.nfiles == 2,
          "bundle_read_dir leaves symlinks out (%zu files)", b.nfiles);
    bundle_free(&b);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/parrot-bundle-test.XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    spec_build();
    spec_symlinks();
    spec_hash();
    spec_limit();
    spec_wire();
    spec_hostile_paths();
    spec_extract();
    spec_cache();
    spec_cache_unwritable();
    rm_rf(tmp);
    return check_done();
}
