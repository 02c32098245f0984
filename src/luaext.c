/* luaext: Lua C functions for scenarios. Every function that holds a C resource while it pushes
 * to Lua either keeps that resource in a __gc'ed userdata (so a Lua memory error cannot leak it)
 * or frees it before raising an error: errors are computed into C buffers first. */
#include "luaext.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <lauxlib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <mbedtls/base64.h>
#include <mbedtls/md5.h>
#include <mbedtls/sha256.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RE_CACHE_MAX 256              /* compiled patterns kept per lua_State */
#define RE_BUCKETS 512                /* hash buckets of the cache (power of two) */
#define XPATH_DOC_MAX (64u << 20)     /* documents over 64 MB are refused */
#define RANDOM_MAX ((size_t)64 << 20) /* random_string / urandom_bytes limit */
#define STATE_MT "parrot.luaext.state"
#define XPATH_MT "parrot.luaext.xpath"

/* One compiled pattern. `pat` and `code`/`md` are owned by the entry (freed on eviction). */
typedef struct re_entry {
    char *pat;
    size_t len;
    uint32_t hash;
    int next;        /* next entry in the same bucket, -1 at the end */
    uint32_t groups; /* capture groups in the pattern */
    uint64_t used;   /* cache clock at the last use, for LRU eviction */
    pcre2_code *code;
    pcre2_match_data *md;
} re_entry;

/* Per-lua_State data, in a userdata anchored in the registry and given to every function as
 * upvalue 1. Its __gc frees the cache, the match context and the JIT stack. */
typedef struct luaext_state {
    re_entry re[RE_CACHE_MAX];
    int bucket[RE_BUCKETS]; /* first entry index, -1 when empty */
    int n;                  /* entries in use (re[0..n-1]) */
    uint64_t clock;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    uint64_t rng[4]; /* xoshiro256** */
} luaext_state;

static char registry_key; /* its address keys the state in the registry */

static luaext_state *state_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* ---- regular expressions ---- */

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void re_entry_free(re_entry *e)
{
    pcre2_match_data_free(e->md);
    pcre2_code_free(e->code);
    free(e->pat);
    memset(e, 0, sizeof *e);
}

static void re_unlink(luaext_state *st, int i)
{
    int *p = &st->bucket[st->re[i].hash & (RE_BUCKETS - 1)];
    while (*p != i)
        p = &st->re[*p].next;
    *p = st->re[i].next;
}

/* Frees the least recently used entry and returns its (now empty) slot. */
static int re_evict(luaext_state *st)
{
    int lru = 0;
    for (int i = 1; i < st->n; i++)
        if (st->re[i].used < st->re[lru].used) lru = i;
    re_unlink(st, lru);
    re_entry_free(&st->re[lru]);
    return lru;
}

/* Compiles `pat` into a free cache slot. Returns the entry, or NULL with the message in `err`. */
static re_entry *re_compile(luaext_state *st, const char *pat, size_t len, uint32_t h, char *err,
                            size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, 0, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "%s at offset %zu", (char *)msg, (size_t)off);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter is the fallback */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    char *copy = malloc(len + 1);
    if (!md || !copy) {
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        free(copy);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(copy, pat, len);
    copy[len] = 0;
    int i = st->n < RE_CACHE_MAX ? st->n++ : re_evict(st);
    re_entry *e = &st->re[i];
    uint32_t groups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
    *e = (re_entry){.pat = copy, .len = len, .hash = h, .groups = groups, .code = re, .md = md};
    e->next = st->bucket[h & (RE_BUCKETS - 1)];
    st->bucket[h & (RE_BUCKETS - 1)] = i;
    return e;
}

/* The compiled form of the pattern at stack index `idx`, from the cache or compiled now.
 * Raises "bad regular expression 'PAT': MESSAGE at offset N" (nothing is held at that point). */
static re_entry *re_get(lua_State *L, luaext_state *st, int idx)
{
    size_t len;
    const char *pat = luaL_checklstring(L, idx, &len);
    uint32_t h = hash_bytes(pat, len);
    re_entry *e = NULL;
    for (int i = st->bucket[h & (RE_BUCKETS - 1)]; i >= 0; i = st->re[i].next)
        if (st->re[i].hash == h && st->re[i].len == len && memcmp(st->re[i].pat, pat, len) == 0) {
            e = &st->re[i];
            break;
        }
    if (!e) {
        char err[320];
        e = re_compile(st, pat, len, h, err, sizeof err);
        if (!e) luaL_error(L, "bad regular expression '%s': %s", pat, err);
    }
    e->used = ++st->clock;
    return e;
}

/* Runs one match from byte `start`. Returns 1 on a match, 0 on none; raises on a matcher error
 * (match limit, JIT stack), naming the pattern. */
static int re_exec(lua_State *L, luaext_state *st, re_entry *e, const char *s, size_t len, size_t start)
{
    int rc = pcre2_match(e->code, (PCRE2_SPTR)s, len, start, 0, e->md, st->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return luaL_error(L, "regular expression '%s' failed: %s", e->pat, (char *)msg);
    }
    return 1;
}

/* Pushes group `g` of the last match ("" when the group did not take part). */
static void re_push_group(lua_State *L, re_entry *e, const char *s, uint32_t g)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
    if (g >= pcre2_get_ovector_count(e->md) || ov[2 * g] == PCRE2_UNSET)
        lua_pushliteral(L, "");
    else
        lua_pushlstring(L, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* re_match(subject, pattern [, init]) -> captures..., the whole match, or nil. `init` is 1-based
 * and may be negative, as in string.find. */
static int l_re_match(lua_State *L)
{
    luaext_state *st = state_of(L);
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    re_entry *e = re_get(L, st, 2);
    lua_Integer init = luaL_optinteger(L, 3, 1);
    if (init < 0) init = (lua_Integer)len + init + 1;
    if (init < 1) init = 1;
    if ((size_t)init > len + 1 || !re_exec(L, st, e, s, len, (size_t)init - 1)) {
        lua_pushnil(L);
        return 1;
    }
    if (e->groups == 0) {
        re_push_group(L, e, s, 0);
        return 1;
    }
    luaL_checkstack(L, (int)e->groups, "too many captures");
    for (uint32_t g = 1; g <= e->groups; g++)
        re_push_group(L, e, s, g);
    return (int)e->groups;
}

/* re_gmatch_all(subject, pattern) -> array of every match's first capture (or whole match).
 * An empty match moves on by one byte, as string.gmatch does. */
static int l_re_gmatch_all(lua_State *L)
{
    luaext_state *st = state_of(L);
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    re_entry *e = re_get(L, st, 2);
    lua_newtable(L);
    size_t pos = 0;
    int n = 0;
    while (pos <= len && re_exec(L, st, e, s, len, pos)) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        re_push_group(L, e, s, e->groups ? 1 : 0);
        lua_rawseti(L, -2, ++n);
        pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    }
    return 1;
}

/* ---- XPath ---- */

/* Everything xpath() holds while it pushes results; freed by xpath_guard_free, explicitly on
 * the normal path and by __gc when a Lua error unwinds past it. */
typedef struct xpath_guard {
    xmlXPathCompExprPtr comp;
    xmlDocPtr doc;
    xmlXPathContextPtr ctx;
    xmlXPathObjectPtr obj;
    xmlChar *str;
} xpath_guard;

static void xpath_guard_release(xpath_guard *g)
{
    xmlFree(g->str);
    xmlXPathFreeObject(g->obj);
    xmlXPathFreeContext(g->ctx);
    xmlFreeDoc(g->doc);
    xmlXPathFreeCompExpr(g->comp);
    memset(g, 0, sizeof *g);
}

static int xpath_guard_gc(lua_State *L)
{
    xpath_guard_release(luaL_checkudata(L, 1, XPATH_MT));
    return 0;
}

static void xml_silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void xml_silent_structured(void *ctx, xmlErrorPtr err)
{
    (void)ctx;
    (void)err;
}

/* Appends `s` (owned by g->str, freed here) to the table at the top, under the guard. */
static void xpath_push_owned(lua_State *L, xpath_guard *g, int *n)
{
    lua_pushstring(L, g->str ? (const char *)g->str : "");
    xmlFree(g->str);
    g->str = NULL;
    lua_rawseti(L, -2, ++*n);
}

static void xpath_push_result(lua_State *L, xpath_guard *g)
{
    xmlXPathObjectPtr o = g->obj;
    int n = 0;
    switch (o->type) {
    case XPATH_NODESET:
        for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr; i++) {
            g->str = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
            xpath_push_owned(L, g, &n);
        }
        break;
    case XPATH_STRING:
    case XPATH_NUMBER:
    case XPATH_BOOLEAN:
        g->str = xmlXPathCastToString(o);
        xpath_push_owned(L, g, &n);
        break;
    default:
        break;
    }
}

/* xpath(doc, expr [, html]) -> array of strings. A bad expression raises "bad xpath 'EXPR'";
 * a document that does not parse gives {}. */
static int l_xpath(lua_State *L)
{
    size_t len;
    const char *doc = luaL_checklstring(L, 1, &len);
    const char *expr = luaL_checkstring(L, 2);
    int html = lua_toboolean(L, 3);
    if (len > XPATH_DOC_MAX)
        return luaL_error(L, "xpath: a document of %d MB is over the 64 MB limit", (int)(len >> 20));
    xpath_guard *g = lua_newuserdata(L, sizeof *g);
    memset(g, 0, sizeof *g);
    luaL_getmetatable(L, XPATH_MT);
    lua_setmetatable(L, -2);
    g->comp = xmlXPathCompile((const xmlChar *)expr);
    if (!g->comp) return luaL_error(L, "bad xpath '%s'", expr); /* the guard is garbage now */
    if (html)
        g->doc =
            htmlReadMemory(doc, (int)len, NULL, NULL,
                           HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER | HTML_PARSE_NONET);
    else
        g->doc = xmlReadMemory(doc, (int)len, NULL, NULL,
                               XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    lua_newtable(L);
    int bad = 0;
    if (g->doc && (g->ctx = xmlXPathNewContext(g->doc)) != NULL) {
        g->ctx->error = xml_silent_structured;
        g->obj = xmlXPathCompiledEval(g->comp, g->ctx);
        if (g->obj)
            xpath_push_result(L, g);
        else
            bad = 1; /* compiled, but cannot run: an unknown function or variable */
    }
    xpath_guard_release(g);
    if (bad) return luaL_error(L, "bad xpath '%s'", expr);
    lua_remove(L, -2);
    return 1;
}

/* ---- codecs ---- */

static int l_url_encode(lua_State *L)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            luaL_addchar(&b, (char)c);
        } else if (c == ' ') {
            luaL_addchar(&b, '+');
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* url_decode(s): '+' is a space, %XX a byte; a malformed % escape stays as it is. */
static int l_url_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            luaL_addchar(&b, ' ');
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            luaL_addchar(&b, (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2])));
            i += 2;
        } else {
            luaL_addchar(&b, s[i]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        luaL_addchar(b, (char)cp);
    } else if (cp < 0x800) {
        luaL_addchar(b, (char)(0xC0 | cp >> 6));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        luaL_addchar(b, (char)(0xE0 | cp >> 12));
        luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        luaL_addchar(b, (char)(0xF0 | cp >> 18));
        luaL_addchar(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Decodes the entity at s[0] == '&' (up to `len` bytes) into `b`. Returns the bytes consumed,
 * or 0 when it is not an entity we know (the caller copies the '&'). */
static size_t html_entity(luaL_Buffer *b, const char *s, size_t len)
{
    static const struct {
        const char *name, *text;
    } named[] = {
        {"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", "\xC2\xA0"},
    };
    const char *semi = memchr(s, ';', len < 16 ? len : 16);
    if (!semi) return 0;
    size_t n = (size_t)(semi - s) + 1;
    if (s[1] == '#') {
        int hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
        size_t i = hex ? 3 : 2;
        unsigned long cp = 0;
        if (i == n - 1) return 0;
        for (; i < n - 1; i++) {
            int d = hex ? hexval(s[i]) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
            if (d < 0) return 0;
            if (cp <= 0x10FFFF) cp = cp * (hex ? 16 : 10) + (unsigned long)d;
        }
        add_utf8(b, cp);
        return n;
    }
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
        if (n - 1 == strlen(named[k].name) && memcmp(s + 1, named[k].name, n - 1) == 0) {
            luaL_addstring(b, named[k].text);
            return n;
        }
    return 0;
}

/* html_unescape(s): &amp; &lt; &gt; &quot; &apos; &nbsp; &#NNN; &#xHH; -> UTF-8; anything else
 * is kept as written. */
static int l_html_unescape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        size_t used = s[i] == '&' ? html_entity(&b, s + i, len - i) : 0;
        if (used)
            i += used - 1;
        else
            luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
    return 1;
}

static int l_base64_encode(lua_State *L)
{
    size_t len, olen = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *out = lua_newuserdata(L, cap); /* scratch, collected with the call */
    if (mbedtls_base64_encode(out, cap, &olen, s, len) != 0)
        return luaL_error(L, "base64_encode: string too long");
    lua_pushlstring(L, (const char *)out, olen);
    return 1;
}

/* base64_decode(s) -> bytes, or nil and a message when `s` is not base64. */
static int l_base64_decode(lua_State *L)
{
    size_t len, olen = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    size_t cap = 3 * (len / 4 + 1) + 1;
    unsigned char *out = lua_newuserdata(L, cap);
    if (mbedtls_base64_decode(out, cap, &olen, s, len) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64");
        return 2;
    }
    lua_pushlstring(L, (const char *)out, olen);
    return 1;
}

static void push_hex(lua_State *L, const unsigned char *d, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char out[64];
    for (size_t i = 0; i < n; i++)
        out[2 * i] = hex[d[i] >> 4], out[2 * i + 1] = hex[d[i] & 15];
    lua_pushlstring(L, out, 2 * n);
}

static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    unsigned char d[32];
    mbedtls_sha256_ret(s, len, d, 0);
    push_hex(L, d, sizeof d);
    return 1;
}

static int l_md5_hex(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    unsigned char d[16];
    mbedtls_md5_ret(s, len, d);
    push_hex(L, d, sizeof d);
    return 1;
}

/* ---- randomness ---- */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return r;
}

/* Fills `buf` from the kernel CSPRNG. Returns 0 or -errno. */
static int fill_urandom(void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0 && errno != EINTR) return -errno;
        if (r > 0) got += (size_t)r;
    }
    return 0;
}

static size_t check_count(lua_State *L, int idx)
{
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0 && (size_t)n <= RANDOM_MAX, idx, "must be between 0 and 64 MB");
    return (size_t)n;
}

/* ---- counters shared by the threads of the process ---- */

/* Named counters every lua_State of the process sees (Tsung's user ids and its file positions
 * shared by all users). A fixed table: past SHARED_MAX names the oldest name is dropped. */
#define SHARED_MAX 256
#define SHARED_KEY_MAX 512
static struct {
    char key[SHARED_KEY_MAX];
    int64_t value;
} shared[SHARED_MAX];
static int shared_n, shared_next; /* names in use, the slot the next new name takes */
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

/* shared_add(key, n) -> the counter's new value (a new counter starts at 0). */
static int l_shared_add(lua_State *L)
{
    size_t kl;
    const char *key = luaL_checklstring(L, 1, &kl);
    int64_t n = (int64_t)luaL_optinteger(L, 2, 1), v = 0;
    luaL_argcheck(L, kl < SHARED_KEY_MAX, 1, "key longer than 511 bytes");
    pthread_mutex_lock(&shared_mu);
    int i = 0;
    while (i < shared_n && strcmp(shared[i].key, key))
        i++;
    if (i == shared_n) { /* a new name: a free slot, or the oldest one's */
        i = shared_n < SHARED_MAX ? shared_n++ : shared_next;
        shared_next = (i + 1) % SHARED_MAX;
        memcpy(shared[i].key, key, kl + 1);
        shared[i].value = 0;
    }
    v = shared[i].value += n;
    pthread_mutex_unlock(&shared_mu);
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

static int l_random_string(lua_State *L)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    luaext_state *st = state_of(L);
    size_t n = check_count(L, 1);
    char *out = lua_newuserdata(L, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        out[i] = alnum[(rng_next(st->rng) >> 32) * 62 >> 32];
    lua_pushlstring(L, out, n);
    return 1;
}

static int l_urandom_bytes(lua_State *L)
{
    size_t n = check_count(L, 1);
    char *out = lua_newuserdata(L, n ? n : 1);
    int rc = fill_urandom(out, n);
    if (rc < 0) return luaL_error(L, "urandom_bytes: %s", strerror(-rc));
    lua_pushlstring(L, out, n);
    return 1;
}

/* ---- the state and the table ---- */

static int state_gc(lua_State *L)
{
    luaext_state *st = luaL_checkudata(L, 1, STATE_MT);
    for (int i = 0; i < st->n; i++)
        re_entry_free(&st->re[i]);
    st->n = 0;
    pcre2_match_context_free(st->mctx);
    pcre2_jit_stack_free(st->jit);
    st->mctx = NULL;
    st->jit = NULL;
    return 0;
}

static void xml_init_once(void) { xmlInitParser(); }

/* Pushes this state's luaext_state, creating it (and the metatables) on first use. */
static void state_push(lua_State *L)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    lua_pushlightuserdata(L, &registry_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1)) return;
    lua_pop(L, 1);
    pthread_once(&once, xml_init_once);
    /* libxml2 keeps these per thread; each load thread opens its own state, so set them here. */
    xmlSetGenericErrorFunc(NULL, xml_silent);
    xmlSetStructuredErrorFunc(NULL, xml_silent_structured);
    if (luaL_newmetatable(L, XPATH_MT)) {
        lua_pushcfunction(L, xpath_guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaext_state *st = lua_newuserdata(L, sizeof *st);
    memset(st, 0, sizeof *st);
    for (int i = 0; i < RE_BUCKETS; i++)
        st->bucket[i] = -1;
    if (luaL_newmetatable(L, STATE_MT)) {
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    st->mctx = pcre2_match_context_create(NULL);
    st->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (st->mctx && st->jit) pcre2_jit_stack_assign(st->mctx, NULL, st->jit);
    if (fill_urandom(st->rng, sizeof st->rng) < 0 || (st->rng[0] | st->rng[1] | st->rng[2] | st->rng[3]) == 0)
        st->rng[0] = (uint64_t)(uintptr_t)st ^ 0x9E3779B97F4A7C15ull, st->rng[1] = 1;
    lua_pushlightuserdata(L, &registry_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

int luaext_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"re_match", l_re_match},
        {"re_gmatch_all", l_re_gmatch_all},
        {"xpath", l_xpath},
        {"url_encode", l_url_encode},
        {"url_decode", l_url_decode},
        {"html_unescape", l_html_unescape},
        {"base64_encode", l_base64_encode},
        {"base64_decode", l_base64_decode},
        {"sha256_hex", l_sha256_hex},
        {"md5_hex", l_md5_hex},
        {"random_string", l_random_string},
        {"urandom_bytes", l_urandom_bytes},
        {"shared_add", l_shared_add},
        {NULL, NULL},
    };
    luaL_checkstack(L, 4, "luaext_open");
    state_push(L);
    lua_createtable(L, 0, (int)(sizeof fns / sizeof fns[0]) - 1);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    lua_remove(L, -2);
    return 1;
}
