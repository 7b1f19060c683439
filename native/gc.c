/* gc.c: the cycle collector.
 *
 * Reference counting reclaims a map the moment its count reaches zero, but
 * maps that reference each other through set_map keep each other's counts
 * above zero after the last handle, host reference or name is gone.  This
 * collector finds such garbage by trial deletion, as CPython's gc does
 * (Modules/gcmodule.c; InternalDocs/garbage_collector.md), over the graph
 * whose nodes are maps and whose edges are map references stored in
 * entries.  One function per phase, named after CPython's:
 *
 *   update_refs       Candidates are the live maps that some map references
 *                     (refs_in > 0): only those can be in, or hang off, a
 *                     cycle.  Each gets gc = its refcount.
 *   subtract_refs     Every reference from a candidate to a candidate is
 *                     subtracted from the target's gc.  What is left counts
 *                     references from outside the candidates: handles (of
 *                     any module or the host), names, and maps that no map
 *                     references.
 *   move_unreachable  Candidates with gc > 0 are reachable from outside; so
 *                     is everything they reference, transitively (an
 *                     explicit stack, no recursion).  The rest are garbage:
 *                     nothing outside references them, directly or through
 *                     other maps.  They are marked DYING.
 *   delete_garbage    The garbage is freed together: references among it
 *                     are dropped without being counted down, references out
 *                     of it release their targets (which may reclaim more,
 *                     by plain counting), and its drop notices are queued.
 *
 * A map lent to a call in progress is reachable: the lender's owning handle
 * cannot be closed or moved while it is lent, so it counts in
 * subtract_refs.  A named map is never garbage (its name counts).
 *
 * Cost, under the broker lock, with S the rows of the refcount table (live
 * and free), C the candidates, E every entry slot of the candidates that
 * hold any map reference and G those of the garbage: update_refs reads every
 * row once and lists the candidates, O(S); no later phase reads a row that
 * is not on that list.  subtract_refs reads E; move_unreachable reads the
 * list twice (the roots, then what was not reached) and the reachable
 * candidates' share of E; delete_garbage reads the list twice (drop the
 * entries, then free the rows) and G, then reclaims what only the garbage
 * kept alive, by plain counting as at zero anywhere.  O(S + C + E + G) in
 * all, with one pass over S.
 *
 * With WM_DEBUG (the sanitizer build, tests/native/run_sanitized.sh) each
 * phase asserts the refcount invariants it relies on, and the whole table
 * is recounted after a collection (wm_check_locked).
 *
 * It runs on demand (Broker.collect) and by itself: every release that
 * leaves a referenced map alive may have cut a cycle loose, and after
 * gc_threshold of them the collector runs (like CPython's generation-0
 * threshold; 0 turns that off).
 */
#include <stdlib.h>

#include "wm_core.h"

enum { NOT_CANDIDATE = -1, REACHABLE = -2, DYING = -3 };

typedef struct collection {
    wm_broker *b;
    int64_t *gc;       /* by slot: the count left, or NOT_CANDIDATE / REACHABLE / DYING */
    uint32_t *list;    /* the candidates' slots */
    uint32_t *stack;   /* move_unreachable's work */
    uint32_t n;        /* candidates */
} collection;

/* Call `body` with `child` bound to every map reference among map i's entries. */
#define FOR_EACH_CHILD(b, i, child, body)                                                         \
    do {                                                                                          \
        const wm_map *table_ = &WM_MAP((b), i).table;                                               \
        for (uint32_t k_ = 0; k_ < table_->used; k_++) {                                          \
            if (table_->entries[k_].kind != WM_VAL_MAP)                                           \
                continue;                                                                         \
            uint32_t child = table_->entries[k_].child;                                           \
            body;                                                                                 \
        }                                                                                         \
    } while (0)

static void update_refs(collection *c)
{
    wm_broker *b = c->b;
    for (uint32_t i = 0; i < b->maps_len; i++) {
        const wm_mapslot *s = &WM_MAP(b, i);
        if (!s->id || !s->refs_in) {
            c->gc[i] = NOT_CANDIDATE;
            continue;
        }
        /* Its references from maps are part of its count. */
        WM_ASSERT(s->refcount >= s->refs_in);
        c->gc[i] = (int64_t)s->refcount;
        c->list[c->n++] = i;
    }
}

static void subtract_refs(collection *c)
{
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->list[j];
        if (!WM_MAP(c->b, i).refs_out)
            continue;
        uint64_t seen = 0;
        FOR_EACH_CHILD(c->b, i, child, {
            /* A referenced map is a candidate (its refs_in > 0), and the
             * references from candidates are some of its count, never more:
             * gc stays >= refcount - refs_in >= 0. */
            WM_ASSERT(c->gc[child] > 0);
            if (c->gc[child] >= 0)
                c->gc[child]--;
            seen++;
        });
        WM_ASSERT(seen == WM_MAP(c->b, i).refs_out);
        (void)seen;
    }
}

static void move_unreachable(collection *c)
{
    wm_broker *b = c->b;
    uint32_t top = 0;
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->list[j];
        if (c->gc[i] > 0) {
            c->gc[i] = REACHABLE;
            c->stack[top++] = i;
        }
    }
    while (top) {
        uint32_t i = c->stack[--top];
        if (!WM_MAP(b, i).refs_out)
            continue;
        FOR_EACH_CHILD(b, i, child, if (c->gc[child] >= 0) {
            c->gc[child] = REACHABLE;
            c->stack[top++] = child; /* each candidate is pushed once: top <= n */
        });
    }
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->list[j];
        if (c->gc[i] == 0) {
            c->gc[i] = DYING;
            WM_MAP(b, i).flags |= WM_MAP_DYING;
            /* Garbage is never named: a name counts from outside. */
            WM_ASSERT(!(WM_MAP(b, i).flags & WM_MAP_NAMED));
        }
    }
}

/* Debug: a dying map's whole count is references from other dying maps. */
static void check_garbage(const collection *c)
{
#ifdef WM_DEBUG
    wm_broker *b = c->b;
    for (uint32_t j = 0; j < c->n; j++)
        if (c->gc[c->list[j]] == DYING)
            c->gc[c->list[j]] = 0; /* now: references from the garbage, counted up */
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->list[j];
        if (!(WM_MAP(b, i).flags & WM_MAP_DYING))
            continue;
        FOR_EACH_CHILD(b, i, child, if (WM_MAP(b, child).flags & WM_MAP_DYING) c->gc[child]++);
    }
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->list[j];
        if (WM_MAP(b, i).flags & WM_MAP_DYING) {
            WM_ASSERT((uint64_t)c->gc[i] == WM_MAP(b, i).refcount);
            c->gc[i] = DYING;
        }
    }
#else
    (void)c;
#endif
}

/* Free the garbage; the number of maps reclaimed (what it alone kept
 * alive included). */
static uint64_t delete_garbage(collection *c)
{
    wm_broker *b = c->b;
    uint64_t freed = 0;
    uint32_t pending = 0; /* maps only the garbage kept alive (not candidates' garbage) */
    for (uint32_t j = 0; j < c->n; j++)
        if (c->gc[c->list[j]] == DYING)
            wm_maps_drop_entries(b, c->list[j], &pending);
    for (uint32_t j = 0; j < c->n; j++) {
        if (c->gc[c->list[j]] == DYING) {
            wm_maps_free_slot(b, c->list[j]);
            freed++;
        }
    }
    while (pending) { /* reclaimed by plain counting, as at zero anywhere */
        uint32_t index = pending - 1;
        pending = WM_MAP(b, index).next;
        wm_maps_drop_entries(b, index, &pending);
        wm_maps_free_slot(b, index);
        freed++;
    }
    return freed;
}

uint64_t wm_collect_locked(wm_broker *b)
{
    if (b->collecting)
        return 0;
    uint32_t rows = b->maps_len ? b->maps_len : 1;
    collection c = {b, malloc((size_t)rows * sizeof *c.gc),
                    malloc((size_t)rows * 2 * sizeof *c.list), NULL, 0};
    if (!c.gc || !c.list) { /* no memory: try again at the next trigger */
        free(c.gc);
        free(c.list);
        return 0;
    }
    c.stack = c.list + rows;
    wm_stripes_lock_all(b); /* it reads the entries of maps guests may be using */
    b->collecting = true;
    b->gc_pending = 0;
    b->collections++;
    update_refs(&c);
    subtract_refs(&c);
    move_unreachable(&c);
    check_garbage(&c);
    uint64_t freed = delete_garbage(&c);
    b->cycles_reclaimed += freed;
    b->collecting = false;
    free(c.gc);
    free(c.list);
    WM_ASSERT(wm_check_locked(b) == 0);
    wm_stripes_unlock_all(b);
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
