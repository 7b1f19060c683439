/* refcount.c: the refcount table, one row per map, and reclaim at zero.
 *
 * A map's count is the number of owning handles to it (any module, the
 * host included), of references stored in live maps by set_map, plus one
 * while it is named (docs/ownership.md).  When it reaches zero the map is
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
        b->maps_free = WM_MAP(b, index).next;
    } else {
        if (b->maps_len == WM_MAX_CHUNKS * WM_CHUNK)
            return WM_QUOTA;
        uint32_t chunk = b->maps_len >> WM_CHUNK_BITS;
        if (!b->chunks[chunk]) {
            if (!(b->chunks[chunk] = malloc(sizeof(wm_chunk))))
                return WM_QUOTA;
            memset(b->chunks[chunk]->referenced, 0, sizeof b->chunks[chunk]->referenced);
        }
        index = b->maps_len++;
    }
    wm_mapslot *slot = &WM_MAP(b, index);
    memset(slot, 0, sizeof *slot);
    slot->refcount = 1;
    slot->id = ++b->next_map_id;
    slot->flags = flags;
    slot->account = WM_NO_ACCOUNT; /* wm_op_new charges its maker */
    wm_map_init(&slot->table);
    if (flags & WM_MAP_NAMED)
        b->live_named++;
    else
        b->live_anon++;
    *out_slot = index;
    return WM_OK;
}

void wm_maps_incref(wm_broker *b, uint32_t slot) { WM_MAP(b, slot).refcount++; }

/* A map's referenced bit follows its refs_in: set from the first reference
 * stored in a map, clear after the last goes (or the row is freed). */
static void mark_referenced(wm_broker *b, uint32_t slot)
{
    WM_REFERENCED_WORD(b, slot) |= WM_REFERENCED_BIT(slot);
}

static void unmark_referenced(wm_broker *b, uint32_t slot)
{
    WM_REFERENCED_WORD(b, slot) &= ~WM_REFERENCED_BIT(slot);
}

void wm_ref_add(wm_broker *b, uint32_t parent, uint32_t child)
{
    WM_MAP(b, child).refcount++;
    if (WM_MAP(b, child).refs_in++ == 0)
        mark_referenced(b, child);
    WM_MAP(b, parent).refs_out++;
}

void wm_ref_forget(wm_broker *b, uint32_t parent, uint32_t child)
{
    WM_ASSERT(WM_MAP(b, parent).refs_out > 0 && WM_MAP(b, child).refs_in > 0);
    WM_MAP(b, parent).refs_out--;
    if (--WM_MAP(b, child).refs_in == 0)
        unmark_referenced(b, child);
}

void wm_maps_drop_entries(wm_broker *b, uint32_t index, uint32_t *pending, wm_credits *credits)
{
    wm_map *table = &WM_MAP(b, index).table;
    for (uint32_t i = 0; i < table->used; i++) {
        wm_entry *e = &table->entries[i];
        if (e->kind == WM_VAL_NONE)
            continue;
        wm_credits_add(credits, b->modules[e->account], wm_entry_size(e), 1);
        if (e->kind != WM_VAL_MAP)
            continue;
        wm_mapslot *child = &WM_MAP(b, e->child);
        if (child->flags & WM_MAP_DYING)
            continue; /* freed with this one by the collector */
        WM_ASSERT(child->refs_in > 0 && child->refcount >= child->refs_in);
        if (--child->refs_in == 0)
            unmark_referenced(b, e->child);
        if (--child->refcount == 0) {
            child->next = *pending;
            *pending = e->child + 1;
        } else if (child->refs_in) {
            b->gc_pending++; /* it may now be a cycle nothing else reaches */
        }
    }
    wm_map_free(table);
}

void wm_maps_free_slot(wm_broker *b, uint32_t index, wm_credits *credits)
{
    wm_mapslot *slot = &WM_MAP(b, index);
    WM_TRACE(b, .kind = (slot->flags & WM_MAP_DYING) ? WM_EV_CYCLE_RECLAIM : WM_EV_RECLAIM,
             .map = slot->id);
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
    if (slot->account != WM_NO_ACCOUNT)
        wm_credits_add(credits, b->modules[slot->account], WM_MAP_COST, 0);
    b->reclaimed++;
    if (slot->flags & WM_MAP_NAMED)
        b->live_named--;
    else
        b->live_anon--;
    slot->id = 0;
    /* DYING stays until wm_maps_alloc reuses the row: garbage the collector
     * frees after this map still skips its references to it. */
    slot->flags &= WM_MAP_DYING;
    if (slot->refs_in) /* a collected map: referenced by the garbage */
        unmark_referenced(b, index);
    slot->refs_in = slot->refs_out = 0;
    slot->next = b->maps_free;
    b->maps_free = index + 1;
}

/* Reclaim every map on the pending list, and what they alone kept alive. */
static void reclaim_pending(wm_broker *b, uint32_t pending)
{
    wm_credits credits = {0};
    while (pending) {
        uint32_t index = pending - 1;
        pending = WM_MAP(b, index).next;
        wm_maps_drop_entries(b, index, &pending, &credits);
        wm_maps_free_slot(b, index, &credits);
    }
    wm_credits_flush(&credits);
}

/* Enough releases that may have cut a cycle loose: run the collector. */
static void maybe_collect(wm_broker *b)
{
    if (b->gc_threshold && b->gc_pending >= b->gc_threshold && !b->collecting)
        wm_collect_locked(b);
}

void wm_maps_release(wm_broker *b, uint32_t slot)
{
    wm_mapslot *s = &WM_MAP(b, slot);
    WM_ASSERT(s->id && s->refcount > s->refs_in); /* a release is of a count not from a map */
    if (--s->refcount == 0) {
        s->next = 0;
        reclaim_pending(b, slot + 1); /* counts the survivors it leaves referenced */
    } else if (s->refs_in) {
        /* Still alive but referenced from maps: it may now be part of a
         * cycle nothing else reaches. */
        b->gc_pending++;
    }
    maybe_collect(b);
}

void wm_maps_free_all(wm_broker *b)
{
    for (uint32_t i = 0; i < b->maps_len; i++)
        if (WM_MAP(b, i).id)
            wm_map_free(&WM_MAP(b, i).table);
    for (uint32_t c = 0; b->chunks && c < WM_MAX_CHUNKS && b->chunks[c]; c++) {
        free(b->chunks[c]);
        b->chunks[c] = NULL;
    }
    b->maps_len = b->maps_free = 0;
}

uint64_t wm_check_locked(wm_broker *b)
{
    uint32_t n = b->maps_len;
    uint64_t *count = calloc((size_t)n + 1, sizeof *count);
    uint64_t *in = calloc((size_t)n + 1, sizeof *in);
    uint64_t *out = calloc((size_t)n + 1, sizeof *out);
    uint64_t bad = 0;
    if (!count || !in || !out) {
        bad = UINT64_MAX;
        goto done;
    }
    for (uint32_t m = 0; m < b->modules_len; m++) {
        if (!b->modules[m])
            continue; /* unloaded */
        const wm_handle_table *t = &b->modules[m]->handles;
        for (uint32_t i = 0; i < t->len; i++)
            if (t->slots[i].state == WM_H_OWN)
                count[t->slots[i].map]++;
    }
    for (uint32_t i = 0; i < b->names_len; i++)
        count[b->names[i].map]++;
    for (uint32_t i = 0; i < n; i++) {
        if (!WM_MAP(b, i).id)
            continue;
        const wm_map *table = &WM_MAP(b, i).table;
        for (uint32_t k = 0; k < table->used; k++) {
            if (table->entries[k].kind == WM_VAL_MAP) {
                count[table->entries[k].child]++;
                in[table->entries[k].child]++;
                out[i]++;
            }
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        const wm_mapslot *s = &WM_MAP(b, i);
        bool referenced = WM_REFERENCED_WORD(b, i) & WM_REFERENCED_BIT(i);
        if (s->id ? s->refcount != count[i] || s->refs_in != in[i] || s->refs_out != out[i] ||
                        referenced != (in[i] > 0)
                  : referenced)
            bad++;
    }
done:
    free(count);
    free(in);
    free(out);
    return bad;
}

uint64_t wm_broker_check(wm_broker *b)
{
    wm_lock(b);
    wm_stripes_lock_all(b);
    uint64_t bad = wm_check_locked(b);
    wm_stripes_unlock_all(b);
    wm_unlock(b);
    return bad;
}
