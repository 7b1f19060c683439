/* guest.h: a guest's linear memory as host functions see it, and the one
 * bounds check every pointer/length pair from a guest goes through.
 * Used by the ABI callbacks (abi.c) and WASI's poll_oneoff (wasi_poll.c). */
#ifndef WM_GUEST_H
#define WM_GUEST_H

#include "wm_core.h"

typedef struct guest {
    uint8_t *base;
    uint64_t size;
} guest;

static inline void guest_view(wm_module *m, wt_caller *caller, guest *g)
{
    const wt_api *api = &m->broker->api;
    wt_context *cx = api->caller_context(caller);
    if (!m->has_memory) {
        /* Called before instantiation finished (a start function): find the
         * memory now.  A module without one sees every pointer as FAULT. */
        wt_extern ext;
        if (!api->caller_export_get(caller, "memory", 6, &ext) ||
            ext.kind != WM_WASMTIME_EXTERN_MEMORY) {
            static uint8_t nothing[1]; /* a valid base for the empty spans */
            g->base = nothing;
            g->size = 0;
            return;
        }
        m->memory = ext.of.memory;
        m->has_memory = true;
    }
    g->base = api->memory_data(cx, &m->memory);
    g->size = api->memory_data_size(cx, &m->memory);
}

/* The one bounds check: [ptr, ptr + len) must lie inside guest memory.
 * Computed in 64 bits, so a pair that wraps around 2^32 is refused. */
static inline bool span(const guest *g, uint32_t ptr, uint64_t len, uint8_t **out)
{
    if ((uint64_t)ptr + len > g->size)
        return false;
    *out = g->base + ptr;
    return true;
}

#endif
