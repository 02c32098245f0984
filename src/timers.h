/* timers: one deadline queue per loop thread (a binary heap on one uv_timer_t), so thousands of
 * think times, timeouts and arrivals cost one libuv handle, not one each. Deadlines are uv_hrtime()
 * nanoseconds; callbacks run from the loop, never from inside timers_add. */
#ifndef PARROT_TIMERS_H
#define PARROT_TIMERS_H

#include <stdint.h>
#include <uv.h>

typedef struct timer_entry timer_entry;
typedef void (*timer_cb)(timer_entry *e);

/* Embedded by its owner (a VU, a connection, ...); the owner keeps it alive while queued. */
struct timer_entry {
    uint64_t deadline_ns;
    size_t slot; /* index in the heap + 1; 0 when not queued */
    timer_cb cb;
    void *data;
};

typedef struct timers timers;

timers *timers_new(uv_loop_t *loop); /* owned by the caller; free with timers_free after the loop ran */
void timers_free(timers *t);         /* closes its uv_timer_t; frees once the loop processed the close */
/* Queue (or move) `e` to fire at `deadline_ns`; e->cb and e->data must be set. */
void timers_add(timers *t, timer_entry *e, uint64_t deadline_ns);
void timers_del(timers *t, timer_entry *e); /* no-op when not queued */
static inline int timers_pending(const timer_entry *e) { return e->slot != 0; }
size_t timers_count(const timers *t);

#endif
