/* test_wire: every message type survives encode/decode, and decoding refuses what a hostile or
 * newer peer could send (wrong version, type, shapes, sizes, truncation, garbage) with a reason,
 * never a crash or a leak. */
#include "check.h"
#include "wire.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int list_eq(char **a, size_t na, char **b, size_t nb)
{
    if (!a || !b) return !a && !b;
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i])) return 0;
    return a[na] == NULL && b[nb] == NULL;
}

static int msg_eq(const wire_msg *a, const wire_msg *b)
{
    return a->type == b->type && str_eq(a->id, b->id) && a->threads == b->threads &&
           list_eq(a->hashes, a->nhashes, b->hashes, b->nhashes) && a->epoch == b->epoch &&
           a->run == b->run && a->seq == b->seq && str_eq(a->hash, b->hash) &&
           str_eq(a->version, b->version) && str_eq(a->script, b->script) && a->data_len == b->data_len &&
           (!a->data) == (!b->data) && (!a->data || !memcmp(a->data, b->data, a->data_len)) &&
           a->slot == b->slot && a->nslots == b->nslots && a->elapsed == b->elapsed &&
           a->heartbeat == b->heartbeat && str_eq(a->setup, b->setup) && str_eq(a->text, b->text) &&
           a->code == b->code && str_eq(a->url, b->url) && str_eq(a->method, b->method) &&
           str_eq(a->body, b->body) && str_eq(a->proxy, b->proxy) &&
           list_eq(a->env, a->nenv, b->env, b->nenv) &&
           list_eq(a->headers, a->nheaders, b->headers, b->nheaders) &&
           list_eq(a->resolve, a->nresolve, b->resolve, b->nresolve) && a->vus == b->vus &&
           a->iterations == b->iterations && a->dump == b->dump && a->rate == b->rate &&
           a->duration == b->duration && a->insecure == b->insecure && a->first == b->first &&
           a->count == b->count;
}

static int is_zero(const wire_msg *m)
{
    static const wire_msg zero;
    return !memcmp(m, &zero, sizeof zero);
}

/* Encodes `in`, decodes it back and compares. */
static void round_trip(const wire_msg *in)
{
    char *buf, err[128];
    size_t len;
    wire_msg out;
    const char *name = wire_type_name(in->type);
    CHECK(wire_encode(in, &buf, &len) == 0, "%s encodes", name);
    int r = wire_decode(buf, len, &out, err, sizeof err);
    CHECK(r == 0, "%s decodes (%s)", name, r ? err : "ok");
    CHECK(r == 0 && msg_eq(in, &out), "%s comes back field for field", name);
    wire_msg_free(&out);
    CHECK(is_zero(&out), "%s: wire_msg_free leaves the message zeroed", name);
    free(buf);
}

static char *hashes[] = {"9f86d081884c7d659a2feaa0c55ad015", "2c26b46b68ffc68ff99b453c1d304134", NULL};
static char *env[] = {"BASE=https://shop.test", "TOKEN=s3cr=t", NULL};
static char *headers[] = {"X-Run: 42", "Accept: application/json", "User-Agent: parrot", NULL};
static char *resolve[] = {"shop.test:443:127.0.0.1", NULL};
static char *empty_list[] = {NULL};

static void test_round_trips(void)
{
    static const char snap[] = {'\x96', 0, 1, 0, 0, '\xff', 'a', 0, '\x00', 'z'};
    static const char bundle[] = "PBUNDLE\0\0\x01main.lua\0return 1\0";
    wire_msg ms[] = {
        {.type = WIRE_HELLO,
         .id = "worker-1.example",
         .threads = 8,
         .hashes = hashes,
         .nhashes = 2,
         .epoch = 1717000000123ull},
        {.type = WIRE_HELLO, .id = "fresh", .threads = 1, .hashes = empty_list, .nhashes = 0},
        {.type = WIRE_WELCOME, .epoch = 1717000000123ull, .heartbeat = 1.5},
        {.type = WIRE_REHELLO},
        {.type = WIRE_HEARTBEAT, .epoch = UINT64_MAX},
        {.type = WIRE_BUNDLE_GET, .hash = hashes[0]},
        {.type = WIRE_BUNDLE, .hash = hashes[0], .data = (char *)bundle, .data_len = sizeof bundle},
        {.type = WIRE_HAVE, .hash = hashes[1]},
        {.type = WIRE_RUN,
         .epoch = 7,
         .run = 3,
         .hash = hashes[0],
         .version = "a1b2c3",
         .script = "shop.lua",
         .slot = 16,
         .nslots = 64,
         .elapsed = 12.25,
         .url = "https://shop.test/",
         .method = "POST",
         .body = "{\"sku\": 12}",
         .proxy = "http://127.0.0.1:3128",
         .env = env,
         .nenv = 2,
         .headers = headers,
         .nheaders = 3,
         .resolve = resolve,
         .nresolve = 1,
         .vus = 200,
         .iterations = 100000,
         .dump = 5,
         .rate = 1250.5,
         .duration = 600,
         .insecure = 1},
        {.type = WIRE_RELOAD, .run = 3, .hash = hashes[1], .version = "d4e5f6", .script = "shop.lua"},
        {.type = WIRE_SET_LOAD, .run = 3, .slot = 0, .nslots = 48},
        {.type = WIRE_PAUSE, .run = 3},
        {.type = WIRE_RESUME, .run = 3},
        {.type = WIRE_STOP, .run = 3, .code = 1},
        {.type = WIRE_HANDBRAKE},
        {.type = WIRE_STATS, .run = 3, .seq = 77, .data = (char *)snap, .data_len = sizeof snap},
        {.type = WIRE_STATS, .run = 3, .seq = 78, .data = "", .data_len = 0},
        {.type = WIRE_ACK, .run = 3, .seq = 77},
        {.type = WIRE_BYE},
        {.type = WIRE_SETUP, .run = 3, .setup = "{\"token\":\"abc\",\"ids\":[1,2,3]}"},
        {.type = WIRE_DONE, .run = 3, .seq = 79, .code = -2},
        {.type = WIRE_LOG, .text = "shop.lua:12: checkout failed: \xc3\xa9t\xc3\xa9", .code = 1},
        {.type = WIRE_LOG, .text = ""},
        {.type = WIRE_ROWS, .run = 3, .text = "users.csv#1", .code = 2, .first = 4096, .count = 64},
        {.type = WIRE_RUN,
         .slot = -5,
         .nslots = INT64_MAX,
         .threads = INT64_MIN,
         .elapsed = -0.5,
         .rate = 1e-300},
    };
    int covered[WIRE_TYPES] = {0};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        round_trip(&ms[i]);
        covered[ms[i].type] = 1;
    }
    int all = 1;
    for (int t = 1; t < WIRE_TYPES; t++)
        all &= covered[t];
    CHECK(all, "every message type was round-tripped");
}

static void test_type_names(void)
{
    int ok = 1;
    for (int t = 1; t < WIRE_TYPES; t++)
        ok &= strcmp(wire_type_name(t), "?") != 0;
    CHECK(ok, "every type has a name");
    CHECK(!strcmp(wire_type_name(WIRE_HELLO), "HELLO") && !strcmp(wire_type_name(WIRE_LOG), "LOG") &&
              !strcmp(wire_type_name(WIRE_BUNDLE_GET), "BUNDLE_GET"),
          "names read like the enum");
    CHECK(!strcmp(wire_type_name(0), "?") && !strcmp(wire_type_name(WIRE_TYPES), "?") &&
              !strcmp(wire_type_name(-1), "?"),
          "unknown types are '?'");
}

static void test_encode_refuses(void)
{
    char *buf = (char *)1;
    size_t len = 1;
    wire_msg m = {.type = 0};
    CHECK(wire_encode(&m, &buf, &len) == -1 && !buf && !len, "type 0 is not encoded");
    m.type = WIRE_TYPES;
    CHECK(wire_encode(&m, &buf, &len) == -1, "an unknown type is not encoded");
    char **big = calloc(WIRE_MAX_LIST + 2, sizeof *big);
    for (int i = 0; i <= WIRE_MAX_LIST; i++)
        big[i] = "h";
    m = (wire_msg){.type = WIRE_HELLO, .hashes = big, .nhashes = WIRE_MAX_LIST + 1};
    CHECK(wire_encode(&m, &buf, &len) == -1, "a list over WIRE_MAX_LIST is not encoded");
    m.nhashes = WIRE_MAX_LIST;
    CHECK(wire_encode(&m, &buf, &len) == 0, "a list of WIRE_MAX_LIST entries is encoded");
    free(buf);
    free(big);
}

/* ---- hand-built frames ---- */

typedef struct frame {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} frame;

static void frame_init(frame *f, int64_t version, int64_t type, uint32_t nfields)
{
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int64(&f->pk, version);
    msgpack_pack_int64(&f->pk, type);
    msgpack_pack_map(&f->pk, nfields);
}

static void key(frame *f, const char *k) { msgpack_pack_str_with_body(&f->pk, k, strlen(k)); }

static void str(frame *f, const char *s, size_t n) { msgpack_pack_str_with_body(&f->pk, s, n); }

/* Decodes the frame (then destroys it); returns wire_decode's result, the message in *m. */
static int frame_decode(frame *f, wire_msg *m, char *err, size_t errlen)
{
    int r = wire_decode(f->sb.data, f->sb.size, m, err, errlen);
    msgpack_sbuffer_destroy(&f->sb);
    return r;
}

/* Expect a refusal whose reason contains `want` and an empty message. */
static void refused(frame *f, const char *want, const char *what)
{
    wire_msg m;
    char err[160];
    int r = frame_decode(f, &m, err, sizeof err);
    CHECK(r == -1 && strstr(err, want) && is_zero(&m), "%s is refused: \"%s\"", what, err);
}

static void test_version_and_type(void)
{
    frame f;
    frame_init(&f, 7, WIRE_HELLO, 0);
    refused(&f, "unknown protocol version 7", "version 7");
    frame_init(&f, -1, WIRE_HELLO, 0);
    refused(&f, "unknown protocol version -1", "version -1");
    frame_init(&f, WIRE_VERSION, 99, 0);
    refused(&f, "unknown message type 99", "type 99");
    frame_init(&f, WIRE_VERSION, 0, 0);
    refused(&f, "unknown message type 0", "type 0");
    frame_init(&f, WIRE_VERSION, WIRE_TYPES, 0);
    refused(&f, "unknown message type", "type WIRE_TYPES");

    msgpack_sbuffer_init(&f.sb);
    msgpack_packer_init(&f.pk, &f.sb, msgpack_sbuffer_write);
    msgpack_pack_array(&f.pk, 3);
    msgpack_pack_int(&f.pk, WIRE_VERSION);
    msgpack_pack_int(&f.pk, WIRE_PAUSE);
    msgpack_pack_array(&f.pk, 0);
    refused(&f, "body is not a map", "a body that is an array");

    msgpack_sbuffer_init(&f.sb);
    msgpack_packer_init(&f.pk, &f.sb, msgpack_sbuffer_write);
    msgpack_pack_map(&f.pk, 0);
    refused(&f, "not a parrot message", "a bare map");

    msgpack_sbuffer_init(&f.sb);
    msgpack_packer_init(&f.pk, &f.sb, msgpack_sbuffer_write);
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_int(&f.pk, WIRE_VERSION);
    msgpack_pack_int(&f.pk, WIRE_PAUSE);
    refused(&f, "parts", "a frame of 2 parts");

    /* a newer protocol may change the frame's shape: the version is judged first */
    msgpack_sbuffer_init(&f.sb);
    msgpack_packer_init(&f.pk, &f.sb, msgpack_sbuffer_write);
    msgpack_pack_array(&f.pk, 5);
    for (int i = 0; i < 5; i++)
        msgpack_pack_int(&f.pk, 2);
    refused(&f, "unknown protocol version 2", "a version-2 frame of another shape");
}

static void test_field_types(void)
{
    frame f;
    frame_init(&f, WIRE_VERSION, WIRE_SET_LOAD, 1);
    key(&f, "slot");
    str(&f, "3", 1);
    refused(&f, "field 'slot' is not an integer", "a string slot");

    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 2);
    key(&f, "id");
    str(&f, "w", 1);
    key(&f, "id");
    msgpack_pack_int(&f.pk, 5);
    refused(&f, "field 'id' is not a string", "an integer id");

    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 1);
    key(&f, "id");
    str(&f, "w\0x", 3);
    refused(&f, "field 'id' holds a NUL byte", "an id with a NUL");

    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 1);
    key(&f, "hashes");
    msgpack_pack_array(&f.pk, 2);
    str(&f, "ab", 2);
    msgpack_pack_int(&f.pk, 1);
    refused(&f, "field 'hashes' entry 2 is not a string", "a list with an integer entry");

    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 1);
    key(&f, "hashes");
    str(&f, "ab", 2);
    refused(&f, "field 'hashes' is not a list", "a string where a list belongs");

    frame_init(&f, WIRE_VERSION, WIRE_RUN, 1);
    key(&f, "headers");
    msgpack_pack_array(&f.pk, 1);
    str(&f, "X: \0", 4);
    refused(&f, "field 'headers' entry 1 holds a NUL byte", "a list entry with a NUL");

    frame_init(&f, WIRE_VERSION, WIRE_WELCOME, 1);
    key(&f, "heartbeat");
    msgpack_pack_nil(&f.pk);
    refused(&f, "field 'heartbeat' is not a number", "a nil heartbeat");

    frame_init(&f, WIRE_VERSION, WIRE_RUN, 1);
    key(&f, "insecure");
    msgpack_pack_int(&f.pk, 1);
    refused(&f, "field 'insecure' is not a boolean", "an integer insecure");

    frame_init(&f, WIRE_VERSION, WIRE_ACK, 1);
    key(&f, "seq");
    msgpack_pack_int(&f.pk, -1);
    refused(&f, "field 'seq' is negative", "a negative seq");

    frame_init(&f, WIRE_VERSION, WIRE_RUN, 1);
    key(&f, "vus");
    msgpack_pack_uint64(&f.pk, UINT64_MAX);
    refused(&f, "field 'vus' is out of range", "vus over INT64_MAX");

    frame_init(&f, WIRE_VERSION, WIRE_STATS, 1);
    key(&f, "data");
    msgpack_pack_array(&f.pk, 0);
    refused(&f, "field 'data' is not binary data", "an array as data");

    /* a failure after earlier fields were decoded frees them (ASan watches) */
    frame_init(&f, WIRE_VERSION, WIRE_RUN, 4);
    key(&f, "url");
    str(&f, "http://x/", 9);
    key(&f, "env");
    msgpack_pack_array(&f.pk, 1);
    str(&f, "A=1", 3);
    key(&f, "data");
    msgpack_pack_bin_with_body(&f.pk, "xyz", 3);
    key(&f, "rate");
    str(&f, "fast", 4);
    refused(&f, "field 'rate' is not a number", "a late bad field after owned ones");
}

static void test_lenient_numbers(void)
{
    frame f;
    wire_msg m;
    char err[128];
    frame_init(&f, WIRE_VERSION, WIRE_RUN, 5);
    key(&f, "rate");
    msgpack_pack_int(&f.pk, 50);
    key(&f, "duration");
    msgpack_pack_int(&f.pk, -3);
    key(&f, "elapsed");
    msgpack_pack_float(&f.pk, 0.25f);
    key(&f, "slot");
    msgpack_pack_int(&f.pk, -7);
    key(&f, "nslots");
    msgpack_pack_uint8(&f.pk, 200);
    int r = frame_decode(&f, &m, err, sizeof err);
    CHECK(r == 0 && m.rate == 50 && m.duration == -3 && m.elapsed == 0.25 && m.slot == -7 && m.nslots == 200,
          "floats accept integers and float32, integers accept either sign (%s)", r ? err : "ok");
    wire_msg_free(&m);

    frame_init(&f, WIRE_VERSION, WIRE_BUNDLE, 1);
    key(&f, "data");
    str(&f, "a\0b", 3);
    r = frame_decode(&f, &m, err, sizeof err);
    CHECK(r == 0 && m.data_len == 3 && !memcmp(m.data, "a\0b", 3) && m.data[3] == '\0',
          "data accepts a str with NULs too, and is NUL-terminated past its length");
    wire_msg_free(&m);
}

static void test_unknown_and_duplicate_keys(void)
{
    frame f;
    wire_msg m;
    char err[128];
    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 6);
    key(&f, "colour");
    msgpack_pack_map(&f.pk, 1);
    key(&f, "nested");
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_nil(&f.pk);
    msgpack_pack_double(&f.pk, 1.0);
    key(&f, "id");
    str(&f, "w1", 2);
    msgpack_pack_int(&f.pk, 17); /* a key that is not a string */
    msgpack_pack_true(&f.pk);
    key(&f, "threadz");
    str(&f, "typo", 4);
    key(&f, "threads");
    msgpack_pack_int(&f.pk, 4);
    key(&f, "futur");
    msgpack_pack_ext_with_body(&f.pk, "\1\2", 2, 5);
    int r = frame_decode(&f, &m, err, sizeof err);
    CHECK(r == 0 && m.type == WIRE_HELLO && str_eq(m.id, "w1") && m.threads == 4,
          "unknown keys (any value, any key type) are ignored (%s)", r ? err : "ok");
    wire_msg_free(&m);

    frame_init(&f, WIRE_VERSION, WIRE_HELLO, 6);
    key(&f, "id");
    str(&f, "first", 5);
    key(&f, "hashes");
    msgpack_pack_array(&f.pk, 1);
    str(&f, "aa", 2);
    key(&f, "id");
    str(&f, "second", 6);
    key(&f, "hashes");
    msgpack_pack_array(&f.pk, 2);
    str(&f, "bb", 2);
    str(&f, "cc", 2);
    key(&f, "data");
    msgpack_pack_bin_with_body(&f.pk, "1", 1);
    key(&f, "data");
    msgpack_pack_bin_with_body(&f.pk, "22", 2);
    r = frame_decode(&f, &m, err, sizeof err);
    CHECK(r == 0 && str_eq(m.id, "second") && m.nhashes == 2 && str_eq(m.hashes[0], "bb") &&
              str_eq(m.hashes[1], "cc") && !m.hashes[2] && m.data_len == 2,
          "a duplicate key: the last one wins (and the first is freed)");
    wire_msg_free(&m);
}

static void test_list_sizes(void)
{
    for (int n = WIRE_MAX_LIST; n <= WIRE_MAX_LIST + 1; n++) {
        frame f;
        wire_msg m;
        char err[128];
        frame_init(&f, WIRE_VERSION, WIRE_RUN, 1);
        key(&f, "resolve");
        msgpack_pack_array(&f.pk, n);
        for (int i = 0; i < n; i++)
            str(&f, "h:80:127.0.0.1", 14);
        int r = frame_decode(&f, &m, err, sizeof err);
        if (n == WIRE_MAX_LIST)
            CHECK(r == 0 && m.nresolve == (size_t)n && !m.resolve[n], "a list of %d entries decodes", n);
        else
            CHECK(r == -1 && strstr(err, "field 'resolve' has 4097 entries") && is_zero(&m),
                  "a list of %d entries is refused: \"%s\"", n, err);
        wire_msg_free(&m);
    }
}

static void test_hostile_sizes(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *what;
    } cases[] = {
        {"\xdd\xff\xff\xff\xff", 5, "an array promising 4G items"},
        {"\x93\x01\x01\xdf\xff\xff\xff\xff", 8, "a body map promising 4G pairs"},
        {"\x93\x01\x01\x81\xa6hashes\xdd\x7f\xff\xff\xff", 15, "a list promising 2G entries"},
        {"\x93\x01\x01\x81\xa4"
         "data\xc6\xff\xff\xff\xf0",
         11, "a bin promising 4 GB"},
        {"\x93\x01\x01\x81\xa2id\xdb\x00\x01\x00\x00", 10, "a str promising 64 KB"},
        {"\xc1", 1, "the never-used byte 0xc1"},
        {"", 0, "an empty buffer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wire_msg m;
        char err[128] = "";
        int r = wire_decode(cases[i].bytes, cases[i].len, &m, err, sizeof err);
        CHECK(r == -1 && *err && is_zero(&m), "%s is refused: \"%s\"", cases[i].what, err);
    }
    /* nesting deeper than libmsgpack-c's stack */
    unsigned char deep[200];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0xc0;
    wire_msg m;
    char err[128] = "";
    int r = wire_decode((char *)deep, sizeof deep, &m, err, sizeof err);
    CHECK(r == -1 && is_zero(&m), "199 nested arrays are refused: \"%s\"", err);
    /* many tiny items: more than the cap, though each is a plausible one byte */
    size_t n = 70000;
    unsigned char *many = malloc(n + 5);
    many[0] = 0xdd;
    many[1] = 0;
    many[2] = (unsigned char)(n >> 16);
    many[3] = (unsigned char)(n >> 8);
    many[4] = (unsigned char)n;
    memset(many + 5, 0xc0, n);
    r = wire_decode((char *)many, n + 5, &m, err, sizeof err);
    CHECK(r == -1 && strstr(err, "too many items"), "70,000 nils are refused: \"%s\"", err);
    free(many);
    CHECK(wire_decode("x", WIRE_MAX_FRAME + 1ull, &m, err, sizeof err) == -1 && strstr(err, "over the limit"),
          "a frame over WIRE_MAX_FRAME is refused before it is read: \"%s\"", err);
    CHECK(wire_decode(NULL, 0, &m, NULL, 0) == -1, "a NULL buffer with no err buffer is refused");
}

static wire_msg sample_run(void)
{
    return (wire_msg){.type = WIRE_RUN,
                      .epoch = 9,
                      .run = 2,
                      .hash = hashes[0],
                      .version = "v1",
                      .script = "s.lua",
                      .slot = 3,
                      .nslots = 12,
                      .elapsed = 0.5,
                      .data = "\0\1\2",
                      .data_len = 3,
                      .env = env,
                      .nenv = 2,
                      .headers = headers,
                      .nheaders = 3,
                      .vus = 10,
                      .rate = 2.5,
                      .insecure = 1};
}

static void test_truncation_and_trailing(void)
{
    wire_msg in = sample_run(), m;
    char *buf, err[128];
    size_t len;
    CHECK(wire_encode(&in, &buf, &len) == 0, "a RUN encodes (%zu bytes)", len);
    int all = 1;
    for (size_t cut = 0; cut < len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees any over-read */
        memcpy(copy, buf, cut);
        int r = wire_decode(copy, cut, &m, err, sizeof err);
        if (r != -1 || !is_zero(&m) || !*err) {
            all = 0;
            printf("# cut at %zu: r=%d err=%s\n", cut, r, err);
        }
        free(copy);
    }
    CHECK(all, "every truncation (0..%zu bytes) is refused with a reason", len - 1);

    char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = '\xc0';
    int r = wire_decode(longer, len + 1, &m, err, sizeof err);
    CHECK(r == -1 && strstr(err, "trailing") && is_zero(&m), "a trailing byte is refused: \"%s\"", err);
    free(longer);
    free(buf);
}

/* xorshift64*: a fixed seed makes failures reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

static void test_random_bytes(void)
{
    unsigned char buf[256];
    wire_msg m;
    char err[128];
    int ok = 1;
    for (int i = 0; i < 20000; i++) {
        size_t len = rnd() % sizeof buf;
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)rnd();
        if (i % 2) buf[0] = 0x93; /* half of them start like a frame, to get further in */
        int r = wire_decode((char *)buf, len, &m, err, sizeof err);
        if (r == 0)
            wire_msg_free(&m);
        else
            ok &= is_zero(&m);
    }
    CHECK(ok, "20,000 random buffers decode or are refused, never crash");

    /* mutations of a valid frame reach the field checks */
    wire_msg in = sample_run();
    char *enc;
    size_t len;
    wire_encode(&in, &enc, &len);
    int decoded = 0;
    for (int i = 0; i < 20000; i++) {
        char *copy = malloc(len);
        memcpy(copy, enc, len);
        for (int k = 0, n = 1 + (int)(rnd() % 4); k < n; k++)
            copy[rnd() % len] = (char)rnd();
        int r = wire_decode(copy, len, &m, err, sizeof err);
        if (r == 0)
            decoded++;
        else
            ok &= is_zero(&m);
        wire_msg_free(&m);
        free(copy);
    }
    CHECK(ok, "20,000 mutated RUN frames decode or are refused, never crash (%d decoded)", decoded);
    free(enc);
}

/* Each decode failure falls into a kind, so a queen or worker can log each kind once and count
 * the rest; the numbered message types are those a worker re-sends until acknowledged. */
static void test_error_kinds(void)
{
    static const struct {
        const unsigned char *bytes;
        size_t len;
        const char *kind;
    } cases[] = {
        {(const unsigned char *)"\x93\x07\x01\x80", 4, "version"},             /* protocol version 7 */
        {(const unsigned char *)"\x93\x01\x63\x80", 4, "type"},                /* message type 99 */
        {(const unsigned char *)"\x93\x01\x01\x81\xa4slot\xa1x", 11, "field"}, /* slot: "x" */
        {(const unsigned char *)"\xc1junk", 5, "encoding"},                    /* not msgpack */
        {(const unsigned char *)"\x93\x01", 2, "encoding"},                    /* truncated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wire_msg m;
        char err[160];
        int r = wire_decode((const char *)cases[i].bytes, cases[i].len, &m, err, sizeof err);
        CHECK(r == -1 && !strcmp(wire_err_kind(err), cases[i].kind), "\"%s\" is of kind %s (got %s)", err,
              cases[i].kind, wire_err_kind(err));
    }
    char err[160];
    wire_msg m;
    CHECK(wire_decode("x", WIRE_MAX_FRAME + 1ull, &m, err, sizeof err) == -1 &&
              !strcmp(wire_err_kind(err), "size"),
          "an oversized message is of kind size");
    unsigned seen = 0;
    CHECK(wire_err_once(&seen, "version") == 1, "the first version error is logged");
    CHECK(wire_err_once(&seen, "version") == 0, "the second one is only counted");
    CHECK(wire_err_once(&seen, "frames") == 1 && wire_err_once(&seen, "field") == 1,
          "other kinds are logged once each");
    CHECK(wire_err_once(&seen, "frames") == 0 && wire_err_once(&seen, "field") == 0,
          "... and then only counted");
    CHECK(WIRE_IS_NUMBERED(WIRE_STATS) && WIRE_IS_NUMBERED(WIRE_DONE) && WIRE_IS_NUMBERED(WIRE_SETUP) &&
              WIRE_IS_NUMBERED(WIRE_HAVE) && WIRE_IS_NUMBERED(WIRE_STOP),
          "STATS, HAVE, SETUP, DONE and a worker's STOP share the worker's numbering");
    CHECK(!WIRE_IS_NUMBERED(WIRE_HEARTBEAT) && !WIRE_IS_NUMBERED(WIRE_HELLO) && !WIRE_IS_NUMBERED(WIRE_LOG),
          "heartbeats, HELLO and LOG are not numbered");
}

int main(void)
{
    test_round_trips();
    test_type_names();
    test_encode_refuses();
    test_version_and_type();
    test_field_types();
    test_lenient_numbers();
    test_unknown_and_duplicate_keys();
    test_list_sizes();
    test_hostile_sizes();
    test_truncation_and_trailing();
    test_random_bytes();
    test_error_kinds();
    return check_done();
}
