/* _abi_ladder.c: a guest `get` and `set` taken apart, one stage more per rung.
 *
 * Each rung is an unchecked wasmtime callback with the ABI function's
 * signature that does the work of a real call up to one stage and answers
 * like it.  _abi_ladder.py times the same guest loop over every rung, so
 * the difference between two rungs is what one stage costs.  The env is a
 * real module of a real broker, and the stages are the core's own pieces,
 * compiled with the core's flags: guest.h (the memory view, the one bounds
 * check), ops.h and handles.h (the handle's and sizes' checks, the quota
 * check), wm_core.h (the map's row, the stripe lock), hash.h, table.h (the
 * probe, the room check).
 * Restated here are only the last stage's few lines (the copy out, the
 * rewrite in place), as ops_memory.c has them.  The rung after the last,
 * the real callback of abi.c as wm_define_abi registers it, is defined by
 * _abi_ladder.py: it minus `work` is what the core's plumbing around the
 * stages costs (abi.c's frame, ops.c's route, the calls between units).
 */
#include "guest.h"
#include "hash.h"
#include "ops.h"

enum stage { FLOOR, VIEW, HANDLE, ROUTE, LOCK, RESERVE, HASH, PROBE, WORK };

/* A value the optimizer must compute although nothing reads it. */
#define KEEP(x) __asm__ __volatile__("" : : "r"(x))

#define ARG(i) ((uint32_t)args[i].i32)

/* An errno as abi.c's done() answers it (a quota configured to trap traps). */
static inline wt_trap *answer(wm_module *m, wt_val_raw *args, int err)
{
    args[0].i32 = err;
    if (__builtin_expect(err == WM_QUOTA && m->limits.trap_on_quota, 0))
        return m->broker->api.trap_new("quota", 5);
    return NULL;
}

/* --- get ----------------------------------------------------------------------- */

static inline __attribute__((always_inline)) int get_stages(enum stage upto, wm_module *m,
                                                            uint32_t h, const uint8_t *key,
                                                            uint32_t key_len, uint8_t *buf,
                                                            uint32_t buf_cap, uint32_t *len)
{
    if (upto < HANDLE)
        return WM_OK;
    wm_handle *hs;
    int err = wm_check_key(m, h, WM_NEEDS_GET, key_len, 0, &hs);
    if (err || upto < ROUTE)
        return err;
    wm_broker *b = m->broker;
    wm_mapslot *ms = &WM_MAP(b, hs->map);
    if (wm_in_store(ms))
        return WM_IO; /* the ladder's map is in memory */
    if (upto < LOCK)
        return WM_OK;
    wm_stripe *stripe = wm_stripe_of(b, hs->map);
    wm_stripe_lock(stripe);
    if (upto >= HASH) {
        uint64_t hash = wm_hash(key, key_len, b->seed);
        KEEP(hash);
        if (upto >= PROBE) {
            const wm_entry *e = wm_map_find(&ms->table, key, key_len, hash);
            if (!e)
                err = WM_NOENT;
            else if (e->kind != WM_VAL_BYTES)
                err = WM_TYPE;
            else if (upto >= WORK) { /* ops_memory.c's wm_mem_get */
                *len = e->val_len;
                if (e->val_len > buf_cap)
                    err = WM_RANGE;
                else
                    memcpy(buf, e->data + e->key_len, e->val_len);
            }
        }
    }
    wm_stripe_unlock(stripe);
    return err;
}

static inline __attribute__((always_inline)) wt_trap *
get_upto(enum stage upto, void *env, wt_caller *caller, wt_val_raw *args, size_t nargs)
{
    wm_module *m = env;
    if (__builtin_expect(nargs != 6, 0))
        return m->broker->api.trap_new("arity", 5);
    if (upto == FLOOR)
        return answer(m, args, WM_OK);
    guest g;
    uint8_t *key, *buf, *out_len;
    guest_view(m, caller, &g);
    if (!span(&g, ARG(1), ARG(2), &key) || !span(&g, ARG(3), ARG(4), &buf) ||
        !span(&g, ARG(5), 4, &out_len))
        return answer(m, args, WM_FAULT);
    uint32_t len = 0;
    int err = get_stages(upto, m, ARG(0), key, ARG(2), buf, ARG(4), &len);
    if (err == WM_OK || err == WM_RANGE)
        wm_put_u32(out_len, len);
    return answer(m, args, err);
}

/* --- set ----------------------------------------------------------------------- */

static inline __attribute__((always_inline)) int set_stages(enum stage upto, wm_module *m,
                                                            uint32_t h, const uint8_t *key,
                                                            uint32_t key_len, const uint8_t *val,
                                                            uint32_t val_len)
{
    if (upto < HANDLE)
        return WM_OK;
    wm_handle *hs;
    int err = wm_check_key(m, h, WM_NEEDS_SET, key_len, val_len, &hs);
    if (err || upto < ROUTE)
        return err;
    wm_broker *b = m->broker;
    wm_mapslot *ms = &WM_MAP(b, hs->map);
    if (wm_in_store(ms))
        return WM_IO; /* the ladder's map is in memory */
    if (upto < LOCK)
        return WM_OK;
    wm_stripe *stripe = wm_stripe_of(b, hs->map);
    wm_stripe_lock(stripe);
    if (upto >= RESERVE && wm_map_reserve(&ms->table, 1) != 0)
        err = WM_QUOTA;
    if (!err && upto >= HASH) {
        uint64_t hash = wm_hash(key, key_len, b->seed);
        KEEP(hash);
        if (upto >= PROBE) {
            wm_entry *e = wm_map_find(&ms->table, key, key_len, hash);
            /* The ladder rewrites its one entry in place: anything else is a
             * wrong setup, not a cost to measure. */
            if (!e || e->kind != WM_VAL_BYTES || e->val_len != val_len)
                err = WM_INVAL;
            else if (upto >= WORK) { /* ops_memory.c's write_bytes, in place */
                if (wm_over_quota(m, e, (uint64_t)key_len + val_len)) {
                    err = WM_QUOTA;
                } else {
                    memcpy(e->data + key_len, val, val_len);
                    if (e->account != m->id) {
                        wm_account_credit(b, e, m);
                        wm_account_charge(m, e);
                    }
                    e->version = ++ms->clock;
                }
            }
        }
    }
    wm_stripe_unlock(stripe);
    return err;
}

static inline __attribute__((always_inline)) wt_trap *
set_upto(enum stage upto, void *env, wt_caller *caller, wt_val_raw *args, size_t nargs)
{
    wm_module *m = env;
    if (__builtin_expect(nargs != 5, 0))
        return m->broker->api.trap_new("arity", 5);
    if (upto == FLOOR)
        return answer(m, args, WM_OK);
    guest g;
    uint8_t *key, *val;
    guest_view(m, caller, &g);
    if (!span(&g, ARG(1), ARG(2), &key) || !span(&g, ARG(3), ARG(4), &val))
        return answer(m, args, WM_FAULT);
    return answer(m, args, set_stages(upto, m, ARG(0), key, ARG(2), val, ARG(4)));
}

/* --- the rungs ------------------------------------------------------------------ */

#define RUNG(op, stage)                                                                           \
    static wt_trap *op##_##stage(void *env, wt_caller *caller, wt_val_raw *args, size_t n)       \
    {                                                                                             \
        return op##_upto(stage, env, caller, args, n);                                            \
    }
RUNG(get, FLOOR)
RUNG(get, VIEW)
RUNG(get, HANDLE)
RUNG(get, ROUTE)
RUNG(get, LOCK)
RUNG(get, HASH)
RUNG(get, PROBE)
RUNG(get, WORK)
RUNG(set, FLOOR)
RUNG(set, VIEW)
RUNG(set, HANDLE)
RUNG(set, ROUTE)
RUNG(set, LOCK)
RUNG(set, RESERVE)
RUNG(set, HASH)
RUNG(set, PROBE)
RUNG(set, WORK)

typedef struct rung {
    const char *name;  /* the stage */
    const char *adds;  /* what it adds to the rung before it */
    wt_unchecked_cb cb;
} rung;

static const rung GET[] = {
    {"floor", "arity check, errno OK (this engine: epoch checks on)", get_FLOOR},
    {"view", "guest memory view (3 wasmtime calls), 3 span checks, out_len", get_VIEW},
    {"handle", "handle lookup (generation, state), rights, key size", get_HANDLE},
    {"route", "the map's row, in memory or in the store", get_ROUTE},
    {"lock", "stripe lock + unlock", get_LOCK},
    {"hash", "key hash", get_HASH},
    {"probe", "table probe: index, entry, key compare", get_PROBE},
    {"work", "value copy out", get_WORK},
};

static const rung SET[] = {
    {"floor", "arity check, errno OK (this engine: epoch checks on)", set_FLOOR},
    {"view", "guest memory view (3 wasmtime calls), 2 span checks", set_VIEW},
    {"handle", "handle lookup (generation, state), rights, key and value size", set_HANDLE},
    {"route", "the map's row, in memory or in the store", set_ROUTE},
    {"lock", "stripe lock + unlock", set_LOCK},
    {"reserve", "room for one more entry", set_RESERVE},
    {"hash", "key hash", set_HASH},
    {"probe", "table probe: index, entry, key compare", set_PROBE},
    {"work", "quota check, value copy in, version, accounts", set_WORK},
};

static const rung *rungs(int op, size_t *n)
{
    *n = op ? sizeof SET / sizeof SET[0] : sizeof GET / sizeof GET[0];
    return op ? SET : GET;
}

size_t ladder_count(int op)
{
    size_t n;
    rungs(op, &n);
    return n;
}

const char *ladder_name(int op, size_t i) { return rungs(op, &(size_t){0})[i].name; }
const char *ladder_adds(int op, size_t i) { return rungs(op, &(size_t){0})[i].adds; }
uintptr_t ladder_callback(int op, size_t i) { return (uintptr_t)rungs(op, &(size_t){0})[i].cb; }
