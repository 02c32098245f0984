/* wire: the queen<->worker messages as msgpack frames [version, type, {field: value}]. One table
 * of fields drives encoding, decoding and freeing; decoding checks sizes before libmsgpack-c
 * allocates anything, then checks every field's type and content. */
#include "wire.h"
#include "mpguard.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame may hold at most this many msgpack items in all. A real frame has a few dozen plus the
 * entries of four lists (4 * WIRE_MAX_LIST); the cap leaves room for fields a newer peer adds
 * while keeping libmsgpack-c's zone (24 bytes per item) near 1.5 MB for a hostile frame. */
#define WIRE_MAX_ITEMS 65536u

static const char *const type_names[WIRE_TYPES] = {
    [WIRE_HELLO] = "HELLO",
    [WIRE_WELCOME] = "WELCOME",
    [WIRE_REHELLO] = "REHELLO",
    [WIRE_HEARTBEAT] = "HEARTBEAT",
    [WIRE_BUNDLE_GET] = "BUNDLE_GET",
    [WIRE_BUNDLE] = "BUNDLE",
    [WIRE_HAVE] = "HAVE",
    [WIRE_RUN] = "RUN",
    [WIRE_RELOAD] = "RELOAD",
    [WIRE_SET_LOAD] = "SET_LOAD",
    [WIRE_PAUSE] = "PAUSE",
    [WIRE_RESUME] = "RESUME",
    [WIRE_STOP] = "STOP",
    [WIRE_HANDBRAKE] = "HANDBRAKE",
    [WIRE_STATS] = "STATS",
    [WIRE_ACK] = "ACK",
    [WIRE_BYE] = "BYE",
    [WIRE_SETUP] = "SETUP",
    [WIRE_DONE] = "DONE",
    [WIRE_LOG] = "LOG",
    [WIRE_ROWS] = "ROWS",
};

const char *wire_type_name(int type)
{
    return type > 0 && type < WIRE_TYPES && type_names[type] ? type_names[type] : "?";
}

/* ---- the field table ---- */

enum kind {
    K_STR,  /* char *, NUL-free msgpack str */
    K_DATA, /* char * + size_t length, msgpack bin (str accepted) */
    K_LIST, /* char ** (NULL-terminated) + size_t count, array of str */
    K_I64,  /* int64_t */
    K_U64,  /* uint64_t */
    K_F64,  /* double (integers accepted) */
    K_BOOL, /* int, encoded only when true */
};

typedef struct field {
    const char *name; /* the key on the wire, equal to the struct member's name */
    enum kind kind;
    size_t off, noff; /* member offset; length/count member offset for K_DATA and K_LIST */
} field;

/* clang-format off */
#define F(member, kind) {#member, kind, offsetof(wire_msg, member), 0}
#define FN(member, kind, n) {#member, kind, offsetof(wire_msg, member), offsetof(wire_msg, n)}
static const field fields[] = {
    F(id, K_STR),          F(threads, K_I64),    FN(hashes, K_LIST, nhashes),
    F(epoch, K_U64),       F(run, K_U64),        F(seq, K_U64),
    F(hash, K_STR),        F(version, K_STR),    F(script, K_STR),
    FN(data, K_DATA, data_len), F(slot, K_I64),  F(nslots, K_I64),
    F(elapsed, K_F64),     F(heartbeat, K_F64),  F(setup, K_STR),
    F(text, K_STR),        F(code, K_I64),       F(url, K_STR),
    F(method, K_STR),      F(body, K_STR),       F(proxy, K_STR),
    FN(env, K_LIST, nenv), FN(headers, K_LIST, nheaders), FN(resolve, K_LIST, nresolve),
    F(vus, K_I64),         F(iterations, K_I64), F(dump, K_I64),
    F(rate, K_F64),        F(duration, K_F64),   F(insecure, K_BOOL),
    F(first, K_I64),       F(count, K_I64),
};
/* clang-format on */
#define NFIELDS (sizeof fields / sizeof *fields)
#undef F
#undef FN

#define AT(m, f, T) ((T *)(void *)((char *)(m) + (f)->off))
#define AT_N(m, f) ((size_t *)(void *)((char *)(m) + (f)->noff))

static void free_list(char **list)
{
    if (!list) return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

static void field_free(wire_msg *m, const field *f)
{
    if (f->kind == K_STR) {
        free(*AT(m, f, char *));
        *AT(m, f, char *) = NULL;
    } else if (f->kind == K_DATA) {
        free(*AT(m, f, char *));
        *AT(m, f, char *) = NULL;
        *AT_N(m, f) = 0;
    } else if (f->kind == K_LIST) {
        free_list(*AT(m, f, char **));
        *AT(m, f, char **) = NULL;
        *AT_N(m, f) = 0;
    }
}

void wire_msg_free(wire_msg *m)
{
    if (!m) return;
    for (size_t i = 0; i < NFIELDS; i++)
        field_free(m, &fields[i]);
    memset(m, 0, sizeof *m);
}

/* ---- encoding ---- */

/* Entries of a list: its count when set, else up to the NULL terminator; never past a NULL. */
static size_t list_len(char *const *list, size_t n)
{
    size_t k = 0;
    while ((n == 0 || k < n) && list[k])
        k++;
    return k;
}

static int field_is_set(const wire_msg *m, const field *f)
{
    switch (f->kind) {
    case K_STR:
    case K_DATA:
        return *AT(m, f, char *const) != NULL;
    case K_LIST:
        return *AT(m, f, char **const) != NULL;
    case K_I64:
        return *AT(m, f, const int64_t) != 0;
    case K_U64:
        return *AT(m, f, const uint64_t) != 0;
    case K_F64:
        return *AT(m, f, const double) != 0;
    case K_BOOL:
        return *AT(m, f, const int) != 0;
    }
    return 0;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return n > WIRE_MAX_FRAME ? -1 : msgpack_pack_str_with_body(pk, s, n);
}

static int pack_field(msgpack_packer *pk, const wire_msg *m, const field *f)
{
    int r = pack_str(pk, f->name);
    switch (f->kind) {
    case K_STR:
        return r | pack_str(pk, *AT(m, f, char *const));
    case K_DATA: {
        size_t n = *AT_N(m, f);
        if (n > WIRE_MAX_FRAME) return -1;
        return r | msgpack_pack_bin_with_body(pk, *AT(m, f, char *const), n);
    }
    case K_LIST: {
        char *const *list = *AT(m, f, char **const);
        size_t n = list_len(list, *AT_N(m, f));
        if (n > WIRE_MAX_LIST) return -1;
        r |= msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            r |= pack_str(pk, list[i]);
        return r;
    }
    case K_I64:
        return r | msgpack_pack_int64(pk, *AT(m, f, const int64_t));
    case K_U64:
        return r | msgpack_pack_uint64(pk, *AT(m, f, const uint64_t));
    case K_F64:
        return r | msgpack_pack_double(pk, *AT(m, f, const double));
    case K_BOOL:
        return r | msgpack_pack_true(pk);
    }
    return -1;
}

int wire_encode(const wire_msg *m, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (!m || m->type <= 0 || m->type >= WIRE_TYPES) return -1;
    size_t nset = 0;
    for (size_t i = 0; i < NFIELDS; i++)
        nset += field_is_set(m, &fields[i]);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int r = msgpack_pack_array(&pk, 3);
    r |= msgpack_pack_uint64(&pk, WIRE_VERSION);
    r |= msgpack_pack_uint64(&pk, (uint64_t)m->type);
    r |= msgpack_pack_map(&pk, nset);
    for (size_t i = 0; i < NFIELDS && r == 0; i++)
        if (field_is_set(m, &fields[i])) r |= pack_field(&pk, m, &fields[i]);
    if (r || sb.size > WIRE_MAX_FRAME) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *outlen = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    return 0;
}

/* ---- decoding ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
        *v = (int64_t)o->via.u64;
    else
        return -1;
    return 0;
}

/* A NUL-terminated copy of a str/bin payload. */
static char *copy_raw(const char *p, uint32_t n)
{
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int has_nul(const msgpack_object *o)
{
    return o->via.str.size && memchr(o->via.str.ptr, '\0', o->via.str.size);
}

/* An array of NUL-free str into a fresh NULL-terminated list. */
static int decode_list(const msgpack_object *o, const char *name, char ***out, size_t *n, char *err,
                       size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) return fail(err, errlen, "field '%s' is not a list", name);
    uint32_t size = o->via.array.size;
    if (size > WIRE_MAX_LIST)
        return fail(err, errlen, "field '%s' has %u entries (at most %d)", name, size, WIRE_MAX_LIST);
    char **list = calloc((size_t)size + 1, sizeof *list);
    if (!list) return fail(err, errlen, "out of memory");
    for (uint32_t i = 0; i < size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR || has_nul(e)) {
            free_list(list);
            return fail(err, errlen, "field '%s' entry %u %s", name, i + 1,
                        e->type != MSGPACK_OBJECT_STR ? "is not a string" : "holds a NUL byte");
        }
        if (!(list[i] = copy_raw(e->via.str.ptr, e->via.str.size))) {
            free_list(list);
            return fail(err, errlen, "out of memory");
        }
    }
    *out = list;
    *n = size;
    return 0;
}

/* One known field's value into *m, replacing (and freeing) an earlier value of a duplicate key. */
static int decode_field(wire_msg *m, const field *f, const msgpack_object *o, char *err, size_t errlen)
{
    switch (f->kind) {
    case K_STR:
        if (o->type != MSGPACK_OBJECT_STR) return fail(err, errlen, "field '%s' is not a string", f->name);
        if (has_nul(o)) return fail(err, errlen, "field '%s' holds a NUL byte", f->name);
        /* fallthrough */
    case K_DATA: {
        if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)
            return fail(err, errlen, "field '%s' is not binary data", f->name);
        /* str and bin share one layout in msgpack_object */
        char *s = copy_raw(o->via.str.ptr, o->via.str.size);
        if (!s) return fail(err, errlen, "out of memory");
        field_free(m, f);
        *AT(m, f, char *) = s;
        if (f->kind == K_DATA) *AT_N(m, f) = o->via.str.size;
        return 0;
    }
    case K_LIST: {
        char **list = NULL;
        size_t n = 0;
        if (decode_list(o, f->name, &list, &n, err, errlen)) return -1;
        field_free(m, f);
        *AT(m, f, char **) = list;
        *AT_N(m, f) = n;
        return 0;
    }
    case K_I64:
        if (get_i64(o, AT(m, f, int64_t)) == 0) return 0;
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            return fail(err, errlen, "field '%s' is out of range", f->name);
        return fail(err, errlen, "field '%s' is not an integer", f->name);
    case K_U64:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *AT(m, f, uint64_t) = o->via.u64;
            return 0;
        }
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return fail(err, errlen, "field '%s' is negative", f->name);
        return fail(err, errlen, "field '%s' is not an integer", f->name);
    case K_F64: {
        double *d = AT(m, f, double);
        if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
            *d = o->via.f64;
        else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            *d = (double)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *d = (double)o->via.i64;
        else
            return fail(err, errlen, "field '%s' is not a number", f->name);
        return 0;
    }
    case K_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return fail(err, errlen, "field '%s' is not a boolean", f->name);
        *AT(m, f, int) = o->via.boolean ? 1 : 0;
        return 0;
    }
    return fail(err, errlen, "field '%s' has an unknown kind", f->name);
}

static const field *field_find(const msgpack_object *key)
{
    if (key->type != MSGPACK_OBJECT_STR) return NULL; /* not ours: ignored like unknown keys */
    for (size_t i = 0; i < NFIELDS; i++)
        if (strlen(fields[i].name) == key->via.str.size &&
            memcmp(fields[i].name, key->via.str.ptr, key->via.str.size) == 0)
            return &fields[i];
    return NULL;
}

static int decode_frame(const msgpack_object *root, wire_msg *m, char *err, size_t errlen)
{
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 1)
        return fail(err, errlen, "not a parrot message (expected an array)");
    const msgpack_object *a = root->via.array.ptr;
    if (a[0].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return fail(err, errlen, "unknown protocol version %lld", (long long)a[0].via.i64);
    if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(err, errlen, "not a parrot message (no protocol version)");
    if (a[0].via.u64 != WIRE_VERSION)
        return fail(err, errlen, "unknown protocol version %llu", (unsigned long long)a[0].via.u64);
    if (root->via.array.size != 3)
        return fail(err, errlen, "message has %u parts (expected 3)", root->via.array.size);
    if (a[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return fail(err, errlen, "unknown message type %lld", (long long)a[1].via.i64);
    if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(err, errlen, "message type is not an integer");
    if (a[1].via.u64 < 1 || a[1].via.u64 >= WIRE_TYPES)
        return fail(err, errlen, "unknown message type %llu", (unsigned long long)a[1].via.u64);
    if (a[2].type != MSGPACK_OBJECT_MAP) return fail(err, errlen, "message body is not a map");
    m->type = (int)a[1].via.u64;
    const msgpack_object_map *map = &a[2].via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const field *f = field_find(&map->ptr[i].key);
        if (f && decode_field(m, f, &map->ptr[i].val, err, errlen)) return -1;
    }
    return 0;
}

int wire_decode(const char *buf, size_t len, wire_msg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (err && errlen) err[0] = '\0';
    if (!buf) return fail(err, errlen, "no message");
    if (len > WIRE_MAX_FRAME)
        return fail(err, errlen, "message of %zu bytes is over the limit (%u)", len, WIRE_MAX_FRAME);
    const char *why = mpguard_check((const unsigned char *)buf, len, WIRE_MAX_ITEMS);
    if (why) return fail(err, errlen, "%s", why);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int r;
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        r = fail(err, errlen, "malformed msgpack");
    else
        r = decode_frame(&u.data, m, err, errlen);
    msgpack_unpacked_destroy(&u);
    if (r) wire_msg_free(m);
    return r;
}

const char *wire_err_kind(const char *err)
{
    if (!err || !*err) return "encoding";
    if (strstr(err, "protocol version") || !strncmp(err, "not a parrot message", 20)) return "version";
    if (strstr(err, "message type") || strstr(err, " parts ") || strstr(err, "body is not")) return "type";
    if (!strncmp(err, "field ", 6)) return "field";
    if (strstr(err, "over the limit") || !strcmp(err, "no message")) return "size";
    return "encoding";
}

int wire_err_once(unsigned *seen, const char *kind)
{
    static const char *const kinds[] = {"size", "encoding", "version", "type", "field", "frames"};
    unsigned bit = 1u << (sizeof kinds / sizeof *kinds); /* anything else shares one bit */
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kind && !strcmp(kind, kinds[i])) bit = 1u << i;
    if (*seen & bit) return 0;
    *seen |= bit;
    return 1;
}
