/* vu: the virtual-user scheduler of one load thread. Each VU is a Lua coroutine; http requests,
 * sleeps and think times park it and the loop resumes it when the result is ready. This module
 * also exposes those primitives to Lua as the `parrot.core` table. */
#ifndef PARROT_VU_H
#define PARROT_VU_H

#include <lua.h>
#include <uv.h>

#include "http.h"
#include "stats.h"
#include "timers.h"

typedef struct vu_sched vu_sched;

typedef struct vu_sched_config {
    int thread_index, thread_count; /* this load thread among the worker's threads */
    const http_client_config *http;
    /* Called on this thread when the last live VU ended (the phase is over). */
    void (*on_idle)(vu_sched *s, void *ud);
    /* Called on this thread for each VU runtime error (message with file:line). */
    void (*on_script_error)(vu_sched *s, const char *msg, void *ud);
    /* Called on this thread when a scenario asks to end the whole test (parrot.abort_test). */
    void (*on_abort_test)(vu_sched *s, const char *why, void *ud);
    void *ud;
} vu_sched_config;

/* Create the scheduler for `loop` and Lua state `L` (both owned by the caller, used only on this
 * thread). Registers package.preload["parrot.core"]. Returns NULL with a reason in `err`. */
vu_sched *vu_sched_new(uv_loop_t *loop, lua_State *L, const vu_sched_config *cfg, char *err, size_t errlen);
/* Cancel every VU and free; the loop must run afterwards so handles close. */
void vu_sched_free(vu_sched *s);
/* Start a VU running the function on top of L's stack (popped) with no arguments. */
void vu_sched_spawn(vu_sched *s);
/* Live VUs (the coroutines that have not ended). */
int vu_sched_live(const vu_sched *s);
/* Ask the Lua side to stop (core.stopping() turns true); VUs end at their next iteration. */
void vu_sched_request_stop(vu_sched *s);
/* End every VU now: in-flight requests are cancelled (counted as ERR_CANCELLED), none resumes. */
void vu_sched_kill_all(vu_sched *s);
/* The interval statistics of this thread (owned by the scheduler). */
stats *vu_sched_stats(vu_sched *s);
timers *vu_sched_timers(vu_sched *s);

#endif
