/* ops.c: the map operations of the ABI -- check once, route once.
 *
 * abi.c turns guest pointers into spans (the FAULT check) and calls these;
 * the host API calls them with Python buffers.  Each one:
 *   1. checks its arguments, in the ABI's order after FAULT: INVAL
 *      (argument values, before the lock) -> BADF/STALE (handle) -> ACCES
 *      (rights) -> TOOBIG (sizes);
 *   2. routes once, by where the map's entries are (ops.h): in memory, it
 *      runs ops_memory.c under the map's stripe (and the broker lock,
 *      except on a guest instance's own thread: op_begin); in the backing
 *      store, it prepares the store call under the broker lock;
 *   3. gives the locks back (op_end) -- and makes the operation again with
 *      the broker lock when, without it, the answer was WM_SLOW;
 *   4. for the backing store, makes the call without the lock (ops_store.c).
 * The operation's own errnos follow the checks.  Nothing is written to an
 * output unless the result is OK (RANGE writes the needed size).
 * Handle-making functions (open, new, close, clone, watch_drop) are in
 * ops_handles.c: they never reach the store.
 */
#include "ops.h"

/* One operation's locks and route, from op_begin to op_end.  The store
 * call is beside it, not in it: its address goes to ops_store.c, and an
 * `op` whose address goes nowhere stays in registers. */
typedef struct op {
    wm_handle *hs;
    wm_stripe *stripe; /* held: the entries are in memory */
    bool locked;       /* the broker lock is held (set before op_begin to ask for it) */
    bool stored;       /* the entries are in the backing store: `*c` is ready */
    wm_store_call *c;
} op;

/* Steps 1 and 2.  A guest instance's thread goes without the broker lock
 * (wm_core.h says why it may); the host, and an operation made again after
 * WM_SLOW, take it.  On OK either the map's stripe is held or `*c` is ready. */
WM_INLINE int op_begin(op *o, wm_module *m, uint32_t h, uint32_t needs, uint32_t key_len,
                       uint32_t val_len)
{
    wm_broker *b = m->broker;
    o->stripe = NULL;
    o->stored = false;
    if (m == b->host)
        o->locked = true;
    if (o->locked)
        wm_lock(b);
    int err = wm_check_key(m, h, needs, key_len, val_len, &o->hs);
    if (err)
        return err;
    const wm_mapslot *ms = &WM_MAP(b, o->hs->map);
    if (__builtin_expect(wm_in_store(ms), 0)) {
        if (!o->locked)
            return WM_SLOW; /* preparing the call reads the names: the lock's */
        wm_store_begin(m, ms, o->c);
        o->stored = true;
        return WM_OK;
    }
    o->stripe = wm_stripe_of(b, o->hs->map);
    wm_stripe_lock(o->stripe);
    if (o->locked)
        b->held_stripe = (uint32_t)(o->stripe - b->stripes) + 1;
    return WM_OK;
}

/* Step 3: give back what op_begin took.  True when the operation answered
 * WM_SLOW: make it again, with the broker lock. */
WM_INLINE bool op_end(op *o, wm_module *m, int err)
{
    wm_broker *b = m->broker;
    if (o->stripe) {
        if (o->locked)
            b->held_stripe = 0;
        wm_stripe_unlock(o->stripe);
    }
    if (o->locked)
        wm_unlock(b);
    if (__builtin_expect(err != WM_SLOW, 1))
        return false;
    o->locked = true;
    return true;
}

/* An operation on handle `h`: `mem` runs on entries in memory (the map is
 * `o.hs->map`), `store` (step 4) on entries in the backing store. */
#define RUN(needs, key_len, val_len, mem, store)                                                  \
    wm_store_call call;                                                                           \
    op o = {.c = &call};                                                                          \
    int err;                                                                                      \
    do {                                                                                          \
        err = op_begin(&o, m, h, needs, key_len, val_len);                                        \
        if (!err && o.stripe)                                                                     \
            err = (mem);                                                                          \
    } while (op_end(&o, m, err));                                                                 \
    if (o.stored)                                                                                 \
        err = (store);                                                                            \
    return err

/* --- one key ----------------------------------------------------------------- */

int wm_op_get(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint8_t *buf,
              uint32_t buf_cap, uint32_t *out_len)
{
    RUN(WM_NEEDS_GET, key_len, 0, wm_mem_get(m, o.hs->map, key, key_len, buf, buf_cap, out_len),
        wm_store_get(o.c, key, key_len, buf, buf_cap, out_len));
}

int wm_op_set(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, const uint8_t *val,
              uint32_t val_len)
{
    RUN(WM_NEEDS_SET, key_len, val_len,
        wm_mem_set(m, o.hs->map, o.locked, key, key_len, val, val_len),
        wm_store_set(o.c, key, key_len, val, val_len));
}

int wm_op_set_if(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                 const uint8_t *val, uint32_t val_len, int64_t expected)
{
    RUN(WM_NEEDS_SET_IF, key_len, val_len,
        wm_mem_set_if(m, o.hs->map, o.locked, key, key_len, val, val_len, expected),
        wm_store_set_if(o.c, key, key_len, val, val_len, expected));
}

int wm_op_delete(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len)
{
    RUN(WM_NEEDS_DELETE, key_len, 0, wm_mem_delete(m, o.hs->map, o.locked, key, key_len),
        wm_store_delete(o.c, key, key_len));
}

int wm_op_exists(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t *out)
{
    RUN(WM_NEEDS_EXISTS, key_len, 0, (wm_mem_exists(m, o.hs->map, key, key_len, out), WM_OK),
        wm_store_exists(o.c, key, key_len, out));
}

int wm_op_version(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint64_t *out)
{
    RUN(WM_NEEDS_VERSION, key_len, 0, (wm_mem_version(m, o.hs->map, key, key_len, out), WM_OK),
        wm_store_version(o.c, key, key_len, out));
}

int wm_op_incr(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, int64_t delta,
               int64_t *out)
{
    RUN(WM_NEEDS_INCR, key_len, 8, wm_mem_incr(m, o.hs->map, key, key_len, delta, out),
        wm_store_incr(o.c, key, key_len, delta, out));
}

int wm_op_set_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t child_h)
{
    wm_broker *b = m->broker;
    wm_handle *hs, *child;
    wm_lock(b);
    /* Both handles, then both handles' rights, then the size.  A stored
     * reference gives whoever reads the parent the parent's rights on the
     * child, so only a handle with every right may be stored. */
    int err = wm_handles_lookup(&m->handles, h, &hs);
    if (!err)
        err = wm_handles_lookup(&m->handles, child_h, &child);
    if (!err && ((hs->rights & WM_NEEDS_SET_MAP) != WM_NEEDS_SET_MAP ||
                 (child->rights & WM_NEEDS_SET_MAP_CHILD) != WM_NEEDS_SET_MAP_CHILD))
        err = WM_ACCES;
    if (!err && key_len > m->limits.key_size)
        err = WM_TOOBIG;
    if (!err && wm_in_store(&WM_MAP(b, hs->map))) {
        err = WM_TYPE; /* the backing store holds bytes only; no call is needed */
    } else if (!err) {
        wm_stripe *stripe = wm_stripe_of(b, hs->map);
        wm_stripe_lock(stripe);
        b->held_stripe = (uint32_t)(stripe - b->stripes) + 1;
        err = wm_mem_set_map(m, hs->map, h, key, key_len, child->map);
        b->held_stripe = 0;
        wm_stripe_unlock(stripe);
    }
    wm_unlock(b);
    return err;
}

int wm_op_get_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t *out_h)
{
    wm_store_call call;
    op o = {.c = &call, .locked = true}; /* it issues a handle */
    int err;
    err = op_begin(&o, m, h, WM_NEEDS_GET_MAP, key_len, 0);
    if (!err && o.stripe)
        err = wm_mem_get_map(m, o.hs->map, o.hs->rights, key, key_len, out_h);
    op_end(&o, m, err);
    if (o.stored)
        err = wm_store_get_map(o.c, key, key_len);
    return err;
}

/* --- the whole map ----------------------------------------------------------- */

static int mem_len(wm_module *m, uint32_t map, uint32_t *out)
{
    *out = WM_MAP(m->broker, map).table.live;
    return WM_OK;
}

int wm_op_len(wm_module *m, uint32_t h, uint32_t *out)
{
    RUN(WM_NEEDS_LEN, 0, 0, mem_len(m, o.hs->map, out), wm_store_len(o.c, out));
}

int wm_op_keys(wm_module *m, uint32_t h, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
               uint32_t *out_used, uint32_t *out_count)
{
    RUN(WM_NEEDS_KEYS, 0, 0,
        wm_mem_keys(m, o.hs->map, cursor, buf, buf_cap, out_used, out_count),
        wm_store_keys(o.c, cursor, buf, buf_cap, out_used, out_count));
}

/* Walk a batch of (u32 length, bytes) records, `fields` records per item.
 * Returns the number of items, or -1 when malformed.  *max_len[k] is the
 * longest field k. */
static int64_t walk_batch(const uint8_t *p, uint32_t len, int fields, uint32_t *max_len)
{
    uint64_t off = 0;
    int64_t items = 0;
    for (int k = 0; k < fields; k++)
        max_len[k] = 0;
    while (off < len) {
        for (int k = 0; k < fields; k++) {
            if (len - off < 4)
                return -1;
            uint32_t n = wm_get_u32(p + off);
            off += 4;
            if (len - off < n)
                return -1;
            off += n;
            if (n > max_len[k])
                max_len[k] = n;
        }
        items++;
    }
    return items;
}

static bool overlap(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

int wm_op_get_many(wm_module *m, uint32_t h, const uint8_t *keys, uint32_t keys_len,
                   uint8_t *buf, uint32_t buf_cap, uint32_t *out_used)
{
    uint32_t max_key;
    int64_t n = walk_batch(keys, keys_len, 1, &max_key);
    if (n < 0 || overlap(keys, keys_len, buf, buf_cap))
        return WM_INVAL;
    RUN(WM_NEEDS_GET_MANY, max_key, 0,
        wm_mem_get_many(m, o.hs->map, keys, keys_len, buf, buf_cap, out_used),
        wm_store_get_many(o.c, keys, keys_len, (uint32_t)n, buf, buf_cap, out_used));
}

int wm_op_set_many(wm_module *m, uint32_t h, const uint8_t *items, uint32_t items_len)
{
    uint32_t max_len[2];
    int64_t n = walk_batch(items, items_len, 2, max_len);
    if (n < 0)
        return WM_INVAL;
    RUN(WM_NEEDS_SET_MANY, max_len[0], max_len[1],
        wm_mem_set_many(m, o.hs->map, o.locked, items, items_len, n),
        wm_store_set_many(o.c, items, items_len, (uint32_t)n));
}
