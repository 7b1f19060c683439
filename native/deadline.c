/* deadline.c: time limits of calls into modules.
 *
 * A call into a module runs in the module's own wasmtime store and notes
 * the tick it began at (wm_enter; re-entry keeps the outermost).  Wasmtime
 * checks that store's epoch deadline at function entries and loop heads;
 * when it has passed, it calls on_deadline, which compares the ticks the
 * module's call has used with its limit: under it, the deadline moves to
 * where the limit ends; past it, the Wasm stops with an error naming the
 * module, and the trap is the module's own (torn down like any other).
 * Time spent in callees counts for the caller too: a limit bounds a call,
 * wall clock.
 */
#include <stdio.h>

#include "wm_core.h"

#define FAR_TICKS (UINT64_C(1) << 40) /* no limit: ~35 years of ticks */

uint64_t wm_time_left(const wm_module *m)
{
    if (!m->limits.time_ms || !m->depth)
        return UINT64_MAX;
    uint64_t used = wm_ticks_now() - m->entry_tick;
    return used >= m->limits.time_ms ? 0 : m->limits.time_ms - used;
}

static wt_error *on_deadline(wt_context *cx, void *env, uint64_t *delta, uint8_t *update_kind)
{
    (void)cx;
    wm_module *m = env;
    wm_broker *b = m->broker;
    *update_kind = WM_WASMTIME_UPDATE_DEADLINE_CONTINUE;
    uint64_t left = wm_time_left(m);
    if (left) {
        /* Outside any call of ours (depth 0) a later call starts afresh
         * within one limit of now. */
        *delta = left != UINT64_MAX ? left : m->limits.time_ms ? m->limits.time_ms : FAR_TICKS;
        return NULL;
    }
    wm_lock(b);
    wm_mark_origin(b, m);
    wm_unlock(b);
    char msg[512];
    snprintf(msg, sizeof msg, "wasi_map: module '%.300s' ran past its time limit of %u ms",
             m->name, m->limits.time_ms);
    return b->api.error_new(msg);
}

/* (The name is wasmtime's: a wasmtime store, not the backing store.) */
void wm_module_set_store(wm_module *m, void *wasm_store, void *context)
{
    const wt_api *api = &m->broker->api;
    m->wasm_store = wasm_store;
    m->context = context;
    api->store_epoch_deadline_callback(wasm_store, on_deadline, m, NULL);
    api->context_set_epoch_deadline(context, 1); /* the first check sets the real one */
}

void wm_module_enter(wm_module *m)
{
    wm_tick_begin();
    wm_enter(m);
}

void wm_module_leave(wm_module *m)
{
    wm_leave(m);
    wm_tick_end();
}

