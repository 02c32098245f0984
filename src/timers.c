/* timers: a binary min-heap of deadlines driven by one uv_timer_t per loop. */
#include "timers.h"

#include <stdlib.h>

struct timers {
    uv_timer_t handle; /* must stay first: the close callback frees the whole struct */
    timer_entry **heap;
    size_t n, cap;
    uint64_t armed_ns; /* deadline the uv timer is set for, when `armed` */
    int armed;
    int in_fire; /* inside timers_fire: rearm once at the end */
};

static void timers_fire(uv_timer_t *h);

static int earlier(const timer_entry *a, const timer_entry *b) { return a->deadline_ns < b->deadline_ns; }

static void heap_set(timers *t, size_t i, timer_entry *e)
{
    t->heap[i] = e;
    e->slot = i + 1;
}

static void sift_up(timers *t, size_t i)
{
    timer_entry *e = t->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!earlier(e, t->heap[p])) break;
        heap_set(t, i, t->heap[p]);
        i = p;
    }
    heap_set(t, i, e);
}

static void sift_down(timers *t, size_t i)
{
    timer_entry *e = t->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        timer_entry *best = e;
        if (l < t->n && earlier(t->heap[l], best)) m = l, best = t->heap[l];
        if (r < t->n && earlier(t->heap[r], best)) m = r, best = t->heap[r];
        if (m == i) break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, e);
}

/* Point the uv timer at the earliest deadline (ms resolution, rounded up so we never wake early). */
static void rearm(timers *t)
{
    if (t->in_fire) return;
    if (t->n == 0) {
        if (t->armed) uv_timer_stop(&t->handle);
        t->armed = 0;
        return;
    }
    uint64_t d = t->heap[0]->deadline_ns;
    if (t->armed && t->armed_ns == d) return;
    uint64_t now = uv_hrtime();
    uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
    t->armed_ns = d;
    t->armed = 1;
    uv_timer_start(&t->handle, timers_fire, ms, 0);
}

timers *timers_new(uv_loop_t *loop)
{
    timers *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uv_timer_init(loop, &t->handle);
    t->handle.data = t;
    return t;
}

static void on_close(uv_handle_t *h)
{
    timers *t = h->data;
    free(t->heap);
    free(t);
}

void timers_free(timers *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        t->heap[i]->slot = 0;
    t->n = 0;
    uv_close((uv_handle_t *)&t->handle, on_close);
}

void timers_del(timers *t, timer_entry *e)
{
    if (!e->slot) return;
    size_t i = e->slot - 1;
    e->slot = 0;
    t->n--;
    if (i != t->n) {
        heap_set(t, i, t->heap[t->n]);
        sift_up(t, i);
        sift_down(t, t->heap[i]->slot - 1);
    }
    rearm(t);
}

void timers_add(timers *t, timer_entry *e, uint64_t deadline_ns)
{
    if (e->slot) {
        e->deadline_ns = deadline_ns;
        size_t i = e->slot - 1;
        sift_up(t, i);
        sift_down(t, e->slot - 1);
        rearm(t);
        return;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        timer_entry **h = realloc(t->heap, cap * sizeof *h);
        if (!h) abort();
        t->heap = h;
        t->cap = cap;
    }
    e->deadline_ns = deadline_ns;
    heap_set(t, t->n, e);
    t->n++;
    sift_up(t, t->n - 1);
    rearm(t);
}

size_t timers_count(const timers *t) { return t->n; }

/* Fire everything due (callbacks may add or delete entries), then rearm once. */
static void timers_fire(uv_timer_t *h)
{
    timers *t = h->data;
    t->armed = 0;
    t->in_fire = 1;
    uint64_t now = uv_hrtime();
    while (t->n && t->heap[0]->deadline_ns <= now) {
        timer_entry *e = t->heap[0];
        t->in_fire = 1;
        timers_del(t, e);
        e->cb(e);
    }
    t->in_fire = 0;
    rearm(t);
}
