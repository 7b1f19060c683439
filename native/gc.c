/* gc.c: the cycle collector.
 *
 * Reference counting reclaims a map the moment its count reaches zero, but
 * maps that reference each other through set_map keep each other's counts
 * above zero after the last handle, host reference or name is gone.  This
 * collector finds such garbage by trial deletion, as CPython's gc does
 * (see CPython's InternalDocs/garbage_collector.md), over the graph whose
 * nodes are maps and whose edges are map references stored in entries.
 *
 *   1. Candidates are the live maps that some map references (refs_in > 0):
 *      only those can be in, or hang off, a cycle.  Each gets
 *      gc = its refcount.
 *   2. Every reference from a candidate to a candidate is subtracted from
 *      the target's gc.  What is left counts references from outside the
 *      candidates: handles (of any module or the host), names, and maps
 *      that no map references.
 *   3. Candidates with gc > 0 are reachable from outside; so is everything
 *      they reference, transitively (an explicit stack, no recursion).
 *   4. The candidates not reached are garbage: nothing outside references
 *      them, directly or through other maps.  They are marked DYING and
 *      freed together: references among them are dropped without being
 *      counted down, references out of them release their targets (which
 *      may reclaim more, by plain counting), and their drop notices are
 *      queued.
 *
 * A map lent to a call in progress is reachable: the lender's owning handle
 * cannot be closed or moved while it is lent, so it counts in step 2.  A
 * named map is never garbage (its name counts).  The whole pass runs under
 * the broker lock in O(candidates + their entries).
 *
 * It runs on demand (Broker.collect) and by itself: every release that
 * leaves a referenced map alive may have cut a cycle loose, and after
 * gc_threshold of them the collector runs (like CPython's generation-0
 * threshold; 0 turns that off).
 */
#include <stdlib.h>

#include "wm_core.h"

enum { NOT_CANDIDATE = -1, REACHABLE = -2, DYING = -3 };

/* Call f(child) for every map reference among map i's entries. */
#define FOR_EACH_CHILD(b, i, child, body)                                                         \
    do {                                                                                          \
        const wm_map *store_ = &(b)->maps[i].table;                                               \
        for (uint32_t k_ = 0; k_ < store_->used; k_++) {                                          \
            if (store_->entries[k_].kind != WM_VAL_MAP)                                           \
                continue;                                                                         \
            uint32_t child = store_->entries[k_].child;                                           \
            body;                                                                                 \
        }                                                                                         \
    } while (0)

uint64_t wm_collect_locked(wm_broker *b)
{
    if (b->collecting)
        return 0;
    uint32_t n = b->maps_len;
    int64_t *gc = malloc((size_t)(n ? n : 1) * sizeof *gc);
    uint32_t *stack = malloc((size_t)(n ? n : 1) * sizeof *stack);
    if (!gc || !stack) { /* no memory: try again at the next trigger */
        free(gc);
        free(stack);
        return 0;
    }
    b->collecting = true;
    b->gc_pending = 0;
    b->collections++;

    /* 1. Candidates and their counts. */
    for (uint32_t i = 0; i < n; i++) {
        const wm_mapslot *s = &b->maps[i];
        gc[i] = s->id && s->refs_in ? (int64_t)s->refcount : NOT_CANDIDATE;
    }
    /* 2. Subtract references among candidates. */
    for (uint32_t i = 0; i < n; i++) {
        if (gc[i] == NOT_CANDIDATE || !b->maps[i].refs_out)
            continue;
        FOR_EACH_CHILD(b, i, child, if (gc[child] >= 0) gc[child]--);
    }
    /* 3. Mark what outside references reach. */
    uint32_t top = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (gc[i] > 0) {
            gc[i] = REACHABLE;
            stack[top++] = i;
        }
    }
    while (top) {
        uint32_t i = stack[--top];
        if (!b->maps[i].refs_out)
            continue;
        FOR_EACH_CHILD(b, i, child, if (gc[child] >= 0) {
            gc[child] = REACHABLE;
            stack[top++] = child;
        });
    }
    /* 4. Free the rest, together. */
    uint64_t freed = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (gc[i] == 0) {
            gc[i] = DYING;
            b->maps[i].flags |= WM_MAP_DYING;
        }
    }
    uint32_t pending = 0; /* maps only the garbage kept alive (not candidates' garbage) */
    for (uint32_t i = 0; i < n; i++)
        if (gc[i] == DYING)
            wm_maps_drop_entries(b, i, &pending);
    for (uint32_t i = 0; i < n; i++) {
        if (gc[i] == DYING) {
            wm_maps_free_slot(b, i);
            freed++;
        }
    }
    while (pending) { /* reclaimed by plain counting, as at zero anywhere */
        uint32_t index = pending - 1;
        pending = b->maps[index].next;
        wm_maps_drop_entries(b, index, &pending);
        wm_maps_free_slot(b, index);
        freed++;
    }
    b->cycles_reclaimed += freed;
    b->collecting = false;
    free(gc);
    free(stack);
    return freed;
}

uint64_t wm_broker_collect(wm_broker *b)
{
    wm_lock(b);
    uint64_t freed = wm_collect_locked(b);
    wm_unlock(b);
    return freed;
}

void wm_broker_set_gc_threshold(wm_broker *b, uint64_t threshold)
{
    wm_lock(b);
    b->gc_threshold = threshold;
    wm_unlock(b);
}
