/* module.c: a module's lifetime in the broker: made, granted names, torn
 * down (every handle closed) and unloaded (its links, watches and charges
 * handed on, its id free for reuse).
 */
#include <stdlib.h>
#include <string.h>

#include "wm_core.h"

void wm_module_free(wm_module *m)
{
    free(m->name);
    wm_handles_free(&m->handles);
    for (uint32_t i = 0; i < m->grants_len; i++)
        free(m->grants[i].name);
    free(m->grants);
    wm_names_free(&m->grant_index);
    free(m);
}

wm_module *wm_module_add(wm_broker *b, const wm_limits *limits, const char *name)
{
    bool reuse = b->free_ids_len > 0; /* an unloaded module's id */
    if (!reuse && b->modules_len >= WM_MAX_MODULES)
        return NULL;
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

wm_module *wm_module_new(wm_broker *b, const wm_limits *limits, const char *name)
{
    wm_lock(b);
    wm_module *m = wm_module_add(b, limits, name);
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

/* A module's usage is written by its own thread, and credited by others,
 * under a map's stripe: read it with every stripe held, never mid-credit. */
#define USAGE_READ(name, expr)                                                                    \
    uint64_t name(wm_module *m)                                                                   \
    {                                                                                             \
        wm_lock(m->broker);                                                                       \
        wm_stripes_lock_all(m->broker);                                                           \
        uint64_t v = (expr);                                                                      \
        wm_stripes_unlock_all(m->broker);                                                         \
        wm_unlock(m->broker);                                                                     \
        return v;                                                                                 \
    }
USAGE_READ(wm_module_bytes_used, wm_used_bytes(m))
USAGE_READ(wm_module_entries_used, wm_used_entries(m))

static void teardown_locked(wm_module *m)
{
    wm_broker *b = m->broker;
    if (!m->torn) /* once: an instance a trap tore down is unloaded later */
        WM_TRACE(b, .kind = WM_EV_TEARDOWN, .module = m->id);
    m->torn = true;
    __atomic_store_n(&m->dead, true, __ATOMIC_SEQ_CST); /* pool.c reads it unlocked */
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

void wm_module_mark_dead(wm_module *m) { __atomic_store_n(&m->dead, true, __ATOMIC_SEQ_CST); }

void wm_module_teardown(wm_module *m)
{
    /* A thread running in it reads its handle table without the lock: the
     * table is this thread's to change once no other runs in it.  Dead,
     * it takes no new calls; one running now ends first. */
    __atomic_store_n(&m->dead, true, __ATOMIC_SEQ_CST);
    wm_pool_wait_unowned(m);
    wm_lock(m->broker);
    teardown_locked(m);
    wm_unlock(m->broker);
}

/* Drop every watch registration of module `id`: on maps, and queued. */
static void forget_watches(wm_broker *b, uint32_t id)
{
    for (uint32_t i = 0; i < b->maps_len; i++) {
        for (wm_watch **w = &WM_MAP(b, i).watches; *w;) {
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
    wm_stripes_lock_all(b);
    for (uint32_t i = 0; i < b->maps_len && wm_used_bytes(m); i++) {
        wm_map *map = &WM_MAP(b, i).table;
        if (!WM_MAP(b, i).id)
            continue;
        if (WM_MAP(b, i).account == m->id) {
            WM_MAP(b, i).account = WM_HOST_ID;
            wm_credit(m, m, WM_MAP_COST, 0);
            wm_charge(b->host, WM_MAP_COST, 0);
        }
        for (uint32_t k = 0; k < map->used; k++) {
            wm_entry *e = &map->entries[k];
            if (e->kind != WM_VAL_NONE && e->account == m->id) {
                wm_account_credit(b, e, m);
                wm_account_charge(b->host, e);
            }
        }
    }
    wm_stripes_unlock_all(b);
}

/* Free the links `m` made and the host's links into its pool; others into
 * its pool wait for a module of its name again. */
static void forget_links(wm_broker *b, wm_module *m)
{
    for (wm_link **l = &b->links; *l;) {
        wm_link *link = *l;
        bool into = link->pool && wm_pool_has(link->pool, m);
        if (link->caller == m || (into && link->caller == b->host)) {
            *l = link->next;
            wm_link_free(link);
            continue;
        }
        if (into)
            link->pool = NULL;
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
    if (wm_used_bytes(m))
        charge_host(b, m);
    wm_forget_origin(m); /* nothing is left of it to tear down */
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
    wm_module_free(m);
    wm_unlock(b);
}
