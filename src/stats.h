/* stats: log-linear (HDR-style) latency histograms and counters, per request name.
 * One `stats` holds an interval (a load thread's last second) or a running total (the queen's);
 * intervals serialize to msgpack, cross threads or the wire, and merge into totals by name. */
#ifndef PARROT_STATS_H
#define PARROT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Histogram range and precision: 1 us .. 1 h, 3 significant digits. */
#define STATS_HIST_MIN_US 1ULL
#define STATS_HIST_MAX_US 3600000000ULL
#define STATS_NAMES_DEFAULT_MAX 1000 /* distinct names before folding into "other" */
#define STATS_OTHER_NAME "other"
#define STATS_NAME_MAX 1024 /* bytes of a name; longer names are cut at a UTF-8 boundary */

/* Error kinds a request (or a VU) can end with. ERR_NONE means the transport succeeded;
 * ERR_STATUS means the server answered with a status the request did not expect. */
enum stats_err {
    ERR_NONE = 0,
    ERR_DNS,       /* name did not resolve */
    ERR_CONNECT,   /* refused, unreachable, connect timeout */
    ERR_TLS,       /* handshake or verification failed */
    ERR_TIMEOUT,   /* whole-request timeout */
    ERR_RESET,     /* peer reset or closed mid-response */
    ERR_PROTOCOL,  /* unparseable response (bad status line, bad chunk size, ...) */
    ERR_TOO_LARGE, /* response headers over 64 KB */
    ERR_FD_LIMIT,  /* no file descriptor left (EMFILE/ENFILE) */
    ERR_PROXY,     /* proxy refused CONNECT or failed */
    ERR_STATUS,    /* status >= 400 (or not in `expect`) */
    ERR_SCRIPT,    /* a runtime error in a VU's Lua code */
    ERR_CANCELLED, /* cut at a hard stop */
    ERR_URL,       /* the request's URL could not be used */
    ERR_KINDS
};
const char *stats_err_name(int kind); /* "dns", "connect", ... ; "none" for ERR_NONE */

/* What a named entry measures. */
enum stats_kind {
    STATS_REQUEST = 0, /* hist = latency us, count, errors */
    STATS_TRANSACTION, /* hist = duration us, count, errors */
    STATS_CHECK,       /* count = passed, errors = failed */
    STATS_COUNTER,     /* sum = custom counter total */
    STATS_TREND,       /* count, sum, min, max exact; hist = value * 1000, clamped into its range
                        * (so 3 digits of a value in ms keep us) for the percentiles */
    STATS_KINDS
};

typedef struct stats_hist stats_hist; /* opaque; memory is allocated lazily per power of two */

stats_hist *stats_hist_new(void);
void stats_hist_free(stats_hist *h);
void stats_hist_reset(stats_hist *h);
void stats_hist_record(stats_hist *h, uint64_t us); /* clamps into [MIN, MAX] */
void stats_hist_record_n(stats_hist *h, uint64_t us, uint64_t n);
void stats_hist_merge(stats_hist *dst, const stats_hist *src);
uint64_t stats_hist_count(const stats_hist *h);
uint64_t stats_hist_min(const stats_hist *h); /* 0 when empty */
uint64_t stats_hist_max(const stats_hist *h); /* 0 when empty */
double stats_hist_mean(const stats_hist *h);  /* 0 when empty */
/* Value at percentile p (0..100): the highest value equivalent to the bucket holding it,
 * within 0.1% of the exact value. 0 when empty. */
uint64_t stats_hist_percentile(const stats_hist *h, double p);
/* Bytes held by `h` (struct and counters): 4 KB per power of two its values touch, at most
 * ~100 KB (23 chunks of 1024 counters; a chunk doubles once one counter passes 2^32). */
size_t stats_hist_memory(const stats_hist *h);

typedef struct stats_entry {
    char *name; /* owned */
    int kind;   /* enum stats_kind */
    uint64_t count;
    uint64_t errors;
    double sum;       /* STATS_COUNTER: the total; STATS_TREND: the exact sum of the values */
    double min, max;  /* STATS_TREND: the exact smallest and largest value (when count > 0) */
    stats_hist *hist; /* owned; NULL for CHECK and COUNTER */
} stats_entry;

#define STATS_SAMPLE_MAX 200 /* bytes of an error sample message; longer ones are cut */

/* A set of named entries plus global counters. Not thread-safe: one owner at a time. */
typedef struct stats {
    stats_entry *entries; /* owned array, `nentries` used, ids are indexes */
    size_t nentries, cap;
    void *index;      /* owned name -> id lookup */
    size_t max_names; /* per kind; past it names fold into "other" */
    int folded_warned;
    stats_hist *all;      /* latency of every request (all names) */
    uint64_t status[600]; /* responses by status code; [0] counts requests with no status */
    uint64_t errors_by_kind[ERR_KINDS];
    char *err_sample[ERR_KINDS]; /* owned: the first message seen of each kind, or NULL */
    uint64_t requests, request_errors;
    uint64_t bytes_in, bytes_out;
    uint64_t iterations;
    uint64_t dropped; /* arrivals/iterations that could not start */
    uint64_t checks_passed, checks_failed;
    int64_t vus;     /* gauge: active VUs at the end of the interval (summed over sources on merge) */
    int64_t vus_max; /* gauge: highest active VUs (summed over sources on merge) */
    uint64_t t_start_us, t_end_us; /* interval bounds, microseconds since the run's start */
    void *plan; /* owned: the checked slots of the last snapshot, when this is a decode scratch */
} stats;

stats *stats_new(void);
void stats_free(stats *s);
/* Zero every value, keep names and their ids. */
void stats_reset(stats *s);
/* Id of (name, kind), created on first use. Past `max_names` distinct names of a kind the name
 * folds into STATS_OTHER_NAME and a warning is printed once on stderr. Never fails (aborts on OOM). */
int stats_name_id(stats *s, const char *name, int kind);

/* Record one finished request. `status` 0 when no response; `err` an enum stats_err
 * (ERR_STATUS when the status was not expected). Counts into the name, `all`, status, errors. */
void stats_request(stats *s, int id, uint64_t latency_us, int status, int err, uint64_t bytes_in,
                   uint64_t bytes_out);
void stats_transaction(stats *s, int id, uint64_t duration_us, int failed);
void stats_check(stats *s, int id, int ok);
void stats_counter_add(stats *s, int id, double v);
/* Any finite number: counted, summed and kept as min/max exactly; the histogram (percentiles)
 * holds it clamped into [0.001, 3,600,000]. NaN and infinities are ignored. */
void stats_trend_add(stats *s, int id, double v);
void stats_error(stats *s, int err); /* an error not tied to a request (ERR_SCRIPT, ...) */
/* Keep `msg` (one line, cut at STATS_SAMPLE_MAX bytes) as the sample message of error kind
 * `err` unless one is kept already: cheap to call on every failure. The sample of a kind
 * survives merges (the destination's first one stays) and travels in snapshots. */
void stats_error_sample(stats *s, int err, const char *msg);

/* Add every value of `src` into `dst`, matching entries by (name, kind). Gauges add up. */
void stats_merge(stats *dst, const stats *src);

/* Serialize to a msgpack buffer (malloc'ed, caller frees). Only non-empty buckets travel. */
int stats_encode(const stats *s, char **out, size_t *outlen);
/* Decode a buffer made by stats_encode and merge it into `dst`. Returns 0, or -1 when the
 * buffer is malformed (nothing trusted: lengths and bucket indexes are checked; dst may hold
 * part of it). */
int stats_decode_merge(stats *dst, const char *buf, size_t len);
/* The same for several destinations at once, with `scratch` reused between calls (its global
 * counters and gauges are reset here, then hold the snapshot's; its entries are not used); every
 * destination gets only the non-empty buckets added.
 * `all_owed` (NULL: not used) spares adding each latency twice. While *all_owed is set, a snapshot
 * that left `all` out (its request entries add up to it) adds only into the request entries, and
 * the caller owes the destinations' `all` those entries' histograms: before reading `all` it calls
 * stats_all_add_requests on each destination. A snapshot that carries its own `all` settles the
 * debt first and clears *all_owed. Set *all_owed only while the destinations' `all` and request
 * entries are empty (a new or reset stats), and again after each reset. */
int stats_decode_merge_into(stats *const *dsts, int ndst, stats *scratch, const char *buf, size_t len,
                            int *all_owed);
/* Add every request entry's histogram into `all` (what stats_decode_merge_into left owed). */
void stats_all_add_requests(stats *s);

#endif
