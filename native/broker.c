/* broker.c: broker and module lifetime, grants, names and statistics. */
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

static void free_module(wm_module *m)
{
    free(m->name);
    wm_handles_free(&m->handles);
    for (uint32_t i = 0; i < m->grants_len; i++)
        free(m->grants[i].name);
    free(m->grants);
    free(m);
}

static wm_module *add_module(wm_broker *b, const wm_limits *limits, const char *name)
{
    if (b->modules_len >= WM_MAX_MODULES)
        return NULL;
    if (b->modules_len == b->modules_cap) {
        uint32_t cap = b->modules_cap ? b->modules_cap * 2 : 8;
        wm_module **modules = realloc(b->modules, (size_t)cap * sizeof *modules);
        if (!modules)
            return NULL;
        b->modules = modules;
        b->modules_cap = cap;
    }
    wm_module *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name))) {
        free(m);
        return NULL;
    }
    m->broker = b;
    m->id = b->modules_len;
    m->limits = *limits;
    wm_handles_init(&m->handles);
    b->modules[b->modules_len++] = m;
    return m;
}

wm_broker *wm_broker_new(const wm_wasmtime_api *api, uint64_t seed, const wm_limits *host_limits)
{
    wm_broker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
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
    b->seed = seed;
    wm_limits host = *host_limits;
    host.handles = WM_HANDLE_MAX_SLOTS;
    host.bytes = UINT64_MAX;
    host.entries = UINT64_MAX;
    host.watches = UINT32_MAX;
    host.trap_on_quota = 0;
    if (!(b->host = add_module(b, &host, "host"))) {
        wm_broker_free(b);
        return NULL;
    }
    b->host->handles.wraps = true;
    return b;
}

static void clear_state(wm_broker *b)
{
    for (uint32_t i = 0; i < b->maps_len; i++)
        free_watches(b->maps[i].watches);
    free_watches(b->notices_head);
    b->notices_head = b->notices_tail = NULL;
    wm_maps_free_all(b);
    b->live_anon = b->live_named = 0;
    for (uint32_t i = 0; i < b->names_len; i++)
        free(b->names[i].name);
    b->names_len = 0;
    for (uint32_t i = 0; i < b->modules_len; i++) {
        wm_module *m = b->modules[i];
        wm_handles_free(&m->handles);
        m->bytes_used = m->entries_used = 0;
        m->watches_used = 0;
        m->dead = i != WM_HOST_ID;
    }
}

void wm_broker_close(wm_broker *b)
{
    wm_lock(b);
    clear_state(b);
    wm_unlock(b);
}

void wm_broker_free(wm_broker *b)
{
    if (!b)
        return;
    clear_state(b);
    wm_links_free(b);
    free(b->events);
    for (uint32_t i = 0; i < b->modules_len; i++)
        free_module(b->modules[i]);
    free(b->modules);
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
    out->entries = 0;
    for (uint32_t i = 0; i < b->maps_len; i++)
        if (b->maps[i].id)
            out->entries += b->maps[i].store.live;
    wm_unlock(b);
}

uint64_t wm_broker_map_id(wm_broker *b, wm_module *m, uint32_t h)
{
    wm_handle *slot;
    uint64_t id = 0;
    wm_lock(b);
    if (wm_handles_lookup(&m->handles, h, &slot) == WM_OK)
        id = b->maps[slot->map].id;
    wm_unlock(b);
    return id;
}

void wm_broker_set_strict_borrows(wm_broker *b, uint32_t strict)
{
    wm_lock(b);
    b->strict_borrows = strict != 0;
    wm_unlock(b);
}

uint32_t wm_broker_take_trap_origin(wm_broker *b)
{
    wm_lock(b);
    uint32_t origin = b->trap_origin;
    b->trap_origin = 0;
    wm_unlock(b);
    return origin;
}

uint32_t wm_broker_has_notices(wm_broker *b)
{
    wm_lock(b);
    uint32_t any = b->notices_head != NULL;
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

wm_module *wm_module_new(wm_broker *b, const wm_limits *limits, const char *name)
{
    wm_lock(b);
    wm_module *m = add_module(b, limits, name);
    wm_unlock(b);
    return m;
}

int wm_module_grant(wm_module *m, const uint8_t *name, uint32_t name_len, uint32_t rights)
{
    if (rights & ~(uint32_t)WM_RIGHTS_ALL || name_len == 0 || name_len > WM_MAX_NAME_LEN)
        return WM_INVAL;
    wm_broker *b = m->broker;
    int err = WM_OK;
    wm_lock(b);
    for (uint32_t i = 0; i < m->grants_len; i++) {
        if (m->grants[i].len == name_len && memcmp(m->grants[i].name, name, name_len) == 0) {
            m->grants[i].rights = rights;
            goto out;
        }
    }
    wm_grant *grants = realloc(m->grants, (m->grants_len + 1) * sizeof *grants);
    uint8_t *copy = malloc(name_len ? name_len : 1);
    if (!grants || !copy) {
        if (grants)
            m->grants = grants;
        free(copy);
        err = WM_QUOTA;
        goto out;
    }
    memcpy(copy, name, name_len);
    m->grants = grants;
    m->grants[m->grants_len++] = (wm_grant){copy, name_len, rights};
out:
    wm_unlock(b);
    return err;
}

void wm_module_set_memory(wm_module *m, const void *wasmtime_memory)
{
    wm_lock(m->broker);
    memcpy(&m->memory, wasmtime_memory, sizeof m->memory);
    m->has_memory = true;
    wm_unlock(m->broker);
}

uint32_t wm_module_id(wm_module *m) { return m->id; }

#define LOCKED_READ(type, name, expr)                                                             \
    type name(wm_module *m)                                                                       \
    {                                                                                             \
        wm_lock(m->broker);                                                                       \
        type v = (expr);                                                                          \
        wm_unlock(m->broker);                                                                     \
        return v;                                                                                 \
    }
LOCKED_READ(uint32_t, wm_module_handle_count, m->handles.live)
LOCKED_READ(uint64_t, wm_module_bytes_used, m->bytes_used)
LOCKED_READ(uint64_t, wm_module_entries_used, m->entries_used)

void wm_module_teardown(wm_module *m)
{
    wm_broker *b = m->broker;
    wm_lock(b);
    m->dead = true;
    WM_TRACE(b, .kind = WM_EV_TEARDOWN, .module = m->id);
    for (uint32_t i = 0; i < m->handles.len; i++) {
        wm_handle *slot = &m->handles.slots[i];
        if (slot->state == WM_H_FREE)
            continue;
        uint32_t map = slot->map;
        bool owning = slot->state == WM_H_OWN;
        WM_TRACE(b, .kind = WM_EV_CLOSE, .module = m->id,
                 .handle = (slot->gen << WM_HANDLE_INDEX_BITS) | i, .map = WM_MAP_ID(b, map),
                 .flags = WM_EVF_TEARDOWN | (owning ? 0 : WM_EVF_BORROWED));
        wm_handles_release(&m->handles, slot);
        if (owning)
            wm_maps_release(b, map);
    }
    wm_unlock(b);
}
