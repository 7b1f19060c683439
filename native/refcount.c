/* refcount.c: the refcount table, one row per map, and reclaim at zero.
 *
 * A map's count is the number of owning handles to it (any module, the
 * host included), of references stored in live maps by set_map, plus one
 * while it is named (spec section 2).  When it reaches zero the map is
 * reclaimed at once: its entries are freed and credited back to the
 * modules that wrote them, and the maps it referenced lose a reference,
 * which may reclaim them in turn.  The cascade runs over an intrusive
 * list threaded through the dead rows, so a chain of any length costs no
 * stack and no allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "wm_core.h"

int wm_maps_alloc(wm_broker *b, uint32_t flags, uint32_t *out_slot)
{
    uint32_t index;
    if (b->maps_free) {
        index = b->maps_free - 1;
        b->maps_free = b->maps[index].next;
    } else {
        if (b->maps_len == UINT32_MAX)
            return WM_QUOTA;
        if (b->maps_len == b->maps_cap) {
            uint32_t cap = b->maps_cap ? b->maps_cap * 2 : 64;
            wm_mapslot *maps = realloc(b->maps, (size_t)cap * sizeof *maps);
            if (!maps)
                return WM_QUOTA;
            b->maps = maps;
            b->maps_cap = cap;
        }
        index = b->maps_len++;
    }
    wm_mapslot *slot = &b->maps[index];
    memset(slot, 0, sizeof *slot);
    slot->refcount = 1;
    slot->id = ++b->next_map_id;
    slot->flags = flags;
    wm_map_init(&slot->store);
    if (flags & WM_MAP_NAMED)
        b->live_named++;
    else
        b->live_anon++;
    *out_slot = index;
    return WM_OK;
}

void wm_maps_incref(wm_broker *b, uint32_t slot) { b->maps[slot].refcount++; }

static void reclaim_one(wm_broker *b, uint32_t index, uint32_t *pending)
{
    wm_mapslot *slot = &b->maps[index];
    wm_map *store = &slot->store;
    for (uint32_t i = 0; i < store->used; i++) {
        wm_entry *e = &store->entries[i];
        if (e->kind == WM_VAL_NONE)
            continue;
        wm_account_credit(b, e);
        if (e->kind == WM_VAL_MAP && --b->maps[e->child].refcount == 0) {
            b->maps[e->child].next = *pending;
            *pending = e->child + 1;
        }
    }
    wm_map_free(store);
    /* Queue its drop notices, oldest registration first (the list is
     * newest first: reverse it on the way). */
    wm_watch *head = NULL, *tail = NULL;
    for (wm_watch *w = slot->watches, *next; w; w = next) {
        next = w->next;
        w->next = head;
        head = w;
        if (!tail)
            tail = w;
    }
    if (head) {
        if (b->notices_tail)
            b->notices_tail->next = head;
        else
            b->notices_head = head;
        b->notices_tail = tail;
    }
    slot->watches = NULL;
    if (slot->flags & WM_MAP_NAMED)
        b->live_named--;
    else
        b->live_anon--;
    slot->id = 0;
    slot->flags = 0;
    slot->next = b->maps_free;
    b->maps_free = index + 1;
}

void wm_maps_release(wm_broker *b, uint32_t slot)
{
    if (--b->maps[slot].refcount)
        return;
    uint32_t pending = slot + 1;
    b->maps[slot].next = 0;
    while (pending) {
        uint32_t index = pending - 1;
        pending = b->maps[index].next;
        reclaim_one(b, index, &pending);
    }
}

void wm_maps_free_all(wm_broker *b)
{
    for (uint32_t i = 0; i < b->maps_len; i++)
        if (b->maps[i].id)
            wm_map_free(&b->maps[i].store);
    free(b->maps);
    b->maps = NULL;
    b->maps_len = b->maps_cap = b->maps_free = 0;
}
