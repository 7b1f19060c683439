/* wm_core.h: the broker's C state, shared by the data-plane units.
 *
 * One wm_broker per Python Broker; nothing global.  ctypes and cffi release
 * the GIL, so the host API and guests in other threads reach the same
 * broker at once.  Who guards what (docs/concurrency.md):
 *   - the broker's `lock` guards the refcount table, names, links, the
 *     tracer, the host's handle table, and every change to any handle
 *     table;
 *   - a map's entries (its `table` and `clock`) are guarded by its stripe
 *     (wm_stripe_of), taken after the broker lock when both are held;
 *   - a guest instance's handle table is changed only by the thread running
 *     in it (pool.c), under the lock, so that thread alone may read it
 *     without the lock: a guest's get/set/incr/... takes just the map's
 *     stripe (ops.c);
 *   - a module's quota counters are written by that module's thread (the
 *     host's under the lock); others give bytes back through `credit_*`.
 */
#ifndef WM_CORE_H
#define WM_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi_gen.h"
#include "handles.h"
#include "table.h"
#include "names.h"
#include "wasmtime_abi.h"
#include "wm.h"

/* Debug checks of the core's invariants: on in a -DWM_DEBUG build (the
 * sanitizer build, tests/native/run_sanitized.sh), nothing otherwise. */
#ifdef WM_DEBUG
#include <assert.h>
#define WM_ASSERT(cond) assert(cond)
#else
#define WM_ASSERT(cond) ((void)0)
#endif

/* Inlined even where the compiler's heuristics would not: the few static
 * functions on a guest get/set's path (bench_abi.py's ladder measures them). */
#define WM_INLINE static inline __attribute__((always_inline))

#define WM_HOST_ID 0u
#define WM_NO_ACCOUNT UINT32_MAX /* a map nobody is charged for (a named map) */

enum {
    WM_MAP_NAMED = 1,
    WM_MAP_DYING = 2, /* in a garbage cycle being freed (its freed row keeps it until reused) */
    WM_MAP_STORE = 4  /* named, entries in the backing store (store.c) */
};

/* A watch_drop registration; queued as a notice when its map is reclaimed. */
typedef struct wm_watch {
    struct wm_watch *next;
    uint32_t module;
    int64_t cookie;
} wm_watch;

/* One row of the refcount table: a map, its count and its storage. */
typedef struct wm_mapslot {
    uint64_t refcount; /* docs/ownership.md: owning handles, host refs, set_map refs, name */
    uint64_t id;       /* unique within the broker, never reused; 0 = free slot */
    union {
        uint32_t next;   /* free list / reclaim list link (index + 1) */
        uint32_t gc_pos; /* a live map, while the collector runs: its place among the candidates */
    };
    uint32_t flags;
    uint32_t name;     /* WM_MAP_NAMED: its index in broker->names */
    uint32_t account;  /* the module charged WM_MAP_COST for it, or WM_NO_ACCOUNT */
    uint64_t refs_in;  /* references to it stored in maps (part of refcount) */
    uint64_t refs_out; /* map references among its own entries */
    uint64_t clock;    /* its writes so far: an entry's version is the clock at its write */
    wm_watch *watches; /* newest first */
    wm_map table; /* its entries, when they are in memory (not in the store) */
} wm_mapslot;

/* The rows of the refcount table are in chunks that never move, so a guest
 * thread may use a row without the broker lock while another adds rows.
 * Beside its rows a chunk has a bit per row, set while the row is a live map
 * that some map references (refs_in > 0): the collector's candidates, found
 * without reading the other rows (gc.c).  The bits change under the lock. */
#define WM_CHUNK_BITS 10u
#define WM_CHUNK (1u << WM_CHUNK_BITS)
#define WM_MAX_CHUNKS (1u << 16) /* 2^26 maps at once */
typedef struct wm_chunk {
    wm_mapslot rows[WM_CHUNK];
    uint64_t referenced[WM_CHUNK / 64];
} wm_chunk;
_Static_assert(WM_CHUNK % 64 == 0, "a chunk's referenced bits are whole words");
#define WM_MAP(b, i) ((b)->chunks[(i) >> WM_CHUNK_BITS]->rows[(i) & (WM_CHUNK - 1u)])
/* The word holding row i's referenced bit, and the bit. */
#define WM_REFERENCED_WORD(b, i)                                                                  \
    ((b)->chunks[(i) >> WM_CHUNK_BITS]->referenced[((i) & (WM_CHUNK - 1u)) >> 6])
#define WM_REFERENCED_BIT(i) (UINT64_C(1) << ((i) & 63u))

typedef struct wm_grant {
    uint8_t *name;
    uint32_t len;
    uint32_t rights;
} wm_grant;

typedef struct wm_named {
    uint8_t *name;
    uint32_t len;
    uint32_t map;
} wm_named;

/* Both are indexed by a wm_name_index: they begin as a wm_name_ref does. */
_Static_assert(offsetof(wm_grant, name) == offsetof(wm_name_ref, name) &&
                   offsetof(wm_grant, len) == offsetof(wm_name_ref, len),
               "wm_grant begins like wm_name_ref");
_Static_assert(offsetof(wm_named, name) == offsetof(wm_name_ref, name) &&
                   offsetof(wm_named, len) == offsetof(wm_name_ref, len),
               "wm_named begins like wm_name_ref");

struct wm_module {
    wm_broker *broker;
    uint32_t id;
    char *name;
    bool dead; /* trapped, torn down or unloaded: calls into it trap */
    bool torn; /* its handles were closed by a teardown */
    wm_handle_table handles;
    wm_limits limits;
    /* Live entries it wrote and maps it made, as the quota charges: the
     * counts less the credits (wm_used_bytes).  Only the module's own
     * thread writes the counts (the host's: under the lock); others add
     * to the credits, atomically, when they free what it wrote. */
    uint64_t bytes_used, entries_used;
    uint64_t bytes_credit, entries_credit;
    uint32_t watches_used; /* pending watch_drop registrations */
    wm_grant *grants;
    uint32_t grants_len, grants_cap;
    wm_name_index grant_index;
    bool has_memory;
    wt_memory memory;
    /* Its own wasmtime store, where calls into it run (link.c). */
    wt_store *wasm_store;
    wt_context *context;
    uint32_t depth;      /* calls into it in progress (re-entry counts) */
    void *owner;         /* the thread running in it, NULL when free (pool.c) */
    uint64_t entry_tick; /* the tick its outermost call began at (ticker.c) */
};

/* A spin lock guarding the entries of the maps whose slot falls on it: held
 * for one operation's work on one map, never while waiting for anything. */
#define WM_STRIPES 64u
typedef struct wm_stripe {
    uint32_t held;
} __attribute__((aligned(64))) wm_stripe; /* a cache line each */

struct wm_broker {
    wm_stripe stripes[WM_STRIPES];
    uint32_t held_stripe; /* the stripe the lock's holder holds, + 1 (0: none) */
    pthread_mutex_t lock;
    wt_api api;
    uint64_t seed;
    uint64_t next_map_id;
    wm_chunk **chunks; /* the rows, WM_CHUNK rows a chunk: a row never moves */
    uint32_t maps_len, maps_free;
    uint64_t live_anon, live_named;
    wm_named *names;
    uint32_t names_len, names_cap;
    wm_name_index name_index;
    wm_module **modules; /* by id (WM_MAX_MODULES, never moves); NULL where unloaded */
    uint32_t modules_len;
    uint32_t *free_ids; /* ids of unloaded modules, to reuse */
    uint32_t free_ids_len, free_ids_cap;
    void *engine; /* our clone of the wasmtime engine, while ticked */
    wm_module *host; /* modules[0], fixed at creation: read without the lock */
    wm_watch *notices_head, *notices_tail; /* drop notices waiting for delivery */
    wm_link *links;                        /* every link, freed with the broker */
    bool strict_borrows;
    wm_store_fn store_fn; /* the backing store of named maps, or NULL */
    void *store_ctx;
    uint64_t unreleased_borrows;
    /* The cycle collector (gc.c). */
    uint64_t gc_threshold;     /* collect when gc_pending reaches it; 0: never by itself */
    uint64_t gc_pending;       /* releases that left a referenced map alive */
    uint64_t cycles_reclaimed; /* maps the collector has reclaimed */
    uint64_t reclaimed;        /* all maps reclaimed */
    uint64_t collections;
    bool collecting;
    /* Its work arrays, kept from one collection to the next (gc.c):
     * WM_GC_WORK_BYTES per candidate, gc_work_cap candidates' room. */
    void *gc_work;
    uint32_t gc_work_cap;
    /* The tracer (trace.c). */
    bool tracing;
    wm_event *events;
    uint32_t events_len, events_cap, events_limit;
    uint32_t events_taken; /* the first events_taken of events[] were taken already */
    uint64_t events_seq, events_dropped;
    uint32_t next_link_id;
};

/* A module's instances (pool.c). */
struct wm_pool {
    uint32_t n;
    _Atomic uint32_t replacing; /* torn-down instances a new one is coming for */
    wm_module *inst[];
};
/* Thread-locals of the core are initial-exec: the core is loaded once per
 * process, and a general-dynamic access (__tls_get_addr) would cost more
 * than the call between modules it serves. */
#define WM_TLS __attribute__((tls_model("initial-exec")))
extern _Thread_local char wm_thread_token WM_TLS; /* its address names this thread */
#define WM_ME ((void *)&wm_thread_token)
extern _Atomic uint32_t wm_pool_waiters; /* threads waiting for any instance */
void wm_pool_wake(void);

/* An instance of `p` for this thread (pool.c): one it runs in already, a
 * free one, or -- after waiting up to wait_ms (UINT64_MAX: no limit) -- NULL
 * with *why WM_POOL_DEAD (every instance torn down) or WM_POOL_BUSY; *index
 * is its place.  Give it back with wm_pool_give after wm_leave. */
enum { WM_POOL_DEAD = 1, WM_POOL_BUSY = 2 };
wm_module *wm_pool_take(wm_pool *p, uint64_t wait_ms, int *why, uint32_t *index);
bool wm_pool_mine(const wm_module *m);
void wm_pool_wait_unowned(wm_module *m);
bool wm_pool_has(const wm_pool *p, const wm_module *m);

/* Give `m` back (after wm_leave): free once no call of this thread is in it. */
static inline void wm_pool_give(wm_module *m)
{
    if (m->depth) /* still inside an outer call on this thread */
        return;
    __atomic_store_n(&m->owner, NULL, __ATOMIC_RELEASE);
    /* No fence between the store and this load (it would cost what the
     * call does): a waiter that misses this wake sees the instance free at
     * its next look, a millisecond later at most (pool.c). */
    if (__builtin_expect(__atomic_load_n(&wm_pool_waiters, __ATOMIC_RELAXED) != 0, 0))
        wm_pool_wake();
}

/* Take `m` for this thread if it is free and live; *mine when this thread
 * runs in it already (then it is returned as is). */
static inline bool wm_pool_claim(wm_module *m, bool *mine)
{
    void *owner = NULL;
    /* Sequentially consistent, against wm_module_teardown: it marks `m`
     * dead, then waits while another thread owns it. */
    if (__atomic_compare_exchange_n(&m->owner, &owner, WM_ME, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED)) {
        if (__builtin_expect(!__atomic_load_n(&m->dead, __ATOMIC_SEQ_CST), 1))
            return true;
        wm_pool_give(m); /* torn down meanwhile */
        return false;
    }
    *mine = owner == WM_ME;
    return *mine;
}

/* One pass over the pool, without waiting: an instance this thread runs in,
 * else a free live one (*any_live: whether any is not torn down). */
static inline wm_module *wm_pool_try(wm_pool *p, bool *any_live, uint32_t *index)
{
    bool mine = false;
    *any_live = false;
    if (p->n == 1) { /* the common case: one compare-and-swap */
        wm_module *m = __atomic_load_n(&p->inst[0], __ATOMIC_ACQUIRE);
        *index = 0;
        if (!m || (__atomic_load_n(&m->dead, __ATOMIC_ACQUIRE) &&
                   __atomic_load_n(&m->owner, __ATOMIC_RELAXED) != WM_ME))
            return NULL;
        *any_live = true;
        return wm_pool_claim(m, &mine) ? m : NULL;
    }
    for (uint32_t i = 0; i < p->n; i++) {
        wm_module *m = __atomic_load_n(&p->inst[i], __ATOMIC_ACQUIRE);
        if (m && __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == WM_ME) {
            *index = i;
            *any_live = true;
            return m;
        }
    }
    for (uint32_t i = 0; i < p->n; i++) {
        wm_module *m = __atomic_load_n(&p->inst[i], __ATOMIC_ACQUIRE);
        if (!m || __atomic_load_n(&m->dead, __ATOMIC_ACQUIRE))
            continue;
        *any_live = true;
        if (wm_pool_claim(m, &mine)) {
            *index = i;
            return m;
        }
    }
    return NULL;
}

/* A caller's way to one export (see wm.h and link.c). */
struct wm_link {
    wm_broker *b;
    wm_module *caller;
    wm_pool *pool;     /* the callee's instances; NULL while unresolved */
    wt_func *funcs;    /* the export in each instance's store */
    wm_module *target; /* a host function's: the host module */
    wm_module *loading; /* unresolved, and this module of its name is loading */
    uint32_t nparams, nresults;
    uint8_t *how; /* nparams + nresults WM_PASS_* codes */
    bool has_handles; /* any code not PLAIN: else the fast path, no lock */
    char *label;  /* "caller -> target.export", for messages */
    uint32_t id;  /* for the tracer's call events */
    wm_hostfn host_fn; /* a host function (hostfn.c): called instead of `func` */
    void *host_ctx;
    wm_link *next;
};

static inline void wm_lock(wm_broker *b) { pthread_mutex_lock(&b->lock); }
static inline void wm_unlock(wm_broker *b) { pthread_mutex_unlock(&b->lock); }

/* stripes.c: the stripe of map `slot`; taking one spins (then yields) while
 * another thread holds it. */
static inline wm_stripe *wm_stripe_of(wm_broker *b, uint32_t slot)
{
    return &b->stripes[slot % WM_STRIPES];
}
void wm_stripe_wait(wm_stripe *s);
static inline void wm_stripe_lock(wm_stripe *s)
{
    if (__builtin_expect(__atomic_exchange_n(&s->held, 1, __ATOMIC_ACQUIRE) != 0, 0))
        wm_stripe_wait(s);
}
static inline void wm_stripe_unlock(wm_stripe *s) { __atomic_store_n(&s->held, 0, __ATOMIC_RELEASE); }
/* With the broker lock held: take (give back) every stripe but the one the
 * lock's holder holds already -- for what reads many maps' entries (the
 * collector, check, snapshot, stats, unload). */
void wm_stripes_lock_all(wm_broker *b);
void wm_stripes_unlock_all(wm_broker *b);

/* refcount.c: the refcount table.  All called with the lock held. */
int wm_maps_alloc(wm_broker *b, uint32_t flags, uint32_t *out_slot);
void wm_maps_incref(wm_broker *b, uint32_t slot);
/* One reference less; at zero the map is reclaimed, cascading through the
 * map references it held.  May run the cycle collector (gc_threshold). */
void wm_maps_release(wm_broker *b, uint32_t slot);
/* A map reference stored in `parent` (set_map): the child's count + 1. */
void wm_ref_add(wm_broker *b, uint32_t parent, uint32_t child);
/* A map reference leaving `parent`; the caller then releases the child. */
void wm_ref_forget(wm_broker *b, uint32_t parent, uint32_t child);
/* Reclaim helpers shared with the collector: credit and drop a map's
 * entries (references to DYING maps are not released: they go together),
 * queueing children that reach zero on *pending; then free its row.  What
 * they credit gathers in *credits: the caller flushes it when done. */
typedef struct wm_credits wm_credits; /* below */
void wm_maps_drop_entries(wm_broker *b, uint32_t index, uint32_t *pending, wm_credits *credits);
void wm_maps_free_slot(wm_broker *b, uint32_t index, wm_credits *credits);
/* Whether map `ms` has its entries in the backing store (ops.h routes). */
static inline bool wm_in_store(const wm_mapslot *ms) { return ms->flags & WM_MAP_STORE; }

/* The table recounted from the handles, names and entries: the number of
 * rows whose refcount, refs_in, refs_out or referenced bit disagree
 * (wm_broker_check).  The lock and every stripe held. */
uint64_t wm_check_locked(wm_broker *b);

/* gc.c: collect unreachable cycles now; the number of maps reclaimed. */
uint64_t wm_collect_locked(wm_broker *b);
/* The collector's kept work arrays: bytes held, and given back (lock held). */
#define WM_GC_WORK_BYTES 16u /* per candidate: its count left, its slot, a stack entry */
uint64_t wm_gc_work_bytes(const wm_broker *b);
void wm_gc_work_free(wm_broker *b);
void wm_maps_free_all(wm_broker *b);

/* ownership.c: how a handle passes between modules.  Lock held. */
int wm_pass_check(wm_module *from, uint32_t h, uint32_t how, wm_handle **slot);
/* Apply a checked pass into `to` (which has room reserved); the new handle. */
uint32_t wm_pass_apply(wm_module *from, uint32_t from_h, wm_handle *slot, uint32_t how,
                       uint8_t mask, wm_module *to);
/* End a borrow; true when the callee had not closed its borrowed handle. */
bool wm_borrow_end(wm_module *lender, uint32_t lender_h, wm_module *callee, uint32_t callee_h);

/* trace.c: record an event if tracing (lock held).  WM_TRACE costs one
 * predictable branch when the tracer is off, nothing in a -DWM_NO_TRACE
 * build (the benchmark's baseline). */
void wm_trace_emit(wm_broker *b, const wm_event *e);
#ifdef WM_NO_TRACE
#define WM_TRACE(b, ...) ((void)0)
#else
#define WM_TRACE(b, ...)                                                                          \
    do {                                                                                          \
        if (__builtin_expect((b)->tracing, 0))                                                    \
            wm_trace_emit((b), &(wm_event){__VA_ARGS__});                                         \
    } while (0)
#endif
#define WM_MAP_ID(b, slot) (WM_MAP((b), slot).id)

/* ticker.c: the process's tick (WM_TICK_NS apart while any call runs). */
#define WM_TICK_NS 1000000L /* 1 ms: time limits are counted in ticks */
extern _Atomic uint64_t wm_tick_count;
static inline uint64_t wm_ticks_now(void)
{
    return __atomic_load_n(&wm_tick_count, __ATOMIC_RELAXED);
}
void wm_tick_begin(void); /* a top-level call begins: ticks must flow */
void wm_tick_end(void);
void *wm_ticker_add(const wt_api *api, void *engine); /* our clone, or NULL */
void wm_ticker_remove(void *engine_clone);

/* Time limits (deadline.c): a call into `m` begins and ends. */
static inline void wm_enter(wm_module *m)
{
    if (m->depth++ == 0)
        m->entry_tick = wm_ticks_now();
}
static inline void wm_leave(wm_module *m) { m->depth--; }
/* Milliseconds left of m's time limit in its current call (UINT64_MAX:
 * no limit); 0 once it is spent. */
uint64_t wm_time_left(const wm_module *m);
/* traps.c: note that the trap now unwinding began in `m` (lock held). */
void wm_mark_origin(wm_broker *b, wm_module *m);
void wm_forget_origin(wm_module *m); /* m is going: an origin in it is no more */

/* module.c: a module added to the broker (lock held; NULL when there is no
 * room), and one freed (its handles, grants and name). */
wm_module *wm_module_add(wm_broker *b, const wm_limits *limits, const char *name);
void wm_module_free(wm_module *m);

/* link.c */
void wm_links_free(wm_broker *b);
void wm_link_free(wm_link *l);
/* traps.c: a trap with a formatted message. */
wt_trap *wm_trap(wm_broker *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Accounts: an entry is charged to the module that last wrote it, an
 * anonymous map to the module that made it. */
static inline uint64_t wm_entry_size(const wm_entry *e)
{
    return (uint64_t)e->key_len + (e->kind == WM_VAL_MAP ? 8u : e->val_len) + WM_ENTRY_COST;
}

static inline uint64_t wm_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void wm_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* What module `m` is charged for, now. */
static inline uint64_t wm_used_bytes(const wm_module *m)
{
    return wm_load64(&m->bytes_used) - wm_load64(&m->bytes_credit);
}
static inline uint64_t wm_used_entries(const wm_module *m)
{
    return wm_load64(&m->entries_used) - wm_load64(&m->entries_credit);
}

/* Charge `m` (the caller writes for m: it runs in m, or m is the host and
 * the lock is held). */
static inline void wm_charge(wm_module *m, uint64_t bytes, uint64_t entries)
{
    wm_store64(&m->bytes_used, wm_load64(&m->bytes_used) + bytes);
    wm_store64(&m->entries_used, wm_load64(&m->entries_used) + entries);
}

/* Give `a` back what it was charged, from any thread. */
static inline void wm_credit_back(wm_module *a, uint64_t bytes, uint64_t entries)
{
    __atomic_add_fetch(&a->bytes_credit, bytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&a->entries_credit, entries, __ATOMIC_RELAXED);
}

/* The same, where the caller writes for `writer`: its own counts are
 * lowered in place. */
static inline void wm_credit(wm_module *a, const wm_module *writer, uint64_t bytes,
                             uint64_t entries)
{
    if (a == writer)
        wm_charge(a, -bytes, -entries);
    else
        wm_credit_back(a, bytes, entries);
}

/* Credits gathered while many maps are reclaimed at once: one atomic add
 * per run of entries and maps charged to the same module, not one each. */
struct wm_credits {
    wm_module *to;
    uint64_t bytes, entries;
};

static inline void wm_credits_flush(wm_credits *c)
{
    if (c->to)
        __atomic_add_fetch(&c->to->bytes_credit, c->bytes, __ATOMIC_RELAXED);
    if (c->entries) /* none when only maps without entries went: their cost is bytes */
        __atomic_add_fetch(&c->to->entries_credit, c->entries, __ATOMIC_RELAXED);
    *c = (wm_credits){0};
}

static inline void wm_credits_add(wm_credits *c, wm_module *to, uint64_t bytes, uint64_t entries)
{
    if (c->to != to) {
        wm_credits_flush(c);
        c->to = to;
    }
    c->bytes += bytes;
    c->entries += entries;
}

static inline void wm_account_credit(wm_broker *b, const wm_entry *e, const wm_module *writer)
{
    wm_credit(__atomic_load_n(&b->modules[e->account], __ATOMIC_RELAXED), writer,
              wm_entry_size(e), 1);
}

static inline void wm_account_charge(wm_module *m, wm_entry *e)
{
    e->account = (uint16_t)m->id;
    wm_charge(m, wm_entry_size(e), 1);
}

#endif
