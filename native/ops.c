/* ops.c: the map operations of the ABI -- check once, route once.
 *
 * abi.c turns guest pointers into spans (the FAULT check) and calls these;
 * the host API calls them with Python buffers.  Each one:
 *   1. checks its arguments, in the ABI's order after FAULT: INVAL
 *      (argument values, before the lock) -> BADF/STALE (handle) -> ACCES
 *      (rights) -> TOOBIG (sizes);
 *   2. routes once, by where the map's entries are (ops.h): in memory, it
 *      runs ops_memory.c under the lock; in the backing store, it prepares
 *      the store call under the lock;
 *   3. releases the lock -- the one wm_unlock of the function;
 *   4. for the backing store, makes the call without the lock (ops_store.c).
 * The operation's own errnos follow the checks.  Nothing is written to an
 * output unless the result is OK (RANGE writes the needed size).
 * Handle-making functions (open, new, close, clone, watch_drop) are in
 * ops_handles.c: they never reach the store.
 */
#include "ops.h"

/* Step 1 for one key: the handle, its rights, the sizes. */
static int check_key(wm_module *m, uint32_t h, uint32_t needs, uint32_t key_len,
                     uint32_t val_len, wm_handle **hs)
{
    int err = wm_check_handle(m, h, needs, hs);
    if (!err && (key_len > m->limits.key_size || val_len > m->limits.value_size))
        err = WM_TOOBIG;
    return err;
}

/* Step 2: true when the map's entries are in the backing store; then `c`
 * is ready for ops_store.c (lock held). */
static inline bool in_store(wm_module *m, const wm_handle *hs, wm_store_call *c)
{
    const wm_mapslot *ms = &WM_MAP(m->broker, hs->map);
    if (__builtin_expect(!wm_in_store(ms), 1))
        return false;
    wm_store_begin(m, ms, c);
    return true;
}

/* --- one key ----------------------------------------------------------------- */

int wm_op_get(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint8_t *buf,
              uint32_t buf_cap, uint32_t *out_len)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_GET, key_len, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_get(m, hs->map, key, key_len, buf, buf_cap, out_len);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_get(&c, key, key_len, buf, buf_cap, out_len);
    return err;
}

int wm_op_set(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, const uint8_t *val,
              uint32_t val_len)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_SET, key_len, val_len, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_set(m, hs->map, key, key_len, val, val_len);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_set(&c, key, key_len, val, val_len);
    return err;
}

int wm_op_set_if(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                 const uint8_t *val, uint32_t val_len, int64_t expected)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_SET_IF, key_len, val_len, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_set_if(m, hs->map, key, key_len, val, val_len, expected);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_set_if(&c, key, key_len, val, val_len, expected);
    return err;
}

int wm_op_delete(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_DELETE, key_len, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_delete(m, hs->map, key, key_len);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_delete(&c, key, key_len);
    return err;
}

int wm_op_exists(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t *out)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_EXISTS, key_len, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        wm_mem_exists(m, hs->map, key, key_len, out);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_exists(&c, key, key_len, out);
    return err;
}

int wm_op_version(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint64_t *out)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_VERSION, key_len, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        wm_mem_version(m, hs->map, key, key_len, out);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_version(&c, key, key_len, out);
    return err;
}

int wm_op_incr(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, int64_t delta,
               int64_t *out)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_INCR, key_len, 8, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_incr(m, hs->map, key, key_len, delta, out);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_incr(&c, key, key_len, delta, out);
    return err;
}

int wm_op_set_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t child_h)
{
    wm_handle *hs, *child;
    wm_lock(m->broker);
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
    if (!err && wm_in_store(&WM_MAP(m->broker, hs->map)))
        err = WM_TYPE; /* the backing store holds bytes only; no call is needed */
    else if (!err)
        err = wm_mem_set_map(m, hs->map, h, key, key_len, child->map);
    wm_unlock(m->broker);
    return err;
}

int wm_op_get_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len,
                  uint32_t *out_h)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_GET_MAP, key_len, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_get_map(m, hs->map, hs->rights, key, key_len, out_h);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_get_map(&c, key, key_len);
    return err;
}

/* --- the whole map ----------------------------------------------------------- */

int wm_op_len(wm_module *m, uint32_t h, uint32_t *out)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = wm_check_handle(m, h, WM_NEEDS_LEN, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        *out = WM_MAP(m->broker, hs->map).table.live;
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_len(&c, out);
    return err;
}

int wm_op_keys(wm_module *m, uint32_t h, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap,
               uint32_t *out_used, uint32_t *out_count)
{
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = wm_check_handle(m, h, WM_NEEDS_KEYS, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_keys(m, hs->map, cursor, buf, buf_cap, out_used, out_count);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_keys(&c, cursor, buf, buf_cap, out_used, out_count);
    return err;
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
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_GET_MANY, max_key, 0, &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_get_many(m, hs->map, keys, keys_len, buf, buf_cap, out_used);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_get_many(&c, keys, keys_len, (uint32_t)n, buf, buf_cap, out_used);
    return err;
}

int wm_op_set_many(wm_module *m, uint32_t h, const uint8_t *items, uint32_t items_len)
{
    uint32_t max_len[2];
    int64_t n = walk_batch(items, items_len, 2, max_len);
    if (n < 0)
        return WM_INVAL;
    wm_handle *hs;
    wm_store_call c;
    bool stored = false;
    wm_lock(m->broker);
    int err = check_key(m, h, WM_NEEDS_SET_MANY, max_len[0], max_len[1], &hs);
    if (!err && !(stored = in_store(m, hs, &c)))
        err = wm_mem_set_many(m, hs->map, items, items_len, n);
    wm_unlock(m->broker);
    if (stored)
        err = wm_store_set_many(&c, items, items_len, (uint32_t)n);
    return err;
}
