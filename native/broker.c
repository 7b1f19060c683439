/* broker.c: a broker's lifetime, its statistics, trap origins and drop notices.
 *
 * Modules come and go in module.c. */
#include <stdlib.h>
#include <string.h>

#include "wm_core.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "guest memory is little-endian");

size_t wm_sizeof_wasmtime_memory(void) { return sizeof(wt_memory); }
size_t wm_sizeof_wasmtime_func(void) { return sizeof(wt_func); }
size_t wm_sizeof_wasmtime_val_raw(void) { return sizeof(wt_val_raw); }
size_t wm_sizeof_wasmtime_extern(void) { return sizeof(wt_extern); }
_Static_assert(sizeof(wm_val_raw) == sizeof(wt_val_raw), "wm_val_raw mirrors wasmtime_val_raw_t");

static void free_watches(wm_watch *w)
{
    while (w) {
        wm_watch *next = w->next;
        free(w);
        w = next;
    }
}

wm_broker *wm_broker_new(const wm_wasmtime_api *api, uint64_t seed, const wm_limits *host_limits)
{
    /* Aligned: each stripe on a cache line of its own. */
    size_t size = (sizeof(wm_broker) + 63) & ~(size_t)63;
    wm_broker *b = aligned_alloc(64, size);
    if (!b)
        return NULL;
    memset(b, 0, size);
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b);
        return NULL;
    }
    b->api.caller_context = (wt_context * (*)(wt_caller *)) api->caller_context;
    b->api.caller_export_get = (bool (*)(wt_caller *, const char *, size_t, wt_extern *))
                                   api->caller_export_get;
    b->api.memory_data = (uint8_t * (*)(const wt_context *, const wt_memory *)) api->memory_data;
    b->api.memory_data_size = (size_t(*)(const wt_context *, const wt_memory *))
                                  api->memory_data_size;
    b->api.linker_define_func_unchecked =
        (wt_error * (*)(wt_linker *, const char *, size_t, const char *, size_t,
                        const wt_functype *, wt_unchecked_cb, void *, void (*)(void *)))
            api->linker_define_func_unchecked;
    b->api.func_call_unchecked =
        (wt_error * (*)(wt_context *, const wt_func *, wt_val_raw *, size_t, wt_trap **))
            api->func_call_unchecked;
    b->api.trap_new = (wt_trap * (*)(const char *, size_t)) api->trap_new;
    b->api.error_message = (void (*)(const wt_error *, wt_byte_vec *))api->error_message;
    b->api.error_delete = (void (*)(wt_error *))api->error_delete;
    b->api.byte_vec_delete = (void (*)(wt_byte_vec *))api->byte_vec_delete;
    b->api.error_new = (wt_error * (*)(const char *)) api->error_new;
    b->api.context_set_epoch_deadline =
        (void (*)(wt_context *, uint64_t))api->context_set_epoch_deadline;
    b->api.store_epoch_deadline_callback =
        (void (*)(wt_store *, wt_deadline_cb, void *, void (*)(void *)))
            api->store_epoch_deadline_callback;
    b->api.engine_clone = (void *(*)(void *))api->engine_clone;
    b->api.engine_delete = (void (*)(void *))api->engine_delete;
    b->api.engine_increment_epoch = (void (*)(void *))api->engine_increment_epoch;
    b->seed = seed;
    wm_limits host = *host_limits;
    host.handles = WM_HANDLE_MAX_SLOTS;
    host.bytes = UINT64_MAX;
    host.entries = UINT64_MAX;
    host.watches = UINT32_MAX;
    host.trap_on_quota = 0;
    b->chunks = calloc(WM_MAX_CHUNKS, sizeof *b->chunks);
    b->modules = calloc(WM_MAX_MODULES, sizeof *b->modules);
    if (!b->chunks || !b->modules || !(b->host = wm_module_add(b, &host, "host"))) {
        wm_broker_free(b);
        return NULL;
    }
    b->host->handles.wraps = true;
    return b;
}

/* Tick `clone` (NULL: nothing) from now on; the engine ticked before stops. */
static void tick_engine(wm_broker *b, void *clone)
{
    wm_lock(b);
    void *old = b->engine;
    b->engine = clone;
    wm_unlock(b);
    if (old)
        wm_ticker_remove(old);
}

int wm_broker_set_engine(wm_broker *b, void *engine)
{
    void *clone = wm_ticker_add(&b->api, engine);
    if (!clone)
        return WM_QUOTA;
    tick_engine(b, clone);
    return WM_OK;
}

static void stop_ticking(wm_broker *b) { tick_engine(b, NULL); }

static void clear_state(wm_broker *b)
{
    for (uint32_t i = 0; i < b->maps_len; i++)
        free_watches(WM_MAP(b, i).watches);
    free_watches(b->notices_head);
    b->notices_head = b->notices_tail = NULL;
    wm_maps_free_all(b);
    wm_gc_work_free(b);
    b->live_anon = b->live_named = 0;
    for (uint32_t i = 0; i < b->names_len; i++)
        free(b->names[i].name);
    b->names_len = 0;
    wm_names_free(&b->name_index);
    for (uint32_t i = 0; i < b->modules_len; i++) {
        wm_module *m = b->modules[i];
        if (!m)
            continue;
        wm_handles_free(&m->handles);
        m->bytes_used = m->entries_used = m->bytes_credit = m->entries_credit = 0;
        m->watches_used = 0;
        m->dead = i != WM_HOST_ID;
    }
}

void wm_broker_close(wm_broker *b)
{
    stop_ticking(b);
    wm_lock(b);
    clear_state(b);
    wm_unlock(b);
}

void wm_broker_free(wm_broker *b)
{
    if (!b)
        return;
    stop_ticking(b);
    clear_state(b);
    wm_links_free(b);
    free(b->events);
    for (uint32_t i = 0; i < b->modules_len; i++)
        if (b->modules[i])
            wm_module_free(b->modules[i]);
    free(b->modules);
    free(b->chunks);
    free(b->free_ids);
    free(b->names);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

wm_module *wm_broker_host(wm_broker *b) { return b->host; }

void wm_broker_stats(wm_broker *b, wm_stats *out)
{
    wm_lock(b);
    out->maps = b->live_anon;
    out->named = b->live_named;
    out->unreleased_borrows = b->unreleased_borrows;
    out->cycles_reclaimed = b->cycles_reclaimed;
    out->reclaimed = b->reclaimed;
    out->collections = b->collections;
    out->gc_work_bytes = wm_gc_work_bytes(b);
    out->entries = 0;
    wm_stripes_lock_all(b);
    for (uint32_t i = 0; i < b->maps_len; i++)
        if (WM_MAP(b, i).id)
            out->entries += WM_MAP(b, i).table.live;
    wm_stripes_unlock_all(b);
    out->modules = 0;
    for (uint32_t i = 1; i < b->modules_len; i++)
        out->modules += b->modules[i] != NULL;
    out->links = 0;
    for (const wm_link *l = b->links; l; l = l->next)
        out->links++;
    wm_unlock(b);
}

uint64_t wm_broker_map_id(wm_broker *b, wm_module *m, uint32_t h)
{
    wm_handle *slot;
    uint64_t id = 0;
    wm_lock(b);
    if (wm_handles_lookup(&m->handles, h, &slot) == WM_OK)
        id = WM_MAP(b, slot->map).id;
    wm_unlock(b);
    return id;
}

void wm_broker_set_strict_borrows(wm_broker *b, uint32_t strict)
{
    wm_lock(b);
    b->strict_borrows = strict != 0;
    wm_unlock(b);
}

uint32_t wm_broker_has_notices(wm_broker *b)
{
    wm_lock(b);
    uint32_t any = b->notices_head != NULL;
    wm_unlock(b);
    return any;
}

uint32_t wm_broker_host_after(wm_broker *b)
{
    wm_lock(b);
    uint32_t any = b->events_len != b->events_taken || b->notices_head != NULL;
    wm_unlock(b);
    return any;
}

size_t wm_broker_take_notices(wm_broker *b, uint32_t *modules, int64_t *cookies, size_t cap)
{
    size_t n = 0;
    wm_lock(b);
    while (n < cap && b->notices_head) {
        wm_watch *w = b->notices_head;
        b->notices_head = w->next;
        modules[n] = w->module;
        cookies[n] = w->cookie;
        b->modules[w->module]->watches_used--;
        free(w);
        n++;
    }
    if (!b->notices_head)
        b->notices_tail = NULL;
    wm_unlock(b);
    return n;
}

