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
 * hold any map reference and G those of the garbage.  No phase reads a row
 * that is not a candidate's.  Each chunk of rows has a referenced bit per
 * row, kept with refs_in (refcount.c), so update_refs finds the candidates
 * in S/64 words of bits and reads only their rows: O(S/64 + C).  It numbers
 * them in row order; a candidate's count and row sit at its number in
 * compact arrays, and its row's gc_pos holds the number while the
 * collector runs, so the later phases never index anything by row.
 * subtract_refs reads E; move_unreachable reads the counts twice (the
 * roots, then what was not reached) and the reachable candidates' share of
 * E; delete_garbage reads the counts once, dropping a dying map's entries
 * and freeing its row in one step (a freed row keeps DYING, so garbage freed
 * after it still skips its references to it), then reclaims what only the
 * garbage kept alive, by plain counting as at zero anywhere.  The bytes and
 * entries freed go back to the modules in one atomic add per run of maps
 * charged to the same module (wm_credits), not two per entry and map.
 * O(S/64 + C + E + G) in all.  With a million maps of garbage (bench_gc.py)
 * about half the time is free() of the maps' own blocks (entries, index
 * and key bytes); glibc coalesces those later, at the next large malloc,
 * whoever makes it.
 *
 * Memory: the work arrays (a candidate's count, row and stack entry:
 * WM_GC_WORK_BYTES, 16 bytes) are the broker's, kept between collections
 * and reported as gc_work_bytes in its stats; no module is charged for
 * them.  Allocated and freed in every collection, they cost page faults on
 * fresh memory, and the free made glibc coalesce, inside the collection,
 * every block the garbage had just freed.  They grow geometrically; a
 * collection that needs under a quarter of them first gives them back down
 * to twice its need, and closing the broker frees them.  So they hold one
 * to four times what the last collection needed, and at least GC_WORK_MIN
 * candidates' room once one ran.  The referenced bits cost an eighth of a
 * byte a row.
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

enum { REACHABLE = -2, DYING = -3 };

_Static_assert(WM_GC_WORK_BYTES == sizeof(int64_t) + 2 * sizeof(uint32_t),
               "a candidate's work: its count left, its slot, a stack entry");

/* The smallest work arrays kept: a few collections of a few maps do not
 * allocate each time. */
#define GC_WORK_MIN 1024u

typedef struct collection {
    wm_broker *b;
    int64_t *gc;     /* by candidate: the count left, or REACHABLE / DYING */
    uint32_t *slot;  /* by candidate: its row, in row order */
    uint32_t *stack; /* move_unreachable's work: candidates */
    uint32_t n;      /* candidates */
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

/* Words of referenced bits covering the rows in use: one per 64 rows. */
static uint32_t referenced_words(const wm_broker *b) { return (b->maps_len + 63u) / 64u; }

static uint32_t count_candidates(const wm_broker *b)
{
    uint32_t n = 0, words = referenced_words(b);
    for (uint32_t w = 0; w < words; w++)
        n += (uint32_t)__builtin_popcountll(WM_REFERENCED_WORD(b, w * 64u));
    return n;
}

/* Room in the kept work arrays for n candidates: grown geometrically, and
 * given back down to twice the need when that is under a quarter of the
 * room (most of the referenced maps are gone).  False when out of memory. */
static bool reserve_work(wm_broker *b, uint32_t n)
{
    uint32_t cap = b->gc_work_cap;
    if (n <= cap && (n >= cap / 4 || cap <= GC_WORK_MIN))
        return true;
    uint32_t want = n > cap ? (n > 2 * cap ? n : 2 * cap) : 2 * n;
    if (want < GC_WORK_MIN)
        want = GC_WORK_MIN;
    /* A new allocation, not realloc: nothing in the old one is needed. */
    void *work = malloc((size_t)want * WM_GC_WORK_BYTES);
    if (!work)
        return n <= cap; /* smaller arrays would have done: keep the bigger */
    free(b->gc_work);
    b->gc_work = work;
    b->gc_work_cap = want;
    return true;
}

/* A collection's arrays, carved out of the kept work memory. */
static collection collection_of(wm_broker *b)
{
    collection c = {b, NULL, NULL, NULL, 0};
    if (b->gc_work) {
        c.gc = b->gc_work;
        c.slot = (uint32_t *)(c.gc + b->gc_work_cap);
        c.stack = c.slot + b->gc_work_cap;
    }
    return c;
}

uint64_t wm_gc_work_bytes(const wm_broker *b)
{
    return (uint64_t)b->gc_work_cap * WM_GC_WORK_BYTES;
}

void wm_gc_work_free(wm_broker *b)
{
    free(b->gc_work);
    b->gc_work = NULL;
    b->gc_work_cap = 0;
}

/* Map `child`'s place among the candidates.  Every referenced map is one
 * (its bit is set while refs_in > 0); c->n says it is not, should the
 * counts ever be wrong, so that no phase writes outside its arrays. */
static inline uint32_t position(const collection *c, uint32_t child)
{
    uint32_t p = WM_MAP(c->b, child).gc_pos;
    WM_ASSERT(p < c->n && c->slot[p] == child);
    return p < c->n && c->slot[p] == child ? p : c->n;
}

static void update_refs(collection *c)
{
    wm_broker *b = c->b;
    uint32_t words = referenced_words(b);
    for (uint32_t w = 0; w < words; w++) {
        for (uint64_t bits = WM_REFERENCED_WORD(b, w * 64u); bits; bits &= bits - 1) {
            uint32_t i = w * 64u + (uint32_t)__builtin_ctzll(bits);
            wm_mapslot *s = &WM_MAP(b, i);
            /* Its references from maps are part of its count. */
            WM_ASSERT(s->id && s->refs_in && s->refcount >= s->refs_in);
            s->gc_pos = c->n;
            c->slot[c->n] = i;
            c->gc[c->n++] = (int64_t)s->refcount;
        }
    }
}

static void subtract_refs(collection *c)
{
    for (uint32_t j = 0; j < c->n; j++) {
        uint32_t i = c->slot[j];
        if (!WM_MAP(c->b, i).refs_out)
            continue;
        uint64_t seen = 0;
        FOR_EACH_CHILD(c->b, i, child, {
            /* A referenced map is a candidate (its bit is set), and the
             * references from candidates are some of its count, never
             * more: gc stays >= refcount - refs_in >= 0. */
            uint32_t p = position(c, child);
            WM_ASSERT(c->gc[p] > 0);
            if (p < c->n && c->gc[p] >= 0)
                c->gc[p]--;
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
        if (c->gc[j] > 0) {
            c->gc[j] = REACHABLE;
            c->stack[top++] = j;
        }
    }
    while (top) {
        uint32_t i = c->slot[c->stack[--top]];
        if (!WM_MAP(b, i).refs_out)
            continue;
        FOR_EACH_CHILD(b, i, child, {
            uint32_t p = position(c, child);
            if (p < c->n && c->gc[p] >= 0) {
                c->gc[p] = REACHABLE;
                c->stack[top++] = p; /* each candidate is pushed once: top <= n */
            }
        });
    }
    for (uint32_t j = 0; j < c->n; j++) {
        if (c->gc[j] == 0) {
            uint32_t i = c->slot[j];
            c->gc[j] = DYING;
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
        if (c->gc[j] == DYING)
            c->gc[j] = 0; /* now: references from the garbage, counted up */
    for (uint32_t j = 0; j < c->n; j++) {
        if (!(WM_MAP(b, c->slot[j]).flags & WM_MAP_DYING))
            continue;
        FOR_EACH_CHILD(b, c->slot[j], child, {
            if (WM_MAP(b, child).flags & WM_MAP_DYING)
                c->gc[position(c, child)]++;
        });
    }
    for (uint32_t j = 0; j < c->n; j++) {
        if (WM_MAP(b, c->slot[j]).flags & WM_MAP_DYING) {
            WM_ASSERT((uint64_t)c->gc[j] == WM_MAP(b, c->slot[j]).refcount);
            c->gc[j] = DYING;
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
    wm_credits credits = {0};
    for (uint32_t j = 0; j < c->n; j++) {
        if (c->gc[j] == DYING) {
            wm_maps_drop_entries(b, c->slot[j], &pending, &credits);
            wm_maps_free_slot(b, c->slot[j], &credits);
            freed++;
        }
    }
    while (pending) { /* reclaimed by plain counting, as at zero anywhere */
        uint32_t index = pending - 1;
        pending = WM_MAP(b, index).next;
        wm_maps_drop_entries(b, index, &pending, &credits);
        wm_maps_free_slot(b, index, &credits);
        freed++;
    }
    wm_credits_flush(&credits);
    return freed;
}

uint64_t wm_collect_locked(wm_broker *b)
{
    if (b->collecting)
        return 0;
    uint32_t n = count_candidates(b);
    if (!reserve_work(b, n)) /* no memory: try again at the next trigger */
        return 0;
    collection c = collection_of(b);
    wm_stripes_lock_all(b); /* it reads the entries of maps guests may be using */
    b->collecting = true;
    b->gc_pending = 0;
    b->collections++;
    update_refs(&c);
    WM_ASSERT(c.n == n);
    subtract_refs(&c);
    move_unreachable(&c);
    check_garbage(&c);
    uint64_t freed = delete_garbage(&c);
    b->cycles_reclaimed += freed;
    b->collecting = false;
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
