/* stats: log-linear latency histograms with lazily allocated chunks, named entries behind an
 * open-addressing index, global counters, and a versioned msgpack encoding whose decoder trusts
 * nothing. */
#include "stats.h"
#include "mpguard.h"

#include <math.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram layout. Chunk 0 holds the values 0..1023 one per slot; chunk c >= 1 holds
 * [1024 << (c-1), 2048 << (c-1)) in 1024 slots of width 1 << (c-1). So values are exact below
 * 2048 and within 1/1024 above, and 23 chunks reach 2^32 > STATS_HIST_MAX_US. A chunk is
 * allocated when the first value lands in it, as uint32_t counters, widened to uint64_t the
 * first time one of its counters would overflow. */
#define HIST_CHUNK_BITS 10
#define HIST_CHUNK_LEN (1u << HIST_CHUNK_BITS)
#define HIST_CHUNKS 23
#define HIST_SLOTS (HIST_CHUNKS * HIST_CHUNK_LEN)

#define STATS_WIRE_VERSION 2 /* 1 is still decoded (see the encoding) */
#define STATS_NGLOBALS 12    /* fields of the encoded globals array */

struct stats_hist {
    void *chunk[HIST_CHUNKS];          /* owned; NULL until used; uint32_t[1024] or uint64_t[1024] */
    uint64_t chunk_count[HIST_CHUNKS]; /* values per chunk, so percentiles skip whole chunks */
    uint32_t wide;                     /* bit c set: chunk[c] holds uint64_t counters */
    uint64_t count, min, max, sum;     /* min is UINT64_MAX while empty */
};

/* What stats_decode_merge_into keeps between snapshots, owned by its scratch `stats` (`plan`):
 * - the slots its check pass found, in order, each HIST's after an entry saying how many, so the
 *   passes that add them into destinations read no msgpack and check nothing again (at most one
 *   entry per item of a snapshot; a list grown past PLAN_KEEP is freed after its snapshot);
 * - the msgpack zone a snapshot is unpacked into, cleared and reused: its first chunk holds a
 *   typical snapshot's objects, so unpacking one allocates nothing. */
typedef struct planned_slot {
    uint64_t n;    /* its count; in a HIST's first entry, how many slots follow */
    uint32_t slot; /* chunk * 1024 + index */
} planned_slot;

#define PLAN_ZONE_CHUNK (64 * 1024)
#define PLAN_KEEP (64 * 1024) /* planned slots kept between snapshots; a bigger list is freed */

typedef struct hist_job hist_job;

typedef struct slot_plan {
    planned_slot *v; /* owned */
    size_t len, cap;
    size_t at;       /* the next slot to add */
    int all_derived; /* the snapshot left `all` out */
    int queued;      /* `job` waits to be added (add_hist) */
    struct hist_job {
        stats_hist *into, *also; /* also: NULL, or `all` when the snapshot left it out */
        const planned_slot *v;
        size_t n;
        uint64_t count, sum, min, max;
    } job;
    msgpack_zone zone;
} slot_plan;

/* The name -> id lookup behind stats.index: linear probing, power-of-two capacity. */
typedef struct {
    uint32_t hash;
    int id; /* -1: empty slot */
} name_slot;

typedef struct {
    name_slot *slots; /* owned, `cap` of them, at most half used */
    size_t cap, used;
    size_t per_kind[STATS_KINDS]; /* distinct names per kind, for folding */
} name_index;

static atomic_int fold_warned_process; /* the folding warning is printed once per process */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fputs("parrot: out of memory\n", stderr);
        abort();
    }
    return p;
}

static const char *const err_names[ERR_KINDS] = {
    "none",      "dns",      "connect", "tls",    "timeout", "reset",     "protocol",
    "too_large", "fd_limit", "proxy",   "status", "script",  "cancelled", "url",
};

const char *stats_err_name(int kind) { return kind >= 0 && kind < ERR_KINDS ? err_names[kind] : "unknown"; }

/* ---- histogram ---- */

static inline uint64_t hist_clamp(uint64_t us)
{
    return us < STATS_HIST_MIN_US ? STATS_HIST_MIN_US : us > STATS_HIST_MAX_US ? STATS_HIST_MAX_US : us;
}

/* Chunk of a clamped value: the position of its highest bit, counted from bit 9. */
static inline unsigned hist_chunk_of(uint64_t v)
{
    return (unsigned)(63 - __builtin_clzll(v | (HIST_CHUNK_LEN - 1))) - (HIST_CHUNK_BITS - 1);
}

static inline unsigned hist_shift(unsigned c) { return c ? c - 1 : 0; }

static inline unsigned hist_slot_of(uint64_t v, unsigned c)
{
    return (unsigned)(v >> hist_shift(c)) & (HIST_CHUNK_LEN - 1);
}

static uint64_t hist_lowest(unsigned c, unsigned i)
{
    return c ? (uint64_t)(HIST_CHUNK_LEN + i) << (c - 1) : i;
}

static uint64_t hist_highest(unsigned c, unsigned i)
{
    return hist_lowest(c, i) + ((uint64_t)1 << hist_shift(c)) - 1;
}

static inline uint64_t hist_get(const stats_hist *h, unsigned c, unsigned i)
{
    if (!h->chunk[c]) return 0;
    if (h->wide >> c & 1) return ((const uint64_t *)h->chunk[c])[i];
    return ((const uint32_t *)h->chunk[c])[i];
}

static void hist_widen(stats_hist *h, unsigned c)
{
    uint32_t *narrow = h->chunk[c];
    uint64_t *wide = xcalloc(HIST_CHUNK_LEN, sizeof *wide);
    for (unsigned i = 0; i < HIST_CHUNK_LEN; i++)
        wide[i] = narrow[i];
    free(narrow);
    h->chunk[c] = wide;
    h->wide |= 1u << c;
}

/* Ask for slot i of chunk c in the cache (where it is while the chunk's counters are 32-bit, as
 * they are but for counts past 4 billion). A chunk not allocated yet gives an address near 0: a
 * prefetch never faults (and a branch here would make the compiler drop the prefetches). */
static inline void hist_prefetch(const stats_hist *h, unsigned c, unsigned i)
{
    __builtin_prefetch((const void *)((uintptr_t)h->chunk[c] + (uintptr_t)i * sizeof(uint32_t)));
}

/* Add n to slot i of chunk c; the only place that allocates counters. */
static inline void hist_add(stats_hist *h, unsigned c, unsigned i, uint64_t n)
{
    if (!h->chunk[c]) h->chunk[c] = xcalloc(HIST_CHUNK_LEN, sizeof(uint32_t));
    h->chunk_count[c] += n;
    if (!(h->wide >> c & 1)) {
        uint32_t *p = h->chunk[c];
        if (n <= UINT32_MAX - p[i]) {
            p[i] += (uint32_t)n;
            return;
        }
        hist_widen(h, c);
    }
    ((uint64_t *)h->chunk[c])[i] += n;
}

stats_hist *stats_hist_new(void)
{
    stats_hist *h = xcalloc(1, sizeof *h);
    h->min = UINT64_MAX;
    return h;
}

void stats_hist_free(stats_hist *h)
{
    if (!h) return;
    for (unsigned c = 0; c < HIST_CHUNKS; c++)
        free(h->chunk[c]);
    free(h);
}

/* Zero the counts but keep the chunks, so the next interval records without allocating. */
void stats_hist_reset(stats_hist *h)
{
    for (unsigned c = 0; c < HIST_CHUNKS; c++) {
        if (!h->chunk_count[c]) continue;
        memset(h->chunk[c], 0, HIST_CHUNK_LEN * ((h->wide >> c & 1) ? 8 : 4));
        h->chunk_count[c] = 0;
    }
    h->count = h->sum = h->max = 0;
    h->min = UINT64_MAX;
}

void stats_hist_record_n(stats_hist *h, uint64_t us, uint64_t n)
{
    if (n == 0) return;
    us = hist_clamp(us);
    unsigned c = hist_chunk_of(us);
    hist_add(h, c, hist_slot_of(us, c), n);
    h->count += n;
    h->sum += us * n;
    if (us < h->min) h->min = us;
    if (us > h->max) h->max = us;
}

void stats_hist_record(stats_hist *h, uint64_t us) { stats_hist_record_n(h, us, 1); }

void stats_hist_merge(stats_hist *dst, const stats_hist *src)
{
    if (dst == src || src->count == 0) return;
    for (unsigned c = 0; c < HIST_CHUNKS; c++) {
        if (!src->chunk_count[c]) continue;
        for (unsigned i = 0; i < HIST_CHUNK_LEN; i++) {
            uint64_t n = hist_get(src, c, i);
            if (n) hist_add(dst, c, i, n);
        }
    }
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t stats_hist_count(const stats_hist *h) { return h->count; }
uint64_t stats_hist_min(const stats_hist *h) { return h->count ? h->min : 0; }
uint64_t stats_hist_max(const stats_hist *h) { return h->count ? h->max : 0; }
double stats_hist_mean(const stats_hist *h) { return h->count ? (double)h->sum / (double)h->count : 0; }

size_t stats_hist_memory(const stats_hist *h)
{
    size_t bytes = sizeof *h;
    for (unsigned c = 0; c < HIST_CHUNKS; c++)
        if (h->chunk[c]) bytes += HIST_CHUNK_LEN * ((h->wide >> c & 1) ? 8 : 4);
    return bytes;
}

/* The value where the cumulative count first reaches ceil(p% of count), reported as the
 * highest value of its slot, kept within [min, max]. */
uint64_t stats_hist_percentile(const stats_hist *h, double p)
{
    if (h->count == 0) return 0;
    if (!(p > 0)) return h->min; /* also NaN */
    if (p >= 100) return h->max;
    double t = ceil(p * (double)h->count / 100.0);
    uint64_t target = t < 1 ? 1 : t >= (double)h->count ? h->count : (uint64_t)t;
    uint64_t seen = 0;
    for (unsigned c = 0; c < HIST_CHUNKS; c++) {
        if (seen + h->chunk_count[c] < target) {
            seen += h->chunk_count[c];
            continue;
        }
        for (unsigned i = 0; i < HIST_CHUNK_LEN; i++) {
            seen += hist_get(h, c, i);
            if (seen < target) continue;
            uint64_t v = hist_highest(c, i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}

/* ---- names ---- */

/* Bytes of `name` used as the key: at most STATS_NAME_MAX, cut at a UTF-8 character boundary. */
static size_t name_len(const char *name)
{
    size_t n = strnlen(name, STATS_NAME_MAX + 1);
    if (n <= STATS_NAME_MAX) return n;
    n = STATS_NAME_MAX;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static uint32_t name_hash(const char *name, size_t len, int kind)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    h = (h ^ (uint32_t)kind) * 16777619u;
    return h ^ (h >> 15);
}

static int index_find(const stats *s, const char *name, size_t len, int kind, uint32_t hash)
{
    const name_index *x = s->index;
    for (size_t i = hash & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
        const name_slot *sl = &x->slots[i];
        if (sl->id < 0) return -1;
        if (sl->hash != hash) continue;
        const stats_entry *e = &s->entries[sl->id];
        if (e->kind == kind && strncmp(e->name, name, len) == 0 && e->name[len] == '\0') return sl->id;
    }
}

static void index_put(name_index *x, uint32_t hash, int id)
{
    size_t i = hash & (x->cap - 1);
    while (x->slots[i].id >= 0)
        i = (i + 1) & (x->cap - 1);
    x->slots[i] = (name_slot){.hash = hash, .id = id};
}

static void index_alloc(name_index *x, size_t cap)
{
    x->slots = xcalloc(cap, sizeof *x->slots);
    x->cap = cap;
    for (size_t i = 0; i < cap; i++)
        x->slots[i].id = -1;
}

static void index_grow(name_index *x)
{
    name_slot *old = x->slots;
    size_t oldcap = x->cap;
    index_alloc(x, oldcap * 2);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].id >= 0) index_put(x, old[i].hash, old[i].id);
    free(old);
}

static int kind_has_hist(int kind)
{
    return kind == STATS_REQUEST || kind == STATS_TRANSACTION || kind == STATS_TREND;
}

static int entry_add(stats *s, const char *name, size_t len, int kind, uint32_t hash)
{
    name_index *x = s->index;
    if (s->nentries >= (size_t)INT32_MAX) abort();
    if (s->nentries == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        stats_entry *e = realloc(s->entries, cap * sizeof *e);
        if (!e) abort();
        s->entries = e;
        s->cap = cap;
    }
    int id = (int)s->nentries++;
    stats_entry *e = &s->entries[id];
    *e = (stats_entry){.name = xcalloc(1, len + 1), .kind = kind};
    memcpy(e->name, name, len);
    if (kind_has_hist(kind)) e->hist = stats_hist_new();
    if ((x->used + 1) * 2 > x->cap) index_grow(x);
    index_put(x, hash, id);
    x->used++;
    x->per_kind[kind]++;
    return id;
}

static void warn_folding(stats *s)
{
    if (s->folded_warned) return;
    s->folded_warned = 1;
    if (atomic_exchange(&fold_warned_process, 1)) return;
    fprintf(stderr,
            "parrot: more than %zu distinct request names; the rest are counted as '%s' (name requests "
            "with {name = ...})\n",
            s->max_names, STATS_OTHER_NAME);
}

int stats_name_id(stats *s, const char *name, int kind)
{
    if (kind < 0 || kind >= STATS_KINDS) {
        fprintf(stderr, "parrot: stats_name_id: bad kind %d\n", kind);
        abort();
    }
    if (!name) name = STATS_OTHER_NAME;
    size_t len = name_len(name);
    uint32_t hash = name_hash(name, len, kind);
    int id = index_find(s, name, len, kind, hash);
    if (id >= 0) return id;
    const name_index *x = s->index;
    if (x->per_kind[kind] >= s->max_names && strcmp(name, STATS_OTHER_NAME) != 0) {
        warn_folding(s);
        return stats_name_id(s, STATS_OTHER_NAME, kind);
    }
    return entry_add(s, name, len, kind, hash);
}

/* ---- the stats set ---- */

stats *stats_new(void)
{
    stats *s = xcalloc(1, sizeof *s);
    name_index *x = xcalloc(1, sizeof *x);
    index_alloc(x, 64);
    s->index = x;
    s->max_names = STATS_NAMES_DEFAULT_MAX;
    s->all = stats_hist_new();
    return s;
}

static void samples_clear(stats *s)
{
    for (int k = 0; k < ERR_KINDS; k++) {
        free(s->err_sample[k]);
        s->err_sample[k] = NULL;
    }
}

void stats_free(stats *s)
{
    if (!s) return;
    samples_clear(s);
    for (size_t i = 0; i < s->nentries; i++) {
        free(s->entries[i].name);
        stats_hist_free(s->entries[i].hist);
    }
    free(s->entries);
    name_index *x = s->index;
    free(x->slots);
    free(x);
    stats_hist_free(s->all);
    slot_plan *plan = s->plan;
    if (plan) {
        free(plan->v);
        msgpack_zone_destroy(&plan->zone);
        free(plan);
    }
    free(s);
}

static void globals_zero(stats *s)
{
    memset(s->status, 0, sizeof s->status);
    memset(s->errors_by_kind, 0, sizeof s->errors_by_kind);
    s->requests = s->request_errors = s->bytes_in = s->bytes_out = 0;
    s->iterations = s->dropped = s->checks_passed = s->checks_failed = 0;
    s->vus = s->vus_max = 0;
    s->t_start_us = s->t_end_us = 0;
}

void stats_reset(stats *s)
{
    for (size_t i = 0; i < s->nentries; i++) {
        stats_entry *e = &s->entries[i];
        e->count = e->errors = 0;
        e->sum = e->min = e->max = 0;
        if (e->hist) stats_hist_reset(e->hist);
    }
    stats_hist_reset(s->all);
    globals_zero(s);
    samples_clear(s);
}

static inline stats_entry *entry_at(stats *s, int id)
{
    return id >= 0 && (size_t)id < s->nentries ? &s->entries[id] : NULL;
}

/* The hot path: no allocation once the name's and the value's chunks exist. */
void stats_request(stats *s, int id, uint64_t latency_us, int status, int err, uint64_t bytes_in,
                   uint64_t bytes_out)
{
    uint64_t failed = err != ERR_NONE;
    stats_entry *e = entry_at(s, id);
    if (e) {
        e->count++;
        e->errors += failed;
        if (e->hist) stats_hist_record(e->hist, latency_us);
    }
    s->requests++;
    s->request_errors += failed;
    stats_hist_record(s->all, latency_us);
    s->status[status >= 0 && status < 600 ? status : 0]++;
    if (failed && err > 0 && err < ERR_KINDS) s->errors_by_kind[err]++;
    s->bytes_in += bytes_in;
    s->bytes_out += bytes_out;
}

void stats_transaction(stats *s, int id, uint64_t duration_us, int failed)
{
    stats_entry *e = entry_at(s, id);
    if (!e) return;
    e->count++;
    if (failed) e->errors++;
    if (e->hist) stats_hist_record(e->hist, duration_us);
}

void stats_check(stats *s, int id, int ok)
{
    stats_entry *e = entry_at(s, id);
    if (ok) {
        if (e) e->count++;
        s->checks_passed++;
    } else {
        if (e) e->errors++;
        s->checks_failed++;
    }
}

void stats_counter_add(stats *s, int id, double v)
{
    stats_entry *e = entry_at(s, id);
    if (!e) return;
    e->sum += v;
    e->count++;
}

/* min and max of a trend entry that already holds `before` values, widened by [lo, hi]. */
static void trend_widen(stats_entry *e, uint64_t before, double lo, double hi)
{
    if (before == 0 || lo < e->min) e->min = lo;
    if (before == 0 || hi > e->max) e->max = hi;
}

void stats_trend_add(stats *s, int id, double v)
{
    stats_entry *e = entry_at(s, id);
    if (!e || !isfinite(v)) return;
    trend_widen(e, e->count, v, v);
    e->count++;
    e->sum += v;
    if (!e->hist) return;
    double us = v * 1000.0;
    if (!(us >= (double)STATS_HIST_MIN_US)) us = (double)STATS_HIST_MIN_US;
    if (us > (double)STATS_HIST_MAX_US) us = (double)STATS_HIST_MAX_US;
    stats_hist_record(e->hist, (uint64_t)(us + 0.5));
}

void stats_error(stats *s, int err)
{
    if (err > 0 && err < ERR_KINDS) s->errors_by_kind[err]++;
}

/* A copy of the first line of `msg` (at most STATS_SAMPLE_MAX bytes, cut at a UTF-8 boundary). */
static char *sample_dup(const char *msg, size_t len)
{
    size_t n = 0;
    while (n < len && msg[n] && msg[n] != '\n' && msg[n] != '\r')
        n++;
    if (n > STATS_SAMPLE_MAX) {
        n = STATS_SAMPLE_MAX;
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
            n--;
    }
    char *c = xcalloc(1, n + 1);
    memcpy(c, msg, n);
    return c;
}

void stats_error_sample(stats *s, int err, const char *msg)
{
    if (err <= 0 || err >= ERR_KINDS || s->err_sample[err] || !msg || !*msg) return;
    s->err_sample[err] = sample_dup(msg, strlen(msg));
}

/* ---- merging ---- */

/* Interval bounds widen to cover both; a side with both bounds 0 has none yet. */
static void interval_widen(stats *dst, uint64_t start, uint64_t end)
{
    if (start == 0 && end == 0) return;
    if (dst->t_start_us == 0 && dst->t_end_us == 0) {
        dst->t_start_us = start;
        dst->t_end_us = end;
        return;
    }
    if (start < dst->t_start_us) dst->t_start_us = start;
    if (end > dst->t_end_us) dst->t_end_us = end;
}

static void globals_merge(stats *dst, const stats *src)
{
    for (size_t i = 0; i < 600; i++)
        dst->status[i] += src->status[i];
    for (size_t i = 0; i < ERR_KINDS; i++)
        dst->errors_by_kind[i] += src->errors_by_kind[i];
    dst->requests += src->requests;
    dst->request_errors += src->request_errors;
    dst->bytes_in += src->bytes_in;
    dst->bytes_out += src->bytes_out;
    dst->iterations += src->iterations;
    dst->dropped += src->dropped;
    dst->checks_passed += src->checks_passed;
    dst->checks_failed += src->checks_failed;
    dst->vus += src->vus;
    dst->vus_max += src->vus_max;
    interval_widen(dst, src->t_start_us, src->t_end_us);
}

void stats_merge(stats *dst, const stats *src)
{
    if (dst == src) return;
    for (size_t i = 0; i < src->nentries; i++) {
        const stats_entry *se = &src->entries[i];
        int id = stats_name_id(dst, se->name, se->kind); /* may move dst->entries */
        stats_entry *de = &dst->entries[id];
        if (se->kind == STATS_TREND && se->count) trend_widen(de, de->count, se->min, se->max);
        de->count += se->count;
        de->errors += se->errors;
        de->sum += se->sum;
        if (de->hist && se->hist) stats_hist_merge(de->hist, se->hist);
    }
    stats_hist_merge(dst->all, src->all);
    globals_merge(dst, src);
    for (int k = 0; k < ERR_KINDS; k++)
        if (src->err_sample[k]) stats_error_sample(dst, k, src->err_sample[k]);
}

/* ---- encoding ----
 * Version 2 is one msgpack array:
 *   [2, GLOBALS, [errors_by_kind x ERR_KINDS], [status, n, status, n, ...], HIST(all) or nil,
 *    [ENTRY, ...] (, [kind, message, kind, message, ...] when error samples are kept)]
 *   GLOBALS = [t_start_us, t_end_us, requests, request_errors, bytes_in, bytes_out, iterations,
 *              dropped, checks_passed, checks_failed, vus, vus_max]
 *   HIST  = [count, min, max, sum, [ITEM, ...]]  non-empty slots only, in order; slot = chunk *
 *           1024 + index. ITEM = gap * 2 + 1 for a slot holding one value, or gap * 2 followed by
 *           the slot's count (2 or more); the slot is the previous one + 1 + gap (the first: gap).
 *   ENTRY = [name, kind, count, errors, sum (float), HIST or nil (, min, max: a trend's floats)]
 * HIST(all) is nil when `all` is exactly the sum of the request entries' histograms (what
 * stats_request records; checked slot by slot): the decoder adds those entries into `all` too, so
 * a snapshot carries each latency once. Entries that hold nothing in this interval do not travel.
 * The optional parts are added without a new version: a snapshot without them decodes as before.
 * Version 1 (still decoded, from older workers) always carried HIST(all), and its slot list was
 * [gap, count, gap, count, ...]. */

static int pack_hist(msgpack_packer *pk, const stats_hist *h)
{
    size_t nitems = 0;
    for (unsigned c = 0; c < HIST_CHUNKS; c++)
        if (h->chunk_count[c])
            for (unsigned i = 0; i < HIST_CHUNK_LEN; i++) {
                uint64_t n = hist_get(h, c, i);
                nitems += n == 0 ? 0 : n == 1 ? 1 : 2;
            }
    int r = msgpack_pack_array(pk, 5);
    r |= msgpack_pack_uint64(pk, h->count);
    r |= msgpack_pack_uint64(pk, stats_hist_min(h));
    r |= msgpack_pack_uint64(pk, stats_hist_max(h));
    r |= msgpack_pack_uint64(pk, h->sum);
    r |= msgpack_pack_array(pk, nitems);
    long prev = -1;
    for (unsigned c = 0; c < HIST_CHUNKS && !r; c++) {
        if (!h->chunk_count[c]) continue;
        for (unsigned i = 0; i < HIST_CHUNK_LEN; i++) {
            uint64_t n = hist_get(h, c, i);
            if (!n) continue;
            long slot = (long)(c * HIST_CHUNK_LEN + i);
            uint64_t gap = (uint64_t)(slot - prev - 1);
            if (n == 1) {
                r |= msgpack_pack_uint64(pk, gap * 2 + 1);
            } else {
                r |= msgpack_pack_uint64(pk, gap * 2);
                r |= msgpack_pack_uint64(pk, n);
            }
            prev = slot;
        }
    }
    return r;
}

/* 1 when s->all holds exactly the sum of the request entries' histograms, slot by slot (as
 * stats_request records them), so the snapshot can leave `all` out. A caller that recorded into
 * `all` some other way only costs the bytes of sending it. */
static int all_is_request_sum(const stats *s)
{
    const stats_hist *all = s->all;
    uint64_t count = 0, sum = 0, min = UINT64_MAX, max = 0, per_chunk[HIST_CHUNKS] = {0};
    for (size_t k = 0; k < s->nentries; k++) {
        const stats_entry *e = &s->entries[k];
        if (e->kind != STATS_REQUEST || !e->hist || !e->hist->count) continue;
        const stats_hist *h = e->hist;
        count += h->count;
        sum += h->sum;
        if (h->min < min) min = h->min;
        if (h->max > max) max = h->max;
        for (unsigned c = 0; c < HIST_CHUNKS; c++)
            per_chunk[c] += h->chunk_count[c];
    }
    if (count != all->count || sum != all->sum || (count && (min != all->min || max != all->max))) return 0;
    for (unsigned c = 0; c < HIST_CHUNKS; c++) {
        if (per_chunk[c] != all->chunk_count[c]) return 0;
        if (!per_chunk[c]) continue;
        uint64_t acc[HIST_CHUNK_LEN] = {0};
        for (size_t k = 0; k < s->nentries; k++) {
            const stats_entry *e = &s->entries[k];
            if (e->kind != STATS_REQUEST || !e->hist || !e->hist->chunk_count[c]) continue;
            for (unsigned i = 0; i < HIST_CHUNK_LEN; i++)
                acc[i] += hist_get(e->hist, c, i);
        }
        for (unsigned i = 0; i < HIST_CHUNK_LEN; i++)
            if (acc[i] != hist_get(all, c, i)) return 0;
    }
    return 1;
}

static int entry_empty(const stats_entry *e)
{
    return e->count == 0 && e->errors == 0 && e->sum == 0 && (!e->hist || e->hist->count == 0);
}

static int pack_entries(msgpack_packer *pk, const stats *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nentries; i++)
        n += !entry_empty(&s->entries[i]);
    int r = msgpack_pack_array(pk, n);
    for (size_t i = 0; i < s->nentries && !r; i++) {
        const stats_entry *e = &s->entries[i];
        if (entry_empty(e)) continue;
        size_t len = strlen(e->name);
        int minmax = e->kind == STATS_TREND && e->count;
        r |= msgpack_pack_array(pk, minmax ? 8 : 6);
        r |= msgpack_pack_str_with_body(pk, e->name, len);
        r |= msgpack_pack_int(pk, e->kind);
        r |= msgpack_pack_uint64(pk, e->count);
        r |= msgpack_pack_uint64(pk, e->errors);
        r |= msgpack_pack_double(pk, e->sum);
        r |= e->hist ? pack_hist(pk, e->hist) : msgpack_pack_nil(pk);
        if (minmax) r |= msgpack_pack_double(pk, e->min) | msgpack_pack_double(pk, e->max);
    }
    return r;
}

static int pack_samples(msgpack_packer *pk, const stats *s)
{
    size_t n = 0;
    for (int k = 0; k < ERR_KINDS; k++)
        n += s->err_sample[k] != NULL;
    int r = msgpack_pack_array(pk, n * 2);
    for (int k = 0; k < ERR_KINDS; k++) {
        if (!s->err_sample[k]) continue;
        r |= msgpack_pack_int(pk, k);
        r |= msgpack_pack_str_with_body(pk, s->err_sample[k], strlen(s->err_sample[k]));
    }
    return r;
}

static int pack_globals(msgpack_packer *pk, const stats *s)
{
    int r = msgpack_pack_array(pk, STATS_NGLOBALS);
    const uint64_t u[] = {s->t_start_us, s->t_end_us,   s->requests, s->request_errors, s->bytes_in,
                          s->bytes_out,  s->iterations, s->dropped,  s->checks_passed,  s->checks_failed};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        r |= msgpack_pack_uint64(pk, u[i]);
    r |= msgpack_pack_int64(pk, s->vus);
    r |= msgpack_pack_int64(pk, s->vus_max);
    r |= msgpack_pack_array(pk, ERR_KINDS);
    for (size_t i = 0; i < ERR_KINDS; i++)
        r |= msgpack_pack_uint64(pk, s->errors_by_kind[i]);
    size_t nstatus = 0;
    for (size_t i = 0; i < 600; i++)
        nstatus += s->status[i] != 0;
    r |= msgpack_pack_array(pk, nstatus * 2);
    for (size_t i = 0; i < 600; i++) {
        if (!s->status[i]) continue;
        r |= msgpack_pack_uint64(pk, i);
        r |= msgpack_pack_uint64(pk, s->status[i]);
    }
    return r;
}

int stats_encode(const stats *s, char **out, size_t *outlen)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int samples = 0;
    for (int k = 0; k < ERR_KINDS; k++)
        samples |= s->err_sample[k] != NULL;
    int r = msgpack_pack_array(&pk, samples ? 7 : 6);
    r |= msgpack_pack_uint64(&pk, STATS_WIRE_VERSION);
    r |= pack_globals(&pk, s);
    r |= all_is_request_sum(s) ? msgpack_pack_nil(&pk) : pack_hist(&pk, s->all);
    r |= pack_entries(&pk, s);
    if (samples) r |= pack_samples(&pk, s);
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

/* ---- decoding: every type, length and range is checked ---- */

static const msgpack_object *get_array(const msgpack_object *o, uint32_t n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) return NULL;
    return o->via.array.ptr;
}

static int get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
    *v = o->via.u64;
    return 0;
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > (uint64_t)INT64_MAX) return -1;
    *v = (int64_t)o->via.u64;
    return 0;
}

static int get_double(const msgpack_object *o, double *v)
{
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        *v = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = (double)o->via.i64;
    else
        return -1;
    return 0;
}

static void plan_grow(slot_plan *p)
{
    size_t cap = p->cap ? p->cap * 2 : 1024;
    planned_slot *v = realloc(p->v, cap * sizeof *v);
    if (!v) {
        fputs("parrot: out of memory\n", stderr);
        abort();
    }
    p->v = v;
    p->cap = cap;
}

static inline void plan_push(slot_plan *p, uint32_t slot, uint64_t n)
{
    if (p->len == p->cap) plan_grow(p);
    p->v[p->len++] = (planned_slot){.n = n, .slot = slot};
}

/* Check a sparse slot list (ITEMs of format `version`) against its count, min and max, and add
 * its slots to the plan. Nothing is added into a histogram here, so a bad snapshot never leaves
 * half its counts behind. */
static inline __attribute__((always_inline)) int check_slots_of(slot_plan *p, const msgpack_object *o,
                                                                uint64_t count, uint64_t min, uint64_t max,
                                                                const int version)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) return -1;
    const msgpack_object *a = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    uint64_t prev = (uint64_t)-1, total = 0, first = 0;
    size_t head = p->len;
    plan_push(p, 0, 0);
    for (uint32_t k = 0; k < n;) {
        uint64_t gap, cnt = 1;
        if (get_u64(&a[k++], &gap)) return -1;
        if (version == 1 || !(gap & 1)) { /* the count follows */
            if (k == n || get_u64(&a[k++], &cnt) || cnt == 0 || (version > 1 && cnt < 2)) return -1;
        }
        if (version > 1) gap >>= 1;
        if (gap >= HIST_SLOTS || prev + 1 + gap >= HIST_SLOTS) return -1;
        if (cnt > UINT64_MAX - total) return -1;
        prev = prev + 1 + gap;
        if (total == 0) first = prev;
        total += cnt;
        plan_push(p, (uint32_t)prev, cnt);
    }
    p->v[head].n = p->len - head - 1;
    if (total != count) return -1;
    if (count == 0) return min == 0 && max == 0 ? 0 : -1;
    if (min < STATS_HIST_MIN_US || max > STATS_HIST_MAX_US || min > max) return -1;
    unsigned cmin = hist_chunk_of(min), cmax = hist_chunk_of(max);
    if (cmin * HIST_CHUNK_LEN + hist_slot_of(min, cmin) != first) return -1;
    if (cmax * HIST_CHUNK_LEN + hist_slot_of(max, cmax) != prev) return -1;
    return 0;
}

/* check_slots_of for the snapshot's format, the version a constant in each (the loop is hot). */
static int check_slots(slot_plan *p, const msgpack_object *o, uint64_t count, uint64_t min, uint64_t max,
                       int version)
{
    return version == 1 ? check_slots_of(p, o, count, min, max, 1) : check_slots_of(p, o, count, min, max, 2);
}

static void hist_add_summary(stats_hist *h, uint64_t count, uint64_t sum, uint64_t min, uint64_t max)
{
    h->count += count;
    h->sum += sum;
    if (min < h->min) h->min = min;
    if (max > h->max) h->max = max;
}

/* How a snapshot is being decoded: its format version, the pass (checking it into the plan, or
 * adding a checked one), and whether it left `all` out (then each request entry's histogram is
 * added into `all` as well, unless the caller owes `all` those histograms: all_owed). */
typedef struct decoding {
    int version;
    int check; /* 1: the check pass (nothing is added into histograms) */
    int all_derived;
    int all_owed;
    slot_plan *plan;
} decoding;

/* The head of a HIST: count, min, max and sum; its slot list in *slots. -1 when malformed. */
static int hist_head(const msgpack_object *o, uint64_t *count, uint64_t *min, uint64_t *max, uint64_t *sum,
                     const msgpack_object **slots)
{
    const msgpack_object *a = get_array(o, 5);
    if (!a || get_u64(&a[0], count) || get_u64(&a[1], min) || get_u64(&a[2], max) || get_u64(&a[3], sum))
        return -1;
    *slots = &a[4];
    return 0;
}

/* The check pass on a HIST: checked, its slots planned. */
static int check_hist(const msgpack_object *o, const decoding *d)
{
    uint64_t count, min, max, sum;
    const msgpack_object *slots;
    if (hist_head(o, &count, &min, &max, &sum, &slots)) return -1;
    return check_slots(d->plan, slots, count, min, max, d->version);
}

/* Add one HIST's planned slots (a job add_hist queued). */
static void hist_job_run(const hist_job *j)
{
    for (size_t k = 0; k < j->n; k++) {
        unsigned c = j->v[k].slot / HIST_CHUNK_LEN, i = j->v[k].slot % HIST_CHUNK_LEN;
        hist_add(j->into, c, i, j->v[k].n);
        if (j->also) hist_add(j->also, c, i, j->v[k].n);
    }
    hist_add_summary(j->into, j->count, j->sum, j->min, j->max);
    if (j->also) hist_add_summary(j->also, j->count, j->sum, j->min, j->max);
}

/* An adding pass on a HIST checked before: its planned slots go into `into`, and into `also` when
 * not NULL. The counters are scattered over up to 92 KB per histogram and often cold, so the adds
 * run one HIST behind: this one's cache lines are asked for now, and the previous one's slots,
 * asked for a HIST ago, are added (add_hist_flush adds the last). */
static void add_hist(stats_hist *into, stats_hist *also, const msgpack_object *o, const decoding *d)
{
    hist_job j = {.into = into, .also = also};
    const msgpack_object *slots;
    hist_head(o, &j.count, &j.min, &j.max, &j.sum, &slots); /* checked before: it cannot fail */
    slot_plan *p = d->plan;
    j.n = (size_t)p->v[p->at++].n;
    j.v = &p->v[p->at];
    p->at += j.n;
    if (!j.count) return;
    for (size_t k = 0; k < j.n; k++) {
        hist_prefetch(into, j.v[k].slot / HIST_CHUNK_LEN, j.v[k].slot % HIST_CHUNK_LEN);
        if (also) hist_prefetch(also, j.v[k].slot / HIST_CHUNK_LEN, j.v[k].slot % HIST_CHUNK_LEN);
    }
    if (p->queued) hist_job_run(&p->job);
    p->job = j;
    p->queued = 1;
}

static void add_hist_flush(slot_plan *p)
{
    if (p->queued) hist_job_run(&p->job);
    p->queued = 0;
}

/* An ENTRY: checked (the check pass keeps nothing of it but its planned slots), or added into
 * the entry of its name and kind in `s`. */
static int decode_entry(stats *s, const msgpack_object *o, const decoding *d)
{
    int minmax = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 8;
    const msgpack_object *a = get_array(o, minmax ? 8 : 6);
    char name[STATS_NAME_MAX + 1];
    uint64_t kind, count, errors;
    double sum, min = 0, max = 0;
    if (!a || a[0].type != MSGPACK_OBJECT_STR) return -1;
    uint32_t len = a[0].via.str.size;
    if (len > STATS_NAME_MAX || (len && memchr(a[0].via.str.ptr, '\0', len))) return -1;
    if (get_u64(&a[1], &kind) || kind >= STATS_KINDS || get_u64(&a[2], &count) || get_u64(&a[3], &errors) ||
        get_double(&a[4], &sum))
        return -1;
    if (kind_has_hist((int)kind) != (a[5].type != MSGPACK_OBJECT_NIL)) return -1;
    if (minmax && (kind != STATS_TREND || !count || get_double(&a[6], &min) || get_double(&a[7], &max) ||
                   !(min <= max)))
        return -1;
    if (d->check) return kind_has_hist((int)kind) ? check_hist(&a[5], d) : 0;
    if (len) memcpy(name, a[0].via.str.ptr, len);
    name[len] = '\0';
    int id = stats_name_id(s, name, (int)kind); /* may move s->entries */
    stats_entry *e = &s->entries[id];
    if (minmax) trend_widen(e, e->count, min, max);
    e->count += count;
    e->errors += errors;
    e->sum += sum;
    if (!e->hist) return 0;
    stats_hist *also = d->all_derived && !d->all_owed && kind == STATS_REQUEST ? s->all : NULL;
    add_hist(e->hist, also, &a[5], d);
    return 0;
}

/* The global counters, added into `dst` the way stats_merge adds them: all checked first, so a
 * bad one adds nothing. */
static int decode_globals(stats *dst, const msgpack_object *g, const msgpack_object *ek,
                          const msgpack_object *st)
{
    const msgpack_object *a = get_array(g, STATS_NGLOBALS), *e = get_array(ek, ERR_KINDS);
    if (!a || !e || st->type != MSGPACK_OBJECT_ARRAY || st->via.array.size % 2) return -1;
    uint64_t u[10], code;
    int64_t vus, vus_max;
    for (size_t i = 0; i < 10; i++)
        if (get_u64(&a[i], &u[i])) return -1;
    if (get_i64(&a[10], &vus) || get_i64(&a[11], &vus_max)) return -1;
    for (size_t i = 0; i < ERR_KINDS; i++)
        if (e[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
    const msgpack_object *sa = st->via.array.ptr;
    for (uint32_t k = 0; k < st->via.array.size; k += 2)
        if (get_u64(&sa[k], &code) || code >= 600 || sa[k + 1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return -1;
    dst->requests += u[2];
    dst->request_errors += u[3];
    dst->bytes_in += u[4];
    dst->bytes_out += u[5];
    dst->iterations += u[6];
    dst->dropped += u[7];
    dst->checks_passed += u[8];
    dst->checks_failed += u[9];
    dst->vus += vus;
    dst->vus_max += vus_max;
    for (size_t i = 0; i < ERR_KINDS; i++)
        dst->errors_by_kind[i] += e[i].via.u64;
    for (uint32_t k = 0; k < st->via.array.size; k += 2)
        dst->status[sa[k].via.u64] += sa[k + 1].via.u64;
    interval_widen(dst, u[0], u[1]);
    return 0;
}

/* Error samples [kind, message, ...] kept into `s` (NULL: only checked). */
static int decode_samples(stats *s, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size % 2) return -1;
    const msgpack_object *a = o->via.array.ptr;
    for (uint32_t k = 0; k < o->via.array.size; k += 2) {
        uint64_t kind;
        if (get_u64(&a[k], &kind) || kind == 0 || kind >= ERR_KINDS) return -1;
        const msgpack_object *m = &a[k + 1];
        if (m->type != MSGPACK_OBJECT_STR || m->via.str.size > STATS_SAMPLE_MAX ||
            memchr(m->via.str.ptr, '\0', m->via.str.size))
            return -1;
        if (s && !s->err_sample[kind] && m->via.str.size)
            s->err_sample[kind] = sample_dup(m->via.str.ptr, m->via.str.size);
    }
    return 0;
}

/* Decode a snapshot into `s`. The check pass (`check`) checks all of it, adds only its global
 * counters and gauges into `s` and plans its slots; an adding pass, on a snapshot checked before,
 * adds all of it into `s`, its slots from the plan. */
static int decode_root(stats *s, const msgpack_object *root, int check, slot_plan *plan, int all_owed)
{
    uint64_t version;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 1) return -1;
    const msgpack_object *a = root->via.array.ptr;
    if (get_u64(&a[0], &version) || version < 1 || version > STATS_WIRE_VERSION) return -1;
    int samples = root->via.array.size == 7;
    if (!(a = get_array(root, samples ? 7 : 6))) return -1;
    decoding d = {.version = (int)version,
                  .check = check,
                  .all_derived = a[4].type == MSGPACK_OBJECT_NIL,
                  .all_owed = all_owed,
                  .plan = plan};
    if (d.all_derived && version < 2) return -1;
    plan->all_derived = d.all_derived;
    if (samples && decode_samples(check ? NULL : s, &a[6]) != 0) return -1;
    if (decode_globals(s, &a[1], &a[2], &a[3])) return -1;
    if (!d.all_derived && check && check_hist(&a[4], &d)) return -1;
    if (!d.all_derived && !check) add_hist(s->all, NULL, &a[4], &d);
    if (a[5].type != MSGPACK_OBJECT_ARRAY) return -1;
    for (uint32_t i = 0; i < a[5].via.array.size; i++)
        if (decode_entry(s, &a[5].via.array.ptr[i], &d)) return -1;
    if (!check) add_hist_flush(plan);
    return 0;
}

/* Checks the whole snapshot first (into `scratch`), so a malformed buffer leaves every
 * destination untouched; then adds it into each, reading its slots from the plan. */
void stats_all_add_requests(stats *s)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].kind == STATS_REQUEST && s->entries[i].hist)
            stats_hist_merge(s->all, s->entries[i].hist);
}

int stats_decode_merge_into(stats *const *dsts, int ndst, stats *scratch, const char *buf, size_t len,
                            int *all_owed)
{
    if (!dsts || !scratch || !buf) return -1;
    slot_plan *plan = scratch->plan;
    if (!plan) {
        if (!(plan = calloc(1, sizeof *plan))) return -1;
        if (!msgpack_zone_init(&plan->zone, PLAN_ZONE_CHUNK)) {
            free(plan);
            return -1;
        }
        scratch->plan = plan;
    }
    plan->len = 0;
    msgpack_object root;
    size_t off = 0;
    int r = -1;
    if (!mpguard_check((const unsigned char *)buf, len, SIZE_MAX) &&
        msgpack_unpack(buf, len, &off, &plan->zone, &root) == MSGPACK_UNPACK_SUCCESS && off == len) {
        globals_zero(scratch);
        r = decode_root(scratch, &root, 1, plan, 0);
        int owed = r == 0 && all_owed && *all_owed;
        if (owed && !plan->all_derived) { /* it carries its own `all`: settle the debt first */
            for (int i = 0; i < ndst; i++)
                stats_all_add_requests(dsts[i]);
            *all_owed = owed = 0;
        }
        /* valid: add it into each destination the same (sparse) way; it cannot fail now */
        for (int i = 0; r == 0 && i < ndst; i++) {
            plan->at = 0;
            decode_root(dsts[i], &root, 0, plan, owed);
        }
    }
    msgpack_zone_clear(&plan->zone);
    if (plan->cap > PLAN_KEEP) { /* a huge snapshot: do not hold its memory for the next ones */
        free(plan->v);
        plan->v = NULL;
        plan->cap = 0;
    }
    return r;
}

int stats_decode_merge(stats *dst, const char *buf, size_t len)
{
    if (!dst) return -1;
    stats *scratch = stats_new();
    int r = stats_decode_merge_into(&dst, 1, scratch, buf, len, NULL);
    stats_free(scratch);
    return r;
}
