/* snapshot.c: who holds what, right now -- every live handle, map and map
 * reference -- for the leak report and the ownership graph.  Each call
 * copies under the lock; nothing here is on a hot path. */
#include <string.h>

#include "wm_core.h"

size_t wm_snapshot_handles(wm_broker *b, wm_handle_info *out, size_t cap)
{
    size_t n = 0;
    wm_lock(b);
    for (uint32_t m = 0; m < b->modules_len; m++) {
        if (!b->modules[m])
            continue; /* unloaded */
        const wm_handle_table *t = &b->modules[m]->handles;
        for (uint32_t i = 0; i < t->len; i++) {
            const wm_handle *h = &t->slots[i];
            if (h->state == WM_H_FREE)
                continue;
            if (n < cap)
                out[n] = (wm_handle_info){.map = WM_MAP(b, h->map).id,
                                          .module = m,
                                          .handle = (h->gen << WM_HANDLE_INDEX_BITS) | i,
                                          .busy = h->busy,
                                          .state = h->state,
                                          .rights = h->rights};
            n++;
        }
    }
    wm_unlock(b);
    return n;
}

static const wm_named *name_of(const wm_broker *b, uint32_t slot)
{
    uint32_t at = WM_MAP(b, slot).name;
    return at < b->names_len && b->names[at].map == slot ? &b->names[at] : NULL;
}

size_t wm_snapshot_maps(wm_broker *b, wm_map_info *out, size_t cap)
{
    size_t n = 0;
    wm_lock(b);
    wm_stripes_lock_all(b);
    for (uint32_t i = 0; i < b->maps_len; i++) {
        const wm_mapslot *s = &WM_MAP(b, i);
        if (!s->id)
            continue;
        if (n < cap) {
            uint64_t bytes = 0;
            for (uint32_t k = 0; k < s->table.used; k++)
                if (s->table.entries[k].kind != WM_VAL_NONE)
                    bytes += wm_entry_size(&s->table.entries[k]) - WM_ENTRY_COST;
            const wm_named *named = (s->flags & WM_MAP_NAMED) ? name_of(b, i) : NULL;
            out[n] = (wm_map_info){.id = s->id,
                                   .refcount = s->refcount,
                                   .entries = s->table.live,
                                   .bytes = bytes,
                                   .name = named ? named->name : NULL,
                                   .name_len = named ? named->len : 0};
        }
        n++;
    }
    wm_stripes_unlock_all(b);
    wm_unlock(b);
    return n;
}

size_t wm_snapshot_edges(wm_broker *b, wm_edge_info *out, size_t cap)
{
    size_t n = 0;
    wm_lock(b);
    wm_stripes_lock_all(b);
    for (uint32_t i = 0; i < b->maps_len; i++) {
        const wm_mapslot *s = &WM_MAP(b, i);
        if (!s->id || !s->refs_out)
            continue;
        for (uint32_t k = 0; k < s->table.used; k++) {
            const wm_entry *e = &s->table.entries[k];
            if (e->kind != WM_VAL_MAP)
                continue;
            if (n < cap) {
                wm_edge_info *o = &out[n];
                o->parent = s->id;
                o->child = WM_MAP(b, e->child).id;
                o->key_len = e->key_len;
                memcpy(o->key, e->data, e->key_len < sizeof o->key ? e->key_len : sizeof o->key);
            }
            n++;
        }
    }
    wm_stripes_unlock_all(b);
    wm_unlock(b);
    return n;
}
