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
    wm_names_free(&m->grant_index);
    free(m);
}

static wm_module *add_module(wm_broker *b, const wm_limits *limits, const char *name)
{
    bool reuse = b->free_ids_len > 0; /* an unloaded module's id */
    if (!reuse && b->modules_len >= WM_MAX_MODULES)
        return NULL;
    if (!reuse && b->modules_len == b->modules_cap) {
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
    m->id = reuse ? b->free_ids[--b->free_ids_len] : b->modules_len++;
    m->limits = *limits;
    wm_handles_init(&m->handles);
    b->modules[m->id] = m;
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
    if (!(b->host = add_module(b, &host, "host"))) {
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
        free_watches(b->maps[i].watches);
    free_watches(b->notices_head);
    b->notices_head = b->notices_tail = NULL;
    wm_maps_free_all(b);
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
        m->bytes_used = m->entries_used = 0;
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
            free_module(b->modules[i]);
    free(b->modules);
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
    out->entries = 0;
    for (uint32_t i = 0; i < b->maps_len; i++)
        if (b->maps[i].id)
            out->entries += b->maps[i].table.live;
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
    int64_t at = wm_names_find(&m->grant_index, m->grants, sizeof *m->grants, name, name_len,
                               b->seed);
    if (at >= 0) { /* a second grant of a name replaces the first */
        m->grants[at].rights = rights;
        goto out;
    }
    if (m->grants_len == m->grants_cap) {
        uint32_t cap = m->grants_cap ? m->grants_cap * 2 : 8;
        wm_grant *grants = cap > m->grants_cap ? realloc(m->grants, cap * sizeof *grants) : NULL;
        if (!grants) {
            err = WM_QUOTA;
            goto out;
        }
        m->grants = grants;
        m->grants_cap = cap;
    }
    uint8_t *copy = malloc(name_len);
    if (!copy) {
        err = WM_QUOTA;
        goto out;
    }
    memcpy(copy, name, name_len);
    m->grants[m->grants_len] = (wm_grant){copy, name_len, rights};
    if (wm_names_add(&m->grant_index, m->grants, sizeof *m->grants, m->grants_len, b->seed)) {
        free(copy);
        err = WM_QUOTA;
        goto out;
    }
    m->grants_len++;
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

static void teardown_locked(wm_module *m)
{
    wm_broker *b = m->broker;
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
}

void wm_module_teardown(wm_module *m)
{
    wm_lock(m->broker);
    teardown_locked(m);
    wm_unlock(m->broker);
}

/* Drop every watch registration of module `id`: on maps, and queued. */
static void forget_watches(wm_broker *b, uint32_t id)
{
    for (uint32_t i = 0; i < b->maps_len; i++) {
        for (wm_watch **w = &b->maps[i].watches; *w;) {
            if ((*w)->module == id) {
                wm_watch *gone = *w;
                *w = gone->next;
                free(gone);
            } else {
                w = &(*w)->next;
            }
        }
    }
    b->notices_tail = NULL;
    for (wm_watch **w = &b->notices_head; *w;) {
        if ((*w)->module == id) {
            wm_watch *gone = *w;
            *w = gone->next;
            free(gone);
        } else {
            b->notices_tail = *w;
            w = &(*w)->next;
        }
    }
}

/* Charge every entry module `m` wrote and map it made to the host instead. */
static void charge_host(wm_broker *b, wm_module *m)
{
    for (uint32_t i = 0; i < b->maps_len && m->bytes_used; i++) {
        wm_map *map = &b->maps[i].table;
        if (!b->maps[i].id)
            continue;
        if (b->maps[i].account == m->id) {
            b->maps[i].account = WM_HOST_ID;
            m->bytes_used -= WM_MAP_COST;
            b->host->bytes_used += WM_MAP_COST;
        }
        for (uint32_t k = 0; k < map->used; k++) {
            wm_entry *e = &map->entries[k];
            if (e->kind != WM_VAL_NONE && e->account == m->id) {
                wm_account_credit(b, e);
                wm_account_charge(b->host, e);
            }
        }
    }
}

/* Free the links `m` made and the host's links into `m`; others into `m`
 * wait for a module of its name again. */
static void forget_links(wm_broker *b, wm_module *m)
{
    for (wm_link **l = &b->links; *l;) {
        wm_link *link = *l;
        if (link->caller == m || (link->target == m && link->caller == b->host)) {
            *l = link->next;
            free(link->how);
            free(link->label);
            free(link);
            continue;
        }
        if (link->target == m)
            link->target = NULL;
        if (link->loading == m)
            link->loading = NULL;
        l = &link->next;
    }
}

void wm_module_unload(wm_module *m)
{
    wm_broker *b = m->broker;
    wm_lock(b);
    if (m == b->host || b->modules[m->id] != m) { /* never the host; never twice */
        wm_unlock(b);
        return;
    }
    teardown_locked(m);
    forget_links(b, m);
    if (m->watches_used)
        forget_watches(b, m->id);
    if (m->bytes_used)
        charge_host(b, m);
    if (b->trap_origin == m->id + 1)
        b->trap_origin = 0; /* nothing is left of it to tear down */
    uint32_t id = m->id;
    b->modules[id] = NULL;
    if (b->free_ids_len == b->free_ids_cap) {
        uint32_t cap = b->free_ids_cap ? b->free_ids_cap * 2 : 8;
        uint32_t *ids = realloc(b->free_ids, (size_t)cap * sizeof *ids);
        if (ids) {
            b->free_ids = ids;
            b->free_ids_cap = cap;
        }
    }
    if (b->free_ids_len < b->free_ids_cap) /* else the id is not reused: harmless */
        b->free_ids[b->free_ids_len++] = id;
    free_module(m);
    wm_unlock(b);
}
